;;;; inline-functions.lsp -- no function of NET or NET-SYS declaimed inline
;;;; with DECLAIM is called from a file other than its definition's.
;;;
;;; Run by make check as
;;;   NET_FAS=build/net.fas NET_SRCDIR=src/ ecl --norc --load inline-functions.lsp
;;; ECL's compile-file inlines a function declaimed inline in the rest of
;;; its own file only: another file compiled later calls it as any global
;;; function, through its symbol (ecl_function_dispatch and the callee's
;;; own entry, about 60 instructions), silently.  A function that must be
;;; inline in later files too is defined with NET-SYS:%DEFUN-INLINE, whose
;;; compiler macro every later file sees, or declaimed and defined inside
;;; an (EVAL-WHEN (:COMPILE-TOPLEVEL ...)).  Reads every src/lsp/net/*.lsp
;;; form by form (net.fas is loaded first so that the packages exist);
;;; prints each call of a DECLAIM-inline function outside its file, and
;;; exits 1 if there is any.  A call is a form whose operator is the
;;; function's symbol in the source as read: one that only a macro's
;;; expansion makes is not seen.

(load (ext:getenv "NET_FAS"))

(defpackage "NET-INLINE-CHECK" (:use "CL"))
(in-package "NET-INLINE-CHECK")

(defparameter *srcdir* (ext:getenv "NET_SRCDIR"))

(defun operator-p (form name)
  (and (consp form) (symbolp (car form)) (string= (symbol-name (car form)) name)))

(defun ours-p (s)
  (and (symbolp s) (symbol-package s)
       (member (package-name (symbol-package s)) '("NET" "NET-SYS") :test #'string=)))

(defun compile-time-p (eval-when-form)
  (some (lambda (s) (and (symbolp s) (member (symbol-name s) '("COMPILE-TOPLEVEL" "COMPILE")
                                             :test #'string=)))
        (second eval-when-form)))

(defun scan (form at-compile-time declaimed)
  "Collect into the hash table DECLAIMED the functions of NET and NET-SYS
that FORM, a top-level form, declaims inline in its file only: not inside
an EVAL-WHEN (:COMPILE-TOPLEVEL), which defines the function, and so its
inline expansion, for the files compiled after too."
  (cond ((operator-p form "DECLAIM")
         (unless at-compile-time
           (dolist (spec (rest form))
             (when (operator-p spec "INLINE")
               (dolist (f (rest spec))
                 (when (ours-p f) (setf (gethash f declaimed) t)))))))
        ((operator-p form "EVAL-WHEN")
         (dolist (sub (cddr form))
           (scan sub (or at-compile-time (compile-time-p form)) declaimed)))
        ((or (operator-p form "PROGN") (operator-p form "LOCALLY"))
         (dolist (sub (rest form)) (scan sub at-compile-time declaimed)))))

(defun calls-in (form table)
  "Note in TABLE every symbol in operator position within FORM."
  (when (consp form)
    (when (symbolp (car form))
      (setf (gethash (car form) table) t))
    (loop for tail = form then (cdr tail)
          while (consp tail)
          do (calls-in (car tail) table))))

(defun read-file (path)
  "The file's inline declamations and the operators of its forms: two hash tables."
  (let ((*package* (find-package "CL-USER"))
        (declaimed (make-hash-table)) (called (make-hash-table)))
    (with-open-file (in path :external-format :utf-8)
      (loop for form = (read in nil in)
            until (eq form in)
            do (when (operator-p form "IN-PACKAGE")
                 (setf *package* (find-package (second form))))
               (scan form nil declaimed)
               (calls-in form called)))
    (list declaimed called)))

(defun main ()
  (let ((files (mapcar (lambda (p) (cons (pathname-name p) (read-file p)))
                       (directory (merge-pathnames "src/lsp/net/*.lsp" *srcdir*))))
        (bad 0) (checked 0))
    (loop for (name declaimed) in files
          do (maphash
              (lambda (f value)
                (declare (ignore value))
                (incf checked)
                (loop for (other nil called) in files
                      when (and (not (equal other name)) (gethash f called))
                        do (incf bad)
                           (format t "inline: ~(~s~), declaimed inline in ~a.lsp, is called ~
in ~a.lsp, where ECL does not inline it: define it with NET-SYS:%DEFUN-INLINE~%"
                                   f name other)))
              declaimed))
    (format t "inline: ~d functions declaimed inline, ~d called where not inlined~%"
            checked bad)
    (ext:quit (if (plusp bad) 1 0))))

(main)
