;;;; options-tests.lsp -- tests of options.lsp: every option set and read back, before and after connecting.

(in-package "NET-TESTS")

(def-suite :options :in :net)
(in-suite :options)

(defun opt (socket name) (net:socket-option socket name))
(defun (setf opt) (value socket name) (setf (net:socket-option socket name) value))

(defun am-root-p ()
  (with-open-file (in "/proc/self/status")
    (loop for line = (read-line in nil)
          while line
          when (eql 0 (search "Uid:" line))
            return (eql 0 (parse-integer line :start 4 :junk-allowed t)))))

(defparameter *socket-kinds*
  '((:ipv4 :stream) (:ipv6 :stream) (:ipv4 :datagram) (:ipv6 :datagram)
    (:local :stream) (:local :datagram) (:local :seqpacket)))

(defparameter *booleans-not-reported-back*
  '(:quick-ack)
  "TCP_QUICKACK reads back the connection's current quick-ack mode, which the
kernel changes by itself, not what was set.")

(defparameter *privileged-options* '(:transparent :mark)
  "Need CAP_NET_ADMIN.")

(defun applicable-info (socket name)
  (handler-case (net::%option-info socket name)
    (net:socket-option-error () nil)))

(test every-boolean-option-round-trips
  (dolist (kind *socket-kinds*)
    (net:with-open-socket (s :address-family (first kind) :type (second kind))
      (dolist (name net::*socket-option-order*)
        (let ((info (applicable-info s name)))
          (when (and info (eq (net::option-info-codec info) :boolean)
                     (net::option-info-writable info)
                     (not (member name *booleans-not-reported-back*))
                     (or (am-root-p) (not (member name *privileged-options*))))
            (setf (opt s name) t)
            (is (eq t (opt s name)) "~a ~a ~a set to T reads back ~s" (first kind) (second kind)
                name (opt s name))
            (setf (opt s name) nil)
            (is (eq nil (opt s name)) "~a ~a ~a set to NIL reads back ~s" (first kind)
                (second kind) name (opt s name))))))))

(defparameter *value-round-trips*
  ;; (family type name value expected-read-back)
  '((:ipv4 :stream :linger 3 3)
    (:ipv4 :stream :linger 2.5 3)           ; whole seconds: rounded up
    (:ipv4 :stream :linger nil nil)
    (:ipv4 :stream :receive-low-water 10 10)
    (:ipv4 :stream :send-timeout 0.5 1/2)
    (:ipv4 :stream :send-timeout nil nil)
    (:ipv6 :datagram :receive-timeout 3/2 3/2)
    (:ipv4 :stream :priority 3 3)
    (:ipv4 :stream :keep-idle 30 30)
    (:ipv4 :stream :keep-interval 5 5)
    (:ipv6 :stream :keep-count 4 4)
    (:ipv4 :stream :user-timeout 2.5 5/2)
    (:ipv4 :stream :user-timeout 0 0)
    (:ipv4 :stream :max-segment 1000 1000)
    (:ipv4 :stream :congestion "reno" "reno")
    (:ipv4 :stream :syn-count 3 3)
    (:ipv4 :stream :fin-timeout 20 20)
    (:ipv4 :stream :not-sent-low-water 16384 16384)
    (:ipv4 :stream :fast-open 5 5)
    (:ipv4 :stream :ttl 33 33)
    (:ipv4 :datagram :tos 16 16)
    (:ipv4 :stream :mtu-discover :do :do)
    (:ipv6 :stream :mtu-discover :dont :dont)
    (:ipv6 :stream :unicast-hops 17 17)
    (:ipv6 :datagram :traffic-class 32 32)
    (:ipv4 :datagram :multicast-ttl 5 5)
    (:ipv6 :datagram :multicast-hops 5 5)
    (:ipv4 :datagram :udp-segment 1000 1000)
    (:ipv6 :stream :v6-only t t)
    (:ipv4 :stream :window-clamp 20000 20000)
    (:ipv4 :stream :defer-accept 0 0)
    (:ipv6 :datagram :incoming-cpu 0 0)
    (:ipv4 :stream :tos 8 8)))

(test values-round-trip
  (loop for (family type name value expected) in *value-round-trips*
        do (net:with-open-socket (s :address-family family :type type)
             (setf (opt s name) value)
             (is (equal expected (opt s name)) "~a ~a ~a set to ~s reads back ~s, not ~s"
                 family type name value (opt s name) expected))))

