;;;; loop-events.lsp -- the event loop's per-event path: time and bytes consed per event.
;;;
;;; Run by bench/run-bench.sh (make bench).  One-octet ping-pong between the
;;; two ends of a loopback TCP connection, both watched by one loop and run
;;; by one RUN-EVENT-LOOP: each event is a pass of libuv (epoll), the batch
;;; taken into Lisp, the watcher looked up, the callback called, and a
;;; receive and a send.  Variants separate the costs: callbacks that call
;;; NET:RECEIVE/NET:SEND, callbacks that call the primitives directly, the
;;; same with 100 connections at once (passes then carry batches of events),
;;; and (the floor) the exchange with blocking calls in two threads, no
;;; loop.  Prints the process's CPU time (user and system, all threads) and
;;; the bytes consed per event, not wall time, which a loaded machine
;;; distorts; the median of five runs.  The C libuv comparison is the echo benchmark's.

(defpackage "NET-BENCH-LOOP" (:use "CL"))
(in-package "NET-BENCH-LOOP")

(defparameter *rounds* 50000)

(defun tcp-pair ()
  (let ((l (net:listen-on (net:bind-address (net:make-socket) "127.0.0.1"))))
    (let ((c (net:make-socket :nodelay t)))
      (net:connect c "127.0.0.1" :port (net:socket-local-port l))
      (multiple-value-prog1 (values c (net:accept-connection l))
        (net:close l)))))

(defun ping-pong-api (loop a b rounds)
  "Callbacks through the public calls."
  (let ((buf (make-array 16 :element-type '(unsigned-byte 8))) (n 0))
    (net:add-watcher loop a '(:read) (lambda (s e) (declare (ignore e))
                                       (net:receive s buf)
                                       (net:send s buf :end 1)))
    (net:add-watcher loop b '(:read) (lambda (s e) (declare (ignore e))
                                       (net:receive s buf)
                                       (if (>= (incf n) rounds)
                                           (net:stop-event-loop loop)
                                           (net:send s buf :end 1))))
    (net:send b buf :end 1)
    (lambda () (net:run-event-loop loop) n)))

(defun ping-pong-primitives (loop a b rounds)
  "Callbacks through the primitives: the loop's own cost."
  (let ((buf (make-array 16 :element-type '(unsigned-byte 8))) (n 0)
        (ha (net::socket-handle a)) (hb (net::socket-handle b)))
    (net:add-watcher loop a '(:read) (lambda (s e) (declare (ignore e))
                                       (net-sys:recv ha buf 0 16 0 -1 s)
                                       (net-sys:send ha buf 0 1 0 -1 s)))
    (net:add-watcher loop b '(:read) (lambda (s e) (declare (ignore e))
                                       (net-sys:recv hb buf 0 16 0 -1 s)
                                       (if (>= (incf n) rounds)
                                           (net:stop-event-loop loop)
                                           (net-sys:send hb buf 0 1 0 -1 s))))
    (net-sys:send hb buf 0 1 0 -1 b)
    (lambda () (net:run-event-loop loop) n)))

(defun ping-pong-many (loop pairs rounds)
  "Set up ROUNDS round trips on each of PAIRS, all at once: watchers added,
the first octets sent.  Returns a function that runs them and returns the
number of round trips, so that the set-up (a watcher and two closures per
socket) is not counted per event."
  (let ((buf (make-array 16 :element-type '(unsigned-byte 8))) (done 0) (total 0))
    (loop for (a . b) in pairs
          do (let ((n 0))
               (net:add-watcher loop a '(:read) (lambda (s e) (declare (ignore e))
                                                  (net:receive s buf)
                                                  (net:send s buf :end 1)))
               (net:add-watcher loop b '(:read)
                                (lambda (s e) (declare (ignore e))
                                  (net:receive s buf)
                                  (incf total)
                                  (if (>= (incf n) rounds)
                                      (when (= (incf done) (length pairs))
                                        (net:stop-event-loop loop))
                                      (net:send s buf :end 1))))
               (net:send b buf :end 1)))
    (lambda ()
      (net:run-event-loop loop)
      total)))

(defun ping-pong-threads (a b rounds)
  "No loop: blocking calls, the other end in a thread, started (and its
first receive waiting) before the measure starts."
  (let* ((echo (mp:process-run-function
                "echo" (lambda ()
                         (let ((buf (make-array 16 :element-type '(unsigned-byte 8))))
                           (dotimes (i rounds)
                             (net:receive a buf :end 1)
                             (net:send a buf :end 1))))))
         (buf (make-array 16 :element-type '(unsigned-byte 8))))
    (sleep 0.1)
    (lambda ()
      (dotimes (i rounds)
        (net:send b buf :end 1)
        (net:receive b buf :end 1))
      (mp:process-join echo)
      rounds)))

(defun measure-many (rounds)
  (let ((pairs (loop repeat 100 collect (multiple-value-bind (a b) (tcp-pair)
                                          (setf (net:socket-blocking-p a) nil
                                                (net:socket-blocking-p b) nil)
                                          (cons a b)))))
    (unwind-protect
         (net:with-event-loop (loop)
           (let* ((run (ping-pong-many loop pairs (ceiling rounds 100)))
                  (b0 (si::gc-stats t)) (c0 (get-internal-run-time))
                  (events (* 2 (funcall run))))
             (cons (/ (- (get-internal-run-time) c0) (/ internal-time-units-per-second 1e6) events)
                   (/ (- (si::gc-stats t) b0) (float events)))))
      (loop for (a . b) in pairs do (net:close a) (net:close b)))))

(defun measure (variant rounds)
  "(microseconds . bytes) per event: two events per round."
  (when (eq variant :api-100)
    (return-from measure (measure-many rounds)))
  (multiple-value-bind (a b) (tcp-pair)
    (unless (eq variant :threads)
      (setf (net:socket-blocking-p a) nil (net:socket-blocking-p b) nil))
    (unwind-protect
         (net:with-event-loop (loop)
           ;; Each variant sets up (watchers, closures, a thread), then
           ;; the measure runs what it returned.
           (let* ((run (ecase variant
                         (:api (ping-pong-api loop a b rounds))
                         (:primitives (ping-pong-primitives loop a b rounds))
                         (:threads (ping-pong-threads a b rounds))))
                  (b0 (si::gc-stats t)) (c0 (get-internal-run-time)))
             (funcall run)
             (let ((events (* 2 rounds)))
               (cons (/ (- (get-internal-run-time) c0) (/ internal-time-units-per-second 1e6) events)
                     (/ (- (si::gc-stats t) b0) (float events))))))
      (net:close a) (net:close b))))

(defun median (list) (nth (floor (length list) 2) (sort (copy-list list) #'<)))

(format t "~&one-octet ping-pong on loopback TCP, ~d rounds (median of 5):~%" *rounds*)
(dolist (v '(:primitives :api :api-100 :threads))
  (measure v 1000)                      ; warm up
  (let ((runs (loop repeat 5 collect (measure v *rounds*))))
    (format t "  ~12a ~6,2f us of CPU per event, ~7,3f bytes consed per event~%"
            (string-downcase v) (median (mapcar #'car runs)) (median (mapcar #'cdr runs)))))
