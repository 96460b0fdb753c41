;;;; server.lsp -- what the two server helpers share: the handler's shape, SERVER-BUSY, the header timeout's end, the accept rate, the default error report, and the calls on a server of either kind.

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

(eval-when (:compile-toplevel :load-toplevel :execute) ; special in later files too
  (defvar *header-socket* nil
    "The connection whose header timeout the current thread's deadline is, or NIL.")
  (defvar *server-shard* nil
    "The %SHARD of the event-loop server whose loop runs in this thread, or NIL."))

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

(defun %default-on-error (stream)
  (lambda (condition socket)
    (format stream "~&;; net server~@[ (~a)~]: ~a~%" socket condition)
    (finish-output stream)))

;;; The calls on a server of either kind: a method each, in
;;; server-threaded.lsp and server-loop.lsp.

(defgeneric server-port (server)
  (:documentation "The port SERVER (threaded or event-loop) listens on (NIL for a Unix-domain server)."))

(defgeneric server-statistics (server)
  (:documentation "A plist of SERVER's counts so far.  A threaded server: :ACCEPTED
connections, :HANDLED (the handler returned or failed), :REFUSED (queue
full), :ERRORS (handlers that signalled), and now :ACTIVE (being handled),
:QUEUED and :THREADS.  An event-loop server: :ACCEPTED, :REFUSED
(MAX-CONNECTIONS open), :TIMED-OUT (closed by its TIMEOUT or
HEADER-TIMEOUT) and :ERRORS (conditions reported to ON-ERROR, these
included)."))

(defgeneric %stop-server (server grace)
  (:documentation "STOP-SERVER's work for SERVER's kind."))

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
  (%stop-server server grace))