(test timeouts-are-rounded-to-clock-ticks
  ;; The kernel keeps SO_RCVTIMEO and SO_SNDTIMEO in clock ticks: a value
  ;; reads back rounded up to a tick (1/4 s reads 63/250 s where HZ is 250).
  (net:with-open-socket (s :send-timeout 0.25 :receive-timeout 1/1000000)
    (is (<= 1/4 (opt s :send-timeout) (+ 1/4 1/100)))
    (is (< 0 (opt s :receive-timeout) 1/50) "never rounded down to 0, which means no timeout")))

(test defer-accept-is-rounded-to-retransmissions
  ;; TCP_DEFER_ACCEPT is kept as a count of SYN-ACK retransmissions: it
  ;; reads back rounded up to the end of one (5 s reads back as 7 s).
  (net:with-open-socket (s :defer-accept 5)
    (is (<= 5 (opt s :defer-accept) 15))))

(test privileged-values-round-trip
  (if (not (am-root-p))
      (skip "SO_MARK and SO_BINDTODEVICE need root; not run")
      (net:with-open-socket (s)
        (setf (opt s :mark) 42)
        (is (= 42 (opt s :mark)))
        (setf (opt s :bind-to-device) "lo")
        (is (equal "lo" (opt s :bind-to-device)))
        (setf (opt s :bind-to-device) nil)
        (is (eq nil (opt s :bind-to-device)))
        (setf (opt s :busy-poll) 50)
        (is (= 50 (opt s :busy-poll))))
      (net:with-open-socket (r :type :raw :protocol 17)
        (is (eq nil (opt r :header-included)))
        (setf (opt r :header-included) t)
        (is (eq t (opt r :header-included)))
        (is (eq :raw (opt r :socket-type))))))

(test buffer-sizes-are-doubled
  ;; Linux doubles SO_SNDBUF and SO_RCVBUF for its bookkeeping and reports
  ;; the doubled value (socket(7)); the manual says so.
  (net:with-open-socket (s :type :datagram :send-buffer 65536 :receive-buffer 65536)
    (is (= 131072 (opt s :send-buffer)))
    (is (= 131072 (opt s :receive-buffer)))
    (setf (opt s :receive-buffer) 100000)
    (is (= 200000 (opt s :receive-buffer)))))

(test read-only-options
  (net:with-open-socket (s)
    (is (eq :stream (opt s :socket-type)))
    (is (eq :ipv4 (opt s :socket-family)))
    (is (= 6 (opt s :socket-protocol)))
    (is (eq nil (opt s :accepting-connections)))
    (is (eq nil (opt s :error)))
    (is (= 1 (opt s :send-low-water)))
    (is (eq :closed (getf (opt s :tcp-info) :state))))
  (net:with-open-socket (s :address-family :ipv6 :type :datagram)
    (is (eq :datagram (opt s :socket-type)))
    (is (eq :ipv6 (opt s :socket-family)))
    (is (= 17 (opt s :socket-protocol))))
  (net:with-open-socket (s :address-family :local :type :datagram)
    (is (eq :local (opt s :socket-family)))))

(test options-before-and-after-connect-and-listen
  (let ((l (make-socket :reuse-address t)))
    (unwind-protect
         (progn
           (is (eq t (opt l :reuse-address)))
           (bind-address l "127.0.0.1")
           (listen-on l :backlog 4)
           (is (eq t (opt l :accepting-connections)))
           (is (eq t (opt l :reuse-address)))
           (setf (opt l :defer-accept) 0)
           (is (= 0 (opt l :defer-accept)))
           (let ((c (make-socket :nodelay t :keep-alive t)))
             (unwind-protect
                  (progn
                    (signals net:not-connected (opt c :mtu))
                    (is (not (member :mtu (net:list-socket-options c))))
                    (connect c "127.0.0.1" :port (net:socket-local-port l) :timeout 5)
                    (is (eq t (opt c :nodelay)) "set before connect, read after")
                    (is (eq t (opt c :keep-alive)))
                    (is (integerp (opt c :mtu)))
                    (is (member :mtu (net:list-socket-options c)))
                    (let ((info (opt c :tcp-info)))
                      (is (eq :established (getf info :state)))
                      (is (plusp (getf info :send-mss))))
                    (setf (opt c :nodelay) nil (opt c :cork) t)
                    (is (eq nil (opt c :nodelay)) "set after connect")
                    (is (eq t (opt c :cork)))
                    (let ((a (accept-connection l :timeout 5)))
                      (unwind-protect
                           (progn
                             (setf (opt a :keep-idle) 77 (opt a :linger) 1)
                             (is (= 77 (opt a :keep-idle)) "set on an accepted socket")
                             (is (= 1 (opt a :linger)))
                             (is (eq nil (opt a :accepting-connections))))
                        (close a))))
               (close c))))
      (close l))))

