;;;; tests.lsp -- net-usocket's own tests: what usocket's suite does not cover.
;;;
;;; Run by run.sh inside its network namespace (the name lookups go to its
;;; dnsmasq: common-lisp.net is 127.0.0.80, other names do not exist; 1.2.3.4
;;; is an unreachable route).  IPv6, half close, wait-for-input over more
;;; descriptors than select() takes, connect timeouts, conditions, options,
;;; names, and flexi-streams and chunga over the streams usocket hands out.
;;; Prints "net-usocket tests: N passed, N failed" (FiveAM checks).

(setf *debugger-hook*
      (lambda (condition hook)
        (declare (ignore hook))
        (format t "~&tests.lsp: unhandled error: ~a~%" condition)
        (ext:quit 2)))
(require :asdf)
(setf *compile-verbose* nil *load-verbose* nil)
(load (ext:getenv "NET_FAS"))
(asdf:register-immutable-system "net")
(push (pathname (ext:getenv "NET_USOCKET_DIR")) asdf:*central-registry*)
(let ((*standard-output* (make-broadcast-stream)))
  (asdf:load-systems "fiveam" "net-usocket" "usocket-server" "flexi-streams" "chunga"))

(defpackage "NET-USOCKET-TESTS" (:use "CL" "USOCKET" "FIVEAM"))
(in-package "NET-USOCKET-TESTS")

(def-suite :net-usocket)
(in-suite :net-usocket)

;;; Helpers

