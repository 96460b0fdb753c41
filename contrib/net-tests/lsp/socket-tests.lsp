;;;; socket-tests.lsp -- tests of socket.lsp and transfer.lsp on loopback, IPv4 and IPv6.

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

(test close-wakes-thread-blocked-after-a-draining-read
  ;; The read before drained the socket, so the blocked one waits before
  ;; it tries: the close still ends it with SOCKET-CLOSED, not end of file.
  (with-tcp-pair (c s)
    (send c (octets 1))
    (is (eql 1 (receive s (make-octets 4) :timeout 5)))
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

;;; Classes and creation

(test classes-follow-family-and-role
  (loop for (family type family-class role-class)
          in '((:ipv4 :stream net:inet-socket net:stream-socket)
               (:ipv4 :datagram net:inet-socket net:datagram-socket)
               (:ipv6 :stream net:inet6-socket net:stream-socket)
               (:ipv6 :datagram net:inet6-socket net:datagram-socket)
               (:local :stream net:local-socket net:stream-socket)
               (:local :datagram net:local-socket net:datagram-socket)
               (:local :seqpacket net:local-socket net:stream-socket))
        do (net:with-open-socket (s :address-family family :type type)
             (is (typep s family-class))
             (is (typep s role-class))
             (is (eq family (net:socket-address-family s)))
             (is (eq type (net:socket-type s)))))
  (let ((l (loopback-listener :ipv6)))
    (unwind-protect (is (typep l 'net:passive-socket))
      (close l))))

(test descriptors-are-close-on-exec-and-non-blocking
  (with-tcp-pair (c s :timeout 5)
    (dolist (sock (list c s))
      (let ((flags (fd-flags (net:socket-fd sock))))
        (is (logtest flags #o2000000))   ; O_CLOEXEC
        (is (logtest flags #o4000)))))   ; O_NONBLOCK
  (with-socket-pair (a b)
    (is (logtest (fd-flags (net:socket-fd a)) #o2000000))))

(test bad-make-socket-arguments
  (signals type-error (make-socket :address-family :ipx))
  (signals type-error (make-socket :type :telepathy))
  (signals type-error (make-socket :timeout -1))
  (signals type-error (make-socket :timeout "soon"))
  (signals type-error (make-socket :protocol 3.5))
  (signals type-error (make-socket :protocol nil))
  (signals type-error (make-socket :protocol 256)))

(test protocols-by-name
  ;; by keyword and by string, a TCP and a UDP exchange over loopback
  (let ((l (make-socket :protocol :tcp :timeout 5))
        (c (make-socket :protocol "tcp" :timeout 5)))
    (unwind-protect
         (progn
           (bind-address l "127.0.0.1")
           (listen-on l)
           (connect c "127.0.0.1" :port (net:socket-local-port l))
           (let ((s (accept-connection l)))
             (unwind-protect
                  (progn (send c (octets 1 2 3))
                         (is (equalp (octets 1 2 3) (net:receive-octets s :size 3 :wait-all t))))
               (close s))))
      (close c)
      (close l)))
  (let ((a (make-socket :type :datagram :protocol :udp :timeout 5))
        (b (make-socket :type :datagram :protocol 17 :timeout 5)))
    (unwind-protect
         (progn
           (bind-address a "127.0.0.1")
           (net:send-to b (octets 7) "127.0.0.1" :port (net:socket-local-port a))
           (is (equalp (octets 7) (net:receive-octets a))))
      (close a)
      (close b)))
  (signals net:unknown-protocol (make-socket :protocol :no-such-protocol))
  (signals net:protocol-not-supported (make-socket :type :stream :protocol :udp)))

(test raw-sockets-where-permitted
  ;; An ICMP echo to 127.0.0.1 over a raw socket, when we may open one.
  (let ((s (handler-case (make-socket :type :raw :protocol 1 :timeout 5)
             (net:socket-error () nil))))
    (if (null s)
        (skip "raw sockets are not permitted here")
        (unwind-protect
             (let ((echo (octets 8 0 #xf7 #xfe 0 1 0 0)) ; type 8, checksum for id 1 seq 0
                   (buf (make-octets 256)))
               (is (= 8 (net:send-to s echo "127.0.0.1")))
               ;; A raw ICMP socket sees every ICMP packet of the host: look
               ;; (a bounded number of packets) for the echo reply (type 0)
               ;; with our identifier (1), after its IP header.
               (is (loop repeat 50
                         for n = (net:receive-from s buf)
                         for ihl = (* 4 (ldb (byte 4 0) (aref buf 0)))
                         thereis (and (zerop (aref buf ihl))
                                      (= 1 (aref buf (+ ihl 5)))
                                      (zerop (aref buf (+ ihl 4)))))))
          (close s)))))

(test ipv6-dual-stack-accepts-ipv4
  (let ((l (make-socket :address-family :ipv6)))
    (unwind-protect
         (progn
           (bind-address l "::")
           (listen-on l)
           (net:with-open-socket (c :address-family :ipv4)
             (connect c "127.0.0.1" :port (net:socket-local-port l) :timeout 5)
             (multiple-value-bind (s address port) (accept-connection l :timeout 5)
               (unwind-protect
                    (progn
                      (is (typep s 'net:inet6-socket))
                      (is (equalp (octets 0 0 0 0 0 0 0 0 0 0 #xff #xff 127 0 0 1)
                                  (net:address-octets address)))
                      (is (= port (net:socket-local-port c))))
                 (close s)))))
      (close l))))

(test accepted-peer-addresses-are-fresh
  ;; Each accept's peer address is a new address object with its own
  ;; octets (copied from a prototype), equal to the client's address.
  (let ((l (listen-on (bind-address (make-socket) "127.0.0.1"))))
    (unwind-protect
         (let ((addresses '()))
           (dotimes (i 2)
             (net:with-open-socket (c)
               (connect c "127.0.0.1" :port (net:socket-local-port l) :timeout 5)
               (multiple-value-bind (s address port) (accept-connection l :timeout 5)
                 (unwind-protect
                      (progn
                        (is (typep address 'net:ipv4-address))
                        (is (equalp (octets 127 0 0 1) (net:address-octets address)))
                        (is (equal "127.0.0.1" (net:address-string address)))
                        (is (= port (net:socket-local-port c)))
                        (is (zerop (net:address-scope-id address)))
                        (push address addresses))
                   (close s)))))
           (is (not (eq (first addresses) (second addresses))))
           (is (not (eq (net:address-octets (first addresses))
                        (net:address-octets (second addresses)))))
           (is (net:address= (first addresses) (second addresses))))
      (close l))))

(test accept-connection-without-peer
  ;; :PEER NIL returns the socket alone, by the compiled positional call and
  ;; by the full call (keywords not literal); the socket works as any other.
  (let ((positional (compile nil '(lambda (l) (multiple-value-list
                                               (accept-connection l :peer nil :timeout 5)))))
        (full (compile nil '(lambda (l k) (multiple-value-list
                                           (accept-connection l k nil :timeout 5))))))
    (net:with-open-socket (l)
      (listen-on (bind-address l "127.0.0.1"))
      (dolist (accept (list positional (lambda (l) (funcall full l :peer))))
        (net:with-open-socket (c)
          (connect c "127.0.0.1" :port (net:socket-local-port l) :timeout 5)
          (let ((values (funcall accept l)))
            (is (= 1 (length values)))
            (let ((s (first values)))
              (unwind-protect
                   (progn
                     (is (typep s 'net:inet-socket))
                     (is (typep s 'net:stream-socket))
                     (is (= (net:socket-remote-port s) (net:socket-local-port c)))
                     (send c (octets 1 2 3))
                     (let ((buf (make-octets 3)))
                       (receive s buf :wait-all t)
                       (is (equalp (octets 1 2 3) buf))))
                (close s))))))
      ;; Non-blocking with nothing pending: NIL, peer or not.
      (setf (net:socket-blocking-p l) nil)
      (is (null (accept-connection l :peer nil)))
      (is (null (accept-connection l))))))

(test accept-connection-blocking-nil
  ;; :BLOCKING NIL gives a non-blocking socket (a receive with nothing
  ;; there returns NIL at once), by the compiled positional call and the
  ;; full call; the listener's prototype stays blocking for the next accept.
  (let ((positional (compile nil '(lambda (l) (accept-connection l :peer nil :blocking nil
                                                                   :timeout 5))))
        (full (compile nil '(lambda (l k) (accept-connection l :timeout 5 k nil)))))
    (net:with-open-socket (l)
      (listen-on (bind-address l "127.0.0.1"))
      (loop for (accept blocking) in (list (list positional nil)
                                           (list (lambda (l) (funcall full l :blocking)) nil)
                                           (list (lambda (l) (accept-connection l :timeout 5)) t))
            do (net:with-open-socket (c)
                 (connect c "127.0.0.1" :port (net:socket-local-port l) :timeout 5)
                 (let ((s (funcall accept l))
                       (buf (make-octets 4)))
                   (unwind-protect
                        (progn
                          (is (typep s 'net:stream-socket))
                          (is (eq blocking (net:socket-blocking-p s)))
                          (unless blocking
                            (is (null (receive s buf)))
                            (setf (net:socket-blocking-p s) t))
                          (send c (octets 1 2 3 4))
                          (is (= 4 (receive s buf :wait-all t :timeout 5)))
                          (is (equalp (octets 1 2 3 4) buf)))
                     (close s))))))))

(test accept-connection-compiled-call-checks-its-arguments
  ;; A compiled call with a literal :TIMEOUT goes to the positional twin:
  ;; the same checks, the same results.
  (let ((f (compile nil '(lambda (l timeout) (accept-connection l :timeout timeout)))))
    (net:with-open-socket (l)
      (listen-on (bind-address l "127.0.0.1"))
      (signals type-error (funcall f l -1))
      (signals type-error (funcall f "no socket" 1))
      (signals net:socket-timeout (funcall f l 0.05))
      (net:with-open-socket (c)
        (connect c "127.0.0.1" :port (net:socket-local-port l) :timeout 5)
        (let ((s (funcall f l 5)))
          (is (typep s 'net:inet-socket))
          (is (typep s 'net:stream-socket))
          (close s))))))

(test ipv6-address-on-ipv4-socket-is-invalid
  (net:with-open-socket (s)
    (signals net:invalid-address (bind-address s "::1"))
    (signals net:invalid-address (connect s (net:make-local-address "/tmp/x")))))

;;; Bulk transfer

(test random-64-mib-both-directions-at-once
  (let* ((n (* 64 1024 1024))
         (a->b (urandom-octets n))
         (b->a (urandom-octets n))
         (got-b (make-octets n))
         (got-a (make-octets n)))
    (with-tcp-pair (c s :timeout 60)
      (let ((send-c (run-thread "send c" (lambda () (send c a->b))))
            (send-s (run-thread "send s" (lambda () (send s b->a))))
            (recv-c (run-thread "recv c" (lambda () (receive c got-a :wait-all t)))))
        (is (= n (receive s got-b :wait-all t)))
        (is (eql n (funcall recv-c)))
        (is (eql n (funcall send-c)))
        (is (eql n (funcall send-s)))
        (is (null (mismatch a->b got-b)))
        (is (null (mismatch b->a got-a)))))))

(test send-and-receive-do-not-cons
  (with-tcp-pair (c s :timeout 5)
    (let ((out (make-octets 512 7)) (in (make-octets 512)))
      ;; The collector's count is for the whole image: a finalizer run by a
      ;; collection in between (another test's garbage) is counted too.  So
      ;; take the least of three runs, and allow less than a byte a call:
      ;; consing per call would be kilobytes.
      (flet ((consed (thunk)
               (funcall thunk)
               (loop repeat 3
                     minimize (let ((before (si:gc-stats t)))
                                (funcall thunk)
                                (- (si:gc-stats t) before)))))
        (is (> 1000 (consed (lambda ()
                           (dotimes (i 2000)
                             (send c out)
                             (receive s in :wait-all t))))))
        ;; a float default timeout is converted once, not per call
        (setf (net:socket-timeout-of c) 2.5 (net:socket-timeout-of s) 2.5)
        (is (> 1000 (consed (lambda ()
                           (dotimes (i 2000)
                             (send c out :start 10 :end 500)
                             (receive s in :start 10 :end 500 :wait-all t))))))))))

;;; Resets, timeouts, connecting

(test peer-reset-mid-read
  (with-tcp-pair (c s :timeout 10)
    (let ((reader (run-thread "reader" (lambda () (receive s (make-octets 16))))))
      (sleep 0.2)
      (close c :abort t)
      (is (typep (funcall reader) 'net:connection-reset)))))

(test peer-reset-mid-write
  (with-tcp-pair (c s :timeout 10)
    ;; 32 MiB cannot all fit in the buffers of a peer that never reads.
    (let ((writer (run-thread "writer" (lambda () (send c (make-octets (* 32 1024 1024)))))))
      (sleep 0.3)
      (close s :abort t)
      (is (typep (funcall writer) '(or net:connection-reset net:broken-pipe))))
    ;; and writing again is an error, not a SIGPIPE
    (is (typep (handler-case (send c (octets 1)) (error (e) e))
               '(or net:connection-reset net:broken-pipe)))))

(test abort-resets-the-connection
  (with-tcp-pair (c s :timeout 5)
    (is (eq t (close c :abort t)))
    (signals net:connection-reset (receive s (make-octets 4)))))

(test non-blocking-transfers-keep-their-results-and-conditions
  ;; A non-blocking call is one system call tried at once, not the waiting
  ;; path: each of its outcomes still comes back the same.
  (with-tcp-pair (c s :timeout 5)
    (setf (net:socket-blocking-p s) nil (net:socket-blocking-p c) nil)
    (let ((in (make-octets 8)))
      (is (null (receive s in)))                              ; nothing there
      (is (eql 3 (send c (octets 1 2 3))))
      (is (eql 3 (loop repeat 500 for n = (receive s in :start 2)
                       when n return n do (sleep 0.01))))
      (is (equalp (octets 0 0 1 2 3) (subseq in 0 5)))
      (is (null (receive s in)))                              ; drained again
      ;; Blocking again, the socket waits for data after that would-block.
      (setf (net:socket-blocking-p s) t)
      (send c (octets 9))
      (is (eql 1 (receive s in :timeout 5)))
      (setf (net:socket-blocking-p s) nil)
      (signals type-error (receive s in :start 9))
      (signals type-error (send c (make-array 2 :initial-element 0)))
      (close c :abort t)
      (is (typep (loop repeat 500
                       do (handler-case (receive s in)
                            (error (e) (return e)))
                          (sleep 0.01))
                 'net:connection-reset))
      (close s)
      (signals net:socket-closed (receive s in))
      (signals net:socket-closed (send s in))))
  (let ((u (net:make-socket :type :datagram)))
    (setf (net:socket-blocking-p u) nil)
    (close u)
    (signals net:socket-closed (net:send-to u (octets 1) "127.0.0.1" :port 9))
    (signals net:socket-closed (net:receive-from u (make-octets 4)))))

(test connect-times-out-on-a-full-backlog
  ;; A listener with backlog 0 that never accepts: once its queue is full,
  ;; SYNs are dropped and connect waits.
  (let ((l (make-socket)) (clients '()) (timed-out nil))
    (unwind-protect
         (progn
           (bind-address l "127.0.0.1")
           (listen-on l :backlog 0)
           (loop repeat 8 until timed-out
                 do (let ((c (make-socket)) (t0 (get-internal-real-time)))
                      (push c clients)
                      (handler-case (connect c "127.0.0.1" :port (net:socket-local-port l)
                                                           :timeout 0.3)
                        (net:socket-timeout ()
                          (setf timed-out (/ (- (get-internal-real-time) t0)
                                             internal-time-units-per-second)))))))
      (mapc #'close clients)
      (close l))
    (is (and timed-out (<= 0.29 timed-out 2)))))

(test non-blocking-connect-completes-later
  (let ((l (loopback-listener :ipv4)))
    (unwind-protect
         (net:with-open-socket (c :blocking nil)
           (let ((r (connect c "127.0.0.1" :port (net:socket-local-port l))))
             (is (or (null r) (eq r c))))
           ;; poll for completion, bounded
           (is (eq c (loop repeat 100
                           for done = (net:finish-connect c)
                           when done return done
                           do (sleep 0.01))))
           (let ((s (accept-connection l :timeout 5)))
             (unwind-protect (progn (is (= 2 (send c (octets 1 2))))
                                    (is (= 2 (receive s (make-octets 2) :wait-all t))))
               (close s))))
      (close l)))
  ;; a refused non-blocking connect reports its error when finished
  (let* ((l (loopback-listener :ipv4)) (port (net:socket-local-port l)))
    (close l)
    (net:with-open-socket (c :blocking nil)
      (connect c "127.0.0.1" :port port)
      (setf (net:socket-blocking-p c) t)
      (signals net:connection-refused (net:finish-connect c :timeout 5)))))

(test interrupt-process-on-a-blocked-receive
  (with-tcp-pair (c s :timeout 10)
    (let* ((interrupted 0)
           (reader (run-thread "reader" (lambda () (receive s (make-octets 4) :wait-all t)))))
      (sleep 0.2)
      (let ((thread (find "reader" (mp:all-processes) :key #'mp:process-name :test #'string=)))
        ;; interrupts that return: the receive goes on, nothing lost
        (dotimes (i 20)
          (mp:interrupt-process thread (lambda () (incf interrupted)))
          (sleep 0.01)))
      (send c (octets 1 2))
      (sleep 0.05)
      (send c (octets 3 4))
      (is (eql 4 (funcall reader)))
      (is (= 20 interrupted))))
  ;; an interrupt that unwinds leaves the socket valid
  (with-tcp-pair (c s :timeout 10)
    (let* ((reader (run-thread "unwound"
                               (lambda ()
                                 (catch 'out (receive s (make-octets 4)))
                                 (receive s (make-octets 4) :wait-all t)))))
      (sleep 0.2)
      (mp:interrupt-process (find "unwound" (mp:all-processes) :key #'mp:process-name
                                                               :test #'string=)
                            (lambda () (throw 'out :thrown)))
      (sleep 0.1)
      (send c (octets 9 8 7 6))
      (is (eql 4 (funcall reader))))))

(test gc-during-blocked-calls-loses-nothing
  ;; ECL's collector stops threads with signals: a blocked receive sees EINTR
  ;; and must neither fail nor lose data.
  (with-tcp-pair (c s :timeout 10)
    (let ((reader (run-thread "reader" (lambda ()
                                         (let ((buf (make-octets 1000)))
                                           (and (= 1000 (receive s buf :wait-all t)) buf))))))
      (dotimes (i 10)
        (si:gc t)
        (send c (make-octets 100 i))
        (sleep 0.01))
      (let ((buf (funcall reader)))
        (is (typep buf 'vector))
        (is (every (lambda (i) (= i (aref buf (* 100 i)))) '(0 1 2 3 4 5 6 7 8 9)))))))

(test close-wakes-blocked-accept
  (let* ((l (loopback-listener :ipv4))
         (acceptor (run-thread "acceptor" (lambda () (accept-connection l :timeout 5)))))
    (sleep 0.2)
    (close l)
    (is (typep (funcall acceptor) 'net:socket-closed))))

;;; Bad input and closed sockets

(test non-sockets-are-type-errors
  (signals type-error (send "socket" (octets 1)))
  (signals type-error (receive 42 (make-octets 1)))
  (signals type-error (connect nil "127.0.0.1" :port 1))
  (signals type-error (net:send-to :s (octets 1) "127.0.0.1" :port 1))
  (signals type-error (net:receive-from '(a) (make-octets 1)))
  (signals type-error (net:socket-at-mark-p 3))
  (signals type-error (net:socket-blocking-p 3))
  (signals type-error (setf (net:socket-blocking-p "s") nil))
  (signals type-error (net:socket-timeout-of #\s))
  (signals type-error (net:socket-type 1.0))
  (signals type-error (net:socket-fd (make-instance 'standard-object))))

(test short-reads-wait-first-and-lose-nothing
  "After a short read the next blocking receive waits before it tries; every
octet still arrives once, in order, including those already there."
  (with-tcp-pair (c s)
    (let ((in (make-octets 64)) (got '()))
      (dotimes (i 50)
        (send c (octets (mod i 256)))
        (when (evenp i) (send c (octets (mod (+ i 100) 256))))
        (let ((n (receive s in)))
          (is (<= 1 n 2))
          (loop for k below n do (push (aref in k) got))
          (when (and (evenp i) (= n 1))
            (is (= 1 (receive s in)))
            (push (aref in 0) got))))
      (is (equal (loop for i below 50 collect (mod i 256)
                       when (evenp i) collect (mod (+ i 100) 256))
                 (reverse got))))))

(test bad-ports-and-directions
  (net:with-open-socket (s)
    (signals type-error (bind-address s "127.0.0.1" :port 70000))
    (signals type-error (connect s "127.0.0.1" :port -1))
    (signals type-error (shutdown s :sideways))))

(test every-call-on-a-closed-socket-signals-socket-closed
  (let ((s (make-socket)) (buf (make-octets 4)))
    (close s)
    (signals net:socket-closed (receive s buf))
    (signals net:socket-closed (connect s "127.0.0.1" :port 1))
    (signals net:socket-closed (listen-on s))
    (signals net:socket-closed (shutdown s :both))
    (signals net:socket-closed (net:socket-local-address s))
    (signals net:socket-closed (net:socket-at-mark-p s))
    (signals net:socket-closed (net:send-to s buf "127.0.0.1" :port 1))
    (signals net:socket-closed (net:receive-from s buf))
    (signals net:socket-closed (net:send-message s (list buf)))
    (signals net:socket-closed (net:receive-message s (list buf)))
    (signals net:socket-closed (net:finish-connect s))
    (is (null (close s :abort t)))))

;;; Out-of-band data

(defparameter *oob-peer* "
import socket, sys
c = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
c.sendall(b'ab'); c.send(b'!', socket.MSG_OOB); c.sendall(b'cd')
c.settimeout(5)
urgent = b''
for i in range(50):
    try:
        urgent = c.recv(1, socket.MSG_OOB); break
    except (BlockingIOError, OSError):
        import time; time.sleep(0.05)
print('urgent', urgent.decode())
rest = b''
while len(rest) < 2:
    rest += c.recv(2 - len(rest))
print('rest', rest.decode())
c.close()
")

(test out-of-band-with-a-python-peer
  (let ((l (loopback-listener :ipv4)))
    (unwind-protect
         (multiple-value-bind (out code process)
             (ext:run-program "python3" (list "-c" *oob-peer*
                                              (princ-to-string (net:socket-local-port l)))
                              :input nil :output :stream :error nil :wait nil)
           (declare (ignore code))
           (let ((s (accept-connection l :timeout 5)) (buf (make-octets 8)))
             (unwind-protect
                  (progn
                    (is (= 1 (receive s buf :out-of-band t :timeout 5)))
                    (is (= (char-code #\!) (aref buf 0)))
                    ;; the ordinary data stops at the mark
                    (is (= 2 (receive s buf :wait-all t :end 2)))
                    (is (equalp (octets 97 98) (subseq buf 0 2)))
                    (is (net:socket-at-mark-p s))
                    (is (= 2 (receive s buf :wait-all t :end 2)))
                    (is (equalp (octets 99 100) (subseq buf 0 2)))
                    ;; and the other way: our urgent octet, then ordinary data
                    (send s (octets (char-code #\?)) :out-of-band t)
                    (sleep 0.1)
                    (send s (octets (char-code #\x) (char-code #\y)))
                    (is (equal "urgent ?" (read-line out)))
                    (is (equal "rest xy" (read-line out))))
               (close s))
             (ext:external-process-wait process)))
      (close l))))

(test out-of-band-receive-times-out-without-urgent-data
  (with-tcp-pair (c s :timeout 5)
    (signals net:socket-timeout (receive s (make-octets 1) :out-of-band t :timeout 0.2))))

;;; Finalizers

(defun make-garbage-sockets (n)
  (dotimes (i n) (make-socket))
  nil)

(test finalizer-closes-garbage-sockets
  ;; Made in a thread that then exits, so that no stale reference to them
  ;; stays on a stack the conservative collector scans.
  (let ((before (net:finalized-socket-count))
        (fds (socket-fd-count)))
    (funcall (run-thread "litter" (lambda () (make-garbage-sockets 10))))
    (loop repeat 20
          until (>= (net:finalized-socket-count) (+ before 10))
          do (si:gc t) (sleep 0.05))
    ;; (at least: garbage left by other tests may be finalized meanwhile)
    (is (<= (+ before 10) (net:finalized-socket-count)))
    (is (<= (socket-fd-count) fds))))

(defun closed-socket-pointers (n)
  "Weak pointers to N sockets opened and closed in turn (so all had the
same descriptor number), and that number."
  (let ((fd nil))
    (values (loop repeat n
                  collect (let ((s (make-socket)))
                            (setf fd (net:socket-fd s))
                            (close s)
                            (ext:make-weak-pointer s)))
            fd)))

(test finalizer-never-closes-a-reused-descriptor
  (multiple-value-bind (weak fd) (closed-socket-pointers 50)
    (let ((new (make-socket)))
      (unwind-protect
           (progn
             (is (= fd (net:socket-fd new)))   ; the number is reused
             (loop repeat 10
                   while (every #'ext:weak-pointer-value weak)
                   do (si:gc t) (sleep 0.05))
             ;; some of the old sockets were collected and finalized ...
             (is (notevery #'ext:weak-pointer-value weak))
             ;; ... and the new socket's descriptor is untouched
             (is (= fd (net:socket-fd new)))
             (is (logtest (fd-flags fd) #o4000))
             (bind-address new "127.0.0.1")
             (is (plusp (net:socket-local-port new))))
        (close new)))))

(test ipv6-only-refuses-ipv4
  ;; IPV6_V6ONLY (the :v6-only socket option) before bind: an IPv4 client
  ;; is refused where the dual-stack socket accepted it.
  (let ((l (make-socket :address-family :ipv6 :v6-only t)))
    (unwind-protect
         (progn
           (is (eq t (net:socket-option l :v6-only)))
           (bind-address l "::")
           (listen-on l)
           (net:with-open-socket (c :address-family :ipv4)
             (signals net:connection-refused
               (connect c "127.0.0.1" :port (net:socket-local-port l) :timeout 5)))
           (net:with-open-socket (c :address-family :ipv6)
             (is (eq c (connect c "::1" :port (net:socket-local-port l) :timeout 5)))))
      (close l))))

(test blocking-send-to-a-peer-that-does-not-read-times-out
  ;; A blocking send tries at once and waits only once the socket has no
  ;; room: the peer never reads, so the wait ends at the timeout, signalled
  ;; or (ERRORP NIL) returned; the socket still sends once there is room.
  (with-tcp-pair (c s)
    (let ((big (make-octets (* 16 1024 1024)))
          (t0 (get-internal-real-time)))
      (signals net:socket-timeout (send c big :timeout 0.3))
      (let ((elapsed (/ (- (get-internal-real-time) t0) internal-time-units-per-second)))
        (is (<= 0.29 elapsed 5)))
      (multiple-value-bind (n failure) (send c big :timeout 0.2 :errorp nil)
        (is (null n))
        (is (typep failure 'net:socket-timeout)))
      ;; Drain what went, then a small send goes at once.
      (setf (net:socket-blocking-p s) nil)
      (loop repeat 100000 while (receive s big))
      (is (= 3 (send c (octets 1 2 3) :timeout 5))))))

(test blocking-send-of-more-than-fits-returns-the-whole-count
  ;; The first send(2) of 8 MiB from START 1000 is partial: the peer
  ;; starts reading only after a while, and the socket's buffers hold less.
  ;; The rest goes once the peer reads, and SEND returns END - START,
  ;; signalling or with ERRORP NIL alike, every octet in order.
  (dolist (errorp '(t nil))
    (with-tcp-pair (c s :timeout 30)
      (let* ((size (* 8 1024 1024))
             (out (random-octets (+ size 1000)))
             (reader (spawn (lambda ()
                              (let ((in (make-octets size)))
                                (sleep 0.3)
                                (cons (receive s in :wait-all t) in))))))
        (is (= size (send c out :start 1000 :errorp errorp)))
        (let ((got (join reader)))
          (is (eql size (car got)))
          (is (equalp (subseq out 1000) (cdr got))))))))

(test with-deadline-spans-several-calls
  (with-tcp-pair (c s)
    (let ((t0 (get-internal-real-time)) (buf (make-octets 4)))
      (signals net:socket-timeout
        (net:with-deadline (0.3)
          (send c (octets 1))
          (is (= 1 (receive s buf)))       ; this one returns at once
          (receive s buf)))                ; this one waits out the rest
      (let ((elapsed (/ (- (get-internal-real-time) t0) internal-time-units-per-second)))
        (is (<= 0.29 elapsed 2))))
    ;; a per-call timeout inside a deadline takes the earlier of the two
    (signals net:socket-timeout
      (net:with-deadline (10) (receive s (make-octets 1) :timeout 0.1)))))

(test with-deadline-in-a-file-compiled-outside-net
  ;; WITH-DEADLINE expands to inline code calling primitives: compiled in a
  ;; user's file (no netsys.h there) it must still read the clock right.
  (let* ((base (format nil "/tmp/net-outside-~d" (ext:getpid)))
         (source (concatenate 'string base ".lsp")))
    (with-open-file (out source :direction :output :if-exists :supersede)
      (write-string "(defun net-tests::%outside-deadline ()
  (net:with-deadline (10) (list net::*deadline* (net-sys:now))))" out))
    (unwind-protect
         (let ((fas (compile-file source :verbose nil :print nil)))
           (load fas)
           (delete-file fas)
           (destructuring-bind (deadline now) (funcall '%outside-deadline)
             (let ((here (funcall 'net-sys:now)))
               (is (<= now here))
               (is (< (- here now) (* 60 1000000000)))
               (is (< now deadline (+ here (* 10 1000000000)))))))
      (delete-file source))))

(test non-blocking-send-is-partial
  (with-tcp-pair (c s)
    (setf (net:socket-blocking-p c) nil)
    (let* ((big (make-octets (* 16 1024 1024)))
           (n (send c big)))
      ;; the kernel takes what fits in its buffers, not 16 MiB
      (is (and (integerp n) (< 0 n (length big))))
      ;; once full, a send that can move nothing returns NIL
      (is (null (loop repeat 100
                      for k = (send c big)
                      while k
                      finally (return k)))))))

(test socket-timeout-of-is-checked-and-used
  (with-tcp-pair (c s)
    (signals type-error (setf (net:socket-timeout-of s) -2))
    (setf (net:socket-timeout-of s) 1/10)
    (is (= 1/10 (net:socket-timeout-of s)))
    (signals net:socket-timeout (receive s (make-octets 1)))
    (setf (net:socket-timeout-of s) nil)
    (send c (octets 5))
    (is (= 1 (receive s (make-octets 1))))))

(test interrupt-process-on-a-blocked-accept
  (let* ((l (loopback-listener :ipv4))
         (interrupted nil)
         (acceptor (run-thread "acceptor" (lambda () (accept-connection l :timeout 10)))))
    (unwind-protect
         (progn
           (sleep 0.2)
           (mp:interrupt-process (find "acceptor" (mp:all-processes)
                                       :key #'mp:process-name :test #'string=)
                                 (lambda () (setf interrupted t)))
           (sleep 0.1)
           ;; the accept goes on and takes the connection that comes next
           (net:with-open-socket (c)
             (connect c "127.0.0.1" :port (net:socket-local-port l) :timeout 5)
             (let ((s (funcall acceptor)))
               (is (typep s 'net:stream-socket))
               (is (eq t interrupted))
               (when (typep s 'net:socket) (close s)))))
      (close l))))

(test receive-from-a-connected-stream-has-no-address
  (with-tcp-pair (c s :timeout 5)
    (send c (octets 1 2))
    (multiple-value-bind (n address port truncated)
        (net:receive-from s (make-octets 4))
      (is (= 2 n))
      (is (null address))
      (is (null port))
      (is (null truncated)))))

(test bad-receive-buffers-lose-nothing
  (with-tcp-pair (c s :timeout 5)
    (send c (octets 1 2 3))
    (signals type-error (receive s (make-array 4)))
    (signals type-error (receive s (make-octets 4) :end 5))
    (signals type-error (receive s (make-octets 4) :start 3 :end 2))
    (signals type-error (receive s (make-octets 4) :start 1.5))
    (signals type-error (net:receive-from s (make-octets 4) :end 10))
    (signals type-error (net:receive-message s (list (make-octets 4) "x")))
    (let ((buf (make-octets 4)))
      (is (= 3 (receive s buf :wait-all t :end 3)))
      (is (equalp (octets 1 2 3) (subseq buf 0 3))))))

(test non-blocking-socket-pair
  (with-socket-pair (a b :type :seqpacket :blocking nil)
    (is (null (receive b (make-octets 4))))
    (is (= 2 (send a (octets 1 2))))
    (is (eql 2 (loop repeat 100
                     for n = (receive b (make-octets 4))
                     when n return n
                     do (sleep 0.01))))))

(test receive-octets-allocates-what-arrived
  (with-tcp-pair (c s :timeout 5)
    (send c (octets 1 2 3))
    (let ((v (net:receive-octets s :size 10 :wait-all nil)))
      (is (typep v '(simple-array (unsigned-byte 8) (*))))
      (is (equalp (octets 1 2 3) v)))
    (send c (octets 4 5 6 7))
    (is (equalp (octets 4 5) (net:receive-octets s :size 2)))
    (is (equalp (octets 6 7) (net:receive-octets s :size 2 :wait-all t)))
    (shutdown c :output)
    (is (equalp (make-octets 0) (net:receive-octets s)))
    (signals type-error (net:receive-octets s :size -1))
    (setf (net:socket-blocking-p c) nil)
    (is (null (net:receive-octets c)))))

(test enormous-timeouts-mean-forever
  (with-tcp-pair (c s :timeout 1d15)
    (send c (octets 3))
    (is (= 1 (receive s (make-octets 1))))
    (send c (octets 4))
    (is (= 1 (receive s (make-octets 1) :timeout (expt 10 30))))
    (send c (octets 5))
    (is (= 1 (net:with-deadline (1d20) (receive s (make-octets 1)))))))

(defun half-close-test (family)
  (with-tcp-pair (c s :family family :timeout 5)
    (let ((buf (make-octets 8)))
      ;; the client ends its side: the server reads EOF, and can still send
      (send c (octets 1 2))
      (shutdown c :output)
      (is (= 2 (receive s buf :wait-all t)))
      (is (= 0 (receive s buf)))
      (is (= 0 (receive s buf)))                ; EOF stays EOF
      (send s (octets 3 4 5))
      (is (= 3 (receive c buf :wait-all t :end 3)))
      (signals net:broken-pipe (send c (octets 9)))   ; our own output is shut
      ;; then the server ends its side too: the client reads EOF
      (shutdown s :output)
      (is (= 0 (receive c buf))))))

(test half-close-both-ways-ipv4 (half-close-test :ipv4))
(test half-close-both-ways-ipv6 (half-close-test :ipv6))

(test shutdown-both-and-unconnected
  (with-tcp-pair (c s :timeout 5)
    (shutdown c :both)
    (is (= 0 (receive s (make-octets 1))))
    (is (= 0 (receive c (make-octets 1)))))
  (net:with-open-socket (u)
    (signals net:not-connected (shutdown u :output))
    (signals net:not-connected (net:socket-remote-address u))))

(test interrupt-process-on-a-blocked-send
  (with-tcp-pair (c s :timeout 20)
    (let* ((n (* 16 1024 1024))
           (data (urandom-octets n))
           (got (make-octets n))
           (interrupted 0)
           (writer (run-thread "writer" (lambda () (send c data)))))
      (sleep 0.2)                       ; the writer is blocked: nobody reads yet
      (let ((thread (find "writer" (mp:all-processes) :key #'mp:process-name
                                                      :test #'string=)))
        (dotimes (i 10)
          (when thread (mp:interrupt-process thread (lambda () (incf interrupted))))
          (sleep 0.01)))
      (is (= n (receive s got :wait-all t)))
      (is (eql n (funcall writer)))
      (is (= 10 interrupted))
      (is (null (mismatch data got))))))

;;; Descriptors: connected-p, dup, detach, adoption

(test socket-connected-p-follows-the-peer
  (with-tcp-pair (c s :timeout 5)
    (is (eq t (net:socket-connected-p c)))
    (is (eq t (net:socket-connected-p s))))
  (net:with-open-socket (fresh)
    (is (null (net:socket-connected-p fresh))))
  (let ((l (loopback-listener :ipv4)))
    (is (null (net:socket-connected-p l)))
    (close l)
    (is (null (net:socket-connected-p l))))        ; closed: no peer, no error
  (net:with-open-socket (u :type :datagram)
    (is (null (net:socket-connected-p u)))
    (connect u "127.0.0.1" :port 9)
    (is (eq t (net:socket-connected-p u))))
  (with-socket-pair (a b)
    (is (eq t (net:socket-connected-p a)))))

(test dup-socket-shares-the-connection
  (with-socket-pair (a b :timeout 5)
    (let ((d (net:dup-socket a)))
      (unwind-protect
           (progn
             (is (eq (class-of a) (class-of d)))
             (is (/= (net:socket-fd a) (net:socket-fd d)))
             (is (logtest (fd-flags (net:socket-fd d)) #o2000000))   ; O_CLOEXEC
             (is (= 5 (net:socket-timeout-of d)))
             (send d (octets 1 2))
             (is (equalp (octets 1 2) (net:receive-octets b :size 2 :wait-all t)))
             ;; closing one leaves the socket open through the other
             (close a)
             (send d (octets 3))
             (is (equalp (octets 3) (net:receive-octets b :size 1)))
             (send b (octets 4))
             (is (equalp (octets 4) (net:receive-octets d :size 1))))
        (close d))
      ;; both closed: the peer sees end of file
      (is (equalp (octets) (net:receive-octets b :size 1)))
      (signals net:socket-closed (net:dup-socket a)))))

(test socket-detach-gives-the-descriptor-away
  (with-socket-pair (a b :timeout 5)
    (write-string "buffered" a)                     ; still in the stream buffer
    (let ((fd (net:socket-detach a)))
      (is (integerp fd))
      (is (not (net:socket-open-p a)))
      (is (null (net:socket-fd a)))
      (is (null (close a)))                         ; closed already, fd untouched
      (signals net:socket-closed (send a (octets 1)))
      (signals net:socket-closed (net:socket-detach a))
      (is (integerp (fd-flags fd)))                 ; still open
      (is (equal "buffered" (map 'string #'code-char (net:receive-octets b :size 8 :wait-all t))))
      (let ((again (net:make-socket-from-fd fd :timeout 5)))
        (unwind-protect
             (progn (send again (octets 5 6))
                    (is (equalp (octets 5 6) (net:receive-octets b :size 2 :wait-all t))))
          (close again))))))

(test make-socket-from-fd-adopts-another-librarys-socket
  ;; ECL's own sockets module makes blocking descriptors without close-on-exec
  (require :sockets)
  (let* ((bsd (find-package "SB-BSD-SOCKETS"))
         (other (make-instance (find-symbol "INET-SOCKET" bsd) :type :stream :protocol :tcp))
         (fd (funcall (find-symbol "SOCKET-FILE-DESCRIPTOR" bsd) other))
         (l (loopback-listener :ipv4)))
    (is (not (logtest (fd-flags fd) #o4000)))
    (let ((s (net:make-socket-from-fd fd :timeout 5)))
      (unwind-protect
           (progn
             (is (typep s 'net:stream-socket))
             (is (eq :ipv4 (net:socket-address-family s)))
             (is (logtest (fd-flags fd) #o4000))          ; O_NONBLOCK
             (is (logtest (fd-flags fd) #o2000000))       ; O_CLOEXEC
             (connect s "127.0.0.1" :port (net:socket-local-port l))
             (let ((peer (accept-connection l :timeout 5)))
               (unwind-protect
                    (progn (send peer (octets 42))
                           (is (equalp (octets 42) (net:receive-octets s :size 1))))
                 (close peer))))
        (close s)
        (close l)))))

(defun detached-descriptors (n)
  "N descriptors detached from socket objects left to the collector."
  (loop repeat n collect (net:socket-detach (make-socket :type :datagram))))

(test detached-descriptors-outlive-their-garbage-sockets
  (let ((before (net:finalized-socket-count))
        (fds (detached-descriptors 5)))
    (loop repeat 3 do (si:gc t) (sleep 0.05))
    (is (every (lambda (fd) (integerp (fd-flags fd))) fds))
    (is (= before (net:finalized-socket-count)))
    (dolist (fd fds)
      (close (net:make-socket-from-fd fd)))))

(test accepted-sockets-follow-the-listener-settings-of-each-accept
  "Accepted sockets are copies of a prototype the listener keeps: a change
of its timeout or buffering after an accept reaches the next ones, and each
accepted socket is a socket of its own."
  (let ((l (loopback-listener :ipv4)) (clients '()) (accepted '()))
    (unwind-protect
         (flet ((next ()
                  (let ((c (make-socket)))
                    (push c clients)
                    (connect c "127.0.0.1" :port (net:socket-local-port l) :timeout 5)
                    (let ((s (accept-connection l :timeout 5)))
                      (push s accepted)
                      s))))
           (setf (net:socket-timeout-of l) 3 (net:socket-buffering l) :line)
           (let ((a (next)) (b (next)))
             (is (eql 3 (net:socket-timeout-of a)))
             (is (eq :line (net:socket-buffering a)))
             (is (not (eq a b)))
             (is (/= (net:socket-fd a) (net:socket-fd b)))
             (is (typep a 'net:stream-socket))
             (close a)
             (is-true (net:socket-open-p b) "closing one accepted socket leaves the other open"))
           (setf (net:socket-timeout-of l) 7 (net:socket-buffering l) :none)
           (let ((c (next)))
             (is (eql 7 (net:socket-timeout-of c)))
             (is (eq :none (net:socket-buffering c)))
             (setf (net:socket-timeout-of c) nil)
             (is (eql 7 (net:socket-timeout-of l)) "the accepted socket's setting is its own")))
      (mapc #'close accepted)
      (mapc #'close clients)
      (close l))))
(defmacro unsignalled (&body body)
  "BODY's values as a list; fails the test if BODY signalled any condition."
  (let ((signalled (gensym)))
    `(let ((,signalled '()))
       (prog1 (handler-bind ((condition (lambda (c) (push c ,signalled))))
                (multiple-value-list (progn ,@body)))
         (is (null ,signalled) "signalled ~s" ,signalled)))))

(test errorp-nil-returns-failures
  ;; :ERRORP NIL: every failure of the connection comes back as NIL and the
  ;; condition, signalled by nobody; counts, end of file and would-block
  ;; are unchanged, and wrong arguments still signal.
  (with-tcp-pair (c s :timeout 5)
    (let ((buffer (make-octets 8)))
      (setf (net:socket-blocking-p s) nil)
      (is (equal '(nil) (unsignalled (receive s buffer :errorp nil))))
      (is (equal '(3) (unsignalled (send c (octets 1 2 3) :errorp nil))))
      (is (eql 3 (loop repeat 500 for n = (receive s buffer :errorp nil)
                       when n return n do (sleep 0.01))))
      (signals type-error (receive s buffer :start 9 :errorp nil))
      (close c :abort t)
      (sleep 0.1)
      (destructuring-bind (n failure) (unsignalled (receive s buffer :errorp nil))
        (is (null n))
        (is (typep failure 'net:connection-reset))
        (is (eq s (net:socket-error-socket failure)))
        (is (equal "recv" (net:socket-error-syscall failure))))
      ;; The reset is reported again, as when signalled.
      (is (typep (second (unsignalled (receive s buffer :errorp nil))) 'net:connection-reset))
      (is (typep (second (unsignalled (receive s buffer :wait-all t :errorp nil)))
                 'net:connection-reset))
      (signals net:connection-reset (receive s buffer))
      (destructuring-bind (n failure) (unsignalled (send s buffer :errorp nil))
        (is (null n))
        (is (typep failure '(or net:broken-pipe net:connection-reset))))
      (close s)
      (is (typep (second (unsignalled (receive s buffer :errorp nil))) 'net:socket-closed))
      (is (typep (second (unsignalled (send s buffer :errorp nil))) 'net:socket-closed)))))

(test errorp-nil-on-blocking-calls
  (with-tcp-pair (c s :timeout 5)
    (let ((buffer (make-octets 8)))
      ;; The timeout of a blocking call is a failure like the others.
      (is (typep (second (unsignalled (receive s buffer :timeout 0.1 :errorp nil)))
                 'net:socket-timeout))
      (is (equal '(8) (unsignalled (send c (make-octets 8) :errorp nil))))
      (is (equal '(8) (unsignalled (receive s buffer :wait-all t :errorp nil))))
      ;; Through the stream's buffered input too.
      (send c (octets 7 8))
      (is (eql 7 (read-byte s)))
      (is (equal '(1) (unsignalled (receive s buffer :errorp nil))))
      (is (eql 8 (aref buffer 0)))
      (close c :abort t)
      (is (typep (second (unsignalled (receive s buffer :errorp nil))) 'net:connection-reset)))))

;;; Catalog cases of the reliability chapter (doc/reliability.texi)

(test data-then-reset-before-read
  ;; P11: what arrived before the reset is read, then CONNECTION-RESET,
  ;; never a clean end of file first.
  (with-tcp-pair (c s :timeout 5)
    (send c (octets 1 2 3))
    (sleep 0.1)
    (close c :abort t)
    (sleep 0.1)
    (let ((buffer (make-octets 4)))
      (is (eql 3 (receive s buffer)))
      (is (equalp (octets 1 2 3) (subseq buffer 0 3)))
      (signals net:connection-reset (receive s buffer))
      ;; P02: the kernel reports the reset once, then end of file; net
      ;; keeps reporting the reset, on the socket and on its stream.
      (signals net:connection-reset (receive s buffer))
      (signals net:connection-reset (read-byte s nil :eof))
      ;; A zero-length read reads nothing, reset or not.
      (is (eql 0 (receive s buffer :end 0))))))

(test listener-closed-with-unaccepted-connections
  ;; P08: every client queued in the backlog is reset when the listener
  ;; closes without accepting it.
  (let* ((l (loopback-listener :ipv4))
         (port (net:socket-local-port l))
         (clients (loop repeat 3
                        collect (let ((c (make-socket :timeout 5)))
                                  (connect c "127.0.0.1" :port port :timeout 5)
                                  c))))
    (unwind-protect
         (progn
           (close l)
           (dolist (c clients)
             (is (typep (handler-case (receive c (make-octets 4)) (error (e) e))
                        'net:connection-reset))))
      (mapc #'close clients))))

(test restart-on-the-same-port-with-time-wait
  ;; L13: the server closes first (its side goes to TIME_WAIT), the
  ;; listener closes, and a new one binds the same port at once.
  (let* ((l (net:make-listener 0))
         (port (net:socket-local-port l)))
    (dotimes (i 3)
      (let ((c (net:connect-to "127.0.0.1" port :timeout 5))
            (s (accept-connection l :timeout 5)))
        (close s)                       ; server side first: TIME_WAIT here
        (is (eql 0 (receive c (make-octets 1) :timeout 5)))
        (close c)))
    (close l)
    (let ((again (net:make-listener port)))
      (is (= port (net:socket-local-port again)))
      (close again))))

(test concurrent-close-and-io-never-crash
  ;; L14: a thread closes a socket while another receives or sends on it:
  ;; the other gets SOCKET-CLOSED (or a socket error, or end of file), never
  ;; a crash or a hang, and no descriptor is left.
  (let ((fds-before (socket-fd-count))
        (outcomes (make-hash-table)))
    (dotimes (i 100)
      (with-tcp-pair (c s :timeout 5)
        (let ((user (run-thread "user"
                                (lambda ()
                                  (if (evenp i)
                                      (receive s (make-octets 16))
                                      (loop repeat 10000 do (send s (make-octets 4096))))))))
          (sleep (random 0.005))
          (close s :abort t)
          (let ((r (funcall user)))
            (incf (gethash (if (typep r 'condition) (type-of r) (type-of r)) outcomes 0))
            (is (or (typep r 'net:network-error) (eql r 0))
                "iteration ~d: ~a" i r)))))
    (is (= fds-before (socket-fd-count)) "no descriptor leaked")))

(test connected-udp-to-a-closed-port
  ;; P12: connected UDP learns of the closed port from ICMP: the next
  ;; receive signals CONNECTION-REFUSED and the socket goes on working.
  (let* ((gone (net:make-udp-socket))
         (port (net:socket-local-port gone)))
    (close gone)
    (let ((u (net:make-udp-socket)))
      (unwind-protect
           (progn
             (connect u "127.0.0.1" :port port)
             (send u (octets 1 2 3))
             (signals net:connection-refused (receive u (make-octets 8) :timeout 2))
             ;; Unconnected, the same error does not reach the sender.
             (let ((v (net:make-udp-socket)))
               (unwind-protect
                    (progn
                      (net:send-to v (octets 4) "127.0.0.1" :port port)
                      (is (null (net:wait-until-ready (list v) :timeout 0.2))
                          "no error is queued for an unconnected socket"))
                 (close v)))
             ;; The connected socket still works with a live peer.
             (let ((peer (net:make-udp-socket)))
               (unwind-protect
                    (progn
                      (connect u "127.0.0.1" :port (net:socket-local-port peer))
                      (send u (octets 9))
                      (let ((b (make-octets 4)))
                        (is (eql 1 (net:receive-from peer b :timeout 5)))
                        (is (= 9 (aref b 0)))))
                 (close peer))))
        (close u)))))

(test slow-reader-gets-every-byte-in-order
  ;; P06: a peer that reads little and often, through small buffers, makes
  ;; a blocking writer wait many times; it gets everything, in order.
  (with-tcp-pair (c s :timeout 20)
    (setf (net:socket-option c :send-buffer) 4096
          (net:socket-option s :receive-buffer) 4096)
    (let* ((data (random-octets 200000))
           (writer (run-thread "writer" (lambda () (send c data))))
           (got (make-octets 200000))
           (pos 0))
      (loop repeat 5000 while (< pos 200000)
            do (let ((n (receive s got :start pos :end (min 200000 (+ pos 2048)))))
                 (is-true (plusp n))
                 (incf pos n)
                 (sleep 0.002)))
      (is (= 200000 (funcall writer)))
      (is (= 200000 pos))
      (is (equalp data got)))))

(test calls-in-the-wrong-state-signal-their-errno
  ;; B15: each call made in a state where it makes no sense signals the
  ;; condition of its errno, and the socket stays usable.
  (let ((s (make-socket)))
    (unwind-protect
         (progn
           (signals net:invalid-argument (accept-connection s :timeout 1))
           (signals net:broken-pipe (send s (octets 1)))   ; Linux: EPIPE, not ENOTCONN
           (bind-address s "127.0.0.1")
           (signals net:invalid-argument (bind-address s "127.0.0.1")))
      (close s)))
  (let ((u (make-socket :type :datagram)))
    (unwind-protect
         (signals net:destination-address-required (send u (octets 1)))
      (close u)))
  (with-tcp-pair (c s :timeout 5)
    (signals net:invalid-argument (listen-on c))
    ;; A second connect, to the same peer or another, is refused.
    (signals net:already-connected
      (connect c (net:socket-remote-address c) :port (net:socket-remote-port c) :timeout 5))
    (let ((other (loopback-listener :ipv4)))
      (unwind-protect
           (signals net:already-connected
             (connect c "127.0.0.1" :port (net:socket-local-port other) :timeout 5))
        (close other)))
    (send c (octets 5))
    (is (eql 1 (receive s (make-octets 1))) "still usable")))
(defun child-inherited-fds ()
  "The targets of the descriptors a child started by EXT:RUN-PROGRAM holds,
as its /proc/PID/fd links name them (socket:[N], anon_inode:[eventpoll], ...)."
  (let ((out (with-output-to-string (s)
               (ext:run-program "/bin/sh" (list "-c" "for f in /proc/$$/fd/*; do readlink $f; done")
                                :input t :output s :error t :wait t))))
    (with-input-from-string (in out)
      (loop for line = (read-line in nil) while line collect line))))

(test no-descriptor-leaks-into-child-processes
  "Every descriptor net makes is close-on-exec: a child started while one of
each kind is open inherits none of them, but does inherit a socket of ECL's
own sockets module (made without close-on-exec), which shows the check sees
sockets."
  (require :sockets)
  (let* ((bsd (find-package "SB-BSD-SOCKETS"))
         (control (make-instance (find-symbol "INET-SOCKET" bsd) :type :datagram :protocol :udp))
         (sockets '()))
    (unwind-protect
         (net:with-event-loop (loop)
           (dolist (args '((:address-family :ipv4 :type :stream) (:address-family :ipv4 :type :datagram)
                           (:address-family :ipv6 :type :stream) (:address-family :ipv6 :type :datagram)
                           (:address-family :local :type :stream) (:address-family :local :type :datagram)
                           (:address-family :local :type :seqpacket)))
             (push (apply #'make-socket args) sockets))
           (multiple-value-bind (a b) (net:make-socket-pair)
             (push a sockets)
             (push b sockets)
             (let* ((l (net:make-listener 0))
                    (c (net:connect-to "127.0.0.1" (net:socket-local-port l) :timeout 5))
                    (s (accept-connection l :timeout 5)))
               (push l sockets)
               (push c sockets)
               (push s sockets)
               (push (net:dup-socket s) sockets)
               (net:send-file-descriptors a (list c))
               (push (net:make-socket-from-fd (first (net:receive-file-descriptors b :timeout 5)))
                     sockets)
               (net:add-watcher loop c '(:read) (lambda (socket events)
                                                  (declare (ignore socket events))))
               (net:add-timer loop (lambda ()) 60)))
           (let* ((fds (child-inherited-fds))
                  (seen (count-if (lambda (f) (search "socket:[" f)) fds)))
             (is (= 14 (length sockets)))
             (is (= 1 seen) "the child holds ~d sockets: ~s" seen fds)
             (is (notany (lambda (f) (search "anon_inode:" f)) fds) "~s" fds)))
      (mapc #'close sockets)
      (funcall (find-symbol "SOCKET-CLOSE" bsd) control))))
