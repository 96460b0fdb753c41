;;;; socket-tests.lsp -- tests of socket.lsp on loopback, IPv4 and IPv6.

(in-package "NET-TESTS")

(def-suite :socket :in :net)
(in-suite :socket)

(defun exchange-test (family)
  (with-tcp-pair (c s :family family :timeout 5)
    (is (typep c 'net:stream-socket))
    (is (typep c (if (eq family :ipv6) 'net:inet6-socket 'net:inet-socket)))
    (let ((out (octets 1 2 3 4 5 6 7 8 9 10))
          (in (make-octets 20 0)))
      ;; send a sub-range; receive it in the middle of a buffer
      (is (= 6 (send c out :start 2 :end 8)))
      (is (= 6 (receive s in :start 5 :wait-all t :end 11)))
      (is (equalp (subseq in 5 11) (subseq out 2 8)))
      (is (every #'zerop (subseq in 0 5)))
      (is (every #'zerop (subseq in 11))))
    (is (net:address= (net:socket-remote-address s) (net:socket-local-address c)))
    (is (= (net:socket-remote-port s) (net:socket-local-port c)))))

(test exchange-ipv4 (exchange-test :ipv4))
(test exchange-ipv6 (exchange-test :ipv6))

(test half-close
  (with-tcp-pair (c s :timeout 5)
    (let ((buf (make-octets 4)))
      (shutdown c :output)
      (is (= 0 (receive s buf)))          ; the peer reads end of file
      (is (= 3 (send s (octets 7 8 9))))  ; and can still send
      (is (= 3 (receive c buf :wait-all t :end 3)))
      (is (equalp #(7 8 9) (subseq buf 0 3))))))

(test connect-to-closed-port-is-refused
  (let* ((l (loopback-listener :ipv4))
         (port (net:socket-local-port l)))
    (close l)
    (net:with-open-socket (c)
      (signals net:connection-refused (connect c "127.0.0.1" :port port :timeout 5)))))

(test receive-times-out
  (with-tcp-pair (c s)
    (let ((t0 (get-internal-real-time)))
      (signals net:socket-timeout (receive s (make-octets 4) :timeout 0.2))
      (is (>= (- (get-internal-real-time) t0) (* 0.19 internal-time-units-per-second))))
    ;; and the socket is still usable afterwards
    (send c (octets 42))
    (is (= 1 (receive s (make-octets 4) :timeout 5)))))

(test non-blocking-returns-nil
  (with-tcp-pair (c s)
    (setf (net:socket-blocking-p s) nil)
    (is (null (receive s (make-octets 4))))
    (let ((l (loopback-listener :ipv4)))
      (unwind-protect
           (progn (setf (net:socket-blocking-p l) nil)
                  (is (null (accept-connection l))))
        (close l)))))

(test bad-buffers-and-bounds
  (with-tcp-pair (c s :timeout 1)
    (signals type-error (send c "text"))
    (signals type-error (send c (make-array 4 :initial-element 0)))
    (signals type-error (send c (make-array 4 :element-type '(signed-byte 8))))
    (signals type-error (send c (make-octets 4) :start 3 :end 2))
    (signals type-error (send c (make-octets 4) :end 5))
    (signals type-error (receive s (make-octets 4) :start -1))
    ;; nothing was sent by the failed calls
    (send c (octets 1))
    (let ((buf (make-octets 8)))
      (is (= 1 (receive s buf)))
      (is (= 1 (aref buf 0))))))

(test use-after-close
  (let ((s (make-socket)))
    (is (eq t (close s)))
    (is (null (close s)))                 ; idempotent
    (is (not (net:socket-open-p s)))
    (is (null (net:socket-fd s)))
    (signals net:socket-closed (send s (octets 1)))
    (signals net:socket-closed (bind-address s "127.0.0.1"))))

(test close-wakes-blocked-thread
  (with-tcp-pair (c s)
    (let* ((result nil)
           (thread (mp:process-run-function
                    "reader" (lambda ()
                               (setf result
                                     (handler-case (receive s (make-octets 4) :timeout 5)
                                       (net:socket-closed () :closed)))))))
      (sleep 0.2)
      (close s)
      (mp:process-join thread)
      (is (eq :closed result)))))

(test no-descriptor-leak
  (let ((before (open-fd-count)))
    (dotimes (i 20)
      (with-tcp-pair (c s :timeout 5)
        (send c (octets i))
        (receive s (make-octets 1))))
    (is (= before (open-fd-count)))))
