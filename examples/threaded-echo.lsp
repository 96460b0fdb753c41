;;;; threaded-echo.lsp -- an echo server on the threaded helper, and clients by connect-to.
;;;
;;;   ecl --shell examples/threaded-echo.lsp
;;;
;;; Eight clients at once against a pool of three threads: the others wait
;;; in the server's queue.  Uses the installed module, (require :net), or
;;; the file named by the environment variable NET_FAS (the build tree's
;;; net.fas).

(let ((fas (ext:getenv "NET_FAS")))
  (if fas (load fas) (require :net)))

(defpackage "THREADED-ECHO" (:use "CL"))
(in-package "THREADED-ECHO")

(defun echo (socket)
  "The handler: echo lines until the client ends its side."
  (loop for line = (read-line socket nil)
        while line
        do (write-line line socket)
           (finish-output socket)))

(defun client (port n)
  "Connect, send three lines, read them back; returns the lines."
  (net:with-connection (s "localhost" port :timeout 5)
    (setf (net:socket-timeout-of s) 5)
    (loop for i below 3
          do (format s "client ~d line ~d~%" n i))
    (finish-output s)
    (net:shutdown s :output)
    (loop for line = (read-line s nil) while line collect line)))

(let* ((server (net:start-threaded-server #'echo 0 :threads 3 :timeout 10))
       (port (net:server-port server)))
  (format t "~&echo server on port ~d: ~a~%" port server)
  (unwind-protect
       (let* ((results (make-array 8 :initial-element nil))
              (threads (loop for n below 8
                             collect (let ((n n))
                                       (mp:process-run-function
                                        "client" (lambda () (setf (aref results n) (client port n))))))))
         (mapc #'mp:process-join threads)
         (loop for n below 8
               for lines = (aref results n)
               do (unless (equal lines (loop for i below 3 collect (format nil "client ~d line ~d" n i)))
                    (error "client ~d got back ~s" n lines)))
         (format t "~&8 clients, 3 lines each, all echoed: ~s~%" (net:server-statistics server)))
    (net:stop-server server)))
