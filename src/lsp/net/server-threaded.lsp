;;;; server-threaded.lsp -- the threaded server helper: a listener served by a bounded pool of threads.

(in-package "NET")

(defstruct (threaded-server (:constructor %make-threaded-server)
                            (:print-object %print-threaded-server))
  "A listener served by a bounded pool of threads (START-THREADED-SERVER)."
  listener handler (threads 16) (queue-limit 64) (on-full :refuse) timeout on-error
  header-timeout accept-rate
  pool                                  ; NET-SYS:POOL-NEW: the queue, the counts, the waits
  ;; One (process . socket) per worker, the socket it serves or NIL; only
  ;; the acceptor adds to it.
  (workers '())
  (timeout-ns nil)                      ; TIMEOUT in nanoseconds
  acceptor (stopping nil))

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

;;; Workers
;;;
;;; The acceptor hands each accepted descriptor to the workers through a
;;; queue in C (NET-SYS:POOL-ACCEPT, POOL-TAKE): a pthread mutex and futexes,
;;; one idle worker woken per connection.  ECL's own locks and condition
;;; variables wake a waiting thread with a signal (pthread_kill, sigsuspend,
;;; sched_yield), and each taking of a lock found held is dear: the hand-off
;;; through them bounded the accept rate.

(defun %serve-one (server socket phase)
  "Serve SOCKET with the server's handler, then close it.  PHASE is the
worker's cell whose car tells the worker's one error handler (%WORKER)
what an error now means: :SERVING, the handler failed (reported, once
unwound, as by HANDLER-CASE); :CLOSING, the orderly close failed (then a
reset).  No handler is set up per connection: a HANDLER-CASE conses its
closures and cluster each time."
  (unwind-protect
       (let ((failure
               (catch '%connection-failed
                 (setf (car phase) :serving)
                 (let* ((header (threaded-server-header-timeout server))
                        (*header-socket* (and header socket))
                        (*deadline* (if header
                                        (%ns-from-now (%seconds->ns header))
                                        *deadline*)))
                   (%set-accepted-timeout socket (threaded-server-timeout server)
                                          (threaded-server-timeout-ns server))
                   (funcall (threaded-server-handler server) socket))
                 nil)))
         ;; Reported before the close, so that whoever sees the close can
         ;; already see the report.
         (when failure
           (net-sys:pool-error (threaded-server-pool server))
           (%report-server-error server failure socket)))
    ;; An orderly close (the client reads end of file), even after an
    ;; error; reset only when that fails.
    (setf (car phase) :closing)
    (unless (catch '%close-failed (close socket) t)
      (setf (car phase) nil)
      (close socket :abort t))
    (setf (car phase) nil)))

(defun %set-accepted-timeout (socket timeout ns)
  "(SETF SOCKET-TIMEOUT-OF) of TIMEOUT (NS in nanoseconds) on SOCKET, a
socket accepted by the server (of net's classes, no methods of its own),
without the generic function's dispatch per connection."
  (setf (slot-value socket 'timeout) timeout)
  (si:instance-set socket (svref (%slot-locations socket) 3) ns))

(defun %worker (server cell)
  "The body of a worker thread: take connections and serve them until the
pool stops.  CELL is the worker's (process . socket): the socket being
served, for STOP-SERVER to close."
  (let ((pool (threaded-server-pool server))
        (listener (threaded-server-listener server))
        (served nil)
        (phase (list nil)))
    ;; The worker's one handler, for every connection it serves: an error
    ;; not handled inside the server's handler ends that connection's
    ;; service (%SERVE-ONE reports it), one in its orderly close resets it.
    (handler-bind ((error (lambda (e)
                            (case (car phase)
                              (:serving (setf (car phase) nil)
                                        (throw '%connection-failed e))
                              (:closing (setf (car phase) nil)
                                        (throw '%close-failed nil))))))
      (catch '%stop-worker
        ;; The connection just served is counted in the same call that waits
        ;; for the next; one thrown out of its handler, in the cleanup.
        (loop for handle = (net-sys:pool-take pool served)
              while handle
              do (let ((s (%wrap-accepted listener handle))
                       (ok nil))
                   (setf served nil
                         (cdr cell) s)
                   (unwind-protect (progn (%serve-one server s phase) (setf ok t))
                     (setf (cdr cell) nil)
                     (unless ok (net-sys:pool-done pool)))
                   (setf served t)))))))

(defun %start-worker (server)
  "Start a worker thread (the pool has counted it).  In the acceptor."
  (let ((cell (cons nil nil)))
    (setf (car cell) (mp:process-run-function "net server worker"
                                              (lambda () (%worker server cell))))
    (push cell (threaded-server-workers server))))

;;; The acceptor

(defun %refuse (server socket peer)
  "Close SOCKET, refused because the queue is full; PEER is the (octets
port scope) list of the glue, or :STOPPING when the server stops (then
nothing is reported)."
  (unwind-protect
       (unless (eq peer :stopping)
         ;; Reported before the reset, so whoever sees the reset can
         ;; already see the report.
         (%report-server-error server (make-condition 'server-busy :server server
                                                               :peer (%peer-values peer))
                               nil)
         (when (functionp (threaded-server-on-full server))
           (ignore-errors (funcall (threaded-server-on-full server) socket))))
    (close socket :abort t)))

(defun %acceptor (server)
  (let ((listener (threaded-server-listener server))
        (rate (threaded-server-accept-rate server))
        (pool (threaded-server-pool server))
        (wait-room (eq (threaded-server-on-full server) :wait))
        (spare (net-sys:handle-spare)))
    ;; The handlers are set up again only after an error: not per accept.
    (loop until (threaded-server-stopping server)
          do (handler-case
                 (loop until (threaded-server-stopping server)
                       do (when rate
                            (loop for wait = (%rate-wait rate)
                                  while (and (plusp wait) (not (threaded-server-stopping server)))
                                  do (sleep wait)))
                          ;; :ON-FULL :WAIT: no accept until the queue has room.
                          (when (and wait-room (not (net-sys:pool-wait-room pool)))
                            (return-from %acceptor))
                          (let ((r (net-sys:pool-accept pool (socket-handle listener)
                                                        (%deadline listener nil) listener
                                                        (not wait-room) spare)))
                            (cond ((eql r 1) (%start-worker server))
                                  ((consp r)
                                   ;; SPARE holds the refused connection.
                                   (let ((s (%wrap-accepted listener spare)))
                                     (setf spare (net-sys:handle-spare))
                                     (%refuse server s (if (car r) (cdr r) :stopping)))))))
               (socket-closed () (return))
               (error (e)
                 ;; Out of descriptors and the like: say so, breathe, go on.
                 (unless (threaded-server-stopping server)
                   (%report-server-error server e nil)
                   (sleep 0.1)))))))

;;; The API

(defun start-threaded-server (handler port &rest listener-args
                              &key (threads 16) (queue 64) (on-full :refuse) (timeout 300)
                                header-timeout accept-rate
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
the system's backlog): THREADS plus QUEUE is the cap on concurrent
connections.  TIMEOUT (300 seconds; NIL: none) is each connection's default
timeout (SOCKET-TIMEOUT-OF), so a silent client cannot hold a thread
forever.  HEADER-TIMEOUT (NIL: none) bounds, in seconds from the accept,
every blocking call of the handler until it calls HEADER-RECEIVED: a client
that sends its request a byte at a time (slowloris) meets SOCKET-TIMEOUT
then.  ACCEPT-RATE (NIL: no limit) is the most connections accepted per
second, in bursts of at most one second's worth; connections past it wait
in the system's backlog.

An error in HANDLER is contained: the connection is closed, the server goes
on, and ON-ERROR is called with the condition and the socket (NIL for
errors of the acceptor and SERVER-BUSY reports); by default these are
printed on ERROR-OUTPUT (the caller's *ERROR-OUTPUT*).  Stop the server with
STOP-SERVER."
  (check-type threads (integer 1 200))
  (check-type queue (integer 0 *))
  (check-type on-full (or (member :refuse :wait) function))
  (%check-timeout timeout)
  (%check-timeout header-timeout)
  (let* ((rate (%check-rate accept-rate))
         (listener (or listener
                       (apply #'make-listener port
                              (loop for (k v) on listener-args by #'cddr
                                    unless (member k '(:threads :queue :on-full :timeout
                                                       :header-timeout :accept-rate
                                                       :on-error :error-output :listener))
                                      nconc (list k v)))))
         (server (%make-threaded-server
                  :listener listener :handler handler :threads threads :queue-limit queue
                  :on-full on-full :timeout timeout :header-timeout header-timeout
                  :accept-rate rate :timeout-ns (and timeout (%seconds->ns timeout))
                  :pool (net-sys:pool-new threads (min queue 536870911))
                  :on-error (or on-error (%default-on-error error-output)))))
    (setf (threaded-server-acceptor server)
          (mp:process-run-function "net server acceptor" (lambda () (%acceptor server))))
    server))

(defmethod server-port ((server threaded-server))
  (socket-local-port (threaded-server-listener server)))

(defmethod server-statistics ((server threaded-server))
  (destructuring-bind (accepted handled refused active queued started errors)
      (net-sys:pool-statistics (threaded-server-pool server))
    (list :accepted accepted
          :handled handled
          :refused refused
          :errors errors
          :active active
          :queued queued
          :threads started)))

(defun %wait-idle (server seconds)
  "Wait until no handler runs, at most SECONDS; true if none does."
  (let ((end (+ (get-internal-real-time) (* seconds internal-time-units-per-second))))
    (loop (when (zerop (fourth (net-sys:pool-statistics (threaded-server-pool server))))
            (return t))
          (when (>= (get-internal-real-time) end) (return nil))
          (sleep 0.01))))

(defmethod %stop-server ((server threaded-server) grace)
  ;; Stopping the pool resets the queued connections and wakes every
  ;; idle worker (and an acceptor waiting for room): their waits end.
  (unless (net-sys:pool-stop (threaded-server-pool server))
    (return-from %stop-server nil))
  (setf (threaded-server-stopping server) t)
  (close (threaded-server-listener server))
  (mp:process-join (threaded-server-acceptor server))
  (let ((workers (threaded-server-workers server)))
    (unless (%wait-idle server grace)
      (dolist (w workers)
        (let ((s (cdr w)))
          (when s (ignore-errors (close s :abort t)))))
      (unless (%wait-idle server 1)
        (dolist (w workers)
          (when (mp:process-active-p (car w))
            (mp:interrupt-process (car w) (lambda () (throw '%stop-worker nil)))))))
    (dolist (w workers)
      (mp:process-join (car w))))
  t)
