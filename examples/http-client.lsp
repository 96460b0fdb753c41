;;;; http-client.lsp -- an HTTP/1.1 client by connect-to, against python3 -m http.server.
;;;
;;;   ecl --shell examples/http-client.lsp
;;;
;;; Starts python3's http.server on a free loopback port, serving a
;;; temporary directory with one text file and one binary file, fetches both
;;; through (net:connect-to "localhost" port) and checks them.  Uses the
;;; installed module, (require :net), or the file named by NET_FAS.

(let ((fas (ext:getenv "NET_FAS")))
  (if fas (load fas) (require :net)))

(defpackage "HTTP-CLIENT" (:use "CL"))
(in-package "HTTP-CLIENT")

(defun http-get (host port path)
  "GET PATH from HOST:PORT: the status code, the headers (an alist of
lower-case names) and the body octets."
  (net:with-connection (s host port :timeout 5 :external-format '(:latin-1 :crlf))
    (setf (net:socket-timeout-of s) 5)
    (format s "GET ~a HTTP/1.1~%Host: ~a:~d~%Connection: close~%~%" path host port)
    (finish-output s)
    (let* ((status (read-line s))
           (headers (loop for line = (read-line s)
                          until (string= line "")
                          collect (let ((colon (position #\: line)))
                                    (cons (string-downcase (subseq line 0 colon))
                                          (string-trim " " (subseq line (1+ colon)))))))
           (length (parse-integer (cdr (assoc "content-length" headers :test #'string=))))
           (body (make-array length :element-type '(unsigned-byte 8))))
      ;; The head was text; the body is read as octets from the same stream.
      (unless (= length (read-sequence body s))
        (error "short body"))
      (values (parse-integer status :start 9 :end 12) headers body))))

(defun free-port ()
  (net:with-listener (l 0) (net:socket-local-port l)))

(defun start-python (directory port)
  "python3 -m http.server on 127.0.0.1:PORT serving DIRECTORY; the process."
  (nth-value 2 (ext:run-program
                "/bin/sh"
                (list "-c" (format nil "exec python3 -m http.server --bind 127.0.0.1 ~d --directory '~a' </dev/null >/dev/null 2>&1"
                                   port directory))
                :input t :output t :error t :wait nil)))

(defun wait-until-listening (port)
  (loop repeat 100
        do (handler-case (progn (close (net:connect-to "127.0.0.1" port :timeout 1))
                                (return t))
             (net:connection-failed () (sleep 0.1)))
        finally (error "http.server did not start on port ~d" port)))

(let* ((dir (format nil "/tmp/net-http-client-~d/" (ext:getpid)))
       (binary (let ((v (make-array 70000 :element-type '(unsigned-byte 8))))
                 (dotimes (i (length v) v) (setf (aref v i) (mod (* i 7) 256)))))
       (port (free-port))
       (python nil))
  (ensure-directories-exist dir)
  (with-open-file (o (merge-pathnames "hello.txt" dir) :direction :output :if-exists :supersede)
    (write-string "hello from python's http.server" o))
  (with-open-file (o (merge-pathnames "data.bin" dir) :direction :output :if-exists :supersede
                                                      :element-type '(unsigned-byte 8))
    (write-sequence binary o))
  (unwind-protect
       (progn
         (setf python (start-python dir port))
         (wait-until-listening port)
         (multiple-value-bind (status headers body) (http-get "localhost" port "/hello.txt")
           (format t "~&GET /hello.txt: ~d, ~a, ~s~%" status
                   (cdr (assoc "content-type" headers :test #'string=))
                   (map 'string #'code-char body))
           (unless (and (= status 200) (string= (map 'string #'code-char body)
                                                 "hello from python's http.server"))
             (error "unexpected answer")))
         (multiple-value-bind (status headers body) (http-get "localhost" port "/data.bin")
           (declare (ignore headers))
           (format t "~&GET /data.bin: ~d, ~d octets, ~:[different~;identical~]~%"
                   status (length body) (equalp body binary))
           (unless (and (= status 200) (equalp body binary))
             (error "binary body differs")))
         (multiple-value-bind (status) (http-get "localhost" port "/missing")
           (format t "~&GET /missing: ~d~%" status)
           (unless (= status 404) (error "expected 404"))))
    (when python
      (ext:terminate-process python)
      (ext:external-process-wait python))
    (ignore-errors (delete-file (merge-pathnames "hello.txt" dir)))
    (ignore-errors (delete-file (merge-pathnames "data.bin" dir)))
    (ignore-errors (si::rmdir dir))))
