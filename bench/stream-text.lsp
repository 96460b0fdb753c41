;;;; stream-text.lsp -- nanoseconds per character of the text paths of a
;;;; socket stream: WRITE-STRING and READ-LINE on ASCII and non-ASCII lines,
;;;; WRITE-CHAR and READ-CHAR one at a time, in UTF-8.
;;;
;;; Run by bench/run-bench.sh (make bench).  A writer thread pumps while the
;;; main thread reads; each line reports the time per character.

(require :net (ext:getenv "NET_FAS"))

(defpackage "NET-BENCH-TEXT" (:use "CL"))
(in-package "NET-BENCH-TEXT")

(defparameter *chars* (* 16 1024 1024))

(defun tcp-pair ()
  (let ((l (net:make-socket)))
    (net:bind-address l "127.0.0.1")
    (net:listen-on l)
    (let ((c (net:make-socket)))
      (net:connect c "127.0.0.1" :port (net:socket-local-port l))
      (let ((s (net:accept-connection l)))
        (net:close l)
        (values c s)))))

(defun run-case (name line by-char)
  (multiple-value-bind (c s) (tcp-pair)
    (let* ((lines (floor *chars* (1+ (length line))))
           (t0 (get-internal-real-time))
           (writer (mp:process-run-function
                    "writer"
                    (lambda ()
                      (dotimes (i lines)
                        (if by-char
                            (progn (loop for ch across line do (write-char ch c))
                                   (write-char #\Newline c))
                            (progn (write-string line c) (terpri c))))
                      (finish-output c)
                      (net:shutdown c :output))))
           (n 0))
      (if by-char
          (loop for ch = (read-char s nil nil) while ch do (incf n))
          (loop for l = (read-line s nil nil) while l do (incf n (1+ (length l)))))
      (mp:process-join writer)
      (let ((secs (/ (- (get-internal-real-time) t0) internal-time-units-per-second 1.0)))
        (net:close c) (net:close s)
        (format t "~&stream-text: ~22a ~6,1f ns per character (~d characters)~%"
                name (/ (* secs 1e9) n) n)))))

(dolist (f '(tcp-pair run-case)) (compile f))

(run-case "write-string/read-line" (make-string 70 :initial-element #\a) nil)
(run-case "same, non-ASCII" (coerce (loop repeat 35 collect #\a collect (code-char 233)) 'string) nil)
(run-case "write-char/read-char" (make-string 70 :initial-element #\a) t)
(run-case "same, non-ASCII" (coerce (loop repeat 35 collect #\a collect (code-char 955)) 'string) t)
