;;;; address.lsp -- IPv4, IPv6 and Unix-domain address objects and their designators.

(in-package "NET")

(defclass address ()
  ((sockaddr-form :initform nil
                  :documentation "#(family octets-or-path scope-or-abstract-p): the form the
glue takes, computed by SEND-TO the first time the address is sent to
(addresses are immutable), or NIL."))
  (:documentation "The class of every network address."))

(defclass inet-address (address)
  ((octets :initarg :octets :reader address-octets
           :type (simple-array (unsigned-byte 8) (*))))
  (:documentation "An IP address, stored as its octets in network order."))

(defclass ipv4-address (inet-address)
  ()
  (:documentation "An IPv4 address: 4 octets."))

(defclass ipv6-address (inet-address)
  ((scope-id :initarg :scope-id :initform 0 :reader %ipv6-scope-id))
  (:documentation "An IPv6 address: 16 octets and a scope id (zone), 0 for none."))

(setf (documentation 'address-octets 'function)
      "The octets of an IP address in network order, a (simple-array
(unsigned-byte 8) (*)) of 4 or 16 elements.  It is the address's own
vector: do not modify it.")

(defun address-scope-id (address)
  "The scope id (interface index) of an IPv6 address; 0 when it has none,
and always 0 for an IPv4 address."
  ;; A plain function: the socket layer calls it for every datagram sent.
  (etypecase address
    (ipv6-address (%ipv6-scope-id address))
    (ipv4-address 0)))

(defun ipv4-address-p (x)
  "True if X is an IPV4-ADDRESS."
  (typep x 'ipv4-address))

(defun ipv6-address-p (x)
  "True if X is an IPV6-ADDRESS."
  (typep x 'ipv6-address))

(defun %octets (list-or-vector)
  (let ((v (make-array (length list-or-vector) :element-type '(unsigned-byte 8))))
    (replace v list-or-vector)))

(defun %make-inet-address (octets &optional (scope-id 0))
  "The address of OCTETS (4 or 16, copied unless already an octet vector)."
  (%inet-address (if (typep octets '(simple-array (unsigned-byte 8) (*)))
                     octets
                     (%octets octets))
                 scope-id))

(defvar *inet-address-prototypes*)

(defun %inet-address (octets scope-id)
  "The address of OCTETS, a fresh (simple-array (unsigned-byte 8) (4 or 16))
it keeps (the C glue's, say): both callers give one, so it is not checked
again (at safety 2, the THE below was a call of CL:TYPEP, 1,200
instructions per accepted connection)."
  (declare (optimize (speed 3) (safety 0)))
  (let* ((p *inet-address-prototypes*)
         (v4 (= (length (the (simple-array (unsigned-byte 8) (*)) octets)) 4))
         (a (si:copy-instance (svref p (if v4 0 1)))))
    (si:instance-set a (svref p 2) octets)
    (unless v4
      (si:instance-set a (svref p 3) scope-id))
    a))

(defvar *inet-address-prototypes*
  (flet ((loc (class name)
           (clos:slot-definition-location
            (find name (clos:class-slots (find-class class))
                  :key #'clos:slot-definition-name))))
    (let ((v4 (make-instance 'ipv4-address :octets (%octets '(0 0 0 0))))
          (v6 (make-instance 'ipv6-address :octets (%octets (make-list 16 :initial-element 0)))))
      (assert (eql (loc 'ipv4-address 'octets) (loc 'ipv6-address 'octets)))
      (vector v4 v6 (loc 'ipv6-address 'octets) (loc 'ipv6-address 'scope-id))))
  "#(ipv4 ipv6 octets-location scope-id-location): %MAKE-INET-ADDRESS copies
one of these addresses and sets its slots, a few hundred instructions
where MAKE-INSTANCE costs tens of thousands (an accepted connection's peer,
a resolved address).")

(defgeneric address-string (address)
  (:documentation "The text of ADDRESS: dotted decimal for IPv4; the RFC 5952
canonical form for IPv6 (lower-case hex, the first longest run of two or
more zero groups written as ::, IPv4-mapped addresses as ::ffff:a.b.c.d),
with \"%N\" when it has scope id N; for a local address, its path, or \"@\"
and the name when abstract.  ENSURE-ADDRESS reads the text of an IP address
back to an equal address.")
  (:method ((a inet-address))
    (net-sys:ip-format (address-octets a) (address-scope-id a))))

(defun %print-readably-p ()
  (and *print-readably* *read-eval*))

(defmethod print-object ((a inet-address) stream)
  (if (%print-readably-p)
      (format stream "#.(NET:ENSURE-ADDRESS ~s)" (address-string a))
      (print-unreadable-object (a stream)
        (format stream "~a ~a" (if (ipv4-address-p a) "IPV4-ADDRESS" "IPV6-ADDRESS")
                (address-string a)))))

(defun %invalid (designator reason)
  (error 'invalid-address :text designator :reason reason))

;;; ---- Designators --------------------------------------------------------

(defun %ascii-check (text)
  (let ((bad (position-if (lambda (c) (let ((code (char-code c)))
                                        (or (zerop code) (> code 126))))
                          text)))
    (when bad
      (%invalid text (if (zerop (char-code (char text bad)))
                         "the text contains a NUL character"
                         "the text contains a non-ASCII character")))))

(defun %address-from-string (text)
  (%ascii-check text)
  (let ((parsed (net-sys:ip-parse-text text)))
    (when (stringp parsed)
      (%invalid text (if (and (notany (lambda (c) (member c '(#\: #\%))) text)
                              (some #'alpha-char-p text))
                         (concatenate 'string parsed
                                      "; a host name is no address: resolve it with LOOKUP-HOST")
                         parsed)))
    (%make-inet-address (car parsed) (cdr parsed))))

(defun %address-from-vector (v)
  (unless (member (length v) '(4 16))
    (%invalid v (format nil "an address vector has 4 or 16 elements, not ~d" (length v))))
  (let ((bad (position-if-not (lambda (x) (typep x '(unsigned-byte 8))) v)))
    (when bad
      (%invalid v (format nil "element ~d, ~s, is not an octet (an integer from 0 to 255)"
                          bad (aref v bad)))))
  (%make-inet-address (%octets v)))

(defun %address-from-integer (n family)
  (let ((size (ecase family (:ipv4 4) (:ipv6 16))))
    (unless (< -1 n (ash 1 (* 8 size)))
      (%invalid n (format nil "out of range for an ~a address, 0 to 2^~d - 1"
                          (if (eq family :ipv4) "IPv4" "IPv6") (* 8 size))))
    (%make-inet-address
     (%octets (loop for i from (1- size) downto 0 collect (ldb (byte 8 (* 8 i)) n))))))

(defun address-family (address)
  "The family of ADDRESS (an address object): :IPV4, :IPV6 or :LOCAL."
  (etypecase address
    (ipv4-address :ipv4)
    (ipv6-address :ipv6)
    (local-address :local)))

(defun %family-name (family)
  (ecase family
    (:ipv4 "an IPv4 address") (:ipv6 "an IPv6 address") (:local "a Unix-domain address")))

(defun %check-family (family)
  (unless (member family '(nil :ipv4 :ipv6 :local))
    (error 'type-error :datum family :expected-type '(member nil :ipv4 :ipv6 :local))))

(defun %designated-address (designator family)
  (typecase designator
    (address designator)
    (pathname (make-local-address designator))
    (string (if (eq family :local)
                (make-local-address designator)
                (%address-from-string designator)))
    (vector (%address-from-vector designator))
    ;; Without a family, an integer too large for IPv4 can only mean IPv6.
    (integer (%address-from-integer designator
                                    (if (or (eq family :ipv6)
                                            (and (null family) (>= designator (ash 1 32))))
                                        :ipv6
                                        :ipv4)))
    (t (error 'type-error :datum designator
                          :expected-type '(or address string vector integer pathname)))))

(defun ensure-address (designator &key address-family (errorp t))
  "Return the address DESIGNATOR designates:
- an address object, returned as it is;
- a string: a numeric IPv4 address in dotted decimal (\"127.0.0.1\"; four
  parts, no leading zeros), or an IPv6 address (\"::1\", \"fe80::1%lo\" with a
  zone, an interface name or number); with ADDRESS-FAMILY :LOCAL, a
  Unix-domain path;
- a pathname: a Unix-domain path;
- a vector of 4 or 16 integers from 0 to 255 (an IPv4 or IPv6 address);
- an integer, the address as a big-endian number (see ADDRESS-INTEGER):
  IPv4 when below 2^32, IPv6 when larger or when ADDRESS-FAMILY is :IPV6.
When ADDRESS-FAMILY (:IPV4, :IPV6 or :LOCAL) is given, the address must be
of that family.  Signals INVALID-ADDRESS, saying what is wrong, for a
designator that is no valid address -- or, with ERRORP NIL, returns NIL
instead (to test text that may or may not be an address) -- and TYPE-ERROR
for other objects, whatever ERRORP."
  (%check-family address-family)
  (if errorp
      (%ensure-address designator address-family)
      (handler-case (%ensure-address designator address-family)
        (invalid-address () nil))))

(defun %ensure-address (designator address-family)
  (let ((a (%designated-address designator address-family)))
    (when (and address-family (not (eq address-family (address-family a))))
      (%invalid designator (format nil "it is ~a, not ~a"
                                   (%family-name (address-family a))
                                   (%family-name address-family))))
    a))

(defun address-integer (address)
  "The IP address ADDRESS (a designator) as a non-negative integer: its
octets read as one big-endian number, 0 to 2^32 - 1 for IPv4, 0 to 2^128 - 1
for IPv6 (the scope id is not part of it).  ENSURE-ADDRESS reads it back:
(ensure-address (address-integer a)) is A for IPv4, and for IPv6 whenever
the integer is 2^32 or more (else give :ADDRESS-FAMILY :IPV6)."
  (let ((n 0))
    (loop for octet across (address-octets (%inet address))
          do (setf n (logior (ash n 8) octet)))
    n))

;;; ---- Local (Unix-domain) addresses ---------------------------------------

(defclass local-address (address)
  ((path :initarg :path :reader local-address-path
         :documentation "The socket's file name, or its abstract name (a string).")
   (abstract :initarg :abstract :initform nil :reader local-address-abstract-p
             :documentation "True for a Linux abstract name, which lives outside the file system."))
  (:documentation "The address of a Unix-domain socket: a path in the file
system, or a Linux abstract name."))

(setf (documentation 'local-address-path 'function)
      "The file name of a local address, or its abstract name (a string, without a leading NUL or @)."
      (documentation 'local-address-abstract-p 'function)
      "True if a local address is a Linux abstract name rather than a file.")

(defun local-address-p (x)
  "True if X is a LOCAL-ADDRESS."
  (typep x 'local-address))

(defconstant +local-path-max+ 107
  "The most octets (UTF-8) of a Unix-domain path or abstract name: sun_path
holds 108, one of which is the terminating NUL of a path or the leading NUL
of an abstract name.")

(defun %utf-8-length (string)
  "The octets of STRING as a socket name: UTF-8, where U+DC80 to U+DCFF
stand for the octets #x80 to #xFF that were not UTF-8."
  (loop for c across string
        for code = (char-code c)
        sum (cond ((< code #x80) 1) ((<= #xdc80 code #xdcff) 1) ((< code #x800) 2)
                  ((< code #x10000) 3) (t 4))))

(defun %check-local-path (path abstract)
  "An abstract name is any string of at most +LOCAL-PATH-MAX+ octets, empty or
holding NULs (the kernel takes its length, not a terminator, and reports
such names for peers); a path is neither."
  (unless abstract
    (when (zerop (length path))
      (%invalid path "a socket path is not empty"))
    (when (find (code-char 0) path)
      (%invalid path "a socket path contains no NUL character")))
  (let ((n (%utf-8-length path)))
    (when (> n +local-path-max+)
      (%invalid path (format nil "~d octets in UTF-8, but a socket path or abstract ~
name holds at most ~d" n +local-path-max+)))))

(defun make-local-address (path &key abstract)
  "The Unix-domain address of PATH (a string or pathname); with ABSTRACT true,
the Linux abstract name PATH (a string), which lives outside the file system.
PATH takes at most 107 octets in UTF-8 (the size of sun_path less one); a
file name is non-empty and holds no NUL character, while an abstract name
may be empty or hold NULs, as the kernel allows (and reports for peers).
Otherwise INVALID-ADDRESS."
  (let ((path (etypecase path
                (string (coerce path 'simple-string))
                (pathname (namestring path)))))
    (%check-local-path path abstract)
    (make-instance 'local-address :path path :abstract (and abstract t))))

(defmethod address-string ((a local-address))
  (if (local-address-abstract-p a)
      (format nil "@~a" (local-address-path a))
      (local-address-path a)))

(defmethod print-object ((a local-address) stream)
  (if (%print-readably-p)
      (format stream "#.(NET:MAKE-LOCAL-ADDRESS ~s~:[~; :ABSTRACT T~])"
              (local-address-path a) (local-address-abstract-p a))
      (print-unreadable-object (a stream)
        (format stream "LOCAL-ADDRESS ~s~:[~; (abstract)~]"
                (local-address-path a) (local-address-abstract-p a)))))

;;; ---- Equality -----------------------------------------------------------

(defun %address= (a b)
  (typecase a
    (inet-address (and (eq (class-of a) (class-of b))
                       (equalp (address-octets a) (address-octets b))
                       (= (address-scope-id a) (address-scope-id b))))
    (local-address (and (local-address-p b)
                        (string= (local-address-path a) (local-address-path b))
                        (eq (local-address-abstract-p a) (local-address-abstract-p b))))))

(defun address= (a b)
  "True if designators A and B name the same address: same family, same
octets and scope id (IP), or same path and kind (local).  An IPv4 address
and its IPv4-mapped IPv6 form are not ADDRESS=; compare them after
IPV4-TO-IPV6."
  (%address= (ensure-address a) (ensure-address b)))

(defun address-key (address)
  "A string naming the address that ADDRESS designates, such that two
designators give EQUAL keys exactly when they are ADDRESS=: use it as the key
of an EQUAL hash table of addresses (address objects themselves are only EQL
to themselves)."
  (let ((a (ensure-address address)))
    (etypecase a
      (ipv4-address (concatenate 'string "ipv4:" (address-string a)))
      (ipv6-address (concatenate 'string "ipv6:" (address-string a)))
      (local-address (concatenate 'string (if (local-address-abstract-p a) "abstract:" "local:")
                                  (local-address-path a))))))

;;; ---- Predicates and conversions --------------------------------------------

(defun %inet (designator)
  (let ((a (ensure-address designator)))
    (unless (typep a 'inet-address)
      (%invalid designator "not an IP address"))
    a))

(defun %prefix-p (octets prefix bits)
  "True if the first BITS bits of OCTETS are those of PREFIX (a list)."
  (loop for p in prefix
        for i from 0
        for n = (min 8 (- bits (* 8 i)))
        while (plusp n)
        always (= (ldb (byte n (- 8 n)) (aref octets i))
                  (ldb (byte n (- 8 n)) p))))

(defun address-v4-mapped-p (address)
  "True if ADDRESS is an IPv4-mapped IPv6 address, ::ffff:a.b.c.d."
  (let ((a (%inet address)))
    (and (ipv6-address-p a)
         (%prefix-p (address-octets a) '(0 0 0 0 0 0 0 0 0 0 255 255) 96))))

(defun %v4-octets (a)
  "The IPv4 octets of A, an IPv4 address or an IPv4-mapped one; else NIL."
  (cond ((ipv4-address-p a) (address-octets a))
        ((address-v4-mapped-p a) (subseq (address-octets a) 12))))

(defun address-loopback-p (address)
  "True if ADDRESS is a loopback address: 127.0.0.0/8, ::1, or an
IPv4-mapped address in 127.0.0.0/8."
  (let* ((a (%inet address)) (v4 (%v4-octets a)))
    (if v4
        (= (aref v4 0) 127)
        (%prefix-p (address-octets a) '(0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1) 128))))

(defun address-multicast-p (address)
  "True if ADDRESS is a multicast address: 224.0.0.0/4 or ff00::/8."
  (let* ((a (%inet address)) (v4 (%v4-octets a)))
    (if (ipv4-address-p a)
        (%prefix-p v4 '(224) 4)
        (%prefix-p (address-octets a) '(#xff) 8))))

(defun address-any-p (address)
  "True if ADDRESS is the wildcard (unspecified) address: 0.0.0.0 or ::."
  (every #'zerop (address-octets (%inet address))))

(defun address-link-local-p (address)
  "True if ADDRESS is link-local: 169.254.0.0/16 or fe80::/10."
  (let ((a (%inet address)))
    (if (ipv4-address-p a)
        (%prefix-p (address-octets a) '(169 254) 16)
        (%prefix-p (address-octets a) '(#xfe #x80) 10))))

(defun ipv4-to-ipv6 (address)
  "The IPv4-mapped IPv6 address (::ffff:a.b.c.d) of the IPv4 address
ADDRESS; an IPv6 address is returned as it is."
  (let ((a (%inet address)))
    (if (ipv6-address-p a)
        a
        (%make-inet-address (concatenate '(vector (unsigned-byte 8))
                                         #(0 0 0 0 0 0 0 0 0 0 255 255)
                                         (address-octets a))))))

(defun ipv6-to-ipv4 (address)
  "The IPv4 address of the IPv4-mapped IPv6 address ADDRESS; an IPv4 address
is returned as it is.  Signals INVALID-ADDRESS for other IPv6 addresses."
  (let ((a (%inet address)))
    (cond ((ipv4-address-p a) a)
          ((address-v4-mapped-p a) (%make-inet-address (subseq (address-octets a) 12)))
          (t (%invalid address "not an IPv4-mapped IPv6 address (::ffff:a.b.c.d)")))))

;;; ---- Constants --------------------------------------------------------------

(defparameter +ipv4-any+ (%address-from-vector #(0 0 0 0))
  "The IPv4 wildcard address, 0.0.0.0.")
(defparameter +ipv4-loopback+ (%address-from-vector #(127 0 0 1))
  "The IPv4 loopback address, 127.0.0.1.")
(defparameter +ipv6-any+ (%address-from-vector (make-array 16 :initial-element 0))
  "The IPv6 wildcard (unspecified) address, ::.")
(defparameter +ipv6-loopback+
  (%address-from-vector (let ((v (make-array 16 :initial-element 0))) (setf (aref v 15) 1) v))
  "The IPv6 loopback address, ::1.")
