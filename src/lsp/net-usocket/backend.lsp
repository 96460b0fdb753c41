;;;; backend.lsp -- usocket's backend over net: sockets, streams, waiting, names, conditions.
;;;
;;; usocket 0.8.3 compiles its ECL backend (backend/sbcl.lisp, over ECL's
;;; sb-bsd-sockets) into itself and has no backend registry.  Loaded after
;;; usocket, this file redefines, in usocket's package, every function of
;;; that backend file and every method it and option.lisp define on
;;; sb-bsd-sockets objects, so that usocket's whole API runs on net.  ECL
;;; compiles a call to a function of the same file as a direct call: a
;;; function of the old backend left in place would keep calling the old
;;; versions of its neighbours, hence all of them are replaced, each method
;;; with the same specializers as the one it replaces.
;;;
;;; usocket's objects wrap net's: the SOCKET slot of every usocket holds a
;;; net socket, and a STREAM-USOCKET's stream is that same socket, net's
;;; bivalent stream.

(in-package "USOCKET")

(defparameter *backend* :net
  "The backend usocket runs on: :NET once net-usocket is loaded.")

;;; Conditions: net's mapped to usocket's

(defparameter +net-error-map+
  '((net:connection-refused . connection-refused-error)
    (net:connection-reset . connection-reset-error)
    (net:connection-aborted . connection-aborted-error)
    (net:connection-timed-out . timeout-error)
    (net:socket-timeout . timeout-error)
    (net:address-in-use . address-in-use-error)
    (net:address-not-available . address-not-available-error)
    (net:network-unreachable . network-unreachable-error)
    (net:network-down . network-down-error)
    (net:network-reset . network-reset-error)
    (net:host-unreachable . host-unreachable-error)
    (net:host-down . host-down-error)
    (net:operation-not-permitted . operation-not-permitted-error)
    (net:permission-denied . operation-not-permitted-error)
    (net:invalid-argument . invalid-argument-error)
    (net:bad-file-descriptor . bad-file-descriptor-error)
    (net:socket-closed . bad-file-descriptor-error)
    (net:no-buffer-space . no-buffers-error)
    (net:operation-not-supported . operation-not-supported-error)
    (net:protocol-not-supported . protocol-not-supported-error)
    (net:socket-type-not-supported . socket-type-not-supported-error))
  "net's socket error classes and the usocket error each is signalled as.")

(defun %socket-error-class (condition)
  "The usocket error class net's CONDITION maps to, or NIL."
  (cdr (assoc-if (lambda (class) (typep condition class)) +net-error-map+)))

(defun %failed-connection-class (condition)
  "The usocket error class of a NET:CONNECTION-FAILED: that of the first
attempt whose condition maps to one."
  (loop for (nil . c) in (net:connection-failed-attempts condition)
        for class = (%socket-error-class c)
        when class return class))

