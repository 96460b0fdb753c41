;;;; usocket-echo.lsp -- a program written for usocket, running on net (net-usocket).
;;;
;;;   ecl --shell examples/usocket-echo.lsp
;;;
;;; Only usocket's API: a server multiplexing its listener and its clients
;;; in one thread with usocket:wait-for-input, answering each line upper
;;; cased, and clients made with usocket:with-client-socket.  Loading the
;;; net-usocket system makes all of it run on net's sockets: the streams are
;;; net's bivalent streams, the waiting is net's poll.  Uses the installed
;;; system, (require :net-usocket), or with NET_FAS set (the build tree's
;;; net.fas) the net-usocket system of the source tree.

(require :asdf)
(let ((fas (ext:getenv "NET_FAS")))
  (when fas
    (load fas)
    (push (make-pathname :directory (append (butlast (pathname-directory *load-truename*))
                                            '("src" "lsp" "net-usocket"))
                         :name nil :type nil :defaults *load-truename*)
          asdf:*central-registry*)))
(let ((*standard-output* (make-broadcast-stream)))
  (asdf:load-system "net-usocket"))

(defpackage "USOCKET-ECHO" (:use "CL"))
(in-package "USOCKET-ECHO")

(defun serve (listener stop)
  "Accept clients on LISTENER and answer their lines, upper cased, in this
thread only, until (CAR STOP) is true."
  (let ((clients '()))
    (unwind-protect
         (loop until (car stop)
               do (dolist (ready (usocket:wait-for-input (cons listener clients)
                                                         :timeout 0.2 :ready-only t))
                    (if (eq ready listener)
                        (push (usocket:socket-accept listener) clients)
                        (let* ((stream (usocket:socket-stream ready))
                               (line (read-line stream nil)))
                          (cond (line (write-line (string-upcase line) stream)
                                      (finish-output stream))
                                (t (usocket:socket-close ready)
                                   (setf clients (remove ready clients))))))))
      (mapc #'usocket:socket-close clients))))

(defun ask (port text)
  "Connect to the server, send TEXT, return its answer."
  (usocket:with-client-socket (socket stream "127.0.0.1" port :timeout 5)
    (setf (usocket:socket-option socket :receive-timeout) 5)
    (write-line text stream)
    (finish-output stream)
    (read-line stream)))

(let* ((listener (usocket:socket-listen "127.0.0.1" 0 :reuse-address t))
       (port (usocket:get-local-port listener))
       (stop (list nil))
       (server (mp:process-run-function "usocket echo" (lambda () (serve listener stop)))))
  (format t "~&usocket ~a over ~s: server on 127.0.0.1 port ~d~%"
          usocket:*version* usocket:*backend* port)
  (unwind-protect
       (let ((answers (loop for n below 5 collect (ask port (format nil "hello from client ~d" n)))))
         (dolist (a answers) (format t "~&  ~a~%" a))
         (unless (equal answers (loop for n below 5 collect (format nil "HELLO FROM CLIENT ~d" n)))
           (error "wrong answers: ~s" answers))
         (unless (eq usocket:*backend* :net)
           (error "usocket is not running over net"))
         (format t "~&5 clients answered by one thread waiting with usocket:wait-for-input~%"))
    (setf (car stop) t)
    (mp:process-join server)
    (usocket:socket-close listener)))
