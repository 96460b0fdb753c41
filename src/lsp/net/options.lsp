;;;; options.lsp -- socket options: a table of Lisp descriptions over a few generic primitives.
;;;
;;; Every option is an OPTION-INFO in *SOCKET-OPTIONS*: its keyword, level
;;; and number, the codec that turns its bytes into a Lisp value and back
;;; (:BOOLEAN, :INT, :SECONDS, ...), and the families and types of socket it
;;; applies to.  One name may have several descriptions, one per family or
;;; type (:MULTICAST-LOOP is IP_MULTICAST_LOOP on IPv4 and
;;; IPV6_MULTICAST_LOOP on IPv6).  Values are checked, and the option found
;;; applicable, before any system call.  DEFINE-SOCKET-OPTION adds options
;;; from user code; the C side only knows the codecs.

(in-package "NET")

;;; Conditions

(define-condition socket-option-error (network-error)
  ((option :initarg :option :reader socket-option-error-option
           :documentation "The option's name, a keyword (for a multicast call, the call's name).")
   (socket :initarg :socket :initform nil :reader socket-option-error-socket
           :documentation "The socket, or NIL.")
   (reason :initarg :reason :initform nil :reader socket-option-error-reason
           :documentation "What was wrong, a string."))
  (:report (lambda (c s)
             (format s "Socket option ~s~@[ on ~a~]: ~a"
                     (socket-option-error-option c) (socket-option-error-socket c)
                     (socket-option-error-reason c))))
  (:documentation "A socket option was misused: unknown, or not applicable to
the socket.  Signalled before any system call."))

(define-condition unknown-socket-option (socket-option-error)
  ()
  (:documentation "No option of that name is defined (see LIST-SOCKET-OPTIONS
and DEFINE-SOCKET-OPTION)."))

(define-condition socket-option-not-applicable (socket-option-error)
  ()
  (:documentation "The option exists but not for this socket's address family
or type, or it cannot be read or cannot be written."))

(define-condition unknown-interface (network-error)
  ((name :initarg :name :reader unknown-interface-name
         :documentation "The interface name that was not found."))
  (:report (lambda (c s) (format s "No network interface named ~s" (unknown-interface-name c))))
  (:documentation "A network interface given by name does not exist."))

;;; The system's constants, by their C names.

(defvar *c-constants*
  (let ((table (make-hash-table :test 'equal)))
    (loop for (name . value) in (net-sys:option-constants)
          do (setf (gethash name table) value))
    table)
  "C constant name -> value, for the options this system has.")

(defun %c (name)
  (values (gethash name *c-constants*)))

(defun %option-level (level)
  "The number of LEVEL: a keyword (:SOCKET :IP :IPV6 :TCP :UDP) or an integer."
  (if (integerp level)
      level
      (or (%c (ecase level
                (:socket "SOL_SOCKET") (:ip "IPPROTO_IP") (:ipv6 "IPPROTO_IPV6")
                (:tcp "IPPROTO_TCP") (:udp "IPPROTO_UDP")))
          (error 'type-error :datum level :expected-type '(member :socket :ip :ipv6 :tcp :udp)))))

;;; Descriptions

(defstruct (option-info (:constructor %make-option-info))
  name level number codec value-type families types (readable t) (writable t)
  values (size 64) documentation (listed t))

(defvar *socket-options* (make-hash-table :test 'eq :synchronized t)
  "Option name -> list of OPTION-INFO, one per family/type variant.")
(defvar *socket-option-order* '()
  "Option names in the order they were first defined, for LIST-SOCKET-OPTIONS.")

(defparameter +codecs+
  '(:boolean :int :seconds :milliseconds :linger :keyword :string :ipv4-interface
    :interface-index :errno :tcp-info :credentials :octets)
  "The value types an option can have; each is one encoding over the C primitives.")

(defun %default-value-type (codec values)
  (ecase codec
    (:boolean 'boolean)
    (:int '(signed-byte 32))
    (:seconds '(or null (real 0 2147483647)))
    (:milliseconds '(real 0 2147483))
    (:linger '(or null (real 0 2147483647)))
    (:keyword `(member ,@(mapcar #'car values)))
    (:string '(or null string))
    ((:ipv4-interface :interface-index) '(or null (integer 0 2147483647) string address))
    ((:errno :tcp-info :credentials) 't)
    (:octets '(vector (unsigned-byte 8)))))

(defun %overlap-p (a b)
  (or (null a) (null b) (intersection a b)))

(defun %register-socket-option (info)
  (let* ((name (option-info-name info))
         (old (remove-if (lambda (o)
                           (and (intersection (option-info-families o) (option-info-families info))
                                (%overlap-p (option-info-types o) (option-info-types info))))
                         (gethash name *socket-options*))))
    (setf (gethash name *socket-options*) (append old (list info)))
    (unless (member name *socket-option-order*)
      (setf *socket-option-order* (append *socket-option-order* (list name))))
    name))

(defun %make-socket-option (name &key level number type (address-families '(:ipv4 :ipv6 :local))
                                      socket-types (readable t) (writable t) values (size 64)
                                      value-type documentation (listed t))
  (check-type name keyword)
  (check-type number (integer 0 2147483647))
  (unless (member type +codecs+)
    (error 'type-error :datum type :expected-type `(member ,@+codecs+)))
  (let ((families (if (listp address-families) address-families (list address-families)))
        (types (if (listp socket-types) socket-types (list socket-types))))
    (dolist (f families)
      (check-type f (member :ipv4 :ipv6 :local)))
    (dolist (ty types)
      (check-type ty (member :stream :datagram :seqpacket :raw)))
    (%make-option-info :name name :level (%option-level level) :number number :codec type
                       :value-type (or value-type (%default-value-type type values))
                       :families families :types types :readable readable :writable writable
                       :values values :size size :documentation documentation
                       :listed listed)))

(defmacro define-socket-option (name &rest keys &key level number type address-families
                                                     socket-types readable writable values size
                                                     value-type documentation listed)
  "Define the socket option NAME (a keyword), or redefine its variant for the
same families and types.  LEVEL is :SOCKET, :IP, :IPV6, :TCP, :UDP or a
protocol number; NUMBER the option's number (the C constant's value); TYPE
the codec of its value: :BOOLEAN, :INT, :SECONDS (a struct timeval, as a
real or NIL), :MILLISECONDS (an int of milliseconds, as seconds),
:LINGER, :KEYWORD (an int named by the alist VALUES of (keyword . integer)),
:STRING, :IPV4-INTERFACE, :INTERFACE-INDEX, :ERRNO, :TCP-INFO, :CREDENTIALS
(read-only: a plist of :PID :UID :GID) or :OCTETS
(raw bytes, SIZE of them when read).  ADDRESS-FAMILIES (default all of
:IPV4 :IPV6 :LOCAL) and SOCKET-TYPES (default all) say where it applies;
READABLE and WRITABLE default to T; VALUE-TYPE narrows the Lisp type
accepted when setting; LISTED NIL keeps it out of LIST-SOCKET-OPTIONS (for
another name of an option listed already).  All arguments but NAME are evaluated.  Returns NAME."
  (declare (ignore level number type address-families socket-types readable writable
                   values size value-type documentation listed))
  `(%register-socket-option (%make-socket-option ,name ,@keys)))

(defun remove-socket-option (name)
  "Remove every definition of the socket option NAME.  True if there was one."
  (setf *socket-option-order* (remove name *socket-option-order*))
  (remhash name *socket-options*))

;;; Finding the description for a socket

(defun %option-info (socket name)
  "The description of option NAME for SOCKET, or a SOCKET-OPTION-ERROR."
  (let ((infos (gethash name *socket-options*))
        (family (socket-address-family socket))
        (type (socket-type socket)))
    (unless infos
      (error 'unknown-socket-option :option name :socket socket
                                    :reason "no such option is defined"))
    (or (find-if (lambda (o)
                   (and (member family (option-info-families o))
                        (or (null (option-info-types o)) (member type (option-info-types o)))))
                 infos)
        (error 'socket-option-not-applicable
               :option name :socket socket
               :reason (format nil "applies only to ~{~a~^; ~} sockets, not ~a ~a"
                               (mapcar #'%option-scope infos) family type)))))

(defun %option-scope (info)
  (format nil "~{~a~^/~}~@[ ~{~a~^/~}~]" (option-info-families info) (option-info-types info)))

;;; Interface designators, shared with multicast.lsp

(defun interface-index (name)
  "The index of the network interface called NAME (a string such as \"lo\"),
or NIL if there is none."
  (check-type name string)
  (net-sys:interface-index name))

(defun %interface (designator family)
  "DESIGNATOR as (values ipv4-address-octets-or-nil index): NIL (none), an
index, an interface name, or (IPv4 only) an address designator."
  (flet ((by-address (a)
           (let ((a (ensure-address a)))
             (unless (and (eq family :ipv4) (ipv4-address-p a))
               (error 'invalid-address :text designator
                                       :reason (if (eq family :ipv4)
                                                   "not an IPv4 interface address"
                                                   "IPv6 interfaces are given by name or index")))
             (values (address-octets a) 0))))
    (typecase designator
      (null (values nil 0))
      ((integer 0 2147483647) (values nil designator))
      (string (if (consp (net-sys:ip-parse-text designator))
                  (by-address designator)
                  (values nil (or (interface-index designator)
                                  (error 'unknown-interface :name designator)))))
      ((or address vector) (by-address designator))
      (t (error 'type-error :datum designator
                            :expected-type '(or null (integer 0 2147483647) string address))))))

;;; Codecs

(defun %string-octets (string)
  (let ((v (make-array (length string) :element-type '(unsigned-byte 8))))
    (dotimes (i (length string) v)
      (let ((code (char-code (char string i))))
        (unless (< 0 code 128)
          (error 'type-error :datum string :expected-type '(and string (satisfies ascii))))
        (setf (aref v i) code)))))

(defun %octets-string (octets n)
  (let ((end (or (position 0 octets :end n) n)))
    (and (plusp end) (map 'string #'code-char (subseq octets 0 end)))))

(defparameter +tcp-states+
  #(nil :established :syn-sent :syn-received :fin-wait-1 :fin-wait-2 :time-wait
    :closed :close-wait :last-ack :listen :closing :new-syn-received))

(defparameter +tcp-info-fields+
  '(:state :ca-state :retransmits :probes :backoff :options
    :send-window-scale :receive-window-scale :rto :ato :send-mss :receive-mss
    :unacked :sacked :lost :retransmitted :fackets :last-data-sent :last-ack-sent
    :last-data-received :last-ack-received :path-mtu :receive-ssthresh :rtt
    :rtt-variance :send-ssthresh :send-congestion-window :advertised-mss
    :reordering :receive-rtt :receive-space :total-retransmits)
  "The keys of TCP-INFO's plist, in struct tcp_info's order.")

(defun %tcp-info-plist (numbers)
  (loop for key in +tcp-info-fields+
        for n in numbers
        collect key
        collect (if (eq key :state) (or (and (< n (length +tcp-states+)) (aref +tcp-states+ n)) n) n)))

(defun %get-option (socket info)
  (let ((h (socket-handle socket))
        (level (option-info-level info))
        (number (option-info-number info)))
    (flet ((int () (net-sys:sockopt-int h level number socket))
           (raw (n)
             (let* ((buf (make-array n :element-type '(unsigned-byte 8) :initial-element 0))
                    (len (net-sys:sockopt-raw h level number buf 0 n socket)))
               (values buf len))))
      (ecase (option-info-codec info)
        (:boolean (/= 0 (int)))
        ((:int :interface-index) (int))
        (:seconds (let ((us (net-sys:sockopt-usec h level number socket)))
                    (if (zerop us) nil (/ us 1000000))))
        (:milliseconds (/ (int) 1000))
        (:linger (net-sys:sockopt-linger h socket))
        (:keyword (let ((n (int)))
                    (or (car (rassoc n (option-info-values info))) n)))
        (:errno (let ((e (int))) (if (zerop e) nil e)))
        (:string (multiple-value-call #'%octets-string (raw (option-info-size info))))
        (:ipv4-interface (%make-inet-address (raw 4)))
        (:tcp-info (%tcp-info-plist (net-sys:tcp-info h socket)))
        (:credentials (destructuring-bind (pid uid gid) (net-sys:peer-credentials h socket)
                        (list :pid pid :uid uid :gid gid)))
        (:octets (multiple-value-bind (buf len) (raw (option-info-size info))
                   (subseq buf 0 len)))))))

(defun %check-option-value (info value)
  "Signal a TYPE-ERROR unless VALUE suits INFO; no system call."
  (unless (typep value (option-info-value-type info))
    (error 'type-error :datum value :expected-type (option-info-value-type info))))

(defun %set-option (socket info value)
  (let ((h (socket-handle socket))
        (level (option-info-level info))
        (number (option-info-number info)))
    (flet ((int (n) (net-sys:set-sockopt-int h level number n socket))
           (raw (octets) (net-sys:set-sockopt-raw h level number octets 0 (length octets) socket)))
      (ecase (option-info-codec info)
        (:boolean (int (if value 1 0)))
        (:int (int value))
        (:seconds (net-sys:set-sockopt-usec h level number
                                            (if value (ceiling (* value 1000000)) 0) socket))
        (:milliseconds (int (ceiling (* value 1000))))
        (:linger (net-sys:set-sockopt-linger h (and value (ceiling value)) socket))
        (:keyword (int (cdr (assoc value (option-info-values info)))))
        (:string (raw (%string-octets (or value ""))))
        (:interface-index (int (nth-value 1 (%interface value (socket-address-family socket)))))
        (:ipv4-interface (multiple-value-bind (octets index) (%interface value :ipv4)
                           (net-sys:multicast-interface-v4 h octets index socket)))
        (:octets (raw value)))))
  value)

(defun %writable-info (socket name value)
  "The description of NAME for SOCKET, checked writable and VALUE checked."
  (let ((info (%option-info socket name)))
    (unless (option-info-writable info)
      (error 'socket-option-not-applicable :option name :socket socket
                                           :reason "the option is read-only"))
    (when (member (option-info-codec info) '(:ipv4-interface :interface-index))
      (%interface value (socket-address-family socket)))
    (%check-option-value info value)
    info))

;;; The API

(defun socket-option (socket name)
  "The value of option NAME (a keyword) of SOCKET, as a Lisp value: a
boolean, an integer, seconds as a real (NIL for none), a keyword, a string,
an address, or a plist (:TCP-INFO).  SETF-able at any time in the socket's
life.  Signals UNKNOWN-SOCKET-OPTION or SOCKET-OPTION-NOT-APPLICABLE before
any system call when NAME does not apply to SOCKET."
  (let ((info (%option-info socket name)))
    (unless (option-info-readable info)
      (error 'socket-option-not-applicable :option name :socket socket
                                           :reason "the option is write-only"))
    (%get-option socket info)))

(defun (setf socket-option) (value socket name)
  "Set option NAME of SOCKET to VALUE.  A VALUE of the wrong type signals a
TYPE-ERROR, and an option that does not apply a SOCKET-OPTION-ERROR, before
any system call.  Returns VALUE."
  (%set-option socket (%writable-info socket name value) value))

(defparameter *make-socket-keys*
  '(:address-family :type :protocol :blocking :timeout :external-format :buffering)
  "MAKE-SOCKET's own keywords; every other keyword it gets is a socket option.")

(defun %apply-socket-options (socket plist)
  "Set the socket options of PLIST (MAKE-SOCKET's arguments) on SOCKET, a
fresh socket.  Every option is checked before the first is set; if any
fails, SOCKET is closed and the condition goes on."
  (let ((done nil))
    (unwind-protect
         (let ((todo (loop for (key value) on plist by #'cddr
                           unless (member key *make-socket-keys*)
                             collect (cons (%writable-info socket key value) value))))
           (loop for (info . value) in todo
                 do (%set-option socket info value))
           (setf done t))
      (unless done (close socket :abort t)))
    socket))

(defun list-socket-options (socket)
  "A plist of every readable option that applies to SOCKET and its current
value, in definition order: the REPL view of a socket.  Options the system
refuses to report for this socket now (such as :MTU before connecting) are
left out."
  (loop for name in *socket-option-order*
        for info = (handler-case (%option-info socket name)
                     (socket-option-error () nil))
        when (and info (option-info-readable info) (option-info-listed info))
          nconc (handler-case (list name (%get-option socket info))
                  (socket-error () nil))))

(defun raw-socket-option (socket level number buffer &key (start 0) end)
  "getsockopt(2) of option NUMBER at LEVEL (:SOCKET :IP :IPV6 :TCP :UDP or a
number) into BUFFER[START,END), an (unsigned-byte 8) vector; returns the
number of octets the system wrote.  The escape hatch for options without a
definition."
  (net-sys:sockopt-raw (socket-handle socket) (%option-level level) number buffer start end socket))

(defun (setf raw-socket-option) (buffer socket level number &key (start 0) end)
  "setsockopt(2) of option NUMBER at LEVEL from BUFFER[START,END) as is.
Returns BUFFER."
  (net-sys:set-sockopt-raw (socket-handle socket) (%option-level level) number buffer start end
                           socket)
  buffer)

;;; The built-in table: Linux's options.  Each row is
;;; (name level c-constant type . keys of DEFINE-SOCKET-OPTION); a row whose
;;; constant this system lacks is left out.

(macrolet ((options (&rest rows)
             `(progn
                ,@(loop for (name level c type . keys) in rows
                        collect `(let ((number (%c ,c)))
                                   (when number
                                     (%register-socket-option
                                      (%make-socket-option ,name :level ,level :number number
                                                               :type ,type ,@keys))))))))
  (let ((inet '(:ipv4 :ipv6))
        (v4 '(:ipv4))
        (v6 '(:ipv6))
        (local '(:local))
        (dgram '(:datagram :raw)))
    (options
     ;; SOL_SOCKET
     (:reuse-address :socket "SO_REUSEADDR" :boolean)
     (:reuse-port :socket "SO_REUSEPORT" :boolean :address-families inet)
     (:keep-alive :socket "SO_KEEPALIVE" :boolean :socket-types '(:stream :seqpacket))
     (:broadcast :socket "SO_BROADCAST" :boolean :address-families v4 :socket-types dgram)
     (:linger :socket "SO_LINGER" :linger)
     (:send-buffer :socket "SO_SNDBUF" :int :value-type '(integer 0 2147483647))
     (:receive-buffer :socket "SO_RCVBUF" :int :value-type '(integer 0 2147483647))
     (:send-low-water :socket "SO_SNDLOWAT" :int :writable nil)
     (:receive-low-water :socket "SO_RCVLOWAT" :int :value-type '(integer 1 2147483647))
     (:send-timeout :socket "SO_SNDTIMEO" :seconds)
     (:receive-timeout :socket "SO_RCVTIMEO" :seconds)
     (:oob-inline :socket "SO_OOBINLINE" :boolean :address-families inet :socket-types '(:stream))
     (:error :socket "SO_ERROR" :errno :writable nil)
     (:socket-type :socket "SO_TYPE" :keyword :writable nil
      :values `((:stream . ,(%c "SOCK_STREAM")) (:datagram . ,(%c "SOCK_DGRAM"))
                (:seqpacket . ,(%c "SOCK_SEQPACKET")) (:raw . ,(%c "SOCK_RAW"))))
     (:socket-protocol :socket "SO_PROTOCOL" :int :writable nil)
     (:socket-family :socket "SO_DOMAIN" :keyword :writable nil
      :values `((:ipv4 . ,(%c "AF_INET")) (:ipv6 . ,(%c "AF_INET6")) (:local . ,(%c "AF_UNIX"))))
     (:accepting-connections :socket "SO_ACCEPTCONN" :boolean :writable nil)
     (:bind-to-device :socket "SO_BINDTODEVICE" :string :address-families inet :size 16)
     (:priority :socket "SO_PRIORITY" :int :value-type '(integer 0 2147483647))
     (:mark :socket "SO_MARK" :int)
     (:dont-route :socket "SO_DONTROUTE" :boolean :address-families inet)
     (:pass-credentials :socket "SO_PASSCRED" :boolean :address-families local)
     (:peer-credentials :socket "SO_PEERCRED" :credentials :address-families local
      :socket-types '(:stream :seqpacket) :writable nil)
     (:timestamp :socket "SO_TIMESTAMP" :boolean)
     (:busy-poll :socket "SO_BUSY_POLL" :int :address-families inet
      :value-type '(integer 0 2147483647))
     (:incoming-cpu :socket "SO_INCOMING_CPU" :int :address-families inet)
     (:zero-copy :socket "SO_ZEROCOPY" :boolean :address-families inet)
     ;; TCP
     (:nodelay :tcp "TCP_NODELAY" :boolean :address-families inet :socket-types '(:stream))
     (:cork :tcp "TCP_CORK" :boolean :address-families inet :socket-types '(:stream))
     (:keep-idle :tcp "TCP_KEEPIDLE" :int :address-families inet :socket-types '(:stream)
      :value-type '(integer 1 32767))
     (:keep-interval :tcp "TCP_KEEPINTVL" :int :address-families inet :socket-types '(:stream)
      :value-type '(integer 1 32767))
     (:keep-count :tcp "TCP_KEEPCNT" :int :address-families inet :socket-types '(:stream)
      :value-type '(integer 1 127))
     (:fast-open :tcp "TCP_FASTOPEN" :int :address-families inet :socket-types '(:stream)
      :value-type '(integer 0 2147483647))
     (:fast-open-connect :tcp "TCP_FASTOPEN_CONNECT" :boolean :address-families inet
      :socket-types '(:stream))
     (:quick-ack :tcp "TCP_QUICKACK" :boolean :address-families inet :socket-types '(:stream))
     (:user-timeout :tcp "TCP_USER_TIMEOUT" :milliseconds :address-families inet
      :socket-types '(:stream))
     (:max-segment :tcp "TCP_MAXSEG" :int :address-families inet :socket-types '(:stream)
      :value-type '(integer 0 65535))
     (:congestion :tcp "TCP_CONGESTION" :string :address-families inet :socket-types '(:stream)
      :value-type 'string :size 16)
     (:tcp-info :tcp "TCP_INFO" :tcp-info :address-families inet :socket-types '(:stream)
      :writable nil)
     (:defer-accept :tcp "TCP_DEFER_ACCEPT" :int :address-families inet :socket-types '(:stream)
      :value-type '(integer 0 2147483647))
     (:window-clamp :tcp "TCP_WINDOW_CLAMP" :int :address-families inet :socket-types '(:stream)
      :value-type '(integer 0 2147483647))
     (:syn-count :tcp "TCP_SYNCNT" :int :address-families inet :socket-types '(:stream)
      :value-type '(integer 1 127))
     (:fin-timeout :tcp "TCP_LINGER2" :int :address-families inet :socket-types '(:stream))
     (:not-sent-low-water :tcp "TCP_NOTSENT_LOWAT" :int :address-families inet
      :socket-types '(:stream) :value-type '(integer 0 2147483647))
     ;; UDP
     (:cork :udp "UDP_CORK" :boolean :address-families inet :socket-types '(:datagram))
     (:udp-segment :udp "UDP_SEGMENT" :int :address-families inet :socket-types '(:datagram)
      :value-type '(integer 0 65535))
     ;; IPv4
     (:ttl :ip "IP_TTL" :int :address-families v4 :value-type '(integer 1 255))
     (:tos :ip "IP_TOS" :int :address-families v4 :value-type '(integer 0 255))
     (:packet-info :ip "IP_PKTINFO" :boolean :address-families v4 :socket-types dgram)
     (:receive-tos :ip "IP_RECVTOS" :boolean :address-families v4)
     (:receive-ttl :ip "IP_RECVTTL" :boolean :address-families v4)
     (:receive-error :ip "IP_RECVERR" :boolean :address-families v4)
     (:free-bind :ip "IP_FREEBIND" :boolean :address-families v4)
     (:transparent :ip "IP_TRANSPARENT" :boolean :address-families v4)
     (:bind-address-no-port :ip "IP_BIND_ADDRESS_NO_PORT" :boolean :address-families v4)
     (:mtu-discover :ip "IP_MTU_DISCOVER" :keyword :address-families v4
      :values `((:dont . ,(%c "IP_PMTUDISC_DONT")) (:want . ,(%c "IP_PMTUDISC_WANT"))
                (:do . ,(%c "IP_PMTUDISC_DO")) (:probe . ,(%c "IP_PMTUDISC_PROBE"))
                (:interface . ,(%c "IP_PMTUDISC_INTERFACE")) (:omit . ,(%c "IP_PMTUDISC_OMIT"))))
     (:mtu :ip "IP_MTU" :int :address-families v4 :writable nil)
     (:header-included :ip "IP_HDRINCL" :boolean :address-families v4 :socket-types '(:raw))
     (:multicast-ttl :ip "IP_MULTICAST_TTL" :int :address-families v4 :socket-types dgram
      :value-type '(integer 0 255))
     (:multicast-loop :ip "IP_MULTICAST_LOOP" :boolean :address-families v4 :socket-types dgram)
     (:multicast-interface :ip "IP_MULTICAST_IF" :ipv4-interface :address-families v4
      :socket-types dgram)
     (:multicast-all :ip "IP_MULTICAST_ALL" :boolean :address-families v4 :socket-types dgram)
     ;; IPv6
     (:v6-only :ipv6 "IPV6_V6ONLY" :boolean :address-families v6)
     (:unicast-hops :ipv6 "IPV6_UNICAST_HOPS" :int :address-families v6
      :value-type '(integer -1 255))
     (:traffic-class :ipv6 "IPV6_TCLASS" :int :address-families v6 :value-type '(integer -1 255))
     (:packet-info :ipv6 "IPV6_RECVPKTINFO" :boolean :address-families v6 :socket-types dgram)
     (:receive-traffic-class :ipv6 "IPV6_RECVTCLASS" :boolean :address-families v6)
     (:receive-hop-limit :ipv6 "IPV6_RECVHOPLIMIT" :boolean :address-families v6)
     (:receive-error :ipv6 "IPV6_RECVERR" :boolean :address-families v6)
     (:free-bind :ipv6 "IPV6_FREEBIND" :boolean :address-families v6)
     (:transparent :ipv6 "IPV6_TRANSPARENT" :boolean :address-families v6)
     (:mtu-discover :ipv6 "IPV6_MTU_DISCOVER" :keyword :address-families v6
      :values `((:dont . ,(%c "IP_PMTUDISC_DONT")) (:want . ,(%c "IP_PMTUDISC_WANT"))
                (:do . ,(%c "IP_PMTUDISC_DO")) (:probe . ,(%c "IP_PMTUDISC_PROBE"))
                (:interface . ,(%c "IP_PMTUDISC_INTERFACE")) (:omit . ,(%c "IP_PMTUDISC_OMIT"))))
     (:mtu :ipv6 "IPV6_MTU" :int :address-families v6 :writable nil)
     (:multicast-hops :ipv6 "IPV6_MULTICAST_HOPS" :int :address-families v6 :socket-types dgram
      :value-type '(integer -1 255))
     (:multicast-loop :ipv6 "IPV6_MULTICAST_LOOP" :boolean :address-families v6
      :socket-types dgram)
     (:multicast-interface :ipv6 "IPV6_MULTICAST_IF" :interface-index :address-families v6
      :socket-types dgram)
     (:multicast-all :ipv6 "IPV6_MULTICAST_ALL" :boolean :address-families v6
      :socket-types dgram)
     ;; The IPv4 names also work on IPv6 sockets, for code that serves both.
     (:ttl :ipv6 "IPV6_UNICAST_HOPS" :int :address-families v6 :value-type '(integer -1 255)
      :listed nil)
     (:tos :ipv6 "IPV6_TCLASS" :int :address-families v6 :value-type '(integer -1 255)
      :listed nil)
     (:multicast-ttl :ipv6 "IPV6_MULTICAST_HOPS" :int :address-families v6 :socket-types dgram
      :value-type '(integer -1 255) :listed nil))))

(setf (documentation 'socket-option-error-option 'function)
      "The name of the option a SOCKET-OPTION-ERROR is about, a keyword."
      (documentation 'socket-option-error-socket 'function)
      "The socket a SOCKET-OPTION-ERROR is about, or NIL."
      (documentation 'socket-option-error-reason 'function)
      "What was wrong, a string, in a SOCKET-OPTION-ERROR."
      (documentation 'unknown-interface-name 'function)
      "The interface name an UNKNOWN-INTERFACE error did not find.")
