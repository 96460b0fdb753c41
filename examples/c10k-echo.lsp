;;;; c10k-echo.lsp -- a single-threaded echo server on one event loop, for ten thousand connections and more.
;;;
;;;   ecl --norc --load examples/c10k-echo.lsp --eval '(ext:quit 0)'
;;;       checks itself: serves a few clients from a thread, checks every
;;;       reply, stops the loop.
;;;   C10K_ECHO_PORT=7000 ecl --norc --load examples/c10k-echo.lsp
;;;       serves on 127.0.0.1 port 7000 (0: any free port), prints
;;;       "port=N", and runs until stopped (SIGTERM or SIGINT).
;;;   C10K_ECHO_STREAM=1 (with C10K_ECHO_PORT): each connection is served
;;;       through its stream (READ-AVAILABLE, WRITE-SEQUENCE,
;;;       QUEUE-STREAM-OUTPUT) instead of RECEIVE and QUEUE-SEND; the C10K
;;;       test measures that idle streams hold no buffer.
;;;   C10K_ECHO_LIBRARY=1: only defines C10K-ECHO:SERVE, for programs that
;;;       load this file (the C10K test and the benchmarks do).
;;;
;;; Compile it (compile-file) for real loads: loaded as source it runs in
;;; ECL's bytecode interpreter.  Uses the installed module, (require :net),
;;; or the file named by the environment variable NET_FAS.
;;;
;;; How it holds many connections cheaply: one loop, one receive buffer
;;; shared by every connection (the echo is sent at once), a write queue
;;; only for what the socket does not take now, reading paused on a
;;; connection whose queue passes the high-water mark until it drains, and
;;; nothing consed per event.  Accept drains the backlog on each readiness
;;; of the listener; when descriptors run out (EMFILE) the listener's
;;; watcher is paused for a moment by a timer, so the server neither spins
;;; nor dies, and resumes when connections close.

(let ((fas (ext:getenv "NET_FAS")))
  (if fas (load fas) (require :net)))

(defpackage "C10K-ECHO"
  (:use "CL")
  (:export "SERVE" "SELF-CHECK"))
(in-package "C10K-ECHO")

