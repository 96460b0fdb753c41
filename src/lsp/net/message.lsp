;;;; message.lsp -- send-message and receive-message: scatter/gather and ancillary data.

(in-package "NET")

(defun %ancillary-out (ancillary)
  "The descriptors (a list of fixnums, and (handle . socket) for sockets) and
credentials ((pid uid gid) or NIL) of a send's ANCILLARY list."
  (let ((fds '()) (credentials nil))
    (dolist (item ancillary (values (nreverse fds) credentials))
      (unless (and (consp item) (listp (cdr item)))
        (error 'type-error :datum item :expected-type '(cons keyword list)))
      (case (car item)
        (:file-descriptors
         (dolist (fd (cdr item))
           ;; A socket goes as (handle . socket): the glue holds it while
           ;; sendmsg(2) reads its fd, so a close cannot race the call.
           (push (typecase fd
                   (socket (cons (socket-handle fd) fd))
                   ((integer 0 #x7fffffff) fd)
                   (t (error 'type-error :datum fd
                                         :expected-type '(or socket (integer 0 2147483647)))))
                 fds)))
        (:credentials
         (unless (and (= (length item) 4) (every (lambda (x) (typep x '(integer 0 #x7fffffff)))
                                                 (cdr item)))
           (error 'type-error :datum item
                              :expected-type '(cons (eql :credentials)
                                               (cons integer (cons integer (cons integer null))))))
         (setf credentials (cdr item)))
        (t (error 'type-error :datum item
                              :expected-type '(cons (member :file-descriptors :credentials))))))))

(defun send-message (socket buffers &key address (port 0) ancillary out-of-band timeout)
  "Send the octets of BUFFERS, a list whose elements are (unsigned-byte 8)
vectors or lists (vector start end), as one message (gathered in order by
sendmsg(2), no copy) from SOCKET, to ADDRESS and PORT if given.  ANCILLARY
is a list of (:FILE-DESCRIPTORS fd-or-socket ...) -- passed over a
Unix-domain socket, the receiver gets its own descriptors for them -- and
(:CREDENTIALS pid uid gid).  Returns the count sent; NIL if SOCKET is
non-blocking and nothing could go.  One call: a stream socket may send less
than everything."
  (multiple-value-bind (addr scope) (if address (%sockaddr-args socket address) (values nil nil))
    (multiple-value-bind (fds credentials) (%ancillary-out ancillary)
      (multiple-value-bind (handle deadline ss) (%call-args socket nil)
        (declare (ignore handle deadline))
        ;; Text or octets still in the stream's buffer go first.
        (when (and ss (not out-of-band))
          (%flush-stream-output socket ss)))
      (net-sys:send-message (socket-handle socket) buffers addr (%check-port port) scope
                            fds credentials (%flags out-of-band nil)
                            (%deadline socket timeout) socket))))

(defun %message-flags (bits)
  (let ((flags '()))
    (when (logtest bits net-sys:+msg-eor+) (push :end-of-record flags))
    (when (logtest bits net-sys:+msg-oob+) (push :out-of-band flags))
    (when (logtest bits net-sys:+msg-ctrunc+) (push :control-truncated flags))
    (when (logtest bits net-sys:+msg-trunc+) (push :truncated flags))
    flags))

(defun %ancillary-in (items)
  (dolist (item items items)
    (when (eq (car item) :packet-info)
      (setf (second item) (%make-inet-address (second item))))))

(defun receive-message (socket buffers &key (control-size 1024) peek timeout)
  "Receive one message from SOCKET, scattered over BUFFERS (as for
SEND-MESSAGE: vectors or (vector start end), filled in order, in place), with
up to CONTROL-SIZE octets of ancillary data (a non-negative integer; more
than 2048 is taken as 2048, room for all that one message carries: 253
descriptors, credentials and packet info).  Returns five
values: the count received (0 at end of file), the sender's address and port
when there is one, the ancillary data -- a list of (:FILE-DESCRIPTORS fd
...) (new descriptors, close-on-exec, now owned by the caller: adopt them
with MAKE-SOCKET-FROM-FD or close them), (:CREDENTIALS pid uid gid) and
(:PACKET-INFO address interface-index) -- and a list of flags among
:TRUNCATED (the datagram was longer than the buffers), :CONTROL-TRUNCATED
(ancillary data was lost: descriptors that did not fit are closed by the
system), :OUT-OF-BAND and :END-OF-RECORD.  Returns NIL if SOCKET is
non-blocking and nothing is there.  Credentials arrive when the receiver
enabled SO_PASSCRED, packet info when it enabled IP_PKTINFO or
IPV6_RECVPKTINFO (socket options)."
  (let ((r (net-sys:recv-message (socket-handle socket) buffers control-size
                                 (%flags nil peek) (%deadline socket timeout) socket)))
    (when r
      (destructuring-bind (count bits sender ancillary) r
        (multiple-value-bind (address port) (%peer-values sender)
          (values count address port (%ancillary-in ancillary) (%message-flags bits)))))))

(defun send-file-descriptors (socket fds &key timeout)
  "Pass FDS (a list of descriptors or sockets) over the Unix-domain SOCKET,
with one octet of data to carry them.  The caller keeps its own
descriptors.  Returns the count of octets sent, 1."
  (let ((one (load-time-value
              (make-array 1 :element-type '(unsigned-byte 8) :initial-element 0))))
    (send-message socket (list one) :ancillary (list (cons :file-descriptors fds))
                                    :timeout timeout)))

(defun receive-file-descriptors (socket &key timeout)
  "Receive descriptors passed with SEND-FILE-DESCRIPTORS on SOCKET: a list
of new descriptors, close-on-exec and owned by the caller (NIL if the
message carried none).  Second value: the count of data octets, 0 at end
of file."
  (let ((one (make-array 1 :element-type '(unsigned-byte 8))))
    (multiple-value-bind (count address port ancillary)
        (receive-message socket (list one) :timeout timeout)
      (declare (ignore address port))
      (values (loop for item in ancillary
                    when (eq (car item) :file-descriptors) append (cdr item))
              count))))
