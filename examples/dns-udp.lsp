;;;; dns-udp.lsp -- a DNS query and answer over UDP, both ends in Lisp.
;;;
;;;   ecl --norc --load examples/dns-udp.lsp --eval '(ext:quit 0)'
;;;
;;; A tiny responder on 127.0.0.1 answers every A query with 192.0.2.1; the
;;; client builds the query packet in an octet vector, sends it with
;;; SEND-TO, and parses the reply that RECEIVE-FROM wrote in place.  Uses
;;; the installed module, or the file named by NET_FAS.

(let ((fas (ext:getenv "NET_FAS")))
  (if fas (load fas) (require :net)))

(defpackage "DNS-DEMO" (:use "CL"))
(in-package "DNS-DEMO")

(defun octets (&rest parts)
  "An octet vector of PARTS: integers 0-255, strings (as ASCII) or vectors."
  (let ((out (make-array 0 :element-type '(unsigned-byte 8) :adjustable t :fill-pointer 0)))
    (dolist (p parts (coerce out '(simple-array (unsigned-byte 8) (*))))
      (etypecase p
        (integer (vector-push-extend p out))
        (string (loop for c across p do (vector-push-extend (char-code c) out)))
        (vector (loop for b across p do (vector-push-extend b out)))))))

(defun encode-name (name)
  "NAME as DNS labels: length-prefixed parts and a zero."
  (let ((parts (loop with start = 0
                     for dot = (position #\. name :start start)
                     collect (subseq name start dot)
                     while dot do (setf start (1+ dot)))))
    (apply #'octets (append (loop for p in parts collect (length p) collect p) '(0)))))

(defun query (id name)
  (octets (ash id -8) (logand id 255) 1 0 0 1 0 0 0 0 0 0   ; header: RD, 1 question
          (encode-name name) 0 1 0 1))                       ; QTYPE A, QCLASS IN

(defun u16 (v i) (+ (* 256 (aref v i)) (aref v (1+ i))))

(defun respond-once (socket)
  "Answer one query on SOCKET with an A record 192.0.2.1."
  (let ((buf (make-array 512 :element-type '(unsigned-byte 8))))
    (multiple-value-bind (n peer port) (net:receive-from socket buf :timeout 5)
      (let* ((question (subseq buf 12 n))
             (reply (octets (aref buf 0) (aref buf 1) #x81 #x80 0 1 0 1 0 0 0 0
                            question
                            #xc0 12 0 1 0 1 0 0 0 60 0 4 192 0 2 1)))  ; name pointer, A, IN, TTL 60
        (net:send-to socket reply peer :port port)))))

(defun answer-address (reply n)
  "The address of the first A record of REPLY[0,N), skipping the question."
  (let ((i 12))
    (loop until (zerop (aref reply i)) do (incf i (1+ (aref reply i))))
    (incf i 5)                                  ; the zero, QTYPE, QCLASS
    (assert (= (u16 reply i) #xc00c))           ; a pointer to the question's name
    (assert (= (u16 reply (+ i 2)) 1))          ; type A
    (assert (<= (+ i 16) n))
    (net:ensure-address (subseq reply (+ i 12) (+ i 16)))))

(net:with-open-socket (server :type :datagram :timeout 5)
  (net:bind-address server "127.0.0.1")
  (let ((responder (mp:process-run-function "dns" #'respond-once server)))
    (net:with-open-socket (client :type :datagram :timeout 5)
      (let ((reply (make-array 512 :element-type '(unsigned-byte 8))))
        (net:send-to client (query #x1234 "www.example.test") "127.0.0.1"
                     :port (net:socket-local-port server))
        (multiple-value-bind (n from port truncated) (net:receive-from client reply)
          (mp:process-join responder)
          (assert (not truncated))
          (assert (= (u16 reply 0) #x1234))     ; our id came back
          (let ((address (answer-address reply n)))
            (format t "~&dns: ~d octets from ~a port ~d: www.example.test is ~a~%"
                    n from port address)
            (assert (net:address= address "192.0.2.1"))))))))
