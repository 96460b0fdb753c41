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

(defun %send-now (w buffer start end)
  "One non-blocking send(2) of BUFFER[START,END) on W's socket: the count sent (0 if none)."
  (declare (fixnum start end))
  (if (= start end)
      0
      (or (net-sys:send (watcher-handle w) buffer start end 0 -1 (watcher-socket w)) 0)))

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
            (decf (watcher-queued w) n)
            (if (< (+ start n) end)
                (return (setf (svref entry 1) (+ start n)))
                (progn (pop (watcher-queue-head w))
                       (unless (watcher-queue-head w)
                         (setf (watcher-queue-tail w) nil))
                       (%entry-free entry))))))
    (socket-error (c) (%queue-failed w c))))

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
  (let ((loop (watcher-loop watcher)))
    ;; The owner's thread only: %LOOP-POINTER says why not.
    (unless (and (event-loop-pointer loop) (eq (event-loop-owner loop) mp:*current-process*))
      (%loop-pointer loop)))
  (unless (watcher-pointer watcher)
    (%loop-error (watcher-loop watcher) "the watcher of ~a was removed"
                 (watcher-socket watcher)))
  (let* ((start start)
         (end (or end (length buffer)))
         (n (if (> (+ (watcher-queued watcher) (- end start)) (watcher-max-queued watcher))
                (error 'limit-exceeded :limit :write-queue :maximum (watcher-max-queued watcher)
                                       :socket (watcher-socket watcher))
                (if (watcher-queue-head watcher) 0 (%send-now watcher buffer start end))))
         (rest (- end start n)))
    (declare (fixnum start end n rest))
    (cond ((zerop rest)
           (when (and on-free (not copy))
             (funcall on-free buffer)))
          (t
           (let ((entry (if copy
                            (vector (subseq buffer (+ start n) end) 0 rest nil)
                            (vector buffer (+ start n) end on-free)))
                 (was-empty (zerop (watcher-queued watcher))))
             (if (watcher-queue-tail watcher)
                 (setf (cdr (watcher-queue-tail watcher)) (list entry)
                       (watcher-queue-tail watcher) (cdr (watcher-queue-tail watcher)))
                 (setf (watcher-queue-head watcher) (list entry)
                       (watcher-queue-tail watcher) (watcher-queue-head watcher)))
             (incf (watcher-queued watcher) rest)
             (when was-empty
               (%update-watch watcher)))))
    (< (watcher-queued watcher) (watcher-high-water-mark watcher))))

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
