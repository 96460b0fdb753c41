;;;; hunchentoot.lsp -- Hunchentoot, the web server, running on net (net-hunchentoot).
;;;
;;;   ecl --shell examples/hunchentoot.lsp
;;;
;;; Hunchentoot's easy acceptor (a thread per connection) serves /hello,
;;; made by a handler, and /static.bin, a 1 MiB file under its document
;;; root; curl then asks for both, twice on one connection, and the file is
;;; compared octet for octet.  Hunchentoot goes through usocket (net-usocket
;;; runs it on net's sockets) and cl+ssl for HTTPS (net-ssl).
;;;
;;; With HUNCHENTOOT_PORT set it serves that port (0: any; it prints
;;; port=N) until killed, for bench/hunchentoot.sh, and with
;;; HUNCHENTOOT_BACKEND=bundled it leaves usocket on ECL's bundled sockets,
;;; for comparison; HUNCHENTOOT_TASKMASTER=pool serves with net's thread
;;; pool (net-hunchentoot:pool-taskmaster) instead of a thread per
;;; connection.  Uses the installed systems, or with NET_FAS set (the
;;; build tree's net.fas) those of the source tree.

(require :asdf)
(defparameter cl-user::*bundled* (equal (ext:getenv "HUNCHENTOOT_BACKEND") "bundled"))
(let ((fas (ext:getenv "NET_FAS")))
  (when (and fas (not cl-user::*bundled*))
    (load fas)
    (dolist (system '("net-usocket" "net-ssl" "net-hunchentoot"))
      (push (make-pathname :directory (append (butlast (pathname-directory *load-truename*))
                                              (list "src" "lsp" system))
                           :name nil :type nil :defaults *load-truename*)
            asdf:*central-registry*))))
(let ((*standard-output* (make-broadcast-stream)))
  (asdf:load-system (if cl-user::*bundled* "hunchentoot" "net-hunchentoot")))

(defpackage "HUNCHENTOOT-EXAMPLE" (:use "CL"))
(in-package "HUNCHENTOOT-EXAMPLE")

(defparameter *root* (format nil "/tmp/net-hunchentoot-example-~d/" (ext:getpid))
  "The acceptor's document root.")

(defparameter *static*
  (let ((v (make-array (* 1024 1024) :element-type '(unsigned-byte 8))))
    (dotimes (i (length v) v) (setf (aref v i) (mod (* i 7) 251)))))

(hunchentoot:define-easy-handler (hello :uri "/hello") ()
  (setf (hunchentoot:content-type*) "text/plain")
  "hello from Hunchentoot")

(defclass acceptor (hunchentoot:easy-acceptor) ()
  (:documentation "The easy acceptor, with TCP_NODELAY on each connection:
Hunchentoot sends a reply's head and body in two writes, and with Nagle's
algorithm the second waits for the client's delayed ACK (40 ms)."))

(defmethod hunchentoot:process-connection :before ((acceptor acceptor) socket)
  (setf (usocket:socket-option socket :tcp-no-delay) t))

(defun start (port)
  (ensure-directories-exist *root*)
  (with-open-file (out (concatenate 'string *root* "static.bin") :direction :output
                                                                 :element-type '(unsigned-byte 8)
                                                                 :if-exists :supersede)
    (write-sequence *static* out))
  (hunchentoot:start (apply #'make-instance 'acceptor
                            :address "127.0.0.1" :port port :document-root *root*
                            :access-log-destination nil
                            (and (equal (ext:getenv "HUNCHENTOOT_TASKMASTER") "pool")
                                 (list :taskmaster
                                       (make-instance (find-symbol "POOL-TASKMASTER" "NET-HUNCHENTOOT")))))))

(defun sh (command)
  "Run COMMAND with /bin/sh; its output (a string) and exit code."
  (let ((out (format nil "/tmp/net-hunchentoot-example-~d.out" (ext:getpid))))
    (let ((code (nth-value 1 (ext:run-program "/bin/sh"
                                              (list "-c" (format nil "exec >'~a' 2>&1 </dev/null; ~a" out command))
                                              :input t :output t :error t :wait t))))
      (values (prog1 (with-open-file (in out :external-format :latin-1)
                       (let ((s (make-string (file-length in)))) (subseq s 0 (read-sequence s in))))
                (delete-file out))
              code))))

(let ((bench-port (ext:getenv "HUNCHENTOOT_PORT")))
  (when bench-port
    (let ((acceptor (start (parse-integer bench-port))))
      (format t "port=~d~%" (usocket:get-local-port (hunchentoot::acceptor-listen-socket acceptor)))
      (finish-output)
      (loop (sleep 60)))))

(unless (probe-file "/usr/bin/curl")
  (format t "~&curl is needed by this example; not run~%")
  (ext:quit 0))

(let* ((acceptor (start 0))
       (base (format nil "http://127.0.0.1:~d"
                     (usocket:get-local-port (hunchentoot::acceptor-listen-socket acceptor))))
       (copy (concatenate 'string *root* "copy.bin")))
  (unwind-protect
       (progn
         (multiple-value-bind (out code)
             (sh (format nil "exec curl -sS -v --max-time 20 ~a/hello ~:*~a/hello" base))
           (unless (and (zerop code) (= 2 (loop with start = 0
                                                for p = (search "hello from Hunchentoot" out :start2 start)
                                                while p count t do (setf start (1+ p))))
                        (search "Re-using existing connection" out))
             (error "curl /hello (exit ~d):~%~a" code out))
           (format t "~&curl: /hello twice on one connection~%"))
         (multiple-value-bind (out code)
             (sh (format nil "exec curl -sS --max-time 20 -o '~a' ~a/static.bin" copy base))
           (let ((got (with-open-file (in copy :element-type '(unsigned-byte 8) :if-does-not-exist nil)
                        (and in (let ((v (make-array (file-length in) :element-type '(unsigned-byte 8))))
                                  (read-sequence v in) v)))))
             (unless (and (zerop code) (equalp got *static*))
               (error "curl /static.bin (exit ~d): ~a" code out))
             (format t "~&curl: /static.bin, ~d octets, identical~%" (length got))))
         (format t "~&the listener: ~a~%" (usocket:socket (hunchentoot::acceptor-listen-socket acceptor))))
    (hunchentoot:stop acceptor)
    (sh (format nil "rm -rf '~a'" *root*))))
