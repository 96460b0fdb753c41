;;;; datagram.lsp -- sending to and receiving from an address: send-to, receive-from.

(in-package "NET")

(defun %send-to-args (socket address)
  "%SOCKADDR-ARGS, remembered per address object.  A simple octet vector
of the family's length (RECEIVE-FROM's :SENDER-OCTETS given back) goes to
the glue as it is, so that replying to it conses nothing."
  (let ((family (%slot-at socket (%slot-locations socket) 5)))
    (cond ((typep address 'address)
           ;; Kept on the address itself, like a socket's reset: no weak
           ;; synchronized hash table written under load.
           (let ((form (slot-value address 'sockaddr-form)))
             (if (and form (eq (svref form 0) family))
                 (values (svref form 1) (svref form 2))
                 (multiple-value-bind (addr scope) (%sockaddr-args socket address)
                   (setf (slot-value address 'sockaddr-form) (vector family addr scope))
                   (values addr scope)))))
          ((and (typep address '(simple-array (unsigned-byte 8) (*)))
                (= (length address) (case family (:ipv4 4) (:ipv6 16) (t -1))))
           (values address 0))
          (t (%sockaddr-args socket address)))))

(defun send-to (socket buffer address &key (port 0) (start 0) end out-of-band timeout)
  "Send BUFFER[START,END) (an (unsigned-byte 8) vector, used in place) as
one datagram from SOCKET to ADDRESS and PORT (ADDRESS NIL: to the connected
peer).  On a :LOCAL socket ADDRESS is a LOCAL-ADDRESS or a path, and PORT is
ignored.  Returns the count sent, or NIL if SOCKET is non-blocking and the
datagram cannot go now; a datagram too large for the protocol signals
MESSAGE-TOO-LONG.  TIMEOUT as for SEND."
  (multiple-value-bind (addr scope) (if address (%send-to-args socket address) (values nil nil))
    (multiple-value-bind (handle deadline) (%call-args socket timeout)
      (net-sys:send-to handle buffer start end (%flags out-of-band nil) addr (%check-port port)
                       scope deadline socket))))

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
  (multiple-value-bind (handle deadline) (%call-args socket timeout)
    (if sender-octets
        (let ((r (net-sys:recv-from-into handle buffer start end (%flags nil peek) deadline
                                         socket sender-octets)))
          (when r
            (let ((n (the fixnum r)))
              (values (logand n #xffffffff) sender-octets (ash n -33) (logbitp 32 n)))))
        (let ((r (net-sys:recv-from handle buffer start end (%flags nil peek) deadline socket)))
          (when r
            (destructuring-bind (count truncated-p . sender) r
              (multiple-value-bind (address port) (%peer-values sender)
                (values count address port truncated-p))))))))

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
