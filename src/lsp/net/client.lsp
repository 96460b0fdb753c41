;;;; client.lsp -- the high level: connect-to (Happy Eyeballs), make-listener, the with- macros.

(in-package "NET")

;;; Defined in files compiled before this one (socket.lsp, address.lsp).
(declaim (special *deadline* +ipv4-any+ +ipv6-any+ +ipv4-loopback+ +ipv6-loopback+))

;;; The condition of a connection that no address could make

(define-condition connection-failed (network-error)
  ((host :initarg :host :initform nil :reader connection-failed-host
         :documentation "The host CONNECT-TO was given.")
   (port :initarg :port :initform nil :reader connection-failed-port
         :documentation "The port, a number (NIL for a Unix-domain socket).")
   (attempts :initarg :attempts :initform nil :reader connection-failed-attempts
             :documentation "A list of (address . condition), one per address
tried, in the order they were tried."))
  (:report (lambda (c s)
             (let ((*print-pretty* nil))
               (format s "connect-to ~a~@[ port ~d~]: ~
                          ~:[no address to try~;every address failed~]~
                          ~:{~%  ~a: ~a~}"
                       (let ((h (connection-failed-host c)))
                         (if (typep h 'address) (address-string h) h))
                       (connection-failed-port c)
                       (connection-failed-attempts c)
                       (loop for (a . e) in (connection-failed-attempts c)
                             collect (list (address-string a)
                                           (if (typep e 'socket-error)
                                               (format nil "~a~@[ (errno ~d)~]"
                                                       (socket-error-message e)
                                                       (let ((n (socket-error-errno e)))
                                                         (and n (plusp n) n)))
                                               e)))))))
  (:documentation "CONNECT-TO could connect to no address of the host: the
report lists every address tried and the condition each attempt met.  While
it is signalled, the restarts RETRY (try again, resolution included) and
USE-HOST (try another host, the restart's argument) are available."))

(setf (documentation 'connection-failed-host 'function)
      "The host a failed CONNECT-TO was given."
      (documentation 'connection-failed-port 'function)
      "The port a failed CONNECT-TO was given, a number (NIL for a Unix-domain socket)."
      (documentation 'connection-failed-attempts 'function)
      "The attempts of a failed CONNECT-TO: a list of (address . condition), in the order tried.")

;;; Deadlines of the whole call

(defun %overall-deadline (timeout)
  "The absolute deadline of a call bounded by TIMEOUT seconds (NIL: none) and
by the enclosing WITH-DEADLINE, or NIL."
  (let ((d (and (%check-timeout timeout) (%ns-from-now (%seconds->ns timeout)))))
    (cond ((and d *deadline*) (min d *deadline*))
          (t (or d *deadline*)))))

(defun %timeout-error (what object)
  "Signal SOCKET-TIMEOUT for WHAT (a call name) on OBJECT."
  (error 'socket-timeout :syscall what :socket object :errno -4002
                         :message "operation timed out"))

(defun %check-deadline (deadline what object)
  (when (and deadline (>= (net-sys:now) deadline))
    (%timeout-error what object)))

;;; Resolution bounded by the deadline

(defun %lookup-in-thread (name family deadline)
  "LOOKUP-HOST of NAME in a thread of its own, waited for until DEADLINE:
getaddrinfo itself cannot be interrupted, so a lookup still running then is
left to finish alone and its answer dropped.  The thread says it is done on
a socket pair, which the waiting side reads with the deadline."
  (multiple-value-bind (waiter notifier) (make-socket-pair :type :datagram)
    (let ((result nil))
      (mp:process-run-function
       "net lookup"
       (lambda ()
         (setf result (handler-case (cons :ok (lookup-host name :address-family family))
                        (error (e) (cons :error e))))
         (ignore-errors (send notifier (make-array 1 :element-type '(unsigned-byte 8)
                                                     :initial-element 1)))
         (close notifier)))
      (unwind-protect
           (let ((*deadline* deadline))
             (handler-case (receive waiter (make-array 1 :element-type '(unsigned-byte 8)))
               (socket-timeout () (%timeout-error "getaddrinfo" name))))
        (close waiter))
      (if (eq (car result) :ok)
          (cdr result)
          (error (cdr result))))))

(defun %resolve (host family deadline)
  "Every address of HOST (a name, an address text or object, or a list of
address designators) of FAMILY."
  (when (consp host)
    (return-from %resolve
      (let ((all (mapcar #'ensure-address host)))
        (if family (remove family all :key #'address-family :test-not #'eq) all))))
  (let ((literal (typecase host
                   (address host)
                   (string (handler-case (ensure-address host)
                             (invalid-address () nil)))
                   (t (ensure-address host)))))
    (cond (literal
           (list (ensure-address literal :address-family family)))
          (deadline (%lookup-in-thread host family deadline))
          (t (values (lookup-host host :address-family family))))))

(defun %interleave (addresses)
  "ADDRESSES reordered as RFC 8305 asks: the families alternate, IPv6 first,
each keeping the resolver's order."
  (let ((v6 (remove-if-not #'ipv6-address-p addresses))
        (v4 (remove-if #'ipv6-address-p addresses)))
    (loop while (or v6 v4)
          when v6 collect (pop v6)
          when v4 collect (pop v4))))

(defun %local-designator-p (host)
  "True if HOST names a Unix-domain socket: a LOCAL-ADDRESS, a pathname or
a string holding a slash (no host name does)."
  (or (local-address-p host) (pathnamep host)
      (and (stringp host) (find #\/ host))))

(defun %port-number (port)
  (if (integerp port) (%check-port port) (values (lookup-service port))))

;;; The race (RFC 8305 section 5)

(defparameter *connect-to-keys*
  '(:timeout :address-family :local-address :local-port :external-format :nodelay
    :happy-eyeballs-delay :blocking)
  "CONNECT-TO's own keywords; every other keyword it gets is a socket option.")

(defun %socket-options (plist)
  "The socket options of PLIST: every key that is not CONNECT-TO's own."
  (loop for (k v) on plist by #'cddr
        unless (member k *connect-to-keys*) nconc (list k v)))

(defun %open-attempt (address port spec)
  "A non-blocking stream socket connecting to ADDRESS and PORT as SPEC (a
plist: :local-address :local-port :nodelay :external-format :options) asks.
Returns the socket and whether it is connected already; a socket error
closes the socket and goes on."
  (let* ((family (address-family address))
         (s (apply #'make-socket :address-family family :type :stream :blocking nil
                   :external-format (getf spec :external-format)
                   (append (and (getf spec :nodelay) (not (eq family :local))
                                (list :nodelay t))
                           (getf spec :options))))
         (done nil))
    (unwind-protect
         (let ((local (getf spec :local-address))
               (local-port (getf spec :local-port)))
           (when (or local local-port)
             (bind-address s (or local (if (eq family :ipv6) +ipv6-any+ +ipv4-any+))
                           :port (or local-port 0)))
           (multiple-value-prog1 (values s (and (connect s address :port (or port 0)) t))
             (setf done t)))
      (unless done (close s)))))

(defun %try-attempt (address port spec)
  "%OPEN-ATTEMPT, with a socket error returned as a third value instead of
signalled: the attempt failed, the next address is tried."
  (handler-case (%open-attempt address port spec)
    (socket-error (e) (values nil nil e))))

(defun %finish-attempt (socket)
  "SOCKET's connection result: :CONNECTED, NIL while in progress, or the
condition it failed with."
  (handler-case (and (finish-connect socket) :connected)
    (socket-error (e) e)))

(defun %race (addresses port spec deadline delay)
  "Connect to one of ADDRESSES (in order) as RFC 8305 says: start the next
attempt DELAY seconds after the last one (at once when one fails), keep the
first connection made, close every other attempt.  Returns the socket and
its address, or NIL and the list of (address . condition).  A deadline
passed signals SOCKET-TIMEOUT, after closing every attempt."
  (let ((pending '()) (failures '()) (winner nil) (next 0)
        (delay-ns (%seconds->ns delay)))
    (unwind-protect
         (loop
           ;; Start attempts: when none runs, or the delay has passed.
           (loop while (and addresses (< (length pending) 64) ; WAIT-MANY's most
                            (or (null pending) (>= (net-sys:now) next)))
                 do (let ((a (pop addresses)))
                      (multiple-value-bind (s connected e) (%try-attempt a port spec)
                        (cond (e (push (cons a e) failures))
                              (connected (setf winner (cons s a))
                                         (return-from %race (values s a)))
                              (t (setf pending (nconc pending (list (cons s a))))
                                 (setf next (%ns-from-now delay-ns)))))))
           (when (null pending)
             (return (values nil (reverse failures))))
           (%check-deadline deadline "connect" (cdr (first pending)))
           (let ((ready (net-sys:wait-many (mapcar (lambda (p) (socket-handle (car p))) pending)
                                           2 ; writable
                                           (if addresses
                                               (if deadline (min deadline next) next)
                                               deadline))))
             (dolist (p (loop for i in ready collect (nth i pending)))
               (let ((r (%finish-attempt (car p))))
                 (cond ((eq r :connected)
                        (setf winner p)
                        (return-from %race (values (car p) (cdr p))))
                       (r (push (cons (cdr p) r) failures)
                          (close (car p))
                          (setf pending (remove p pending))
                          (setf next 0)))))))
      ;; Every loser, and every attempt on a non-local exit, closed at once.
      (dolist (p pending)
        (unless (eq p winner) (close (car p) :abort t))))))

;;; connect-to

(defun %connect-once (host port options)
  "One CONNECT-TO without its restarts: the socket, or NIL and the failures."
  (destructuring-bind (&key timeout address-family local-address local-port external-format
                         nodelay (happy-eyeballs-delay 0.25) (blocking t)
                       &allow-other-keys)
      options
    (check-type happy-eyeballs-delay (real 0))
    (let* ((deadline (%overall-deadline timeout))
           (local (%local-designator-p host))
           (local-address (and local-address (not local)
                               (ensure-address local-address)))
           (family (or address-family (and local-address (address-family local-address))))
           (addresses (if local
                          (list (if (local-address-p host) host (make-local-address host)))
                          (%interleave (%resolve host family deadline))))
           (spec (list :local-address local-address :local-port local-port
                       :nodelay nodelay :external-format external-format
                       :options (%socket-options options))))
      (%check-deadline deadline "connect" host)
      (multiple-value-bind (s failures)
          (%race addresses (if local nil (%port-number port)) spec deadline happy-eyeballs-delay)
        (when s
          (setf (socket-blocking-p s) blocking))
        (values s failures)))))

(defun connect-to (host port &rest options
                   &key timeout address-family local-address local-port external-format
                     nodelay (happy-eyeballs-delay 0.25) (blocking t) &allow-other-keys)
  "Connect to HOST and PORT in one call and return the connected stream
socket, a bivalent stream.

HOST is a host name (\"localhost\"), an address text (\"::1\"), an address
object or a list of address designators (tried as a name's addresses are);
or a Unix-domain socket: a LOCAL-ADDRESS, a pathname or a string
holding a slash, and PORT is then ignored.  PORT is a number or a service
name (\"http\", :http), looked up with LOOKUP-SERVICE.

Every address of HOST is tried, as Happy Eyeballs (RFC 8305) does: the
families alternate, IPv6 first; each attempt starts HAPPY-EYEBALLS-DELAY
seconds (0.25) after the previous one, or at once when the previous one
fails; the first connection made wins and every other attempt is closed at
once.  TIMEOUT (seconds) and an enclosing WITH-DEADLINE bound the whole call,
resolution included, then SOCKET-TIMEOUT.  ADDRESS-FAMILY (:IPV4 or :IPV6)
restricts the addresses tried.  LOCAL-ADDRESS and LOCAL-PORT bind the socket
before it connects.  EXTERNAL-FORMAT is the stream's first external format;
NODELAY true sets TCP_NODELAY; any other keyword is a socket option set on
every attempt, as MAKE-SOCKET does.  The socket returned is blocking unless
BLOCKING is NIL, and its default timeout is NIL (see SOCKET-TIMEOUT-OF).

When no address can be connected to, signals CONNECTION-FAILED, which lists
every address tried and why each failed, with the restarts RETRY and
USE-HOST."
  (declare (ignore timeout address-family local-address local-port external-format nodelay
                   happy-eyeballs-delay blocking))
  (loop
    (multiple-value-bind (s failures) (%connect-once host port options)
      (when s (return s))
      (restart-case (error 'connection-failed :host host
                                              :port (and (not (%local-designator-p host))
                                                         (%port-number port))
                                              :attempts failures)
        (retry ()
          :report "Try to connect again."
          nil)
        (use-host (new-host)
          :report "Connect to another host."
          :interactive (lambda ()
                         (format *query-io* "~&Host: ")
                         (finish-output *query-io*)
                         (list (read-line *query-io*)))
          (setf host new-host))))))

(defmacro with-connection ((var host port &rest connect-to-args) &body body)
  "Bind VAR to the socket (CONNECT-TO HOST PORT ,@CONNECT-TO-ARGS), run BODY,
and close the socket however BODY exits."
  `(let ((,var (connect-to ,host ,port ,@connect-to-args)))
     (unwind-protect (progn ,@body)
       (close ,var))))

;;; Listening

(defun %listen-address (host family)
  "The address a listener on HOST binds, and its family: NIL is the
loopback address of FAMILY (IPv4 unless :IPV6), :ANY the wildcard (IPv6
dual-stack unless FAMILY is :IPV4), else an address designator or a host
name (its first address of FAMILY)."
  (cond ((null host)
         (if (eq family :ipv6) +ipv6-loopback+ +ipv4-loopback+))
        ((eq host :any)
         (if (eq family :ipv4) +ipv4-any+ +ipv6-any+))
        ((%local-designator-p host)
         (if (local-address-p host) host (make-local-address host)))
        (t (first (%resolve host family nil)))))

(defun %open-listener (address port backlog reuse-address dual-stack options)
  (let ((s (apply #'make-socket :address-family (address-family address) :type :stream
                  options))
        (done nil))
    (unwind-protect
         (progn
           (unless (eq (address-family address) :local)
             (setf (socket-option s :reuse-address) reuse-address))
           (when dual-stack
             (setf (socket-option s :v6-only) nil))
           (bind-address s address :port port)
           (prog1 (listen-on s :backlog backlog) (setf done t)))
      (unless done (close s)))))

(defun make-listener (port &rest options
                      &key host (backlog :default) (reuse-address t) address-family
                      &allow-other-keys)
  "A stream socket bound to HOST and PORT and listening, in one call; returns
the passive socket (ACCEPT-CONNECTION takes connections from it).

PORT is a number, 0 for a free port the system picks (SOCKET-LOCAL-PORT
tells which), or a service name.  HOST defaults to the loopback address
(127.0.0.1, or ::1 when ADDRESS-FAMILY is :IPV6), never the wildcard by
surprise; :ANY listens on every interface: an IPv6 socket accepting IPv4
too (dual-stack, IPV6_V6ONLY off) where the system allows, else IPv4
0.0.0.0; with ADDRESS-FAMILY :IPV4, 0.0.0.0.  HOST may also be an address
designator, a host name (its first address), or a Unix-domain socket (a
LOCAL-ADDRESS, a pathname or a string holding a slash; PORT is then
ignored).  BACKLOG bounds the pending connections (:DEFAULT: the system's
maximum); REUSE-ADDRESS sets SO_REUSEADDR (true by default, so a restarted
server can bind at once).  Other keywords are MAKE-SOCKET's: :TIMEOUT,
:EXTERNAL-FORMAT (inherited by accepted sockets), :BLOCKING and socket
options such as :REUSE-PORT."
  (let* ((address (%listen-address host address-family))
         (local (eq (address-family address) :local))
         (port (if local 0 (%port-number port)))
         (options (loop for (k v) on options by #'cddr
                        unless (member k '(:host :backlog :reuse-address :address-family))
                          nconc (list k v))))
    (if (and (eq host :any) (not (eq address-family :ipv6)) (not (eq address-family :ipv4)))
        ;; Dual stack where IPv6 exists; IPv4 alone where it does not.
        (handler-case (%open-listener address port backlog reuse-address t options)
          (address-family-not-supported ()
            (%open-listener +ipv4-any+ port backlog reuse-address nil options)))
        (%open-listener address port backlog reuse-address nil options))))

(defmacro with-listener ((var port &rest make-listener-args) &body body)
  "Bind VAR to the listener (MAKE-LISTENER PORT ,@MAKE-LISTENER-ARGS), run
BODY, and close the listener however BODY exits."
  `(let ((,var (make-listener ,port ,@make-listener-args)))
     (unwind-protect (progn ,@body)
       (close ,var))))
