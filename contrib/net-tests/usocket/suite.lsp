;;;; suite.lsp -- usocket's own test suite (test/ of Debian's cl-usocket) over one backend.
;;;
;;; Run by run.sh inside the network namespace it makes, never outside it:
;;; the suite looks up common-lisp.net when compiled and loaded and
;;; connects to it.  USOCKET_BACKEND is "net" (usocket over net, the
;;; net-usocket system of the build tree) or "bundled" (usocket's own ECL
;;; backend over ECL's sb-bsd-sockets, for comparison).  The suite is
;;; compiled into USOCKET_FASL_DIR, so that what it read at compile time
;;; comes from this namespace.  Prints one line per test, "PASS name" or
;;; "FAIL name", then "tests run: N".

(setf *debugger-hook*
      (lambda (condition hook)
        (declare (ignore hook))
        (format t "~&suite.lsp: unhandled error: ~a~%" condition)
        (ext:quit 2)))
(require :asdf)
(setf *compile-verbose* nil *load-verbose* nil)

(defun env (name)
  (or (ext:getenv name) (error "~a is not set" name)))

(when (string= (env "USOCKET_BACKEND") "net")
  (load (env "NET_FAS"))
  (asdf:register-immutable-system "net")
  (push (pathname (env "NET_USOCKET_DIR")) asdf:*central-registry*)
  (asdf:load-system "net-usocket")
  (unless (eq (symbol-value (find-symbol "*BACKEND*" "USOCKET")) :net)
    (error "usocket is not running over net")))

;;; The suite's compiled files go to a directory of this run.
(let ((tests (merge-pathnames "test/" (asdf:system-source-directory "usocket-test"))))
  (asdf:initialize-output-translations
   `(:output-translations
     (,(merge-pathnames "**/*.*" tests)
      ,(merge-pathnames "**/*.*" (pathname (env "USOCKET_FASL_DIR"))))
     :inherit-configuration)))

(asdf:load-system "usocket-test")

(format t "~&backend: ~a~%" (symbol-value (find-symbol "*BACKEND*" "USOCKET")))
(rt:do-tests)
(let ((entries (cdr rt::*entries*)))
  (dolist (e entries)
    (format t "~&~:[PASS~;FAIL~] ~(~a~)~%" (rt::pend e) (rt::name e)))
  (format t "~&tests run: ~d~%" (length entries)))
(finish-output)
(ext:quit 0)
