;;;; socket.lsp -- CLOS sockets: classes, deadlines, creation, connection, close,
;;;; names and descriptors.  Their data transfers are in transfer.lsp.

(in-package "NET")

;;; Classes along two axes: family and role.  A concrete socket is an
;;; instance of one class per axis (see %SOCKET-CLASS), so methods can
;;; specialise on either.

(defclass socket ()
  ((handle :initarg :handle)
   (address-family :initarg :address-family :reader socket-address-family
                   :documentation "One of :IPV4, :IPV6, :LOCAL.")
   (type :initarg :type :reader socket-type
         :documentation "One of :STREAM, :DATAGRAM, :SEQPACKET, :RAW.")
   (blocking :initarg :blocking :initform t :accessor socket-blocking-p
             :documentation "NIL: calls that would block return NIL at once.")
   (timeout :initarg :timeout :initform nil :accessor socket-timeout-of
            :documentation "Default timeout of blocking calls, in seconds; NIL waits forever.")
   (external-format :initarg :external-format :initform nil
                    :documentation "The external format the socket's stream starts with, and
the one sockets accepted from it start with; NIL means :UTF-8.")
   (buffering :initarg :buffering :initform :full
              :documentation "The stream's output buffering, :FULL, :LINE or :NONE;
sockets accepted from this one start with it (see SOCKET-BUFFERING).")
   (timeout-ns :initform nil :reader %socket-timeout-ns
               :documentation "TIMEOUT in nanoseconds, a fixnum, kept in step with it so
that a call does not redo the arithmetic (nor cons a float) each time.")
   (reset :initform nil
          :documentation "The code of the CONNECTION-RESET signalled on the socket, or
NIL.  The kernel reports a reset to one call and end of file to the next
ones; a later read signals the reset again instead (%CHECK-RESET)."))
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

;;; A non-socket given to a socket call is a TYPE-ERROR, not a missing
;;; method.  (Through NO-APPLICABLE-METHOD: a catch-all method on the readers
;;; would defeat ECL's dispatch cache on every call.)
(macrolet ((refuse-non-sockets (&rest readers)
             `(progn
                ,@(loop for r in readers
                        collect `(defmethod no-applicable-method ((gf (eql #',r)) &rest args)
                                   (error 'type-error :datum (car (last args))
                                                      :expected-type 'socket))))))
  (refuse-non-sockets socket-address-family socket-type socket-blocking-p socket-timeout-of
                      (setf socket-timeout-of) (setf socket-blocking-p)))

;;; The per-call path reads a socket's handle, blocking flag and timeout
;;; with SI:INSTANCE-REF at locations cached per class: no generic dispatch,
;;; nothing consed, and the cache lookup is also the type check.

(eval-when (:compile-toplevel :load-toplevel :execute) ; special in later files too
  (defvar *slot-locations* nil
    "A list of #(class handle blocking timeout-ns stream-state address-family
accept-prototype reset), the locations of those slots in instances of each
socket class met so far."))
(defvar *slot-locations-lock* (mp:make-lock :name "net slot locations"))

(defun %slot-locations-slowly (socket)
  "The entry of *SLOT-LOCATIONS* for SOCKET's class, made now; a
TYPE-ERROR if SOCKET is no socket."
  (unless (typep socket 'socket)
    (error 'type-error :datum socket :expected-type 'socket))
  (let* ((class (class-of socket)) (slots (clos:class-slots class)))
    (flet ((loc (name)
             (let ((s (find name slots :key #'clos:slot-definition-name)))
               (and s (clos:slot-definition-location s)))))
      (let ((entry (vector class (loc 'handle) (loc 'blocking) (loc 'timeout-ns)
                           (loc 'stream-state) (loc 'address-family)
                           (loc 'accept-prototype) (loc 'reset))))
        (mp:with-lock (*slot-locations-lock*)
          (push entry *slot-locations*))
        entry))))

(net-sys:%defun-inline %slot-locations (socket)
  (declare (optimize (speed 3) (safety 0)))
  (if (si:instancep socket)
      (let ((class (net-sys:%instance-class socket)))
        (dolist (e *slot-locations* (%slot-locations-slowly socket))
          (when (eq (svref e 0) class) (return e))))
      (%slot-locations-slowly socket)))

(defmacro %slot-at (socket entry index)
  "The slot of SOCKET at the location ENTRY (from %SLOT-LOCATIONS) gives
for INDEX: one load, ENTRY being also the type check."
  `(net-sys:%instance-slot ,socket (the fixnum (svref ,entry ,index))))

;;; ECL compiles every call of a DEFSTRUCT reader as a full call through
;;; ECL_FUNCTION_DISPATCH, even in the defining file, while
;;; SI:STRUCTURE-REF is one slot load at safety 0 and a checked C call at
;;; safety 2.  %INLINE-READERS gives the per-event structures' readers
;;; compiler macros that say so, at compile time only: net's own files use
;;; them, code compiled by users against net.fas does not.  ECL 21.2.1
;;; miscompiles SI:STRUCTURE-REF at safety 1, where the reader is kept.

(defmacro %inline-readers (name)
  "After (DEFSTRUCT NAME ...): compile NAME's slot readers, in net's files
compiled after this form, as SI:STRUCTURE-REF of the slot (with the
slot's type when it is a fixnum)."
  `(eval-when (:compile-toplevel)
     ,@(loop for (nil nil type nil index reader)
               in (si::get-sysprop name 'si::structure-slot-descriptions)
             when reader
               collect `(define-compiler-macro ,reader (&whole form object &environment env)
                          (if (eql (c::cmp-env-optimization 'safety env) 1)
                              form
                              (list 'the ',(if (subtypep type 'fixnum) 'fixnum t)
                                    (list 'si:structure-ref object '',name ,index)))))))

(net-sys:%defun-inline socket-handle (socket)
  "The handle of SOCKET (NET-SYS's object owning the descriptor)."
  (%slot-at socket (%slot-locations socket) 1))

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
(defclass passive-socket (socket)
  ((accept-prototype :initform nil
                     :documentation "The socket that accepted connections are copies of
(%WRAP-ACCEPTED), made on the first accept; NIL again when the timeout or
buffering that accepted sockets inherit changes."))
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

(defun %check-timeout (timeout)
  (unless (typep timeout '(or null (real 0)))
    (error 'type-error :datum timeout :expected-type '(or null (real 0))))
  timeout)

(defmethod initialize-instance :after ((s socket) &key timeout &allow-other-keys)
  (setf (slot-value s 'timeout-ns) (and (%check-timeout timeout) (%seconds->ns timeout))))

(defmethod (setf socket-timeout-of) :before (timeout (s socket))
  (setf (slot-value s 'timeout-ns) (and (%check-timeout timeout) (%seconds->ns timeout)))
  (when (typep s 'passive-socket)
    (setf (slot-value s 'accept-prototype) nil)))

(defmethod print-object ((s socket) stream)
  (print-unreadable-object (s stream :identity t)
    (let ((fd (net-sys:handle-fd (socket-handle s))))
      (format stream "~:@(~a~) ~:[closed~;fd ~:*~d~]" (class-name (class-of s)) fd))))

;;; Deadlines

(eval-when (:compile-toplevel :load-toplevel :execute) ; special in later files too
  (defvar *deadline* nil
    "The absolute deadline (NET-SYS:NOW scale) of the innermost WITH-DEADLINE, or NIL."))

(defun %seconds->ns (seconds)
  (check-type seconds (real 0))
  (min most-positive-fixnum (round (* seconds 1000000000))))

(net-sys:%defun-inline %ns-from-now (ns)
  "The deadline NS nanoseconds from now, at most the largest fixnum (a
timeout so long is forever in practice)."
  (declare (fixnum ns))
  (let ((now (net-sys:now)))
    (declare (fixnum now))
    (if (> ns (the fixnum (- most-positive-fixnum now))) most-positive-fixnum (the fixnum (+ now ns)))))

(defmacro with-deadline ((seconds) &body body)
  "Run BODY with every blocking call in it, in this thread, bounded by one
deadline SECONDS from now; a call still waiting then signals SOCKET-TIMEOUT.
Nested deadlines take the earlier."
  (let ((d (gensym "DEADLINE")))
    `(let* ((,d (%ns-from-now (%seconds->ns ,seconds)))
            (*deadline* (if *deadline* (min *deadline* ,d) ,d)))
       ,@body)))

(net-sys:%defun-inline %call-args-at (socket e timeout)
  "%CALL-ARGS with E, SOCKET's entry of *SLOT-LOCATIONS*, already at hand."
  (declare (optimize (speed 3) (safety 0)) (simple-vector e))
  (values (%slot-at socket e 1)
          (if (not (%slot-at socket e 2))
              -1
              (let ((ns (if timeout (%seconds->ns timeout) (%slot-at socket e 3))))
                (if ns
                    (let ((d (%ns-from-now ns)) (dl *deadline*))
                      (declare (fixnum d))
                      (if dl (min d (the fixnum dl)) d))
                    *deadline*)))
          (and (svref e 4) (%slot-at socket e 4))))

(net-sys:%defun-inline %call-args (socket timeout)
  "The handle and the deadline argument of a primitive called on SOCKET:
-1 non-blocking, NIL forever, or the earliest of TIMEOUT (or the socket's
default) and *DEADLINE*; third, SOCKET's stream state or NIL."
  (declare (optimize (speed 3) (safety 0)))
  (%call-args-at socket (%slot-locations socket) timeout))

;;; CLOSE flushes the stream's buffered output and lets its buffers go
;;; (stream.lsp).
(declaim (ftype function %flush %let-buffers-go))

(defun %deadline (socket timeout)
  "The deadline argument of a primitive called on SOCKET (see %CALL-ARGS)."
  ;; Not NTH-VALUE: ECL's conses a list of the values.
  (multiple-value-bind (handle deadline) (%call-args socket timeout)
    (declare (ignore handle))
    deadline))

;;; Creation

(declaim (ftype function %parse-external-format %check-buffering)) ; codec.lsp, stream.lsp

(defun make-socket (&rest options &key (address-family :ipv4) (type :stream)
                                       (protocol :default) (blocking t) timeout
                                       external-format (buffering :full) &allow-other-keys
                    &aux (timeout (%check-timeout timeout))) ; checked before any system call
  "Create a socket of ADDRESS-FAMILY (:IPV4, :IPV6 or :LOCAL) and TYPE
(:STREAM, :DATAGRAM, :SEQPACKET or :RAW).  PROTOCOL is :DEFAULT, a protocol
number, or a protocol name: :TCP, :UDP, :ICMP, :ICMPV6, :SCTP, :UDPLITE, or
any name LOOKUP-PROTOCOL knows (a keyword or string).  BLOCKING NIL makes calls return NIL where they would block; TIMEOUT
is the default timeout of blocking calls, in seconds.  EXTERNAL-FORMAT is
the stream's first external format (see SOCKET-EXTERNAL-FORMAT), which
sockets accepted from this one inherit, and BUFFERING the stream's output
buffering (:FULL, the default, :LINE or :NONE; see SOCKET-BUFFERING), which
they inherit too.  The descriptor is non-blocking and
close-on-exec underneath in every case."
  (when external-format
    (%parse-external-format external-format)) ; checked before any system call
  (%check-buffering buffering)
  (let* ((proto (%protocol-number protocol))
         (handle (net-sys:socket-open (%family-number address-family)
                                      (%type-number type) proto)))
    (%apply-socket-options
     (make-instance (%socket-class address-family (%role-of-type type))
                    :handle handle :address-family address-family :type type
                    :blocking blocking :timeout timeout
                    :external-format external-format :buffering buffering)
     options)))

(defun %accept-prototype (listener)
  "What sockets accepted from LISTENER start as: a socket without handle,
with the listener's type, timeout, external format and buffering."
  (make-instance (%socket-class (socket-address-family listener) :stream)
                 :handle nil :address-family (socket-address-family listener)
                 :type (socket-type listener)
                 :timeout (socket-timeout-of listener)
                 :external-format (slot-value listener 'external-format)
                 :buffering (slot-value listener 'buffering)))

(defun %wrap-accepted (listener handle &optional (blocking t))
  "The socket of a connection accepted from LISTENER, owning HANDLE,
blocking or not as BLOCKING says: a copy of the listener's prototype, a
small fraction of MAKE-INSTANCE's cost (its keyword processing and generic
initialization), per accept."
  (declare (optimize (speed 3) (safety 0)))
  (let* ((e (%slot-locations listener))
         (loc (svref e 6))
         (proto (or (and loc (%slot-at listener e 6))
                    (setf (slot-value listener 'accept-prototype)
                          (%accept-prototype listener))))
         (socket (si:copy-instance proto))
         (se (%slot-locations socket)))
    (si:instance-set socket (svref se 1) handle)
    (unless blocking
      (si:instance-set socket (svref se 2) nil))
    socket))

;;; Addresses of calls

(defun %local-args (address)
  "The (path abstract-p) the C glue takes for a local ADDRESS designator.
MAKE-LOCAL-ADDRESS has checked the name (length, NUL, empty)."
  (let ((a (typecase address
             (local-address address)
             ((or string pathname) (make-local-address address))
             (t (error 'type-error :datum address
                                   :expected-type '(or local-address string pathname))))))
    (values (local-address-path a) (local-address-abstract-p a))))

(defun %sockaddr-args (socket address)
  "The (octets scope) the C glue takes for ADDRESS on SOCKET's family; for a
Unix-domain socket, (path abstract-p)."
  (let ((family (socket-address-family socket)))
    (when (eq family :local)
      (return-from %sockaddr-args (%local-args address)))
    (let ((a (ensure-address address)))
      (when (local-address-p a)
        (error 'invalid-address :text address :reason "a Unix-domain address on an IP socket"))
      (when (and (eq family :ipv6) (ipv4-address-p a))
        (error 'invalid-address :text address :reason "an IPv4 address on an IPv6 socket"))
      (when (and (eq family :ipv4) (ipv6-address-p a))
        (error 'invalid-address :text address :reason "an IPv6 address on an IPv4 socket"))
      (values (address-octets a) (if (ipv6-address-p a) (address-scope-id a) 0)))))

(defun %check-port (port)
  (unless (typep port '(integer 0 65535))
    (error 'type-error :datum port :expected-type '(integer 0 65535)))
  port)

(defun bind-address (socket address &key (port 0))
  "Bind SOCKET to ADDRESS (an address designator) and PORT (0: any free
port).  On a :LOCAL socket ADDRESS is a LOCAL-ADDRESS or a path (string or
pathname), and PORT is ignored.  Returns SOCKET."
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
  "(octets port scope) -> address and port; (\"path\" NIL abstract-p) -> a
local address and NIL; NIL (an unnamed socket) -> NIL NIL.  The glue's
lists are fresh: the octet vector becomes the address's own."
  (if list
      (let ((octets (car list)) (port (cadr list)) (scope (caddr list)))
        (if (stringp octets)
            (values (make-local-address octets :abstract scope) nil)
            (values (%inet-address octets scope) port)))
      (values nil nil)))

(defun accept-connection (socket &key timeout (peer t) (blocking t))
  "Accept a connection on passive SOCKET.  Returns the new connected socket,
the peer's address and port; NIL if SOCKET is non-blocking and no connection
is pending.  Signals SOCKET-TIMEOUT after TIMEOUT seconds.  With PEER NIL
only the socket is returned: the peer's address is not made (a caller that
does not use it saves a third of the call; SOCKET-REMOTE-ADDRESS gives it
later).  The new socket is blocking unless BLOCKING is NIL (what an event
loop's server wants, without a SETF of SOCKET-BLOCKING-P per connection)."
  (%accept-connection socket timeout peer blocking))

(defun %accept-connection (socket &optional timeout (peer t) (blocking t))
  (let ((r (net-sys:accept (socket-handle socket) (%deadline socket timeout) peer socket)))
    (cond ((null r) nil)
          ((null peer) (%wrap-accepted socket r blocking))
          (t (multiple-value-bind (address port) (%peer-values (cdr r))
               (values (%wrap-accepted socket (car r) blocking) address port))))))
(net-sys:%define-positional accept-connection %accept-connection 1
  ((:timeout nil) (:peer t) (:blocking t)) t)

(defun connect (socket address &key (port 0) timeout)
  "Connect SOCKET to ADDRESS and PORT (a path or LOCAL-ADDRESS on a :LOCAL
socket; PORT is then ignored).  Waits for the connection to be made (at most
TIMEOUT seconds, then SOCKET-TIMEOUT, and the socket should then be closed); a
non-blocking socket returns NIL at once when the connection is still being
made: its completion shows as writability, and FINISH-CONNECT collects its
result.  On a datagram socket, sets the default destination and the only
accepted source.  Returns SOCKET when connected.  An interrupted connect is
never issued twice: it is waited for."
  (multiple-value-bind (octets scope) (%sockaddr-args socket address)
    (and (net-sys:connect (socket-handle socket) octets (%check-port port) scope
                          (%deadline socket timeout) socket)
         socket)))

(defun shutdown (socket direction)
  "Shut down DIRECTION of SOCKET's connection: :INPUT, :OUTPUT (the peer
reads end of file and can still send) or :BOTH.  Text or octets still in the
stream's output buffer are sent first."
  (when (and (member direction '(:output :both))
             (typep socket 'stream-socket)
             (slot-value socket 'stream-state))
    (finish-output socket))
  (net-sys:shutdown (socket-handle socket)
                    (ecase direction (:input 0) (:output 1) (:both 2))
                    socket)
  socket)

(defun finish-connect (socket &key timeout)
  "Complete the connection a non-blocking CONNECT started on SOCKET.
Returns SOCKET once connected; signals the connection's error (for example
CONNECTION-REFUSED) if it failed; returns NIL if SOCKET is non-blocking and
the connection is still being made.  A blocking SOCKET waits for it, at most
TIMEOUT seconds."
  (and (net-sys:finish-connect (socket-handle socket) (%deadline socket timeout) socket)
       socket))

(defmethod close ((socket socket) &key abort)
  "Close SOCKET.  Idempotent: returns T if this call closed it, NIL if it
was closed already; any other call on a closed socket signals SOCKET-CLOSED.
A thread blocked on SOCKET wakes with SOCKET-CLOSED.  With ABORT on a
connected stream socket, the connection is reset (SO_LINGER 0: the peer sees
CONNECTION-RESET) instead of closed in order.  Text or octets still in the
stream's output buffer are sent first, unless ABORT."
  (%close socket abort))

(defun %close (socket abort)
  "CLOSE's work, in one method for every socket (a method on STREAM-SOCKET
around it cost a call of the next method, 2,500 instructions), reading the
slots at their locations, with no handler around the best-effort reset.
A connection the peer has reset (a CONNECTION-RESET met on it) is over
already: ABORT then makes no SO_LINGER call, which would change nothing."
  (declare (optimize (speed 3) (safety 0)))
  (let* ((e (%slot-locations socket))
         (handle (%slot-at socket e 1))
         (stream-p (svref e 4))          ; a STREAM-SOCKET: :STREAM or :SEQPACKET
         (ss (and stream-p (%slot-at socket e 4))))
    (flet ((close-handle ()
             (when (and abort stream-p (not (%slot-at socket e 7))
                        (net-sys:handle-open-p handle))
               (net-sys:set-abortive handle))
             (net-sys:handle-close handle)))
      (if ss
          (unwind-protect
               (if (and (not abort) (net-sys:handle-open-p handle))
                   (unwind-protect (%flush socket ss)
                     (close-handle))
                   (close-handle))
            (%let-buffers-go socket ss))
          (close-handle)))))

(defun socket-at-mark-p (socket)
  "True if the next octet to read from SOCKET is the one that followed the
out-of-band octet: the urgent mark (sockatmark)."
  (net-sys:socket-at-mark (socket-handle socket) socket))

(defun make-socket-pair (&key (type :stream) (blocking t) timeout)
  "Two connected Unix-domain sockets of TYPE (:STREAM, :DATAGRAM or
:SEQPACKET), as two values: socketpair(2)."
  (%check-timeout timeout)
  (let ((handles (net-sys:socket-pair (%type-number type)))
        (class (%socket-class :local (%role-of-type type))))
    (flet ((wrap (h) (make-instance class :handle h :address-family :local :type type
                                          :blocking blocking :timeout timeout)))
      (values (wrap (car handles)) (wrap (cdr handles))))))

(defun make-socket-from-fd (fd &key (blocking t) timeout)
  "A socket object owning FD, an open socket descriptor (inherited, or
received with RECEIVE-FILE-DESCRIPTORS).  Its family, type and whether it is
listening are asked of the system; FD is made non-blocking and
close-on-exec.  Closing the socket closes FD."
  (%check-timeout timeout)
  (destructuring-bind (handle family type listening) (net-sys:adopt fd)
    (let* ((family (cond ((= family net-sys:+af-inet+) :ipv4)
                         ((= family net-sys:+af-inet6+) :ipv6)
                         ((= family net-sys:+af-unix+) :local)
                         (t (net-sys:handle-close handle)
                            (error 'address-family-not-supported
                                   :syscall "socket" :socket fd
                                   :message "not an IPv4, IPv6 or Unix-domain socket"))))
           (type (cond ((= type net-sys:+sock-stream+) :stream)
                       ((= type net-sys:+sock-dgram+) :datagram)
                       ((= type net-sys:+sock-seqpacket+) :seqpacket)
                       (t :raw))))
      (make-instance (%socket-class family (if listening :passive (%role-of-type type)))
                     :handle handle :address-family family :type type
                     :blocking blocking :timeout timeout))))

(defun socket-open-p (socket)
  "True until SOCKET is closed."
  (net-sys:handle-open-p (socket-handle socket)))

(defun socket-fd (socket)
  "The file descriptor of SOCKET, or NIL once it is closed."
  (net-sys:handle-fd (socket-handle socket)))

(defmethod gray:open-stream-p ((socket stream-socket))
  (socket-open-p socket))

;;; Names

(defun socket-local-address (socket)
  "The address SOCKET is bound to; second value its port (NIL for a
Unix-domain socket).  NIL for an unnamed Unix-domain socket."
  (%peer-values (net-sys:socket-name (socket-handle socket) nil socket)))

(defun socket-local-port (socket)
  "The port SOCKET is bound to."
  (nth-value 1 (socket-local-address socket)))

(defun socket-remote-address (socket)
  "The address of SOCKET's peer; second value its port (NIL for a
Unix-domain socket).  Signals NOT-CONNECTED when it has none."
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


;;; Descriptors: a peer, a second descriptor, giving the descriptor away.

(defun socket-connected-p (socket)
  "True if SOCKET has a peer: a connected stream socket (until it is
closed: a peer that went away still counts until the connection is reset),
a datagram socket given a default destination with CONNECT, either end of
MAKE-SOCKET-PAIR.  NIL for an unconnected, listening or closed socket."
  (net-sys:socket-connected (socket-handle socket) socket))

(defun dup-socket (socket)
  "A new socket object of SOCKET's class, family, type, blocking policy and
timeout, owning a new descriptor (close-on-exec) made by dup(2) of SOCKET's:
both name the same open socket, so data sent on either goes on the one
connection, and the socket stays open until both are closed (SHUTDOWN on
either acts on the socket itself).  A stream's buffers are not shared: the
new object starts with empty ones."
  (let ((handle (net-sys:handle-dup (socket-handle socket) socket)))
    (make-instance (class-of socket)
                   :handle handle :address-family (socket-address-family socket)
                   :type (socket-type socket) :blocking (socket-blocking-p socket)
                   :timeout (socket-timeout-of socket)
                   :external-format (slot-value socket 'external-format)
                   :buffering (slot-value socket 'buffering))))

(defun socket-detach (socket)
  "Give SOCKET's descriptor away: returns it, open, and SOCKET becomes
closed (SOCKET-OPEN-P is false, calls signal SOCKET-CLOSED) without closing
it; neither CLOSE nor the finalizer will.  The caller now owns the
descriptor (it stays non-blocking and close-on-exec).  Text or octets still
in the stream's output buffer are sent first; octets already read into the
stream's input buffer stay behind.  Signals SOCKET-CLOSED if SOCKET was
closed already."
  (when (and (typep socket 'stream-socket)
             (slot-value socket 'stream-state)
             (socket-open-p socket))
    (finish-output socket))
  (net-sys:handle-detach (socket-handle socket) socket))

(provide :net)
