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

(defun socket-fd-count ()
  "Socket descriptors open in this process: the links of /proc/PID/fd that
name a socket, as ls shows them."
  (let ((out (with-output-to-string (s)
               (ext:run-program "/bin/sh"
                                (list "-c" (format nil "ls -l /proc/~d/fd" (ext:getpid)))
                                :input nil :output s :error nil :wait t))))
    (loop with start = 0
          for p = (search "socket:[" out :start2 start)
          while p count t do (setf start (1+ p)))))

(defun fd-flags (fd)
  "The flags line of /proc/self/fdinfo/FD, an integer (octal in the file)."
  (with-open-file (in (format nil "/proc/self/fdinfo/~d" fd))
    (loop for line = (read-line in nil)
          while line
          when (eql 0 (search "flags:" line))
            return (parse-integer line :start 6 :radix 8))))

(defun urandom-octets (n)
  "N random octets from /dev/urandom (fast, for large transfers)."
  (let ((v (make-octets n)))
    (with-open-file (in "/dev/urandom" :element-type '(unsigned-byte 8))
      (read-sequence v in))
    v))

;;; Threads and octets for the stream and codec suites

(defparameter *multilingual* "aé€𝄞Ωж中 ok"
  "Characters of one to four UTF-8 octets, for codec and stream tests.")

(defun spawn (function)
  "Run FUNCTION in a thread; JOIN returns its value or re-signals its error."
  (let ((box (list nil nil)))
    (list (mp:process-run-function
           "stream-test"
           (lambda ()
             (handler-case (setf (first box) (funcall function))
               (error (e) (setf (second box) e)))))
          box)))

(defun join (thread)
  (mp:process-join (first thread))
  (let ((box (second thread)))
    (when (second box) (error (second box)))
    (first box)))

(defun utf8 (string)
  "STRING encoded by ECL's own UTF-8 encoder, a simple octet vector."
  (let ((v (make-array 16 :element-type '(unsigned-byte 8) :adjustable t :fill-pointer 0)))
    (write-string string (ext:make-sequence-output-stream v :external-format :utf-8))
    (coerce v '(simple-array (unsigned-byte 8) (*)))))

(defun send-octets (socket octets)
  (send socket octets)
  socket)

(defun strings-all-read (socket n)
  "A fresh string of the next N characters of SOCKET."
  (let ((s (make-string n)))
    (is (= n (read-sequence s socket)))
    s))


(defun run-thread (name function)
  "Run FUNCTION in a new thread; returns a function that joins it and
returns FUNCTION's value, or re-signals nothing but returns the condition
object if FUNCTION signalled an error."
  (let* ((result nil)
         (thread (mp:process-run-function
                  name (lambda ()
                         (setf result (handler-case (funcall function)
                                        (error (e) e)))))))
    (lambda () (mp:process-join thread) result)))

(defmacro with-socket-pair ((a b &rest args) &body body)
  "Run BODY with A and B the two ends of MAKE-SOCKET-PAIR with ARGS; close both after."
  `(multiple-value-bind (,a ,b) (net:make-socket-pair ,@args)
     (unwind-protect (progn ,@body)
       (close ,a)
       (close ,b))))
