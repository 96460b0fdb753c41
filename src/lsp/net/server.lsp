;;;; server.lsp -- the threaded server helper: a listener served by a bounded pool of threads.

(in-package "NET")

;;; Handlers have one shape, here and on the event loop: a function of one
;;; argument, the connected stream socket; the helper closes it after.

(define-condition server-busy (network-error)
  ((server :initarg :server :reader server-busy-server
           :documentation "The server that refused the connection.")
   (peer :initarg :peer :initform nil :reader server-busy-peer
         :documentation "The refused client's address."))
  (:report (lambda (c s)
             (format s "~a: every thread busy and the queue full; connection from ~a refused"
                     (server-busy-server c)
                     (let ((p (server-busy-peer c)))
                       (if p (address-string p) "a local client")))))
  (:documentation "Reported (not signalled in the caller) when a threaded
server with :ON-FULL :REFUSE closes a connection because its threads are
busy and its queue is full."))

(setf (documentation 'server-busy-server 'function)
      "The server of a SERVER-BUSY report."
      (documentation 'server-busy-peer 'function)
      "The address of the client a SERVER-BUSY report refused.")

(defstruct (threaded-server (:constructor %make-threaded-server)
                            (:print-object %print-threaded-server))
  "A listener served by a bounded pool of threads (START-THREADED-SERVER)."
  listener handler (threads 16) (queue-limit 64) (on-full :refuse) timeout on-error
  (lock (mp:make-lock :name "net server"))
  (cv (mp:make-condition-variable))
  (queue '())                           ; sockets waiting for a thread, oldest first
  (workers '()) (idle 0) (running '())  ; running: sockets being handled
  acceptor (stopping nil)
  (accepted 0) (handled 0) (refused 0) (errors 0))

(defun %print-threaded-server (server stream)
  (print-unreadable-object (server stream :type t :identity t)
    (let ((l (threaded-server-listener server)))
      (if (socket-open-p l)
          (multiple-value-bind (a p) (socket-local-address l)
            (format stream "~a~@[ port ~d~]" (if a (address-string a) "unnamed") p))
          (format stream "stopped")))))

(defun %report-server-error (server condition socket)
  "Hand CONDITION, met while serving SOCKET (or NIL), to the server's
:ON-ERROR function; an error in that function is dropped, the server goes on."
  (ignore-errors (funcall (threaded-server-on-error server) condition socket)))

(defun %default-on-error (stream)
  (lambda (condition socket)
    (format stream "~&;; net server~@[ (~a)~]: ~a~%" socket condition)
    (finish-output stream)))

;;; Workers

(defun %serve-one (server socket)
  (progn
    (unwind-protect
         (handler-case
             (progn
               (setf (socket-timeout-of socket) (threaded-server-timeout server))
               (funcall (threaded-server-handler server) socket))
           (error (e)
             (mp:with-lock ((threaded-server-lock server))
               (incf (threaded-server-errors server)))
             (%report-server-error server e socket)))
      ;; An orderly close (the client reads end of file), even after an
      ;; error; reset only when that fails.
      (unless (ignore-errors (close socket) t)
        (close socket :abort t))
      (%served server socket))))

(defun %served (server socket)
  (mp:with-lock ((threaded-server-lock server))
    (setf (threaded-server-running server) (remove socket (threaded-server-running server)))
    (incf (threaded-server-handled server))
    (mp:condition-variable-broadcast (threaded-server-cv server))))

(defun %next-connection (server)
  "The next queued socket, waiting for one; NIL once the server stops."
  (let ((lock (threaded-server-lock server)))
    (mp:with-lock (lock)
      (incf (threaded-server-idle server))
      ;; One more idle thread: an acceptor waiting for room goes on.
      (mp:condition-variable-broadcast (threaded-server-cv server))
      (loop while (and (null (threaded-server-queue server))
                       (not (threaded-server-stopping server)))
            do (mp:condition-variable-wait (threaded-server-cv server) lock))
      (decf (threaded-server-idle server))
      (unless (threaded-server-stopping server)
        (let ((s (pop (threaded-server-queue server))))
          (push s (threaded-server-running server))
          ;; Room in the queue: an acceptor waiting for it goes on.
          (mp:condition-variable-broadcast (threaded-server-cv server))
          s)))))

(defun %worker (server)
  (catch '%stop-worker
    (loop for s = (%next-connection server)
          while s
          do (%serve-one server s))))

;;; The acceptor

(defun %queue-full-p (server)
  "True when the connections queued beyond what idle or yet unstarted
threads will take have reached the queue's bound.  Holding the lock."
  (>= (- (length (threaded-server-queue server))
         (threaded-server-idle server)
         (- (threaded-server-threads server) (length (threaded-server-workers server))))
      (threaded-server-queue-limit server)))

(defun %enqueue (server socket peer)
  "Queue SOCKET for a worker, starting one if none is idle and the pool is
not full.  A full queue refuses SOCKET or waits for room, as :ON-FULL says."
  (let ((lock (threaded-server-lock server))
        (refuse nil))
    (mp:with-lock (lock)
      (loop while (and (%queue-full-p server)
                       (not (threaded-server-stopping server))
                       (eq (threaded-server-on-full server) :wait))
            do (mp:condition-variable-wait (threaded-server-cv server) lock))
      (cond ((threaded-server-stopping server) (setf refuse :stopping))
            ((%queue-full-p server)
             (incf (threaded-server-refused server))
             (setf refuse t))
            (t
             (setf (threaded-server-queue server)
                   (nconc (threaded-server-queue server) (list socket)))
             (when (and (< (threaded-server-idle server) (length (threaded-server-queue server)))
                        (< (length (threaded-server-workers server))
                           (threaded-server-threads server)))
               (push (mp:process-run-function "net server worker"
                                              (lambda () (%worker server)))
                     (threaded-server-workers server)))
             (mp:condition-variable-broadcast (threaded-server-cv server)))))
    (when refuse
      (unwind-protect
           (when (and (eq refuse t) (functionp (threaded-server-on-full server)))
             (ignore-errors (funcall (threaded-server-on-full server) socket)))
        (close socket :abort t))
      (when (eq refuse t)
        (%report-server-error server (make-condition 'server-busy :server server :peer peer)
                              nil)))))

(defun %acceptor (server)
  (let ((listener (threaded-server-listener server)))
    (loop until (threaded-server-stopping server)
          do (handler-case
                 (multiple-value-bind (s peer) (accept-connection listener)
                   (when s
                     (mp:with-lock ((threaded-server-lock server))
                       (incf (threaded-server-accepted server)))
                     (%enqueue server s peer)))
               (socket-closed () (return))
               (error (e)
                 ;; Out of descriptors and the like: say so, breathe, go on.
                 (unless (threaded-server-stopping server)
                   (%report-server-error server e nil)
                   (sleep 0.1)))))))

;;; The API

(defun start-threaded-server (handler port &rest listener-args
                              &key (threads 16) (queue 64) (on-full :refuse) timeout
                                on-error (error-output *error-output*) listener
                              &allow-other-keys)
  "Serve connections to PORT, each by calling HANDLER with the connected
stream socket in a thread of a bounded pool; return the server at once.
The helper closes the socket when HANDLER returns.

The listener is (MAKE-LISTENER PORT ...) with every keyword this function
does not know (:HOST, :BACKLOG, :ADDRESS-FAMILY, :EXTERNAL-FORMAT, socket
options...), or LISTENER, a passive socket of your own (PORT is then
ignored; the server closes it when it stops).  THREADS (16) bounds the pool:
threads start as connections need them and are reused.  Connections no
thread can take wait in a queue of QUEUE (64) at most; past that, ON-FULL
says what happens: :REFUSE (the default) resets the connection at once and
reports a SERVER-BUSY; a function is called with the socket first (to write
a \"busy\" reply) and then the connection is closed and reported the same
way; :WAIT stops accepting until the queue has room (clients then wait in
the system's backlog).  TIMEOUT is each connection's default timeout
(SOCKET-TIMEOUT-OF), so a silent client cannot hold a thread forever.

An error in HANDLER is contained: the connection is closed, the server goes
on, and ON-ERROR is called with the condition and the socket (NIL for
errors of the acceptor and SERVER-BUSY reports); by default these are
printed on ERROR-OUTPUT (the caller's *ERROR-OUTPUT*).  Stop the server with
STOP-SERVER."
  (check-type threads (integer 1 200))
  (check-type queue (integer 0 *))
  (check-type on-full (or (member :refuse :wait) function))
  (%check-timeout timeout)
  (let* ((listener (or listener
                       (apply #'make-listener port
                              (loop for (k v) on listener-args by #'cddr
                                    unless (member k '(:threads :queue :on-full :timeout
                                                       :on-error :error-output :listener))
                                      nconc (list k v)))))
         (server (%make-threaded-server
                  :listener listener :handler handler :threads threads :queue-limit queue
                  :on-full on-full :timeout timeout
                  :on-error (or on-error (%default-on-error error-output)))))
    (setf (threaded-server-acceptor server)
          (mp:process-run-function "net server acceptor" (lambda () (%acceptor server))))
    server))

(defun server-port (server)
  "The port SERVER (threaded or event-loop) listens on (NIL for a Unix-domain server)."
  (if (event-loop-server-p server)
      (event-loop-server-port server)
      (socket-local-port (threaded-server-listener server))))

(defun server-statistics (server)
  "A plist of SERVER's counts so far: :ACCEPTED connections, :HANDLED (the
handler returned or failed), :REFUSED (queue full), :ERRORS (handlers that
signalled), and now :ACTIVE (being handled), :QUEUED and :THREADS."
  (mp:with-lock ((threaded-server-lock server))
    (list :accepted (threaded-server-accepted server)
          :handled (threaded-server-handled server)
          :refused (threaded-server-refused server)
          :errors (threaded-server-errors server)
          :active (length (threaded-server-running server))
          :queued (length (threaded-server-queue server))
          :threads (length (threaded-server-workers server)))))

(defun %wait-idle (server seconds)
  "Wait until no handler runs, at most SECONDS; true if none does."
  (let ((end (+ (get-internal-real-time) (* seconds internal-time-units-per-second))))
    (loop (when (null (mp:with-lock ((threaded-server-lock server))
                        (threaded-server-running server)))
            (return t))
          (when (>= (get-internal-real-time) end) (return nil))
          (sleep 0.01))))

(defun stop-server (server &key (grace 5))
  "Stop SERVER, a threaded or an event-loop server.  A threaded server: close its listener (no new connection is accepted), close
the connections still queued, let the running handlers finish for GRACE
seconds, then close their sockets (a handler blocked on one wakes with
SOCKET-CLOSED) and, a second later, interrupt the threads still busy; join
every thread.  Returns T once nothing of the server runs; a second call
returns NIL.  An event-loop server: close its listeners, let its loops run
for GRACE seconds until their connections are closed, then stop them, close
the connections left and join the threads."
  (check-type grace (real 0))
  (when (event-loop-server-p server)
    (return-from stop-server (%stop-event-loop-server server grace)))
  (let ((lock (threaded-server-lock server)) queued)
    (mp:with-lock (lock)
      (when (threaded-server-stopping server)
        (return-from stop-server nil))
      (setf (threaded-server-stopping server) t
            queued (threaded-server-queue server)
            (threaded-server-queue server) '())
      (mp:condition-variable-broadcast (threaded-server-cv server)))
    (close (threaded-server-listener server))
    (mp:process-join (threaded-server-acceptor server))
    (dolist (s queued) (close s :abort t))
    (unless (%wait-idle server grace)
      (dolist (s (mp:with-lock (lock) (copy-list (threaded-server-running server))))
        (close s :abort t))
      (unless (%wait-idle server 1)
        (dolist (w (threaded-server-workers server))
          (when (mp:process-active-p w)
            (mp:interrupt-process w (lambda () (throw '%stop-worker nil)))))))
    (mp:with-lock (lock)
      (mp:condition-variable-broadcast (threaded-server-cv server)))
    (mapc #'mp:process-join (threaded-server-workers server))
    t))

;;; The event-loop server: the same handler shape, called in a loop's thread

(defvar *server-event-loop* nil
  "While the handler of an event-loop server runs (and the callbacks it
adds), the event loop serving the connection: the handler adds its
watchers there.")

(defstruct (event-loop-server (:constructor %make-event-loop-server)
                              (:print-object %print-event-loop-server))
  "A listening port served by event loops, one per thread
(START-EVENT-LOOP-SERVER)."
  handler on-error port
  (lock (mp:make-lock :name "net event-loop server"))
  (shards '())                          ; one %shard per loop thread
  (stopping nil))

(defstruct (%shard (:constructor %make-shard (listener)))
  listener loop thread
  (connections (make-hash-table :test #'eq)) ; accepted sockets, pruned as they close
  (prune-at 256))

(defun %print-event-loop-server (server stream)
  (print-unreadable-object (server stream :type t :identity t)
    (format stream "port ~a, ~d loop~:p~:[~; stopped~]" (event-loop-server-port server)
            (length (event-loop-server-shards server)) (event-loop-server-stopping server))))

(defun %prune-connections (shard)
  (let ((table (%shard-connections shard)))
    (when (>= (hash-table-count table) (%shard-prune-at shard))
      (loop for s being the hash-keys of table
            unless (socket-open-p s) do (remhash s table))
      (setf (%shard-prune-at shard) (max 256 (* 2 (hash-table-count table)))))))

(defun %accept-pending (server shard)
  "Accept every pending connection of SHARD's listener and hand each to the handler."
  (loop
    (let ((s (handler-case (accept-connection (%shard-listener shard))
               (socket-error (e)
                 (unless (typep e 'socket-closed)
                   (funcall (event-loop-server-on-error server) e nil))
                 nil))))
      (unless s (return))
      (setf (socket-blocking-p s) nil)
      (%prune-connections shard)
      (setf (gethash s (%shard-connections shard)) t)
      (handler-case (funcall (event-loop-server-handler server) s)
        (error (e)
          (funcall (event-loop-server-on-error server) e s)
          (close s :abort t))))))

(defun %run-shard (server shard)
  "The body of a loop thread: watch the listener, run the loop until it
has nothing left to watch or is stopped; errors in callbacks are reported
and their socket closed."
  (let* ((loop (make-event-loop))
         (*server-event-loop* loop))
    (setf (%shard-loop shard) loop)
    (unwind-protect
         (progn
           (add-watcher loop (%shard-listener shard) '(:read)
                        (lambda (listener events)
                          (declare (ignore listener events))
                          (%accept-pending server shard)))
           (handler-bind ((error (lambda (e)
                                   (let ((r (or (find-restart 'close-socket e)
                                                (find-restart 'skip-event e))))
                                     (when r
                                       (ignore-errors
                                        (funcall (event-loop-server-on-error server) e nil))
                                       (invoke-restart r))))))
             (run-event-loop loop)))
      (close (%shard-listener shard))
      (loop for s being the hash-keys of (%shard-connections shard)
            do (close s :abort t))
      (close-event-loop loop))))

(defun start-event-loop-server (handler port &rest listener-args
                                &key (loops 1) on-error (error-output *error-output*)
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
on ERROR-OUTPUT; the loop goes on.  STOP-SERVER stops it."
  (check-type loops (integer 1 64))
  (let* ((args (loop for (k v) on listener-args by #'cddr
                     unless (member k '(:loops :on-error :error-output)) nconc (list k v)))
         (args (if (> loops 1) (list* :reuse-port t args) args))
         (first (apply #'make-listener port :blocking nil args))
         (port (socket-local-port first))
         (listeners (cons first (loop repeat (1- loops)
                                      collect (apply #'make-listener port :blocking nil args))))
         (server (%make-event-loop-server
                  :handler handler :port port
                  :on-error (or on-error (%default-on-error error-output)))))
    (dolist (l listeners)
      (let ((shard (%make-shard l)))
        (push shard (event-loop-server-shards server))
        (setf (%shard-thread shard)
              (mp:process-run-function "net event-loop server"
                                       (lambda () (%run-shard server shard))))))
    server))

(defun %stop-event-loop-server (server grace)
  (when (mp:with-lock ((event-loop-server-lock server))
          (shiftf (event-loop-server-stopping server) t))
    (return-from %stop-event-loop-server nil))
  (let ((shards (event-loop-server-shards server)))
    ;; Wait for every loop to be running, so that CALL-IN-LOOP reaches it.
    (loop repeat 500 until (every #'%shard-loop shards) do (sleep 0.01))
    (dolist (shard shards)
      (let ((l (%shard-listener shard)))
        ;; A loop whose thread has ended (its loop closed) closes nothing:
        ;; its listener is closed from here.
        (handler-case (call-in-loop (%shard-loop shard) (lambda () (close l)))
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