(defun %signal-resolver-condition (condition host-or-ip)
  (typecase condition
    (net:host-not-found (error 'ns-host-not-found-error :host-or-ip host-or-ip))
    (net:resolver-again (signal 'ns-try-again-condition :host-or-ip host-or-ip))
    (net:resolver-failure (error 'ns-no-recovery-error :host-or-ip host-or-ip))
    (t (error 'ns-unknown-error :host-or-ip host-or-ip :real-error condition))))

(defun handle-condition (condition &optional (socket nil) (host-or-ip nil))
  "Signal the usocket condition for net's CONDITION (the handler of
WITH-MAPPED-CONDITIONS); any other condition is declined and goes on as it
is.  A name lookup failing is an NS-ERROR, a socket call failing the
SOCKET-ERROR of its errno, else UNKNOWN-ERROR holding net's condition."
  (typecase condition
    (net:resolver-error (%signal-resolver-condition condition host-or-ip))
    (net:connection-failed
     (error (or (%failed-connection-class condition) 'unknown-error)
            :socket socket))
    (net:socket-error
     (let ((class (%socket-error-class condition)))
       (if class
           (error class :socket socket)
           (error 'unknown-error :socket socket :real-error condition
                                 :errno (or (net:socket-error-errno condition) 0)))))))

;;; Hosts: usocket designators to net addresses and back

(defun %host-vector (address)
  "ADDRESS as usocket gives hosts: a fresh octet vector of 4 (IPv4, an
IPv4-mapped IPv6 address included) or 16 octets."
  (copy-seq (net:address-octets (if (net:address-v4-mapped-p address)
                                    (net:ipv6-to-ipv4 address)
                                    address))))

(defun %ordered-addresses (addresses family)
  "ADDRESSES with those of FAMILY (:IPV4 unless given) first, each family
in the resolver's order."
  (let ((first (or family :ipv4)))
    (append (remove first addresses :key #'net:address-family :test-not #'eq)
            (remove first addresses :key #'net:address-family :test #'eq))))

(defun %host-address (host &optional family)
  "The net address of usocket's HOST designator: a name or address text (its
first address, FAMILY's first, IPv4 unless FAMILY is given), a vector of 4
or 16 octets, or an IPv4 address as an integer."
  (if (stringp host)
      (first (%ordered-addresses (net:lookup-host host) family))
      (net:ensure-address host)))

(defun get-hosts-by-name (name)
  "Every address of host NAME, as vectors of 4 or 16 octets: the IPv4 ones
first, as usocket's other backends give them."
  (with-mapped-conditions (nil name)
    (mapcar #'%host-vector (%ordered-addresses (net:lookup-host name) :ipv4))))

(defun get-host-by-address (address)
  "The name of the host at ADDRESS (a vector of 4 or 16 octets, or text)."
  (with-mapped-conditions (nil address)
    (net:lookup-address (net:ensure-address address))))

;;; Connecting

(defun %connect-stream (host port timeout nodelay local-host local-port)
  "A connected STREAM-USOCKET: net's CONNECT-TO, so every address of a host
name is tried (IPv6 and IPv4, RFC 8305) within TIMEOUT."
  (let* ((local (and local-host (%host-address local-host)))
         (s (net:connect-to (if (stringp host) host (net:ensure-address host)) port
                            :timeout timeout :nodelay nodelay
                            :address-family (and local (net:address-family local))
                            :local-address local :local-port local-port)))
    (make-stream-socket :socket s :stream s)))

(defun %connect-datagram (host port local-host local-port)
  "A DATAGRAM-USOCKET, connected to HOST and PORT when both are given, bound
to LOCAL-HOST and LOCAL-PORT when either is (the IPv4 wildcard for a
missing LOCAL-HOST)."
  (let* ((local (and local-host (%host-address local-host)))
         (remote (and host port
                      (%host-address host (and local (net:address-family local)))))
         (s (cond (remote (net:connect-udp remote port :local-address local
                                                       :local-port local-port))
                  ((or local local-port)
                   (net:make-udp-socket :host (or local net:+ipv4-any+) :port (or local-port 0)))
                  (t (net:make-socket :type :datagram)))))
    (make-datagram-socket s :connected-p (and remote t))))

(defun socket-connect (host port &key (protocol :stream) (element-type 'character)
                       timeout deadline (nodelay t nodelay-specified)
                       local-host local-port)
  "usocket's SOCKET-CONNECT over net; see usocket's documentation.  TIMEOUT
bounds the name lookup and the connection.  The stream of a stream socket
is net's bivalent stream whatever ELEMENT-TYPE says.  NODELAY sets
TCP_NODELAY only when given (:IF-SUPPORTED is T).  DEADLINE is unsupported."
  (declare (ignore element-type))
  (when deadline (unsupported 'deadline 'socket-connect))
  (with-mapped-conditions (nil host)
    (ecase protocol
      (:stream (%connect-stream host port timeout (and nodelay-specified nodelay t)
                                local-host local-port))
      (:datagram (%connect-datagram host port local-host local-port)))))

;;; Listening and accepting

(defun %listen-host (host)
  "make-listener's HOST for usocket's: NIL and *WILDCARD-HOST* are every
interface, IPv6 and IPv4 (dual-stack where the system has IPv6)."
  (if (or (null host) (eq host *wildcard-host*) (equalp host #(0 0 0 0)))
      :any
      (%host-address host)))

(defun socket-listen (host port &key reuseaddress
                                  (reuse-address nil reuse-address-supplied-p)
                                  (backlog 5) (element-type 'character))
  "usocket's SOCKET-LISTEN over net: a listening STREAM-SERVER-USOCKET."
  (with-mapped-conditions (nil host)
    (make-stream-server-socket
     (net:make-listener port :host (%listen-host host) :backlog backlog
                             :reuse-address (if reuse-address-supplied-p
                                                reuse-address
                                                reuseaddress))
     :element-type element-type)))

(defmethod socket-accept ((usocket stream-server-usocket) &key element-type)
  (declare (ignore element-type))
  (with-mapped-conditions (usocket)
    (let ((s (net:accept-connection (socket usocket))))
      (and s (make-stream-socket :socket s :stream s)))))

;;; Closing and shutting down

(defmethod socket-close ((usocket usocket))
  (with-mapped-conditions (usocket)
    (net:close (socket usocket))))

(defmethod socket-close ((usocket stream-usocket))
  ;; The stream is the socket; closing it sends what it has buffered.
  (with-mapped-conditions (usocket)
    (close (socket-stream usocket))
    (net:close (socket usocket))))

(defmethod socket-shutdown ((usocket stream-usocket) direction)
  (with-mapped-conditions (usocket)
    (net:shutdown (socket usocket)
                  (ecase direction
                    (:input :input)
                    (:output :output)
                    (:io :both)))))

;;; Datagrams

(defun %octet-range (buffer start end)
  "BUFFER[START,END) as a simple octet vector and its bounds: BUFFER itself
when it is one, else a copy."
  (if (typep buffer '(simple-array (unsigned-byte 8) (*)))
      (values buffer start end)
      (values (coerce (subseq buffer start end) '(simple-array (unsigned-byte 8) (*)))
              0 (- end start))))

(defmethod socket-send ((usocket datagram-usocket) buffer size &key host port (offset 0))
  (let ((s (socket usocket)))
    (multiple-value-bind (octets start end) (%octet-range buffer offset (+ offset size))
      (with-mapped-conditions (usocket host)
        (if (and host port)
            (net:send-to s octets (%host-address host (net:socket-address-family s))
                         :port port :start start :end end)
            (net:send s octets :start start :end end))))))

(defmethod socket-receive ((usocket datagram-usocket) buffer length
                           &key (element-type '(unsigned-byte 8)))
  (declare (ignore element-type))
  (let* ((buffer (or buffer (make-array (or length +max-datagram-packet-size+)
                                        :element-type '(unsigned-byte 8))))
         (end (min (length buffer) (or length (length buffer))))
         (octets (if (typep buffer '(simple-array (unsigned-byte 8) (*)))
                     buffer
                     (make-array end :element-type '(unsigned-byte 8)))))
    (with-mapped-conditions (usocket)
      (multiple-value-bind (n address port) (net:receive-from (socket usocket) octets :end end)
        (unless (eq octets buffer)
          (replace buffer octets :end2 (or n 0)))
        (values buffer n (and address (%host-vector address)) port)))))

;;; Names of the two ends

(defun %name (socket local)
  "The address (an octet vector) and port of SOCKET's LOCAL or remote end."
  (let ((address (if local (net:socket-local-address socket) (net:socket-remote-address socket))))
    (values (and address (%host-vector address))
            (if local (net:socket-local-port socket) (net:socket-remote-port socket)))))

(defmethod get-local-name ((usocket usocket))
  (with-mapped-conditions (usocket)
    (%name (socket usocket) t)))

(defmethod get-peer-name ((usocket stream-usocket))
  (with-mapped-conditions (usocket)
    (%name (socket usocket) nil)))

(defmethod get-peer-name ((usocket datagram-usocket))
  (with-mapped-conditions (usocket)
    (%name (socket usocket) nil)))

(defmethod get-peer-address ((usocket datagram-usocket))
  (values (get-peer-name usocket)))

(defmethod get-peer-port ((usocket datagram-usocket))
  (nth-value 1 (get-peer-name usocket)))

;;; Waiting: one poll(2) over every socket of the wait list, no FD_SETSIZE cap

(defun %setup-wait-list (wait-list)
  (declare (ignore wait-list)))

(defun %add-waiter (wait-list waiter)
  (declare (ignore wait-list waiter)))

(defun %remove-waiter (wait-list waiter)
  (declare (ignore wait-list waiter)))

(defun wait-for-input-internal (wait-list &key timeout)
  "Wait at most TIMEOUT seconds (NIL: forever) until a socket of WAIT-LIST
can be read from (or accepted from), with NET:WAIT-UNTIL-READY, and set the
state of each ready one to :READ."
  (with-mapped-conditions ()
    (let* ((waiters (wait-list-waiters wait-list))
           (ready (net:wait-until-ready (mapcar #'socket waiters) :timeout timeout)))
      ;; READY keeps the order of WAITERS.
      (dolist (w waiters)
        (when (and ready (eq (socket w) (car ready)))
          (setf (state w) :read)
          (pop ready))))))

;;; Socket options: usocket's, and any option net knows by its keyword

(defun %net-option (usocket option)
  (handler-case (net:socket-option (socket usocket) option)
    (net:unknown-socket-option ()
      (error 'unimplemented :feature option :context 'socket-option))))

(defun (setf %net-option) (value usocket option)
  (handler-case (setf (net:socket-option (socket usocket) option) value)
    (net:unknown-socket-option ()
      (error 'unimplemented :feature option :context 'socket-option))))

(defmethod socket-option ((socket usocket) (option symbol) &key)
  (if (keywordp option)
      (with-mapped-conditions (socket) (%net-option socket option))
      (error 'type-error :datum option :expected-type 'keyword)))

(defmethod (setf socket-option) (new-value (socket usocket) (option symbol) &key)
  (if (keywordp option)
      (with-mapped-conditions (socket) (setf (%net-option socket option) new-value))
      (error 'type-error :datum option :expected-type 'keyword)))

;; net has one timeout per socket for every blocking call, its stream's
;; included: :RECEIVE-TIMEOUT and :SEND-TIMEOUT both read and set it.
(defmethod socket-option ((usocket stream-usocket) (option (eql :receive-timeout)) &key)
  (net:socket-timeout-of (socket usocket)))

(defmethod (setf socket-option) (new-value (usocket stream-usocket)
                                 (option (eql :receive-timeout)) &key)
  (setf (net:socket-timeout-of (socket usocket)) new-value))

(defmethod socket-option ((usocket stream-usocket) (option (eql :send-timeout)) &key)
  (net:socket-timeout-of (socket usocket)))

(defmethod (setf socket-option) (new-value (usocket stream-usocket)
                                 (option (eql :send-timeout)) &key)
  (setf (net:socket-timeout-of (socket usocket)) new-value))

(defmethod socket-option ((usocket stream-server-usocket) (option (eql :reuse-address)) &key)
  (%net-option usocket :reuse-address))

(defmethod (setf socket-option) (new-value (usocket stream-server-usocket)
                                 (option (eql :reuse-address)) &key)
  (setf (%net-option usocket :reuse-address) (and new-value t)))

(defmethod socket-option ((usocket datagram-usocket) (option (eql :broadcast)) &key)
  (%net-option usocket :broadcast))

(defmethod (setf socket-option) (new-value (usocket datagram-usocket)
                                 (option (eql :broadcast)) &key)
  (setf (%net-option usocket :broadcast) (and new-value t)))

(defmethod socket-option ((usocket stream-usocket) (option (eql :tcp-nodelay)) &key)
  (%net-option usocket :nodelay))

(defmethod (setf socket-option) (new-value (usocket stream-usocket)
                                 (option (eql :tcp-nodelay)) &key)
  (setf (%net-option usocket :nodelay) (and new-value t)))
