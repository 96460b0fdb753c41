;;;; stream-consing.lsp -- bytes consed per GiB moved through a socket stream
;;;; with READ-SEQUENCE / WRITE-SEQUENCE and one reused octet vector.
;;;
;;; Run by bench/run-bench.sh (make bench).  Prints one line per case:
;;; the vector size, the seconds, MB/s and the bytes consed per GiB, which
;;; must stay a small constant (the threads, sockets and buffers), not grow
;;; with the data.

(require :net (ext:getenv "NET_FAS"))

(defpackage "NET-BENCH-STREAM" (:use "CL"))
(in-package "NET-BENCH-STREAM")

(defparameter *total* (* 1024 1024 1024))

(defun tcp-pair ()
  (let ((l (net:make-socket)))
    (net:bind-address l "127.0.0.1")
    (net:listen-on l)
    (let ((c (net:make-socket)))
      (net:connect c "127.0.0.1" :port (net:socket-local-port l))
      (let ((s (net:accept-connection l)))
        (net:close l)
        (values c s)))))

(defun pump-out (stream vector total)
  (declare (type (simple-array (unsigned-byte 8) (*)) vector) (fixnum total)
           (optimize (speed 3)))
  (loop with n fixnum = (length vector)
        for sent fixnum from 0 by n
        while (< sent total)
        do (write-sequence vector stream :end (min n (- total sent))))
  (finish-output stream))

(defun pump-in (stream vector)
  (declare (type (simple-array (unsigned-byte 8) (*)) vector) (optimize (speed 3)))
  (loop with n fixnum = (length vector)
        for k fixnum = (read-sequence vector stream)
        sum k fixnum
        while (= k n)))

(defun run-case (size)
  (multiple-value-bind (c s) (tcp-pair)
    (let* ((out (make-array size :element-type '(unsigned-byte 8) :initial-element 7))
           (in (make-array size :element-type '(unsigned-byte 8)))
           (before (si::gc-stats t))
           (t0 (get-internal-real-time))
           (writer (mp:process-run-function
                    "writer" (lambda () (pump-out c out *total*) (net:shutdown c :output))))
           (got (pump-in s in)))
      (mp:process-join writer)
      (let* ((secs (/ (- (get-internal-real-time) t0) internal-time-units-per-second 1.0))
             (consed (- (si::gc-stats t) before)))
        (net:close c) (net:close s)
        (format t "~&stream-consing: vector ~7d octets: ~,2f s, ~,0f MB/s, ~d bytes consed in all (~d per GiB)~:[ (MOVED ~d)~;~*~]~%"
                size secs (/ got secs 1e6) consed (round consed (/ got (* 1024 1024 1024)))
                (= got *total*) got)
        consed))))

(dolist (f '(pump-out pump-in run-case)) (compile f))
(dolist (size '(4096 65536 1048576)) (run-case size))
(finish-output)
