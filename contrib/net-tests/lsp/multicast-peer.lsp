;;;; multicast-peer.lsp -- a test peer for multicast-tests.lsp, run inside a network namespace.
;;;
;;; Started as `ecl --norc --load multicast-peer.lsp` with NET_BUILDDIR in
;;; the environment.  Reads forms from standard input, one at a time,
;;; evaluates them in package NET-PEER and answers each on one line:
;;; (:OK value...) or (:ERROR "condition-type" "report").  Exits at end of
;;; input.  Sockets are kept in a table and named by their index.

(setf *load-verbose* nil)
(setf *debugger-hook*
      (lambda (condition hook)
        (declare (ignore hook))
        (format t "~&(:fatal ~s)~%" (princ-to-string condition))
        (finish-output)
        (ext:quit 3)))
(load (merge-pathnames "net.fas" (ext:getenv "NET_BUILDDIR")))

(defpackage "NET-PEER" (:use "CL"))
(in-package "NET-PEER")

(defvar *sockets* (make-array 0 :adjustable t :fill-pointer t))

(defun sock (id) (aref *sockets* id))
(defun keep (socket) (vector-push-extend socket *sockets*) (1- (length *sockets*)))

(defun any-address (family) (if (eq family :ipv6) "::" "0.0.0.0"))

(defun receiver (family port &key groups interface source)
  "A datagram socket on the any address and PORT, a member of each of GROUPS
on INTERFACE (from SOURCE only, if given); only its own memberships count."
  (let ((s (net:make-socket :address-family family :type :datagram
                            :reuse-address t :multicast-all nil)))
    (net:bind-address s (any-address family) :port port)
    (dolist (g groups)
      (net:join-multicast-group s g :interface interface :source source))
    (keep s)))

(defun join (id group &key interface source)
  (net:join-multicast-group (sock id) group :interface interface :source source))

(defun leave (id group &key interface source)
  (net:leave-multicast-group (sock id) group :interface interface :source source))

(defun sender (family group port &key interface from (hops 1) (loop t))
  "A datagram socket sending to GROUP and PORT out of INTERFACE, from the
address FROM if given."
  (let ((s (apply #'net:make-socket :address-family family :type :datagram
                  :multicast-interface interface :multicast-loop loop
                  (list (if (eq family :ipv6) :multicast-hops :multicast-ttl) hops))))
    (when from
      (net:bind-address s from))
    (net:connect s group :port port)
    (keep s)))

(defun option (id name) (net:socket-option (sock id) name))

(defun say (id text)
  (net:send (sock id) (map '(vector (unsigned-byte 8)) #'char-code text)))

(defun hear (id &optional (timeout 2))
  "The next datagram on socket ID as a string, or :TIMEOUT."
  (let ((buffer (make-array 1500 :element-type '(unsigned-byte 8))))
    (handler-case
        (let ((n (net:receive (sock id) buffer :timeout timeout)))
          (map 'string #'code-char (subseq buffer 0 n)))
      (net:socket-timeout () :timeout))))

(defun hear-all (id &optional (timeout 0.3))
  "Every datagram that arrives on socket ID until none comes for TIMEOUT
seconds (at most 20)."
  (loop repeat 20
        for text = (hear id timeout)
        until (eq text :timeout)
        collect text))

(loop for form = (read *standard-input* nil :eof)
      until (eq form :eof)
      do (format t "~s~%"
                 (handler-case (cons :ok (multiple-value-list (eval form)))
                   (error (e) (list :error (string (type-of e)) (princ-to-string e)))))
         (finish-output))
(ext:quit 0)
