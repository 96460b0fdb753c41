;;;; conditions-tests.lsp -- tests of conditions.lsp.

(in-package "NET-TESTS")

(def-suite :conditions :in :net)
(in-suite :conditions)

(test tree-shape
  (is (subtypep 'net:socket-error 'net:network-error))
  (is (subtypep 'net:connection-refused 'net:socket-error))
  (is (subtypep 'net:too-many-open-files 'net:resource-exhausted))
  (is (subtypep 'net:socket-timeout 'net:network-error))
  (is (subtypep 'net:socket-closed 'net:socket-error))
  (is (subtypep 'net:invalid-address 'parse-error))
  (is (subtypep 'net:invalid-address 'net:network-error))
  (is (subtypep 'net:resolver-error 'net:network-error))
  (is (not (subtypep 'net:resolver-error 'net:socket-error)))
  (dolist (c '(net:host-not-found net:resolver-again net:resolver-failure
               net:unknown-service net:unknown-protocol))
    (is (subtypep c 'net:resolver-error) "~a" c)))

(test every-table-row-has-a-class
  ;; The C side's copy of errors.def and the classes agree row for row.
  (let ((table (net-sys:init)))
    (is (> (length table) 40))
    (loop for (code . class) in table
          for sym = (find-symbol (string-upcase class) "NET")
          do (is (not (null sym)) "no symbol for ~a" class)
             (is (eq :external (nth-value 1 (find-symbol (string-upcase class) "NET"))))
             (is (subtypep sym 'net:network-error) "~a is no network-error" class)
             (is (documentation sym 'type) "~a has no documentation" class)
             (is (typep (nth-value 1 (ignore-errors (net-sys::%signal-error code "test" nil))) sym)
                 "code ~d does not signal ~a" code class))))

(test every-report-is-readable
  ;; Each condition, signalled as the C glue does, and made bare, has a
  ;; report that prints without error and says something.
  (loop for (code . class) in (net-sys:init)
        for sym = (find-symbol (string-upcase class) "NET")
        for c = (nth-value 1 (ignore-errors (net-sys::%signal-error code "somecall" "thing")))
        do (let ((report (princ-to-string c)))
             (is (search "somecall" report) "~a: ~s" class report)
             (is (search "thing" report) "~a: ~s" class report)
             (is (> (length report) 20)))
           (is (plusp (length (princ-to-string (make-condition sym)))) "bare ~a" class))
  (dolist (sym '(net:network-error net:socket-error net:resolver-error
                 net:invalid-address net:resource-exhausted))
    (is (plusp (length (princ-to-string (make-condition sym)))) "bare ~a" sym)))

(test report-names-call-and-reason
  ;; -111 is -ECONNREFUSED on Linux.
  (let ((c (nth-value 1 (ignore-errors (net-sys::%signal-error -111 "connect" nil)))))
    (is (typep c 'net:connection-refused))
    (is (= 111 (net:socket-error-errno c)))
    (is (equal "connect" (net:socket-error-syscall c)))
    (is (search "connect" (princ-to-string c)))
    (is (search "refused" (princ-to-string c)))))

(test module-is-linked-with-libuv
  (is (eql 0 (search "1." (net-sys:libuv-version)))))
(test resolver-errors-carry-the-gai-message
  (loop for (code class message) in '((-3002 net:host-not-found "Name or service not known")
                                      (-3003 net:resolver-again "Temporary failure in name resolution")
                                      (-3004 net:resolver-failure "Non-recoverable failure in name resolution")
                                      (-3005 net:host-not-found "No address associated with hostname")
                                      (-3100 net:unknown-service "unknown service")
                                      (-3101 net:unknown-protocol "unknown protocol"))
        for c = (nth-value 1 (ignore-errors (net-sys::%signal-error code "getaddrinfo" "example.test")))
        do (is (typep c class))
           (is (eql code (net:resolver-error-code c)))
           (is (equal "example.test" (net:resolver-error-name c)))
           (is (equal "getaddrinfo" (net:resolver-error-operation c)))
           (is (equal message (net:resolver-error-message c)))
           (is (equal (format nil "getaddrinfo of \"example.test\" failed: ~a" message)
                      (princ-to-string c)))))

(test invalid-address-report
  (let ((c (make-condition 'net:invalid-address :text "1.2.3" :reason "too short")))
    (is (equal "Invalid address \"1.2.3\": too short" (princ-to-string c)))
    (is (equal "1.2.3" (net:invalid-address-text c)))
    (is (equal "too short" (net:invalid-address-reason c)))))

(test signalled-conditions-are-fresh-and-complete
  ;; %SIGNAL-ERROR makes its conditions by copying one per class: each is
  ;; a new object of the row's class with its own slots, and the copied
  ;; prototype keeps none of them.
  (flet ((signalled (code call socket)
           (nth-value 1 (ignore-errors (net-sys::%signal-error code call socket)))))
    (let* ((refused (car (rassoc "connection-refused" (net-sys:init) :test #'string-equal)))
           (a (signalled refused "connect" "first"))
           (b (signalled refused "sendto" "second"))
           (unknown (signalled -2999 "frob" nil)))
      (is (typep a 'net:connection-refused))
      (is (not (eq a b)))
      (is (equal '("connect" "first") (list (net:socket-error-syscall a) (net:socket-error-socket a))))
      (is (equal '("sendto" "second") (list (net:socket-error-syscall b) (net:socket-error-socket b))))
      (is (eql (net:socket-error-errno a) (net:socket-error-errno b)))
      (is (stringp (net:socket-error-message a)))
      (is (search "connect on first" (princ-to-string a)))
      ;; A code errors.def does not name: a plain SOCKET-ERROR.
      (is (eq 'net:socket-error (type-of unknown)))
      (is (equal "frob" (net:socket-error-syscall unknown)))
      (is (null (net:socket-error-socket (signalled refused nil nil))))
      (is (null (net:socket-error-syscall (make-condition 'net:connection-refused)))))))
