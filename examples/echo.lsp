;;;; echo.lsp -- an echo server and client over loopback, IPv4 and IPv6.
;;;
;;;   ecl --norc --load examples/echo.lsp --eval '(ext:quit 0)'
;;;
;;; Uses the installed module, (require :net), or the file named by the
;;; environment variable NET_FAS (the build tree's net.fas).

(let ((fas (ext:getenv "NET_FAS")))
  (if fas (load fas) (require :net)))

(defpackage "ECHO-DEMO" (:use "CL"))
(in-package "ECHO-DEMO")

(defun serve-one (listener)
  "Accept one connection and echo what it sends until it half-closes."
  (let ((conn (net:accept-connection listener :timeout 5))
        (buf (make-array 1024 :element-type '(unsigned-byte 8))))
    (unwind-protect
         (loop for n = (net:receive conn buf :timeout 5)
               until (zerop n)
               do (net:send conn buf :end n))
      (net:close conn))))

(defun demo (host family)
  (let ((listener (net:listen-on (net:bind-address (net:make-socket :address-family family)
                                                   host))))
    (unwind-protect
         (let* ((port (net:socket-local-port listener))
                (peer nil)
                (server (mp:process-run-function "echo" #'serve-one listener))
                (message (map '(vector (unsigned-byte 8)) #'char-code "hello, net"))
                (reply (make-array (length message) :element-type '(unsigned-byte 8))))
           (net:with-open-socket (client :address-family family :timeout 5)
             (net:connect client host :port port)
             (setf peer (net:socket-remote-address client))
             (net:send client message)
             (net:shutdown client :output)
             (net:receive client reply :wait-all t)
             (mp:process-join server)
             (format t "~&echo over ~a: sent ~s to port ~d, got back ~s~%"
                     (net:address-string peer)
                     (map 'string #'code-char message) port
                     (map 'string #'code-char reply))
             (unless (equalp message reply)
               (error "echo over ~a returned ~s" host reply))))
      (net:close listener))))

(demo "127.0.0.1" :ipv4)
(demo "::1" :ipv6)
