;;;; address.lsp -- IPv4 and IPv6 address objects and their designators.

(in-package "NET")

(defclass address ()
  ()
  (:documentation "The class of every network address."))

(defclass inet-address (address)
  ((octets :initarg :octets :reader address-octets
           :type (simple-array (unsigned-byte 8) (*))))
  (:documentation "An IP address, stored as its octets in network order."))

(defclass ipv4-address (inet-address)
  ()
  (:documentation "An IPv4 address: 4 octets."))

(defclass ipv6-address (inet-address)
  ((scope-id :initarg :scope-id :initform 0 :reader address-scope-id))
  (:documentation "An IPv6 address: 16 octets and a scope id (zone), 0 for none."))

(setf (documentation 'address-octets 'function)
      "The octets of an IP address, a fresh-looking but shared (simple-array (unsigned-byte 8) (*)): do not modify it.")
(setf (documentation 'address-scope-id 'function)
      "The scope id (interface index) of an IPv6 address; 0 when it has none.")

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
  (if (= (length octets) 4)
      (make-instance 'ipv4-address :octets octets)
      (make-instance 'ipv6-address :octets octets :scope-id scope-id)))

(defun %ipv6-groups (octets)
  (loop for i below 16 by 2
        collect (+ (* 256 (aref octets i)) (aref octets (1+ i)))))

(defun %longest-zero-run (groups)
  "Start and length of the first longest run of two or more zero groups."
  (let ((best-start nil) (best-len 1) (start nil))
    (loop for g in (append groups '(1))
          for i from 0
          do (cond ((zerop g) (unless start (setf start i)))
                   (start (when (> (- i start) best-len)
                            (setf best-start start best-len (- i start)))
                          (setf start nil))))
    (values best-start best-len)))

(defun %ipv6-string (octets scope-id)
  (let ((groups (%ipv6-groups octets)))
    (with-output-to-string (s)
      (if (and (every #'zerop (subseq groups 0 5)) (= (nth 5 groups) #xffff))
          (format s "::ffff:~{~d~^.~}" (coerce (subseq octets 12) 'list))
          (multiple-value-bind (start len) (%longest-zero-run groups)
            (if start
                (format s "~(~{~x~^:~}::~{~x~^:~}~)"
                        (subseq groups 0 start) (subseq groups (+ start len)))
                (format s "~(~{~x~^:~}~)" groups))))
      (unless (zerop scope-id)
        (format s "%~d" scope-id)))))

(defgeneric address-string (address)
  (:documentation "The text of ADDRESS: dotted quad for IPv4, RFC 5952
canonical form for IPv6 (with a %zone suffix when it has a scope id).")
  (:method ((a ipv4-address))
    (format nil "~{~d~^.~}" (coerce (address-octets a) 'list)))
  (:method ((a ipv6-address))
    (%ipv6-string (address-octets a) (address-scope-id a))))

(defmethod print-object ((a inet-address) stream)
  (print-unreadable-object (a stream)
    (format stream "~:@(~a~) ~a" (class-name (class-of a)) (address-string a))))

(defun %invalid (designator reason)
  (error 'invalid-address :text designator :reason reason))

(defun %address-from-string (text)
  (let ((parsed (net-sys:ip-parse text)))
    (unless parsed
      (%invalid text "not a numeric IPv4 or IPv6 address"))
    (%make-inet-address (car parsed) (cdr parsed))))

(defun %address-from-vector (v)
  (unless (and (member (length v) '(4 16))
               (every (lambda (x) (typep x '(unsigned-byte 8))) v))
    (%invalid v "an address vector has 4 or 16 elements, each of 0 to 255"))
  (%make-inet-address (%octets v)))

(defun %address-from-integer (n family)
  (let ((size (ecase family (:ipv4 4) (:ipv6 16))))
    (unless (< -1 n (expt 2 (* 8 size)))
      (%invalid n (format nil "out of range for ~a" family)))
    (%make-inet-address
     (%octets (loop for i from (1- size) downto 0 collect (ldb (byte 8 (* 8 i)) n))))))

(defun ensure-address (designator &key address-family)
  "Return the address DESIGNATOR designates: an address object (returned
as is), a numeric string (\"127.0.0.1\", \"::1\", \"fe80::1%lo\"), a vector
of 4 or 16 octets, or an integer (IPv4 unless ADDRESS-FAMILY is :IPV6).
Signals INVALID-ADDRESS when it is not a valid address."
  (let ((a (typecase designator
             (address designator)
             (string (%address-from-string designator))
             (vector (%address-from-vector designator))
             (integer (%address-from-integer designator (or address-family :ipv4)))
             (t (error 'type-error :datum designator
                                   :expected-type '(or address string vector integer))))))
    (when (and address-family (not (eq address-family (%family-of a))))
      (%invalid designator (format nil "not an ~a address" address-family)))
    a))

(defun %family-of (address)
  (etypecase address
    (ipv4-address :ipv4)
    (ipv6-address :ipv6)))

(defun address= (a b)
  "True if designators A and B name the same address."
  (let ((a (ensure-address a)) (b (ensure-address b)))
    (and (eq (class-of a) (class-of b))
         (equalp (address-octets a) (address-octets b))
         (or (not (ipv6-address-p a))
             (= (address-scope-id a) (address-scope-id b))))))

(defparameter +ipv4-any+ (%address-from-vector #(0 0 0 0))
  "The IPv4 wildcard address, 0.0.0.0.")
(defparameter +ipv4-loopback+ (%address-from-vector #(127 0 0 1))
  "The IPv4 loopback address, 127.0.0.1.")
(defparameter +ipv6-any+ (%address-from-vector (make-array 16 :initial-element 0))
  "The IPv6 wildcard address, ::.")
(defparameter +ipv6-loopback+
  (%address-from-vector (let ((v (make-array 16 :initial-element 0))) (setf (aref v 15) 1) v))
  "The IPv6 loopback address, ::1.")

(defclass local-address (address)
  ((path :initarg :path :reader local-address-path
         :documentation "The socket's file name, or its abstract name (a string).")
   (abstract :initarg :abstract :initform nil :reader local-address-abstract-p
             :documentation "True for a Linux abstract name, which lives outside the file system."))
  (:documentation "The address of a Unix-domain socket: a path in the file
system, or a Linux abstract name."))

(defun local-address-p (x)
  "True if X is a LOCAL-ADDRESS."
  (typep x 'local-address))

(defun make-local-address (path &key abstract)
  "The Unix-domain address of PATH (a string or pathname); with ABSTRACT,
the Linux abstract name PATH instead of a file."
  (make-instance 'local-address
                 :path (if (pathnamep path) (namestring path) path)
                 :abstract (and abstract t)))

(defmethod address-string ((a local-address))
  (if (local-address-abstract-p a)
      (format nil "@~a" (local-address-path a))
      (local-address-path a)))

(defmethod print-object ((a local-address) stream)
  (print-unreadable-object (a stream)
    (format stream "LOCAL-ADDRESS ~s~:[~; (abstract)~]"
            (local-address-path a) (local-address-abstract-p a))))
