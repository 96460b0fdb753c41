;;;; client-tests.lsp -- connect-to (Happy Eyeballs), make-listener and the with- macros.

(in-package "NET-TESTS")

(def-suite :client :in :net :description "The high level: connecting and listening.")
(in-suite :client)

(defun dual-listeners (&key (v6-backlog 16))
  "An IPv6 listener on ::1 and an IPv4 one on 127.0.0.1 with the same port,
as two values (IPv6 first)."
  (loop repeat 50
        do (let ((l6 (make-socket :address-family :ipv6)))
             (bind-address l6 "::1")
             (let ((port (net:socket-local-port l6)))
               (handler-case
                   (return-from dual-listeners
                     (values (listen-on l6 :backlog v6-backlog) (net:make-listener port)))
                 (net:address-in-use () (close l6))))))
  (error "no port free on both ::1 and 127.0.0.1"))

(defun dual-free-port ()
  "A port with nothing listening on it on either loopback address (just closed)."
  (multiple-value-bind (l6 l4) (dual-listeners)
    (prog1 (net:socket-local-port l4) (close l6) (close l4))))

(defmacro with-dual-listeners ((l6 l4 &rest args) &body body)
  `(multiple-value-bind (,l6 ,l4) (dual-listeners ,@args)
     (unwind-protect (progn ,@body)
       (close ,l6)
       (close ,l4))))

(defun elapsed (start)
  (/ (- (get-internal-real-time) start) internal-time-units-per-second))

(test connect-to-each-family-and-text
  (with-dual-listeners (l6 l4)
    (let ((port (net:socket-local-port l4)))
      (dolist (host (list "127.0.0.1" "::1" net:+ipv4-loopback+ net:+ipv6-loopback+
                          (list "::1" "127.0.0.1")))
        (net:with-connection (c host port :timeout 5)
          (is (typep c 'net:stream-socket))
          (is-true (net:socket-blocking-p c))
          (is (= port (net:socket-remote-port c)))
          ;; A bivalent stream: the accepted end reads the line.
          (let ((s (accept-connection (if (net:ipv6-address-p (net:socket-remote-address c)) l6 l4)
                                      :timeout 5)))
            (unwind-protect
                 (progn (write-line "hello" c) (finish-output c)
                        (is (string= "hello" (read-line s))))
              (close s)))))
      ;; A list starting with IPv6 connects over IPv6 when it answers.
      (net:with-connection (c (list "127.0.0.1" "::1") port :timeout 5)
        (is-true (net:ipv6-address-p (net:socket-remote-address c))
                 "families interleave starting with IPv6"))
      (close (accept-connection l6 :timeout 5)))))

(test connect-to-localhost-and-service-names
  (let ((addresses (net:lookup-host "localhost")))
    (with-dual-listeners (l6 l4)
      (let ((port (net:socket-local-port l4)))
        (net:with-connection (c "localhost" port :timeout 5 :nodelay t)
          (is-true (find (net:socket-remote-address c) addresses :test #'net:address=))
          (is-true (net:socket-option c :nodelay))))))
  ;; A service name is looked up: nothing listens on port 1 (tcpmux).
  (signals net:connection-failed (net:connect-to "127.0.0.1" "tcpmux" :timeout 5))
  (signals net:unknown-service (net:connect-to "127.0.0.1" "no-such-service" :timeout 5)))

(test connect-to-refused-lists-every-address
  (let* ((port (dual-free-port))
         (c (handler-case (net:connect-to (list "::1" "127.0.0.1") port :timeout 5)
              (net:connection-failed (e) e))))
    (is (typep c 'net:connection-failed))
    (is (= port (net:connection-failed-port c)))
    (is (equal '("::1" "127.0.0.1")
               (mapcar (lambda (a) (net:address-string (car a))) (net:connection-failed-attempts c))))
    (is-true (every (lambda (a) (typep (cdr a) 'net:connection-refused))
                    (net:connection-failed-attempts c)))
    (let ((text (princ-to-string c)))
      (is-true (search "::1: connection refused" text))
      (is-true (search "127.0.0.1: connection refused" text)))))

(test connect-to-restarts
  (multiple-value-bind (l6 l4) (dual-listeners)
    (close l6)                          ; ::1 refuses the port, 127.0.0.1 takes it
    (let ((port (net:socket-local-port l4))
          (tries 0))
      (unwind-protect
           (progn
             ;; USE-HOST: another host, same port.
             (let ((c (handler-bind ((net:connection-failed
                                       (lambda (e)
                                         (incf tries)
                                         (invoke-restart (find-restart 'net:use-host e)
                                                         "127.0.0.1"))))
                        (net:connect-to "::1" port :timeout 5))))
               (is (= 1 tries))
               (is (net:address= "127.0.0.1" (net:socket-remote-address c)))
               (close c))
             ;; RETRY: the second attempt finds a listener started meanwhile.
             (let* ((probe (dual-free-port))
                    (listener nil)
                    (c (handler-bind ((net:connection-failed
                                        (lambda (e)
                                          (unless listener
                                            (setf listener (net:make-listener probe))
                                            (invoke-restart (find-restart 'net:retry e))))))
                         (net:connect-to "127.0.0.1" probe :timeout 5))))
               (unwind-protect (is (= probe (net:socket-remote-port c)))
                 (close c)
                 (close listener))))
        (close l4)))))

(test connect-to-black-holed-ipv6-falls-back
  ;; ::1 with a full accept queue drops new SYNs: it never answers.
  (with-dual-listeners (l6 l4 :v6-backlog 0)
    (let* ((port (net:socket-local-port l4))
           (filler (net:connect-to "::1" port :timeout 5)))
      (unwind-protect
           (let ((start (get-internal-real-time)))
             (net:with-connection (c (list "::1" "127.0.0.1") port :timeout 10
                                                                 :happy-eyeballs-delay 0.1)
               (is-true (net:ipv4-address-p (net:socket-remote-address c)))
               (is (>= (elapsed start) 0.09) "IPv4 starts after the delay"))
             ;; Alone, the black-holed address times out: by :timeout ...
             (signals net:socket-timeout (net:connect-to "::1" port :timeout 0.2))
             ;; ... and by an enclosing deadline.
             (signals net:socket-timeout (net:with-deadline (0.2) (net:connect-to "::1" port)))
             ;; A deadline already past stops even a name lookup.
             (signals net:socket-timeout (net:with-deadline (0) (net:connect-to "localhost" port))))
        (close filler)))))

(test connect-to-leaks-no-descriptor
  (let ((before (socket-fd-count))
        (port (dual-free-port)))
    (dotimes (i 5)
      (handler-case (net:connect-to (list "::1" "127.0.0.1") port :timeout 5)
        (net:connection-failed () nil)))
    (with-dual-listeners (l6 l4 :v6-backlog 0)
      (let ((filler (net:connect-to "::1" (net:socket-local-port l4))))
        (dotimes (i 3)
          (close (net:connect-to (list "::1" "127.0.0.1") (net:socket-local-port l4)
                                 :happy-eyeballs-delay 0.01)))
        (close filler)))
    (is (= before (socket-fd-count)))))

(test connect-to-options-and-errors
  (with-dual-listeners (l6 l4)
    (let ((port (net:socket-local-port l4)))
      (net:with-connection (c "127.0.0.1" port :keep-alive t :blocking nil
                                               :local-address "127.0.0.1" :external-format :latin-1)
        (is-true (net:socket-option c :keep-alive))
        (is-false (net:socket-blocking-p c))
        (is (string= "127.0.0.1" (net:address-string (net:socket-local-address c))))
        (is (eq :latin-1 (net:socket-external-format c))))
      (net:with-connection (c "::1" port :address-family :ipv6)
        (is-true (net:ipv6-address-p (net:socket-remote-address c))))
      (signals net:invalid-address (net:connect-to "::1" port :address-family :ipv4))
      (signals net:unknown-socket-option (net:connect-to "127.0.0.1" port :no-such-option 1))
      (signals type-error (net:connect-to "127.0.0.1" port :timeout -1)))))

(test unix-domain-connect-and-listen
  (let ((path (format nil "/tmp/net-client-test-~d.sock" (ext:getpid))))
    (ignore-errors (delete-file path))
    (unwind-protect
         (net:with-listener (l nil :host path)
           (is (typep l 'net:local-socket))
           (net:with-connection (c path nil :timeout 5)
             (let ((s (accept-connection l :timeout 5)))
               (unwind-protect
                    (progn (write-line "over a path" c) (finish-output c)
                           (is (string= "over a path" (read-line s))))
                 (close s))))
           (net:with-connection (c (net:make-local-address path) nil)
             (is (typep c 'net:local-socket))
             (close (accept-connection l :timeout 5))))
      (ignore-errors (delete-file path)))
    (signals net:connection-failed (net:connect-to path nil :timeout 5))))

(test make-listener-defaults-and-hosts
  (net:with-listener (l 0)
    (is (typep l 'net:passive-socket))
    (is-true (net:address-loopback-p (net:socket-local-address l)) "loopback by default")
    (is (plusp (net:socket-local-port l)))
    (is-true (net:socket-option l :reuse-address)))
  (net:with-listener (l 0 :address-family :ipv6)
    (is (net:address= "::1" (net:socket-local-address l))))
  (net:with-listener (l 0 :reuse-address nil :backlog 4)
    (is-false (net:socket-option l :reuse-address)))
  (net:with-listener (l 0 :host :any)
    (let ((a (net:socket-local-address l))
          (port (net:socket-local-port l)))
      (is-true (net:address-any-p a))
      (when (net:ipv6-address-p a)
        (is-false (net:socket-option l :v6-only) "dual-stack")
        ;; An IPv4 client reaches the dual-stack listener.
        (net:with-connection (c "127.0.0.1" port :timeout 5)
          (multiple-value-bind (s peer) (accept-connection l :timeout 5)
            (close s)
            (is-true (net:address-v4-mapped-p peer)))))))
  (net:with-listener (l 0 :host :any :address-family :ipv4)
    (is (net:address= "0.0.0.0" (net:socket-local-address l))))
  (net:with-listener (l 0 :host "localhost")
    (is-true (net:address-loopback-p (net:socket-local-address l))))
  ;; The same port twice: address-in-use, and nothing leaks.
  (net:with-listener (l 0)
    (signals net:address-in-use (net:make-listener (net:socket-local-port l)))))

(test with-macros-close-on-any-exit
  (let (listener conn)
    (block out
      (net:with-listener (l 0)
        (setf listener l)
        (net:with-connection (c "127.0.0.1" (net:socket-local-port l))
          (setf conn c)
          (return-from out))))
    (is-false (net:socket-open-p listener))
    (is-false (net:socket-open-p conn))
    (ignore-errors
     (net:with-listener (l 0)
       (setf listener l)
       (error "boom")))
    (is-false (net:socket-open-p listener))))

;;; Datagram helpers

(defun udp-peer (socket &key (drop 1) (answers 1) (timeout 5))
  "Serve SOCKET in a thread: drop the first DROP requests, then answer
ANSWERS of them by echoing each prefixed with \"re:\".  The joiner returns
how many requests arrived."
  (run-thread "udp peer"
              (lambda ()
                (let ((buf (make-octets 512)) (seen 0))
                  (loop repeat (+ drop answers)
                        do (multiple-value-bind (n from port)
                               (net:receive-from socket buf :timeout timeout)
                             (incf seen)
                             (when (> seen drop)
                               (let ((reply (concatenate '(vector (unsigned-byte 8))
                                                         (map 'vector #'char-code "re:")
                                                         (subseq buf 0 n))))
                                 (net:send-to socket (coerce reply '(simple-array (unsigned-byte 8) (*)))
                                              from :port port)))))
                  seen))))

(defun text-octets (string)
  (map '(simple-array (unsigned-byte 8) (*)) #'char-code string))

(test udp-sockets-in-one-call
  (let ((a (net:make-udp-socket))
        (b (net:make-udp-socket :address-family :ipv6 :timeout 5)))
    (unwind-protect
         (progn
           (is (typep a 'net:datagram-socket))
           (is-true (net:address-loopback-p (net:socket-local-address a)) "loopback by default")
           (is (plusp (net:socket-local-port a)))
           (is (net:address= "::1" (net:socket-local-address b)))
           (is (= 5 (net:socket-timeout-of b))))
      (close a) (close b)))
  (let ((any (net:make-udp-socket :host :any :address-family :ipv4)))
    (is-true (net:address-any-p (net:socket-local-address any)))
    (close any))
  (let* ((server (net:make-udp-socket :timeout 5))
         (client (net:connect-udp "localhost" (net:socket-local-port server) :timeout 5)))
    (unwind-protect
         (progn
           (is (= (net:socket-local-port server) (net:socket-remote-port client)))
           (send client (text-octets "hi"))
           (multiple-value-bind (n from port) (net:receive-from server (make-octets 8))
             (is (= 2 n))
             (is (= port (net:socket-local-port client)))
             (is-true (net:address-loopback-p from))))
      (close client) (close server)))
  ;; Nothing listening: the connected socket hears ICMP's refusal.
  (let* ((gone (net:make-udp-socket))
         (port (prog1 (net:socket-local-port gone) (close gone)))
         (c (net:connect-udp "127.0.0.1" port :timeout 5)))
    (unwind-protect
         (progn (send c (text-octets "x"))
                (signals net:connection-refused (receive c (make-octets 4))))
      (close c))))

(test udp-exchange-retries-after-a-drop
  (let* ((server (net:make-udp-socket :timeout 5))
         (client (net:make-udp-socket :timeout 5))
         (peer (udp-peer server :drop 1 :answers 1))
         (buf (make-octets 64)))
    (unwind-protect
         (multiple-value-bind (n from port)
             (net:udp-exchange client (text-octets "ping") buf
                               :address "127.0.0.1" :port (net:socket-local-port server)
                               :timeout 0.2 :retries 3)
           (is (string= "re:ping" (map 'string #'code-char (subseq buf 0 n))))
           (is (= port (net:socket-local-port server)))
           (is (net:address= "127.0.0.1" from))
           (is (= 2 (funcall peer)) "the first request was dropped, the second answered"))
      (close client) (close server))))

(test udp-exchange-connected-accept-and-timeouts
  (let* ((server (net:make-udp-socket :timeout 5))
         (client (net:connect-udp "127.0.0.1" (net:socket-local-port server) :timeout 5))
         (buf (make-octets 64)))
    (unwind-protect
         (progn
           ;; ACCEPT rejects the first answer: the exchange resends and takes the next.
           (let* ((peer (udp-peer server :drop 0 :answers 2))
                  (answers 0)
                  (n (net:udp-exchange client (text-octets "q") buf :timeout 0.2 :retries 2
                                       :accept (lambda (b n a p) (declare (ignore b n a p))
                                                 (> (incf answers) 1)))))
             (is (= 4 n))
             (is (= 2 answers))
             (is (= 2 (funcall peer))))
           ;; Nobody answers: socket-timeout after every try, and within a deadline.
           (let ((peer (udp-peer server :drop 3 :answers 0)))
             (signals net:socket-timeout
               (net:udp-exchange client (text-octets "q") buf :timeout 0.05 :retries 2 :backoff 2))
             (is (= 3 (funcall peer))))
           (let ((start (get-internal-real-time)))
             (signals net:socket-timeout
               (net:with-deadline (0.1)
                 (net:udp-exchange client (text-octets "q") buf :timeout 5 :retries 5)))
             (is (< (elapsed start) 4) "the deadline ends the exchange")))
      (close client) (close server))))

(test connect-to-answers-interrupts-and-closes-its-attempts
  ;; A thread racing black-holed attempts answers MP:INTERRUPT-PROCESS at
  ;; once; the unwind closes every attempt.
  (with-dual-listeners (l6 l4 :v6-backlog 0)
    (let* ((port (net:socket-local-port l6))
           (filler (net:connect-to "::1" port :timeout 5))
           (before (socket-fd-count))
           (result nil)
           (thread (mp:process-run-function
                    "racer"
                    (lambda ()
                      (setf result (catch 'stop
                                     (net:connect-to (list "::1" "::1") port :timeout 10
                                                     :happy-eyeballs-delay 0.05)))))))
      (unwind-protect
           (let ((start (get-internal-real-time)))
             (sleep 0.3)
             (mp:interrupt-process thread (lambda () (throw 'stop :interrupted)))
             (mp:process-join thread)
             (is (eq :interrupted result))
             (is (< (elapsed start) 5) "the wait was cut short")
             (is (= before (socket-fd-count)) "both attempts closed"))
        (close filler)))))

;;; Ephemeral ports running out (catalog case O03), in a network namespace
;;; of its own whose local port range is five ports wide.

(defparameter *port-exhaustion-forms* "
(let* ((port 7000)                     ; outside the five ephemeral ports
       (l (net:make-listener port))
       (fds (length (directory \"/proc/self/fd/*\" :resolve-symlinks nil)))
       (held '()))
  (print (list :exhausted
               (handler-case
                   (loop repeat 20
                         do (let ((s (net:make-socket)))
                              (handler-bind ((error (lambda (e) (declare (ignore e)) (close s))))
                                (net:connect s \"127.0.0.1\" :port port :timeout 5))
                              (push s held))
                         finally (return :never))
                 (error (e) (list (type-of e) (length held))))))
  ;; The server closes first (its side keeps TIME_WAIT), then the clients:
  ;; their ports are free again.
  (dolist (s held) (declare (ignore s)) (close (net:accept-connection l :timeout 5)))
  (dolist (s held) (net:receive s (make-array 1 :element-type '(unsigned-byte 8)) :timeout 5) (close s))
  (print (list :after (loop repeat 30
                            do (handler-case (progn (close (net:connect-to \"127.0.0.1\" port :timeout 5))
                                                    (return :ok))
                                 (error (e) (sleep 0.1) e))
                            finally (return :still-exhausted))))
  (close l)
  (print (list :fds (- (length (directory \"/proc/self/fd/*\" :resolve-symlinks nil)) fds -1))))
")

(defun run-with-five-ephemeral-ports ()
  "The forms printed by *PORT-EXHAUSTION-FORMS*, run by a child ECL in a new
network namespace whose ip_local_port_range is 40000-40004, as a list."
  (let* ((dir (format nil "/tmp/net-ports-~d-~d/" (ext:getpid) (random 1000000)))
         (out (concatenate 'string dir "out")))
    (ensure-directories-exist dir)
    (with-open-file (s (concatenate 'string dir "forms.lsp") :direction :output)
      (write-string *port-exhaustion-forms* s))
    (with-open-file (s (concatenate 'string dir "run.sh") :direction :output)
      (format s "set -e
ip link set lo up
echo '40000 40004' > /proc/sys/net/ipv4/ip_local_port_range
~a --norc --eval '(load \"~anet.fas\")' --load ~aforms.lsp --eval '(ext:quit 0)' > ~a 2>&1
" (or (ext:getenv "ECL") "ecl") (ext:getenv "NET_BUILDDIR") dir out))
    (unwind-protect
         (progn
           (ext:run-program "sh" (list "-c" (format nil "timeout 60 unshare --net sh ~arun.sh" dir))
                            :input t :output t :error t :wait t)
           (with-open-file (s out :if-does-not-exist nil)
             (and s (let ((*read-eval* nil) (*package* (find-package "NET-TESTS")))
                      (loop for form = (read s nil s)
                            until (eq form s)
                            when (and (consp form) (keywordp (first form))) collect form)))))
      (ext:run-program "rm" (list "-rf" dir) :input t :output t :error t :wait t))))

(test ephemeral-ports-running-out
  (if (not (with-open-file (in "/proc/self/status")
             (loop for line = (read-line in nil) while line
                   when (eql 0 (search "Uid:" line))
                     return (eql 0 (parse-integer line :start 4 :junk-allowed t)))))
      (skip "needs root to make a network namespace with a narrow port range")
      (let ((results (run-with-five-ephemeral-ports)))
        (let ((exhausted (second (assoc :exhausted results))))
          ;; Linux hands connect() part of the range first (by parity):
          ;; at most five connections, then the condition.
          (is (and (consp exhausted) (eq 'net:address-not-available (first exhausted))
                   (<= 1 (second exhausted) 5))
              "the connection past the ports: ~s" results))
        (is (eq :ok (second (assoc :after results))) "ports come back once released: ~s" results)
        (is (eql 0 (second (assoc :fds results))) "no descriptor left: ~s" results))))
