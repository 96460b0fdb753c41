;;;; conditions.lsp -- the condition tree, with a class per line of errors.def.

(in-package "NET")

(define-condition network-error (error)
  ()
  (:documentation "The root of every condition NET signals."))

(define-condition socket-error (network-error)
  ((errno :initarg :errno :initform nil :reader socket-error-errno
          :documentation "The error code: a positive errno, or NET's own negative code.")
   (syscall :initarg :syscall :initform nil :reader socket-error-syscall
            :documentation "The name of the system call that failed, a string.")
   (socket :initarg :socket :initform nil :reader socket-error-socket
           :documentation "The socket the call was made on, or NIL.")
   (message :initarg :message :initform nil :reader socket-error-message
            :documentation "A description of the error."))
  (:report (lambda (c s)
             (format s "~a~@[ on ~a~]: ~a~@[ (errno ~d)~]"
                     (or (socket-error-syscall c) "socket call")
                     (socket-error-socket c)
                     (or (socket-error-message c) "error")
                     (let ((e (socket-error-errno c))) (and e (plusp e) e)))))
  (:documentation "A system call on a socket failed.  Subclasses name the
errno (CONNECTION-REFUSED, ADDRESS-IN-USE, ...); their reports name the call,
the socket and the reason."))

(define-condition resource-exhausted (socket-error)
  ()
  (:documentation "The system ran out of descriptors, buffers or memory."))

(define-condition limit-exceeded (network-error)
  ((limit :initarg :limit :reader limit-exceeded-limit
          :documentation "Which limit: :LINE-LENGTH or :WRITE-QUEUE.")
   (maximum :initarg :maximum :reader limit-exceeded-maximum
            :documentation "The limit's value, in octets.")
   (socket :initarg :socket :initform nil :reader limit-exceeded-socket
           :documentation "The socket the limit was reached on."))
  (:report (lambda (c s)
             (format s "~a~@[ on ~a~]: more than ~d octets"
                     (case (limit-exceeded-limit c)
                       (:line-length "a line longer than *MAX-LINE-LENGTH*")
                       (:write-queue "a write queue over its MAX-QUEUED")
                       (t (limit-exceeded-limit c)))
                     (limit-exceeded-socket c) (limit-exceeded-maximum c))))
  (:documentation "A peer made a connection exceed one of NET's limits
against hostile peers: a line longer than *MAX-LINE-LENGTH* (:LINE-LENGTH),
or a write queue that would hold more than its watcher's MAX-QUEUED
octets (:WRITE-QUEUE).  Nothing is consumed or queued by the call that
signals it; the connection is usually best closed."))

(define-condition invalid-address (network-error parse-error)
  ((text :initarg :text :initform nil :reader invalid-address-text
         :documentation "The designator that could not be made an address.")
   (reason :initarg :reason :initform "not a valid address" :reader invalid-address-reason
           :documentation "What was wrong with it, a string."))
  (:report (lambda (c s)
             (let ((*print-pretty* nil) (*print-length* 20))
               (format s "Invalid address ~s: ~a"
                       (invalid-address-text c) (invalid-address-reason c)))))
  (:documentation "A string, vector or integer that is not a valid address."))

(define-condition resolver-error (network-error)
  ((name :initarg :name :initform nil :reader resolver-error-name
         :documentation "What was being looked up: a host name, an address,
a service or a protocol.")
   (operation :initarg :operation :initform nil :reader resolver-error-operation
              :documentation "The C call that failed, e.g. \"getaddrinfo\".")
   (code :initarg :code :initform nil :reader resolver-error-code
         :documentation "NET's resolver code: -3000 plus getaddrinfo's EAI_ value,
or -3100 (unknown service) and -3101 (unknown protocol).")
   (message :initarg :message :initform nil :reader resolver-error-message
            :documentation "The resolver's message (gai_strerror's text)."))
  (:report (lambda (c s)
             (format s "~a~@[ of ~s~] failed: ~a"
                     (or (resolver-error-operation c) "name lookup")
                     (resolver-error-name c)
                     (or (resolver-error-message c) "resolver error"))))
  (:documentation "A name could not be resolved.  Subclasses: HOST-NOT-FOUND
(the name, or an address of the asked family, does not exist), RESOLVER-AGAIN
(a temporary failure: trying again later may work), RESOLVER-FAILURE (a
permanent failure of the resolver itself), UNKNOWN-SERVICE and
UNKNOWN-PROTOCOL."))

(loop for (reader doc)
        in '((socket-error-errno "The error code of a SOCKET-ERROR: a positive errno, or NET's own negative code.")
             (socket-error-syscall "The name of the system call that failed, a string.")
             (socket-error-socket "The socket the failed call was made on, or NIL.")
             (socket-error-message "The description of a SOCKET-ERROR, a string.")
             (invalid-address-text "The designator an INVALID-ADDRESS refused.")
             (invalid-address-reason "What was wrong with the designator, a sentence.")
             (resolver-error-name "What was being looked up: host name, address, service or protocol.")
             (resolver-error-operation "The C call that failed, e.g. \"getaddrinfo\".")
             (resolver-error-code "NET's resolver code: -3000 plus the EAI_ value, or -3100/-3101.")
             (resolver-error-message "The resolver's message (gai_strerror's text).")
             (limit-exceeded-limit "Which limit a LIMIT-EXCEEDED is about: :LINE-LENGTH or :WRITE-QUEUE.")
             (limit-exceeded-maximum "The value of the limit a LIMIT-EXCEEDED reports, in octets.")
             (limit-exceeded-socket "The socket a LIMIT-EXCEEDED was signalled on."))
      do (setf (documentation reader 'function) doc))

;;; One class per row of src/c/net/errors.def, read at compile time: the C
;;; enum and these classes come from the same lines.
(eval-when (:compile-toplevel :load-toplevel :execute)
  (defun read-error-table ()
    "The rows of errors.def as lists (c-name lisp-class parent description)."
    (let ((file (merge-pathnames "../../c/net/errors.def"
                                 (or *compile-file-truename* *load-truename*))))
      (with-open-file (in file)
        (loop for line = (read-line in nil)
              while line
              for row = (parse-error-row line)
              when row collect row))))
  (defun parse-error-row (line)
    (let ((open (position #\( line)))
      (when (and open (or (eql 0 (search "NET_ERRNO(" line))
                          (eql 0 (search "NET_OWN(" line))))
        (let* ((args (read-from-string
                      (substitute #\Space #\, (subseq line open))))
               (own (eql 0 (search "NET_OWN(" line))))
          (if own
              (destructuring-bind (name code class parent doc) args
                (declare (ignore code))
                (list name class parent doc))
              args))))))

(defmacro define-error-classes ()
  `(progn
     ,@(loop for (c-name class parent doc) in (remove-duplicates
                                                 (read-error-table)
                                                 :key #'second :test #'string=
                                                 :from-end t)
             for sym = (intern (string-upcase class) "NET")
             collect `(define-condition ,sym (,(intern (string-upcase parent) "NET"))
                        ()
                        (:documentation ,(format nil "~@(~a~) (~a)." doc c-name)))
             collect `(eval-when (:compile-toplevel :load-toplevel :execute)
                        (export ',sym "NET")))))

(define-error-classes)

(defvar *error-classes* (make-hash-table)
  "Error code -> condition class name, from the C side's copy of errors.def.")

(defvar *error-prototypes* (make-hash-table)
  "Error code -> the %ERROR-PROTOTYPE of its code; read-only once loaded.")

(defvar *socket-error-prototype* nil
  "The %ERROR-PROTOTYPE of SOCKET-ERROR, for codes errors.def does not name.")

(defun %errno-of-code (code)
  "The ERRNO slot of the condition of error CODE."
  (if (minusp code) (if (> code -3000) (- code) code) code))

(defun %error-prototype (class code)
  "#(condition syscall-location socket-location class): a condition of
CLASS, a subclass of SOCKET-ERROR, for error CODE (its errno and message
set), made once by MAKE-CONDITION, and the locations of the slots set per
error.  %SIGNAL-ERROR signals copies of it: MAKE-CONDITION with initargs
costs tens of thousands of instructions (MAKE-INSTANCE's generic
initialization), a copy a few hundred, and a server met one per connection
reset by its client.  The copies of a code share its message string."
  (let* ((c (make-condition class :errno (%errno-of-code code)
                                  :message (net-sys:strerror code)))
         (slots (clos:class-slots (class-of c))))
    (flet ((loc (name)
             (clos:slot-definition-location
              (find name slots :key #'clos:slot-definition-name))))
      (vector c (loc 'syscall) (loc 'socket) class))))

(defun load-error-table (table)
  (clrhash *error-classes*)
  (clrhash *error-prototypes*)
  (loop for (code . class) in table
        for name = (intern (string-upcase class) "NET")
        do (setf (gethash code *error-classes*) name)
           (when (subtypep name 'socket-error)
             (setf (gethash code *error-prototypes*) (%error-prototype name code))))
  (setf *socket-error-prototype* (%error-prototype 'socket-error 0)))

(load-error-table (net-sys:init))

(defun %make-socket-error (entry syscall socket)
  "A fresh condition like ENTRY's (a %ERROR-PROTOTYPE) with these slots."
  (declare (optimize (speed 3) (safety 0)) (simple-vector entry))
  (let ((c (si:copy-instance (svref entry 0))))
    (si:instance-set c (the fixnum (svref entry 1)) syscall)
    (si:instance-set c (the fixnum (svref entry 2)) socket)
    c))

(declaim (inline %resolver-code-p))
(defun %resolver-code-p (code)
  (and (typep code 'fixnum) (<= -3999 (the fixnum code) -3000)))

(declaim (ftype (function (t) simple-vector) %slot-locations)) ; socket.lsp

(defun %reset-code (socket)
  "The code of the connection reset met earlier on SOCKET, or NIL."
  (si:instance-ref socket (svref (%slot-locations socket) 7)))

(defun %check-reset (socket)
  "Called where a read of SOCKET met end of file: signal the connection's
reset again if one was signalled on it."
  (let ((code (%reset-code socket)))
    (when code
      (%failed code "recv" socket t))))

(defun %error-condition (code syscall socket)
  "The condition for error CODE of SYSCALL on SOCKET, made, not signalled:
what %SIGNAL-ERROR signals, and what RECEIVE and SEND with :ERRORP NIL
return.  A connection reset is remembered on SOCKET (%CHECK-RESET).  For
the resolver's codes (-3000 to -3999) SOCKET is the name looked up."
  (if (%resolver-code-p code)
      (make-condition (gethash code *error-classes* 'resolver-failure)
                      :code code :operation syscall :name socket
                      :message (net-sys:resolver-strerror code))
      (let ((entry (gethash code *error-prototypes*)))
        (cond (entry
               ;; Kept on the socket itself: with a weak synchronized hash
               ;; table here, a server reading thousands of reset
               ;; connections died of ECL's rwlock error "Thread already
               ;; owns this lock".
               (when (and socket (eq (svref entry 3) 'connection-reset)
                          (si::of-class-p socket 'socket)) ; TYPEP: ECL's generic CL_TYPEP here
                 (si:instance-set socket (svref (%slot-locations socket) 7) code))
               (%make-socket-error entry syscall socket))
              (t
               (let ((class (gethash code *error-classes*)))
                 (if class              ; not a SOCKET-ERROR: made as before
                     (make-condition class :errno (%errno-of-code code) :syscall syscall
                                           :socket socket :message (net-sys:strerror code))
                     ;; A code errors.def does not name: a SOCKET-ERROR.
                     (let ((c (%make-socket-error *socket-error-prototype* syscall socket)))
                       (setf (slot-value c 'errno) (%errno-of-code code)
                             (slot-value c 'message) (net-sys:strerror code))
                       c))))))))

(defun %failed (code syscall socket errorp)
  "The failure CODE of SYSCALL on SOCKET: signalled, or with ERRORP NIL
returned, as NIL and its condition (RECEIVE and SEND with :ERRORP NIL)."
  (let ((c (%error-condition code syscall socket)))
    (if errorp (error c) (values nil c))))

(defun net-sys::%signal-error (code syscall socket)
  "Signal the condition for error CODE raised by SYSCALL on SOCKET
(%ERROR-CONDITION).  The one function through which the C glue reports
failure."
  (error (%error-condition code syscall socket)))
