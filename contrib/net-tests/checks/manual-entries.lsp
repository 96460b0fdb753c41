;;;; manual-entries.lsp -- every exported symbol of NET has exactly one
;;;; definition entry in the manual (doc/*.texi).
;;;
;;; Run by make check as
;;;   NET_FAS=build/net.fas NET_SRCDIR=src/ ecl --norc --load manual-entries.lsp
;;; An entry is a line @defun, @defmac, @deffn, @deftp, @defvr, @defvar,
;;; @defopt or one of their -x continuations naming the symbol; a setf
;;; function's entry, (setf NAME), documents the writer and is not counted.
;;; The condition classes generated from errors.def are documented by the
;;; generated table doc/errors-table.texi: a row there counts as the class's
;;; entry when no @def line names it.  Prints what is missing and what is
;;; doubled, and exits 1 if anything is.

(load (ext:getenv "NET_FAS"))

(defpackage "NET-MANUAL-CHECK" (:use "CL"))
(in-package "NET-MANUAL-CHECK")

(defparameter *srcdir* (ext:getenv "NET_SRCDIR"))

;; Commands whose first argument is a category ({Setf function}, Condition).
(defparameter *categorised* '("deffn" "deftp" "defvr"))
(defparameter *plain* '("defun" "defmac" "defvar" "defopt" "defspec"))

(defun words (line)
  "LINE split at blanks, a {braced group} kept as one word."
  (let ((out '()) (i 0) (n (length line)))
    (loop
      (loop while (and (< i n) (char= (char line i) #\Space)) do (incf i))
      (when (>= i n) (return (nreverse out)))
      (let ((end (if (char= (char line i) #\{)
                     (1+ (or (position #\} line :start i) (1- n)))
                     (or (position #\Space line :start i) n))))
        (push (subseq line i end) out)
        (setf i end)))))

(defun entry-name (line)
  "The symbol name an entry line defines, or NIL if LINE is no entry."
  (when (and (> (length line) 4) (string= "@def" line :end2 4))
    (let* ((w (words line))
           (command (string-right-trim "x" (subseq (first w) 1)))
           (name (cond ((member command *categorised* :test #'string=) (third w))
                       ((member command *plain* :test #'string=) (second w)))))
      (when (and name (not (eql 0 (search "(setf" (string-trim "{}" name)))))
        (string-downcase (string-trim "{}" name))))))

(defun table-name (line)
  "The class a row of the generated errors table documents, or NIL."
  (let ((start (search "@item @code{" line)))
    (when (eql start 0)
      (string-downcase (subseq line 12 (position #\} line :start 12))))))

(defun file-lines (path)
  (with-open-file (in path :external-format :utf-8)
    (loop for line = (read-line in nil) while line collect line)))

(defun def-entries (path table)
  "Adds to TABLE the @def entries of the Texinfo file PATH."
  (loop for line in (file-lines path)
        for n from 1
        for name = (entry-name line)
        when name
          do (push (format nil "~a.texi:~d" (pathname-name path) n) (gethash name table))))

(defun table-entries (path table)
  "Adds to TABLE the classes of the generated table PATH that have no entry."
  (loop for line in (file-lines path)
        for n from 1
        for name = (table-name line)
        when (and name (null (gethash name table)))
          do (setf (gethash name table) (list (format nil "errors-table.texi:~d" n)))))

(defun manual-entries ()
  "A hash table: symbol name -> list of \"file:line\" where it has an entry."
  (let ((table (make-hash-table :test #'equal))
        (files (directory (merge-pathnames "doc/*.texi" *srcdir*))))
    (flet ((generated-p (path) (string= (pathname-name path) "errors-table")))
      (dolist (path (remove-if #'generated-p files))
        (def-entries path table))
      (dolist (path (remove-if-not #'generated-p files) table)
        (table-entries path table)))))

(defun exported-names ()
  (let ((names '()))
    (do-external-symbols (s "NET") (push (string-downcase (symbol-name s)) names))
    (sort names #'string<)))

(defun main ()
  (let* ((entries (manual-entries))
         (exports (exported-names))
         (missing (remove-if (lambda (s) (gethash s entries)) exports))
         (doubled (remove-if-not (lambda (s) (cdr (gethash s entries))) exports)))
    (dolist (s missing)
      (format t "manual: no entry for exported symbol ~a~%" s))
    (dolist (s doubled)
      (format t "manual: ~a has ~d entries: ~{~a~^, ~}~%"
              s (length (gethash s entries)) (reverse (gethash s entries))))
    (format t "manual: ~d exported symbols, ~d missing, ~d doubled~%"
            (length exports) (length missing) (length doubled))
    (ext:quit (if (or missing doubled) 1 0))))

(main)
