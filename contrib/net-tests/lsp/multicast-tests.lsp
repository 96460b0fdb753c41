;;;; multicast-tests.lsp -- tests of multicast.lsp: API checks here, real traffic in network namespaces.
;;;
;;; Delivery is tested for real inside network namespaces this file creates
;;; and deletes (as root; skipped with a message otherwise), so the host's
;;; interfaces and routes are never touched: IPv4 on a namespace's loopback
;;; interface with its MULTICAST flag on; IPv6 on one host through the
;;; kernel's multicast loopback on a veth interface (Linux does not deliver
;;; IPv6 multicast sent through lo); and both families across a veth pair
;;; between two namespaces.  The sockets live in peers, ECL processes
;;; started in the namespaces running multicast-peer.lsp.

(in-package "NET-TESTS")

(def-suite :multicast :in :net)
(in-suite :multicast)

;;; Checks without traffic

(test join-and-leave-on-loopback
  (net:with-open-socket (s :type :datagram)
    (is (eq t (net:join-multicast-group s "239.7.7.7" :interface "127.0.0.1")))
    (signals net:address-in-use (net:join-multicast-group s "239.7.7.7" :interface "127.0.0.1"))
    (is (eq t (net:leave-multicast-group s "239.7.7.7" :interface "127.0.0.1")))
    (signals net:address-not-available
      (net:leave-multicast-group s "239.7.7.7" :interface "127.0.0.1"))
    (is (eq t (net:join-multicast-group s "232.7.7.7" :interface "lo" :source "127.0.0.5")))
    (is (eq t (net:leave-multicast-group s "232.7.7.7" :interface "lo" :source "127.0.0.5"))))
  (net:with-open-socket (s :type :datagram :address-family :ipv6)
    (let ((lo (net:interface-index "lo")))
      (is (eq t (net:join-multicast-group s "ff15::77" :interface lo)))
      (is (eq t (net:leave-multicast-group s "ff15::77" :interface "lo")))
      (is (eq t (net:join-multicast-group s (format nil "ff15::77%~d" lo))))
      (is (eq t (net:leave-multicast-group s "ff15::77" :interface lo)))
      (is (eq t (net:join-multicast-group s "ff3e::77" :interface lo :source "fd00::5")))
      (is (eq t (net:leave-multicast-group s "ff3e::77" :interface lo :source "fd00::5"))))))

