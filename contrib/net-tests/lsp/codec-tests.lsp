;;;; codec-tests.lsp -- external formats of socket streams: UTF-8 split
;;;; across reads and buffers, switching formats, line endings, designators,
;;;; and the invalid-input and unencodable-output policies.

(in-package "NET-TESTS")

(def-suite :codec :in :net :description "External formats of socket streams.")
(in-suite :codec)

(test utf-8-split-across-packets
  "Every split point of every multibyte character, with the halves in two packets."
  (let ((octets (utf8 *multilingual*)))
    (with-tcp-pair (c s :timeout 5)
      (loop for split from 1 below (length octets)
            do (send-octets c (subseq octets 0 split))
               (sleep 0.002)
               (send-octets c (subseq octets split))
               (is (string= *multilingual* (strings-all-read s (length *multilingual*)))
                   "split at ~d" split)))))

(test utf-8-across-buffer-boundary
  "A multibyte character straddling the end of the input buffer decodes right."
  (dolist (char (list #\é #\€ (code-char #x1d11e)))
    (let ((enc (utf8 (string char))))
      (loop for before from (- 32768 (length enc) -1) to 32768
            do (with-tcp-pair (c s :timeout 5)
                 (let ((pad (make-string before :initial-element #\.)))
                   (write-string pad c)
                   (write-char char c)
                   (write-string "!" c)
                   (finish-output c)
                   (let ((got (strings-all-read s (+ before 2))))
                     (is (char= char (char got before)) "char ~s after ~d" char before)
                     (is (char= #\! (char got (1+ before)))))))))))

(test read-line-longer-than-buffer
  (with-tcp-pair (c s :timeout 5)
    (let* ((line (make-string 100000 :initial-element #\ж))
           (writer (spawn (lambda () (write-line line c) (write-line "next" c) (finish-output c)))))
      (is (string= line (read-line s)))
      (is (string= "next" (read-line s)))
      (join writer))))

(test switch-formats-mid-stream
  (with-tcp-pair (c s :timeout 5)
    (let ((plan '((:utf-8 "utf-8 €𝄞") ((:latin-1 :crlf) "latin-1 é ÿ")
                  (:ascii "plain ascii") ((:utf-16le :crlf) "utf-16le €𝄞")
                  (:utf-16be "utf-16be ж") (:utf-32le "utf-32 𝄞")
                  (:koi8r "koi8 привет") (:cp932 "cp932 日本語")
                  (:windows-1252 "cp1252 €"))))
      (loop for (format text) in plan
            do (setf (net:socket-external-format c) format)
               (write-line text c)
               (write-byte 255 c))
      (finish-output c)
      (loop for (format text) in plan
            do (setf (net:socket-external-format s) format)
               (is (string= text (read-line s)) "~s" format)
               (is (= 255 (read-byte s)))))))

(test crlf-line-endings
  (with-tcp-pair (c s :timeout 5)
    (setf (net:socket-external-format c) '(:utf-8 :crlf))
    (write-line "a" c)
    (terpri c)
    (finish-output c)
    (let ((v (make-octets 5)))
      (read-sequence v s)
      (is (equalp (octets 97 13 10 13 10) v)))
    (setf (net:socket-external-format s) '(:utf-8 :crlf))
    (send-octets c (octets 120 13 10 121 13 122 10))
    (is (char= #\x (read-char s)))
    (is (char= #\Newline (read-char s)))
    (unread-char #\Newline s)
    (is (char= #\Newline (read-char s)))
    (is (equal (coerce '(#\y #\Return #\z) 'string) (read-line s)))))

(test external-format-designators
  (with-tcp-pair (c s :timeout 5)
    (setf (net:socket-external-format c) '(:latin-1 :crlf :replacement #\?))
    (is (equal '(:latin-1 :crlf :replacement #\?) (net:socket-external-format c)))
    (setf (net:socket-external-format c) :default)
    (is (eq :utf-8 (net:socket-external-format c)))
    (signals error (setf (net:socket-external-format c) :no-such-encoding))
    (signals error (setf (net:socket-external-format c) '(:utf-8 :lfcr)))
    (signals type-error (net:socket-external-format 42))
    (is (eq :utf-8 (net:socket-external-format c)) "a failed SETF changes nothing")))

(test invalid-input-policy
  (with-tcp-pair (c s :timeout 5)
    (send-octets c (octets 97 #xff 98 #xc3 99 100))
    (is (char= #\a (read-char s)))
    (signals net:stream-decoding-error (read-char s))
    (is (= #xff (read-byte s)) "an unhandled decoding error consumes nothing")
    (is (char= #\b (read-char s)))
    (is (char= #\x (handler-bind ((net:stream-decoding-error
                                    (lambda (e) (use-value #\x e))))
                     (read-char s))))
    (is (char= #\c (read-char s)))
    (setf (net:socket-external-format s) '(:utf-8 :replacement #\?))
    (send-octets c (octets #xe2 #x82 10))
    (is (string= "d?" (read-line s)))
    (setf (net:socket-external-format s) :ascii)
    (send-octets c (octets 200 10))
    (is (string= (string (code-char #xfffd))
                 (handler-bind ((net:stream-decoding-error #'continue))
                   (read-line s))))))

(test unencodable-output-policy
  (with-tcp-pair (c s :timeout 5)
    (setf (net:socket-external-format c) :latin-1)
    (signals net:stream-encoding-error (write-char #\€ c))
    (handler-bind ((net:stream-encoding-error (lambda (e) (use-value #\E e))))
      (write-string "1€" c))
    (handler-bind ((net:stream-encoding-error #'continue))
      (write-string "2€" c))
    (setf (net:socket-external-format c) '(:ascii :replacement #\_))
    (write-line "3é" c)
    (finish-output c)
    (is (string= "1E2?3_" (read-line s)))))
