;;;; multicast-chat.lsp -- a multicast chat between two network namespaces.
;;;
;;;   ecl --shell examples/multicast-chat.lsp        (as root)
;;;
;;; Makes two network namespaces joined by a veth pair, each with an
;;; address and a route for multicast (224.0.0.0/4) on its end of the pair,
;;; and runs this file again in each as a chat participant (a child ECL
;;; with CHAT_NAME set): it joins the group 239.255.77.77, says when it has
;;; joined, sends one line to the group when told to, and prints the line it
;;; hears from the other.  The namespaces (and so the veth pair) are removed
;;; at the end.  Without root or `ip netns` it prints a SKIP line.  Uses the
;;; installed module, (require :net), or the file named by NET_FAS.

(let ((fas (ext:getenv "NET_FAS")))
  (if fas (load fas) (require :net)))

(defpackage "MULTICAST-CHAT" (:use "CL"))
(in-package "MULTICAST-CHAT")

(defparameter *group* "239.255.77.77")
(defparameter *port* 5077)

(defun octets (string) (map '(vector (unsigned-byte 8)) #'char-code string))

;;; A participant, in its namespace

(defun participant (name)
  "Join the group, print \"joined\", wait for a line on standard input, send
\"hello from NAME\" to the group and print the first line another sends."
  (net:with-open-socket (s :type :datagram :reuse-address t :multicast-loop nil :timeout 10)
    (net:bind-address s "0.0.0.0" :port *port*)
    ;; No interface given: the route for 224.0.0.0/4 picks the veth end.
    (net:join-multicast-group s *group*)
    (format t "joined~%")
    (finish-output)
    (read-line)                         ; "go": the other has joined too
    (net:send-to s (octets (format nil "hello from ~a" name)) *group* :port *port*)
    (let ((buffer (make-array 1500 :element-type '(unsigned-byte 8))))
      (multiple-value-bind (n from) (net:receive-from s buffer)
        (format t "heard from ~a: ~a~%"
                (net:address-string from) (map 'string #'code-char (subseq buffer 0 n)))
        (finish-output)))))

;;; The host: namespaces, veth pair, two participants

(defun run (program &rest args)
  "PROGRAM's exit code, or NIL if it could not run.  Our standard streams are
inherited (a NIL stream would be a /dev/null the collector closes later)."
  (ignore-errors
   (nth-value 1 (ext:run-program program args :input t :output t :error t :wait t))))

(defun ip (&rest args)
  (unless (eql 0 (apply #'run "ip" args))
    (error "ip ~{~a~^ ~} failed" args)))

(defun root-p ()
  (with-open-file (in "/proc/self/status")
    (loop for line = (read-line in nil)
          while line
          when (eql 0 (search "Uid:" line))
            return (eql 0 (parse-integer line :start 4 :junk-allowed t)))))

(defun start-participant (namespace name)
  "This file run by a child ECL in NAMESPACE as participant NAME (killed
after 60 s at most); a two-way stream to it and the process."
  (multiple-value-bind (stream code process)
      (ext:run-program "timeout"
                       (list "60" "ip" "netns" "exec" namespace "env"
                             (format nil "CHAT_NAME=~a" name)
                             (format nil "NET_FAS=~a" (or (ext:getenv "NET_FAS") ""))
                             (or (ext:getenv "ECL") "ecl") "--norc"
                             "--load" (namestring *load-truename*))
                       :input :stream :output :stream :error t :wait nil)
    (declare (ignore code))
    (values stream process)))

(defun next-line (stream)
  "The next line STREAM prints that is not a comment of the loader."
  (loop for line = (read-line stream nil)
        while (and line (eql 0 (search ";;;" line)))
        finally (return (or line (error "a participant ended early")))))

(defun chat (a b)
  "Run participants alice in A and bob in B; what each heard."
  (let ((children '()))
    (unwind-protect
         (let ((streams (loop for (ns name) in (list (list a "alice") (list b "bob"))
                              collect (multiple-value-bind (stream process)
                                          (start-participant ns name)
                                        (push (cons stream process) children)
                                        stream))))
           (dolist (s streams)
             (let ((line (next-line s)))
               (unless (string= line "joined") (error "a participant said ~s" line))))
           (dolist (s streams)
             (write-line "go" s)
             (finish-output s))
           (mapcar #'next-line streams))
      (loop for (stream . process) in children
            do (ignore-errors (close (two-way-stream-output-stream stream)))
               (ignore-errors (close (two-way-stream-input-stream stream)))
               (ignore-errors (ext:terminate-process process))
               (ignore-errors (ext:external-process-wait process t))))))

(defun demo ()
  (let ((a (format nil "chat-~d-a" (ext:getpid)))
        (b (format nil "chat-~d-b" (ext:getpid))))
    (unless (and (root-p) (eql 0 (run "ip" "netns" "add" a)))
      (format t "~&SKIP multicast-chat.lsp: needs root and ip netns to make its own network~%")
      (return-from demo))
    (unwind-protect
         (progn
           (ip "netns" "add" b)
           (ip "link" "add" "chat0" "netns" a "type" "veth" "peer" "name" "chat1" "netns" b)
           (loop for (ns dev address) in (list (list a "chat0" "10.78.0.1/24")
                                               (list b "chat1" "10.78.0.2/24"))
                 do (ip "-n" ns "link" "set" "lo" "up")
                    (ip "-n" ns "link" "set" dev "up")
                    (ip "-n" ns "addr" "add" address "dev" dev)
                    (ip "-n" ns "route" "add" "224.0.0.0/4" "dev" dev))
           (format t "~&namespaces ~a (10.78.0.1, chat0) and ~a (10.78.0.2, chat1), a veth pair, group ~a port ~d~%"
                   a b *group* *port*)
           (destructuring-bind (alice bob) (chat a b)
             (format t "~&alice ~a~%bob ~a~%" alice bob)
             (unless (and (string= alice "heard from 10.78.0.2: hello from bob")
                          (string= bob "heard from 10.78.0.1: hello from alice"))
               (error "the participants heard something else"))))
      (run "ip" "netns" "del" a)
      (run "ip" "netns" "del" b)
      (format t "~&namespaces removed~%"))))

(let ((name (ext:getenv "CHAT_NAME")))
  (if name
      (progn (participant name) (ext:quit 0))
      (demo)))
