;;;; http-tests.lsp -- Hunchentoot over net (net-hunchentoot): its
;;;; threaded acceptor serves curl and Drakma, on IPv4 and IPv6, over HTTP
;;;; and HTTPS; Drakma fetches from python3's http.server too.
;;;;
;;;; Prints "HTTP: N passed, N failed".

(load (merge-pathnames "util.lsp" *load-truename*))
(in-package "NET-WEB-TESTS")

(dolist (program '("/usr/bin/openssl" "/usr/bin/curl"))
  (unless (probe-file program) (skip "HTTP" (format nil "~a is not installed" program))))
(unless (zerop (nth-value 1 (shell "command -v python3")))
  (skip "HTTP" "python3 is not installed"))
(load-system "net-hunchentoot")
(load-system "drakma")

(multiple-value-bind (cert key) (make-certificate "server")
  (defparameter *cert* cert)
  (defparameter *key* key))

(defparameter *big* (pattern (* 1024 1024)))
(defparameter *chunks* (loop for i below 50 collect (format nil "chunk ~d of a body sent in pieces~%" i)))

;;; The handlers

(hunchentoot:define-easy-handler (hello :uri "/hello") ()
  (setf (hunchentoot:content-type*) "text/plain")
  (format nil "hello from Hunchentoot over net~%"))

(hunchentoot:define-easy-handler (big :uri "/big") ()
  (setf (hunchentoot:content-type*) "application/octet-stream")
  *big*)

(hunchentoot:define-easy-handler (chunked :uri "/chunked") ()
  ;; No Content-Length: to an HTTP/1.1 client, Hunchentoot chunks the body.
  (setf (hunchentoot:content-type*) "text/plain")
  (let ((out (hunchentoot:send-headers)))
    (dolist (c *chunks*)
      (write-sequence (octets c) out)
      (finish-output out))
    nil))

(hunchentoot:define-easy-handler (upload :uri "/upload") ()
  ;; The request body (chunked or not), answered with its length and a sum.
  (setf (hunchentoot:content-type*) "text/plain")
  (let ((body (hunchentoot:raw-post-data :force-binary t)))
    (format nil "~d ~d" (length body) (reduce #'+ body))))

(hunchentoot:define-easy-handler (peer :uri "/peer") ()
  ;; What the connection is made of, seen from the handler.
  (setf (hunchentoot:content-type*) "text/plain")
  (format nil "~a" (hunchentoot:remote-addr*)))

(defun start-acceptor (class address &rest args)
  (let ((a (apply #'make-instance class :address address :port 0
                  :access-log-destination nil :message-log-destination nil args)))
    (hunchentoot:start a)
    a))

(defun acceptor-port (acceptor)
  (usocket:get-local-port (hunchentoot::acceptor-listen-socket acceptor)))

(defun curl (&rest args)
  (apply #'shell "exec curl -sS --max-time 30 \"$@\"" args))

(defun file-of (octets)
  (let ((path (concatenate 'string *dir* "upload.bin")))
    (with-open-file (out path :direction :output :element-type '(unsigned-byte 8)
                              :if-exists :supersede)
      (write-sequence octets out))
    path))

(defun drakma (url &rest args)
  (apply #'drakma:http-request url args))

;;; Over plain HTTP, IPv4 and IPv6

(check "usocket runs on net" (eq usocket::*backend* :net))

(dolist (address '("127.0.0.1" "::1"))
  (let* ((acceptor (start-acceptor 'hunchentoot:easy-acceptor address))
         (port (acceptor-port acceptor))
         (host (if (find #\: address) (format nil "[~a]" address) address))
         (base (format nil "http://~a:~d" host port))
         (tag (format nil "Hunchentoot on ~a" address)))
    (unwind-protect
         (progn
           (check (format nil "~a: its listener is a net socket" tag)
                  (typep (usocket:socket (hunchentoot::acceptor-listen-socket acceptor))
                         'net:passive-socket))
           ;; curl
           (multiple-value-bind (out code) (curl "-g" "-v" (format nil "~a/hello" base)
                                                 (format nil "~a/hello" base))
             (check (format nil "~a: curl, two requests on one connection (keep-alive)" tag)
                    (and (zerop code) (= 2 (count-matches "hello from Hunchentoot over net" out))
                         (search "Re-using existing connection" out))))
           (multiple-value-bind (out code) (curl "-g" "-v" (format nil "~a/chunked" base))
             (check (format nil "~a: curl, a chunked body" tag)
                    (and (zerop code) (search "Transfer-Encoding: chunked" out)
                         (search (apply #'concatenate 'string *chunks*) out))))
           (let ((file (concatenate 'string *dir* "big.out")))
             (multiple-value-bind (out code) (curl "-g" "-o" file (format nil "~a/big" base))
               (declare (ignore out))
               (check (format nil "~a: curl, 1 MiB binary body octet for octet" tag)
                      (and (zerop code) (equalp (file-octets file) *big*)))))
           (multiple-value-bind (out code)
               (curl "-g" "-H" "Transfer-Encoding: chunked" "--data-binary"
                     (format nil "@~a" (file-of (subseq *big* 0 300000)))
                     (format nil "~a/upload" base))
             (check (format nil "~a: curl, a chunked 300,000-octet upload" tag)
                    (and (zerop code)
                         (string= out (format nil "300000 ~d" (reduce #'+ (subseq *big* 0 300000)))))))
           ;; Drakma
           (check (format nil "~a: Drakma, a text body" tag)
                  (multiple-value-bind (body status) (drakma (format nil "~a/hello" base))
                    (and (eql status 200) (equal body (format nil "hello from Hunchentoot over net~%")))))
           (check (format nil "~a: Drakma, keep-alive: a second request on the same stream" tag)
                  (multiple-value-bind (body status headers uri stream must-close)
                      (drakma (format nil "~a/hello" base) :close nil)
                    (declare (ignore headers uri))
                    (unwind-protect
                         (multiple-value-bind (body2 status2 headers2 uri2 stream2)
                             (drakma (format nil "~a/big" base) :stream stream :close nil)
                           (declare (ignore headers2 uri2))
                           (and (eql status 200) (eql status2 200) (not must-close)
                                (stringp body) (eq stream stream2) (equalp body2 *big*)))
                      (when stream (close stream)))))
           (check (format nil "~a: Drakma, a chunked body" tag)
                  (multiple-value-bind (body status headers) (drakma (format nil "~a/chunked" base))
                    (and (eql status 200)
                         (string-equal (cdr (assoc :transfer-encoding headers)) "chunked")
                         (equal body (apply #'concatenate 'string *chunks*)))))
           (check (format nil "~a: Drakma, a 200,000-octet POST body" tag)
                  (multiple-value-bind (body status)
                      (drakma (format nil "~a/upload" base) :method :post
                                                            :content (subseq *big* 0 200000)
                                                            :content-type "application/octet-stream")
                    (and (eql status 200)
                         (equal body (format nil "200000 ~d" (reduce #'+ (subseq *big* 0 200000)))))))
           (check (format nil "~a: the peer's address as Hunchentoot sees it" tag)
                  (equal (drakma (format nil "~a/peer" base)) address)))
      (hunchentoot:stop acceptor))))

;;; net's thread pool as Hunchentoot's taskmaster

(let* ((taskmaster (make-instance 'net-hunchentoot:pool-taskmaster :threads 2))
       (acceptor (start-acceptor 'hunchentoot:easy-acceptor "127.0.0.1" :taskmaster taskmaster))
       (base (format nil "http://127.0.0.1:~d" (acceptor-port acceptor))))
  (unwind-protect
       (progn
         (check "pool taskmaster: 8 curl at once, one connection each, all answered"
                (multiple-value-bind (out code)
                    (shell (format nil "for i in 1 2 3 4 5 6 7 8; do curl -sS --max-time 20 ~a/hello & done; wait"
                                   base))
                  (and (zerop code) (= 8 (count-matches "hello from Hunchentoot over net" out)))))
         (check "pool taskmaster: Drakma, keep-alive and a 1 MiB body"
                (multiple-value-bind (body status headers uri stream)
                    (drakma (format nil "~a/hello" base) :close nil)
                  (declare (ignore headers uri))
                  (unwind-protect
                       (and (eql status 200) (stringp body)
                            (equalp (drakma (format nil "~a/big" base) :stream stream) *big*))
                    (when stream (close stream)))))
         (check "pool taskmaster: the connections served by at most 2 threads of net's pool"
                (let ((stats (net:server-statistics (hunchentoot::pool-taskmaster-server taskmaster))))
                  (and (>= (getf stats :accepted) 9) (<= (getf stats :threads) 2)
                       (zerop (getf stats :errors))))))
    (hunchentoot:stop acceptor))
  (check "pool taskmaster: stopped, its listener closed"
         (null (hunchentoot::pool-taskmaster-server taskmaster))))

;;; Over HTTPS: Hunchentoot's SSL acceptor (cl+ssl on net's descriptors)

(let* ((acceptor (start-acceptor 'hunchentoot:easy-ssl-acceptor "127.0.0.1"
                                 :ssl-certificate-file *cert* :ssl-privatekey-file *key*))
       (base (format nil "https://localhost:~d" (acceptor-port acceptor))))
  (unwind-protect
       (progn
         (multiple-value-bind (out code) (curl "--cacert" *cert* "-v" (format nil "~a/hello" base)
                                               (format nil "~a/hello" base))
           (check "HTTPS: curl --cacert, two requests on one connection"
                  (and (zerop code) (= 2 (count-matches "hello from Hunchentoot over net" out))
                       (search "Re-using existing connection" out))))
         (let ((file (concatenate 'string *dir* "big-tls.out")))
           (multiple-value-bind (out code) (curl "--cacert" *cert* "-o" file (format nil "~a/big" base))
             (declare (ignore out))
             (check "HTTPS: curl, 1 MiB binary body octet for octet"
                    (and (zerop code) (equalp (file-octets file) *big*)))))
         (check "HTTPS: Drakma, the server verified, 1 MiB body octet for octet"
                (multiple-value-bind (body status)
                    (drakma (format nil "~a/big" base) :verify :required :ca-file *cert*)
                  (and (eql status 200) (equalp body *big*))))
         (check "HTTPS: Drakma, a chunked body"
                (multiple-value-bind (body status)
                    (drakma (format nil "~a/chunked" base) :verify :required :ca-file *cert*)
                  (and (eql status 200) (equal body (apply #'concatenate 'string *chunks*)))))
         (check-signals "HTTPS: Drakma refuses a server its CA did not sign"
                        cl+ssl::ssl-error-verify
                        (drakma (format nil "~a/hello" base) :verify :required
                                :ca-file (make-certificate "other" :cn "other.invalid"))))
    (hunchentoot:stop acceptor)))

;;; Drakma bounded by net's WITH-DEADLINE (Drakma 2.0.8 takes no
;;; :CONNECTION-TIMEOUT on ECL)

(net:with-listener (silent 0)           ; accepts (in the backlog), never answers
  (check-signals "Drakma: WITH-DEADLINE bounds a request to a silent server"
                 (or net:socket-timeout usocket:timeout-error)
                 (net:with-deadline (0.5)
                   (drakma (format nil "http://127.0.0.1:~d/" (net:socket-local-port silent))))))

;;; Drakma against python3's http.server

(let* ((port (free-port))
       (text (format nil "served by python~%"))
       (pid (progn
              (with-open-file (out (concatenate 'string *dir* "python.txt") :direction :output
                                                                             :if-exists :supersede)
                (write-string text out))
              (file-of *big*)           ; upload.bin: 1 MiB
              (start-process "python.out"
                             (format nil "exec python3 -m http.server --bind 127.0.0.1 --directory '~a' ~d"
                                     *dir* port)))))
  (check "python3 -m http.server started" (wait-for-port port))
  (let ((base (format nil "http://127.0.0.1:~d" port)))
    (check "Drakma from python3 http.server: a text file"
           (multiple-value-bind (body status) (drakma (format nil "~a/python.txt" base))
             (and (eql status 200) (equal body text))))
    (check "Drakma from python3 http.server: 1 MiB binary file octet for octet"
           (multiple-value-bind (body status) (drakma (format nil "~a/upload.bin" base))
             (and (eql status 200) (equalp body *big*))))
    (check "Drakma from python3 http.server: 404"
           (eql 404 (nth-value 1 (drakma (format nil "~a/missing" base))))))
  (stop-process pid))

(finish "HTTP")
