;;;; unix-echo.lsp -- a Unix-domain server and client: a path instead of a host and port.
;;;
;;;   ecl --shell examples/unix-echo.lsp
;;;
;;; The same calls as over TCP: make-listener and connect-to take a path (a
;;; string holding a slash, a pathname or a local-address), and the server
;;; learns the client's user id from the kernel (:peer-credentials).  Uses
;;; the installed module, (require :net), or the file named by NET_FAS.

(let ((fas (ext:getenv "NET_FAS")))
  (if fas (load fas) (require :net)))

(defpackage "UNIX-ECHO" (:use "CL"))
(in-package "UNIX-ECHO")

(defun handle (s)
  "Greet the client by its user id, then echo one line in upper case."
  (let ((credentials (net:socket-option s :peer-credentials)))
    (format s "hello, uid ~d~%" (getf credentials :uid))
    (write-line (string-upcase (read-line s)) s)))

(let* ((path (format nil "/tmp/net-unix-echo-~d.sock" (ext:getpid)))
       (server (net:start-threaded-server #'handle nil :host path :threads 2 :timeout 5)))
  (unwind-protect
       (net:with-connection (c path nil :timeout 5)
         (setf (net:socket-timeout-of c) 5)
         (write-line "quietly over a path" c)
         (finish-output c)
         (let ((greeting (read-line c))
               (echo (read-line c)))
           (format t "~&over ~a: ~s, then ~s~%" path greeting echo)
           (unless (string= echo "QUIETLY OVER A PATH")
             (error "unexpected echo ~s" echo))))
    (net:stop-server server)
    (ignore-errors (delete-file path))))
