;;;; evented-echo.lsp -- an echo server on two event loops sharing one port.
;;;
;;;   ecl --shell examples/evented-echo.lsp
;;;
;;; The handler adds a watcher for each connection and echoes with the
;;; write queue; twenty clients connect at once with connect-to.  Uses the
;;; installed module, (require :net), or the file named by NET_FAS.

(let ((fas (ext:getenv "NET_FAS")))
  (if fas (load fas) (require :net)))

(defpackage "EVENTED-ECHO" (:use "CL"))
(in-package "EVENTED-ECHO")

(defun echo (socket)
  "The handler: runs in the loop's thread and must not block."
  (let ((buffer (make-array 4096 :element-type '(unsigned-byte 8)))
        (watcher nil))
    (setf watcher
          (net:add-watcher net:*server-event-loop* socket '(:read)
                           (lambda (s events)
                             (declare (ignore events))
                             (let ((n (net:receive s buffer)))
                               (cond ((null n))                 ; spurious wake-up
                                     ((zerop n) (net:close-after-drain watcher))
                                     (t (net:queue-send watcher buffer :end n)))))))))

(defun client (port n)
  (net:with-connection (s "localhost" port :timeout 5)
    (setf (net:socket-timeout-of s) 5)
    (format s "message ~d~%" n)
    (finish-output s)
    (net:shutdown s :output)
    (read-line s nil)))

(let* ((server (net:start-event-loop-server #'echo 0 :loops 2))
       (port (net:server-port server)))
  (format t "~&event-loop echo server: ~a~%" server)
  (unwind-protect
       (let* ((results (make-array 20))
              (threads (loop for n below 20
                             collect (let ((n n))
                                       (mp:process-run-function
                                        "client" (lambda () (setf (aref results n) (client port n))))))))
         (mapc #'mp:process-join threads)
         (dotimes (n 20)
           (unless (equal (aref results n) (format nil "message ~d" n))
             (error "client ~d got ~s" n (aref results n))))
         (format t "~&20 clients echoed by 2 loops on port ~d~%" port))
    (net:stop-server server)))
