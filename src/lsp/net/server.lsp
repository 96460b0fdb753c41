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
  "The port SERVER listens on (NIL for a Unix-domain server)."
  (socket-local-port (threaded-server-listener server)))

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
  "Stop SERVER: close its listener (no new connection is accepted), close
the connections still queued, let the running handlers finish for GRACE
seconds, then close their sockets (a handler blocked on one wakes with
SOCKET-CLOSED) and, a second later, interrupt the threads still busy; join
every thread.  Returns T once nothing of the server runs; a second call
returns NIL."
  (check-type grace (real 0))
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