(defmacro with-pair ((client server &rest listen-args) &body body)
  "A connected pair of stream usockets: CLIENT from SOCKET-CONNECT, SERVER
from SOCKET-ACCEPT on a listener made with (SOCKET-LISTEN ,@LISTEN-ARGS),
\"127.0.0.1\" port 0 unless given.  Everything closed after BODY."
  (let ((listener (gensym "LISTENER")))
    `(let* ((,listener (socket-listen ,@(or listen-args '("127.0.0.1" 0))))
            (,client nil) (,server nil))
       (unwind-protect
            (progn
              (setf ,client (socket-connect (if (= 16 (length (get-local-address ,listener)))
                                                "::1" "127.0.0.1")
                                            (get-local-port ,listener)
                                            :timeout 5))
              (setf ,server (socket-accept ,listener))
              ,@body)
         (when ,client (socket-close ,client))
         (when ,server (socket-close ,server))
         (socket-close ,listener)))))

(defun octets (&rest bytes)
  (make-array (length bytes) :element-type '(unsigned-byte 8) :initial-contents bytes))

(defun send-line (usocket text)
  (write-line text (socket-stream usocket))
  (finish-output (socket-stream usocket)))

(defun condition-of (thunk)
  "The condition FUNCALLing THUNK signals as an error, or :NONE."
  (handler-case (progn (funcall thunk) :none)
    (error (e) e)))

(defun free-port ()
  "A TCP port of 127.0.0.1 free now."
  (let ((l (socket-listen "127.0.0.1" 0)))
    (prog1 (get-local-port l) (socket-close l))))

;;; The stream is net's bivalent stream

(test stream-is-nets-bivalent-stream
  (with-pair (c s)
    (is (eq (socket c) (socket-stream c)))
    (is (typep (socket-stream c) 'net:stream-socket))
    (write-byte 200 (socket-stream c))
    (write-string "line" (socket-stream c))
    (terpri (socket-stream c))
    (write-sequence (octets 1 2 3) (socket-stream c))
    (finish-output (socket-stream c))
    (is (= 200 (read-byte (socket-stream s))))
    (is (string= "line" (read-line (socket-stream s))))
    (let ((v (make-array 3 :element-type '(unsigned-byte 8))))
      (is (= 3 (read-sequence v (socket-stream s))))
      (is (equalp (octets 1 2 3) v)))))

(test element-type-octets
  (with-pair (c s "127.0.0.1" 0 :element-type '(unsigned-byte 8))
    (send-line c "text on an octet socket")
    (is (string= "text on an octet socket" (read-line (socket-stream s))))))

;;; IPv6

(test ipv6-stream
  (with-pair (c s "::1" 0)
    (is (equalp #(0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1) (get-peer-address c)))
    (is (= 16 (length (get-local-address s))))
    (is (= (get-local-port c) (get-peer-port s)))
    (send-line c "over IPv6")
    (is (string= "over IPv6" (read-line (socket-stream s))))
    (send-line s "back")
    (is (string= "back" (read-line (socket-stream c))))))

(test ipv6-octet-vector-host
  (let ((l (socket-listen "::1" 0)))
    (unwind-protect
         (let ((c (socket-connect (ipv6-host-to-vector "::1") (get-local-port l))))
           (unwind-protect (is (= 16 (length (get-peer-address c))))
             (socket-close c)))
      (socket-close l))))

(test ipv6-datagram
  (let* ((a (socket-connect nil nil :protocol :datagram :local-host "::1"))
         (b (socket-connect "::1" (get-local-port a) :protocol :datagram)))
    (unwind-protect
         (progn
           (is (= 3 (socket-send b (octets 1 2 3) 3)))
           (is (equal (list a) (wait-for-input a :timeout 5 :ready-only t)))
           (multiple-value-bind (buffer n host port) (socket-receive a nil 16)
             (is (= 3 n))
             (is (equalp (octets 1 2 3) (subseq buffer 0 n)))
             (is (equalp (ipv6-host-to-vector "::1") host))
             (is (= (get-local-port b) port))
             (socket-send a (octets 9) 1 :host host :port port))
           (multiple-value-bind (buffer n) (socket-receive b (make-array 4) 4)
             (is (= 1 n))
             (is (= 9 (aref buffer 0)))))
      (socket-close a)
      (socket-close b))))

(test wildcard-listener-takes-both-families
  (let ((l (socket-listen *wildcard-host* 0)))
    (unwind-protect
         (dolist (host '("127.0.0.1" "::1"))
           (let* ((c (socket-connect host (get-local-port l)))
                  (s (socket-accept l)))
             (unwind-protect
                  ;; An IPv4 peer of the dual-stack listener reads as 4 octets.
                  (is (= (if (string= host "::1") 16 4) (length (get-peer-address s))))
               (socket-close c)
               (socket-close s))))
      (socket-close l))))

;;; Half close

(test shutdown-output-is-a-half-close
  (with-pair (c s)
    (socket-shutdown c :output)
    (is (eq :eof (read-line (socket-stream s) nil :eof)))
    (send-line s "still open the other way")
    (is (string= "still open the other way" (read-line (socket-stream c))))))

(test shutdown-input-and-io
  (with-pair (c s)
    (finishes (socket-shutdown c :input))
    (finishes (socket-shutdown s :io))
    (is (eq :eof (read-line (socket-stream c) nil :eof)))
    (signals error (socket-shutdown c :sideways))))

;;; wait-for-input over more descriptors than select() takes

(test wait-for-input-beyond-fd-setsize
  (let ((l (socket-listen "127.0.0.1" 0 :backlog 128))
        (clients '()) (accepted '()))
    (unwind-protect
         (progn
           (loop repeat 1100
                 do (push (socket-connect "127.0.0.1" (get-local-port l) :timeout 5) clients)
                    (push (socket-accept l) accepted))
           (is (< 2048 (reduce #'max accepted :key (lambda (u) (net:socket-fd (socket u))))))
           (is (null (wait-for-input accepted :timeout 0 :ready-only t)))
           ;; The last accepted socket has the highest descriptor.
           (send-line (first clients) "x")
           (is (equal (list (first accepted)) (wait-for-input accepted :timeout 5 :ready-only t)))
           (send-line (car (last clients)) "y")
           (let ((ready (wait-for-input accepted :timeout 5 :ready-only t)))
             (is (= 2 (length ready)))
             (is (member (car (last accepted)) ready)))
           (is (eq :read (socket-state (first accepted))))
           (is (null (socket-state (second accepted)))))
      (mapc #'socket-close clients)
      (mapc #'socket-close accepted)
      (socket-close l))))

(test wait-for-input-listener-and-datagram
  (let ((l (socket-listen "127.0.0.1" 0))
        (d (socket-connect nil nil :protocol :datagram :local-host "127.0.0.1")))
    (unwind-protect
         (progn
           (is (null (wait-for-input (list l d) :timeout 0 :ready-only t)))
           (let ((c (socket-connect "127.0.0.1" (get-local-port l))))
             (unwind-protect
                  (is (equal (list l) (wait-for-input (list l d) :timeout 5 :ready-only t)))
               (socket-close c)))
           (let ((u (socket-connect "127.0.0.1" (get-local-port d) :protocol :datagram)))
             (unwind-protect
                  (progn (socket-send u (octets 7) 1)
                         (is (member d (wait-for-input (list l d) :timeout 5 :ready-only t))))
               (socket-close u))))
      (socket-close l)
      (socket-close d))))

;;; Connecting: timeout, local end, nodelay

(test connect-timeout-is-honoured
  ;; A listener with a full queue leaves the next connection unanswered.
  (let ((l (socket-listen "127.0.0.1" 0 :backlog 0))
        (held '()) (unsupported nil))
    (unwind-protect
         (handler-bind ((unsupported (lambda (c) (setf unsupported c) (continue))))
           (let ((e (loop repeat 4
                          for e = (condition-of
                                   (lambda ()
                                     (push (socket-connect "127.0.0.1" (get-local-port l)
                                                           :timeout 0.5)
                                           held)))
                          unless (eq e :none) return e)))
             (is (typep e 'timeout-error))
             (is (null unsupported))))
      (mapc #'socket-close held)
      (socket-close l))))

(test connect-timeout-zero
  (is (typep (condition-of (lambda () (socket-connect "127.0.0.1" (free-port) :timeout 0)))
             'timeout-error))
  (is (typep (condition-of (lambda () (socket-connect "common-lisp.net" 80 :timeout 0)))
             'timeout-error)))

(test local-host-and-port
  (let ((port (free-port)))
    (let ((l (socket-listen "127.0.0.1" 0)))
      (unwind-protect
           (let* ((c (socket-connect "127.0.0.1" (get-local-port l)
                                     :local-host "127.0.0.1" :local-port port))
                  (s (socket-accept l)))
             (unwind-protect
                  (progn (is (= port (get-local-port c)))
                         (is (= port (get-peer-port s)))
                         (is (equalp #(127 0 0 1) (get-local-address c))))
               (socket-close c)
               (socket-close s)))
        (socket-close l)))))

(test nodelay
  (let ((l (socket-listen "127.0.0.1" 0)))
    (unwind-protect
         (let ((on (socket-connect "127.0.0.1" (get-local-port l) :nodelay t))
               (off (socket-connect "127.0.0.1" (get-local-port l) :nodelay nil))
               (maybe (socket-connect "127.0.0.1" (get-local-port l) :nodelay :if-supported)))
           (unwind-protect
                (progn
                  (is (eq t (socket-option on :tcp-nodelay)))
                  (is (null (socket-option off :tcp-nodelay)))
                  (is (eq t (socket-option maybe :tcp-no-delay)))
                  (setf (socket-option off :tcp-nodelay) t)
                  (is (eq t (socket-option off :tcp-nodelay))))
             (mapc #'socket-close (list on off maybe))))
      (socket-close l))))

;;; Conditions

(test failed-lookup-is-an-ns-error
  (let ((e (condition-of (lambda () (socket-connect "nosuch.test" 80)))))
    (is (typep e 'ns-host-not-found-error))
    (is (equal "nosuch.test" (host-or-ip e))))
  (is (typep (condition-of (lambda () (get-hosts-by-name "nosuch.test")))
             'ns-host-not-found-error)))

(test socket-errors-mapped
  (is (typep (condition-of (lambda () (socket-connect "127.0.0.1" (free-port))))
             'connection-refused-error))
  (is (typep (condition-of (lambda () (socket-connect "1.2.3.4" 80 :timeout 5)))
             'host-unreachable-error))
  (let ((l (socket-listen "127.0.0.1" 0)))
    (unwind-protect
         (let ((e (condition-of (lambda () (socket-listen "127.0.0.1" (get-local-port l))))))
           (is (typep e 'address-in-use-error)))
      (socket-close l))))

(test stream-timeout-mapped-in-with-mapped-conditions
  (with-pair (c s)
    (setf (socket-option c :receive-timeout) 0.2)
    (is (= 0.2 (socket-option c :receive-timeout)))
    (is (typep (condition-of (lambda ()
                               (with-mapped-conditions (c)
                                 (read-line (socket-stream c)))))
               'timeout-error))))

(test other-conditions-pass-unchanged
  (is (typep (condition-of (lambda () (with-mapped-conditions () (error "mine"))))
             'simple-error))
  (is (typep (condition-of (lambda () (with-mapped-conditions () (car 1))))
             'type-error)))

;;; Options and names

(test socket-options
  (let ((l (socket-listen "127.0.0.1" 0 :reuse-address t))
        (d (socket-connect nil nil :protocol :datagram)))
    (unwind-protect
         (progn
           (is (eq t (socket-option l :reuse-address)))
           (setf (socket-option l :reuse-address) nil)
           (is (null (socket-option l :reuse-address)))
           (setf (socket-option d :broadcast) t)
           (is (eq t (socket-option d :broadcast)))
           ;; Any option net knows, by its keyword.
           (setf (socket-option d :receive-buffer) 65536)
           (is (<= 65536 (socket-option d :receive-buffer)))
           (signals unimplemented (socket-option d :no-such-option))
           (signals type-error (socket-option d 'not-a-keyword)))
      (socket-close l)
      (socket-close d))))

(test host-names
  (let ((all (get-hosts-by-name "localhost")))
    (is (equalp #(127 0 0 1) (first all)))
    (is (every (lambda (a) (member (length a) '(4 16))) all)))
  (is (equalp #(127 0 0 80) (get-host-by-name "common-lisp.net")))
  (is (equal "localhost" (usocket::get-host-by-address #(127 0 0 1)))))

(test close-is-idempotent-and-leaves-the-wait-list
  (with-pair (c s)
    (wait-for-input c :timeout 0)
    (is (usocket::wait-list c))
    (socket-close c)
    (is (null (usocket::wait-list c)))
    (finishes (socket-close c))))

;;; usocket's own server helper

(test socket-server-over-net
  (multiple-value-bind (thread listener)
      (socket-server "127.0.0.1" 0 #'default-tcp-handler nil :in-new-thread t)
    (unwind-protect
         (dotimes (i 2)
           (let ((c (socket-connect "127.0.0.1" (get-local-port listener) :timeout 5)))
             (unwind-protect
                  (progn (setf (socket-option c :receive-timeout) 5)
                         (is (string= "Hello world!" (read-line (socket-stream c)))))
               (socket-close c))))
      ;; Killing the thread blocked in accept unwinds it; its loop then
      ;; closes the listener.
      (bt:destroy-thread thread)
      (is (loop repeat 100
                do (if (bt:thread-alive-p thread) (sleep 0.05) (return t))))
      (is (not (net:socket-open-p (socket listener)))))))

;;; Libraries over the streams

(test flexi-streams-over-the-stream
  (with-pair (c s)
    (let ((out (flexi-streams:make-flexi-stream (socket-stream c) :external-format :utf-8))
          (in (flexi-streams:make-flexi-stream (socket-stream s) :external-format :utf-8)))
      (write-line "héllo wörld ☃" out)
      (finish-output out)
      (is (string= "héllo wörld ☃" (read-line in))))))

(test chunga-over-the-stream
  (with-pair (c s)
    (let ((out (chunga:make-chunked-stream (socket-stream c)))
          (in (chunga:make-chunked-stream (socket-stream s)))
          (body (flexi-streams:string-to-octets "a body sent in chunks"))
          (got (make-array 64 :element-type '(unsigned-byte 8))))
      (setf (chunga:chunked-stream-output-chunking-p out) t)
      (write-sequence body out :end 7)
      (force-output out)
      (write-sequence body out :start 7)
      (setf (chunga:chunked-stream-output-chunking-p out) nil) ; the last chunk
      (finish-output (socket-stream c))
      (setf (chunga:chunked-stream-input-chunking-p in) t)
      (let ((n (read-sequence got in)))
        (is (equalp body (subseq got 0 n))))))
  ;; On the wire, chunk by chunk.
  (with-pair (c s)
    (let ((out (chunga:make-chunked-stream (socket-stream c))))
      (setf (chunga:chunked-stream-output-chunking-p out) t)
      (write-sequence (flexi-streams:string-to-octets "a body") out)
      (setf (chunga:chunked-stream-output-chunking-p out) nil)
      (finish-output (socket-stream c))
      (socket-shutdown c :output)
      (is (equal '("6" "a body" "0" "" :eof)
                 (loop repeat 6
                       for line = (read-line (socket-stream s) nil :eof)
                       collect (if (stringp line) (string-right-trim '(#\Return) line) line)
                       until (eq line :eof)))))))

;;; Run

(let* ((results (let ((*test-dribble* *standard-output*)) (run :net-usocket)))
       (passed (count-if (lambda (r) (typep r 'fiveam::test-passed)) results))
       (failed (- (length results) passed)))
  (explain! results)
  (format t "~&net-usocket tests: ~d passed, ~d failed~%" passed failed)
  (finish-output)
  (ext:quit (if (zerop failed) 0 1)))
