;;;; http.lsp -- an HTTP/1.1 server and client on one bivalent stream each.
;;;
;;;   ecl --norc --load examples/http.lsp --eval '(ext:quit 0)'
;;;
;;; The server reads the request head as CRLF text, then sends a text head
;;; and a binary body on the same stream; the client does the reverse.  Uses
;;; the installed module, or the file named by NET_FAS.

(let ((fas (ext:getenv "NET_FAS")))
  (if fas (load fas) (require :net)))

(defpackage "HTTP-DEMO" (:use "CL"))
(in-package "HTTP-DEMO")

(defparameter *body*
  (map '(vector (unsigned-byte 8)) #'char-code "<h1>hello from net</h1>"))

(defun read-head (stream)
  "The lines of an HTTP head, up to the empty line."
  (loop for line = (read-line stream)
        until (string= line "")
        collect line))

(defun serve-one (listener)
  (let ((conn (net:accept-connection listener :timeout 5)))
    (unwind-protect
         (let ((request (first (read-head conn))))
           (format conn "HTTP/1.1 200 OK~%Content-Type: text/html~%Content-Length: ~d~%~
                         Connection: close~%X-Request: ~a~%~%"
                   (length *body*) request)
           (write-sequence *body* conn)
           (finish-output conn))
      (net:close conn))))

(defun http-get (host port path)
  "GET PATH from HOST:PORT; returns the status line, the head lines and the body octets."
  (net:with-open-socket (s :address-family (net:address-family (net:ensure-address host))
                           :timeout 5 :external-format '(:latin-1 :crlf))
    (net:connect s host :port port)
    (format s "GET ~a HTTP/1.1~%Host: ~a~%Connection: close~%~%" path host)
    (finish-output s)
    (let* ((head (read-head s))
           (length (loop for line in head
                         when (and (> (length line) 15)
                                   (string-equal "Content-Length:" line :end2 15))
                           return (parse-integer line :start 15)))
           (body (make-array length :element-type '(unsigned-byte 8))))
      (read-sequence body s)
      (values (first head) (rest head) body))))

(let* ((listener (net:listen-on (net:bind-address
                                 (net:make-socket :external-format '(:latin-1 :crlf))
                                 "127.0.0.1")))
       (port (net:socket-local-port listener))
       (server (mp:process-run-function "http" #'serve-one listener)))
  (unwind-protect
       (multiple-value-bind (status head body) (http-get "127.0.0.1" port "/index.html")
         (mp:process-join server)
         (format t "~&http: ~a~%~{http:   ~a~%~}http: body ~s~%"
                 status head (map 'string #'code-char body))
         (unless (and (string= status "HTTP/1.1 200 OK")
                      (member "X-Request: GET /index.html HTTP/1.1" head :test #'string=)
                      (equalp body *body*))
           (error "unexpected reply ~s ~s" status head)))
    (net:close listener)))
