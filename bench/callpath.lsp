;;;; callpath.lsp -- what one call from compiled Lisp into net's C costs, by path.
;;;
;;; The paths: FFI:C-INLINE of the C function straight into the caller (what
;;; NET-SYS's compiler macros expand to); a call of a cfun registered with
;;; ecl_def_c_function; FUNCALL of the Lisp function wrapping the C-INLINE;
;;; and, for scale, a generic function with one method.  Each is timed over
;;; N calls in a compiled loop, the empty loop subtracted; the median of
;;; several runs is printed in nanoseconds per call.

(in-package "CL-USER")

;;; The target: a C function that returns its argument, defined here rather
;;; than in the product.
(ffi:clines "static cl_object bench_noop(cl_object x) { return x; }")

(defmacro inline-noop (x)
  "The C-INLINE call NET-SYS's compiler macros expand to."
  `(ffi:c-inline (,x) (:object) :object "bench_noop(#0)" :one-liner t))

(defun bench-noop (x)
  "The Lisp function wrapping the C-INLINE, as each NET-SYS primitive is."
  (inline-noop x))

(ffi:c-inline () () :void
  "ecl_def_c_function(ecl_make_symbol(\"%BENCH-CFUN\", \"CL-USER\"), (cl_objectfn_fixed) bench_noop, 1)"
  :one-liner t)

(defgeneric bench-gf (x))
(defmethod bench-gf ((x fixnum)) x)

(defparameter *n* 20000000)
(defparameter *runs* 7)

(defmacro timed-loop (form)
  `(lambda (n x)
     (declare (fixnum n) (optimize (speed 3) (safety 0)))
     (let ((acc nil))
       (dotimes (i n) (setf acc ,form))
       acc)))

(defparameter *cases*
  (list (cons "empty loop" (timed-loop x))
        (cons "ffi:c-inline (NET-SYS compiler macro)" (timed-loop (inline-noop x)))
        (cons "cfun from ecl_def_c_function" (timed-loop (%bench-cfun x)))
        (cons "funcall of the NET-SYS function" (timed-loop (funcall 'bench-noop x)))
        (cons "generic function, one method" (timed-loop (bench-gf x)))))

(defun ns-per-call (fn)
  (let ((t0 (net-sys:now)))
    (funcall fn *n* 1)
    (/ (- (net-sys:now) t0) (float *n* 1d0))))

(defun median (list)
  (let ((s (sort (copy-list list) #'<)))
    (nth (floor (length s) 2) s)))

(defun run-callpath ()
  (let* ((times (loop for (name . fn) in *cases*
                      collect (cons name (median (loop repeat *runs* collect (ns-per-call fn))))))
         (empty (cdr (first times))))
    (format t "~&call path from compiled Lisp (median of ~d runs of ~:d calls)~%" *runs* *n*)
    (loop for (name . ns) in (rest times)
          do (format t "  ~40a ~6,2f ns/call~%" name (max 0 (- ns empty))))
    (format t "  ~40a ~6,2f ns/iteration~%" "(empty loop itself)" empty)))

(run-callpath)
