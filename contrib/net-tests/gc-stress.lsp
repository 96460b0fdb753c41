;;;; gc-stress.lsp -- make gc-stress: the event loop, stream, codec and
;;;; message suites while another thread makes the collector run a full
;;;; collection every millisecond, so that a Lisp object held only from C
;;;; memory (which ECL's collector does not scan: a write-queue buffer, a
;;;; watcher's callback, a handle) is freed under the code still using it,
;;;; and the suites fail or crash.  Prints "gc-stress: N checks, F failing,
;;;; C collections" and exits 0 or 1.  NET_BUILDDIR and NET_TESTDIR name
;;;; the build tree and the Lisp tests.

(setf *debugger-hook*
      (lambda (condition hook)
        (declare (ignore hook))
        (format *error-output* "~&gc-stress.lsp: unhandled error: ~a~%" condition)
        (ext:quit 2)))
(require :asdf)
(setf *compile-verbose* nil *load-verbose* nil)
(let ((*standard-output* (make-broadcast-stream)))
  (asdf:load-system :fiveam))
(load (merge-pathnames "net.fas" (ext:getenv "NET_BUILDDIR")))
(let ((tests (ext:getenv "NET_TESTDIR")))
  (dolist (f '("package" "codec-tests" "stream-tests" "loop-tests" "message-tests"))
    (load (merge-pathnames (concatenate 'string f ".lsp") tests))))

(in-package "NET-TESTS")

(defvar *collections* 0)
(defvar *stress* t)

(let* ((collector (mp:process-run-function
                   "gc stress"
                   (lambda ()
                     (loop while *stress*
                           do (si:gc t)
                              (incf *collections*)
                              (sleep 0.001)))))
       (results (unwind-protect
                     (let ((fiveam:*test-dribble* *standard-output*))
                       (loop for suite in '(:codec :stream :loop :message)
                             append (fiveam:run suite)))
                  (setf *stress* nil)
                  (mp:process-join collector)))
       (passed (count-if (lambda (r) (typep r 'fiveam::test-passed)) results))
       (skipped (count-if (lambda (r) (typep r 'fiveam::test-skipped)) results))
       (failed (- (length results) passed skipped)))
  (fiveam:explain! results)
  (format t "~&gc-stress: ~d checks, ~d failing, ~d collections~%" passed failed *collections*)
  (finish-output)
  (ext:quit (if (and (zerop failed) (> *collections* 100)) 0 1)))
