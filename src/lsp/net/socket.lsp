;;;; socket.lsp -- CLOS sockets: creation, connection, data, close.

(in-package "NET")

;;; Classes along two axes: family and role.  A concrete socket is an
;;; instance of one class per axis (see %SOCKET-CLASS), so methods can
;;; specialise on either.

(defclass socket ()
  ((handle :initarg :handle :reader socket-handle)
   (address-family :initarg :address-family :reader socket-address-family
                   :documentation "One of :IPV4, :IPV6, :LOCAL.")
   (type :initarg :type :reader socket-type
         :documentation "One of :STREAM, :DATAGRAM, :SEQPACKET, :RAW.")
   (blocking :initarg :blocking :initform t :accessor socket-blocking-p
             :documentation "NIL: calls that would block return NIL at once.")
   (timeout :initarg :timeout :initform nil :accessor socket-timeout-of
            :documentation "Default timeout of blocking calls, in seconds; NIL waits forever."))
  (:documentation "A socket.  Every socket is also an instance of a family
class (INET-SOCKET, INET6-SOCKET, LOCAL-SOCKET) and of a role class
(STREAM-SOCKET, DATAGRAM-SOCKET, PASSIVE-SOCKET)."))

(setf (documentation 'socket-blocking-p 'function)
      "True if calls on the socket wait; SETF-able.  A non-blocking socket's calls return NIL where they would block."
      (documentation 'socket-timeout-of 'function)
      "The default timeout of the socket's blocking calls, in seconds (a real), or NIL to wait forever; SETF-able."
      (documentation 'socket-address-family 'function)
      "The address family of a socket: :IPV4, :IPV6 or :LOCAL."
      (documentation 'socket-type 'function)
      "The type of a socket: :STREAM, :DATAGRAM, :SEQPACKET or :RAW.")

(defclass inet-socket (socket) ()
  (:documentation "A socket of the IPv4 family."))
(defclass inet6-socket (socket) ()
  (:documentation "A socket of the IPv6 family."))
(defclass local-socket (socket) ()
  (:documentation "A Unix-domain socket."))

(defclass stream-socket (socket
                         gray:fundamental-binary-input-stream
                         gray:fundamental-binary-output-stream
                         gray:fundamental-character-input-stream
                         gray:fundamental-character-output-stream)
  ((stream-state :initform nil
                 :documentation "Buffers and codec of the stream (stream.lsp), made on first use."))
  (:documentation "A connection-oriented socket (TCP, Unix stream, seqpacket);
once connected it is a bivalent stream."))
(defclass datagram-socket (socket) ()
  (:documentation "A connectionless socket (UDP, Unix datagram, raw)."))
(defclass passive-socket (socket) ()
  (:documentation "A listening socket, which accepts connections."))

(macrolet ((define-concrete (&rest specs)
             `(progn
                ,@(loop for (name family role) in specs
                        collect `(defclass ,name (,family ,role) ())))))
  (define-concrete
    (inet-stream-socket inet-socket stream-socket)
    (inet-datagram-socket inet-socket datagram-socket)
    (inet-passive-socket inet-socket passive-socket)
    (inet6-stream-socket inet6-socket stream-socket)
    (inet6-datagram-socket inet6-socket datagram-socket)
    (inet6-passive-socket inet6-socket passive-socket)
    (local-stream-socket local-socket stream-socket)
    (local-datagram-socket local-socket datagram-socket)
    (local-passive-socket local-socket passive-socket)))

(defun %socket-class (family role)
  (ecase family
    (:ipv4 (ecase role (:stream 'inet-stream-socket) (:datagram 'inet-datagram-socket)
             (:passive 'inet-passive-socket)))
    (:ipv6 (ecase role (:stream 'inet6-stream-socket) (:datagram 'inet6-datagram-socket)
             (:passive 'inet6-passive-socket)))
    (:local (ecase role (:stream 'local-stream-socket) (:datagram 'local-datagram-socket)
              (:passive 'local-passive-socket)))))

(defun %role-of-type (type)
  (ecase type ((:stream :seqpacket) :stream) ((:datagram :raw) :datagram)))

(defun %family-number (family)
  (ecase family
    (:ipv4 net-sys:+af-inet+) (:ipv6 net-sys:+af-inet6+) (:local net-sys:+af-unix+)))

(defun %type-number (type)
  (ecase type
    (:stream net-sys:+sock-stream+) (:datagram net-sys:+sock-dgram+)
    (:seqpacket net-sys:+sock-seqpacket+) (:raw net-sys:+sock-raw+)))

(defmethod print-object ((s socket) stream)
  (print-unreadable-object (s stream :identity t)
    (let ((fd (net-sys:handle-fd (socket-handle s))))
      (format stream "~:@(~a~) ~:[closed~;fd ~:*~d~]" (class-name (class-of s)) fd))))

;;; Deadlines

(defvar *deadline* nil
  "The absolute deadline (NET-SYS:NOW scale) of the innermost WITH-DEADLINE, or NIL.")

(defun %seconds->ns (seconds)
  (check-type seconds (real 0))
  (min most-positive-fixnum (round (* seconds 1000000000))))

(defmacro with-deadline ((seconds) &body body)
  "Run BODY with every blocking call in it, in this thread, bounded by one
deadline SECONDS from now; a call still waiting then signals SOCKET-TIMEOUT.
Nested deadlines take the earlier."
  (let ((d (gensym "DEADLINE")))
    `(let* ((,d (+ (net-sys:now) (%seconds->ns ,seconds)))
            (*deadline* (if *deadline* (min *deadline* ,d) ,d)))
       ,@body)))

(declaim (inline %deadline))
(defun %deadline (socket timeout)
  "The deadline argument of a primitive: -1 non-blocking, NIL forever, or
the earliest of TIMEOUT (or the socket's default) and *DEADLINE*."
  (if (not (socket-blocking-p socket))
      -1
      (let ((timeout (or timeout (socket-timeout-of socket))))
        (if timeout
            (let ((d (+ (net-sys:now) (%seconds->ns timeout))))
              (if *deadline* (min d *deadline*) d))
            *deadline*))))

;;; Creation

(defun make-socket (&rest options &key (address-family :ipv4) (type :stream)
                                       (protocol :default) (blocking t) timeout
                                       external-format &allow-other-keys)
  "Create a socket of ADDRESS-FAMILY (:IPV4, :IPV6 or :LOCAL) and TYPE
(:STREAM, :DATAGRAM, :SEQPACKET or :RAW).  PROTOCOL is :DEFAULT or a protocol
number.  BLOCKING NIL makes calls return NIL where they would block; TIMEOUT
is the default timeout of blocking calls, in seconds.  The descriptor is
non-blocking and close-on-exec underneath in every case."
  (declare (ignore options external-format))
  (let* ((proto (if (eq protocol :default) 0 protocol))
         (handle (net-sys:socket-open (%family-number address-family)
                                      (%type-number type) proto)))
    (make-instance (%socket-class address-family (%role-of-type type))
                   :handle handle :address-family address-family :type type
                   :blocking blocking :timeout timeout)))

(defun %wrap-accepted (listener handle)
  (make-instance (%socket-class (socket-address-family listener) :stream)
                 :handle handle :address-family (socket-address-family listener)
                 :type (socket-type listener)
                 :timeout (socket-timeout-of listener)))

;;; Addresses of calls

(defun %sockaddr-args (socket address)
  "The (octets scope) the C glue takes for ADDRESS on SOCKET's family."
  (let ((a (ensure-address address)))
    (when (and (eq (socket-address-family socket) :ipv6) (ipv4-address-p a))
      (error 'invalid-address :text address :reason "an IPv4 address on an IPv6 socket"))
    (when (and (eq (socket-address-family socket) :ipv4) (ipv6-address-p a))
      (error 'invalid-address :text address :reason "an IPv6 address on an IPv4 socket"))
    (values (address-octets a) (if (ipv6-address-p a) (address-scope-id a) 0))))

(defun %check-port (port)
  (unless (typep port '(integer 0 65535))
    (error 'type-error :datum port :expected-type '(integer 0 65535)))
  port)

(defun bind-address (socket address &key (port 0))
  "Bind SOCKET to ADDRESS (an address designator) and PORT (0: any free
port).  Returns SOCKET."
  (multiple-value-bind (octets scope) (%sockaddr-args socket address)
    (net-sys:bind (socket-handle socket) octets (%check-port port) scope socket))
  socket)

(defun listen-on (socket &key (backlog :default))
  "Make SOCKET a passive socket accepting connections, with BACKLOG
pending connections at most (:DEFAULT: the system's maximum).  Returns SOCKET,
now a PASSIVE-SOCKET."
  (net-sys:listen-socket (socket-handle socket)
                         (if (eq backlog :default) net-sys:+somaxconn+ backlog)
                         socket)
  (change-class socket (%socket-class (socket-address-family socket) :passive)))

(defun %peer-values (list)
  "(octets port scope) -> address and port, or NIL NIL."
  (if list
      (destructuring-bind (octets port scope) list
        (values (%make-inet-address octets scope) port))
      (values nil nil)))

(defun accept-connection (socket &key timeout)
  "Accept a connection on passive SOCKET.  Returns the new connected socket,
the peer's address and port; NIL if SOCKET is non-blocking and no connection
is pending.  Signals SOCKET-TIMEOUT after TIMEOUT seconds."
  (let ((r (net-sys:accept (socket-handle socket) (%deadline socket timeout) socket)))
    (when r
      (multiple-value-bind (address port) (%peer-values (cdr r))
        (values (%wrap-accepted socket (car r)) address port)))))

(defun connect (socket address &key (port 0) timeout)
  "Connect SOCKET to ADDRESS and PORT.  Waits for the connection to be made
(at most TIMEOUT seconds, then SOCKET-TIMEOUT); a non-blocking socket returns
NIL at once and the connection's completion shows as writability.  Returns
SOCKET when connected."
  (multiple-value-bind (octets scope) (%sockaddr-args socket address)
    (and (net-sys:connect (socket-handle socket) octets (%check-port port) scope
                          (%deadline socket timeout) socket)
         socket)))

(defun shutdown (socket direction)
  "Shut down DIRECTION of SOCKET's connection: :INPUT, :OUTPUT (the peer
reads end of file and can still send) or :BOTH."
  (net-sys:shutdown (socket-handle socket)
                    (ecase direction (:input 0) (:output 1) (:both 2))
                    socket)
  socket)

(defmethod close ((socket socket) &key abort)
  "Close SOCKET.  Idempotent; a thread blocked on SOCKET wakes with
SOCKET-CLOSED.  Returns T if this call closed it."
  (declare (ignore abort))
  (net-sys:handle-close (socket-handle socket)))

(defun socket-open-p (socket)
  "True until SOCKET is closed."
  (net-sys:handle-open-p (socket-handle socket)))

(defun socket-fd (socket)
  "The file descriptor of SOCKET, or NIL once it is closed."
  (net-sys:handle-fd (socket-handle socket)))

(defmethod gray:open-stream-p ((socket stream-socket))
  (socket-open-p socket))

;;; Data

(defun %flags (out-of-band peek)
  (logior (if out-of-band net-sys:+msg-oob+ 0) (if peek net-sys:+msg-peek+ 0)))

(defun send (socket buffer &key (start 0) end out-of-band timeout)
  "Send BUFFER[START,END) (an (unsigned-byte 8) vector, used in place) on
SOCKET.  Blocking: sends it all and returns the count.  Non-blocking: returns
the count sent now, maybe partial, or NIL if none could be."
  (let* ((handle (socket-handle socket))
         (flags (%flags out-of-band nil))
         (deadline (%deadline socket timeout))
         (end (or end (length buffer)))
         (n (net-sys:send handle buffer start end flags deadline socket)))
    (if (or (null n) (not (socket-blocking-p socket)))
        n
        (loop with pos of-type fixnum = (+ start n)
              while (< pos end)
              do (incf pos (net-sys:send handle buffer pos end flags deadline socket))
              finally (return (- pos start))))))

(defun receive (socket buffer &key (start 0) end out-of-band peek wait-all timeout)
  "Receive into BUFFER[START,END) (an (unsigned-byte 8) vector, filled in
place) from SOCKET.  Returns the count received, 0 at end of file, NIL if
SOCKET is non-blocking and nothing is there.  WAIT-ALL waits until the range
is full or the peer ends the stream."
  (let* ((handle (socket-handle socket))
         (flags (%flags out-of-band peek))
         (deadline (%deadline socket timeout))
         (end (or end (length buffer)))
         (n (net-sys:recv handle buffer start end flags deadline socket)))
    (if (or (not wait-all) (null n) (zerop n))
        n
        (loop with pos of-type fixnum = (+ start n)
              while (< pos end)
              do (let ((k (net-sys:recv handle buffer pos end flags deadline socket)))
                   (when (or (null k) (zerop k)) (loop-finish))
                   (incf pos k))
              finally (return (- pos start))))))

;;; Names

(defun socket-local-address (socket)
  "The address SOCKET is bound to; second value its port."
  (%peer-values (net-sys:socket-name (socket-handle socket) nil socket)))

(defun socket-local-port (socket)
  "The port SOCKET is bound to."
  (nth-value 1 (socket-local-address socket)))

(defun socket-remote-address (socket)
  "The address of SOCKET's peer; second value its port."
  (%peer-values (net-sys:socket-name (socket-handle socket) t socket)))

(defun socket-remote-port (socket)
  "The port of SOCKET's peer."
  (nth-value 1 (socket-remote-address socket)))

(defmacro with-open-socket ((var &rest make-socket-args) &body body)
  "Bind VAR to a socket made by MAKE-SOCKET with MAKE-SOCKET-ARGS, run BODY,
and close the socket however BODY exits."
  `(let ((,var (make-socket ,@make-socket-args)))
     (unwind-protect (progn ,@body)
       (close ,var))))

(defun finalized-socket-count ()
  "How many sockets were closed by the garbage collector because they became
garbage while still open.  Each is also reported on standard error: close
sockets explicitly (WITH-OPEN-SOCKET does)."
  (net-sys:finalized-count))

(provide :net)