(test multicast-bad-arguments
  (net:with-open-socket (s :type :datagram)
    (signals net:invalid-address (net:join-multicast-group s "10.0.0.1"))
    (signals net:invalid-address (net:join-multicast-group s "ff15::1"))
    (signals net:invalid-address (net:join-multicast-group s "239.1.1.1" :source "239.1.1.2"))
    (signals net:invalid-address (net:join-multicast-group s "239.1.1.1" :interface "::1"))
    (signals net:unknown-interface (net:join-multicast-group s "239.1.1.1" :interface "nosuch0"))
    (signals type-error (net:join-multicast-group s "239.1.1.1" :interface -1))
    (signals type-error (net:join-multicast-group s "239.1.1.1" :interface 'lo)))
  (net:with-open-socket (s :type :datagram :address-family :ipv6)
    (signals net:invalid-address (net:join-multicast-group s "ff15::1" :interface "127.0.0.1")))
  (net:with-open-socket (s)
    (signals net:socket-option-not-applicable (net:join-multicast-group s "239.1.1.1")))
  ;; checked before any system call: a closed socket is never reached
  (let ((s (make-socket :type :datagram)))
    (close s)
    (signals net:invalid-address (net:join-multicast-group s "10.0.0.1"))
    (signals net:socket-closed (net:join-multicast-group s "239.1.1.1"))))

(test multicast-send-options
  (net:with-open-socket (s :type :datagram :multicast-ttl 7 :multicast-loop nil
                           :multicast-interface "127.0.0.1")
    (is (= 7 (net:socket-option s :multicast-ttl)))
    (is (eq nil (net:socket-option s :multicast-loop)))
    (is (net:address= "127.0.0.1" (net:socket-option s :multicast-interface)))
    (setf (net:socket-option s :multicast-interface) nil)
    (is (net:address= "0.0.0.0" (net:socket-option s :multicast-interface)))
    (setf (net:socket-option s :multicast-interface) "lo") ; by name: the address reads back 0.0.0.0
    (signals type-error (setf (net:socket-option s :multicast-ttl) 256))
    (signals net:socket-option-not-applicable (setf (net:socket-option s :multicast-hops) 3)))
  (net:with-open-socket (s :type :datagram :address-family :ipv6 :multicast-hops 9
                           :multicast-interface "lo")
    (is (= 9 (net:socket-option s :multicast-hops)))
    (is (= (net:interface-index "lo") (net:socket-option s :multicast-interface)))
    (setf (net:socket-option s :multicast-loop) nil)
    (is (eq nil (net:socket-option s :multicast-loop)))
    (setf (net:socket-option s :multicast-interface) 0)
    (is (= 0 (net:socket-option s :multicast-interface)))))

;;; Namespaces and peers

(defun root-p ()
  (with-open-file (in "/proc/self/status")
    (loop for line = (read-line in nil)
          while line
          when (eql 0 (search "Uid:" line))
            return (eql 0 (parse-integer line :start 4 :junk-allowed t)))))

(defun run-command (program &rest args)
  "Run PROGRAM with ARGS to completion; its exit code.  It inherits our
standard streams: ECL opens /dev/null for a NIL stream and leaves that
descriptor to the collector, which would upset the descriptor counts of
other tests."
  (nth-value 1 (ext:run-program program args :input t :output t :error t :wait t)))

(defun ip (&rest args)
  (let ((code (apply #'run-command "ip" args)))
    (unless (eql code 0)
      (error "ip ~{~a~^ ~} failed with exit code ~a" args code))))

(defun namespace-name (tag)
  (format nil "nettest-~d-~a" (ext:getpid) tag))

(defmacro with-namespaces ((&rest vars) &body body)
  "Bind each of VARS to the name of a fresh network namespace (lo up), run
BODY, and delete the namespaces however BODY exits."
  `(let ,(loop for v in vars collect `(,v (namespace-name ,(string-downcase v))))
     (unwind-protect
          (progn
            ,@(loop for v in vars
                    collect `(progn (run-command "ip" "netns" "del" ,v) ; a leftover of a killed run
                                    (ip "netns" "add" ,v)
                                    (ip "-n" ,v "link" "set" "lo" "up")))
            ,@body)
       ,@(loop for v in vars collect `(run-command "ip" "netns" "del" ,v)))))

(defstruct peer stream process)

(defun start-peer (namespace)
  "An ECL running multicast-peer.lsp in NAMESPACE, killed after 60 s at most."
  (multiple-value-bind (stream code process)
      (ext:run-program "timeout"
                       (list "60" "ip" "netns" "exec" namespace "env"
                             (format nil "NET_BUILDDIR=~a" (ext:getenv "NET_BUILDDIR"))
                             (or (ext:getenv "ECL") "ecl") "--norc" "--load"
                             (namestring (merge-pathnames "multicast-peer.lsp"
                                                          (ext:getenv "NET_TESTDIR"))))
                       :input :stream :output :stream :error t :wait nil)
    (declare (ignore code))
    (make-peer :stream stream :process process)))

(defun stop-peer (peer)
  ;; Closing a two-way stream leaves its two fd streams open until the
  ;; collector finalizes them, at a random later time: close them now.
  (let ((s (peer-stream peer)))
    (ignore-errors (close (two-way-stream-output-stream s)))
    (ignore-errors (close (two-way-stream-input-stream s)))
    (ignore-errors (close s)))
  (ignore-errors (ext:terminate-process (peer-process peer)))
  (ignore-errors (ext:external-process-wait (peer-process peer) t)))

(defmacro with-peers ((&rest bindings) &body body)
  "Bind each (VAR NAMESPACE) to a peer running in NAMESPACE; stop them after."
  `(let ,(loop for (v) in bindings collect `(,v nil))
     (unwind-protect
          (progn
            ,@(loop for (v ns) in bindings collect `(setf ,v (start-peer ,ns)))
            ,@body)
       ,@(loop for (v) in bindings collect `(when ,v (stop-peer ,v))))))

(defun ask (peer control &rest args)
  "Have PEER evaluate the form printed by CONTROL and ARGS; its first value.
A peer error, or a peer that died, is an error here."
  (let ((s (peer-stream peer))
        (text (apply #'format nil control args)))
    (write-line text s)
    (finish-output s)
    (loop for line = (read-line s nil nil)
          do (cond ((null line) (error "peer died answering ~a" text))
                   ((and (plusp (length line)) (char= (char line 0) #\())
                    (let ((reply (let ((*package* (find-package "NET-TESTS")))
                                   (read-from-string line))))
                      (if (eq (first reply) :ok)
                          (return (second reply))
                          (error "peer: ~a gave ~s" text reply))))))))

(defvar *namespaces-usable* :unknown)

(defun namespaces-usable-p ()
  "True if this process is root and can create a network namespace."
  (when (eq *namespaces-usable* :unknown)
    (setf *namespaces-usable*
          (and (root-p)
               (let ((name (namespace-name "probe")))
                 (prog1 (eql 0 (ignore-errors (run-command "ip" "netns" "add" name)))
                   (ignore-errors (run-command "ip" "netns" "del" name)))))))
  *namespaces-usable*)

(defmacro as-root (&body body)
  `(if (namespaces-usable-p)
       (progn ,@body)
       (skip "needs root and network namespaces (ip netns add) to create its own network; not run")))

;;; IPv4 on a namespace's loopback interface

(test ipv4-loopback-one-sender-several-receivers
  (as-root
    (with-namespaces (ns)
      (ip "-n" ns "link" "set" "lo" "multicast" "on")
      (with-peers ((p ns))
        (let* ((lo (ask p "(net:interface-index \"lo\")"))
               (r1 (ask p "(receiver :ipv4 5001 :groups '(\"239.1.2.3\") :interface \"127.0.0.1\")"))
               (r2 (ask p "(receiver :ipv4 5001 :groups '(\"239.1.2.3\") :interface \"lo\")"))
               (r3 (ask p "(receiver :ipv4 5001 :groups '(\"239.1.2.3\") :interface ~d)" lo))
               (other (ask p "(receiver :ipv4 5001 :groups '(\"239.1.2.4\") :interface \"lo\")"))
               (s (ask p "(sender :ipv4 \"239.1.2.3\" 5001 :interface \"lo\" :from \"127.0.0.1\")")))
          (is (= 3 (ask p "(say ~d \"one\")" s)))
          (dolist (r (list r1 r2 r3))
            (is (equal "one" (ask p "(hear ~d)" r))))
          (is (equal '() (ask p "(hear-all ~d)" r1)) "exactly one copy")
          (is (eq :timeout (ask p "(hear ~d 0.3)" other)) "another group hears nothing")
          ;; leaving stops delivery to that socket only
          (is (eq t (ask p "(leave ~d \"239.1.2.3\" :interface \"lo\")" r2)))
          (ask p "(say ~d \"two\")" s)
          (is (equal "two" (ask p "(hear ~d)" r1)))
          (is (equal "two" (ask p "(hear ~d)" r3)))
          (is (eq :timeout (ask p "(hear ~d 0.5)" r2)))
          ;; rejoining restores it
          (ask p "(join ~d \"239.1.2.3\" :interface ~d)" r2 lo)
          (ask p "(say ~d \"three\")" s)
          (is (equal "three" (ask p "(hear ~d)" r2))))))))

(test ipv4-loopback-source-specific
  (as-root
    (with-namespaces (ns)
      (ip "-n" ns "link" "set" "lo" "multicast" "on")
      (with-peers ((p ns))
        (let ((r1 (ask p "(receiver :ipv4 5002 :groups '(\"232.1.1.1\") :interface \"lo\" :source \"127.0.0.1\")"))
              (r2 (ask p "(receiver :ipv4 5002 :groups '(\"232.1.1.1\") :interface \"127.0.0.1\" :source \"127.0.0.2\")"))
              (s1 (ask p "(sender :ipv4 \"232.1.1.1\" 5002 :interface \"lo\" :from \"127.0.0.1\")"))
              (s2 (ask p "(sender :ipv4 \"232.1.1.1\" 5002 :interface \"lo\" :from \"127.0.0.2\")")))
          (ask p "(say ~d \"from-1\")" s1)
          (is (equal "from-1" (ask p "(hear ~d)" r1)))
          (is (eq :timeout (ask p "(hear ~d 0.5)" r2)) "source 127.0.0.2 only")
          (ask p "(say ~d \"from-2\")" s2)
          (is (equal "from-2" (ask p "(hear ~d)" r2)))
          (is (eq :timeout (ask p "(hear ~d 0.5)" r1)) "source 127.0.0.1 only")
          ;; a second source joined on the same socket
          (ask p "(join ~d \"232.1.1.1\" :interface \"lo\" :source \"127.0.0.2\")" r1)
          (ask p "(say ~d \"again-2\")" s2)
          (is (equal "again-2" (ask p "(hear ~d)" r1)))
          ;; leaving a source stops it
          (ask p "(leave ~d \"232.1.1.1\" :interface \"lo\" :source \"127.0.0.1\")" r1)
          (ask p "(say ~d \"gone\")" s1)
          (is (eq :timeout (ask p "(hear ~d 0.5)" r1))))))))

;;; IPv6 on one host: the multicast loopback of a veth interface

(test ipv6-one-host-several-receivers-and-loop
  (as-root
    (with-namespaces (ns)
      (ip "-n" ns "link" "add" "mca" "type" "veth" "peer" "name" "mcb")
      (ip "-n" ns "link" "set" "mca" "up")
      (ip "-n" ns "link" "set" "mcb" "up")
      (ip "-n" ns "addr" "add" "fd00:5::1/64" "dev" "mca" "nodad")
      (ip "-n" ns "addr" "add" "fd00:5::2/64" "dev" "mca" "nodad")
      (with-peers ((p ns))
        (let* ((idx (ask p "(net:interface-index \"mca\")"))
               (r1 (ask p "(receiver :ipv6 5003 :groups '(\"ff15::4242\") :interface \"mca\")"))
               (r2 (ask p "(receiver :ipv6 5003 :groups '(\"ff15::4242\") :interface ~d)" idx))
               (r3 (ask p "(receiver :ipv6 5003 :groups '(\"ff15::4242%~d\"))" idx))
               (ssm (ask p "(receiver :ipv6 5003 :groups '(\"ff15::4242\") :interface \"mca\" :source \"fd00:5::2\")"))
               (s1 (ask p "(sender :ipv6 \"ff15::4242\" 5003 :interface \"mca\" :from \"fd00:5::1\")"))
               (s2 (ask p "(sender :ipv6 \"ff15::4242\" 5003 :interface ~d :from \"fd00:5::2\")" idx)))
          (is (= idx (ask p "(option ~d :multicast-interface)" s1)))
          (ask p "(say ~d \"one\")" s1)
          (dolist (r (list r1 r2 r3))
            (is (equal "one" (ask p "(hear ~d)" r))))
          (is (eq :timeout (ask p "(hear ~d 0.5)" ssm)) "source-specific: not from fd00:5::1")
          (ask p "(say ~d \"two\")" s2)
          (dolist (r (list r1 r2 r3 ssm))
            (is (equal "two" (ask p "(hear ~d)" r))))
          (ask p "(leave ~d \"ff15::4242\" :interface ~d)" r2 idx)
          (ask p "(say ~d \"three\")" s1)
          (is (equal "three" (ask p "(hear ~d)" r1)))
          (is (eq :timeout (ask p "(hear ~d 0.5)" r2)) "left the group")
          ;; :multicast-loop nil: no copy for this host's own members
          (let ((quiet (ask p "(sender :ipv6 \"ff15::4242\" 5003 :interface \"mca\" :loop nil)")))
            (is (eq nil (ask p "(option ~d :multicast-loop)" quiet)))
            (ask p "(say ~d \"unlooped\")" quiet)
            (is (eq :timeout (ask p "(hear ~d 0.5)" r1)))))))))

;;; Both families across a veth pair between two namespaces

(defun veth-pair (a b)
  (ip "link" "add" "mcx" "netns" a "type" "veth" "peer" "name" "mcy" "netns" b)
  (ip "-n" a "link" "set" "mcx" "up")
  (ip "-n" b "link" "set" "mcy" "up")
  (ip "-n" a "addr" "add" "10.77.0.1/24" "dev" "mcx")
  (ip "-n" a "addr" "add" "10.77.0.3/24" "dev" "mcx")
  (ip "-n" b "addr" "add" "10.77.0.2/24" "dev" "mcy")
  (ip "-n" a "addr" "add" "fd00:77::1/64" "dev" "mcx" "nodad")
  (ip "-n" a "addr" "add" "fd00:77::3/64" "dev" "mcx" "nodad")
  (ip "-n" b "addr" "add" "fd00:77::2/64" "dev" "mcy" "nodad"))

(defun across-veth (pa pb family group port src-1 src-3 rx-interface)
  (let* ((r1 (ask pb "(receiver ~s ~d :groups '(~s) :interface ~s)" family port group rx-interface))
         (r2 (ask pb "(receiver ~s ~d :groups '(~s) :interface \"mcy\")" family port group))
         (only-1 (ask pb "(receiver ~s ~d :groups '(~s) :interface \"mcy\" :source ~s)"
                      family port group src-1))
         (only-3 (ask pb "(receiver ~s ~d :groups '(~s) :interface \"mcy\" :source ~s)"
                      family port group src-3))
         (s1 (ask pa "(sender ~s ~s ~d :interface \"mcx\" :from ~s)" family group port src-1))
         (s3 (ask pa "(sender ~s ~s ~d :interface \"mcx\" :from ~s)" family group port src-3)))
    (ask pa "(say ~d \"one\")" s1)
    (is (equal "one" (ask pb "(hear ~d)" r1)))
    (is (equal "one" (ask pb "(hear ~d)" r2)))
    (is (equal "one" (ask pb "(hear ~d)" only-1)))
    (is (eq :timeout (ask pb "(hear ~d 0.5)" only-3)) "source-specific join filters")
    (ask pa "(say ~d \"three\")" s3)
    (is (equal "three" (ask pb "(hear ~d)" r1)))
    (is (equal "three" (ask pb "(hear ~d)" r2)))
    (is (equal "three" (ask pb "(hear ~d)" only-3)))
    (is (eq :timeout (ask pb "(hear ~d 0.5)" only-1)) "source-specific join filters")
    (ask pb "(leave ~d ~s :interface \"mcy\")" r2 group)
    (ask pa "(say ~d \"after\")" s1)
    (is (equal "after" (ask pb "(hear ~d)" r1)))
    (is (eq :timeout (ask pb "(hear ~d 0.5)" r2)) "leaving stops delivery")
    (is (equal '() (ask pb "(hear-all ~d)" r1)) "exactly one copy")))

(test ipv4-across-veth
  (as-root
    (with-namespaces (a b)
      (veth-pair a b)
      (with-peers ((pa a) (pb b))
        (across-veth pa pb :ipv4 "239.77.0.1" 5004 "10.77.0.1" "10.77.0.3" "10.77.0.2")))))

(test ipv6-across-veth
  (as-root
    (with-namespaces (a b)
      (veth-pair a b)
      (with-peers ((pa a) (pb b))
        (across-veth pa pb :ipv6 "ff15::77" 5005 "fd00:77::1" "fd00:77::3" "mcy")))))

;;; A peer that vanishes without a FIN or a reset (catalog case P07).  Not
;;; multicast, but it needs this file's namespaces and peers: two
;;; namespaces joined by a veth pair, the server's end taken down once the
;;; connection is up.

(test peer-vanishing-silently-is-a-timeout
  (as-root
    (with-namespaces (a b)
      (veth-pair a b)
      (with-peers ((pa a) (pb b))
        (let* ((l (ask pb "(keep (net:make-listener 7070 :host \"10.77.0.2\"))"))
               (c1 (ask pa "(keep (net:connect-to \"10.77.0.2\" 7070 :timeout 5 :user-timeout 1))"))
               (c2 (ask pa "(keep (net:connect-to \"10.77.0.2\" 7070 :timeout 5))")))
          (ask pb "(keep (net:accept-connection (sock ~d) :timeout 5))" l)
          (ask pb "(keep (net:accept-connection (sock ~d) :timeout 5))" l)
          (ip "-n" b "link" "set" "mcy" "down")
          ;; With TCP_USER_TIMEOUT, unacknowledged data fails the connection.
          (is (eq 'net:connection-timed-out
                  (ask pa "(handler-case
                             (progn (net:send (sock ~d) (make-array 100 :element-type '(unsigned-byte 8)))
                                    (net:receive (sock ~d) (make-array 10 :element-type '(unsigned-byte 8))
                                                 :timeout 20)
                                    :no-error)
                           (error (e) (type-of e)))" c1 c1)))
          ;; Without it, the application's own timeout fires.
          (is (eq 'net:socket-timeout
                  (ask pa "(handler-case
                             (progn (net:receive (sock ~d) (make-array 10 :element-type '(unsigned-byte 8))
                                                 :timeout 1)
                                    :no-error)
                           (error (e) (type-of e)))" c2))))))))

;;; Packet loss (the kernel here has no netem): iptables in a namespace
;;; drops a quarter of the TCP segments of one port at random.  TCP
;;; retransmits; every octet must arrive, in order, and the drops must
;;; really have happened.  Loopback hands TCP segments of up to 64 KiB
;;; (GSO) to iptables whole: 256 KiB made some ten of them, and in one run
;;; of twenty none was dropped (0.75^10); 4 MiB make some seventy.

(defun iptables-dropped (ns)
  "The packets dropped by the rules of the INPUT chain in namespace NS."
  (let ((out (with-output-to-string (s)
               (ext:run-program "ip" (list "netns" "exec" ns "iptables" "-L" "INPUT" "-v" "-n" "-x")
                                :input t :output s :error t :wait t))))
    (with-input-from-string (in out)
      (loop for line = (read-line in nil)
            while line
            when (search "DROP" line)
              sum (or (parse-integer line :junk-allowed t) 0)))))

(test lossy-link-loses-no-octet
  (as-root
    (if (not (eql 0 (ignore-errors (run-command "sh" "-c" "command -v iptables >/dev/null"))))
        (skip "needs iptables to drop packets (Debian package iptables); not run")
        (with-namespaces (ns)
          (unless (eql 0 (run-command "ip" "netns" "exec" ns "iptables" "-A" "INPUT" "-p" "tcp"
                                      "--dport" "7071" "-m" "statistic" "--mode" "random"
                                      "--probability" "0.25" "-j" "DROP"))
            (error "iptables could not add its rule in ~a" ns))
          (with-peers ((p ns))
            (is (equal '(4194304 t)
                       (ask p "(let* ((n 4194304)
                                      (l (net:make-listener 7071 :host \"127.0.0.1\"))
                                      (c (net:connect-to \"127.0.0.1\" 7071 :timeout 30))
                                      (s (net:accept-connection l :timeout 30))
                                      (data (let ((v (make-array n :element-type '(unsigned-byte 8))))
                                              (dotimes (i n v) (setf (aref v i) (mod (* i 7) 251)))))
                                      (got (make-array n :element-type '(unsigned-byte 8)))
                                      (w (mp:process-run-function \"lossy writer\"
                                           (lambda ()
                                             (loop with pos = 0 while (< pos n)
                                                   do (incf pos (net:send c data :start pos)))
                                             (net:shutdown c :output)))))
                                 (loop with pos = 0
                                       while (< pos n)
                                       do (let ((k (net:receive s got :start pos :timeout 60)))
                                            (if (zerop k) (loop-finish) (incf pos k)))
                                       finally (mp:process-join w)
                                               (return (list pos (equalp data got)))))"))
                "every octet arrives, in order, over a link losing a quarter of its segments")
            (is (< 0 (iptables-dropped ns)) "segments were really dropped"))))))
