;;;; interface-tests.lsp -- tests of interface.lsp: the loopback interface here, a veth pair in a network namespace.

(in-package "NET-TESTS")

(def-suite :interface :in :net)
(in-suite :interface)

(defun find-interface (name &optional (interfaces (net:list-network-interfaces)))
  (find name interfaces :key #'net:network-interface-name :test #'string=))

(defun interface-address-texts (interface)
  "The addresses of INTERFACE as (text prefix-length broadcast-text-or-nil)."
  (loop for a in (net:network-interface-addresses interface)
        collect (list (net:address-string (net:interface-address-address a))
                      (net:interface-address-prefix-length a)
                      (let ((b (net:interface-address-broadcast a)))
                        (and b (net:address-string b))))))

(test loopback-interface
  (let ((lo (find-interface "lo")))
    (is (not (null lo)))
    (is (= (net:interface-index "lo") (net:network-interface-index lo)))
    (is (member :loopback (net:network-interface-flags lo)))
    (is (member :up (net:network-interface-flags lo)))
    (is (not (member :broadcast (net:network-interface-flags lo))))
    (let ((v4 (find "127.0.0.1" (net:network-interface-addresses lo)
                    :key (lambda (a) (net:address-string (net:interface-address-address a)))
                    :test #'string=)))
      (is (not (null v4)))
      (is (= 8 (net:interface-address-prefix-length v4)))
      (is (net:address= "255.0.0.0" (net:interface-address-netmask v4)))
      (is (null (net:interface-address-broadcast v4)))
      (is (null (net:interface-address-destination v4))))
    (let ((v6 (find-if (lambda (a) (net:ipv6-address-p (net:interface-address-address a)))
                       (net:network-interface-addresses lo))))
      (if (null v6)
          (skip "lo has no IPv6 address here (IPv6 disabled)")
          (progn
            (is (net:address= "::1" (net:interface-address-address v6)))
            (is (= 128 (net:interface-address-prefix-length v6)))
            (is (net:address= "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
                              (net:interface-address-netmask v6))))))
    (is (search "NETWORK-INTERFACE lo" (princ-to-string lo)))))

(test interfaces-are-listed-once-each
  (let* ((all (net:list-network-interfaces))
         (names (mapcar #'net:network-interface-name all)))
    (is (= (length names) (length (remove-duplicates names :test #'string=))))
    (dolist (i all)
      (is (= (net:interface-index (net:network-interface-name i)) (net:network-interface-index i)))
      (is (string= (net:network-interface-name i) (net:interface-name (net:network-interface-index i))))
      (is (every #'keywordp (net:network-interface-flags i))))))

(test interface-names-and-indexes
  (let ((lo (net:interface-index "lo")))
    (is (string= "lo" (net:interface-name lo)))
    (is (null (net:interface-name 0)))
    (is (null (net:interface-name 999999)))
    (is (null (net:interface-index "nosuch0")))
    (signals type-error (net:interface-name -1))
    (signals type-error (net:interface-name "lo"))))

;;; A veth pair in a network namespace of our own (as root).

(defun interface-root-p ()
  (with-open-file (in "/proc/self/status")
    (loop for line = (read-line in nil)
          while line
          when (eql 0 (search "Uid:" line))
            return (eql 0 (parse-integer line :start 4 :junk-allowed t)))))

(defparameter *interface-ns-forms* "
(print (loop for i in (net:list-network-interfaces)
             collect (list (net:network-interface-name i) (net:network-interface-index i)
                           (net:network-interface-flags i)
                           (net:interface-index (net:network-interface-name i))
                           (loop for a in (net:network-interface-addresses i)
                                 collect (list (net:address-string (net:interface-address-address a))
                                               (net:interface-address-prefix-length a)
                                               (net:address-string (net:interface-address-netmask a))
                                               (let ((b (net:interface-address-broadcast a)))
                                                 (and b (net:address-string b))))))))
")

(defun interfaces-in-namespace ()
  "What *INTERFACE-NS-FORMS* prints in a new network namespace holding the
veth pair nettest0 (up, 10.99.0.1/24, 10.99.1.1/24 labelled nettest0:1, and
fd00:99::1/64) and nettest9 (down)."
  (let* ((dir (format nil "/tmp/net-if-~d-~d/" (ext:getpid) (random 1000000)))
         (out (concatenate 'string dir "out")))
    (ensure-directories-exist dir)
    (with-open-file (s (concatenate 'string dir "forms.lsp") :direction :output)
      (write-string *interface-ns-forms* s))
    (with-open-file (s (concatenate 'string dir "run.sh") :direction :output)
      (format s "set -e
ip link set lo up
ip link add nettest0 type veth peer name nettest9
ip addr add 10.99.0.1/24 brd + dev nettest0
ip addr add 10.99.1.1/24 dev nettest0 label nettest0:1
ip -6 addr add fd00:99::1/64 nodad dev nettest0
ip link set nettest0 up
~a --norc --eval '(load \"~anet.fas\")' --load ~aforms.lsp --eval '(ext:quit 0)' > ~a 2>&1
" (or (ext:getenv "ECL") "ecl") (ext:getenv "NET_BUILDDIR") dir out))
    (unwind-protect
         (progn
           (ext:run-program "sh" (list "-c" (format nil "timeout 60 unshare --net sh ~arun.sh" dir))
                            :input t :output t :error t :wait t)
           (with-open-file (s out :if-does-not-exist nil)
             (and s (let ((*read-eval* nil))
                      (loop for form = (read s nil s)
                            until (eq form s)
                            when (consp form) return form)))))
      (ext:run-program "rm" (list "-rf" dir) :input t :output t :error t :wait t))))

(test veth-interfaces-in-a-namespace
  (if (not (interface-root-p))
      (skip "listing a veth pair needs root to create a network namespace")
      (let* ((found (interfaces-in-namespace))
             (up (assoc "nettest0" found :test #'string=))
             (down (assoc "nettest9" found :test #'string=)))
        (is (= 3 (length found)) "lo and the pair, nothing of the host: ~s" found)
        (is (equal '("lo" 1) (subseq (assoc "lo" found :test #'string=) 0 2)))
        (is (member :loopback (third (assoc "lo" found :test #'string=))))
        (is (not (null up)))
        (is (not (null down)))
        (when (and up down)
          (destructuring-bind (name index flags index-by-name addresses) up
            (declare (ignore name))
            (is (= index index-by-name))
            (is (subsetp '(:up :broadcast :multicast) flags))
            (is (not (member :loopback flags)))
            (is (equal '(("10.99.0.1" 24 "255.255.255.0" "10.99.0.255")
                         ("10.99.1.1" 24 "255.255.255.0" nil)
                         ("fd00:99::1" 64 "ffff:ffff:ffff:ffff::" nil))
                       (remove-if (lambda (a) (search "fe80:" (first a))) addresses))))
          (destructuring-bind (name index flags index-by-name addresses) down
            (declare (ignore name))
            (is (= index index-by-name))
            (is (not (member :up flags)))
            (is (null addresses)))))))
