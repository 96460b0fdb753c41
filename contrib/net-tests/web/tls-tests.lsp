;;;; tls-tests.lsp -- cl+ssl over net (the net-ssl system): a client of
;;;; openssl s_server, a server curl talks to, timeouts, STARTTLS.
;;;;
;;;; Certificates are made here with openssl req.  Prints "TLS: N passed,
;;;; N failed".

(load (merge-pathnames "util.lsp" *load-truename*))
(in-package "NET-WEB-TESTS")

(unless (probe-file "/usr/bin/openssl") (skip "TLS" "openssl is not installed (Debian openssl)"))
(unless (probe-file "/usr/bin/curl") (skip "TLS" "curl is not installed (Debian curl)"))
(load-system "net-ssl")

(multiple-value-bind (cert key) (make-certificate "server")
  (defparameter *cert* cert)
  (defparameter *key* key))
(defparameter *other-cert* (make-certificate "other" :cn "other.invalid")
  "A certificate that signed nothing of the server's.")

(defparameter *big* (pattern (* 1024 1024)))

(defun fd-path-p (tls socket)
  "True if OpenSSL reads and writes SOCKET's descriptor itself under TLS."
  (eql (cl+ssl::ssl-get-fd (cl+ssl::ssl-stream-handle tls)) (net:socket-fd socket)))

(defun tls-client (port &key (host "127.0.0.1") (ca *cert*) (hostname "localhost") (timeout 10))
  "A TLS stream to HOST, PORT over a net socket, the server verified against
CA for HOSTNAME; second value the socket."
  (let ((s (net:connect-to host port :timeout timeout)))
    (setf (net:socket-timeout-of s) timeout)
    (handler-bind ((error (lambda (e) (declare (ignore e)) (close s :abort t))))
      (values (cl+ssl:with-global-context ((cl+ssl:make-context :verify-location ca)
                                           :auto-free-p t)
                (cl+ssl:make-ssl-client-stream s :hostname hostname :verify :required))
              s))))

