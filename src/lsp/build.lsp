;;;; build.lsp -- compile net's Lisp with ECL's native compiler into net.fas
;;;; and the objects of libnet.a.
;;;
;;; Run by make as:
;;;   ecl --norc --eval '(defparameter cl-user::*net-build* (list ...))' --load build.lsp
;;; with the plist :srcdir :builddir :files :c-libraries :ld-flags, and
;;; optionally :cc-flags for the C compiler (make check-asan's sanitizers).

(require :cmp)

(defpackage "NET-BUILD" (:use "CL"))
(in-package "NET-BUILD")

(defvar *args* cl-user::*net-build*)
(defun arg (key) (getf *args* key))

(defun object-path (file)
  (merge-pathnames (make-pathname :name (pathname-name file) :type "o")
                   (merge-pathnames "src/lsp/net/" (arg :builddir))))

(defun compile-one (file)
  (let ((out (object-path file)))
    (ensure-directories-exist out)
    (multiple-value-bind (truename warnings-p failure-p)
        (compile-file (merge-pathnames file (arg :srcdir)) :output-file out :system-p t)
      (declare (ignore warnings-p))
      (when (or (null truename) failure-p)
        (format *error-output* "~&net: compiling ~a failed~%" file)
        (ext:quit 1))
      truename)))

(defun main ()
  ;; Every compiled file sees the glue's declarations.
  (setf c::*user-cc-flags*
        (format nil "~@[~a ~]~@[~a ~]-I~a -I~a -include netsys.h"
                c::*user-cc-flags* (arg :cc-flags)
                (namestring (merge-pathnames "src/c/net/ecl/" (arg :srcdir)))
                (namestring (merge-pathnames "src/c/net/" (arg :srcdir)))))
  (let ((objects (mapcar #'compile-one (arg :files))))
    (c:build-fasl (merge-pathnames "net.fas" (arg :builddir))
                  :lisp-files objects
                  :ld-flags (append (arg :c-libraries) (arg :ld-flags)))
    (c:build-static-library (merge-pathnames "libnet-lisp.a" (arg :builddir))
                            :lisp-files objects
                            :init-name "init_lib_NET")
    (format t "~&net: built net.fas and libnet-lisp.a from ~d files~%" (length objects))))

(handler-case (main)
  (error (e)
    (format *error-output* "~&net: build failed: ~a~%" e)
    (ext:quit 1)))
(ext:quit 0)
