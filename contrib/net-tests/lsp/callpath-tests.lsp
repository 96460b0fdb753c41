;;;; callpath-tests.lsp -- RECEIVE, SEND and QUEUE-SEND as compiled code
;;;; calls them: the compiler macros that turn literal keywords into calls
;;;; of positional functions must mean exactly what the keyword call means.
;;;; The test files are loaded as source, which does not expand compiler
;;;; macros, so the calls under test are compiled here into a fasl.

(in-package "NET-TESTS")

(defparameter *compiled-calls*
  "(in-package \"NET-TESTS\")
(defun %cc-receive-plain (s b) (net:receive s b))
(defun %cc-receive-range (s b start end) (net:receive s b :start start :end end))
(defun %cc-receive-end-first (s b log)
  ;; written END first: evaluated END first
  (net:receive s b :end (progn (push :end (car log)) 4) :start (progn (push :start (car log)) 1)))
(defun %cc-receive-peek (s b) (net:receive s b :peek t :end 2))
(defun %cc-receive-wait-all (s b) (net:receive s b :wait-all t :timeout 5))
(defun %cc-receive-computed-key (s b key value) (net:receive s b key value))
(defun %cc-receive-odd (s b) (net:receive s b :end))
(defun %cc-send-plain (s b) (net:send s b))
(defun %cc-send-range (s b) (net:send s b :start 1 :end 3))
(defun %cc-send-end (s b end) (net:send s b :end end))
(defun %cc-receive-errorp (s b) (multiple-value-list (net:receive s b :errorp nil)))
(defun %cc-receive-errorp-end (s b) (multiple-value-list (net:receive s b :end 2 :errorp nil)))
(defun %cc-send-errorp (s b) (multiple-value-list (net:send s b :errorp nil)))
(defun %cc-queue-plain (w b) (net:queue-send w b))
(defun %cc-queue-range (w b start end) (net:queue-send w b :end end :start start))
(defun %cc-queue-handed-over (w b freed)
  (net:queue-send w b :copy nil :on-free (lambda (buf) (push buf (car freed)))))
")

(defun file-mentions-p (file text)
  "True if the octets of FILE contain TEXT (ASCII)."
  (with-open-file (in file :element-type '(unsigned-byte 8))
    (let ((octets (make-octets (file-length in))))
      (read-sequence octets in)
      (search (map '(vector (unsigned-byte 8)) #'char-code text) octets))))

(defun compile-calls ()
  "Compile and load *COMPILED-CALLS*; true if the compiled file refers to
none of the glue's C functions (net's bodies were not inlined into it, so
it loads even before net does)."
  (let* ((base (format nil "/tmp/net-callpath-~d" (ext:getpid)))
         (source (concatenate 'string base ".lsp")))
    (with-open-file (out source :direction :output :if-exists :supersede)
      (write-string *compiled-calls* out))
    (unwind-protect
         (let ((fas (compile-file source :verbose nil :print nil)))
           (load fas)
           (prog1 (not (file-mentions-p fas "netsys_"))
             (delete-file fas)))
      (delete-file source))))

(test compiler-macros-call-the-positional-functions
  ;; literal keywords: a direct call, trailing defaults left out
  (flet ((expand (form) (funcall (compiler-macro-function (car form)) form nil)))
    (flet ((call (form) (let ((c (car (last (expand form)))))
                          (cons (car c) (length (cdr c))))))
      (is (equal '(net::%receive . 2) (call '(net:receive s b))))
      (is (equal '(net::%receive . 4) (call '(net:receive s b :end 3 :start 1))))
      (is (equal '(net::%receive . 3) (call '(net:receive s b :end 3))))
      (is (equal '(net::%receive . 9) (call '(net:receive s b :timeout 1))))
      (is (equal '(net::%receive . 5) (call '(net:receive s b :errorp nil))))
      (is (equal '(net::%send . 4) (call '(net:send s b :start 1))))
      (is (equal '(net::%send . 6) (call '(net:send s b :out-of-band t))))
      (is (equal '(net::%send . 5) (call '(net:send s b :errorp nil))))
      (is (equal '(net::%queue-send . 3) (call '(net:queue-send w b :end 4))))
      (is (equal '(net::%queue-send . 5) (call '(net:queue-send w b :copy nil)))))
    ;; anything else is left to the keyword function, which checks it
    (dolist (form '((net:receive s b k v) (net:receive s b :end) (net:receive s b :bogus 1)
                    (net:receive s b :end 1 :end 2) (net:receive s b :allow-other-keys t)
                    (net:receive s) (net:send s b :start)))
      (is (eq form (expand form))))))