(test bad-values-are-type-errors
  (net:with-open-socket (s)
    (loop for (name value) in '((:nodelay 1) (:nodelay "yes") (:ttl 0) (:ttl 256) (:ttl 1.5)
                                (:keep-idle 0) (:receive-buffer -1) (:linger -1) (:linger "x")
                                (:send-timeout -0.5) (:mtu-discover :sometimes)
                                (:congestion 7) (:user-timeout nil) (:max-segment 70000))
          do (signals type-error (setf (opt s name) value))))
  (net:with-open-socket (s :address-family :ipv6 :type :datagram)
    (signals type-error (setf (opt s :multicast-interface) '(1)))
    (signals type-error (setf (opt s :unicast-hops) 256))))

(test misused-options-are-socket-option-errors
  (net:with-open-socket (tcp)
    (signals net:unknown-socket-option (opt tcp :no-such-option))
    (signals net:unknown-socket-option (setf (opt tcp :no-such-option) t))
    (signals net:socket-option-not-applicable (opt tcp :v6-only))
    (signals net:socket-option-not-applicable (opt tcp :broadcast))
    (signals net:socket-option-not-applicable (opt tcp :pass-credentials))
    (signals net:socket-option-not-applicable (setf (opt tcp :socket-type) :datagram))
    (signals net:socket-option-not-applicable (setf (opt tcp :error) nil))
    (handler-case (opt tcp :v6-only)
      (net:socket-option-error (e)
        (is (eq :v6-only (net:socket-option-error-option e)))
        (is (eq tcp (net:socket-option-error-socket e)))
        (is (search "IPV6" (princ-to-string e))))))
  (net:with-open-socket (udp :type :datagram)
    (signals net:socket-option-not-applicable (opt udp :nodelay))
    (is (eq nil (opt udp :cork)) "UDP_CORK on a datagram socket"))
  (net:with-open-socket (u :address-family :ipv6 :type :datagram)
    (signals net:socket-option-not-applicable (opt u :broadcast))
    (signals net:unknown-socket-option (opt u :multicast-hops-v4))))

(test ipv4-names-work-on-ipv6-sockets
  (net:with-open-socket (u :address-family :ipv6 :type :datagram :ttl 21 :tos 8 :multicast-ttl 3)
    (is (= 21 (opt u :unicast-hops)))
    (is (= 21 (opt u :ttl)))
    (is (= 8 (opt u :traffic-class)))
    (is (= 3 (opt u :multicast-hops)))
    (let ((plist (net:list-socket-options u)))
      (is (member :unicast-hops plist))
      (is (not (member :ttl plist)) "another name is not listed twice"))))

(test checks-come-before-any-system-call
  ;; On a closed socket any system call would signal SOCKET-CLOSED; the
  ;; checks signal first.
  (let ((s (make-socket)))
    (close s)
    (signals type-error (setf (opt s :nodelay) 1))
    (signals net:unknown-socket-option (opt s :no-such-option))
    (signals net:socket-option-not-applicable (opt s :v6-only))
    (signals net:socket-closed (opt s :nodelay))
    (signals net:socket-closed (setf (opt s :nodelay) t))))

(test make-socket-takes-options
  (net:with-open-socket (s :type :datagram :broadcast t :ttl 9 :receive-timeout 2
                           :reuse-address t)
    (is (eq t (opt s :broadcast)))
    (is (= 9 (opt s :ttl)))
    (is (= 2 (opt s :receive-timeout)))
    (is (eq t (opt s :reuse-address))))
  ;; a bad option: a clear condition, and no descriptor left open
  (let ((before (open-fd-count)))
    (signals type-error (make-socket :nodelay 1))
    (signals net:socket-option-not-applicable (make-socket :type :datagram :nodelay t))
    (signals net:unknown-socket-option (make-socket :no-such-option 1))
    (signals net:socket-option-not-applicable (make-socket :socket-type :datagram))
    (is (= before (open-fd-count)))))

(test list-socket-options-shows-applicable-options
  (net:with-open-socket (s :nodelay t)
    (let ((plist (net:list-socket-options s)))
      (is (evenp (length plist)))
      (is (eq t (getf plist :nodelay)))
      (is (eq :stream (getf plist :socket-type)))
      (is (not (member :broadcast plist)))
      (is (not (member :v6-only plist)))
      (loop for (name value) on plist by #'cddr
            unless (member name '(:tcp-info :error))
              do (is (equal value (opt s name)) "~a: ~s in the list, ~s read" name value
                     (opt s name)))))
  (net:with-open-socket (s :address-family :ipv6 :type :datagram)
    (let ((plist (net:list-socket-options s)))
      (is (member :v6-only plist))
      (is (member :multicast-hops plist))
      (is (not (member :nodelay plist))))))

(test define-socket-option-from-lisp
  (let ((idle (net::%c "TCP_KEEPIDLE"))
        (type (net::%c "SO_TYPE")))
    (unwind-protect
         (progn
           (is (eq :my-idle (net:define-socket-option :my-idle :level :tcp :number idle :type :int
                              :address-families '(:ipv4 :ipv6) :socket-types :stream)))
           (net:define-socket-option :my-type :level :socket :number type :type :octets :size 4
             :writable nil)
           (net:define-socket-option :my-kind :level :socket :number type :type :keyword
             :values (list (cons :a-stream (net::%c "SOCK_STREAM"))) :writable nil)
           (net:with-open-socket (s)
             (setf (opt s :my-idle) 123)
             (is (= 123 (opt s :keep-idle)) "the user's option is the real one")
             (is (= 123 (opt s :my-idle)))
             (is (= 123 (getf (net:list-socket-options s) :my-idle)))
             (signals type-error (setf (opt s :my-idle) "x"))
             (is (equalp (opt s :my-type) (let ((v (make-octets 4)))
                                              (net:raw-socket-option s :socket type v)
                                              v)))
             (is (= 4 (length (opt s :my-type))))
             (is (eq :a-stream (opt s :my-kind))))
           (net:with-open-socket (u :type :datagram)
             (signals net:socket-option-not-applicable (opt u :my-idle))
             (is (eql (net::%c "SOCK_DGRAM") (opt u :my-kind)) "an unnamed value reads as its number")))
      (net:remove-socket-option :my-idle)
      (net:remove-socket-option :my-type)
      (net:remove-socket-option :my-kind))
    (net:with-open-socket (s)
      (signals net:unknown-socket-option (opt s :my-idle)))
    (signals type-error (net:define-socket-option :bad :level :socket :number 1 :type :float))
    (signals type-error (net:define-socket-option :bad :level :socket :number 1 :type :int
                          :address-families '(:appletalk)))))

(test raw-socket-option-escape-hatch
  (net:with-open-socket (s)
    (let ((v (make-octets 4 255))
          (reuse (net::%c "SO_REUSEADDR")))
      (is (= 4 (net:raw-socket-option s :socket reuse v)))
      (is (every #'zerop v))
      (setf (net:raw-socket-option s :socket reuse) (octets 1 1 1 1))
      (is (eq t (opt s :reuse-address)))
      (setf (net:raw-socket-option s (net::%c "SOL_SOCKET") reuse) (octets 0 0 0 0))
      (is (eq nil (opt s :reuse-address)))
      (let ((big (make-octets 16 255)))
        (is (= 4 (net:raw-socket-option s :socket reuse big :start 4 :end 12)))
        (is (every (lambda (x) (= x 255)) (subseq big 0 4)))
        (is (every #'zerop (subseq big 4 8))))
      (signals type-error (net:raw-socket-option s :socket reuse (make-array 4)))
      (signals type-error (net:raw-socket-option s :socket reuse v :end 9))
      (signals type-error (net:raw-socket-option s :nowhere reuse v))
      (signals net:option-not-supported (net:raw-socket-option s :socket 9999 v)))))

(test peer-credentials-name-the-peer-process
  (multiple-value-bind (a b) (net:make-socket-pair)
    (unwind-protect
         (let ((cred (net:socket-option a :peer-credentials)))
           (is (eql (ext:getpid) (getf cred :pid)))
           (is (eql (ext:getuid) (getf cred :uid)))
           (is (integerp (getf cred :gid)))
           (is (equal cred (getf (net:list-socket-options b) :peer-credentials))))
      (close a)
      (close b)))
  ;; read-only, and only for Unix-domain sockets
  (multiple-value-bind (a b) (net:make-socket-pair)
    (unwind-protect
         (signals net:socket-option-not-applicable
           (setf (net:socket-option a :peer-credentials) '(:pid 1)))
      (close a)
      (close b)))
  (net:with-open-socket (s)
    (signals net:socket-option-not-applicable (net:socket-option s :peer-credentials))))

(defun listener-on (host port &rest options)
  "A listening TCP socket on HOST and PORT with OPTIONS (make-socket's)."
  (let ((s (apply #'make-socket options)))
    (handler-bind ((error (lambda (c) (declare (ignore c)) (close s))))
      (bind-address s host :port port)
      (listen-on s :backlog 64))))

(test reuse-address-never-shares-a-listening-port
  "The caveat of the Security chapter: on Linux SO_REUSEADDR lets a server
rebind past TIME_WAIT, but never lets a second socket listen on a port in
use, specific address or wildcard."
  (let* ((first (listener-on "127.0.0.1" 0 :reuse-address t))
         (port (net:socket-local-port first)))
    (unwind-protect
         (progn
           (signals net:address-in-use (listener-on "127.0.0.1" port :reuse-address t))
           (signals net:address-in-use (listener-on "0.0.0.0" port :reuse-address t)))
      (close first)))
  (let* ((wild (listener-on "0.0.0.0" 0 :reuse-address t))
         (port (net:socket-local-port wild)))
    (unwind-protect
         (signals net:address-in-use (listener-on "127.0.0.1" port :reuse-address t))
      (close wild))))

(test reuse-port-shares-connections-between-listeners
  "The caveat of the Security chapter: with SO_REUSEPORT set on both, a
second socket of the same user listens on the same port and receives a
share of the connections; without it on both, the bind fails."
  (let* ((a (listener-on "127.0.0.1" 0 :reuse-port t :blocking nil))
         (port (net:socket-local-port a)))
    (unwind-protect
         (progn
           (signals net:address-in-use (listener-on "127.0.0.1" port))
           (let ((b (listener-on "127.0.0.1" port :reuse-port t :blocking nil))
                 (clients '()) (counts (list 0 0)))
             (unwind-protect
                  (progn
                    ;; 40 connections: the kernel hashes each to one of the
                    ;; two; all 40 to one happens with probability 2^-39.
                    (dotimes (i 40)
                      (push (net:connect-to "127.0.0.1" port :timeout 5) clients))
                    (loop repeat 500
                          until (= 40 (+ (first counts) (second counts)))
                          do (loop for l in (list a b) for i from 0
                                   do (let ((s (accept-connection l)))
                                        (when s
                                          (incf (nth i counts))
                                          (close s))))
                             (sleep 0.01))
                    (is (= 40 (+ (first counts) (second counts))))
                    (is (plusp (first counts)) "~s" counts)
                    (is (plusp (second counts)) "~s" counts))
               (mapc #'close clients)
               (close b))))
      (close a))))

(test tcp-idle-ms-of-a-connection
  ;; The event-loop server's idle check: TCP_INFO's idle milliseconds
  ;; without the list of TCP-INFO; NIL, not an error, where there are none.
  (with-tcp-pair (c s :timeout 5)
    (let ((out (make-octets 1 7)) (in (make-octets 1)))
      (send c out)
      (receive s in :wait-all t)
      (let ((ms (net-sys:tcp-idle-ms (net::socket-handle s))))
        (is (typep ms 'fixnum))
        (is (<= 0 ms 1000)))
      (sleep 0.15)
      (is (<= 100 (net-sys:tcp-idle-ms (net::socket-handle s))) "nothing either way since")
      (let ((before (si:gc-stats t)))
        (dotimes (i 1000) (net-sys:tcp-idle-ms (net::socket-handle s)))
        (is (> 1000 (- (si:gc-stats t) before)) "conses nothing"))
      (close s)
      (is (null (net-sys:tcp-idle-ms (net::socket-handle s))) "closed: NIL"))
    (with-socket-pair (a b)
      (is (null (net-sys:tcp-idle-ms (net::socket-handle a))) "not TCP: NIL"))))