(defconstant +buffer-size+ 65536)
(defconstant +stream-chunk+ 16384
  "Octets moved per READ-AVAILABLE in stream mode: less than a stream's
buffer, as QUEUE-STREAM-OUTPUT asks.")
(defconstant +accepts-per-event+ 256
  "At most this many accepts per readiness of the listener, so that a flood
of connections does not starve those already open.")
(defconstant +pause-seconds+ 0.1
  "How long the listener rests when descriptors run out.")
(defparameter *high-water-mark* (* 256 1024))

(defstruct (server (:constructor make-server (loop listener)))
  loop
  listener
  (listener-watcher nil)
  (buffer (make-array +buffer-size+ :element-type '(unsigned-byte 8))
   :type (simple-array (unsigned-byte 8) (*)))
  (stream-p nil)                        ; serve through the sockets' streams
  (pauses 0 :type fixnum))

;;; Connections

(defun log-failure (condition)
  "Log a connection's failure, unless it is a peer's reset: a busy server
meets those all the time."
  (unless (typep condition '(or net:connection-reset net:broken-pipe))
    (format *error-output* "~&c10k-echo: ~a; closing the socket~%" condition)))

(defun close-failed (socket condition)
  "SOCKET's connection failed with CONDITION (reset by the peer, say):
close it."
  (log-failure condition)
  (net:close socket :abort t))

(defun echo-readable (buffer socket watcher)
  "Receive what SOCKET has into BUFFER, the server's shared one, and send
it straight back; what the socket does not take now goes to the watcher's
queue, and reading stops while the queue is past the high-water mark.  A
failed receive (a client's reset: every connection of a busy server may
end so) comes back as a value, :ERRORP NIL, not as a signal."
  (multiple-value-bind (n failure) (net:receive socket buffer :errorp nil)
    (cond (failure (close-failed socket failure))
          ((null n))                       ; nothing after all
          ((eql n 0) (net:close socket))   ; also stops the watcher
          ((not (net:queue-send watcher buffer :end n))
           ;; Past the high-water mark: stop reading until it drains.
           (setf (net:watcher-events watcher) nil)))))

(defun stream-echo-readable (server socket watcher)
  "ECHO-READABLE through SOCKET's stream: what it has read goes back by
WRITE-SEQUENCE and QUEUE-STREAM-OUTPUT.  Reads until the stream has nothing
more now, since input left in the stream's buffer would not make the socket
readable again; the stream holds buffers only within this call."
  (when (net:socket-open-p socket)
    (let ((buffer (server-buffer server)))
      (loop
        (multiple-value-bind (end eof) (net:read-available socket buffer :end +stream-chunk+)
          (cond ((plusp end)
                 (write-sequence buffer socket :end end)
                 (unless (net:queue-stream-output watcher)
                   ;; Past the high-water mark: ON-DRAIN resumes.
                   (setf (net:watcher-events watcher) nil)
                   (return)))
                (eof (net:close socket) (return))
                (t (return))))))))

(defun add-connection (server socket)
  (let ((watcher nil)
        (buffer (server-buffer server)))
    (setf watcher
          (net:add-watcher (server-loop server) socket '(:read)
                           ;; A closure per mode, holding what each event
                           ;; needs: no lookup on the way.
                           (if (server-stream-p server)
                               (lambda (s events)
                                 (declare (ignore events))
                                 (stream-echo-readable server s watcher))
                               (lambda (s events)
                                 (declare (ignore events))
                                 (echo-readable buffer s watcher)))
                           :high-water-mark *high-water-mark*
                           :on-drain (lambda ()
                                       (setf (net:watcher-events watcher) '(:read))
                                       (when (server-stream-p server)
                                         (stream-echo-readable server socket watcher)))))))

;;; The listener

(defun accept-some (server)
  "Accept what the backlog holds (at most +ACCEPTS-PER-EVENT+).  T if the
listener must rest because descriptors ran out.  One handler for the
whole batch, not one per accept: a failure ends the batch, and the
listener, still readable, brings the rest of the backlog on the next
pass of the loop."
  (let ((listener (server-listener server))
        (socket nil))
    (handler-case
        (dotimes (i +accepts-per-event+ nil)
          (setf socket (net:accept-connection listener :peer nil :blocking nil))
          (unless socket (return nil))
          (add-connection server socket)
          (setf socket nil))
      (net:resource-exhausted () t)
      (net:network-error (c)
        ;; An accept whose connection was reset before we got to it
        ;; (SOCKET still NIL): nothing to say.  A failure to watch an
        ;; accepted connection is that connection's alone to close (the
        ;; restart in a listener's callback would close the listener).
        (when socket
          (format *error-output* "~&c10k-echo: ~a~%" c)
          (net:close socket :abort t))
        nil))))

(defun pause-listener (server)
  "Descriptors ran out (EMFILE): stop watching the listener for a moment,
rather than being told again at once that it is readable."
  (let ((watcher (server-listener-watcher server)))
    (incf (server-pauses server))
    (setf (net:watcher-events watcher) nil)
    (net:add-timer (server-loop server)
                   (lambda () (setf (net:watcher-events watcher) '(:read)))
                   +pause-seconds+)))

(defun watch-listener (server)
  (setf (server-listener-watcher server)
        (net:add-watcher (server-loop server) (server-listener server) '(:read)
                         (lambda (s events)
                           (declare (ignore s events))
                           (when (accept-some server) (pause-listener server))))))

;;; The server

(defun close-failing-socket (condition)
  "A connection failed in its callback by a signal (in stream mode, say):
close it and go on with the others."
  (log-failure condition)
  (let ((restart (find-restart 'net:close-socket)))
    (when restart (invoke-restart restart))))

(defun serve (&key (port 0) (host "127.0.0.1") (on-ready #'print-port) stream)
  "Serve echo on HOST and PORT in this thread until the loop is stopped
(by NET:STOP-EVENT-LOOP from any thread, or SIGTERM), through each
connection's stream if STREAM.  ON-READY is called with the port and the
event loop once listening.  Returns the number of times the listener rested
for lack of descriptors."
  (let ((listener (net:listen-on (net:bind-address (net:make-socket :blocking nil
                                                                    :reuse-address t)
                                                   host :port port))))
    (unwind-protect
         (net:with-event-loop (loop)
           (let ((server (make-server loop listener)))
             (setf (server-stream-p server) stream)
             (watch-listener server)
             (net:add-signal-watcher loop :term (lambda (signal)
                                                  (declare (ignore signal))
                                                  (net:stop-event-loop loop)))
             (funcall on-ready (net:socket-local-port listener) loop)
             (handler-bind ((net:socket-error #'close-failing-socket))
               (net:run-event-loop loop))
             (server-pauses server)))
      (net:close listener))))

(defun print-port (port loop)
  (declare (ignore loop))
  (format t "port=~d~%" port)
  (finish-output))

;;; The self-check: a server in a thread, a few blocking clients

(defun octets (n seed)
  (let ((v (make-array n :element-type '(unsigned-byte 8))))
    (dotimes (i n v) (setf (aref v i) (mod (+ (* seed 31) i) 256)))))

(defun check-rounds (port clients rounds)
  "CLIENTS connections at once, ROUNDS request/response rounds each."
  (let ((sockets (loop repeat clients
                       collect (net:connect (net:make-socket :timeout 10) "127.0.0.1"
                                            :port port)))
        (reply (make-array 64 :element-type '(unsigned-byte 8))))
    (unwind-protect
         (dotimes (round rounds)
           (loop for s in sockets for i from 0
                 do (net:send s (octets 64 (+ i (* 1000 round)))))
           (loop for s in sockets for i from 0
                 do (net:receive s reply :wait-all t)
                    (unless (equalp reply (octets 64 (+ i (* 1000 round))))
                      (error "client ~d round ~d: the echo differs" i round))))
      (mapc #'net:close sockets))))

(defun check-bulk (port size)
  "One client sends SIZE octets while another thread reads them back: the
server's queue and high-water mark at work."
  (let ((data (octets size 7))
        (back (make-array size :element-type '(unsigned-byte 8))))
    (net:with-open-socket (s :timeout 10)
      (net:connect s "127.0.0.1" :port port)
      (let ((writer (mp:process-run-function "bulk writer"
                                             (lambda () (net:send s data)))))
        (net:receive s back :wait-all t)
        (mp:process-join writer))
      (unless (equalp data back)
        (error "bulk echo of ~d octets differs" size)))))

(defun self-check ()
  "Serve from a thread, drive the server with blocking clients (50 at once,
3 checked rounds each, then a 4 MiB echo through its write queue), stop its
loop from this thread, and signal an error if any reply differs."
  (let* ((ready nil)
         (server (mp:process-run-function
                  "c10k-echo" (lambda () (serve :on-ready (lambda (port loop)
                                                            (setf ready (cons port loop)))))))
         (port nil))
    (unwind-protect
         (progn
           (loop repeat 500 until ready do (sleep 0.01))
           (unless ready (error "the server did not start"))
           (setf port (car ready))
           (check-rounds port 50 3)
           (check-bulk port (* 4 1024 1024))
           (format t "~&c10k-echo: 50 clients x 3 rounds and a 4 MiB echo served on port ~d~%"
                   port))
      (when ready (net:stop-event-loop (cdr ready)))
      (mp:process-join server))))

(cond ((ext:getenv "C10K_ECHO_LIBRARY"))
      ((ext:getenv "C10K_ECHO_PORT")
       (serve :port (parse-integer (ext:getenv "C10K_ECHO_PORT"))
              :stream (equal (ext:getenv "C10K_ECHO_STREAM") "1"))
       (ext:quit 0))
      (t (self-check)))
