;;;; resolver-tests.lsp -- tests of resolver.lsp.
;;;
;;; Nothing here asks a name server on the network.  Tests in this process
;;; use only what every hosts file has (localhost is 127.0.0.1) and the
;;; services and protocols files.  Tests that need names of their own run a
;;; child ECL in a new network and mount namespace (unshare, as root) whose
;;; /etc/hosts, /etc/nsswitch.conf and /etc/resolv.conf are files the test
;;; writes; there the only name server is one on the namespace's own
;;; loopback, where nothing listens.

(in-package "NET-TESTS")

(def-suite :resolver :in :net)
(in-suite :resolver)

(test localhost-resolves
  (multiple-value-bind (addresses canonical) (net:lookup-host "localhost")
    (is (consp addresses))
    (is (every (lambda (a) (typep a 'net:address)) addresses))
    (is (member "127.0.0.1" addresses :key #'net:address-string :test #'equal))
    (is (= (length addresses)
           (length (remove-duplicates addresses :key #'net:address-key :test #'equal))))
    (is (stringp canonical))
    (is (plusp (length canonical))))
  (let ((v4 (net:lookup-host "localhost" :address-family :ipv4)))
    (is (every #'net:ipv4-address-p v4))))

(test literals-need-no-lookup
  (multiple-value-bind (addresses canonical) (net:lookup-host "::1")
    (is (= 1 (length addresses)))
    (is (net:address= "::1" (first addresses)))
    (is (equal "::1" canonical)))
  (is (net:address= "10.9.8.7" (first (net:lookup-host "10.9.8.7"))))
  (is (net:address= "10.9.8.7" (first (net:lookup-host #(10 9 8 7)))))
  (is (net:address= "10.9.8.7" (first (net:lookup-host (net:ensure-address "10.9.8.7")))))
  (signals net:host-not-found (net:lookup-host "10.9.8.7" :address-family :ipv6)))

(test addresses-of-the-other-family-are-not-found
  ;; as for the text of the same address: no address of that family
  (signals net:host-not-found (net:lookup-host #(127 0 0 1) :address-family :ipv6))
  (signals net:host-not-found (net:lookup-host net:+ipv4-loopback+ :address-family :ipv6))
  (signals net:host-not-found (net:lookup-host net:+ipv6-loopback+ :address-family :ipv4))
  (signals net:host-not-found (net:lookup-host "::1" :address-family :ipv4))
  (is (net:address= "::1" (first (net:lookup-host net:+ipv6-loopback+ :address-family :ipv6))))
  (signals net:invalid-address (net:lookup-host #(127 0 0) :address-family :ipv6)))

(test bad-names-are-refused-before-libc
  ;; Each of these would be misread or truncated by libc.
  (dolist (case `(("1.2.3" "four parts")
                  ("0177.0.0.1" "more than three digits")
                  ("127.1" "four parts")
                  ("0x7f.1" "unexpected character")
                  ("2130706433" "more than three digits")
                  ("" "empty")
                  ("a..b" "empty label")
                  ("a b" "white space")
                  (,(format nil "localhost~c.example" (code-char 0)) "NUL")
                  (,(format nil "h~cllo" (code-char 233)) "non-ASCII")
                  (,(format nil "h~cllo" (code-char #x3bb)) "non-ASCII")
                  (,(make-string 254 :initial-element #\a) "longer than")
                  ("[::1]" "brackets")))
    (destructuring-bind (name reason) case
      (let ((c (nth-value 1 (ignore-errors (net:lookup-host name)))))
        (is (typep c 'net:invalid-address) "~s gave ~a" name c)
        (is (and c (search reason (princ-to-string c)))
            "~s: ~a should say ~s" name c reason))))
  (signals type-error (net:lookup-host 'localhost))
  (signals type-error (net:lookup-host "localhost" :address-family :local)))

(test reverse-lookup
  (is (stringp (net:lookup-address "127.0.0.1")))
  (is (stringp (net:lookup-address #(127 0 0 1))))
  (signals net:invalid-address (net:lookup-address "1.2.3"))
  (signals net:invalid-address (net:lookup-address (net:make-local-address "/x"))))

(test services
  (is (equal '(80 "http") (multiple-value-list (net:lookup-service "http"))))
  (is (equal '(80 "http") (multiple-value-list (net:lookup-service :http))))
  (is (equal '(22 "ssh") (multiple-value-list (net:lookup-service 22))))
  (is (equal '(22 "ssh") (multiple-value-list (net:lookup-service "22"))))
  (is (equal '(53 "domain") (multiple-value-list (net:lookup-service "domain" :protocol :udp))))
  (is (equal '(0 nil) (multiple-value-list (net:lookup-service 0 :protocol :udp))))
  (is (= 65535 (net:lookup-service 65535)))
  (let ((c (nth-value 1 (ignore-errors (net:lookup-service "no-such-service")))))
    (is (typep c 'net:unknown-service))
    (is (typep c 'net:resolver-error))
    (is (search "no-such-service" (princ-to-string c))))
  (signals net:unknown-service (net:lookup-service (format nil "ht~ctp" (code-char 0))))
  (signals type-error (net:lookup-service 65536))
  (signals type-error (net:lookup-service -1))
  (signals type-error (net:lookup-service "70000"))
  (signals type-error (net:lookup-service 1.5)))

(test protocols
  (is (equal '(6 "tcp") (multiple-value-list (net:lookup-protocol "tcp"))))
  (is (equal '(17 "udp") (multiple-value-list (net:lookup-protocol :udp))))
  (is (equal '(6 "tcp") (multiple-value-list (net:lookup-protocol 6))))
  (is (equal '(58 "ipv6-icmp") (multiple-value-list (net:lookup-protocol "58"))))
  (signals net:unknown-protocol (net:lookup-protocol "no-such-protocol"))
  (signals type-error (net:lookup-protocol 256))
  (signals type-error (net:lookup-protocol -1)))

;;; ---- In a namespace of our own --------------------------------------------

(defparameter *ns-hosts*
  "127.0.0.1 localhost
::1 localhost ip6-localhost
127.0.0.2 multi.test multi
127.0.0.3 multi.test
::2 multi.test
127.0.0.2 multi.test
127.0.0.4 v4only.test
")

(defun namespace-usable-p ()
  (ignore-errors
   (eql 0 (nth-value 1 (ext:run-program
                        "sh" '("-c" "test \"$(id -u)\" = 0 && unshare --net --mount true")
                        :output nil :error nil :wait t)))))

(defun run-in-namespace (forms &key (nsswitch "hosts: files") python background)
  "Run FORMS (a string of Lisp forms) in a child ECL, with net loaded, in new
network and mount namespaces with *NS-HOSTS* as /etc/hosts.  With PYTHON, a
python3 program run first in the same namespace (in the background, given a
second to start, with BACKGROUND).  Returns what the child printed (python's
output first)."
  (let* ((dir (format nil "/tmp/net-ns-~d-~d/" (ext:getpid) (random 1000000)))
         (script (concatenate 'string dir "run.sh"))
         (out (concatenate 'string dir "out")))
    (ensure-directories-exist dir)
    (flet ((write-file (name text)
             (with-open-file (s (concatenate 'string dir name) :direction :output
                                                               :if-exists :supersede)
               (write-string text s))))
      (write-file "hosts" *ns-hosts*)
      (write-file "nsswitch" (format nil "~a~%" nsswitch))
      (write-file "resolv" (format nil "nameserver 127.0.0.1~%options timeout:1 attempts:1~%"))
      (write-file "forms.lsp" forms)
      (write-file "prog.py" (or python ""))
      (write-file "run.sh"
                  (format nil "set -e
cd ~a
mount --make-rprivate / 2>/dev/null || true
mount --bind hosts /etc/hosts
mount --bind nsswitch /etc/nsswitch.conf
mount --bind resolv /etc/resolv.conf
ip link set lo up
~a
~a --norc --eval '(load \"~anet.fas\")' --load forms.lsp --eval '(ext:quit 0)' 2>&1 | grep -v '^;;;' || true
~a
" dir
                          (cond ((not python) "")
                                (background "python3 prog.py & PY=$!; i=0; while [ -z \"$(ss -Hlnu)\" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done")
                                (t "python3 prog.py"))
                          (or (ext:getenv "ECL") "ecl") (ext:getenv "NET_BUILDDIR")
                          (if background "kill $PY" ""))))
    (ext:run-program "sh" (list "-c" (format nil "timeout 60 unshare --net --mount sh ~a > ~a 2>&1"
                                             script out))
                     :output nil :error nil :wait t)
    (prog1 (with-open-file (s out) (let ((text (make-string (file-length s))))
                                     (subseq text 0 (read-sequence text s))))
      (ext:run-program "rm" (list "-rf" dir) :output nil :wait t))))

(defun read-all (text)
  (with-input-from-string (s text)
    (loop for form = (read s nil s) until (eq form s) collect form)))

(defparameter *ns-forms* "
(defun strings (list) (mapcar (function net:address-string) list))
(defun try (thunk)
  (handler-case (multiple-value-list (funcall thunk))
    (error (c) (list :error (string (type-of c)) (princ-to-string c)))))
(print (list :localhost (try (lambda () (multiple-value-bind (a c) (net:lookup-host \"localhost\")
                                          (list (strings a) c))))))
(print (list :localhost6 (try (lambda () (strings (net:lookup-host \"localhost\" :address-family :ipv6))))))
(print (list :multi (try (lambda () (multiple-value-bind (a c) (net:lookup-host \"multi.test\")
                                      (list (strings a) c))))))
(print (list :alias (try (lambda () (nth-value 1 (net:lookup-host \"multi\"))))))
(print (list :multi4 (try (lambda () (strings (net:lookup-host \"multi.test\" :address-family :ipv4))))))
(print (list :v4only6 (try (lambda () (net:lookup-host \"v4only.test\" :address-family :ipv6)))))
(print (list :nosuch (try (lambda () (net:lookup-host \"nosuch.test\")))))
(print (list :reverse (try (lambda () (net:lookup-address \"127.0.0.3\")))))
")

(defparameter *ns-python* "
import socket
r = socket.getaddrinfo('multi.test', None, socket.AF_UNSPEC, socket.SOCK_STREAM)
seen = []
for x in r:
    a = x[4][0]
    if a not in seen:
        seen.append(a)
print('(:python (' + ' '.join('\"%s\"' % a for a in seen) + '))')
")

(test (hosts-file-names :compile-at :run-time)
  (if (not (namespace-usable-p))
      (skip "needs root and unshare --net --mount for a private hosts file")
      (let* ((output (run-in-namespace *ns-forms* :python *ns-python*))
             (results (ignore-errors (read-all output)))
             (python (second (assoc :python results))))
        (flet ((result (key) (second (assoc key results))))
          (is (consp results) "child printed ~s" output)
          ;; Both families for localhost, here where the hosts file says so.
          (is (equal '(("127.0.0.1" "::1") "localhost")
                     (list (sort (copy-list (first (first (result :localhost)))) #'string<)
                           (second (first (result :localhost))))))
          (is (equal '(("::1")) (result :localhost6)))
          ;; All addresses, each once, in getaddrinfo's order, with the canonical name.
          (let ((multi (first (result :multi))))
            (is (equal "multi.test" (second multi)))
            (is (= 3 (length (first multi))) "~s" multi)
            (is (equal python (first multi)) "python says ~s, we say ~s" python (first multi))
            (is (null (set-difference '("127.0.0.2" "127.0.0.3" "::2") (first multi)
                                      :test #'equal))))
          (is (equal '("multi.test") (result :alias)))
          (is (equal '(("127.0.0.2" "127.0.0.3")) (result :multi4)))
          (is (equal "HOST-NOT-FOUND" (second (result :v4only6))) "~s" (result :v4only6))
          (let ((nosuch (result :nosuch)))
            (is (equal "HOST-NOT-FOUND" (second nosuch)) "~s" nosuch)
            (is (search "nosuch.test" (third nosuch)))
            (is (search "getaddrinfo" (third nosuch))))
          (is (equal '("multi.test") (result :reverse)))))))

(test (temporary-failure-is-resolver-again :compile-at :run-time)
  (if (not (namespace-usable-p))
      (skip "needs root and unshare --net --mount for a private resolver setup")
      ;; DNS only, to a name server on the namespace's loopback that does not
      ;; exist: the query is refused at once, a temporary failure.
      (let* ((output (run-in-namespace
                      "(print (handler-case (net:lookup-host \"name.test\")
                                (net:resolver-error (c)
                                  (list (string (type-of c)) (net:resolver-error-code c)
                                        (net:resolver-error-message c) (princ-to-string c)))))"
                      :nsswitch "hosts: dns"))
             (r (first (ignore-errors (read-all output)))))
        (is (equal "RESOLVER-AGAIN" (first r)) "child printed ~s" output)
        (is (eql -3003 (second r)))
        (is (equal "Temporary failure in name resolution" (third r)))
        (is (search "name.test" (fourth r))))))

(defparameter *silent-name-server* "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', 53))
s.settimeout(0.5)
end = time.time() + 20
while time.time() < end:
    try:
        s.recvfrom(512)   # read queries, never answer
    except socket.timeout:
        pass
")

(test (interrupt-waits-for-a-slow-lookup :compile-at :run-time)
  (if (not (namespace-usable-p))
      (skip "needs root and unshare --net --mount for a private resolver setup")
      ;; A name server that never answers: the lookup takes the resolver's
      ;; timeout (1 s).  An interrupt sent meanwhile runs when the lookup has
      ;; returned, and unwinds the thread cleanly; the image goes on working.
      (let* ((output (run-in-namespace "
(let* ((start (get-internal-real-time))
       (result :none)
       (thread (mp:process-run-function
                \"lookup\"
                (lambda ()
                  (setf result
                        (catch 'stop
                          (handler-case (net:lookup-host \"slow.test\")
                            (net:resolver-error (c) (string (type-of c))))))))))
  (sleep 0.3)
  (mp:interrupt-process thread (lambda () (throw 'stop :interrupted)))
  (mp:process-join thread)
  (print (list :result result
               :seconds (float (/ (- (get-internal-real-time) start)
                                  internal-time-units-per-second))
               :after (net:address-string (first (net:lookup-host \"127.0.0.9\"))))))"
                                       :nsswitch "hosts: dns"
                                       :python *silent-name-server* :background t))
             (r (first (ignore-errors (read-all output)))))
        (is (eq :interrupted (getf r :result)) "child printed ~s" output)
        (is (and (realp (getf r :seconds)) (>= (getf r :seconds) 0.9))
            "the lookup was cut short: ~s" r)
        (is (equal "127.0.0.9" (getf r :after))))))
