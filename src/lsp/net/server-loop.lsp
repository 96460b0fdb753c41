;;;; server-loop.lsp -- the event-loop server helper: a listening port served by event loops, each in a thread of its own.

(in-package "NET")

(defvar *server-event-loop* nil
  "While the handler of an event-loop server runs (and the callbacks it
adds), the event loop serving the connection: the handler adds its
watchers there.")

(defstruct (event-loop-server (:constructor %make-event-loop-server)
                              (:print-object %print-event-loop-server))
  "A listening port served by event loops, one per thread
(START-EVENT-LOOP-SERVER)."
  handler on-error port
  (max-connections 10000) (timeout 300) header-timeout (accept-rate nil)
  (lock (mp:make-lock :name "net event-loop server"))
  (shards '())                          ; one %shard per loop thread
  (stopping nil))

(defstruct (%shard (:constructor %make-shard (listener rate)))
  listener loop thread
  rate                                  ; a %RATE, or NIL
  watcher                               ; the listener's
  sweeper                               ; the idle timeout's timer, or NIL
  serving                               ; the socket whose handler runs, or NIL
  ;; The accepted sockets, the first COUNT of CONNECTIONS (one word
  ;; each), closed ones pruned now and then; the header timers of those
  ;; whose HEADER-TIMEOUT runs, by socket.
  (connections (make-array 256 :initial-element nil) :type simple-vector)
  (count 0 :type fixnum)
  (headers (make-hash-table :test #'eq))
  (prune-at 256 :type fixnum)
  (accepted 0) (refused 0) (timed-out 0) (errors 0))

(defun %print-event-loop-server (server stream)
  (print-unreadable-object (server stream :type t :identity t)
    (format stream "port ~a, ~d loop~:p~:[~; stopped~]" (event-loop-server-port server)
            (length (event-loop-server-shards server)) (event-loop-server-stopping server))))

(defun %forget-header (shard socket)
  "Remove SOCKET's header timer, if it has one."
  (let ((headers (%shard-headers shard)))
    (when (plusp (hash-table-count headers))
      (let ((timer (gethash socket headers)))
        (when timer
          (remove-timer (%shard-loop shard) timer)
          (remhash socket headers))))))

(defun %add-connection (shard socket)
  "Count SOCKET among SHARD's connections."
  (let ((v (%shard-connections shard))
        (n (%shard-count shard)))
    (when (= n (length v))
      (setf v (replace (make-array (* 2 n) :initial-element nil) v)
            (%shard-connections shard) v))
    (setf (svref v n) socket
          (%shard-count shard) (1+ n))))

(defun %walk-connections (shard function)
  "Call FUNCTION on each open connection of SHARD, and keep those it
returns true for and that are still open; forget the others (and the
closed ones), in place.  A non-local exit out of FUNCTION keeps the
connections not yet walked."
  (let ((v (%shard-connections shard))
        (n (%shard-count shard))
        (kept 0)
        (i 0))
    (declare (fixnum n kept i))
    (unwind-protect
         (loop while (< i n)
               do (let ((s (svref v i)))
                    (if (and (socket-open-p s) (funcall function s) (socket-open-p s))
                        (setf (svref v kept) s
                              kept (1+ kept))
                        (%forget-header shard s))
                    (incf i)))
      (let ((count (+ kept (- n i))))
        (replace v v :start1 kept :start2 i :end2 n)
        (fill v nil :start count :end n)
        (setf (%shard-count shard) count)))))

(defun %prune-connections (shard &optional force)
  "Forget the closed connections of SHARD, when their count has doubled
since the last time or FORCE is true."
  (when (or force (>= (%shard-count shard) (%shard-prune-at shard)))
    (%walk-connections shard (constantly t))
    (setf (%shard-prune-at shard) (max 256 (* 2 (%shard-count shard))))))

(defun %server-report (server shard condition socket)
  (incf (%shard-errors shard))
  (ignore-errors (funcall (event-loop-server-on-error server) condition socket)))

(defun %pause-accepting (shard seconds)
  "Stop watching SHARD's listener for SECONDS: past the accept rate, or out
of descriptors (accepting again at once would only spin)."
  (let ((w (%shard-watcher shard))
        (listener (%shard-listener shard)))
    (setf (watcher-events w) nil)
    (add-timer (%shard-loop shard)
               (lambda ()
                 (when (socket-open-p listener)
                   (setf (watcher-events w) '(:read))))
               seconds)))

(defun %time-out (server shard socket what)
  "Close SOCKET, a connection SHARD serves, for its idle or header timeout WHAT."
  (%forget-header shard socket)
  (when (socket-open-p socket)
    (incf (%shard-timed-out shard))
    (close socket :abort t)
    (%server-report server shard
                    (make-condition 'socket-timeout :syscall what :socket socket :errno -4002
                                                    :message "connection timed out")
                    nil)))

(defun %accept-one (shard)
  "Accept one pending connection of SHARD's listener: the socket, or NIL
when there is none or accepting must pause.  No peer address is made (a
refusal asks for it).  An error of the accept is met by %CALLBACK-FAILED
(no handler per accept)."
  (let ((rate (%shard-rate shard)))
    (when rate
      (let ((wait (%rate-wait rate)))
        (when (plusp wait)
          (%pause-accepting shard wait)
          (return-from %accept-one nil))))
    (let ((s (accept-connection (%shard-listener shard) :peer nil :blocking nil)))
      (cond ((null s) (when rate (%rate-refund rate)) nil)
            (t (incf (%shard-accepted shard))
               s)))))

(defun %peer-or-nil (socket)
  "SOCKET's peer address, or NIL when it has none any more (reset already)."
  (handler-case (socket-remote-address socket)
    (socket-error () nil)))

(defun %over-capacity-p (server shard)
  (let ((max (event-loop-server-max-connections server)))
    (and max
         (>= (%shard-count shard) max)
         (progn (%prune-connections shard t)
                (>= (%shard-count shard) max)))))

(defun %accept-pending (server shard)
  "Accept every pending connection of SHARD's listener and hand each to the
handler.  Errors, of an accept or of the handler, are met by
%CALLBACK-FAILED, which goes on with the loop's next event: the listener,
still readable, brings the rest of the backlog on the next pass."
  ;; A handler left by a non-local exit is not one that fails now.
  (setf (%shard-serving shard) nil)
  (loop
    (let ((s (%accept-one shard)))
      (unless s (return))
      (cond ((%over-capacity-p server shard)
             (incf (%shard-refused shard))
             ;; Reported before the reset, so whoever sees the reset can
             ;; already see the report.
             (%server-report server shard (make-condition 'server-busy :server server
                                                             :peer (%peer-or-nil s))
                             nil)
             (close s :abort t))
            (t
             (%prune-connections shard)
             (%add-connection shard s)
             (let ((header (event-loop-server-header-timeout server)))
               (when header
                 (setf (gethash s (%shard-headers shard))
                       (add-timer (%shard-loop shard)
                                  (lambda () (%time-out server shard s "header timeout"))
                                  header))))
             (setf (%shard-serving shard) s)
             (funcall (event-loop-server-handler server) s)
             (setf (%shard-serving shard) nil))))))

(defun %sweep-idle (server shard)
  "Close SHARD's connections idle longer than the server's timeout.  The
kernel's TCP_INFO tells each TCP connection's idle milliseconds
(NET-SYS:TCP-IDLE-MS: one getsockopt, nothing consed); the walk over the
vector conses nothing either, so a sweep of 10,000 connections leaves no
garbage."
  (let ((ms (* 1000 (event-loop-server-timeout server))))
    (%walk-connections shard
                       (lambda (s)
                         (let ((idle (net-sys:tcp-idle-ms (socket-handle s))))
                           (when (and idle (> idle ms))
                             (%time-out server shard s "idle timeout"))
                           t)))))

(defun %callback-failed (server shard loop condition)
  "Meet CONDITION, an error signalled while a callback of SHARD's LOOP
runs and not handled there: report it to ON-ERROR and go on with the
loop's next event.  A failed watcher's socket is closed, a failed timer's
event skipped, through the loop's own restart actions (%TAKE-RESTART)
without looking them up.  In the listener's callback (%ACCEPT-PENDING) a
failed handler's connection is closed, an accept out of descriptors pauses
accepting, and the listener stays watched.  Declines an error outside the
callbacks of LOOP, or in a loop run inside one (whose restarts are then
taken as before: by name)."
  (let ((object (%failing-object loop)))
    (cond ((null object)
           (let ((r (or (find-restart 'close-socket condition)
                        (find-restart 'skip-event condition))))
             (when r
               (%server-report server shard condition nil)
               (invoke-restart r))))
          ((eq object (%shard-watcher shard))
           (let ((s (shiftf (%shard-serving shard) nil)))
             (cond (s
                    (%server-report server shard condition s)
                    (close s :abort t))
                   (t
                    (let ((rate (%shard-rate shard)))
                      (when rate (%rate-refund rate)))
                    (unless (typep condition 'socket-closed)
                      (%server-report server shard condition nil))
                    (when (typep condition 'resource-exhausted)
                      (%pause-accepting shard 0.1)))))
           (%take-restart loop nil))
          (t
           (%server-report server shard condition nil)
           (%take-restart loop (and (watcher-p object) :close))))))

(defun %run-shard (server shard)
  "The body of a loop thread: watch the listener, run the loop until it
has nothing left to watch or is stopped; errors in callbacks are reported
and their socket closed (%CALLBACK-FAILED, one handler for the thread)."
  (let* ((loop (make-event-loop))
         (*server-event-loop* loop)
         (*server-shard* shard)
         (timeout (event-loop-server-timeout server)))
    (setf (%shard-loop shard) loop)
    (unwind-protect
         (progn
           (setf (%shard-watcher shard)
                 (add-watcher loop (%shard-listener shard) '(:read)
                              (lambda (listener events)
                                (declare (ignore listener events))
                                (%accept-pending server shard))))
           (when timeout
             (let ((period (min 5 (max 0.05 (/ timeout 4)))))
               (setf (%shard-sweeper shard)
                     (add-timer loop (lambda () (%sweep-idle server shard))
                                period :repeat period))))
           (handler-bind ((error (lambda (e) (%callback-failed server shard loop e))))
             (run-event-loop loop)))
      (close (%shard-listener shard))
      (let ((v (%shard-connections shard)))
        (dotimes (i (%shard-count shard))
          (close (svref v i) :abort t)))
      (close-event-loop loop))))

(defun start-event-loop-server (handler port &rest listener-args
                                &key (loops 1) on-error (error-output *error-output*)
                                  (max-connections 10000) (timeout 300) header-timeout
                                  accept-rate
                                &allow-other-keys)
  "Serve connections to PORT on event loops, each in a thread of its own,
and return the server at once.  HANDLER has the shape of
START-THREADED-SERVER's: a function of the connected socket.  Here it is
called in the loop's thread as soon as the connection is accepted, with a
non-blocking socket, and must not block: it adds a watcher for the socket to
*SERVER-EVENT-LOOP* (ADD-WATCHER, QUEUE-SEND) and returns.  The socket is
the handler's to close.

LOOPS (1) threads each run their own loop and listener on the same port
(SO_REUSEPORT, so the kernel spreads the connections): for machines with
more cores.  Other keywords are MAKE-LISTENER's (:HOST, :BACKLOG,
:ADDRESS-FAMILY, :EXTERNAL-FORMAT, socket options).  An error in HANDLER, or
in a callback of a watcher, closes that connection and is reported to
ON-ERROR (a function of the condition and the socket or NIL) or else printed
on ERROR-OUTPUT; the loop goes on.  STOP-SERVER stops it.

Limits against hostile clients, per loop: MAX-CONNECTIONS (10000; NIL: no
limit) open connections at most, a connection past it closed at once and
reported as a SERVER-BUSY; TIMEOUT (300 seconds; NIL: none), a TCP
connection on which no data went either way for that long is closed
(the kernel's TCP_INFO tells); HEADER-TIMEOUT (NIL: none), a connection
is closed that many seconds after its accept unless the handler or its
callbacks called HEADER-RECEIVED on it (against slowloris clients, who
keep a connection busy by sending a byte now and then); ACCEPT-RATE (NIL:
no limit), connections accepted per second, in bursts of at most one
second's worth, the rest waiting in the system's backlog.  Closings for
TIMEOUT and HEADER-TIMEOUT are reported to ON-ERROR as SOCKET-TIMEOUT
conditions.  When descriptors run out the loop stops accepting for a tenth
of a second, reporting the condition, instead of spinning."
  (check-type loops (integer 1 64))
  (check-type max-connections (or null (integer 1 *)))
  (%check-timeout timeout)
  (%check-timeout header-timeout)
  (let* ((args (loop for (k v) on listener-args by #'cddr
                     unless (member k '(:loops :on-error :error-output :max-connections
                                        :timeout :header-timeout :accept-rate))
                       nconc (list k v)))
         (args (if (> loops 1) (list* :reuse-port t args) args))
         (first (apply #'make-listener port :blocking nil args))
         (port (socket-local-port first))
         (listeners (cons first (loop repeat (1- loops)
                                      collect (apply #'make-listener port :blocking nil args))))
         (server (%make-event-loop-server
                  :handler handler :port port
                  :max-connections max-connections :timeout timeout
                  :header-timeout header-timeout :accept-rate accept-rate
                  :on-error (or on-error (%default-on-error error-output)))))
    (dolist (l listeners)
      (let ((shard (%make-shard l (%check-rate accept-rate))))
        (push shard (event-loop-server-shards server))
        (setf (%shard-thread shard)
              (mp:process-run-function "net event-loop server"
                                       (lambda () (%run-shard server shard))))))
    server))

(defmethod %stop-server ((server event-loop-server) grace)
  (when (mp:with-lock ((event-loop-server-lock server))
          (shiftf (event-loop-server-stopping server) t))
    (return-from %stop-server nil))
  (let ((shards (event-loop-server-shards server)))
    ;; Wait for every loop to be running, so that CALL-IN-LOOP reaches it.
    (loop repeat 500 until (every #'%shard-loop shards) do (sleep 0.01))
    (dolist (shard shards)
      (let ((l (%shard-listener shard)))
        ;; A loop whose thread has ended (its loop closed) closes nothing:
        ;; its listener is closed from here.
        (handler-case (call-in-loop (%shard-loop shard)
                                    (lambda ()
                                      (close l)
                                      ;; Only connections keep the loop alive now.
                                      (let ((sweeper (%shard-sweeper shard)))
                                        (when sweeper
                                          (remove-timer (%shard-loop shard) sweeper)))
                                      (%prune-connections shard t)))
          (event-loop-error () (close l)))))
    ;; Running connections may finish: a loop ends when nothing is watched.
    (let ((end (+ (get-internal-real-time) (* grace internal-time-units-per-second))))
      (loop until (or (notany (lambda (s) (mp:process-active-p (%shard-thread s))) shards)
                      (>= (get-internal-real-time) end))
            do (sleep 0.01)))
    (dolist (shard shards)
      (when (mp:process-active-p (%shard-thread shard))
        (ignore-errors (stop-event-loop (%shard-loop shard)))))
    (dolist (shard shards)
      (mp:process-join (%shard-thread shard)))
    t))

(defmethod server-port ((server event-loop-server))
  (event-loop-server-port server))

(defmethod server-statistics ((server event-loop-server))
  (let ((shards (event-loop-server-shards server)))
    (flet ((sum (f) (reduce #'+ shards :key f)))
      (list :accepted (sum #'%shard-accepted)
            :refused (sum #'%shard-refused)
            :timed-out (sum #'%shard-timed-out)
            :errors (sum #'%shard-errors)))))
