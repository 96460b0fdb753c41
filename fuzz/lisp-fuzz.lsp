;;;; lisp-fuzz.lsp -- make fuzz's Lisp targets: the randomized differential
;;;; runs of the test suites (the stream decoder, the event loop's
;;;; dispatch), for a time instead of a count, from a fresh seed.
;;;; NET_BUILDDIR and NET_TESTDIR name the build tree and the Lisp tests.

(setf *debugger-hook*
      (lambda (condition hook)
        (declare (ignore hook))
        (format *error-output* "~&lisp-fuzz.lsp: unhandled error: ~a~%" condition)
        (ext:quit 2)))
(require :asdf)
(setf *compile-verbose* nil *load-verbose* nil)
(let ((*standard-output* (make-broadcast-stream)))
  (asdf:load-system :fiveam))
(load (merge-pathnames "net.fas" (ext:getenv "NET_BUILDDIR")))
(let ((tests (ext:getenv "NET_TESTDIR")))
  (load (merge-pathnames "package.lsp" tests))
  (load (merge-pathnames "codec-tests.lsp" tests))
  (load (merge-pathnames "loop-tests.lsp" tests)))

(in-package "NET-TESTS")

(defun fuzz-main (target seconds)
  "Run TARGET (:CODEC or :LOOP) for SECONDS from a fresh seed; print the
seed, the count of cases and the first failures; exit 0 or 1."
  (let ((seed (random (expt 2 31) (make-random-state t))))
    (multiple-value-bind (failures run)
        (ecase target
          (:codec (codec-fuzz :seed seed :seconds seconds))
          (:loop (loop-fuzz :seed seed :seconds seconds)))
      (format t "~&~(~a~): ~d cases from seed ~d, ~d failing~%" target run seed (length failures))
      (loop for f in failures repeat 3 do (format t "~s~%" f))
      (finish-output)
      (ext:quit (if failures 1 0)))))
