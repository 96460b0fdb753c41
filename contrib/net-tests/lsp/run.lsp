;;;; run.lsp -- load net from the build tree and run every FiveAM suite.
;;; Prints "lisp suites: N checks, F failing, S skipped" and exits 0 or 1.

(setf *debugger-hook*
      (lambda (condition hook)
        (declare (ignore hook))
        (format *error-output* "~&run.lsp: unhandled error: ~a~%" condition)
        (ext:quit 2)))
(require :asdf)
(setf *compile-verbose* nil *load-verbose* nil)
(let ((*standard-output* (make-broadcast-stream)))
  (asdf:load-system :fiveam))

(defvar *builddir* (ext:getenv "NET_BUILDDIR"))
(defvar *testdir* (ext:getenv "NET_TESTDIR"))
(load (merge-pathnames "net.fas" *builddir*))

;;; package.lsp first, then every F-tests.lsp in name order.
(load (merge-pathnames "package.lsp" *testdir*))
(dolist (f (sort (directory (merge-pathnames "*-tests.lsp" *testdir*))
                 #'string< :key #'namestring))
  (load f))

(in-package "NET-TESTS")

(let* ((sockets-before (socket-fd-count))
       (results (let ((fiveam:*test-dribble* *standard-output*))
                  (fiveam:run :net)))
       (passed (count-if (lambda (r) (typep r 'fiveam::test-passed)) results))
       (skipped (remove-if-not (lambda (r) (typep r 'fiveam::test-skipped)) results))
       (failed (- (length results) passed (length skipped)))
       ;; No socket descriptor may outlive the suite.
       (leaked (- (socket-fd-count) sockets-before)))
  (fiveam:explain! results)
  (if (plusp leaked)
      (progn (format t "~&FAILED: ~d socket descriptor~:p leaked across the suite~%" leaked)
             (incf failed))
      (progn (format t "~&no socket descriptor leaked across the suite (~d before and after)~%"
                     sockets-before)
             (incf passed)))
  (dolist (s skipped)
    (format t "~&SKIPPED ~a: ~a~%" (fiveam::name (fiveam::test-case s))
            (fiveam::reason s)))
  (format t "~&lisp suites: ~d checks, ~d failing, ~d skipped~%" passed failed (length skipped))
  (finish-output)
  (ext:quit (if (zerop failed) 0 1)))
