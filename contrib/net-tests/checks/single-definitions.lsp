;;;; single-definitions.lsp -- every function, macro, generic function and
;;;; primitive of NET and NET-SYS is defined in exactly one place.
;;;
;;; Run by make check as
;;;   NET_FAS=build/net.fas NET_SRCDIR=src/ ecl --norc --load single-definitions.lsp
;;; Reads every src/lsp/net/*.lsp form by form (net.fas is loaded first so
;;; that the packages exist) and collects the names of defun, defmacro,
;;; defgeneric and define-primitive forms, (setf NAME) included, at top level
;;; or inside progn, eval-when, let, flet, macrolet and the like.  Methods
;;; are not definitions.  Prints each name defined twice with where, and
;;; exits 1 if there is any.

(load (ext:getenv "NET_FAS"))

(defpackage "NET-DEFINITIONS-CHECK" (:use "CL"))
(in-package "NET-DEFINITIONS-CHECK")

(defparameter *srcdir* (ext:getenv "NET_SRCDIR"))

(defparameter *definers* '("DEFUN" "DEFMACRO" "DEFGENERIC" "DEFINE-PRIMITIVE"))
(defparameter *wrappers* '("PROGN" "EVAL-WHEN" "LOCALLY" "LET" "LET*" "FLET" "LABELS"
                           "MACROLET" "SYMBOL-MACROLET"))

(defun operator-in-p (form names)
  (and (consp form) (symbolp (car form))
       (member (symbol-name (car form)) names :test #'string=)))

(defun ours-p (name)
  "True when NAME, a symbol or (setf symbol), belongs to NET or NET-SYS."
  (let ((s (if (consp name) (second name) name)))
    (and (symbolp s)
         (member (package-name (symbol-package s)) '("NET" "NET-SYS") :test #'string=))))

(defun definitions (form)
  "The names FORM defines, looking inside wrapping forms."
  (cond ((operator-in-p form *definers*)
         (let ((name (second form)))
           (when (ours-p name) (list name))))
        ((operator-in-p form *wrappers*)
         (loop for sub in (cddr form) when (consp sub) append (definitions sub)))
        (t '())))

(defun file-definitions (path)
  "A list of (name . \"file:form-number\") for the file PATH."
  (let ((*package* (find-package "CL-USER"))
        (out '()))
    (with-open-file (in path :external-format :utf-8)
      (loop for n from 1
            for form = (read in nil in)
            until (eq form in)
            do (when (operator-in-p form '("IN-PACKAGE"))
                 (setf *package* (find-package (second form))))
               (dolist (name (definitions form))
                 (push (cons name (format nil "~a.lsp, top-level form ~d"
                                          (pathname-name path) n))
                       out))))
    out))

(defun main ()
  (let ((table (make-hash-table :test #'equal))
        (doubled '()))
    (dolist (path (directory (merge-pathnames "src/lsp/net/*.lsp" *srcdir*)))
      (loop for (name . where) in (file-definitions path)
            do (push where (gethash name table))))
    (maphash (lambda (name places)
               (when (cdr places) (push (cons name places) doubled)))
             table)
    (loop for (name . places) in doubled
          do (format t "definitions: ~(~s~) is defined ~d times: ~{~a~^; ~}~%"
                     name (length places) (reverse places)))
    (format t "definitions: ~d names, ~d defined more than once~%"
            (hash-table-count table) (length doubled))
    (ext:quit (if doubled 1 0))))

(main)
