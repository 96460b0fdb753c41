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

;;; Datagrams: a bound or connected UDP socket in one call, and an exchange

(defun make-udp-socket (&rest options &key host (port 0) address-family &allow-other-keys)
  "A UDP socket bound to HOST and PORT in one call.  HOST defaults to the
loopback address (127.0.0.1, or ::1 when ADDRESS-FAMILY is :IPV6); :ANY is
the wildcard (dual-stack IPv6 where the system allows, as MAKE-LISTENER
does); else an address designator or a host name (its first address).  PORT
0 (the default) lets the system pick one; a service name is looked up for
UDP.  Other keywords are MAKE-SOCKET's (:TIMEOUT, :BLOCKING, socket options
such as :BROADCAST or :REUSE-ADDRESS)."
  (let* ((address (%listen-address host address-family))
         (dual (and (eq host :any) (null address-family)))
         (options (loop for (k v) on options by #'cddr
                        unless (member k '(:host :port :address-family)) nconc (list k v))))
    (when (eq (address-family address) :local)
      (error 'invalid-address :text host :reason "a Unix-domain name for a UDP socket"))
    (flet ((open-on (address dual)
             (let ((s (apply #'make-socket :address-family (address-family address)
                             :type :datagram options))
                   (done nil))
               (unwind-protect
                    (progn (when dual (setf (socket-option s :v6-only) nil))
                           (bind-address s address
                                         :port (if (integerp port)
                                                   (%check-port port)
                                                   (values (lookup-service port :protocol :udp))))
                           (setf done t)
                           s)
                 (unless done (close s))))))
      (if dual
          (handler-case (open-on address t)
            (address-family-not-supported () (open-on +ipv4-any+ nil)))
          (open-on address nil)))))

(defun connect-udp (host port &rest options
                    &key address-family local-address local-port timeout &allow-other-keys)
  "A UDP socket connected to HOST and PORT in one call: SEND and RECEIVE then
talk to that peer only, and an ICMP error from it (nothing listens there)
is signalled by the next call, as CONNECTION-REFUSED.  HOST is a host name
(its first address of ADDRESS-FAMILY is used: a UDP connect sends nothing,
so there is nothing to race), an address designator, or a list of them (the
first is used); PORT a number or a service name looked up for UDP.
LOCAL-ADDRESS and LOCAL-PORT bind the socket first.  TIMEOUT bounds the name
lookup and becomes the socket's default timeout.  Other keywords are
socket options."
  (let* ((deadline (%overall-deadline timeout))
         (address (first (%interleave (%resolve host address-family deadline))))
         (family (address-family address))
         (s (apply #'make-socket :address-family family :type :datagram :timeout timeout
                   (loop for (k v) on options by #'cddr
                         unless (member k '(:address-family :local-address :local-port :timeout))
                           nconc (list k v))))
         (done nil))
    (unwind-protect
         (progn
           (when (or local-address local-port)
             (bind-address s (or local-address (if (eq family :ipv6) +ipv6-any+ +ipv4-any+))
                           :port (or local-port 0)))
           (connect s address :port (if (integerp port)
                                        (%check-port port)
                                        (values (lookup-service port :protocol :udp))))
           (setf done t)
           s)
      (unless done (close s)))))

(defun udp-exchange (socket request response-buffer
                     &key address (port 0) (timeout 1) (retries 3) (backoff 1)
                       (start 0) end accept)
  "Send REQUEST (an octet vector) from the datagram SOCKET and wait for the
answer, resending when none comes: what a DNS, NTP or TFTP client does.

REQUEST goes to ADDRESS and PORT, or to the connected peer when ADDRESS is
NIL.  Each try waits TIMEOUT seconds (multiplied by BACKOFF after each try)
for a datagram into RESPONSE-BUFFER[START,END); RETRIES more tries follow
the first.  A datagram from another sender than ADDRESS and PORT is
ignored, and so is one for which ACCEPT (a function of the buffer, the
count, the sender's address and port) returns NIL, such as the late answer
to an earlier try.  Returns the count received, the sender's address and
port, and TRUNCATED-P (as RECEIVE-FROM).  When every try has timed out,
signals SOCKET-TIMEOUT.  An enclosing WITH-DEADLINE bounds the whole
exchange.  SOCKET must be blocking."
  (check-type retries (integer 0 1000))
  (check-type backoff (real 1))
  (check-type timeout (real 0))
  (unless (socket-blocking-p socket)
    (error 'type-error :datum socket :expected-type '(satisfies socket-blocking-p)))
  (let ((to (and address (ensure-address address)))
        (wait timeout))
    (dotimes (try (1+ retries))
      (if to
          (send-to socket request to :port port)
          (send socket request))
      (let ((d (%ns-from-now (%seconds->ns wait))))
        (loop
          (multiple-value-bind (n from from-port truncated)
              (handler-case
                  (let ((*deadline* (if *deadline* (min *deadline* d) d)))
                    (receive-from socket response-buffer :start start :end end))
                (socket-timeout (e)
                  ;; The enclosing deadline, not this try's, ends the exchange.
                  (when (and *deadline* (<= *deadline* d)) (error e))
                  (return)))
            (when (and n
                       (or (null to)
                           (and (address= to from) (eql port from-port)))
                       (or (null accept) (funcall accept response-buffer n from from-port)))
              (return-from udp-exchange (values n from from-port truncated))))))
      (setf wait (* wait backoff)))
    (%timeout-error "udp-exchange" socket)))
