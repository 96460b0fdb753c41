;;;; address-tests.lsp -- tests of address.lsp.

(in-package "NET-TESTS")

(def-suite :address :in :net)
(in-suite :address)

(test ipv4-designators-agree
  (let ((a (net:ensure-address "127.0.0.1")))
    (is (net:ipv4-address-p a))
    (is (equalp #(127 0 0 1) (net:address-octets a)))
    (is (net:address= a #(127 0 0 1)))
    (is (net:address= a #x7f000001))
    (is (net:address= a net:+ipv4-loopback+))
    (is (equal "127.0.0.1" (net:address-string a)))
    (is (equal "#<IPV4-ADDRESS 127.0.0.1>" (prin1-to-string a)))))

(test ipv6-canonical-text
  (is (equal "::1" (net:address-string (net:ensure-address "0:0:0:0:0:0:0:1"))))
  (is (equal "::" (net:address-string net:+ipv6-any+)))
  (is (equal "2001:db8::1:0:0:1"
             (net:address-string (net:ensure-address "2001:0db8:0:0:1:0:0:1"))))
  (is (equal "2001:db8:0:1:1:1:1:1"
             (net:address-string (net:ensure-address "2001:db8:0:1:1:1:1:1"))))
  (is (equal "::ffff:1.2.3.4" (net:address-string (net:ensure-address "::ffff:1.2.3.4")))))

(test bad-designators-signal-invalid-address
  (dolist (bad '("256.1.1.1" "1.2.3" "1.2.3.4.5" "01.2.3.4" "::1::" "[::1]"
                 "1:2:3:4:5:6:7:8:9" "" #(1 2 3) #(1 2 3 256)))
    (signals net:invalid-address (net:ensure-address bad)))
  (signals net:invalid-address (net:ensure-address (format nil "1.2.3.4~cjunk" (code-char 0))))
  (signals type-error (net:ensure-address 'foo)))
