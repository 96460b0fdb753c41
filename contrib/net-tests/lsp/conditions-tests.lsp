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
  (is (subtypep 'net:invalid-address 'parse-error)))

(test every-table-row-has-a-class
  ;; The C side's copy of errors.def and the classes agree row for row.
  (let ((table (net-sys:init)))
    (is (> (length table) 30))
    (loop for (code . class) in table
          for sym = (find-symbol (string-upcase class) "NET")
          do (is (not (null sym)) "no symbol for ~a" class)
             (is (subtypep sym 'net:network-error) "~a is no network-error" class)
             (is (typep (nth-value 1 (ignore-errors (net-sys::%signal-error code "test" nil))) sym)
                 "code ~d does not signal ~a" code class))))

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
