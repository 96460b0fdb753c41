;;;; datagram-tests.lsp -- tests of datagram.lsp: send-to and receive-from.

(in-package "NET-TESTS")

(def-suite :datagram :in :net)
(in-suite :datagram)

(defun udp-socket (family &key (timeout 5) (blocking t))
  (let ((s (make-socket :address-family family :type :datagram :timeout timeout
                        :blocking blocking)))
    (bind-address s (if (eq family :ipv6) "::1" "127.0.0.1"))))

(defmacro with-udp-pair ((a b &key (family :ipv4)) &body body)
  `(let ((,a (udp-socket ,family)) (,b (udp-socket ,family)))
     (unwind-protect (progn ,@body)
       (close ,a)
       (close ,b))))

(defun udp-test (family)
  (with-udp-pair (a b :family family)
    (is (typep a 'net:datagram-socket))
    (is (= 5 (net:send-to a (octets 1 2 3 4 5) (net:socket-local-address b)
                          :port (net:socket-local-port b))))
    (let ((buf (make-octets 10)))
      (multiple-value-bind (n address port truncated) (net:receive-from b buf :start 2)
        (is (= 5 n))
        (is (equalp (octets 1 2 3 4 5) (subseq buf 2 7)))
        (is (net:address= address (net:socket-local-address a)))
        (is (= port (net:socket-local-port a)))
        (is (null truncated))))))

(test udp-ipv4 (udp-test :ipv4))
(test udp-ipv6 (udp-test :ipv6))

(test truncation-is-reported-and-boundaries-kept
  (with-udp-pair (a b)
    (let ((to (net:socket-local-address b)) (port (net:socket-local-port b))
          (buf (make-octets 4)))
      (net:send-to a (octets 1 2 3 4 5 6 7 8) to :port port)
      (net:send-to a (octets 9 10) to :port port)
      (net:send-to a (make-octets 0) to :port port)
      (multiple-value-bind (n address port truncated) (net:receive-from b buf)
        (declare (ignore address port))
        (is (= 4 n))
        (is (eq t truncated))
        (is (equalp (octets 1 2 3 4) buf)))
      ;; the excess is gone: the next receive is the next datagram
      (multiple-value-bind (n address port truncated) (net:receive-from b buf)
        (declare (ignore address port))
        (is (= 2 n))
        (is (null truncated))
        (is (equalp (octets 9 10) (subseq buf 0 2))))
      ;; an empty datagram is a message of its own
      (is (= 0 (net:receive-from b buf)))
      (setf (net:socket-blocking-p b) nil)
      (is (null (net:receive-from b buf))))))

(test peek-leaves-the-datagram
  (with-udp-pair (a b)
    (net:send-to a (octets 7 8) (net:socket-local-address b) :port (net:socket-local-port b))
    (let ((buf (make-octets 4)))
      (is (= 2 (net:receive-from b buf :peek t)))
      (is (= 2 (net:receive-from b buf)))
      (is (equalp (octets 7 8) (subseq buf 0 2))))))

(test connected-udp-uses-send-and-receive
  (with-udp-pair (a b)
    (connect a (net:socket-local-address b) :port (net:socket-local-port b))
    (connect b (net:socket-local-address a) :port (net:socket-local-port a))
    (is (= 3 (send a (octets 1 2 3))))
    (is (= 3 (net:send-to a (octets 4 5 6) nil)))
    (let ((buf (make-octets 8)))
      (is (= 3 (receive b buf)))
      (is (= 3 (receive b buf)))
      (is (equalp (octets 4 5 6) (subseq buf 0 3))))))

(test datagram-too-long
  (with-udp-pair (a b)
    (signals net:message-too-long
      (net:send-to a (make-octets 70000) (net:socket-local-address b)
                   :port (net:socket-local-port b)))))

(test receive-from-times-out-and-non-blocking-returns-nil
  (with-udp-pair (a b)
    (signals net:socket-timeout (net:receive-from b (make-octets 4) :timeout 0.1))
    (setf (net:socket-blocking-p b) nil)
    (is (null (net:receive-from b (make-octets 4))))
    ;; and nothing was lost: the socket still works
    (setf (net:socket-blocking-p b) t)
    (net:send-to a (octets 1) (net:socket-local-address b) :port (net:socket-local-port b))
    (is (= 1 (net:receive-from b (make-octets 4))))))

(test send-to-bad-arguments
  (with-udp-pair (a b)
    (let ((port (net:socket-local-port b)))
      (signals type-error (net:send-to a "text" "127.0.0.1" :port port))
      (signals type-error (net:send-to a (make-octets 4) "127.0.0.1" :port port :start 3 :end 1))
      (signals type-error (net:send-to a (make-octets 4) "127.0.0.1" :port port :end 9))
      (signals type-error (net:send-to a (make-octets 4) "127.0.0.1" :port 65536))
      (signals net:invalid-address (net:send-to a (make-octets 4) "::1" :port port))
      (signals net:invalid-address (net:send-to a (make-octets 4) "no.such" :port port))
      (signals type-error (net:receive-from b (make-array 4 :element-type '(signed-byte 8))))
      ;; none of them sent anything
      (setf (net:socket-blocking-p b) nil)
      (is (null (net:receive-from b (make-octets 4)))))))

(defun temp-socket-path (name)
  (format nil "/tmp/net-test-~d-~a.sock" (ext:getpid) name))

(test unix-datagrams-over-paths
  (let* ((pa (temp-socket-path "dga")) (pb (temp-socket-path "dgb"))
         (a (make-socket :address-family :local :type :datagram :timeout 5))
         (b (make-socket :address-family :local :type :datagram :timeout 5)))
    (unwind-protect
         (progn
           (bind-address a pa)
           (bind-address b (net:make-local-address pb))
           (is (string= pb (net:local-address-path (net:socket-local-address b))))
           (is (= 3 (net:send-to a (octets 1 2 3) pb)))
           (let ((buf (make-octets 2)))
             (multiple-value-bind (n address port truncated) (net:receive-from b buf)
               (is (= 2 n))
               (is (typep address 'net:local-address))
               (is (string= pa (net:local-address-path address)))
               (is (null port))
               (is (eq t truncated)))))
      (close a)
      (close b)
      (ignore-errors (delete-file pa))
      (ignore-errors (delete-file pb)))))

(test unix-datagrams-over-abstract-names
  (let* ((name (format nil "net-test-~d-abstract-é" (ext:getpid)))
         (a (make-socket :address-family :local :type :datagram :timeout 5))
         (b (make-socket :address-family :local :type :datagram :timeout 5)))
    (unwind-protect
         (progn
           (bind-address b (net:make-local-address name :abstract t))
           (let ((bound (net:socket-local-address b)))
             (is (net:local-address-abstract-p bound))
             (is (string= name (net:local-address-path bound))))
           (is (not (probe-file name)))       ; nothing in the file system
           (is (= 2 (net:send-to a (octets 4 2) (net:make-local-address name :abstract t))))
           (let ((buf (make-octets 4)))
             (multiple-value-bind (n address) (net:receive-from b buf)
               (is (= 2 n))
               (is (null address)))))           ; A never bound: unnamed
      (close a)
      (close b))))

;; Abstract names are length-delimited: the kernel reports names holding
;; NULs (and the empty name) for local and peer addresses and for senders,
;; and those addresses must come back, equal to the name bound, and serve
;; to reply.
(test abstract-names-holding-nul-are-returned
  (let* ((nul (code-char 0))
         (name-a (format nil "~cnet-test-~d~ca" nul (ext:getpid) nul))
         (a (make-socket :address-family :local :type :datagram :timeout 5))
         (b (make-socket :address-family :local :type :datagram :timeout 5))
         (buf (make-octets 4)))
    (unwind-protect
         (progn
           (bind-address a (net:make-local-address name-a :abstract t))
           (bind-address b (net:make-local-address "" :abstract t))
           (is (string= name-a (net:local-address-path (net:socket-local-address a))))
           (is (string= "" (net:local-address-path (net:socket-local-address b))))
           (is (= 1 (net:send-to a (octets 7) (net:socket-local-address b))))
           (multiple-value-bind (n sender) (net:receive-from b buf)
             (is (= 1 n))
             (is (net:local-address-abstract-p sender))
             (is (string= name-a (net:local-address-path sender)))
             ;; the reported sender is a usable address: reply to it
             (is (= 1 (net:send-to b (octets 8) sender))))
           (multiple-value-bind (n sender) (net:receive-from a buf)
             (is (= 1 n))
             (is (= 8 (aref buf 0)))
             (is (string= "" (net:local-address-path sender))))
           (net:connect a (net:socket-local-address b))
           (is (string= "" (net:local-address-path (net:socket-remote-address a))))
           (is (= 2 (net:send-message a (list (octets 1 2)))))
           (multiple-value-bind (n sender) (net:receive-message b (list buf))
             (is (= 2 n))
             (is (string= name-a (net:local-address-path sender)))))
      (close a)
      (close b))))

(test bad-local-names
  (net:with-open-socket (s :address-family :local :type :datagram)
    (signals net:invalid-address (bind-address s (make-string 200 :initial-element #\x)))
    (signals net:invalid-address (bind-address s ""))
    (signals net:invalid-address (bind-address s (format nil "a~cb" (code-char 0))))
    (signals type-error (bind-address s 42))
    (signals net:no-such-file (connect s "/nonexistent-dir/x.sock"))))

(test receive-datagram-allocates
  (with-udp-pair (a b)
    (net:send-to a (octets 1 2 3 4) (net:socket-local-address b) :port (net:socket-local-port b))
    (net:send-to a (octets 5 6 7) (net:socket-local-address b) :port (net:socket-local-port b))
    (multiple-value-bind (v address port truncated) (net:receive-datagram b)
      (is (equalp (octets 1 2 3 4) v))
      (is (net:address= address (net:socket-local-address a)))
      (is (= port (net:socket-local-port a)))
      (is (null truncated)))
    (multiple-value-bind (v address port truncated) (net:receive-datagram b :size 2)
      (declare (ignore address port))
      (is (equalp (octets 5 6) v))
      (is (eq t truncated)))))

(test send-to-reuses-an-address-object
  "One address object serves many sends (its converted form is remembered),
and still cannot be used on a socket of the other family."
  (let ((a (udp-socket :ipv4)) (b (udp-socket :ipv4)) (c (udp-socket :ipv6)))
    (unwind-protect
         (let ((to (net:socket-local-address b)) (port (net:socket-local-port b))
               (in (make-octets 8)))
           (dotimes (i 3)
             (is (= 1 (net:send-to a (octets i) to :port port)))
             (is (= 1 (net:receive-from b in)))
             (is (= i (aref in 0))))
           (signals net:invalid-address (net:send-to c (octets 9) to :port port)))
      (close a) (close b) (close c))))

(defun sender-octets-test (family)
  (with-udp-pair (a b :family family)
    (let ((to (net:socket-local-address b)) (port (net:socket-local-port b))
          (sender (make-octets (if (eq family :ipv6) 16 4)))
          (buf (make-octets 4)))
      (net:send-to a (octets 1 2 3 4 5 6) to :port port)
      (multiple-value-bind (n from from-port truncated) (net:receive-from b buf :sender-octets sender)
        (is (= 4 n))
        (is (eq sender from))
        (is (equalp (net:address-octets (net:socket-local-address a)) sender))
        (is (= (net:socket-local-port a) from-port))
        (is (eq t truncated))
        ;; The octets are an address designator: reply to them.
        (net:send-to b (octets 9) sender :port from-port)
        (is (= 1 (net:receive a buf)))
        (is (= 9 (aref buf 0)))))))

(test receive-from-into-caller-sender-octets-ipv4 (sender-octets-test :ipv4))
(test receive-from-into-caller-sender-octets-ipv6 (sender-octets-test :ipv6))

(test receive-from-sender-octets-checks-and-conses-nothing
  (with-udp-pair (a b)
    (let ((to (net:socket-local-address b)) (port (net:socket-local-port b))
          (sender (make-octets 4)) (buf (make-octets 64)) (out (make-octets 32 5)))
      (signals type-error (net:receive-from b buf :sender-octets (make-octets 5)))
      (flet ((consed ()
               (loop repeat 3
                     minimize (let ((before (si:gc-stats t)))
                                (dotimes (i 500)
                                  (net:send-to a out to :port port)
                                  (net:receive-from b buf :sender-octets sender))
                                (- (si:gc-stats t) before)))))
        ;; A fresh address object per datagram would be ~176 bytes each:
        ;; 88,000 for 500.  send-to of an address object conses nothing.
        (is (> 1000 (consed)))))))

(test send-to-sender-octets-conses-nothing
  ;; A UDP server's reply: send-to the sender octets receive-from filled.
  (with-udp-pair (a b)
    (let ((to (net:socket-local-address b)) (port (net:socket-local-port b))
          (sender (make-octets 4)) (buf (make-octets 64)) (out (make-octets 32 5)))
      (net:send-to a out to :port port)
      (multiple-value-bind (n from from-port) (net:receive-from b buf :sender-octets sender)
        (declare (ignore n))
        (flet ((consed ()
                 (loop repeat 3
                       minimize (let ((before (si:gc-stats t)))
                                  (dotimes (i 500)
                                    (net:send-to b out from :port from-port)
                                    (net:receive a buf))
                                  (- (si:gc-stats t) before)))))
          ;; Through an address object each time: ~340 bytes a datagram,
          ;; 170,000 for 500.
          (is (> 1000 (consed)))
          ;; And the replies go to the sender.
          (net:send-to b out from :port from-port :end 3)
          (is (= 3 (net:receive a buf :timeout 5))))))))

(defparameter *raw-name-peer* "
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(b'\\0net-test-raw-' + sys.argv[1].encode() + b'-\\xff\\xc3\\x28\\x00')
s.settimeout(10)
s.sendto(b'hi', b'\\0' + sys.argv[2].encode())
data = s.recv(16)
print(data.decode())
")

(test non-utf-8-names-round-trip
  "A peer bound to an abstract name that is not UTF-8 (octets FF, C3 28,
00): its name comes back with U+DC00 + octet for the invalid octets, and a
reply sent to it reaches it."
  (let* ((pid (ext:getpid))
         (ours (format nil "net-test-raw-~d-us" pid))
         (s (make-socket :address-family :local :type :datagram :timeout 10)))
    (unwind-protect
         (progn
           (bind-address s (net:make-local-address ours :abstract t))
           (multiple-value-bind (out code process)
               (ext:run-program "python3" (list "-c" *raw-name-peer* (princ-to-string pid) ours)
                                :input nil :output :stream :error nil :wait nil)
             (declare (ignore code))
             (let ((buf (make-octets 16)))
               (multiple-value-bind (n sender) (net:receive-from s buf)
                 (is (= 2 n))
                 (is (string= (format nil "net-test-raw-~d-~c~c(~c" pid (code-char #xdcff)
                                      (code-char #xdcc3) (code-char 0))
                              (net:local-address-path sender)))
                 (is (= 2 (net:send-to s (octets 111 107) sender)))
                 (is (equal "ok" (read-line out nil)))))
             (ext:external-process-wait process)))
      (close s))))

;;; SEND-TO and RECEIVE-FROM called with literal keywords from compiled code
;;; go straight to their positional twins, which run at safety 0: the same
;;; results, and the same conditions for bad arguments.

(defparameter *compiled-datagram-calls* "
(in-package \"NET-TESTS\")
(defun %dg-send (s buf to port) (net:send-to s buf to :end 3 :port port))
(defun %dg-send-range (s buf to port) (net:send-to s buf to :port port :start 1 :end 4 :timeout 5))
(defun %dg-send-connected (s buf) (net:send-to s buf nil :end 2))
(defun %dg-receive (s buf sender) (net:receive-from s buf :sender-octets sender))
(defun %dg-receive-range (s buf) (net:receive-from s buf :start 2 :end 6 :timeout 5))
(defun %dg-peek (s buf sender) (net:receive-from s buf :peek t :sender-octets sender :end 2))
(defun %dg-send-any (s buf to port) (net:send-to s buf to :port port))
(defun %dg-receive-any (s buf sender timeout) (net:receive-from s buf :sender-octets sender :timeout timeout))
")

(defun compile-datagram-calls ()
  (unless (fboundp '%dg-send)
    (let* ((base (format nil "/tmp/net-dg-calls-~d" (ext:getpid)))
           (source (concatenate 'string base ".lsp")))
      (with-open-file (out source :direction :output :if-exists :supersede)
        (write-string *compiled-datagram-calls* out))
      (unwind-protect
           (let ((fas (compile-file source :verbose nil :print nil)))
             (load fas)
             (delete-file fas))
        (delete-file source)))))

(test literal-keyword-calls-go-to-the-positional-functions
  ;; The compiler macros leave out the trailing arguments a call does not give.
  (let ((send (funcall (compiler-macro-function 'net:send-to)
                       '(net:send-to s buf to :end n :port p) nil))
        (receive (funcall (compiler-macro-function 'net:receive-from)
                          '(net:receive-from s buf :sender-octets o) nil)))
    (let ((call (car (last send))))
      (is (eq 'net::%send-to (first call)))
      (is (= 5 (length (rest call)))))
    (let ((call (car (last receive))))
      (is (eq 'net::%receive-from (first call)))
      (is (= 3 (length (rest call))))))
  ;; Computed keywords are left to the keyword function.
  (let ((form '(net:send-to s buf to k p)))
    (is (eq form (funcall (compiler-macro-function 'net:send-to) form nil)))))

(test compiled-literal-keyword-calls
  (compile-datagram-calls)
  (with-udp-pair (a b)
    (let ((to (net:socket-local-address b)) (port (net:socket-local-port b))
          (sender (make-octets 4)) (buf (make-octets 8)))
      (is (= 3 (%dg-send a (octets 1 2 3 4 5) to port)))
      (multiple-value-bind (n from from-port truncated) (%dg-peek b buf sender)
        (is (= 2 n))
        (is (eq sender from))
        (is (= (net:socket-local-port a) from-port))
        (is (eq t truncated)))
      (multiple-value-bind (n from from-port truncated) (%dg-receive b buf sender)
        (is (= 3 n))
        (is (equalp (octets 1 2 3) (subseq buf 0 3)))
        (is (equalp (octets 127 0 0 1) from))
        (is (= (net:socket-local-port a) from-port))
        (is (null truncated))
        ;; The reply to the octets, through an address object, through a
        ;; non-simple octet vector: all reach A.
        (is (= 3 (%dg-send-range b (octets 9 8 7 6 5) sender from-port)))
        (let ((abuf (make-octets 8)))
          (is (= 3 (net:receive a abuf)))
          (is (equalp (octets 8 7 6) (subseq abuf 0 3)))
          (is (= 5 (%dg-send-any b (octets 1 1 1 1 1) (net:socket-local-address a) from-port)))
          (is (= 5 (net:receive a abuf)))
          (let ((v (make-array 6 :element-type '(unsigned-byte 8) :fill-pointer 4
                                 :initial-contents '(127 0 0 1 0 0))))
            (is (= 2 (%dg-send-any b (octets 4 2) v from-port)))
            (is (= 2 (net:receive a abuf)))
            (is (= 4 (aref abuf 0))))))
      (%dg-send a (octets 1 2 3 4 5 6 7) to port)
      (fill buf 0)
      (multiple-value-bind (n from) (%dg-receive-range b buf)
        (is (= 3 n))
        (is (equalp (octets 0 0 1 2 3 0) (subseq buf 0 6)))
        (is (typep from 'net:ipv4-address)))
      ;; Connected: address NIL.
      (net:connect a (net:socket-local-address b) :port port)
      (is (= 2 (%dg-send-connected a (octets 5 6 7))))
      (is (= 2 (%dg-receive b buf sender))))))

(test compiled-literal-keyword-calls-check-their-arguments
  (compile-datagram-calls)
  (with-udp-pair (a b)
    (let ((to (net:socket-local-address b)) (port (net:socket-local-port b))
          (sender (make-octets 4)) (buf (make-octets 8)))
      (signals type-error (%dg-send-any :no-socket buf to port))
      (signals type-error (%dg-send-any nil buf to port))
      (signals type-error (%dg-send-any a "text" to port))
      (signals type-error (%dg-send-any a buf to -1))
      (signals type-error (%dg-send-any a buf to 65536))
      (signals type-error (%dg-send-any a buf to "80"))
      (signals type-error (%dg-send-range a (make-octets 2) to port)) ; END 4 past 2
      (signals net:invalid-address (%dg-send-any a buf (make-octets 16) port))
      (signals net:invalid-address (%dg-send-any a buf "::1" port))
      (signals error (%dg-send-any a buf :nowhere port))
      (signals error (%dg-send-any a buf '(127 0 0) port))
      (signals error (%dg-send-any a buf a port))
      (signals type-error (%dg-receive-any :no-socket buf sender 1))
      (signals type-error (%dg-receive-any b '(1 2) sender 1))
      (signals type-error (%dg-receive-any b buf (make-octets 5) 1))
      (signals type-error (%dg-receive-any b buf "abcd" 1))
      (signals type-error (%dg-receive-any b buf sender -1))
      (signals type-error (%dg-receive-any b buf sender :soon))
      (signals net:socket-timeout (%dg-receive-any b buf sender 0.05))
      ;; none of them sent anything
      (setf (net:socket-blocking-p b) nil)
      (is (null (%dg-receive b buf sender))))))
