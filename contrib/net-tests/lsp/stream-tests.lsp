;;;; stream-tests.lsp -- bivalent socket streams: every stream function, interleaving, peers.

(in-package "NET-TESTS")

(def-suite :stream :in :net :description "Bivalent Gray streams on stream sockets.")
(in-suite :stream)

;;; Every CL stream function

(test text-functions
  (with-tcp-pair (c s :timeout 5)
    (write-char #\a c)
    (write-string "bcd" c)
    (write-line "line" c)
    (format c "~d ~a~%" 42 "ünïcødé")
    (terpri c)
    (is-false (fresh-line c) "FRESH-LINE at line start writes nothing")
    (write-string "x" c)
    (is-true (fresh-line c))
    (finish-output c)
    (is (char= #\a (read-char s)))
    (is (char= #\b (peek-char nil s)))
    (is (char= #\b (read-char s)))
    (unread-char #\b s)
    (is (string= "bcdline" (read-line s)))
    (is (equal '("42 ünïcødé" nil) (multiple-value-list (read-line s))))
    (is (string= "" (read-line s)))
    (is (string= "x" (read-line s)))
    (is (null (read-char-no-hang s)))
    (is (null (listen s)))
    (write-string "yz" c)
    (force-output c)
    (is (string= "yz" (strings-all-read s 2)))))

(test binary-functions
  (with-tcp-pair (c s :timeout 5)
    (write-byte 200 c)
    (write-sequence (octets 1 2 3 4 5) c :start 1 :end 4)
    (finish-output c)
    (is (= 200 (read-byte s)))
    (let ((v (make-octets 5 9)))
      (is (= 4 (read-sequence v s :start 1 :end 4)))
      (is (equalp (octets 9 2 3 4 9) v)))
    (signals type-error (write-byte 256 c))
    (signals type-error (write-byte -1 c))
    (signals type-error (write-sequence (octets 1 2) c :end 3))))

(test stream-properties
  (with-tcp-pair (c s :timeout 5)
    (is (equal '(or (unsigned-byte 8) character) (stream-element-type c)))
    (is-true (open-stream-p c))
    (is-true (input-stream-p c))
    (is-true (output-stream-p c))
    (is-false (interactive-stream-p c))
    (is (null (file-position c)) "no file position on a socket")
    (is (eq :utf-8 (net:socket-external-format c)))
    (close c)
    (is-false (open-stream-p c))
    (is-false (close c) "a second CLOSE does nothing")))

(test clear-input-and-output
  (with-tcp-pair (c s :timeout 5)
    (write-string "discarded" c)
    (clear-output c)
    (write-string "kept" c)
    (finish-output c)
    (is (string= "kept" (strings-all-read s 4)))
    (write-string "abcdef" c)
    (finish-output c)
    (is (char= #\a (read-char s)))
    (sleep 0.05)
    (read-char-no-hang s)
    (clear-input s)
    (write-string "g" c)
    (finish-output c)
    (is (char= #\g (read-char s)) "buffered input was discarded")))

(test close-flushes-unless-abort
  (with-tcp-pair (c s :timeout 5)
    (write-string "flushed" c)
    (close c)
    (is (string= "flushed" (read-line s nil :eof)))
    (is (eq :eof (read-line s nil :eof))))
  ;; :abort discards the buffered text and resets the connection: the peer
  ;; gets no octet of it, only the reset.
  (with-tcp-pair (c s :timeout 5)
    (write-string "dropped" c)
    (close c :abort t)
    (is (eq :reset (handler-case (read-char s nil :eof)
                     (net:connection-reset () :reset))))))

(test http-like-interleaving
  "Header lines as text with CRLF, exactly N body octets, then text again."
  (with-tcp-pair (c s :timeout 5)
    (let ((body (random-octets 70000)))
      (setf (net:socket-external-format c) '(:latin-1 :crlf))
      (format c "POST /x HTTP/1.1~%Content-Length: ~d~%~%" (length body))
      (write-sequence body c)
      (write-line "trailer" c)
      (finish-output c)
      (setf (net:socket-external-format s) '(:latin-1 :crlf))
      (is (string= "POST /x HTTP/1.1" (read-line s)))
      (let ((n (parse-integer (read-line s) :start 16)))
        (is (string= "" (read-line s)))
        (let ((v (make-octets n)))
          (is (= n (read-sequence v s)))
          (is (equalp body v))))
      (is (string= "trailer" (read-line s))))))

;;; EOF, half close, reset, timeouts

(test eof-handling
  (with-tcp-pair (c s :timeout 5)
    (write-string "ab" c)
    (write-byte 7 c)
    (finish-output c)
    (shutdown c :output)
    (is (string= "ab" (strings-all-read s 2)))
    (is (= 7 (read-byte s)))
    (is (eq :e1 (read-byte s nil :e1)))
    (is (eq :e2 (read-char s nil :e2)))
    (is (eq :e3 (read-line s nil :e3)))
    (is (eq :e4 (peek-char nil s nil :e4)))
    (signals end-of-file (read-byte s))
    (signals end-of-file (read-char s))
    (signals end-of-file (read-line s))
    (let ((v (make-octets 4)))
      (is (= 0 (read-sequence v s))))
    (is (eq :e5 (read-char-no-hang s nil :e5)))))

(test last-line-without-newline
  (with-tcp-pair (c s :timeout 5)
    (write-string "one" c)
    (finish-output c)
    (shutdown c :output)
    (is (string= "one" (read-line s nil :eof)))
    (is (eq :eof (read-line s nil :eof)))))

(test half-closed-peer
  (with-tcp-pair (c s :timeout 5)
    (write-line "request" c)
    (finish-output c)
    (shutdown c :output)
    (is (string= "request" (read-line s)))
    (is (eq :eof (read-line s nil :eof)))
    (write-line "reply after peer's half close" s)
    (finish-output s)
    (is (string= "reply after peer's half close" (read-line c)))))

(test peer-reset
  (with-tcp-pair (c s :timeout 5)
    ;; Closing with unread data makes the kernel send a reset.
    (write-string "unread by the peer" s)
    (finish-output s)
    (sleep 0.05)
    (close c)
    (sleep 0.05)
    (signals net:connection-reset (read-char s))
    ;; The kernel says end of file next; the stream keeps saying reset.
    (signals net:connection-reset (read-line s nil :eof))))

(test read-timeout-loses-nothing
  (with-tcp-pair (c s :timeout 0.2)
    (let ((t0 (get-internal-real-time)))
      (signals net:socket-timeout (read-char s))
      (is (< (/ (- (get-internal-real-time) t0) internal-time-units-per-second) 2)))
    ;; A partial line, a partial character, a partial octet vector.
    (send-octets c (utf8 "partial "))
    (send-octets c (subseq (utf8 "€") 0 2))
    (signals net:socket-timeout (read-line s))
    (send-octets c (concatenate '(vector (unsigned-byte 8)) (subseq (utf8 "€") 2) (octets 10 1 2 3)))
    (is (string= "partial €" (read-line s)))
    (let ((v (make-octets 5)))
      (signals net:socket-timeout (read-sequence v s))
      (send-octets c (octets 4 5))
      (is (= 5 (read-sequence v s)))
      (is (equalp (octets 1 2 3 4 5) v)))
    (send-octets c (utf8 "ab"))
    (let ((str (make-string 3)))
      (signals net:socket-timeout (read-sequence str s))
      (send-octets c (utf8 "c"))
      (is (= 3 (read-sequence str s)))
      (is (string= "abc" str)))
    (net:with-deadline (0.1)
      (signals net:socket-timeout (read-byte s)))))

(test non-blocking-stream
  (with-tcp-pair (c s :timeout 5)
    (setf (net:socket-blocking-p s) nil)
    (signals net:would-block (read-char s))
    (is (null (read-char-no-hang s)))
    (write-string "ok" c)
    (finish-output c)
    (sleep 0.05)
    (is (char= #\o (read-char s)))))


(test read-available-now
  (with-tcp-pair (c s :timeout 5)
    (let ((v (make-octets 10)) (str (make-string 10)))
      (is (= 0 (net:read-available s v)))
      (send-octets c (octets 1 2 3))
      (sleep 0.05)
      (is (= 3 (net:read-available s v)))
      (is (equalp (octets 1 2 3) (subseq v 0 3)))
      (send-octets c (concatenate '(vector (unsigned-byte 8)) (utf8 "hé") (subseq (utf8 "€") 0 1)))
      (sleep 0.05)
      (is (= 2 (net:read-available s str)) "only complete characters")
      (is (string= "hé" (subseq str 0 2)))
      (send-octets c (subseq (utf8 "€") 1))
      (sleep 0.05)
      (is (= 1 (net:read-available s str)))
      (is (char= #\€ (char str 0)))
      (finish-output c)
    (shutdown c :output)
      (sleep 0.05)
      (is (equal '(0 t) (multiple-value-list (net:read-available s v)))))))

;;; Random interleavings against a model

(defun random-op (state)
  (ecase (random 6 state)
    (0 (list :octets (random-octets (random 5000 state) state)))
    (1 (list :byte (random 256 state)))
    (2 (list :line (map 'string (lambda (i) (declare (ignore i))
                                  (char *multilingual* (random 7 state)))
                        (make-list (random 200 state)))))
    (3 (list :char (char *multilingual* (random 7 state))))
    (4 (list :format (nth (random 4 state) '(:utf-8 (:utf-8 :crlf) :utf-16le (:utf-32be :crlf)))))
    (5 (list :octets (random-octets (+ 32768 (random 40000 state)) state)))))

(test random-interleavings
  (let* ((state (make-random-state 20261124)) ; fixed: a failure replays
         (ops (loop repeat 400 collect (random-op state))))
    (with-tcp-pair (c s :timeout 10)
      (let ((writer (spawn (lambda ()
                             (dolist (op ops)
                               (destructuring-bind (kind x) op
                                 (ecase kind
                                   (:octets (write-sequence x c))
                                   (:byte (write-byte x c))
                                   (:line (write-line x c))
                                   (:char (write-char x c))
                                   (:format (setf (net:socket-external-format c) x)))))
                             (finish-output c)))))
        (let ((mismatches 0))
          (dolist (op ops)
            (destructuring-bind (kind x) op
              (unless (ecase kind
                        (:octets (let ((v (make-octets (length x))))
                                   (and (= (length x) (read-sequence v s)) (equalp v x))))
                        (:byte (eql x (read-byte s)))
                        (:line (string= x (read-line s)))
                        (:char (eql x (read-char s)))
                        (:format (setf (net:socket-external-format s) x) t))
                (incf mismatches))))
          (is (= 0 mismatches)))
        (join writer)))))

;;; Bulk transfer

(defun pattern-octet (i) (logand (+ (* i 7) (ash i -9)) #xff))

(test sixty-four-mib-byte-for-byte
  (let ((total (* 64 1024 1024)))
    (with-tcp-pair (c s :timeout 30)
      (let ((writer
              (spawn (lambda ()
                       (let ((v (make-octets 200000)) (pos 0) (sizes #(1 7 1000 40000 200000 32768)))
                         (loop for k from 0
                               while (< pos total)
                               do (let ((n (min (- total pos) (aref sizes (mod k 6)))))
                                    (dotimes (j n) (setf (aref v j) (pattern-octet (+ pos j))))
                                    (if (= n 1)
                                        (write-byte (aref v 0) c)
                                        (write-sequence v c :end n))
                                    (incf pos n)))
                         (finish-output c)
                         (finish-output c)
    (shutdown c :output)
                         pos)))))
        (let ((v (make-octets 150000)) (pos 0) (bad 0) (sizes #(150000 3 65536 1 9999)))
          (loop for k from 0
                do (let* ((want (aref sizes (mod k 5)))
                          (n (if (= want 1)
                                 (let ((b (read-byte s nil nil)))
                                   (if b (progn (setf (aref v 0) b) 1) 0))
                                 (read-sequence v s :end want))))
                     (dotimes (j n)
                       (unless (= (aref v j) (pattern-octet (+ pos j))) (incf bad)))
                     (incf pos n)
                     (when (< n want) (loop-finish))))
          (is (= total (join writer)))
          (is (= total pos))
          (is (= 0 bad)))))))

;;; Real HTTP/1.1 peers

(defun free-port ()
  (let ((l (loopback-listener :ipv4)))
    (prog1 (net:socket-local-port l) (close l))))

(test curl-client-against-our-server
  (let ((l (loopback-listener :ipv4)))
    (unwind-protect
         (let* ((port (net:socket-local-port l))
                (body "Hello from net €")
                (out (format nil "/tmp/net-stream-curl-~d.out" (random 1000000 (make-random-state t))))
                (curl (nth-value 2 (ext:run-program "curl" (list "-s" "-m" "10" "-H" "X-Test: yes" "-o" out
                                                    (format nil "http://127.0.0.1:~d/path" port))
                                       :wait nil :output nil :error nil :input nil))))
           (let ((s (accept-connection l :timeout 10)))
             (unwind-protect
                  (progn
                    (setf (net:socket-external-format s) '(:latin-1 :crlf))
                    (is (string= "GET /path HTTP/1.1" (read-line s)))
                    (let ((headers (loop for line = (read-line s)
                                         until (string= line "") collect line)))
                      (is (member "X-Test: yes" headers :test #'string=)))
                    (let ((octets (utf8 body)))
                      (format s "HTTP/1.1 200 OK~%Content-Length: ~d~%Content-Type: text/plain; charset=utf-8~%Connection: close~%~%"
                              (length octets))
                      (write-sequence octets s)
                      (finish-output s)))
               (close s)))
           (is (eql 0 (nth-value 1 (ext:external-process-wait curl t))))
           (with-open-file (f out :element-type '(unsigned-byte 8))
             (let ((v (make-octets (file-length f))))
               (read-sequence v f)
               (is (equalp (utf8 body) v))))
           (delete-file out))
      (close l))))

(test our-client-against-python-http-server
  (let* ((port (free-port))
         (dir (format nil "/tmp/net-stream-test-~d/" (random 1000000 (make-random-state t))))
         (content (random-octets 300000))
         (server nil))
    (ensure-directories-exist dir)
    (with-open-file (f (concatenate 'string dir "blob.bin") :direction :output
                                                            :element-type '(unsigned-byte 8)
                                                            :if-exists :supersede)
      (write-sequence content f))
    (unwind-protect
         (progn
           (setf server (nth-value 2 (ext:run-program "python3" (list "-m" "http.server" "--bind" "127.0.0.1"
                                                         "--directory" dir (princ-to-string port))
                                         :wait nil :output nil :error nil :input nil)))
           (let ((c (loop repeat 100
                          for c = (let ((c (make-socket :timeout 10)))
                                    (handler-case (connect c "127.0.0.1" :port port :timeout 1)
                                      (net:network-error ()
                                        (close c) (sleep 0.1) nil)))
                          when c return c)))
             (is-true c "the python server answered within 10 s")
             (when c
               (unwind-protect
                    (progn
                      (setf (net:socket-external-format c) '(:latin-1 :crlf))
                      (format c "GET /blob.bin HTTP/1.1~%Host: 127.0.0.1~%Connection: close~%~%")
                      (finish-output c)
                      (let ((status (read-line c)))
                        (is (search " 200 " status) "status line ~s" status))
                      (let* ((headers (loop for line = (read-line c)
                                            until (string= line "") collect line))
                             (cl (find-if (lambda (h) (eql 0 (search "Content-Length:" h :test #'char-equal)))
                                          headers))
                             (n (and cl (parse-integer cl :start 15))))
                        (is (eql (length content) n))
                        (when n
                          (let ((v (make-octets n)))
                            (is (= n (read-sequence v c)))
                            (is (equalp content v))
                            (is (eq :eof (read-byte c nil :eof)))))))
                 (close c)))))
      (when server
        (ext:terminate-process server)
        (ext:external-process-wait server t))
      (ignore-errors (delete-file (concatenate 'string dir "blob.bin")))
      (ignore-errors (si:rmdir dir)))))

(test non-simple-octet-vectors
  "Adjustable, fill-pointer and displaced octet vectors, below and above the buffer size."
  (with-tcp-pair (c s :timeout 10)
    (dolist (n '(100 100000))
      (let* ((data (random-octets n))
             (backing (make-octets (+ n 10)))
             (displaced (make-array n :element-type '(unsigned-byte 8)
                                      :displaced-to backing :displaced-index-offset 10))
             (filled (make-array (* 2 n) :element-type '(unsigned-byte 8)
                                         :fill-pointer n :adjustable t))
             (writer (spawn (lambda () (write-sequence (replace filled data) c)
                              (finish-output c)))))
        (is (= n (read-sequence displaced s)))
        (is (equalp data displaced))
        (is (every #'zerop (subseq backing 0 10)) "no write before the displaced range")
        (join writer)))))

(test peek-char-types-and-format
  (with-tcp-pair (c s :timeout 5)
    (format c "   x~a ~s~%" "ü" :kw)
    (finish-output c)
    (is (char= #\x (peek-char t s)))
    (is (char= #\x (read-char s)))
    (is (char= #\Space (peek-char #\Space s)))
    (is (string= " :KW" (read-line s)) "PEEK-CHAR skipped up to the space")))

(test full-duplex-threads
  "One thread writes and another reads the same stream socket at once."
  (with-tcp-pair (c s :timeout 20)
    (let* ((n 2000)
           (echo (spawn (lambda ()
                          (loop for line = (read-line s nil)
                                while line
                                do (write-line line s)
                                   (when (zerop (random 8)) (finish-output s)))
                          (finish-output s)
                          (shutdown s :output))))
           (writer (spawn (lambda ()
                            (dotimes (i n) (format c "line ~d ~a~%" i *multilingual*))
                            (finish-output c)
                            (shutdown c :output)))))
      (let ((bad 0))
        (dotimes (i n)
          (unless (equal (read-line c nil) (format nil "line ~d ~a" i *multilingual*))
            (incf bad)))
        (is (= 0 bad))
        (is (eq :eof (read-line c nil :eof))))
      (join writer)
      (join echo))))

(defun octet-round-trips (c s out in n)
  "N times: WRITE-SEQUENCE OUT on C, READ-SEQUENCE IN from S."
  (dotimes (i n)
    (write-sequence out c)
    (finish-output c)
    (read-sequence in s)))

(test octet-sequences-cons-nothing-per-call
  (let ((f (compile nil #'octet-round-trips)))
    (with-tcp-pair (c s :timeout 10)
      (dolist (size '(1000 100000))
        (let ((out (random-octets size)) (in (make-octets size)))
          (funcall f c s out in 3)
          (let ((before (si::gc-stats t)))
            (funcall f c s out in 200)
            (let ((consed (- (si::gc-stats t) before)))
              (is (< consed 20000) "~d bytes consed moving 200 x ~d octets" consed size)))
          (is (equalp out in)))))))

(defun stream-echo-rounds (c s out buffer n)
  "N times: C sends OUT, S echoes it as the stream benchmark server does
(READ-BYTE, READ-AVAILABLE, WRITE-SEQUENCE, FINISH-OUTPUT), C reads it back."
  (dotimes (i n)
    (write-sequence out c)
    (finish-output c)
    (setf (aref buffer 0) (read-byte s))
    (let ((end (net:read-available s buffer :start 1)))
      (write-sequence buffer s :end end)
      (finish-output s))
    (read-sequence out c)))

(test stream-echo-conses-nothing-per-call
  "Compiled (READ-AVAILABLE's literal keywords: its positional form)."
  (let ((f (compile nil #'stream-echo-rounds)))
    (with-tcp-pair (c s :timeout 10)
      (let ((out (random-octets 64)) (buffer (make-octets 65536)))
        (funcall f c s out buffer 3)
        (let ((before (si::gc-stats t)))
          (funcall f c s out buffer 300)
          (let ((consed (- (si::gc-stats t) before)))
            (is (< consed 20000) "~d bytes consed in 300 echoes" consed)))
        (is (= 0 (held s)))
        (is (= 0 (held c)))))))

(test ipv6-stream
  (handler-case (close (loopback-listener :ipv6))
    (net:network-error () (skip "IPv6 loopback is not available")))
  (with-tcp-pair (c s :family :ipv6 :timeout 5)
    (write-line "über ::1" c)
    (write-sequence (octets 0 255) c)
    (finish-output c)
    (is (string= "über ::1" (read-line s)))
    (let ((v (make-octets 2)))
      (read-sequence v s)
      (is (equalp (octets 0 255) v)))))

(test write-timeout-keeps-unsent-output
  "A flush that times out keeps what it could not send; nothing is sent twice."
  (with-tcp-pair (c s :timeout 0.3)
    (let ((chunk (make-octets 1000)) (accepted 0) (timed-out nil))
      (loop repeat 100000                ; the kernel buffers fill long before
            until timed-out
            do (dotimes (j 1000) (setf (aref chunk j) (mod (+ accepted j) 251)))
               (handler-case (progn (write-sequence chunk c) (incf accepted 1000))
                 (net:socket-timeout () (setf timed-out t))))
      (is-true timed-out)
      (let* ((reader (spawn (lambda ()
                              (let ((v (make-octets 65536)) (total 0) (bad 0))
                                (loop for n = (read-sequence v s)
                                      do (dotimes (j n)
                                           (unless (= (aref v j) (mod (+ total j) 251))
                                             (incf bad)))
                                         (incf total n)
                                      while (= n (length v)))
                                (list total bad))))))
        (setf (net:socket-timeout-of c) 10)
        (finish-output c)
        (shutdown c :output)
        (destructuring-bind (total bad) (join reader)
          (is (= 0 bad) "the peer received one unbroken prefix of what was written")
          (is (<= accepted total (+ accepted 1000))))))))

(test bad-arguments-are-type-errors
  (with-tcp-pair (c s :timeout 5)
    (signals type-error (write-char 42 c))
    (signals type-error (write-string 42 c))
    (signals type-error (write-sequence "abc" c :start 2 :end 1))
    (signals type-error (read-sequence (make-string 3) s :start 4))
    (signals type-error (read-sequence (make-octets 3) s :end 5))
    (signals type-error (write-sequence (list 1 300) c))
    (signals type-error (net:read-available s 42))
    (signals type-error (net:read-available 42 (make-octets 1)))
    (clear-output c)
    (write-string "still fine" c)
    (finish-output c)
    (is (string= "still fine" (strings-all-read s 10)))))

(test make-socket-external-format-is-the-first-and-inherited
  (let ((l (net:make-socket :external-format '(:latin-1 :crlf))))
    (unwind-protect
         (progn
           (bind-address l "127.0.0.1")
           (listen-on l)
           (net:with-open-socket (c :timeout 5 :external-format :latin-1)
             (connect c "127.0.0.1" :port (net:socket-local-port l))
             (let ((s (accept-connection l :timeout 5)))
               (unwind-protect
                    (progn
                      (is (equal '(:latin-1 :crlf) (net:socket-external-format s)))
                      (is (eq :latin-1 (net:socket-external-format c)))
                      (write-line "cafe" s)
                      (write-char (code-char #xe9) s)
                      (terpri s)
                      (finish-output s)
                      ;; the client reads the raw CRLFs and the one-octet Latin-1 e-acute
                      (let ((v (make-octets 9)))
                        (is (= 9 (read-sequence v c)))
                        (is (equalp #(99 97 102 101 13 10 #xe9 13 10) v))))
                 (close s)))))
      (close l))))

(test make-socket-rejects-a-bad-format-before-the-system-call
  (let ((before (open-fd-count)))
    (signals type-error (net:make-socket :external-format :no-such-encoding))
    (is (= before (open-fd-count)))))

(test shutdown-output-sends-buffered-text-first
  (with-tcp-pair (c s :timeout 5)
    (write-string "last words" c)           ; buffered, not yet sent
    (shutdown c :output)
    (is (string= "last words" (read-line s nil :eof)))
    (is (eq :eof (read-line s nil :eof)))))

(test unix-stream-socket-pair-is-a-bivalent-stream
  (multiple-value-bind (a b) (net:make-socket-pair)
    (unwind-protect
         (progn
           (setf (net:socket-timeout-of a) 5 (net:socket-timeout-of b) 5)
           (write-line "λ over a Unix socket" a)
           (write-byte 200 a)
           (finish-output a)
           (is (string= "λ over a Unix socket" (read-line b)))
           (is (= 200 (read-byte b))))
      (close a)
      (close b))))

;;; Output buffering, the CR line ending, datagram sockets

(defun sent-now (receiver)
  "What RECEIVER (non-blocking) can read now, as a string."
  (let ((buffer (make-string 64)))
    (subseq buffer 0 (net:read-available receiver buffer))))

(test buffering-modes
  (with-socket-pair (a b :timeout 5)
    (setf (net:socket-blocking-p b) nil)
    (is (eq :full (net:socket-buffering a)))
    (write-line "full" a)
    (is (string= "" (sent-now b)))                  ; held until finish-output
    (finish-output a)
    (is (string= (format nil "full~%") (sent-now b)))
    (setf (net:socket-buffering a) :line)
    (is (eq :line (net:socket-buffering a)))
    (write-string "part" a)
    (is (string= "" (sent-now b)))                  ; no newline yet
    (format a ", end~%")
    (is (string= (format nil "part, end~%") (sent-now b)))
    (write-char #\x a)
    (is (string= "" (sent-now b)))
    (terpri a)
    (is (string= (format nil "x~%") (sent-now b)))
    (write-sequence (octets 65 10) a)               ; an octet 10 is a newline too
    (is (string= (format nil "A~%") (sent-now b)))
    (write-string "held" a)
    (setf (net:socket-buffering a) :none)           ; leaving :full flushes
    (is (string= "held" (sent-now b)))
    (write-char #\y a)
    (is (string= "y" (sent-now b)))
    (write-byte 66 a)
    (is (string= "B" (sent-now b)))
    (write-sequence "zz" a)
    (is (string= "zz" (sent-now b)))
    (signals type-error (setf (net:socket-buffering a) :sometimes))
    (is (eq :none (net:socket-buffering a)))))

(test buffering-is-given-to-make-socket-and-inherited
  (signals type-error (make-socket :buffering :always))
  (let ((l (make-socket :buffering :line :timeout 5))
        (c (make-socket :timeout 5)))
    (unwind-protect
         (progn
           (bind-address l "127.0.0.1")
           (listen-on l)
           (is (eq :line (net:socket-buffering l)))
           (connect c "127.0.0.1" :port (net:socket-local-port l))
           (let ((s (accept-connection l)))
             (unwind-protect
                  (progn
                    (is (eq :line (net:socket-buffering s)))
                    (let ((d (net:dup-socket s)))
                      (is (eq :line (net:socket-buffering d)))
                      (close d))
                    ;; an interactive exchange without finish-output
                    (format s "question~%")
                    (is (string= "question" (read-line c)))
                    (setf (net:socket-buffering c) :line)
                    (format c "answer~%")
                    (is (string= "answer" (read-line s))))
               (close s))))
      (close c)
      (close l))))

(test cr-line-ending
  (with-socket-pair (a b :timeout 5)
    (setf (net:socket-external-format a) '(:utf-8 :cr)
          (net:socket-external-format b) '(:utf-8 :mac))
    (is (equal '(:utf-8 :cr) (net:socket-external-format a)))
    (is (equal '(:utf-8 :cr) (net:socket-external-format b)))
    (format a "one~%two ~a~%" #\GREEK_SMALL_LETTER_LAMDA)
    (write-char #\Newline a)
    (finish-output a)
    (let ((octets (make-octets 12)))
      (is (= 12 (read-sequence octets b)))
      (is (equalp (octets 111 110 101 13 116 119 111 32 206 187 13 13) octets)))
    (write-sequence (octets 97 13 98 13 13) a)
    (finish-output a)
    (is (string= "a" (read-line b)))
    (is (char= #\b (read-char b)))
    (is (char= #\Newline (read-char b)))
    (is (string= "" (read-line b)))
    (write-sequence (octets 99 13 100) a)
    (finish-output a)
    (let ((s (make-string 3)))
      (is (= 3 (read-sequence s b)))
      (is (string= (format nil "c~%d") s)))
    (setf (net:socket-external-format a) '(:latin-1 :cr))
    (write-string (format nil "x~%") a)
    (finish-output a)
    (is (equalp (octets 120 13) (let ((v (make-octets 2))) (read-sequence v b) v)))))

(test datagram-sockets-are-not-streams
  (net:with-open-socket (u :type :datagram)
    (is (not (streamp u)))
    (signals type-error (read-line u))
    (signals type-error (write-string "x" u))
    (signals type-error (net:socket-external-format u))
    (signals type-error (net:read-available u (make-octets 1)))))
;;; Raw calls and stream calls on one socket keep each direction in order

(defun ascii-octets (string) (map '(vector (unsigned-byte 8)) #'char-code string))

(defun received-text (socket n)
  "The next N octets from SOCKET, read with RECEIVE :WAIT-ALL, as a string."
  (let ((v (make-octets n)))
    (is (= n (receive socket v :wait-all t)))
    (map 'string #'code-char v)))

(test format-then-send-keeps-order
  (with-tcp-pair (c s :timeout 5)
    (format c "ab")
    (send c (ascii-octets "cd"))
    (is (string= "abcd" (received-text s 4)))))

(test write-sequence-then-send-keeps-order
  (with-tcp-pair (c s :timeout 5)
    (write-sequence (ascii-octets "12") c)
    (send c (ascii-octets "34"))
    (net:send-message c (list (ascii-octets "5")))
    (is (string= "12345" (received-text s 5)))))

(test read-line-then-receive-gets-the-buffered-octets
  (with-tcp-pair (c s :timeout 5)
    (send c (ascii-octets (format nil "line~%rest")))
    (is (string= "line" (read-line s)))
    ;; "rest" sits in the stream's buffer: receive returns it first.
    (is (string= "rest" (received-text s 4)))))

(test read-byte-then-receive-gets-the-buffered-octets
  (with-tcp-pair (c s :timeout 5)
    (send c (ascii-octets "xyz"))
    (is (= (char-code #\x) (read-byte s)))
    (let ((v (make-octets 8)))
      (let ((n (receive s v)))
        (is (string= "yz" (map 'string #'code-char (subseq v 0 n))))))))

(test receive-then-read-line-continues-after
  (with-tcp-pair (c s :timeout 5)
    (send c (ascii-octets (format nil "ab~%cd~%")))
    (is (string= "ab" (received-text s 2)))
    (is (string= "" (read-line s)))
    (is (string= "cd" (read-line s)))))

(test peek-after-read-line-sees-the-buffered-octets-and-keeps-them
  (with-tcp-pair (c s :timeout 5)
    (send c (ascii-octets (format nil "one~%two~%")))
    (is (string= "one" (read-line s)))
    (let ((v (make-octets 3)))
      (is (= 3 (receive s v :peek t)))
      (is (string= "two" (map 'string #'code-char v))))
    (is (string= "two" (read-line s)))))

(test receive-wait-all-takes-buffer-then-socket
  (with-tcp-pair (c s :timeout 5)
    (send c (ascii-octets (format nil "h~%ab")))
    (is (string= "h" (read-line s)))
    (let ((sender (spawn (lambda () (sleep 0.05) (send c (ascii-octets "cd")) t))))
      (is (string= "abcd" (received-text s 4)))
      (is (join sender)))))

(test read-available-after-receive-and-stream-reads
  (with-tcp-pair (c s :timeout 5)
    (send c (ascii-octets (format nil "a~%bcdef")))
    (is (string= "a" (read-line s)))
    (is (string= "b" (received-text s 1)))
    (let ((v (make-octets 8)))
      (is (= 4 (net:read-available s v)))
      (is (string= "cdef" (map 'string #'code-char (subseq v 0 4)))))))

(test out-of-band-send-does-not-flush
  "Urgent data is the documented exception: it does not send buffered text first."
  (with-tcp-pair (c s :timeout 5)
    (format c "text")
    (send c (ascii-octets "!") :out-of-band t)
    (let ((v (make-octets 1)))
      (is (= 1 (receive s v :out-of-band t)))
      (is (= (char-code #\!) (aref v 0))))
    (finish-output c)
    (is (string= "text" (received-text s 4)))))

;;; Buffers from the pool: an idle stream holds none

(defun held (socket)
  "Octets of buffer SOCKET's stream holds now."
  (values (net::%stream-buffer-octets socket)))

(test idle-stream-holds-no-buffer
  "Buffers are taken while data waits in them and given back once it has
been read or sent: after a request and its reply, both ends hold none."
  (with-tcp-pair (c s :timeout 5)
    (is (= 0 (held c)) "no buffer before the first stream call")
    (write-line "request one" c)
    (write-line "request two" c)
    (is (< 0 (held c)) "unsent text holds the output buffer")
    (finish-output c)
    (is (= 0 (held c)) "FINISH-OUTPUT gives it back")
    (is (string= "request one" (read-line s)))
    (is (< 0 (held s)) "an unread line holds the input buffer")
    (is (string= "request two" (read-line s)))
    (is (= 0 (held s)) "all read: given back")
    (format s "reply ~d~%" 42)
    (force-output s)
    (is (= 0 (held s)))
    (is (string= "reply 42" (read-line c)))
    (is (= 0 (held c)))
    (is (equal '(0 0) (multiple-value-list (net::%stream-buffer-octets s))))))

(test a-failed-read-holds-no-buffer
  "A read that fails (a timeout, a reset by the peer) gives back the input
buffer it took to wait in, so that the stream holds none after it and
CLOSE has none to leave to the collector; input still unread stays."
  (with-tcp-pair (c s :timeout 0.2)
    (signals net:socket-timeout (read-byte s))
    (is (= 0 (held s)) "after a timeout")
    (signals net:socket-timeout (read-char s))
    (is (= 0 (held s)) "after a timeout of READ-CHAR")
    (setf (net:socket-blocking-p s) nil)
    (signals net:would-block (read-byte s))
    (is (= 0 (held s)) "after WOULD-BLOCK")
    (setf (net:socket-blocking-p s) t)
    (send c (octets 1 2 3))
    (is (= 1 (read-byte s)))
    (is (< 0 (held s)) "two octets unread")
    (is (= 2 (read-byte s)))
    (is (= 3 (read-byte s)))
    (setf (net:socket-timeout-of s) 5)
    (let ((resetter (spawn (lambda () (sleep 0.2) (close c :abort t) t))))
      (signals net:connection-reset (read-byte s))
      (join resetter))
    (is (= 0 (held s)) "after a reset met while waiting")))

(test idle-after-every-kind-of-read
  (with-tcp-pair (c s :timeout 5)
    (write-sequence (octets 1 2 3) c)
    (write-string "xyz" c)
    (finish-output c)
    (is (= 1 (read-byte s)))
    (let ((v (make-octets 2)))
      (is (= 2 (read-sequence v s)))
      (is (equalp (octets 2 3) v)))
    (is (< 0 (held s)))
    (is (char= #\x (peek-char nil s)))
    (is (< 0 (held s)) "a peeked character is still buffered")
    (is-true (listen s))
    (is (char= #\x (read-char s)))
    (is (char= #\y (read-char-no-hang s)))
    (let ((str (make-string 1)))
      (is (= 1 (read-sequence str s)))
      (is (string= "z" str)))
    (is (= 0 (held s)) "READ-SEQUENCE of the last character")
    (is (null (read-char-no-hang s)))
    (is-false (listen s))
    (is (= 0 (held s)) "nothing arrived: no buffer kept")
    (send c (octets 7 8 9))
    (let ((v (make-octets 8)))
      (is (= 1 (receive s v :end 1)) "a raw receive of part of it")
      (is (= 2 (net:read-available s v)))
      (is (equalp (octets 8 9) (subseq v 0 2)))
      (is (= 0 (held s)) "READ-AVAILABLE of the rest"))
    (write-string "pending" c)
    (finish-output c)
    (is (char= #\p (read-char s)))
    (clear-input s)
    (is (= 0 (held s)) "CLEAR-INPUT")))

(test read-available-takes-a-large-range-whole
  "A range of a buffer or more of an octet vector receives straight into
the vector: after READ-BYTE filled the stream's buffer, one READ-AVAILABLE
takes what is buffered and what the socket has now, more than a buffer's
worth, in order, and the stream holds no buffer after."
  (with-tcp-pair (c s :timeout 5)
    (let* ((n (* 3 net::+buffer-size+))
           (data (let ((v (make-octets n))) (dotimes (i n v) (setf (aref v i) (pattern-octet i)))))
           (v (make-octets (* 2 n))))
      (send c data)
      (sleep 0.2)
      (is (= (aref data 0) (read-byte s)))
      (let ((end (net:read-available s v :start 1)))
        (is (> end (1+ net::+buffer-size+)) "more than the stream's buffer in one call")
        (setf (aref v 0) (aref data 0))
        (loop while (< end n)
              do (setf end (net:read-available s v :start end)))
        (is (= n end))
        (is (equalp data (subseq v 0 n))))
      (is (= 0 (held s)))
      (is (= 0 (net:read-available s v)) "nothing more now")
      (shutdown c :output)
      (sleep 0.05)
      (is (equal '(0 t) (multiple-value-list (net:read-available s v :start 0 :end 10))))
      (is (= 0 (held s))))))

(test read-available-wait
  "With :WAIT, READ-AVAILABLE waits for the first element when none is
buffered (octets, a large range received straight into the vector, and
characters, a split one waited for whole), returns at once what is
buffered, ends at end of file with T, and signals SOCKET-TIMEOUT at the
socket's timeout; on a non-blocking socket it does not wait."
  (with-tcp-pair (c s :timeout 5)
    (let ((v (make-octets 10))
          (big (make-octets (* 2 net::+buffer-size+)))
          (str (make-string 4)))
      ;; Octets: the reader waits until the writer's octets come.
      (let ((writer (spawn (lambda () (sleep 0.2) (send c (octets 7 8 9)) t)))
            (t0 (get-internal-real-time)))
        (is (= 3 (net:read-available s v :wait t)))
        (is (>= (- (get-internal-real-time) t0) (* 0.15 internal-time-units-per-second)))
        (is (equalp (octets 7 8 9) (subseq v 0 3)))
        (join writer))
      ;; A large range, straight into the vector.
      (let ((writer (spawn (lambda () (sleep 0.1) (send c (octets 1 2)) t))))
        (is (= 2 (net:read-available s big :wait t)))
        (is (equalp (octets 1 2) (subseq big 0 2)))
        (join writer))
      ;; Buffered already: at once, the same as without :WAIT.
      (send c (octets 4 5 6))
      (is (= 4 (read-byte s)))
      (is (= 2 (net:read-available s v :wait t)))
      (is (equalp (octets 5 6) (subseq v 0 2)))
      ;; Characters: the first octet of a split character alone is not one.
      (let* ((euro (utf8 "€"))
             (writer (spawn (lambda ()
                              (send c (subseq euro 0 1)) (sleep 0.2)
                              (send c (subseq euro 1)) t))))
        (is (= 1 (net:read-available s str :wait t)))
        (is (char= #\€ (char str 0)))
        (join writer))
      ;; The socket's timeout.
      (setf (net:socket-timeout-of s) 0.2)
      (signals net:socket-timeout (net:read-available s v :wait t))
      ;; Non-blocking: nothing there, no wait.
      (setf (net:socket-blocking-p s) nil)
      (is (= 0 (net:read-available s v :wait t)))
      (setf (net:socket-blocking-p s) t)
      ;; End of file.
      (shutdown c :output)
      (is (equal '(0 t) (multiple-value-list (net:read-available s v :wait t))))
      (is (equal '(0 t) (multiple-value-list (net:read-available s str :wait t)))))))

(test read-available-keywords-at-run-time
  "Keywords computed at run time, APPLY and :ALLOW-OTHER-KEYS go through the
keyword front; bad bounds still signal TYPE-ERROR."
  (with-tcp-pair (c s :timeout 5)
    (send c (octets 1 2 3 4))
    (sleep 0.05)
    (let ((v (make-octets 8)) (key :start))
      (is (= 3 (net:read-available s v key 1 :end 3)))
      (is (= 5 (apply #'net:read-available s v :start 3 '(:allow-other-keys t :other 1))))
      (is (equalp (octets 0 1 2 3 4) (subseq v 0 5)))
      (signals type-error (net:read-available s v :start 9))
      (signals type-error (net:read-available s v :start 2 :end 1))
      (signals type-error (net:read-available s v :start -1))
      (signals type-error (net:read-available s (list 1 2) :end 3)))))

(test unread-char-after-the-buffer-went-back
  "The octets of the last character read survive the input buffer's return."
  (with-tcp-pair (c s :timeout 5)
    (write-string "aé" c)
    (finish-output c)
    (is (char= #\a (read-char s)))
    (is (char= #\é (read-char s)))
    (is (= 0 (held s)) "given back after the last character")
    (unread-char #\é s)
    (is (char= #\é (peek-char nil s)))
    (is (char= #\é (read-char s)))
    (write-line "!" c)
    (finish-output c)
    (is (string= "!" (read-line s)))
    (setf (net:socket-external-format s) '(:utf-16be :crlf)
          (net:socket-external-format c) '(:utf-16be :crlf))
    (terpri c)
    (finish-output c)
    (is (char= #\Newline (read-char s)) "four octets, CR LF, read as one character")
    (is (= 0 (held s)))
    (unread-char #\Newline s)
    (is (char= #\Newline (read-char s)))
    (write-char #\q c)
    (finish-output c)
    (is (char= #\q (read-char s)) "the next read is not disturbed")))

(test output-buffer-back-by-buffering-and-raw-send
  (with-tcp-pair (c s :timeout 5)
    (setf (net:socket-buffering c) :line)
    (write-string "no newline yet" c)
    (is (< 0 (held c)))
    (write-line "" c)
    (is (= 0 (held c)) ":LINE sends and gives the buffer back")
    (setf (net:socket-buffering c) :none)
    (write-char #\x c)
    (is (= 0 (held c)) ":NONE")
    (setf (net:socket-buffering c) :full)
    (write-sequence (octets 65 66) c)
    (is (< 0 (held c)))
    (send c (octets 67))
    (is (= 0 (held c)) "a raw SEND sends the buffer first and gives it back")
    (write-string "dropped" c)
    (clear-output c)
    (is (= 0 (held c)) "CLEAR-OUTPUT")
    (is (string= (format nil "no newline yet~%xABC") (strings-all-read s 19)))))

(test close-lets-the-buffers-go
  (with-tcp-pair (c s :timeout 5)
    (write-line "one" c)
    (write-line "two" c)
    (finish-output c)
    (is (string= "one" (read-line s)))
    (write-string "flushed by close" c)
    (is (< 0 (held c)))
    (close c)
    (is (= 0 (held c)))
    (write-string "unsent" s)
    (is (< 0 (held s)))
    (close s :abort t)
    (is (= 0 (held s)) "buffered input and output, closed with :ABORT")))

(test pool-takes-back-and-hands-out-again
  (let ((drained (loop repeat net::+pool-size+ collect (net::%take-buffer))))
    (unwind-protect
         (with-tcp-pair (c s :timeout 5)
           (is (notany #'identity net::*buffer-pool*) "pool emptied for the test")
           (write-string "x" c)
           (let ((buffer (net::%ss-obuf (slot-value c 'net::stream-state))))
             (is (= net::+buffer-size+ (length buffer)))
             (finish-output c)
             (is (find buffer net::*buffer-pool*) "back in the pool")
             (is (char= #\x (read-char s)))
             (is (eq buffer (net::%ss-obuf (progn (write-string "y" s)
                                                   (slot-value s 'net::stream-state))))
                 "the next stream to write gets it")
             (finish-output s)))
      (mapc #'net::%give-buffer drained))
    (is (<= (count-if #'identity net::*buffer-pool*) net::+pool-size+))))

(test pool-never-hands-one-buffer-to-two-threads
  "Threads take and give back buffers at once; each marks its buffer and
checks the mark is still there before giving it back."
  (let* ((clobbered 0)
         (threads
           (loop for id from 1 to 4
                 collect (let ((id id))
                           (spawn (lambda ()
                                    (dotimes (i 3000 t)
                                      (let ((b (net::%take-buffer)))
                                        (fill b id :end 64)
                                        (when (zerop (mod i 7)) (mp:process-yield))
                                        (unless (every (lambda (x) (= x id)) (subseq b 0 64))
                                          (incf clobbered))
                                        (net::%give-buffer b)))))))))
    (is (every #'join threads))
    (is (= 0 clobbered))))
(test read-line-limit-exact-and-bounded
  ;; A line of exactly *MAX-LINE-LENGTH* octets is read; one octet more
  ;; signals LIMIT-EXCEEDED and consumes nothing; a peer that never sends
  ;; a newline cannot grow the buffer past the limit.  Both line readers:
  ;; the octet scanner (UTF-8) and the character one (UTF-16).
  (dolist (format '(:utf-8 :utf-16le))
    (with-tcp-pair (c s :timeout 5)
      (setf (net:socket-external-format c) format
            (net:socket-external-format s) format)
      (let* ((unit (if (eq format :utf-8) 1 2))
             (net:*max-line-length* (* 1000 unit)))
        (write-line (make-string 1000 :initial-element #\a) c)
        (write-line (make-string 1001 :initial-element #\b) c)
        (finish-output c)
        (is (= 1000 (length (read-line s))) "~a: a line of exactly the limit" format)
        (let ((e (handler-case (read-line s) (net:limit-exceeded (e) e))))
          (is (typep e 'net:limit-exceeded) "~a: one octet past the limit" format)
          (when (typep e 'net:limit-exceeded)
            (is (eq :line-length (net:limit-exceeded-limit e)))
            (is (eq s (net:limit-exceeded-socket e)))))
        (is (char= #\b (read-char s)) "~a: the refused line is still there" format)
        ;; A flood without a newline: refused once the limit is passed,
        ;; the buffer no bigger than the limit plus one buffer.
        (let ((net:*max-line-length* 100000)
              (writer (spawn (lambda ()
                               (handler-case
                                   (let ((chunk (make-string 8192 :initial-element #\z)))
                                     (loop repeat 64 do (write-string chunk c))
                                     (finish-output c))
                                 (net:socket-error () nil))))))
          (read-line s)                 ; the rest of the b line
          (signals net:limit-exceeded (read-line s))
          (is (<= (length (net::%ss-ibuf (net::%stream-state s))) (+ 100000 (* 2 32768)))
              "~a: the input buffer stayed bounded" format)
          (shutdown s :input)
          (close s :abort t)
          (join writer)
          ;; What the writer had buffered cannot go anywhere now.
          (close c :abort t))))))

(test close-after-peer-reset-releases-the-descriptor
  ;; D08: flushing in CLOSE meets the peer's reset; the condition is
  ;; signalled, and the descriptor is released all the same.
  (let ((before (socket-fd-count)))
    (with-tcp-pair (c s :timeout 5)
      (close s :abort t)
      (sleep 0.1)
      (write-string "pending output" c)
      (let ((outcome (handler-case (progn (close c) :closed)
                       (net:socket-error (e) e))))
        (is (or (eq outcome :closed) (typep outcome '(or net:connection-reset net:broken-pipe)))
            "~a" outcome))
      (is-false (net:socket-open-p c) "closed even though the flush failed")
      (is (eq nil (close c)) "a second close does nothing"))
    (is (= before (socket-fd-count)) "no descriptor leaked")))
