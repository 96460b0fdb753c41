;;;; address-tests.lsp -- tests of address.lsp.

(in-package "NET-TESTS")

(def-suite :address :in :net)
(in-suite :address)

(test ipv4-designators-agree
  (let ((a (net:ensure-address "127.0.0.1")))
    (is (net:ipv4-address-p a))
    (is (eq :ipv4 (net:address-family a)))
    (is (equalp #(127 0 0 1) (net:address-octets a)))
    (is (net:address= a #(127 0 0 1)))
    (is (net:address= a #x7f000001))
    (is (net:address= a net:+ipv4-loopback+))
    (is (eq a (net:ensure-address a)))
    (is (equal "127.0.0.1" (net:address-string a)))
    (is (equal "#<IPV4-ADDRESS 127.0.0.1>" (prin1-to-string a)))
    (is (= 0 (net:address-scope-id a)))))

(test ipv6-designators-agree
  (let ((a (net:ensure-address "::1")))
    (is (net:ipv6-address-p a))
    (is (eq :ipv6 (net:address-family a)))
    (is (= 16 (length (net:address-octets a))))
    (is (net:address= a net:+ipv6-loopback+))
    (is (not (net:address= a (net:ensure-address 1))))   ; 1 alone is IPv4 0.0.0.1
    (is (net:address= a (net:ensure-address 1 :address-family :ipv6)))
    (is (net:address= a #(0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1)))
    (is (equal "#<IPV6-ADDRESS ::1>" (prin1-to-string a)))))

(test ipv6-zone
  (let ((a (net:ensure-address "fe80::1%lo"))
        (b (net:ensure-address "fe80::1%1"))
        (c (net:ensure-address "fe80::1")))
    (is (= 1 (net:address-scope-id a)))
    (is (net:address= a b))
    (is (not (net:address= a c)))
    (is (equal "fe80::1%1" (net:address-string a)))
    (is (= 0 (net:address-scope-id c)))))

(test ipv6-canonical-text
  (is (equal "::1" (net:address-string (net:ensure-address "0:0:0:0:0:0:0:1"))))
  (is (equal "::" (net:address-string net:+ipv6-any+)))
  (is (equal "2001:db8::1:0:0:1"
             (net:address-string (net:ensure-address "2001:0db8:0:0:1:0:0:1"))))
  (is (equal "2001:db8:0:1:1:1:1:1"
             (net:address-string (net:ensure-address "2001:db8:0:1:1:1:1:1"))))
  (is (equal "2001:db8::abcd" (net:address-string (net:ensure-address "2001:DB8::ABCD"))))
  (is (equal "::ffff:1.2.3.4" (net:address-string (net:ensure-address "::ffff:1.2.3.4")))))

(test random-addresses-round-trip
  ;; Octets -> text -> address gives the same octets, for 500 random
  ;; addresses of each family (and runs of zero groups in IPv6).
  (let ((state (make-random-state t)))
    (dotimes (i 500)
      (dolist (n '(4 16))
        (let ((v (random-octets n state)))
          (when (= n 16)
            (let ((x (* 2 (random 9 state))) (y (* 2 (random 9 state))))
              (fill v 0 :start (min x y) :end (max x y))))
          (let* ((a (net:ensure-address v))
                 (b (net:ensure-address (net:address-string a))))
            (unless (and (net:address= a b)
                         (equalp v (net:address-octets b))
                         (equal (net:address-string a) (net:address-string b)))
              (fail "~a does not round-trip" v)
              (return))))))
    (pass)))

(test integer-designators
  (is (equal "1.2.3.4" (net:address-string (net:ensure-address #x01020304))))
  (is (equal "0.0.0.0" (net:address-string (net:ensure-address 0))))
  (is (equal "255.255.255.255" (net:address-string (net:ensure-address (1- (expt 2 32))))))
  (is (equal "2001:db8::1"
             (net:address-string (net:ensure-address #x20010db8000000000000000000000001
                                                     :address-family :ipv6))))
  ;; too large for IPv4 without a family: IPv6, as nothing else can be meant
  (is (equal "::1:0:0" (net:address-string (net:ensure-address (expt 2 32)))))
  (is (equal "0:10::" (net:address-string (net:ensure-address (expt 2 100)))))
  (signals net:invalid-address (net:ensure-address (expt 2 32) :address-family :ipv4))
  (signals net:invalid-address (net:ensure-address (expt 2 128)))
  (signals net:invalid-address (net:ensure-address -1))
  (signals net:invalid-address (net:ensure-address (expt 2 128) :address-family :ipv6)))

(test address-integer-round-trips
  (is (= #x7f000001 (net:address-integer "127.0.0.1")))
  (is (= #x7f000001 (net:address-integer #(127 0 0 1))))
  (is (= 1 (net:address-integer "::1")))
  (is (= 0 (net:address-integer net:+ipv4-any+)))
  (is (= (1- (expt 2 128)) (net:address-integer "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")))
  (is (= #x20010db8000000000000000000000001 (net:address-integer "2001:db8::1%3")))
  (dolist (text '("10.0.0.1" "255.255.255.255" "2001:db8::1" "fe80::1234:5678"))
    (is (net:address= text (net:ensure-address (net:address-integer text)))))
  (is (net:address= "::1" (net:ensure-address (net:address-integer "::1") :address-family :ipv6)))
  (is (net:address= "10.0.1.0" (1+ (net:address-integer "10.0.0.255"))))
  (signals net:invalid-address (net:address-integer (net:make-local-address "/tmp/x")))
  (signals net:invalid-address (net:address-integer "not an address"))
  (signals type-error (net:address-integer :ten)))

(test ensure-address-without-errors
  (is (null (net:ensure-address "example.org" :errorp nil)))
  (is (null (net:ensure-address "1.2.3" :errorp nil)))
  (is (null (net:ensure-address "01.2.3.4" :errorp nil)))
  (is (null (net:ensure-address "" :errorp nil)))
  (is (null (net:ensure-address #(1 2 3) :errorp nil)))
  (is (null (net:ensure-address -1 :errorp nil)))
  (is (null (net:ensure-address "::1" :address-family :ipv4 :errorp nil)))
  (is (net:address= "10.0.0.1" (net:ensure-address "10.0.0.1" :errorp nil)))
  (is (net:address= "::1" (net:ensure-address "::1" :address-family :ipv6 :errorp nil)))
  ;; objects of other types are still type errors
  (signals type-error (net:ensure-address :ten :errorp nil))
  (signals type-error (net:ensure-address "::1" :address-family :ipx :errorp nil)))

(defun reason-of (designator &rest args)
  (handler-case (progn (apply #'net:ensure-address designator args) nil)
    (net:invalid-address (c) (princ-to-string c))))

(test bad-designators-signal-invalid-address
  (dolist (case '(("256.1.1.1" "greater than 255")
                  ("1.2.3" "four parts, not fewer")
                  ("1.2.3.4.5" "four parts, not more")
                  ("01.2.3.4" "leading zero")
                  ("0177.0.0.1" "more than three digits")
                  ("::1::" "more than one")
                  ("1:2:3:4:5:6:7:8:9" "more than eight groups")
                  ("[::1]" "brackets")
                  ("" "empty")
                  (" 1.2.3.4" "white space")
                  ("localhost" "resolve it with LOOKUP-HOST")
                  ("fe80::1%nosuchif0" "names no network interface")
                  ("1.2.3.4%lo" "only on IPv6")
                  (#(1 2 3) "4 or 16 elements")
                  (#(1 2 3 256) "not an octet")
                  (#(1 2 3 -1) "not an octet")
                  (#(1 2 3 x) "not an octet")))
    (destructuring-bind (designator reason) case
      (let ((report (reason-of designator)))
        (is (and report (search reason report))
            "~s: report ~s should say ~s" designator report reason)
        (is (and report (search (prin1-to-string designator) report))
            "~s: report ~s should show it" designator report))))
  (is (search "NUL" (reason-of (format nil "1.2.3.4~cjunk" (code-char 0)))))
  (is (search "non-ASCII" (reason-of (format nil "1.2.3.~c" (code-char 233)))))
  (is (search "non-ASCII" (reason-of (format nil "::~c" (code-char #x3bb)))))
  (is (search "not an IPv6" (reason-of "1.2.3.4" :address-family :ipv6)))
  (signals net:invalid-address (net:ensure-address "::1" :address-family :ipv4))
  (is (typep (nth-value 1 (ignore-errors (net:ensure-address "1.2.3"))) 'parse-error))
  (is (typep (nth-value 1 (ignore-errors (net:ensure-address "1.2.3"))) 'net:network-error)))

(test wrong-lisp-types-signal-type-error
  (signals type-error (net:ensure-address 'foo))
  (signals type-error (net:ensure-address 1.5))
  (signals type-error (net:ensure-address nil))
  (signals type-error (net:ensure-address "1.2.3.4" :address-family :ipv5))
  (signals type-error (net:make-local-address 42)))

(test predicates
  (is (net:address-loopback-p "127.0.0.1"))
  (is (net:address-loopback-p "127.255.0.9"))
  (is (net:address-loopback-p "::1"))
  (is (net:address-loopback-p "::ffff:127.0.0.1"))
  (is (not (net:address-loopback-p "128.0.0.1")))
  (is (not (net:address-loopback-p "::2")))
  (is (net:address-multicast-p "224.0.0.1"))
  (is (net:address-multicast-p "239.255.255.255"))
  (is (not (net:address-multicast-p "240.0.0.1")))
  (is (net:address-multicast-p "ff02::1"))
  (is (not (net:address-multicast-p "fe02::1")))
  (is (net:address-any-p "0.0.0.0"))
  (is (net:address-any-p "::"))
  (is (net:address-any-p net:+ipv6-any+))
  (is (not (net:address-any-p "::1")))
  (is (net:address-link-local-p "169.254.1.1"))
  (is (not (net:address-link-local-p "169.253.1.1")))
  (is (net:address-link-local-p "fe80::1"))
  (is (net:address-link-local-p "febf::1"))
  (is (not (net:address-link-local-p "fec0::1")))
  (is (net:address-v4-mapped-p "::ffff:10.0.0.1"))
  (is (not (net:address-v4-mapped-p "::fffe:10.0.0.1")))
  (is (not (net:address-v4-mapped-p "10.0.0.1")))
  (signals net:invalid-address (net:address-loopback-p (net:make-local-address "/tmp/x"))))

(test v4-v6-conversion
  (let ((m (net:ipv4-to-ipv6 "192.0.2.1")))
    (is (net:ipv6-address-p m))
    (is (equal "::ffff:192.0.2.1" (net:address-string m)))
    (is (net:address-v4-mapped-p m))
    (is (net:address= "192.0.2.1" (net:ipv6-to-ipv4 m)))
    (is (not (net:address= "192.0.2.1" m))))
  (is (net:address= "::1" (net:ipv4-to-ipv6 "::1")))
  (is (net:address= "1.2.3.4" (net:ipv6-to-ipv4 "1.2.3.4")))
  (signals net:invalid-address (net:ipv6-to-ipv4 "2001:db8::1")))

(test constants
  (is (equal "0.0.0.0" (net:address-string net:+ipv4-any+)))
  (is (equal "127.0.0.1" (net:address-string net:+ipv4-loopback+)))
  (is (equal "::" (net:address-string net:+ipv6-any+)))
  (is (equal "::1" (net:address-string net:+ipv6-loopback+))))

(test hash-keys
  (let ((table (make-hash-table :test 'equal)))
    (setf (gethash (net:address-key "127.0.0.1") table) 1)
    (setf (gethash (net:address-key #(127 0 0 1)) table) 2)
    (setf (gethash (net:address-key "::ffff:127.0.0.1") table) 3)
    (setf (gethash (net:address-key "fe80::1%1") table) 4)
    (setf (gethash (net:address-key "fe80::1") table) 5)
    (setf (gethash (net:address-key (net:make-local-address "x")) table) 6)
    (setf (gethash (net:address-key (net:make-local-address "x" :abstract t)) table) 7)
    (is (= 6 (hash-table-count table)))
    (is (= 2 (gethash (net:address-key net:+ipv4-loopback+) table)))))

(test readable-printing
  (dolist (a (list (net:ensure-address "10.1.2.3") (net:ensure-address "fe80::1%3")
                   (net:make-local-address "/tmp/sock")
                   (net:make-local-address "name" :abstract t)))
    (let* ((text (let ((*print-readably* t)) (prin1-to-string a)))
           (back (let ((*read-eval* t) (*package* (find-package "NET-TESTS")))
                   (read-from-string text))))
      (is (net:address= a back) "~a read back as ~a" text back)))
  (is (equal "#<LOCAL-ADDRESS \"/tmp/sock\">"
             (prin1-to-string (net:make-local-address "/tmp/sock"))))
  (is (equal "#<LOCAL-ADDRESS \"n\" (abstract)>"
             (prin1-to-string (net:make-local-address "n" :abstract t)))))

(test local-addresses
  (let ((a (net:make-local-address "/tmp/a.sock"))
        (b (net:make-local-address #p"/tmp/a.sock"))
        (c (net:make-local-address "/tmp/a.sock" :abstract t)))
    (is (net:local-address-p a))
    (is (eq :local (net:address-family a)))
    (is (equal "/tmp/a.sock" (net:local-address-path b)))
    (is (net:address= a b))
    (is (not (net:address= a c)))
    (is (net:local-address-abstract-p c))
    (is (equal "@/tmp/a.sock" (net:address-string c)))
    (is (net:address= a (net:ensure-address "/tmp/a.sock" :address-family :local)))
    (is (net:address= a (net:ensure-address #p"/tmp/a.sock")))
    (signals net:invalid-address (net:ensure-address a :address-family :ipv4))))

(test local-address-limits
  (is (net:local-address-p (net:make-local-address (make-string 107 :initial-element #\a))))
  (is (net:local-address-p (net:make-local-address (make-string 107 :initial-element #\a)
                                                   :abstract t)))
  (dolist (bad (list (make-string 108 :initial-element #\a)
                     ;; 54 two-octet characters: 108 octets in UTF-8
                     (make-string 54 :initial-element (code-char 233))))
    (signals net:invalid-address (net:make-local-address bad))
    (signals net:invalid-address (net:make-local-address bad :abstract t)))
  ;; A path is non-empty and NUL-free; an abstract name need be neither.
  (dolist (name (list "" (format nil "/tmp/a~cb" (code-char 0)) (string (code-char 0))))
    (signals net:invalid-address (net:make-local-address name))
    (let ((a (net:make-local-address name :abstract t)))
      (is (string= name (net:local-address-path a)))
      (is (net:address= a (read-from-string (let ((*print-readably* t)) (prin1-to-string a)))))))
  (is (search "107" (princ-to-string
                     (nth-value 1 (ignore-errors
                                   (net:make-local-address (make-string 200 :initial-element #\a))))))))
