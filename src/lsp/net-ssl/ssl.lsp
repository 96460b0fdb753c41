;;;; ssl.lsp -- cl+ssl over net's stream sockets (the net-ssl system).
;;;
;;; CL+SSL:MAKE-SSL-CLIENT-STREAM and MAKE-SSL-SERVER-STREAM take any
;;; stream; given one whose descriptor they can learn (CL+SSL:STREAM-FD)
;;; they let OpenSSL read and write that descriptor itself, with no Lisp
;;; between OpenSSL and the kernel.  Otherwise they go through a Lisp BIO,
;;; one READ-BYTE or WRITE-BYTE per octet.  This file gives net's stream
;;; sockets the descriptor path.  net's descriptors never block (blocking is
;;; net's policy, by waiting in poll), so OpenSSL reports "want read" or
;;; "want write"; cl+ssl then calls INPUT-WAIT or OUTPUT-WAIT, which it
;;; implements for SBCL, CCL, Allegro and LispWorks only (on ECL it only
;;; warns, and would spin).  Here they wait through net, bounded by the
;;; socket's timeout and by WITH-DEADLINE, and signal NET:SOCKET-TIMEOUT.
;;; A stream holding unread input cannot take the descriptor path, and
;;; the Lisp BIO crashes ECL here (the manual shows how): INPUT-BUFFERED.

(defpackage "NET-SSL"
  (:use "CL")
  (:export "INPUT-BUFFERED" "INPUT-BUFFERED-SOCKET")
  (:documentation "cl+ssl over net's stream sockets: loading this system
makes CL+SSL's streams use a net socket's descriptor directly.  Use
CL+SSL:MAKE-SSL-CLIENT-STREAM and CL+SSL:MAKE-SSL-SERVER-STREAM on a
connected NET:STREAM-SOCKET."))

(in-package "NET-SSL")

(define-condition input-buffered (error)
  ((socket :initarg :socket :reader input-buffered-socket
           :documentation "The socket TLS was to start on."))
  (:report (lambda (c stream)
             (format stream "TLS cannot start on ~a: its stream holds input it has ~
read but not given out (the peer sent TLS before it was asked to)"
                     (input-buffered-socket c))))
  (:documentation "Signalled when TLS is to start on a net socket whose
stream holds unread input: OpenSSL reading the descriptor would miss it,
and cl+ssl's other path (its Lisp BIO) crashes ECL 21.2.1 with Debian's
cl+ssl and OpenSSL 3 (see the manual, \"cl+ssl\")."))

(defun %input-buffered-p (socket)
  "True if SOCKET's stream holds input it has read from the kernel but not
yet given out: OpenSSL reading the descriptor would miss it."
  (let ((ss (slot-value socket 'net::stream-state)))
    (and ss (< (net::%ss-ipos ss) (net::%ss-iend ss)))))

(defvar *sockets* (make-hash-table :weakness :value :synchronized t)
  "Descriptor -> the net socket CL+SSL:STREAM-FD gave it for: callers such
as Drakma pass cl+ssl the descriptor alone, and waiting needs the socket.")

(defmethod cl+ssl:stream-fd ((socket net:stream-socket))
  "SOCKET's descriptor, once what its stream buffered for output is sent.
Signals INPUT-BUFFERED if its stream holds unread input, which OpenSSL
would miss."
  (when (slot-value socket 'net::stream-state)
    (finish-output socket))
  (when (%input-buffered-p socket)
    (error 'input-buffered :socket socket))
  (let ((fd (net:socket-fd socket)))
    (when fd
      (setf (gethash fd *sockets*) socket))
    fd))

(defun %net-socket (object)
  "The net socket under cl+ssl's socket OBJECT (a socket, or a descriptor
STREAM-FD gave out and still open in that socket), or NIL."
  (typecase object
    (net:stream-socket object)
    (integer (let ((s (gethash object *sockets*)))
               (and s (eql (net:socket-fd s) object) s)))))

(defun %seconds-left (socket)
  "How long a wait on SOCKET may last: its timeout, bounded by the innermost
NET:WITH-DEADLINE; NIL for ever."
  (let ((timeout (net:socket-timeout-of socket))
        (deadline net::*deadline*))
    (if deadline
        (let ((left (max 0 (/ (- deadline (net-sys:now)) 1d9))))
          (if timeout (min timeout left) left))
        timeout)))

(defun %wait (stream event original fd deadline)
  "Wait until the net socket under cl+ssl's STREAM is ready for EVENT;
ORIGINAL, cl+ssl's own function, for a stream on anything else."
  (let ((socket (%net-socket (cl+ssl::ssl-stream-socket stream))))
    (if socket
        (unless (net:wait-until-ready (list socket) :events (list event)
                                                    :timeout (%seconds-left socket))
          (net::%timeout-error (if (eq event :read) "SSL_read" "SSL_write") socket))
        (funcall original stream fd deadline))))

(let ((input-wait #'cl+ssl::input-wait)
      (output-wait #'cl+ssl::output-wait))
  (unless (get 'cl+ssl::input-wait 'net-ssl)
    (setf (get 'cl+ssl::input-wait 'net-ssl) t
          (fdefinition 'cl+ssl::input-wait)
          (lambda (stream fd deadline) (%wait stream :read input-wait fd deadline))
          (fdefinition 'cl+ssl::output-wait)
          (lambda (stream fd deadline) (%wait stream :write output-wait fd deadline)))))
