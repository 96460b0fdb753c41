;;;; special-variables.lsp -- every special variable of NET and NET-SYS used
;;;; in a file other than its definition's is special when that file compiles.
;;;
;;; Run by make check as
;;;   NET_FAS=build/net.fas NET_SRCDIR=src/ ecl --norc --load special-variables.lsp
;;; ECL's compile-file makes a DEFVAR's variable special in the rest of its
;;; own file only: another file compiled later that binds it with LET makes
;;; a lexical binding, silently, and a function it calls sees the global
;;; value.  So a variable used outside its file must be defined inside an
;;; (EVAL-WHEN (:COMPILE-TOPLEVEL ...)) or be declaimed special in each
;;; file that uses it.  Reads every src/lsp/net/*.lsp form by form (net.fas
;;; is loaded first so that the packages exist); prints each variable used
;;; where it is not known special, and exits 1 if there is any.  A use is
;;; a symbol in the source as read: one that only a macro's expansion
;;; makes is not seen (for a read of the variable, the compiler warns that
;;; it is undefined).

(load (ext:getenv "NET_FAS"))

(defpackage "NET-SPECIALS-CHECK" (:use "CL"))
(in-package "NET-SPECIALS-CHECK")

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

(defun scan (form at-compile-time defined declaimed)
  "Collect into the hash tables DEFINED (variable -> T when special at
compile time everywhere after) and DECLAIMED (variable) what FORM, a
top-level form, defines or declaims."
  (cond ((or (operator-p form "DEFVAR") (operator-p form "DEFPARAMETER"))
         (when (ours-p (second form))
           (setf (gethash (second form) defined) at-compile-time)))
        ((operator-p form "DECLAIM")
         (dolist (spec (rest form))
           (when (operator-p spec "SPECIAL")
             (dolist (v (rest spec)) (setf (gethash v declaimed) t)))))
        ((operator-p form "EVAL-WHEN")
         (dolist (sub (cddr form))
           (scan sub (or at-compile-time (compile-time-p form)) defined declaimed)))
        ((or (operator-p form "PROGN") (operator-p form "LOCALLY"))
         (dolist (sub (rest form)) (scan sub at-compile-time defined declaimed)))))

(defun symbols-in (form table)
  (cond ((symbolp form) (setf (gethash form table) t))
        ((consp form)
         (loop for tail = form then (cdr tail)
               while (consp tail)
               do (symbols-in (car tail) table)
               finally (when tail (symbols-in tail table))))))

(defun read-file (path)
  "The file's definitions, declamations and symbols: three hash tables."
  (let ((*package* (find-package "CL-USER"))
        (defined (make-hash-table)) (declaimed (make-hash-table)) (used (make-hash-table)))
    (with-open-file (in path :external-format :utf-8)
      (loop for form = (read in nil in)
            until (eq form in)
            do (when (operator-p form "IN-PACKAGE")
                 (setf *package* (find-package (second form))))
               (scan form nil defined declaimed)
               (symbols-in form used)))
    (list defined declaimed used)))

(defun main ()
  (let ((files (mapcar (lambda (p) (cons (pathname-name p) (read-file p)))
                       (directory (merge-pathnames "src/lsp/net/*.lsp" *srcdir*))))
        (bad 0) (checked 0))
    (loop for (name defined) in files
          do (maphash
              (lambda (var everywhere)
                (incf checked)
                (unless everywhere
                  (loop for (other nil declaimed used) in files
                        when (and (not (equal other name)) (gethash var used)
                                  (not (gethash var declaimed)))
                          do (incf bad)
                             (format t "specials: ~(~s~), defined in ~a.lsp without ~
EVAL-WHEN (:COMPILE-TOPLEVEL), is used in ~a.lsp, which does not declaim it special~%"
                                     var name other))))
              defined))
    (format t "specials: ~d variables, ~d used where not known special~%" checked bad)
    (ext:quit (if (plusp bad) 1 0))))

(main)