(test compiled-receive-and-send-mean-what-the-keywords-say
  (is (compile-calls))
  (with-tcp-pair (c s :timeout 5)
    (let ((buf (make-octets 8 99)))
      (is (= 8 (funcall '%cc-send-plain c (octets 1 2 3 4 5 6 7 8))))
      (is (= 8 (funcall '%cc-receive-wait-all s buf)))
      (is (equalp (octets 1 2 3 4 5 6 7 8) buf))
      ;; START and END of SEND, END alone
      (is (= 2 (funcall '%cc-send-range c (octets 10 11 12 13))))
      (is (= 1 (funcall '%cc-send-end c (octets 14 15) 1)))
      (let ((three (make-octets 3)))
        (is (= 3 (funcall '%cc-receive-wait-all s three)))
        (is (equalp (octets 11 12 14) three)))
      ;; peek leaves the data; END bounds it
      (funcall '%cc-send-plain c (octets 20 21 22 23))
      (fill buf 0)
      (is (= 2 (funcall '%cc-receive-peek s buf)))
      (is (equalp (octets 20 21 0 0 0 0 0 0) buf))
      ;; START/END written in either order, evaluated in the order written
      (let ((log (list nil)))
        (fill buf 0)
        (is (= 3 (funcall '%cc-receive-end-first s buf log)))
        (is (equal '(:start :end) (car log)))
        (is (equalp (octets 0 20 21 22 0 0 0 0) buf)))
      (fill buf 0)
      (is (= 1 (funcall '%cc-receive-range s buf 5 8)))
      (is (= 23 (aref buf 5)))
      ;; keywords computed at run time go through the keyword function
      (funcall '%cc-send-plain c (octets 30 31 32))
      (fill buf 0)
      (is (= 2 (funcall '%cc-receive-computed-key s buf :end 2)))
      (is (equalp (octets 30 31) (subseq buf 0 2)))
      (signals error (funcall '%cc-receive-computed-key s buf :bogus 2))
      (signals error (funcall '%cc-receive-odd s buf))
      ;; bad ranges and buffers are clear conditions, and lose nothing
      (signals type-error (funcall '%cc-receive-range s buf -1 nil))
      (signals type-error (funcall '%cc-receive-range s buf 0 9))
      (signals type-error (funcall '%cc-receive-range s buf 5 4))
      (signals type-error (funcall '%cc-receive-plain s "not octets"))
      (signals type-error (funcall '%cc-receive-plain :not-a-socket buf))
      (signals type-error (funcall '%cc-send-end c buf 'nine))
      (is (= 1 (funcall '%cc-receive-plain s buf)))
      (is (= 32 (aref buf 0)))
      ;; end of file
      (net:shutdown c :output)
      (is (eql 0 (funcall '%cc-receive-plain s buf))))))

(test compiled-errorp-nil-returns-failures
  (is (compile-calls))
  (with-tcp-pair (c s :timeout 5)
    (let ((buf (make-octets 8)))
      (is (equal '(3) (funcall '%cc-send-errorp c (octets 1 2 3))))
      (is (equal '(2) (funcall '%cc-receive-errorp-end s buf)))
      (is (equal '(1) (funcall '%cc-receive-errorp s buf)))
      (setf (net:socket-blocking-p s) nil)
      (is (equal '(nil) (funcall '%cc-receive-errorp s buf)))
      (close c :abort t)
      (sleep 0.1)
      (destructuring-bind (n failure) (funcall '%cc-receive-errorp s buf)
        (is (null n))
        (is (typep failure 'net:connection-reset)))
      (destructuring-bind (n failure) (funcall '%cc-send-errorp s buf)
        (is (null n))
        (is (typep failure '(or net:connection-reset net:broken-pipe))))
      (close s)
      (is (typep (second (funcall '%cc-receive-errorp s buf)) 'net:socket-closed)))))

(test compiled-queue-send-means-what-the-keywords-say
  (is (compile-calls))
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (let* ((w (net:add-watcher l a nil))
             (freed (list nil))
             (data (octets 1 2 3 4 5 6))
             (got (make-array 0 :element-type '(unsigned-byte 8) :adjustable t :fill-pointer 0)))
        (is (eq t (funcall '%cc-queue-plain w (octets 9))))
        (is (eq t (funcall '%cc-queue-range w data 2 4)))
        (is (eq t (funcall '%cc-queue-handed-over w data freed)))
        (is (equal (list data) (car freed)))   ; all went at once: freed at once
        ;; bad arguments: a condition, nothing sent or queued
        (signals type-error (funcall '%cc-queue-range w data 4 2))
        (signals type-error (funcall '%cc-queue-range w data -1 2))
        (signals type-error (funcall '%cc-queue-range w data 0 'x))
        (signals type-error (funcall '%cc-queue-range w data 0 7))
        (signals type-error (funcall '%cc-queue-plain :not-a-watcher data))
        (signals type-error (funcall '%cc-queue-plain w "text"))
        (is (zerop (net:watcher-queued-octets w)))
        (net:add-watcher l b '(:read) (lambda (s e) (declare (ignore e)) (drain-into s got)))
        (run-until l (lambda () (= (length got) 9)))
        (is (equalp (octets 9 3 4 1 2 3 4 5 6) got))))))
