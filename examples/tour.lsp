;;;; tour.lsp -- the README's tour of net, as a program that checks itself.
;;;
;;;   ecl --norc --load examples/tour.lsp --eval '(ext:quit 0)'
;;;
;;; Uses the installed module, (require :net), or the file named by the
;;; environment variable NET_FAS (the build tree's net.fas).

(let ((fas (ext:getenv "NET_FAS")))
  (if fas (load fas) (require :net)))

(defpackage "TOUR" (:use "CL"))
(in-package "TOUR")

(defun octets (string) (map '(vector (unsigned-byte 8)) #'char-code string))
(defun check (what ok) (format t "~&~:[FAILED~;ok    ~] ~a~%" ok what) (unless ok (ext:quit 1)))

;;; Addresses and the resolver
(check "addresses print in canonical form"
       (equal "2001:db8::1" (net:address-string (net:ensure-address "2001:0db8:0:0:0:0:0:1"))))
(check "lookup-host returns every address of localhost"
       (member "127.0.0.1" (mapcar #'net:address-string (net:lookup-host "localhost"))
               :test #'equal))
(check "a bad literal is an invalid-address condition"
       (typep (nth-value 1 (ignore-errors (net:ensure-address "1.2.3"))) 'net:invalid-address))

;;; TCP: a listener, a client, octets in place, then text on the same stream
(let* ((listener (net:listen-on (net:bind-address (net:make-socket) "127.0.0.1")))
       (client (net:make-socket :timeout 5 :nodelay t))
       (buffer (make-array 16 :element-type '(unsigned-byte 8))))
  (net:connect client "127.0.0.1" :port (net:socket-local-port listener))
  (let ((server (net:accept-connection listener :timeout 5)))
    (check "nodelay was set at creation" (net:socket-option client :nodelay))
    (net:send client (octets "hello"))
    (check "receive fills the caller's buffer" (= 5 (net:receive server buffer :wait-all t :end 5)))
    (format client "GET / HTTP/1.1~c~c" #\Return #\Newline)   ; the socket is a stream
    (write-sequence (octets "BODY") client)
    (finish-output client)
    (check "text and octets interleave"
           (and (equal (format nil "GET / HTTP/1.1~c" #\Return) (read-line server))
                (let ((body (make-array 4 :element-type '(unsigned-byte 8))))
                  (read-sequence body server)
                  (equalp body (octets "BODY")))))
    (check "timeouts are conditions"
           (typep (nth-value 1 (ignore-errors (net:receive server buffer :timeout 0.05)))
                  'net:socket-timeout))
    (net:shutdown client :output)                          ; a real half close
    (check "the peer reads end of file after a half close" (eq :eof (read-byte server nil :eof)))
    (check "and can still send back" (= 2 (net:send server (octets "ok"))))
    (mapc #'net:close (list server client listener))))

;;; UDP on IPv6
(net:with-open-socket (a :address-family :ipv6 :type :datagram :timeout 5)
  (net:with-open-socket (b :address-family :ipv6 :type :datagram :timeout 5)
    (net:bind-address a "::1")
    (net:send-to b (octets "datagram") "::1" :port (net:socket-local-port a))
    (let ((buffer (make-array 4 :element-type '(unsigned-byte 8))))
      (multiple-value-bind (n from port truncated) (net:receive-from a buffer)
        (check "receive-from reports the sender and truncation"
               (and (= n 4) (net:address= from "::1") (= port (net:socket-local-port b))
                    truncated))))))

;;; The high level: listen and connect in one call each
(net:with-listener (l 0)
  (net:with-connection (c "localhost" (net:socket-local-port l) :timeout 5)
    (check "connect-to resolves localhost and connects"
           (net:address-loopback-p (net:socket-remote-address c)))))

;;; Errors are conditions with the errno, the call and the socket
(let ((port (let ((l (net:listen-on (net:bind-address (net:make-socket) "127.0.0.1"))))
              (prog1 (net:socket-local-port l) (net:close l)))))
  (net:with-open-socket (s)
    (check "connecting to a closed port is connection-refused"
           (typep (nth-value 1 (ignore-errors (net:connect s "127.0.0.1" :port port)))
                  'net:connection-refused))))
;;; An event loop: one thread serves every connection; callbacks run in Lisp
(defun serve-echo (listener)
  (net:with-event-loop (loop)
    (let ((buf (make-array 4096 :element-type '(unsigned-byte 8))))
      (net:add-watcher loop listener '(:read)
        (lambda (l events)
          (declare (ignore events))
          (loop for s = (net:accept-connection l :blocking nil) while s
                do (let ((w nil))
                     (setf w (net:add-watcher loop s '(:read)
                               (lambda (s events)
                                 (declare (ignore events))
                                 (let ((n (net:receive s buf)))
                                   (cond ((eql n 0) (net:close s))
                                         (n (net:queue-send w buf :end n)))))))))))
      (net:run-event-loop loop)
      :done)))
(let* ((echo (net:listen-on (net:bind-address (net:make-socket :blocking nil) "127.0.0.1")))
       (result nil)
       (server (mp:process-run-function "echo" (lambda () (setf result (serve-echo echo))))))
  (net:with-open-socket (c :timeout 5)
    (net:connect c "127.0.0.1" :port (net:socket-local-port echo))
    (net:send c (octets "hello"))
    (let ((buffer (make-array 5 :element-type '(unsigned-byte 8))))
      (check "the event-loop server echoes"
             (and (= 5 (net:receive c buffer :wait-all t)) (equalp buffer (octets "hello"))))))
  (net:close echo)
  (mp:process-join server)
  (check "closing its listener from another thread ends the loop" (eq result :done)))
(format t "~&tour: done~%")
