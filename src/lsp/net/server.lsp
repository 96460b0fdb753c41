;;;; server.lsp -- the threaded server helper: a listener served by a bounded pool of threads.

(in-package "NET")

(declaim (special *deadline*))                ; socket.lsp

;;; Handlers have one shape, here and on the event loop: a function of one
;;; argument, the connected stream socket; the helper closes it after.

(define-condition server-busy (network-error)
  ((server :initarg :server :reader server-busy-server
           :documentation "The server that refused the connection.")
   (peer :initarg :peer :initform nil :reader server-busy-peer
         :documentation "The refused client's address."))
  (:report (lambda (c s)
             (format s "~a: ~:[every thread busy and the queue full~;MAX-CONNECTIONS ~
connections open~]; connection from ~a refused"
                     (server-busy-server c)
                     (event-loop-server-p (server-busy-server c))
                     (let ((p (server-busy-peer c)))
                       (if p (address-string p) "a local client")))))
  (:documentation "Reported (not signalled in the caller) when a threaded
server with :ON-FULL :REFUSE closes a connection because its threads are
busy and its queue is full, or when an event-loop server closes one
because MAX-CONNECTIONS connections are open."))

(setf (documentation 'server-busy-server 'function)
      "The server of a SERVER-BUSY report."
      (documentation 'server-busy-peer 'function)
      "The address of the client a SERVER-BUSY report refused.")

(defvar *header-socket* nil
  "The connection whose header timeout the current thread's deadline is, or NIL.")

(defvar *server-shard* nil
  "The %SHARD of the event-loop server whose loop runs in this thread, or NIL.")

(defun header-received (socket)
  "Tell the server serving SOCKET (threaded or event-loop) that the
client's request header has arrived: the server's :HEADER-TIMEOUT no
longer applies to SOCKET.  A threaded server's handler calls it in its
thread, outside any WITH-DEADLINE of its own; an event-loop server's
handler or callbacks call it in the loop's thread.  Returns NIL; does
nothing for a socket no server times."
  (cond ((eq socket *header-socket*)
         (setf *header-socket* nil *deadline* nil))
        (*server-shard*
         (%forget-header *server-shard* socket)))
  nil)

;;; Accept rate: a token bucket of one second's worth

(defstruct (%rate (:constructor %make-rate (rate &aux (per-second (float rate 1d0)) (tokens per-second))))
  (per-second 0d0 :type double-float)
  (tokens 0d0 :type double-float)
  (stamp (get-internal-real-time)))

(defun %rate-wait (rate)
  "Take a token of RATE: 0 if there was one, else the seconds until there is."
  (let* ((now (get-internal-real-time))
         (ps (%rate-per-second rate))
         (tokens (min ps (+ (%rate-tokens rate)
                            (/ (* (- now (%rate-stamp rate)) ps)
                               internal-time-units-per-second)))))
    (setf (%rate-stamp rate) now)
    (if (>= tokens 1d0)
        (progn (setf (%rate-tokens rate) (- tokens 1d0)) 0)
        (progn (setf (%rate-tokens rate) tokens) (/ (- 1d0 tokens) ps)))))

(defun %rate-refund (rate)
  "Give back the token of an accept that found no connection."
  (setf (%rate-tokens rate) (min (%rate-per-second rate) (+ (%rate-tokens rate) 1d0))))

(defun %check-rate (accept-rate)
  (check-type accept-rate (or null (real (0))))
  (and accept-rate (%make-rate accept-rate)))

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

(defun %default-on-error (stream)
  (lambda (condition socket)
    (format stream "~&;; net server~@[ (~a)~]: ~a~%" socket condition)
    (finish-output stream)))

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

(defun server-port (server)
  "The port SERVER (threaded or event-loop) listens on (NIL for a Unix-domain server)."
  (if (event-loop-server-p server)
      (event-loop-server-port server)
      (socket-local-port (threaded-server-listener server))))

(defun server-statistics (server)
  "A plist of SERVER's counts so far.  A threaded server: :ACCEPTED
connections, :HANDLED (the handler returned or failed), :REFUSED (queue
full), :ERRORS (handlers that signalled), and now :ACTIVE (being handled),
:QUEUED and :THREADS.  An event-loop server: :ACCEPTED, :REFUSED
(MAX-CONNECTIONS open), :TIMED-OUT (closed by its TIMEOUT or
HEADER-TIMEOUT) and :ERRORS (conditions reported to ON-ERROR, these
included)."
  (when (event-loop-server-p server)
    (return-from server-statistics (%event-loop-server-statistics server)))
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
  ;; Stopping the pool resets the queued connections and wakes every
  ;; idle worker (and an acceptor waiting for room): their waits end.
  (unless (net-sys:pool-stop (threaded-server-pool server))
    (return-from stop-server nil))
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

(defun %event-loop-server-statistics (server)
  (let ((shards (event-loop-server-shards server)))
    (flet ((sum (f) (reduce #'+ shards :key f)))
      (list :accepted (sum #'%shard-accepted)
            :refused (sum #'%shard-refused)
            :timed-out (sum #'%shard-timed-out)
            :errors (sum #'%shard-errors)))))
