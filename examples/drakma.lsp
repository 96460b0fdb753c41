;;;; drakma.lsp -- Drakma, the HTTP client, running on net (net-usocket).
;;;
;;;   ecl --shell examples/drakma.lsp
;;;
;;; Starts python3's http.server on loopback over a directory of its own and
;;; fetches from it with drakma:http-request: a text file, a binary one
;;; compared octet for octet, and a missing one.  Drakma goes through
;;; usocket, which net-usocket runs on net's sockets.  Uses the installed
;;; systems, or with NET_FAS set (the build tree's net.fas) the net-usocket
;;; system of the source tree.

(require :asdf)
(let ((fas (ext:getenv "NET_FAS")))
  (when fas
    (load fas)
    (push (make-pathname :directory (append (butlast (pathname-directory *load-truename*))
                                            '("src" "lsp" "net-usocket"))
                         :name nil :type nil :defaults *load-truename*)
          asdf:*central-registry*)))
(let ((*standard-output* (make-broadcast-stream)))
  (asdf:load-systems "net-usocket" "drakma"))

(defpackage "DRAKMA-EXAMPLE" (:use "CL"))
(in-package "DRAKMA-EXAMPLE")

(defparameter *dir* (format nil "/tmp/net-drakma-example-~d/" (ext:getpid)))

(defun sh (command)
  "Run COMMAND with /bin/sh; its exit code."
  (nth-value 1 (ext:run-program "/bin/sh" (list "-c" (format nil "exec >/dev/null 2>&1 </dev/null; ~a" command))
                                :input t :output t :error t :wait t)))

(defun write-file (name contents)
  (with-open-file (out (concatenate 'string *dir* name) :direction :output :if-exists :supersede
                                                        :element-type '(unsigned-byte 8))
    (write-sequence contents out)))

(unless (zerop (sh "command -v python3"))
  (format t "~&python3 is needed by this example; not run~%")
  (ext:quit 0))

(ensure-directories-exist *dir*)
(defparameter *binary*
  (let ((v (make-array 200000 :element-type '(unsigned-byte 8))))
    (dotimes (i (length v) v) (setf (aref v i) (mod (* i 31) 256)))))
(write-file "hello.txt" (map '(vector (unsigned-byte 8)) #'char-code (format nil "hello from python~%")))
(write-file "data.bin" *binary*)

(let* ((port (net:with-listener (l 0) (net:socket-local-port l)))
       (pidfile (concatenate 'string *dir* "pid"))
       (base (format nil "http://127.0.0.1:~d" port)))
  (sh (format nil "python3 -m http.server --bind 127.0.0.1 --directory '~a' ~d >/dev/null 2>&1 & echo $! >'~a'"
              *dir* port pidfile))
  (let ((pid (with-open-file (in pidfile) (read in))))
    (unwind-protect
         (progn
           ;; Wait (at most 30 s) for the server to listen.
           (unless (loop repeat 300
                         thereis (handler-case (progn (close (net:connect-to "127.0.0.1" port)) t)
                                   (net:network-error () (sleep 0.1) nil)))
             (error "python3 http.server did not start"))
           (multiple-value-bind (body status) (drakma:http-request (format nil "~a/hello.txt" base))
             (unless (and (= status 200) (equal body (format nil "hello from python~%")))
               (error "hello.txt: ~a ~s" status body))
             (format t "~&GET /hello.txt: ~d ~s~%" status body))
           (multiple-value-bind (body status) (drakma:http-request (format nil "~a/data.bin" base))
             (unless (and (= status 200) (equalp body *binary*))
               (error "data.bin: ~a, ~d octets" status (length body)))
             (format t "~&GET /data.bin: ~d, ~d octets, identical~%" status (length body)))
           (let ((status (nth-value 1 (drakma:http-request (format nil "~a/missing" base)))))
             (unless (= status 404) (error "missing: ~a" status))
             (format t "~&GET /missing: ~d~%" status))
           (format t "~&usocket's backend: ~s~%" usocket::*backend*))
      (sh (format nil "kill ~d" pid))
      (sh (format nil "rm -rf '~a'" *dir*)))))
