;;;; loop-queue.lsp -- write queues of event-loop watchers: non-blocking sends resumed on writability, with backpressure.

(in-package "NET")

;;; An entry is a simple-vector #(buffer start end on-free): BUFFER[START,END)
;;; is still to send; ON-FREE (or NIL) is called when BUFFER is free again.

(defun %entry-free (entry)
  (let ((f (svref entry 3)))
    (when f
      (setf (svref entry 3) nil)
      (funcall f (svref entry 0)))))

(defun %drop-queue (w)
  "Forget W's queued octets, giving back the buffers handed over."
  (let ((entries (shiftf (watcher-queue-head w) nil)))
    (setf (watcher-queue-tail w) nil
          (watcher-queued w) 0)
    (mapc #'%entry-free entries)))

(declaim (inline %send-now))
(defun %send-now (w buffer start end)
  "One non-blocking send(2) of BUFFER[START,END) on W's socket: the count sent (0 if none)."
  (declare (fixnum start end) (type watcher w) (optimize (speed 3) (safety 0)))
  (if (= start end)
      0
      (the fixnum (or (net-sys:send (watcher-handle w) buffer start end 0 -1 (watcher-socket w))
                      0))))

(defun %queue-failed (w condition)
  "A queued write failed: drop the queue, and tell the owner once, through
ON-ERROR, or else by closing the socket."
  (%drop-queue w)
  (setf (watcher-after-drain w) nil)
  (%update-watch w)
  (let ((f (watcher-on-error w)))
    (if f
        (funcall f condition)
        (close (watcher-socket w) :abort t))))

(defun %drained (w)
  "W's queue just became empty: stop asking for :WRITE, do what was to be
done after the drain, and call ON-DRAIN."
  (%update-watch w)
  (case (shiftf (watcher-after-drain w) nil)
    (:close (close (watcher-socket w)))
    (:shutdown (shutdown (watcher-socket w) :output)))
  (let ((f (watcher-on-drain w)))
    (when f (funcall f))))

(defun %flush-queue (w)
  "Send what the socket takes of W's queue now, in order."
  (handler-case
      (loop
        (let ((entry (car (watcher-queue-head w))))
          (unless entry
            (return (%drained w)))
          (let* ((start (svref entry 1))
                 (end (svref entry 2))
                 (n (%send-now w (svref entry 0) start end)))
            (declare (fixnum start end n))
            (setf (watcher-queued w) (the fixnum (- (watcher-queued w) n)))
            (if (< (the fixnum (+ start n)) end)
                (return (setf (svref entry 1) (the fixnum (+ start n))))
                (progn (pop (watcher-queue-head w))
                       (unless (watcher-queue-head w)
                         (setf (watcher-queue-tail w) nil))
                       (%entry-free entry))))))
    (socket-error (c) (%queue-failed w c))))

(defun %check-octets (buffer start end)
  "A TYPE-ERROR unless BUFFER is an octet vector holding [START,END)."
  (unless (<= end (net-sys:%octets-length buffer))  ; -1 if no octet vector
    (error 'type-error :datum buffer :expected-type `(vector (unsigned-byte 8) ,end)))
  (unless (<= 0 start end)
    (error 'type-error :datum start :expected-type `(integer 0 ,end))))

;;; Inline in %QUEUE-SEND, its one caller: a compiled function's entry
;;; costs a lookup of the thread's environment (pthread_getspecific).
(declaim (inline %queue-checked))
(defun %queue-checked (w buffer s e copy on-free)
  "%QUEUE-SEND once W is known to be a watcher of this thread's loop and
0 <= S <= E fixnums."
  (declare (optimize (speed 3) (safety 0)) (type watcher w) (fixnum s e))
  (when (> (the fixnum (+ (watcher-queued w) (the fixnum (- e s)))) (watcher-max-queued w))
    (error 'limit-exceeded :limit :write-queue :maximum (watcher-max-queued w)
                           :socket (watcher-socket w)))
  ;; The glue checks BUFFER, S and E.
  (let* ((n (if (watcher-queue-head w) 0 (%send-now w buffer s e)))
         (rest (the fixnum (- (the fixnum (- e s)) n))))
    (declare (fixnum n rest))
    (cond ((zerop rest)
           (when (and on-free (not copy))
             (funcall on-free buffer)))
          (t
           (%check-octets buffer s e)
           (let ((entry (if copy
                            (vector (subseq buffer (the fixnum (+ s n)) e) 0 rest nil)
                            (vector buffer (the fixnum (+ s n)) e on-free)))
                 (was-empty (zerop (watcher-queued w))))
             (if (watcher-queue-tail w)
                 (setf (cdr (watcher-queue-tail w)) (list entry)
                       (watcher-queue-tail w) (cdr (watcher-queue-tail w)))
                 (setf (watcher-queue-head w) (list entry)
                       (watcher-queue-tail w) (watcher-queue-head w)))
             (setf (watcher-queued w) (the fixnum (+ (watcher-queued w) rest)))
             (when was-empty
               (%update-watch w)))))
    (< (watcher-queued w) (watcher-high-water-mark w))))

(defun %queue-send (watcher buffer &optional end (start 0) (copy t) on-free)
  "QUEUE-SEND with its arguments positional, most used first."
  (declare (optimize (speed 3) (safety 0)))
  (unless (net-sys:%instance-class-is watcher (load-time-value (find-class 'watcher)))
    (error 'type-error :datum watcher :expected-type 'watcher))
  (let ((loop (watcher-loop watcher)))
    ;; The owner's thread only: %LOOP-POINTER says why not.
    (unless (and (event-loop-pointer loop) (eq (event-loop-owner loop) mp:*current-process*))
      (%loop-pointer loop)))
  (unless (watcher-pointer watcher)
    (%loop-error (watcher-loop watcher) "the watcher of ~a was removed"
                 (watcher-socket watcher)))
  (let ((end (or end (length buffer))))
    (unless (typep end 'fixnum)
      (error 'type-error :datum end :expected-type 'fixnum))
    (unless (and (typep start 'fixnum) (<= 0 (the fixnum start) (the fixnum end)))
      (error 'type-error :datum start :expected-type `(integer 0 ,end)))
    (%queue-checked watcher buffer start end copy on-free)))

(defun queue-send (watcher buffer &key (start 0) end (copy t) on-free)
  "Send BUFFER[START,END) (an octet vector) on WATCHER's socket without
waiting: what the socket takes now is sent at once, the rest is queued and
sent in order as the socket becomes writable (the watcher asks for :WRITE
while its queue holds octets; its callback still sees only the events it
asked for).  With COPY true (the default) the rest is copied; with COPY NIL
BUFFER is handed over: do not modify it until ON-FREE, a function of the
buffer, is called (at once if everything went now).  Returns T while the
queue holds fewer octets than the watcher's high-water mark, NIL once past
it: the caller should then stop producing (for example stop reading from
its own peer) until the watcher's ON-DRAIN is called.  A producer that
goes on regardless meets the watcher's MAX-QUEUED: a call that would make
the queue hold more octets than that signals LIMIT-EXCEEDED (limit
:WRITE-QUEUE) and sends and queues nothing of BUFFER, so a peer that never
reads cannot make the queue grow without bound.  An error sending now
is signalled; an error sending queued octets later (the peer reset the
connection) drops the queue and calls the watcher's ON-ERROR with the
condition, once, or closes the socket when there is no ON-ERROR."
  (%queue-send watcher buffer end start copy on-free))
(net-sys:%define-positional queue-send %queue-send 2
  ((:end nil) (:start 0) (:copy t) (:on-free nil)) t)

(defun watcher-queued-octets (watcher)
  "The number of octets in WATCHER's write queue, not yet sent."
  (watcher-queued watcher))

(defun close-after-drain (watcher)
  "Close WATCHER's socket once its write queue is empty (at once if it is):
a graceful close.  The watcher's callback gets no more events meanwhile.
CLOSE closes at once, dropping the queue."
  (%loop-pointer (watcher-loop watcher))
  (setf (watcher-mask watcher) 0)
  (if (plusp (watcher-queued watcher))
      (progn (setf (watcher-after-drain watcher) :close)
             (%update-watch watcher))
      (close (watcher-socket watcher)))
  nil)

(defun shutdown-after-drain (watcher)
  "Shut down the output side of WATCHER's socket (the peer reads end of
file) once its write queue is empty (at once if it is): a half close that
loses nothing queued."
  (%loop-pointer (watcher-loop watcher))
  (if (plusp (watcher-queued watcher))
      (setf (watcher-after-drain watcher) :shutdown)
      (shutdown (watcher-socket watcher) :output))
  nil)

(defun queue-stream-output (watcher)
  "Move what WATCHER's socket has buffered as a stream for output (text or
octets written with WRITE-STRING, FORMAT, WRITE-SEQUENCE, ... and not yet
sent) into the watcher's write queue, in order after what is queued, and
empty the stream's buffer: text written through the stream is then queued
like any QUEUE-SEND, without waiting.  Call it after writing, instead of
FINISH-OUTPUT, which would wait.  Write less than the stream's buffer
(32 KiB) between two calls: a full buffer is sent by the stream itself,
which on a non-blocking socket signals an error if the socket takes none.
Returns what QUEUE-SEND returns (T when nothing was buffered)."
  (let ((s (watcher-socket watcher)))
    (if (and (typep s 'stream-socket) (slot-value s 'stream-state))
        (let* ((ss (%stream-state s))
               (end (%ss-opos ss)))
          (if (plusp end)
              (prog1 (queue-send watcher (%ss-obuf ss) :end end)
                (setf (%ss-opos ss) 0)
                (%release-output ss))
              t))
        t)))
