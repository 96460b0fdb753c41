;;;; datagram.lsp -- sending to and receiving from an address: send-to, receive-from.

(in-package "NET")

;;; The per-datagram path: SEND-TO and RECEIVE-FROM are keyword fronts over
;;; %SEND-TO and %RECEIVE-FROM, positional, which a compiler macro calls
;;; directly when a call's keywords are literal (no keyword parsing per
;;; datagram).  Both run at safety 0: the glue checks the buffer, START,
;;; END and the sender octets; the rest is checked here.

;;; Where an address object keeps its SOCKADDR-FORM slot, per class.
(defvar *address-form-locations* nil
  "A list of (class . location): the location of the SOCKADDR-FORM slot
in instances of each address class met by SEND-TO so far.")

(defun %address-form-location-slowly (address)
  (if (typep address 'address)
      (let* ((class (class-of address))
             (loc (clos:slot-definition-location
                   (find 'sockaddr-form (clos:class-slots class)
                         :key #'clos:slot-definition-name))))
        (when (typep loc 'fixnum)
          (push (cons class loc) *address-form-locations*))
        loc)
      nil))

(defun %address-form-location (address)
  "The location of the SOCKADDR-FORM slot of ADDRESS, an instance; NIL if
it is no address object (not a fixnum if the slot has no location)."
  (declare (optimize (speed 3) (safety 0)))
  (let ((class (net-sys:%instance-class address)))
    (dolist (e *address-form-locations* (%address-form-location-slowly address))
      (when (eq (car e) class) (return (cdr e))))))

(defun %send-to-args (socket family address)
  "%SOCKADDR-ARGS, remembered per address object.  ADDRESS is not an
octet vector of the family's length: %SEND-TO passes those as they are."
  (declare (optimize (speed 3) (safety 0)))
  (let ((loc nil))
    (cond ((and (si:instancep address) (setf loc (%address-form-location address)))
           ;; Kept on the address itself, like a socket's reset: no weak
           ;; synchronized hash table written under load.  Addresses are
           ;; immutable.
           (let ((form (if (typep loc 'fixnum)
                           (net-sys:%instance-slot address loc)
                           (slot-value address 'sockaddr-form))))
             (if (and form (eq (svref form 0) family))
                 (values (svref form 1) (svref form 2))
                 (multiple-value-bind (addr scope) (%sockaddr-args socket address)
                   (setf (slot-value address 'sockaddr-form) (vector family addr scope))
                   (values addr scope)))))
          (t (%sockaddr-args socket address)))))

(declaim (inline %port-p))
(defun %port-p (port)
  (and (typep port 'fixnum) (<= 0 (the fixnum port) 65535)))

(defun %send-to (socket buffer address &optional (port 0) end (start 0) out-of-band timeout)
  "SEND-TO with its arguments positional."
  (declare (optimize (speed 3) (safety 0)))
  (let ((e (%slot-locations socket)))   ; also the check that SOCKET is a socket
    (declare (simple-vector e))
    (unless (%port-p port) (%check-port port))
    (multiple-value-bind (addr scope)
        (cond ((null address) (values nil nil))
              ;; An octet vector of the family's length (RECEIVE-FROM's
              ;; :SENDER-OCTETS given back): as it is, so that replying
              ;; to it conses nothing.
              ((eql (net-sys:%octets-length address)
                    (let ((family (%slot-at socket e 5)))
                      (cond ((eq family :ipv4) 4) ((eq family :ipv6) 16) (t -2))))
               (values address 0))
              (t (%send-to-args socket (%slot-at socket e 5) address)))
      (multiple-value-bind (handle deadline) (%call-args-at socket e timeout)
        (net-sys:send-to handle buffer start end (%flags out-of-band nil) addr port
                         scope deadline socket)))))

(defun send-to (socket buffer address &key (port 0) (start 0) end out-of-band timeout)
  "Send BUFFER[START,END) (an (unsigned-byte 8) vector, used in place) as
one datagram from SOCKET to ADDRESS and PORT (ADDRESS NIL: to the connected
peer).  On a :LOCAL socket ADDRESS is a LOCAL-ADDRESS or a path, and PORT is
ignored.  Returns the count sent, or NIL if SOCKET is non-blocking and the
datagram cannot go now; a datagram too large for the protocol signals
MESSAGE-TOO-LONG.  TIMEOUT as for SEND."
  (%send-to socket buffer address port end start out-of-band timeout))
(net-sys:%define-positional send-to %send-to 3
  ((:port 0) (:end nil) (:start 0) (:out-of-band nil) (:timeout nil)) t)

(defun %receive-from (socket buffer &optional sender-octets end (start 0) peek timeout)
  "RECEIVE-FROM with its arguments positional."
  (declare (optimize (speed 3) (safety 0)))
  (multiple-value-bind (handle deadline) (%call-args socket timeout)
    (if sender-octets
        (let ((r (net-sys:recv-from-into handle buffer start end (%flags nil peek) deadline
                                         socket sender-octets)))
          (when r
            (let ((n r))
              (declare (fixnum n))
              (values (logand n #xffffffff) sender-octets (the fixnum (ash n -33))
                      (/= 0 (logand n #x100000000))))))
        (%receive-from-slowly handle buffer start end (%flags nil peek) deadline socket))))

(defun %receive-from-slowly (handle buffer start end flags deadline socket)
  "RECEIVE-FROM giving the sender as a new address object."
  (let ((r (net-sys:recv-from handle buffer start end flags deadline socket)))
    (when r
      (destructuring-bind (count truncated-p . sender) r
        (multiple-value-bind (address port) (%peer-values sender)
          (values count address port truncated-p))))))

(defun receive-from (socket buffer &key (start 0) end peek timeout sender-octets)
  "Receive one datagram from SOCKET into BUFFER[START,END) (an
(unsigned-byte 8) vector, filled in place).  Returns four values: the count
stored, the sender's address and port (NIL for an unnamed Unix-domain
sender), and TRUNCATED-P, true when the datagram was longer than the range
and its excess was lost.  Returns NIL if SOCKET is non-blocking and nothing
is there.  PEEK leaves the datagram to be read again.  TIMEOUT (or the
socket's default) bounds the wait, then SOCKET-TIMEOUT.

SENDER-OCTETS, an (unsigned-byte 8) vector of 4 octets on an IPv4 socket or
16 on an IPv6 one, receives the sender's address in place and is returned
as the second value instead of a fresh address object: a server that reuses
it learns every sender without consing (the scope id of an IPv6 sender is
not kept).  An octet vector is an address designator, so it can be given
back to SEND-TO."
  (%receive-from socket buffer sender-octets end start peek timeout))
(net-sys:%define-positional receive-from %receive-from 2
  ((:sender-octets nil) (:end nil) (:start 0) (:peek nil) (:timeout nil)) t)

(defun receive-datagram (socket &key (size 65535) peek timeout)
  "The convenience form of RECEIVE-FROM that allocates: receive one datagram
of at most SIZE octets from SOCKET.  Returns the fresh (unsigned-byte 8)
vector of its octets, the sender's address and port, and TRUNCATED-P; NIL if
SOCKET is non-blocking and nothing is there."
  (let ((buffer (make-array (%check-size size) :element-type '(unsigned-byte 8))))
    (multiple-value-bind (n address port truncated-p)
        (receive-from socket buffer :peek peek :timeout timeout)
      (when n
        (values (if (= n size) buffer (subseq buffer 0 n)) address port truncated-p)))))
