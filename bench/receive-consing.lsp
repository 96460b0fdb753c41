;;;; receive-consing.lsp -- bytes consed per NET:SEND + NET:RECEIVE on a reused buffer.
;;;
;;; A loopback TCP pair; N rounds of a 64-octet send and a receive into the
;;; same vector.  Prints bytes consed per round (from SI::GC-STATS) and the
;;; time per round; the median of several runs.

(in-package "CL-USER")

(defun pair ()
  (let ((l (net:listen-on (net:bind-address (net:make-socket) "127.0.0.1")))
        (c (net:make-socket)))
    (net:connect c "127.0.0.1" :port (net:socket-local-port l))
    (multiple-value-prog1 (values c (net:accept-connection l))
      (net:close l))))

(defun rounds (c s n buf)
  (declare (fixnum n))
  (dotimes (i n)
    (net:send c buf)
    (net:receive s buf :wait-all t)))

(defun measure (n)
  (multiple-value-bind (c s) (pair)
    (let ((buf (make-array 64 :element-type '(unsigned-byte 8) :initial-element 7)))
      (rounds c s 1000 buf)                 ; warm up
      (let ((b0 (si::gc-stats t)) (t0 (net-sys:now)))
        (rounds c s n buf)
        (prog1 (cons (/ (- (si::gc-stats t) b0) (float n))
                     (/ (- (net-sys:now) t0) (float n) 1000))
          (net:close c) (net:close s))))))

(let* ((runs (loop repeat 5 collect (measure 100000)))
       (bytes (nth 2 (sort (mapcar #'car runs) #'<)))
       (us (nth 2 (sort (mapcar #'cdr runs) #'<))))
  (format t "~&send+receive of 64 octets on loopback TCP, reused buffer (median of 5 x 100,000):~%")
  (format t "  ~,2f bytes consed per round, ~,2f us per round~%" bytes us))
