;;;; consing.lsp -- bytes consed per GiB moved through each receiving path of net: RECEIVE, RECEIVE-FROM (with :SENDER-OCTETS, and with address objects for contrast), and the stream's READ-SEQUENCE and READ-AVAILABLE.
;;;
;;; Run by bench/run-bench.sh (make bench).  Each path moves a quarter GiB,
;;; then a whole one (NET_BENCH_CONSING_MIB sets the larger, in MiB), over
;;; loopback: a writer thread sends with NET:SEND from one reused vector,
;;; the reader takes it into one reused vector (UDP: 32 KiB datagrams, some
;;; lost; what arrives is counted).  Prints one line per path and volume:
;;; the seconds, MB/s, the bytes consed in all (SI::GC-STATS, every
;;; thread, counted from when the writer's thread and both vectors exist)
;;; and per GiB.  Target: at most 64 KiB per GiB, and constant: the same
;;; bytes in all at both volumes (a stream's first use makes its buffer),
;;; not growing with the data.  The loop's per-event figure is
;;; loop-events.lsp's.

(require :net (ext:getenv "NET_FAS"))

(defpackage "NET-BENCH-CONSING" (:use "CL"))
(in-package "NET-BENCH-CONSING")

(deftype octets () '(simple-array (unsigned-byte 8) (*)))

(defconstant +chunk+ 65536 "Octets per write, and the reader's vector.")
(defconstant +datagram+ 32768 "Octets per datagram.")

(defparameter *volumes*
  (let ((mib (parse-integer (or (ext:getenv "NET_BENCH_CONSING_MIB") "1024"))))
    (list (* (floor mib 4) 1024 1024) (* mib 1024 1024))))

(defun tcp-pair ()
  (let ((l (net:make-listener 0)))
    (let ((c (net:connect (net:make-socket) "127.0.0.1" :port (net:socket-local-port l))))
      (multiple-value-prog1 (values c (net:accept-connection l))
        (net:close l)))))

(defun octets (n)
  (make-array n :element-type '(unsigned-byte 8) :initial-element 7))

(defun send-stream (socket v total)
  "Send TOTAL octets on SOCKET from vector V, then end the stream."
  (declare (type octets v))
  (loop for sent fixnum from 0 by (length v)
        while (< sent total)
        do (net:send socket v :end (min (length v) (- total sent))))
  (net:shutdown socket :output))

(defun send-datagrams (socket v total)
  "Send TOTAL octets in datagrams of V, then one-octet end markers: some
datagrams may be lost, the receiver counts what comes."
  (declare (type octets v))
  (loop for sent fixnum from 0 by (length v)
        while (< sent total)
        do (net:send socket v))
  (loop repeat 200 do (net:send socket v :end 1) (sleep 0.001)))

;;; The readers: each returns the octets it took.

(defun by-receive (socket v)
  (declare (type octets v))
  (loop for n = (net:receive socket v)
        until (eql n 0)
        sum (the fixnum n) fixnum))

(defun by-read-sequence (socket v)
  (declare (type octets v))
  (loop for k fixnum = (read-sequence v socket)
        sum k fixnum
        while (= k (length v))))

(defun by-read-available (socket v)
  "READ-BYTE waits for the first octet, READ-AVAILABLE takes the rest."
  (declare (type octets v))
  (let ((total 0))
    (declare (fixnum total))
    (loop (let ((b (read-byte socket nil)))
            (unless b (return total))
            (setf (aref v 0) b)
            (incf total (the fixnum (net:read-available socket v :start 1)))))))

(defun by-receive-from (socket v sender)
  (declare (type octets v))
  (loop for n fixnum = (if sender
                           (net:receive-from socket v :sender-octets sender)
                           (net:receive-from socket v))
        until (= n 1)
        sum n fixnum))

;;; The cases

(defun measure (path total setup)
  "SETUP returns a reader, a writer and a cleanup thunk; run the writer in
a thread, the reader here, and print the figures.  The thread is made
before the count starts (a thread's stacks are a megabyte of Lisp data)."
  (multiple-value-bind (reader writer cleanup) (funcall setup total)
    (let* ((go (mp:make-semaphore))
           (thread (mp:process-run-function "writer" (lambda ()
                                                       (mp:wait-on-semaphore go)
                                                       (funcall writer))))
           (before (si::gc-stats t))
           (t0 (get-internal-real-time))
           (got (progn (mp:signal-semaphore go) (funcall reader))))
      (mp:process-join thread)
      (let ((secs (max 1e-6 (/ (- (get-internal-real-time) t0) internal-time-units-per-second 1.0)))
            (consed (- (si::gc-stats t) before)))
        (funcall cleanup)
        (format t "~&consing: ~26a ~5d MiB moved: ~6,2f s, ~6,0f MB/s, ~9d bytes consed in all, ~9d per GiB~%"
                path (round got (* 1024 1024)) secs (/ got secs 1e6) consed
                (if (plusp got) (round (* consed (expt 2 30)) got) 0))
        (finish-output)))))

(defun tcp-setup (reader)
  (lambda (total)
    (multiple-value-bind (c s) (tcp-pair)
      (let ((v (octets +chunk+)) (w (octets +chunk+)))
        (values (lambda () (funcall reader s v))
                (lambda () (send-stream c w total))
                (lambda () (net:close c) (net:close s)))))))

(defun udp-setup (sender-octets-p)
  (lambda (total)
    (let* ((r (net:bind-address (net:make-socket :type :datagram) "127.0.0.1"))
           (w (net:connect (net:make-socket :type :datagram) "127.0.0.1"
                           :port (net:socket-local-port r)))
           (v (octets +datagram+))
           (out (octets +datagram+))
           (sender (and sender-octets-p (octets 4))))
      (setf (net:socket-option r :receive-buffer) (* 4 1024 1024))
      (values (lambda () (by-receive-from r v sender))
              (lambda () (send-datagrams w out total))
              (lambda () (net:close r) (net:close w))))))

(dolist (total *volumes*)
  (measure "receive" total (tcp-setup #'by-receive))
  (measure "read-sequence" total (tcp-setup #'by-read-sequence))
  (measure "read-available" total (tcp-setup #'by-read-available))
  (measure "receive-from :sender-octets" total (udp-setup t))
  (measure "receive-from (addresses)" total (udp-setup nil)))
