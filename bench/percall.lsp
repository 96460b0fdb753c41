;;;; percall.lsp -- the cost of one call on the per-call path: microseconds
;;;; and bytes consed per RECEIVE / SEND on a connected TCP socket and per
;;;; RECEIVE-FROM / SEND-TO on UDP, on loopback with the data already there.
;;;
;;; Run by bench/run-bench.sh (make bench).  For system calls per call, run
;;; one case under strace, e.g.
;;;   PERCALL_CASE=wait strace -c -f ecl --norc --load bench/percall.lsp
;;; where the "wait" case is a ping-pong between two threads in which every
;;; RECEIVE has to wait for its octet.

(require :net (ext:getenv "NET_FAS"))

(defpackage "NET-BENCH-PERCALL" (:use "CL"))
(in-package "NET-BENCH-PERCALL")

(defparameter *n* 200000)

(defun tcp-pair ()
  (let ((l (net:make-socket)))
    (net:bind-address l "127.0.0.1")
    (net:listen-on l)
    (let ((c (net:make-socket)))
      (net:connect c "127.0.0.1" :port (net:socket-local-port l))
      (let ((s (net:accept-connection l)))
        (net:close l)
        (values c s)))))

(defmacro measure (name calls &body body)
  "Run BODY, print microseconds and bytes consed per call."
  `(let ((before (si::gc-stats t)) (t0 (net-sys:now)))
     ,@body
     (let ((ns (- (net-sys:now) t0)) (consed (- (si::gc-stats t) before)))
       (format t "~&percall: ~36a ~6,2f us/call ~6,1f bytes consed/call~%"
               ,name (/ ns 1000.0 ,calls) (/ consed (float ,calls))))))

(defun tcp-case ()
  (multiple-value-bind (c s) (tcp-pair)
    (let ((out (make-array 64 :element-type '(unsigned-byte 8) :initial-element 1))
          (in (make-array 64 :element-type '(unsigned-byte 8))))
      (dotimes (i 1000) (net:send c out) (net:receive s in))
      (measure "TCP send + receive of 64 octets" (* 2 *n*)
        (dotimes (i *n*) (net:send c out) (net:receive s in))))
    (net:close c) (net:close s)))

(defun empty-case ()
  "A non-blocking RECEIVE with nothing there: one recv(2) that fails, the
cost an event loop pays per spurious wake-up, mostly Lisp-side work."
  (multiple-value-bind (c s) (tcp-pair)
    (setf (net:socket-blocking-p s) nil)
    (let ((in (make-array 64 :element-type '(unsigned-byte 8))))
      (measure "non-blocking receive, nothing there" *n*
        (dotimes (i *n*) (net:receive s in))))
    (net:close c) (net:close s)))

(defun udp-case ()
  (let ((a (net:make-socket :type :datagram)) (b (net:make-socket :type :datagram)))
    (net:bind-address a "127.0.0.1") (net:bind-address b "127.0.0.1")
    (let ((to (net:socket-local-address b)) (port (net:socket-local-port b))
          (out (make-array 64 :element-type '(unsigned-byte 8) :initial-element 1))
          (in (make-array 64 :element-type '(unsigned-byte 8))))
      (dotimes (i 1000) (net:send-to a out to :port port) (net:receive-from b in))
      (measure "UDP send-to + receive-from, 64 octets" (* 2 *n*)
        (dotimes (i *n*) (net:send-to a out to :port port) (net:receive-from b in))))
    (net:close a) (net:close b)))

(defun wait-case ()
  "Ping-pong of one octet: every RECEIVE waits, and gets less than it asks."
  (multiple-value-bind (c s) (tcp-pair)
    (let* ((n 20000)
           (peer (mp:process-run-function
                  "echo"
                  (lambda ()
                    (let ((b (make-array 64 :element-type '(unsigned-byte 8))))
                      (dotimes (i n) (net:receive s b) (net:send s b :end 1))))))
           (b (make-array 64 :element-type '(unsigned-byte 8))))
      ;; Each receive asks for 64 octets and gets the 1 there is.
      (measure "TCP ping-pong, receive waits (per round)" n
        (dotimes (i n) (net:send c b :end 1) (net:receive c b)))
      (mp:process-join peer))
    (net:close c) (net:close s)))

(dolist (f '(tcp-case empty-case udp-case wait-case)) (compile f))

(let ((case (ext:getenv "PERCALL_CASE")))
  (cond ((equal case "wait") (wait-case))
        ((equal case "tcp") (tcp-case))
        ((equal case "udp") (udp-case))
        ((equal case "empty") (empty-case))
        (t (tcp-case) (empty-case) (udp-case) (wait-case))))