(defun write-line-crlf (line stream)
  (write-sequence (octets (format nil "~a~c~c" line #\Return #\Newline)) stream))

(defun read-line-crlf (stream)
  "A line of octets read from STREAM as Latin-1, without CR LF; NIL at end of file."
  (let ((out (make-string-output-stream)))
    (loop for b = (read-byte stream nil)
          do (cond ((null b) (return (let ((s (get-output-stream-string out)))
                                       (and (plusp (length s)) s))))
                   ((= b 10) (return (string-right-trim '(#\Return) (get-output-stream-string out))))
                   (t (write-char (code-char b) out))))))

(defun read-head (stream)
  "The status line and the Content-Length of an HTTP response head."
  (let ((status (read-line-crlf stream)) (length nil))
    (loop for line = (read-line-crlf stream)
          until (or (null line) (string= line ""))
          do (when (string-equal "content-length:" line :end2 (min 15 (length line)))
               (setf length (parse-integer line :start 15))))
    (values status length)))

(defun read-body (stream length)
  (let ((v (make-array length :element-type '(unsigned-byte 8))))
    (values v (read-sequence v stream))))

;;; 1. A client of openssl s_server, which serves the files of *DIR* (-WWW).

(with-open-file (out (concatenate 'string *dir* "big.bin") :direction :output
                     :element-type '(unsigned-byte 8) :if-exists :supersede)
  (write-sequence *big* out))

(let* ((port (free-port))
       (pid (start-process "s_server.out"
                           (format nil "cd '~a' && exec openssl s_server -accept 127.0.0.1:~d -cert '~a' -key '~a' -WWW"
                                   *dir* port *cert* *key*))))
  (check "openssl s_server started" (wait-for-port port))
  (check "client: handshake with the server verified (CA and host name), on the socket's descriptor"
         (multiple-value-bind (tls s) (tls-client port)
           (unwind-protect (fd-path-p tls s) (close tls))))
  (check "client: a 1 MiB file from s_server, octet for octet"
         (multiple-value-bind (tls s) (tls-client port)
           (declare (ignore s))
           (unwind-protect
                (progn
                  (write-line-crlf "GET /big.bin HTTP/1.0" tls)
                  (write-line-crlf "" tls)
                  (finish-output tls)
                  (let ((status (read-line-crlf tls)))
                    (loop for line = (read-line-crlf tls) until (or (null line) (string= line "")))
                    (multiple-value-bind (body n) (read-body tls (length *big*))
                      (and (search "200" status) (= n (length *big*)) (equalp body *big*)
                           (null (read-byte tls nil))))))
             (close tls))))
  (check-signals "client: a server certificate the CA did not sign is refused"
                 cl+ssl::ssl-error-verify
                 (close (tls-client port :ca *other-cert*)))
  (check-signals "client: a certificate for another host name is refused"
                 error
                 (close (tls-client port :hostname "other.invalid")))
  (stop-process pid)
  (check "s_server stopped" (not (process-alive-p pid))))

;;; 2. A server: net's threaded helper, TLS on each connection; curl asks.

(defvar *fd-path* '() "For each connection served, whether the fd path was taken.")
(defvar *server-errors* '() "The conditions the servers' handlers signalled.")

(defun serve (socket)
  (let ((tls (cl+ssl:make-ssl-server-stream socket :certificate *cert* :key *key*)))
    (push (fd-path-p tls socket) *fd-path*)
    (unwind-protect
         (loop
           (let ((request (read-line-crlf tls)) (close-p nil))
             (unless request (return))
             (loop for line = (read-line-crlf tls)
                   until (or (null line) (string= line ""))
                   do (when (string-equal line "connection: close") (setf close-p t)))
             (let ((body (if (search "/big" request) *big* (octets (format nil "hello over TLS~%")))))
               (write-line-crlf "HTTP/1.1 200 OK" tls)
               (write-line-crlf (format nil "Content-Length: ~d" (length body)) tls)
               (write-line-crlf "" tls)
               (write-sequence body tls)
               (finish-output tls))
             (when close-p (return))))
      (close tls))))

(defun curl (&rest args)
  (apply #'shell "exec curl -sS --max-time 20 \"$@\"" args))

(dolist (family '(:ipv4 :ipv6))
  (let* ((server (net:start-threaded-server
                 #'serve 0 :threads 4 :timeout 10 :address-family family
                           :on-error (lambda (c socket)
                                       (declare (ignore socket))
                                       (push c *server-errors*))))
         (port (net:server-port server))
         (base (format nil "https://~a:~d" (if (eq family :ipv4) "localhost" "[::1]") port))
         (file (concatenate 'string *dir* "curl.bin")))
    (unwind-protect
         (progn
           (setf *fd-path* '() *server-errors* '())
           (multiple-value-bind (out code) (curl "--cacert" *cert* (format nil "~a/" base)
                                                 (format nil "~a/" base) "-v")
             (check (format nil "server (~(~a~)): curl --cacert, two requests on one connection" family)
                    (and (zerop code)
                         (= 2 (count-matches "hello over TLS" out))
                         (search "Re-using existing connection" out))))
           (multiple-value-bind (out code) (curl "--cacert" *cert* "-o" file (format nil "~a/big" base))
             (check (format nil "server (~(~a~)): 1 MiB body to curl, octet for octet" family)
                    (and (zerop code) (equalp (file-octets file) *big*))))
           (check (format nil "server (~(~a~)): OpenSSL on the connections' descriptors" family)
                  (and *fd-path* (every #'identity *fd-path*)))
           (multiple-value-bind (out code) (shell "exec curl -sS --max-time 20 \"$1\"" (format nil "~a/" base))
             (declare (ignore out))
             (check (format nil "server (~(~a~)): curl without the CA refuses the certificate" family)
                    (and (= code 60)
                         (wait-for (lambda () (some (lambda (c) (typep c 'cl+ssl::ssl-error))
                                                    *server-errors*))
                                   :seconds 10)))))
      (net:stop-server server))))

;;; 3. Waiting goes through net: the socket's timeout and WITH-DEADLINE.

(net:with-listener (silent 0)           ; accepts (in the backlog), never answers
  (let ((port (net:socket-local-port silent)))
    (check-signals "handshake with a silent peer: SOCKET-TIMEOUT after the socket's timeout"
                   net:socket-timeout
                   (tls-client port :timeout 0.3))
    (check-signals "handshake with a silent peer: SOCKET-TIMEOUT at WITH-DEADLINE"
                   net:socket-timeout
                   (let ((s (net:connect-to "127.0.0.1" port :timeout 5)))
                     (unwind-protect
                          (net:with-deadline (0.3)
                            (cl+ssl:make-ssl-client-stream s :verify nil))
                       (close s :abort t))))))

;;; 4. STARTTLS: TLS on a connection that began in plain text; input the
;;; stream buffered before TLS starts is never lost silently.

(defun starttls-exchange (wait-for-hello)
  "A plain line, then TLS on the same connection, Lisp to Lisp.  Without
WAIT-FOR-HELLO the client starts TLS once the server said GO; with it the
client starts at once and the server reads the line only once the
client's TLS hello has arrived too, so that its stream buffers the hello.
Returns the line the server read under TLS and whether it took the
descriptor path."
  (net:with-listener (l 0)
    (let* ((port (net:socket-local-port l))
           (client (mp:process-run-function
                    "starttls client"
                    (lambda ()
                      (ignore-errors
                       (let ((s (net:connect-to "127.0.0.1" port :timeout 10)))
                         (setf (net:socket-timeout-of s) 10)
                         (write-line-crlf "STARTTLS" s)
                         (finish-output s)
                         ;; The protocol: wait for the server's go-ahead.
                         ;; Starting at once sends the hello behind the line.
                         (unless wait-for-hello
                           (assert (equal (read-line-crlf s) "GO")))
                         (let ((tls (cl+ssl:make-ssl-client-stream s :verify nil)))
                           (write-line-crlf "secret line" tls)
                           (finish-output tls)
                           (read-line-crlf tls)
                           (close tls)))))))
           (s (net:accept-connection l :timeout 10)))
      (setf (net:socket-timeout-of s) 10)
      (unwind-protect
           (progn
             (when wait-for-hello       ; "STARTTLS\r\n" is 10 octets; the hello follows
               (let ((peek (make-array 64 :element-type '(unsigned-byte 8))))
                 (wait-for (lambda () (> (net:receive s peek :peek t) 20)) :seconds 10)))
             (let ((line (read-line-crlf s)))
               (assert (string= line "STARTTLS")))
             (unless wait-for-hello
               (write-line-crlf "GO" s)
               (finish-output s))
             (let* ((tls (cl+ssl:make-ssl-server-stream s :certificate *cert* :key *key*))
                    (fd-p (fd-path-p tls s))
                    (line (read-line-crlf tls)))
               (write-line-crlf "bye" tls)
               (finish-output tls)
               (close tls)
               (values line fd-p)))
        (close s)
        (mp:process-join client)))))

(multiple-value-bind (line fd-p) (starttls-exchange nil)
  (check "STARTTLS, nothing buffered: the descriptor path, the line read"
         (and fd-p (equal line "secret line"))))
(check-signals "STARTTLS, the hello already buffered by the stream: INPUT-BUFFERED"
               net-ssl:input-buffered
               (starttls-exchange t))

(finish "TLS")
