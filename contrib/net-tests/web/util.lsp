;;;; util.lsp -- what the program-level tests of net with other libraries
;;;; share: loading net and a system, checks counted into one summary line,
;;;; peer programs started and stopped by PID, certificates made here.
;;;;
;;;; Run by run-tests.sh with NET_BUILDDIR, NET_SRCDIR set; each test file
;;;; ends with (finish "NAME"), printing "NAME: N passed, N failed".

(require :asdf)
(load (concatenate 'string (ext:getenv "NET_BUILDDIR") "net.fas"))

(defpackage "NET-WEB-TESTS" (:use "CL"))
(in-package "NET-WEB-TESTS")

(defvar *passed* 0)
(defvar *failed* 0)
(defvar *pids* '() "Processes started by START-PROCESS and not yet stopped.")
(defvar *dir*
  (let ((d (format nil "/tmp/net-web-tests-~d/" (ext:getpid))))
    (ensure-directories-exist d)
    d)
  "A directory of this run's own: certificates, outputs; removed by FINISH.")

(defun srcdir (path)
  (concatenate 'string (or (ext:getenv "NET_SRCDIR") "./") path))

(defparameter *own-systems* '("net-usocket" "net-ssl" "net-hunchentoot")
  "net's systems, loaded from the source tree.")

(dolist (name *own-systems*)
  (push (pathname (srcdir (format nil "src/lsp/~a/" name))) asdf:*central-registry*))

(defun load-system (name)
  "Load the ASDF system NAME; net's own systems are compiled afresh (ASDF
does not know they depend on this build's net.fas)."
  (let ((*standard-output* (make-broadcast-stream))
        (*error-output* (make-broadcast-stream)))
    (asdf:load-system name :force *own-systems*)))

(defun pass (what) (incf *passed*) (format t "~&ok: ~a~%" what) (finish-output))
(defun fail (what &optional detail)
  (incf *failed*)
  (format t "~&FAILED: ~a~@[~%  ~a~]~%" what detail)
  (finish-output))

(defmacro check (what form)
  "Count FORM's truth as a passed or failed check named WHAT; an error in
FORM fails the check and is shown."
  `(handler-case (if ,form (pass ,what) (fail ,what))
     (error (e) (fail ,what (format nil "~a: ~a" (type-of e) e)))))

(defmacro check-signals (what type form)
  "Count as passed if FORM signals a condition of TYPE."
  `(handler-case (progn ,form (fail ,what "nothing signalled"))
     (,type () (pass ,what))
     (error (e) (fail ,what (format nil "~a: ~a" (type-of e) e)))))

(defun file-string (path)
  (with-open-file (in path :external-format :latin-1 :if-does-not-exist nil)
    (if in
        (let ((s (make-string (file-length in))))
          (subseq s 0 (read-sequence s in)))
        "")))

(defun file-octets (path)
  (with-open-file (in path :element-type '(unsigned-byte 8))
    (let ((v (make-array (file-length in) :element-type '(unsigned-byte 8))))
      (read-sequence v in)
      v)))

(defun shell (command &rest args)
  "Run COMMAND with /bin/sh (ARGS as $1...), waiting for it; its output
(stdout and stderr) and exit code."
  (let ((out (concatenate 'string *dir* "shell.out")))
    (let ((code (nth-value 1 (ext:run-program
                              "/bin/sh"
                              (list* "-c" (format nil "exec >'~a' 2>&1 </dev/null; ~a" out command)
                                     "sh" args)
                              :input t :output t :error t :wait t))))
      (values (file-string out) code))))

(defun start-process (name command &rest args)
  "Start COMMAND (a simple command for /bin/sh, ARGS as $1...) in the
background, its output in the file NAME in *DIR*; returns its PID, which
FINISH stops if the test has not."
  (let ((log (concatenate 'string *dir* name)))
    (apply #'shell (format nil "~a >'~a' 2>&1 </dev/null & echo $! >'~a.pid'" command log log)
           args)
    (let ((pid (parse-integer (file-string (concatenate 'string log ".pid")))))
      (push pid *pids*)
      pid)))

(defun process-alive-p (pid)
  (zerop (nth-value 1 (shell (format nil "kill -0 ~d" pid)))))

(defun stop-process (pid)
  "SIGTERM to PID, then SIGKILL if it is still there after 5 seconds."
  (shell (format nil "kill -TERM ~d 2>/dev/null" pid))
  (loop repeat 50 while (process-alive-p pid) do (sleep 0.1))
  (shell (format nil "kill -KILL ~d 2>/dev/null" pid))
  (setf *pids* (remove pid *pids*)))

(defun wait-for (predicate &key (seconds 30))
  "Call PREDICATE every 0.1 s until it returns true (that value) or SECONDS pass (NIL)."
  (loop repeat (* seconds 10)
        do (let ((v (funcall predicate))) (when v (return v)))
           (sleep 0.1)))

(defun wait-for-port (port &key (host "127.0.0.1") (seconds 30))
  "True once something accepts connections on HOST, PORT."
  (wait-for (lambda ()
              (handler-case (progn (close (net:connect-to host port :timeout 1)) t)
                (net:network-error () nil)))
            :seconds seconds))

(defun free-port ()
  "A TCP port of the loopback interface free at this moment."
  (net:with-listener (l 0) (net:socket-local-port l)))

(defun make-certificate (name &key (cn "localhost"))
  "A self-signed certificate for CN, 127.0.0.1 and ::1, and its key, made
with openssl req: the paths NAME.pem and NAME-key.pem in *DIR*."
  (let ((cert (format nil "~a~a.pem" *dir* name))
        (key (format nil "~a~a-key.pem" *dir* name)))
    (multiple-value-bind (out code)
        (shell "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj \"/CN=$1\" -addext \"subjectAltName=DNS:$1,IP:127.0.0.1,IP:::1\" -keyout \"$2\" -out \"$3\""
               cn key cert)
      (unless (zerop code) (error "openssl req failed: ~a" out)))
    (values cert key)))

(defun count-matches (needle haystack)
  "How many times NEEDLE occurs in HAYSTACK."
  (loop with start = 0
        for p = (search needle haystack :start2 start)
        while p count t do (setf start (1+ p))))

(defun octets (string)
  (map '(vector (unsigned-byte 8)) #'char-code string))

(defun pattern (n)
  "N octets of a pattern with every value, for bodies checked octet for octet."
  (let ((v (make-array n :element-type '(unsigned-byte 8))))
    (dotimes (i n v) (setf (aref v i) (mod (+ (* i 7) (floor i 251)) 256)))))

(defun skip (name reason)
  (format t "~&skipped: ~a~%~a: 0 passed, 0 failed (skipped)~%" reason name)
  (ext:quit 0))

(defun finish (name)
  "Stop what is still running, remove *DIR*, print the summary line and exit."
  (mapc #'stop-process *pids*)
  (shell (format nil "rm -rf '~a'" *dir*))
  (format t "~&~a: ~d passed, ~d failed~%" name *passed* *failed*)
  (finish-output)
  (ext:quit (if (zerop *failed*) 0 1)))
