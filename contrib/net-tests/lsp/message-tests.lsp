;;;; message-tests.lsp -- tests of message.lsp and Unix-domain sockets:
;;;; scatter/gather, descriptor passing, credentials, packet info, pairs.

(in-package "NET-TESTS")

(def-suite :message :in :net)
(in-suite :message)

(test socket-pairs-of-each-type
  (with-socket-pair (a b :timeout 5)
    (is (typep a 'net:local-socket))
    (is (typep a 'net:stream-socket))
    (send a (octets 1 2 3))
    (send a (octets 4 5))
    ;; a stream runs the two sends together
    (is (= 5 (receive b (make-octets 8) :wait-all t :end 5))))
  (dolist (type '(:datagram :seqpacket))
    (with-socket-pair (a b :type type :timeout 5)
      (is (eq type (net:socket-type a)))
      (send a (octets 1 2 3))
      (send a (octets 4 5))
      (let ((buf (make-octets 8)))
        (is (= 3 (receive b buf)))          ; one message per receive
        (is (= 2 (receive b buf)))
        (is (equalp (octets 4 5) (subseq buf 0 2)))))))

(test seqpacket-shutdown-reads-end-of-file
  (with-socket-pair (a b :type :seqpacket :timeout 5)
    (shutdown a :output)
    (is (= 0 (receive b (make-octets 4))))
    (is (= 1 (send b (octets 1))))
    (is (= 1 (receive a (make-octets 4))))))

(test scatter-and-gather
  (with-socket-pair (a b :type :seqpacket :timeout 5)
    (let ((head (octets 1 2 3)) (body (octets 0 0 4 5 6 0)) (x (make-octets 2))
          (y (make-octets 10 99)))
      (is (= 7 (net:send-message a (list head (list body 2 5) (octets 7)))))
      (multiple-value-bind (n address port ancillary flags)
          (net:receive-message b (list x (list y 3 8)))
        (is (= 7 n))
        (is (null address))
        (is (null port))
        (is (null ancillary))
        (is (null flags))
        (is (equalp (octets 1 2) x))
        (is (equalp (octets 99 99 99 3 4 5 6 7 99 99) y))))))

(test receive-message-reports-truncation
  (with-socket-pair (a b :type :datagram :timeout 5)
    (net:send-message a (list (octets 1 2 3 4 5)))
    (multiple-value-bind (n address port ancillary flags)
        (net:receive-message b (list (make-octets 2)))
      (declare (ignore address port ancillary))
      (is (= 2 n))
      (is (member :truncated flags)))))

(test descriptors-pass-over-unix-sockets
  (with-socket-pair (a b :timeout 5)
    (with-tcp-pair (c s :timeout 5)
      (is (= 1 (net:send-file-descriptors a (list s))))
      (multiple-value-bind (fds count) (net:receive-file-descriptors b)
        (is (= 1 count))
        (is (= 1 (length fds)))
        (is (/= (first fds) (net:socket-fd s)))
        (is (logtest (fd-flags (first fds)) #o2000000)) ; close-on-exec
        ;; the received descriptor is the same connection: adopt it and use it
        (let ((s2 (net:make-socket-from-fd (first fds) :timeout 5)))
          (unwind-protect
               (progn
                 (is (typep s2 'net:inet-socket))
                 (is (typep s2 'net:stream-socket))
                 (is (eq :stream (net:socket-type s2)))
                 (is (= 3 (send s2 (octets 7 7 7))))
                 (is (= 3 (receive c (make-octets 3) :wait-all t))))
            (close s2)))
        ;; closing the copy left the original open
        (is (= 1 (send s (octets 1))))
        (is (= 1 (receive c (make-octets 1))))))))

(test several-descriptors-and-a-listener
  (with-socket-pair (a b :timeout 5)
    (let ((l (loopback-listener :ipv6)))
      (unwind-protect
           (let ((u (make-socket :type :datagram)))
             (unwind-protect
                  (progn
                    (net:send-message a (list (octets 1 2))
                                      :ancillary `((:file-descriptors ,l ,(net:socket-fd u))))
                    (multiple-value-bind (n address port ancillary)
                        (net:receive-message b (list (make-octets 4)))
                      (declare (ignore address port))
                      (is (= 2 n))
                      (let ((fds (cdr (assoc :file-descriptors ancillary))))
                        (is (= 2 (length fds)))
                        (let ((l2 (net:make-socket-from-fd (first fds)))
                              (u2 (net:make-socket-from-fd (second fds))))
                          (is (typep l2 'net:passive-socket))
                          (is (typep l2 'net:inet6-socket))
                          (is (typep u2 'net:datagram-socket))
                          (is (= (net:socket-local-port l) (net:socket-local-port l2)))
                          (close l2)
                          (close u2)))))
               (close u)))
        (close l)))))

(test credentials-pass-with-passcred
  (with-socket-pair (a b :type :datagram :timeout 5)
    (setf (net:socket-option b :pass-credentials) t)
    (let ((uid (parse-integer (with-open-file (in "/proc/self/status")
                                (loop for line = (read-line in)
                                      when (eql 0 (search "Uid:" line))
                                        return (subseq line 4 (position #\Tab line :start 5))))
                              :junk-allowed t)))
      (net:send-message a (list (octets 1))
                        :ancillary `((:credentials ,(ext:getpid) ,uid ,uid)))
      (multiple-value-bind (n address port ancillary)
          (net:receive-message b (list (make-octets 1)))
        (declare (ignore address port))
        (is (= 1 n))
        (let ((cred (assoc :credentials ancillary)))
          (is (equal (list :credentials (ext:getpid) uid) (subseq cred 0 3))))))))

(test packet-info-ipv4-and-ipv6
  (dolist (family '(:ipv4 :ipv6))
    (let ((u (make-socket :address-family family :type :datagram :timeout 5)))
      (unwind-protect
           (progn
             (bind-address u (if (eq family :ipv6) "::1" "127.0.0.1"))
             (setf (net:socket-option u :packet-info) t)
             (net:send-to u (octets 5) (net:socket-local-address u)
                          :port (net:socket-local-port u))
             (multiple-value-bind (n address port ancillary)
                 (net:receive-message u (list (make-octets 4)))
               (is (= 1 n))
               (is (net:address= address (net:socket-local-address u)))
               (is (= port (net:socket-local-port u)))
               (let ((info (assoc :packet-info ancillary)))
                 (is (net:address= (second info) (net:socket-local-address u)))
                 (is (plusp (third info))))))
        (close u)))))

(test unix-stream-over-a-path-and-an-abstract-name
  (dolist (address (list (net:make-local-address
                          (format nil "/tmp/net-test-~d-stream.sock" (ext:getpid)))
                         (net:make-local-address (format nil "net-test-~d" (ext:getpid))
                                                 :abstract t)))
    (let ((l (make-socket :address-family :local :timeout 5))
          (c (make-socket :address-family :local :timeout 5)))
      (unwind-protect
           (progn
             (bind-address l address)
             (listen-on l)
             (is (typep l 'net:local-socket))
             (is (typep l 'net:passive-socket))
             (connect c address)
             (multiple-value-bind (s peer port) (accept-connection l)
               (unwind-protect
                    (progn
                      (is (typep s '(and net:local-socket net:stream-socket)))
                      (is (null peer))
                      (is (null port))
                      (is (eq (net:local-address-abstract-p address)
                              (net:local-address-abstract-p (net:socket-remote-address c))))
                      (is (string= (net:local-address-path address)
                                   (net:local-address-path (net:socket-remote-address c))))
                      (send c (octets 1 2 3))
                      (shutdown c :output)
                      (let ((buf (make-octets 8)))
                        (is (= 3 (receive s buf :wait-all t)))
                        (is (= 0 (receive s buf))))
                      (send s (octets 4))
                      (is (= 1 (receive c (make-octets 1)))))
                 (close s))))
        (close c)
        (close l)
        (unless (net:local-address-abstract-p address)
          (ignore-errors (delete-file (net:local-address-path address))))))))

(test address-in-use-for-a-bound-path
  (let ((path (format nil "/tmp/net-test-~d-inuse.sock" (ext:getpid))))
    (net:with-open-socket (a :address-family :local)
      (net:with-open-socket (b :address-family :local)
        (unwind-protect
             (progn (bind-address a path)
                    (signals net:address-in-use (bind-address b path)))
          (ignore-errors (delete-file path)))))))

(test bad-message-arguments
  (with-socket-pair (a b :type :datagram :timeout 1)
    (signals type-error (net:send-message a (octets 1 2)))          ; not a list
    (signals type-error (net:send-message a (list "text")))
    (signals type-error (net:send-message a (list (list (octets 1 2) 2 1))))
    (signals type-error (net:send-message a (list (octets 1)) :ancillary '((:file-descriptors -1))))
    (signals type-error (net:send-message a (list (octets 1)) :ancillary '((:colour 3))))
    (signals type-error (net:send-message a (list (octets 1)) :ancillary '((:credentials 1 2))))
    (signals type-error (net:send-message a (loop repeat 65 collect (octets 1))))
    (signals type-error (net:receive-message b (list (octets 1)) :control-size -1))
    (let ((closed (make-socket)))
      (close closed)
      (signals net:socket-closed
        (net:send-message a (list (octets 1)) :ancillary `((:file-descriptors ,closed)))))
    ;; none of them sent anything
    (setf (net:socket-blocking-p b) nil)
    (is (null (net:receive-message b (list (make-octets 4)))))))

(test make-socket-from-fd-refuses-non-sockets
  (signals net:not-a-socket (net:make-socket-from-fd 0))
  (signals net:bad-file-descriptor (net:make-socket-from-fd 100000))
  (signals type-error (net:make-socket-from-fd -1)))

(test send-message-to-an-address-and-peek
  (let ((a (make-socket :address-family :ipv6 :type :datagram :timeout 5))
        (b (make-socket :address-family :ipv6 :type :datagram :timeout 5)))
    (unwind-protect
         (progn
           (bind-address b "::1")
           (is (= 5 (net:send-message a (list (octets 1 2) (octets 3 4 5))
                                      :address "::1" :port (net:socket-local-port b))))
           (let ((x (make-octets 3)) (y (make-octets 3)))
             ;; peek, then read the same datagram for real
             (is (= 5 (net:receive-message b (list x y) :peek t)))
             (multiple-value-bind (n address port) (net:receive-message b (list x y))
               (is (= 5 n))
               (is (net:address= "::1" address))
               (is (= port (net:socket-local-port a))))
             (is (equalp (octets 1 2 3) x))
             (is (equalp (octets 4 5 0) y))))
      (close a)
      (close b))))

(test stream-peek-leaves-the-data
  (with-tcp-pair (c s :timeout 5)
    (send c (octets 1 2 3))
    (let ((buf (make-octets 3)))
      (sleep 0.05)
      (is (= 3 (receive s buf :peek t)))
      (fill buf 0)
      (is (= 3 (receive s buf :wait-all t)))
      (is (equalp (octets 1 2 3) buf)))))

(test seqpacket-listener-keeps-message-boundaries
  (let ((name (net:make-local-address (format nil "net-test-~d-seqpacket" (ext:getpid))
                                      :abstract t))
        (l (make-socket :address-family :local :type :seqpacket :timeout 5))
        (c (make-socket :address-family :local :type :seqpacket :timeout 5)))
    (unwind-protect
         (progn
           (bind-address l name)
           (listen-on l)
           (is (typep l 'net:passive-socket))
           (connect c name)
           (let ((s (accept-connection l)))
             (unwind-protect
                  (let ((buf (make-octets 8)))
                    (is (eq :seqpacket (net:socket-type s)))
                    (is (typep s 'net:stream-socket))
                    (send c (octets 1 2 3))
                    (send c (octets 4))
                    (is (= 3 (receive s buf)))
                    (is (= 1 (receive s buf)))
                    ;; a message longer than the buffer is cut, and says so
                    (send c (octets 1 2 3 4 5 6))
                    (multiple-value-bind (n address port ancillary flags)
                        (net:receive-message s (list (make-octets 4)))
                      (declare (ignore address port ancillary))
                      (is (= 4 n))
                      (is (member :truncated flags))))
               (close s))))
      (close c)
      (close l))))

(test large-control-sizes-are-accepted
  ;; more than the buffer holds is taken as all of it
  (with-socket-pair (a b :type :datagram :timeout 5)
    (dolist (size '(10240 100000))
      (let ((buf (make-octets 1)))
        (net:send-message a (list (octets 9)) :ancillary `((:file-descriptors ,(net:socket-fd a))))
        (multiple-value-bind (count address port ancillary flags)
            (net:receive-message b (list buf) :control-size size)
          (declare (ignore address port))
          (is (= 1 count))
          (is (null flags))
          (let ((fds (cdr (assoc :file-descriptors ancillary))))
            (is (= 1 (length fds)))
            (mapc (lambda (fd) (close (net:make-socket-from-fd fd))) fds)))))))

(test passed-socket-held-against-a-racing-close
  "A socket in :FILE-DESCRIPTORS is held while sendmsg(2) reads its fd: a
close from another thread while the send waits makes it signal
SOCKET-CLOSED naming that socket, never pass whatever reused the fd number."
  (with-socket-pair (a b :timeout 5)
    (let ((passed (make-socket :type :datagram))
          (chunk (make-octets 4096)))
      ;; Fill A's send buffer, so that the send below waits for room.
      (setf (net:socket-blocking-p a) nil)
      (loop repeat 10000 while (net:send a chunk))
      (setf (net:socket-blocking-p a) t)
      (let ((sender (run-thread "fd sender"
                                (lambda ()
                                  (net:send-message a (list (octets 42))
                                                    :ancillary `((:file-descriptors ,passed)))))))
        (sleep 0.3)                     ; the sender is waiting for room now
        (let ((fd (net:socket-fd passed)))
          (close passed)
          ;; Another socket, likely on the same fd number.
          (net:with-open-socket (reuser :type :datagram)
            (is (integerp fd))
            (is (net:socket-open-p reuser))
            ;; Make room: the sender's next attempt finds PASSED closed.
            (setf (net:socket-blocking-p b) nil)
            (let ((in (make-octets 65536)))
              (loop repeat 10000 while (net:receive b in)))
            (let ((result (funcall sender)))
              (is (typep result 'net:socket-closed) "got ~s" result)
              (when (typep result 'net:socket-closed)
                (is (eq passed (net:socket-error-socket result)))))
            ;; and no descriptor went out
            (multiple-value-bind (n address port ancillary)
                (net:receive-message b (list (make-octets 65536)))
              (declare (ignore n address port))
              (is (null ancillary)))))))))
