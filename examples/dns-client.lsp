;;;; dns-client.lsp -- a DNS client over UDP, asking a dnsmasq started on loopback.
;;;
;;;   ecl --shell examples/dns-client.lsp
;;;
;;; Starts dnsmasq on 127.0.0.1 on a free port, answering for example.test
;;; only, builds an A query in an octet vector, sends it with udp-exchange
;;; (resending until dnsmasq is up, taking only the answer with our id),
;;; parses the answer and prints the address; the self-check asserts
;;; 192.0.2.7.  Without dnsmasq it prints a SKIP line.  Uses the installed
;;; module, (require :net), or the file named by NET_FAS.

(let ((fas (ext:getenv "NET_FAS")))
  (if fas (load fas) (require :net)))

(defpackage "DNS-CLIENT" (:use "CL"))
(in-package "DNS-CLIENT")

;;; Building a query

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

(defun make-query (id name)
  "A query for the A records of NAME, with recursion desired."
  (octets (ash id -8) (logand id 255) 1 0 0 1 0 0 0 0 0 0  ; header: RD, 1 question
          (encode-name name) 0 1 0 1))                      ; QTYPE A, QCLASS IN

;;; Parsing the answer

(defun u16 (v i) (+ (* 256 (aref v i)) (aref v (1+ i))))

(defun skip-name (v i)
  "The index after the name at V[I]: labels ending in a zero, or in a pointer."
  (loop (let ((len (aref v i)))
          (cond ((zerop len) (return (1+ i)))
                ((>= len #xc0) (return (+ i 2)))  ; a pointer ends the name
                (t (incf i (1+ len)))))))

(defun a-records (reply n)
  "The addresses of the A records in the answer section of REPLY[0,N)."
  (let ((i 12)
        (addresses '()))
    (dotimes (q (u16 reply 4))                       ; the questions
      (setf i (+ (skip-name reply i) 4)))
    (dotimes (a (u16 reply 6) (nreverse addresses))  ; the answers
      (setf i (skip-name reply i))
      (let ((type (u16 reply i))
            (length (u16 reply (+ i 8))))
        (incf i 10)
        (when (> (+ i length) n) (error "a truncated record"))
        (when (and (= type 1) (= length 4))
          (push (net:ensure-address (subseq reply i (+ i 4))) addresses))
        (incf i length)))))

(defun resolve (name server port)
  "Ask SERVER:PORT for the A records of NAME over UDP: the addresses and the response code."
  (let ((id (random 65536))
        (reply (make-array 512 :element-type '(unsigned-byte 8))))
    (net:with-open-socket (s :type :datagram)
      (let ((n (net:udp-exchange s (make-query id name) reply
                                 :address server :port port
                                 :timeout 0.25 :retries 8 :backoff 1.5
                                 ;; a reply to another query is not ours
                                 :accept (lambda (buffer count address port)
                                           (declare (ignore address port))
                                           (and (>= count 12) (= (u16 buffer 0) id))))))
        (values (a-records reply n) (logand (aref reply 3) 15))))))

;;; The self-check: a dnsmasq of our own

(defun find-program (name)
  "The path of the program NAME in PATH or the sbin directories, or NIL."
  (let ((path (concatenate 'string (or (ext:getenv "PATH") "") ":/usr/sbin:/sbin")))
    (loop with start = 0
          for colon = (position #\: path :start start)
          for file = (format nil "~a/~a" (subseq path start colon) name)
          when (and (> (length file) (1+ (length name))) (probe-file file))
            return file
          while colon do (setf start (1+ colon)))))

(defun free-port ()
  "A port of 127.0.0.1 free for UDP and TCP, as dnsmasq needs both: a TCP
port that old connections still hold in TIME-WAIT cannot be bound without
SO_REUSEADDR, which dnsmasq does not set."
  (loop repeat 50
        do (net:with-open-socket (s :type :datagram)
             (net:bind-address s "127.0.0.1")
             (let ((port (net:socket-local-port s)))
               (when (ignore-errors
                      (close (net:make-listener port :reuse-address nil)))
                 (return port))))
        finally (error "no free port")))

(defun start-dnsmasq (program port)
  "PROGRAM (dnsmasq) on 127.0.0.1:PORT in the foreground, answering
192.0.2.7 for example.test and its subdomains and nothing else; the process."
  (nth-value 2 (ext:run-program
                "/bin/sh"
                (list "-c" (format nil "exec '~a' --no-daemon --port=~d --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts --conf-file=/dev/null --pid-file= --address=/example.test/192.0.2.7 </dev/null >/dev/null 2>&1"
                                   program port))
                :input t :output t :error t :wait nil)))

(let ((program (find-program "dnsmasq")))
  (if (null program)
      (format t "~&SKIP dns-client.lsp: dnsmasq is not installed (bootstrap.sh installs it)~%")
      (let* ((port (free-port))
             (dnsmasq (start-dnsmasq program port)))
        (format t "~&dnsmasq on 127.0.0.1 port ~d (process ~d)~%"
                port (ext:external-process-pid dnsmasq))
        (unwind-protect
             (multiple-value-bind (addresses rcode) (resolve "www.example.test" "127.0.0.1" port)
               (format t "~&www.example.test: A ~{~a~^, ~} (response code ~d)~%"
                       (mapcar #'net:address-string addresses) rcode)
               (unless (and (zerop rcode) (= 1 (length addresses))
                            (net:address= (first addresses) "192.0.2.7"))
                 (error "expected one A record 192.0.2.7")))
          (ext:terminate-process dnsmasq)
          (ext:external-process-wait dnsmasq)))))
