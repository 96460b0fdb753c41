;;;; http-server.lsp -- a small HTTP/1.1 server on the threaded helper, asked by curl.
;;;
;;;   ecl --shell examples/http-server.lsp
;;;
;;; Serves / (text) and /data.bin (binary octets) with persistent
;;; connections (keep-alive), then runs curl against it: two URLs on one
;;; connection, the binary body compared octet for octet.  Uses the
;;; installed module, (require :net), or the file named by NET_FAS.

(let ((fas (ext:getenv "NET_FAS")))
  (if fas (load fas) (require :net)))

(defpackage "HTTP-SERVER" (:use "CL"))
(in-package "HTTP-SERVER")

(defparameter *binary*
  (let ((v (make-array 100000 :element-type '(unsigned-byte 8))))
    (dotimes (i (length v) v) (setf (aref v i) (mod (* i 13) 251)))))

(defparameter *text*
  (map '(vector (unsigned-byte 8)) #'char-code (format nil "hello from net~%")))

(defun read-request (s)
  "The request line and headers (alist, lower-case names), or NIL at end of file."
  (let ((line (read-line s nil)))
    (when (and line (plusp (length line)))
      (values line
              (loop for h = (read-line s)
                    until (string= h "")
                    collect (let ((colon (position #\: h)))
                              (cons (string-downcase (subseq h 0 colon))
                                    (string-trim " " (subseq h (1+ colon))))))))))

(defun respond (s status type body keep-alive)
  (format s "HTTP/1.1 ~a~%Content-Type: ~a~%Content-Length: ~d~%Connection: ~:[close~;keep-alive~]~%~%"
          status type (length body) keep-alive)
  (write-sequence body s)                ; octets on the same stream as the text head
  (finish-output s))

(defun handle (s)
  "The handler: serve requests on one connection until the client closes it
or asks to (Connection: close)."
  (setf (net:socket-external-format s) '(:latin-1 :crlf))
  (loop
    (multiple-value-bind (line headers) (read-request s)
      (unless line (return))
      (let* ((path (second (split line)))
             (keep-alive (not (equalp (cdr (assoc "connection" headers :test #'string=)) "close"))))
        (cond ((string= path "/") (respond s "200 OK" "text/plain" *text* keep-alive))
              ((string= path "/data.bin")
               (respond s "200 OK" "application/octet-stream" *binary* keep-alive))
              (t (respond s "404 Not Found" "text/plain"
                          (map '(vector (unsigned-byte 8)) #'char-code "not found") keep-alive)))
        (unless keep-alive (return))))))

(defun split (line)
  (loop for start = 0 then (1+ end)
        for end = (position #\Space line :start start)
        collect (subseq line start end)
        while end))

(defun curl (&rest args)
  "Run curl with ARGS; returns its output (stdout and stderr) and exit code."
  (let ((out (format nil "/tmp/net-http-server-~d.out" (ext:getpid))))
    (let ((code (nth-value 1 (ext:run-program
                              "/bin/sh"
                              (list* "-c" (format nil "exec curl \"$@\" </dev/null >'~a' 2>&1" out)
                                     "curl" args)
                              :input t :output t :error t :wait t))))
      (values (with-open-file (in out :external-format :latin-1)
                (let ((text (make-string (file-length in))))
                  (subseq text 0 (read-sequence text in))))
              code
              (ignore-errors (delete-file out))))))

(defun count-matches (needle haystack)
  (loop with start = 0
        for p = (search needle haystack :start2 start)
        while p count t do (setf start (1+ p))))

(unless (probe-file "/usr/bin/curl")
  (format t "~&curl not found: the HTTP server example needs it; not run~%")
  (ext:quit 0))

(let* ((server (net:start-threaded-server #'handle 0 :threads 4 :timeout 10))
       (port (net:server-port server))
       (base (format nil "http://127.0.0.1:~d" port))
       (file (format nil "/tmp/net-http-server-~d.bin" (ext:getpid))))
  (unwind-protect
       (progn
         ;; Two URLs in one curl: the second reuses the connection.
         (multiple-value-bind (out code) (curl "-sv" (format nil "~a/" base) (format nil "~a/" base))
           (unless (and (zerop code) (= 2 (count-matches "hello from net" out))
                        (search "Re-using existing connection" out))
             (error "curl keep-alive failed (exit ~d):~%~a" code out))
           (format t "~&curl: two requests on one connection, both answered~%"))
         (multiple-value-bind (out code) (curl "-s" "-o" file (format nil "~a/data.bin" base))
           (declare (ignore out))
           (let ((got (with-open-file (in file :element-type '(unsigned-byte 8))
                        (let ((v (make-array (file-length in) :element-type '(unsigned-byte 8))))
                          (read-sequence v in) v))))
             (delete-file file)
             (unless (and (zerop code) (equalp got *binary*))
               (error "binary body differs (exit ~d, ~d octets)" code (length got)))
             (format t "~&curl: /data.bin, ~d octets, identical~%" (length got))))
         (multiple-value-bind (out code) (curl "-s" "-o" "/dev/null" "-w" "%{http_code}"
                                               (format nil "~a/missing" base))
           (unless (and (zerop code) (string= out "404")) (error "expected 404, got ~a" out))
           (format t "~&curl: /missing, 404~%"))
         (format t "~&~s~%" (net:server-statistics server)))
    (net:stop-server server)))
