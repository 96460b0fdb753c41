;;;; package.lsp -- the test package and the suite every test file adds to.

(defpackage "NET-TESTS"
  (:use "CL" "FIVEAM")
  (:shadowing-import-from "NET" "CLOSE")
  (:import-from "NET" "SEND" "RECEIVE" "CONNECT" "SHUTDOWN" "MAKE-SOCKET"
                "BIND-ADDRESS" "LISTEN-ON" "ACCEPT-CONNECTION"))

(in-package "NET-TESTS")

(def-suite :net :description "Every Lisp test of net.")

(defun octets (&rest contents)
  (make-array (length contents) :element-type '(unsigned-byte 8) :initial-contents contents))

(defun make-octets (n &optional (fill 0))
  (make-array n :element-type '(unsigned-byte 8) :initial-element fill))

(defun random-octets (n &optional (state (make-random-state t)))
  (let ((v (make-octets n)))
    (dotimes (i n v) (setf (aref v i) (random 256 state)))))

(defun open-fd-count ()
  "Descriptors open in this process, from /proc/self/fd.  A descriptor that
closes while the directory is listed (another thread, a finalizer) makes
DIRECTORY fail: list again, a bounded number of times."
  (loop repeat 20
        do (handler-case
               (return-from open-fd-count
                 (length (directory "/proc/self/fd/*" :resolve-symlinks nil)))
             (file-error () (sleep 0.01))))
  (error "could not list /proc/self/fd"))

(defun loopback-listener (family)
  "A listening TCP socket on the loopback address of FAMILY, any port."
  (let ((s (make-socket :address-family family)))
    (bind-address s (if (eq family :ipv6) "::1" "127.0.0.1"))
    (listen-on s :backlog 16)))

(defmacro with-tcp-pair ((client server &key (family :ipv4) timeout) &body body)
  "Run BODY with CLIENT and SERVER bound to the two ends of a loopback TCP
connection; close everything after."
  (let ((l (gensym)))
    `(let* ((,l (loopback-listener ,family))
            (,client (make-socket :address-family ,family :timeout ,timeout))
            (,server nil))
       (unwind-protect
            (progn
              (connect ,client (net:socket-local-address ,l) :port (net:socket-local-port ,l)
                       :timeout 5)
              (setf ,server (accept-connection ,l :timeout 5))
              (setf (net:socket-timeout-of ,server) ,timeout)
              ,@body)
         (close ,client)
         (when ,server (close ,server))
         (close ,l)))))
