;;;; hunchentoot.lsp -- what Hunchentoot needs beyond usocket and cl+ssl to run on net.
;;;
;;; Hunchentoot 1.2.38 sets each connection's timeouts in SET-TIMEOUTS, on
;;; ECL with sb-bsd-sockets' SO_RCVTIMEO and SO_SNDTIMEO accessors applied
;;; to USOCKET:SOCKET, which is a net socket once net-usocket is loaded: the
;;; call would fail on every connection.  A net socket has one timeout for
;;; every blocking call (NET:SOCKET-TIMEOUT-OF), its stream's included, and
;;; it bounds a TLS stream's waits too (net-ssl).  SET-TIMEOUTS lives in a
;;; file of its own, so its caller goes through its symbol and this
;;; definition replaces it.  Hunchentoot also needs its address texts for
;;; IPv6 (below).

(defpackage "NET-HUNCHENTOOT"
  (:use "CL")
  (:export "POOL-TASKMASTER")
  (:documentation "Hunchentoot over net: loading the system adapts
Hunchentoot to net's sockets; POOL-TASKMASTER serves an acceptor's
connections with net's thread pool."))

(in-package "HUNCHENTOOT")

(defun set-timeouts (usocket read-timeout write-timeout)
  "Bound every blocking call on USOCKET's net socket: its timeout
(NET:SOCKET-TIMEOUT-OF) becomes the larger of READ-TIMEOUT and
WRITE-TIMEOUT (seconds), since net has one timeout for reads and writes;
when both are NIL it is left as it is."
  (let ((timeout (if (and read-timeout write-timeout)
                     (max read-timeout write-timeout)
                     (or read-timeout write-timeout))))
    (when timeout
      (setf (net:socket-timeout-of (usocket:socket usocket)) timeout))))

;;; Hunchentoot 1.2.38 turns a peer's or its own address into text only when
;;; it has 4 octets (its IPv6 case is commented out), so every connection
;;; of an acceptor listening on IPv6 would fail.  These take the text from
;;; net: IPv4 dotted, IPv6 in RFC 5952 form, an IPv4-mapped address as
;;; IPv4.  They live in compat.lisp, called from acceptor.lisp through
;;; their symbols.

(defun %address-text (address)
  (net:address-string (if (and (net:ipv6-address-p address) (net:address-v4-mapped-p address))
                          (net:ipv6-to-ipv4 address)
                          address)))

(defun get-peer-address-and-port (socket)
  "The peer's address of usocket SOCKET as text (dotted IPv4, or IPv6 as
RFC 5952 writes it) and its port."
  (let ((s (usocket:socket socket)))
    (values (%address-text (net:socket-remote-address s)) (net:socket-remote-port s))))

(defun get-local-address-and-port (socket)
  "The local address of usocket SOCKET as text (dotted IPv4, or IPv6 as
RFC 5952 writes it) and its port."
  (let ((s (usocket:socket socket)))
    (values (%address-text (net:socket-local-address s)) (net:socket-local-port s))))

;;; Hunchentoot ends every connection with (CLOSE STREAM :ABORT T) after
;;; FINISH-OUTPUT, meaning "closed, whatever state it is in"; on net,
;;; closing a stream socket with :ABORT resets the connection (SO_LINGER 0),
;;; and a client still reading the end of the reply (a chunked body, say)
;;; would see CONNECTION-RESET instead of it.  While Hunchentoot processes a
;;; connection, such a close is therefore an orderly one.

(defvar *close-in-order* nil
  "True while Hunchentoot processes a connection: CLOSE with :ABORT on a
TCP socket of net then closes it in order instead of resetting it.")

(defmethod process-connection :around ((acceptor acceptor) (socket usocket:stream-usocket))
  (let ((*close-in-order* t))
    (call-next-method)))

(macrolet ((close-in-order (class)
             `(defmethod net:close :around ((socket ,class) &key abort)
                (if (and abort *close-in-order*)
                    (call-next-method socket :abort nil)
                    (call-next-method)))))
  (close-in-order net::inet-stream-socket)
  (close-in-order net::inet6-stream-socket))

;;; A taskmaster on net's thread pool (its accessors stay in this package)

(defclass net-hunchentoot:pool-taskmaster (taskmaster)
  ((threads :initarg :threads :initform 16 :reader pool-taskmaster-threads
            :documentation "The most threads serving connections at once.")
   (queue :initarg :queue :initform 64 :reader pool-taskmaster-queue
          :documentation "The most accepted connections waiting for a thread.")
   (server :initform nil :accessor pool-taskmaster-server
           :documentation "The NET:THREADED-SERVER on the acceptor's listener, while started."))
  (:documentation "A taskmaster that serves connections with net's threaded
server (NET:START-THREADED-SERVER) on the acceptor's listening socket: a
pool of at most THREADS threads, started as connections need them and
reused, where Hunchentoot's default taskmaster starts a thread for every
connection; past QUEUE waiting connections the listener stops accepting
(clients wait in the system's backlog).  Give it as the acceptor's
:TASKMASTER."))

(defmethod execute-acceptor ((taskmaster net-hunchentoot:pool-taskmaster))
  (let ((acceptor (taskmaster-acceptor taskmaster)))
    (setf (pool-taskmaster-server taskmaster)
          (net:start-threaded-server
           (lambda (socket)
             (unless (acceptor-shutdown-p acceptor) ; STOP's wake-up connection
               (handle-incoming-connection
                taskmaster (usocket::make-stream-socket :socket socket :stream socket))))
           0 :listener (usocket:socket (acceptor-listen-socket acceptor))
             :threads (pool-taskmaster-threads taskmaster)
             :queue (pool-taskmaster-queue taskmaster)
             :on-full :wait))))

(defmethod handle-incoming-connection ((taskmaster net-hunchentoot:pool-taskmaster) socket)
  (process-connection (taskmaster-acceptor taskmaster) socket))

(defmethod shutdown ((taskmaster net-hunchentoot:pool-taskmaster))
  ;; Stops the pool (it closes the listener, which STOP then closes again).
  (let ((server (pool-taskmaster-server taskmaster)))
    (when server
      (setf (pool-taskmaster-server taskmaster) nil)
      (net:stop-server server)))
  taskmaster)
