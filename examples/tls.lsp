;;;; tls.lsp -- TLS with cl+ssl over net's sockets (net-ssl): a server and its clients.
;;;
;;;   ecl --shell examples/tls.lsp
;;;
;;; Makes a self-signed certificate for localhost with openssl req, serves
;;; TLS on net's threaded helper (each connection wrapped by
;;; cl+ssl:make-ssl-server-stream), then talks to it twice: from Lisp, with
;;; cl+ssl:make-ssl-client-stream over net:connect-to, verifying the server
;;; against that certificate; and with curl --cacert.  OpenSSL reads and
;;; writes the sockets' descriptors itself; net does the waiting.  Uses the
;;; installed systems, or with NET_FAS set (the build tree's net.fas) the
;;; net-ssl system of the source tree.

(require :asdf)
(let ((fas (ext:getenv "NET_FAS")))
  (when fas
    (load fas)
    (push (make-pathname :directory (append (butlast (pathname-directory *load-truename*))
                                            '("src" "lsp" "net-ssl"))
                         :name nil :type nil :defaults *load-truename*)
          asdf:*central-registry*)))
(let ((*standard-output* (make-broadcast-stream)))
  (asdf:load-system "net-ssl"))

(defpackage "TLS-EXAMPLE" (:use "CL"))
(in-package "TLS-EXAMPLE")

(defparameter *dir* (format nil "/tmp/net-tls-example-~d/" (ext:getpid)))

(defun sh (command)
  "Run COMMAND with /bin/sh; its output and exit code."
  (let ((out (format nil "/tmp/net-tls-example-~d.out" (ext:getpid))))
    (let ((code (nth-value 1 (ext:run-program "/bin/sh"
                                              (list "-c" (format nil "exec >'~a' 2>&1 </dev/null; ~a" out command))
                                              :input t :output t :error t :wait t))))
      (values (prog1 (with-open-file (in out) (let ((s (make-string (file-length in))))
                                                (subseq s 0 (read-sequence s in))))
                (delete-file out))
              code))))

(defun make-certificate ()
  "A self-signed certificate for localhost and 127.0.0.1, and its key."
  (ensure-directories-exist *dir*)
  (let ((cert (concatenate 'string *dir* "cert.pem"))
        (key (concatenate 'string *dir* "key.pem")))
    (multiple-value-bind (out code)
        (sh (format nil "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout '~a' -out '~a'" key cert))
      (unless (zerop code) (error "openssl req: ~a" out)))
    (values cert key)))

(defun crlf (line stream)
  "LINE and an end of line, CR LF by the stream's external format."
  (write-line line stream))

(defun serve (socket cert key)
  "One connection: TLS, then an HTTP/1.0 answer to one request."
  (let ((tls (cl+ssl:make-ssl-server-stream socket :certificate cert :key key
                                                   :external-format '(:latin-1 :eol-style :crlf))))
    (unwind-protect
         (progn
           (loop for line = (read-line tls nil) until (or (null line) (string= line "")))
           (crlf "HTTP/1.0 200 OK" tls)
           (crlf "Content-Type: text/plain" tls)
           (crlf "" tls)
           (write-line "hello over TLS, from net" tls)
           (finish-output tls))
      (close tls))))

(unless (and (probe-file "/usr/bin/openssl") (probe-file "/usr/bin/curl"))
  (format t "~&openssl and curl are needed by this example; not run~%")
  (ext:quit 0))

(multiple-value-bind (cert key) (make-certificate)
  (let* ((server (net:start-threaded-server (lambda (s) (serve s cert key)) 0 :threads 2 :timeout 10))
         (port (net:server-port server)))
    (unwind-protect
         (progn
           ;; A Lisp client: the server's certificate verified for localhost.
           (let ((socket (net:connect-to "localhost" port :timeout 10)))
             (setf (net:socket-timeout-of socket) 10)
             (let ((tls (cl+ssl:with-global-context ((cl+ssl:make-context :verify-location cert)
                                                     :auto-free-p t)
                          (cl+ssl:make-ssl-client-stream socket :hostname "localhost" :verify :required
                                                                :external-format '(:latin-1 :eol-style :crlf)))))
               (unwind-protect
                    (progn
                      (crlf "GET / HTTP/1.0" tls)
                      (crlf "" tls)
                      (finish-output tls)
                      (let ((status (read-line tls)))
                        (loop for line = (read-line tls nil) until (or (null line) (string= line "")))
                        (let ((body (read-line tls)))
                          (unless (and (search "200" status) (string= body "hello over TLS, from net"))
                            (error "unexpected answer: ~s ~s" status body))
                          (format t "~&Lisp client: ~a / ~a~%" status body))))
                 (close tls))))
           ;; curl, trusting only our certificate.
           (multiple-value-bind (out code)
               (sh (format nil "exec curl -sS --max-time 20 --cacert '~a' https://localhost:~d/" cert port))
             (unless (and (zerop code) (search "hello over TLS, from net" out))
               (error "curl failed (exit ~d): ~a" code out))
             (format t "~&curl --cacert: ~a" out)))
      (net:stop-server server)
      (sh (format nil "rm -rf '~a'" *dir*)))))
