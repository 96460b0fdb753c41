;;;; net-servers.lsp -- the net servers of the benchmarks, one per path: the event loop, the loop's server helper, blocking sockets in threads, the threaded server helper, the bivalent stream.
;;;
;;;   NET_BENCH_SERVER=KIND NET_BENCH_MODE=MODE NET_BENCH_PORT=0 \
;;;     ecl --norc --load bench/servers/net-servers.fas
;;;
;;; Serves on 127.0.0.1 (port 0: any free port), prints "port=N", and runs
;;; until killed.  MODE is echo (TCP: each read sent straight back), discard
;;; (TCP: read and dropped; the connection closed at end of file) or udp
;;; (each datagram back to its sender).  KIND:
;;;
;;;   loop          one event loop, readiness watchers, one shared receive
;;;                 buffer (echo: examples/c10k-echo.lsp itself; discard and
;;;                 udp: the same shape here)
;;;   loop-server   START-EVENT-LOOP-SERVER, the loop's server helper
;;;   blocking      blocking sockets, a new MP thread per connection (udp:
;;;                 one thread)
;;;   threaded      START-THREADED-SERVER, the threaded server helper
;;;   stream        a thread per connection reading and writing through the
;;;                 socket's bivalent stream: READ-AVAILABLE :WAIT T,
;;;                 WRITE-SEQUENCE, FINISH-OUTPUT
;;;
;;; Each does what the C servers (bench/uv-echo.c, bench/thread-echo.c) do,
;;; with caller buffers reused.  Compiled natively by make (bench/README.md).
;;; Uses the file named by NET_FAS, or the installed module.

(let ((fas (ext:getenv "NET_FAS")))
  (if fas (load fas) (require :net)))

(defpackage "NET-BENCH-SERVERS" (:use "CL") (:export "MAIN"))
(in-package "NET-BENCH-SERVERS")

(defconstant +buffer-size+ 65536)


(defun octet-buffer ()
  (make-array +buffer-size+ :element-type '(unsigned-byte 8)))

(defun print-port (port)
  (format t "port=~d~%" port)
  (finish-output))

;;; Buffers of the thread servers: one per connection being served, reused.
;;; A list popped and pushed by compare-and-swap, no lock (a lock and its
;;; interrupt masking cost more than the rest of an accepted connection's
;;; Lisp).  Each push makes a fresh cell, so a pop's swap cannot succeed
;;; on a head that was popped and pushed back meanwhile.

(defvar *buffers* '())

(defun call-with-buffer (function)
  "Call FUNCTION with a receive buffer taken from the pool, given back after."
  (let ((buffer (or (mp:atomic-pop (symbol-value '*buffers*)) (octet-buffer))))
    (unwind-protect (funcall function buffer)
      (mp:atomic-push buffer (symbol-value '*buffers*)))))

;;; Blocking calls: a thread per connection, or a pool's thread.

(defun echo-blocking (socket buffer discard)
  "Receive what SOCKET has, send it all back (unless DISCARD), until end of
file or a failure (the accept test's clients reset: returned, not signalled)."
  (loop (multiple-value-bind (n failure) (net:receive socket buffer :errorp nil)
          (when (or failure (eql n 0))
            (return))
          (unless discard
            (net:send socket buffer :end n)))))

(defun echo-through-stream (socket buffer discard)
  "The same through the socket's stream: READ-AVAILABLE :WAIT T waits for
the first octet and takes what else is there (what the stream holds, and
what the socket has now, a bulk sender's data straight into BUFFER)."
  (loop
    (multiple-value-bind (end eof) (net:read-available socket buffer :wait t)
      (when eof (return))
      (unless (or discard (zerop end))
        (write-sequence buffer socket :end end)
        (finish-output socket)))))

(defun serve-connection (socket function discard)
  "Serve SOCKET with FUNCTION (ECHO-BLOCKING or ECHO-STREAM) and close it
in order (the pump test's client waits for that end of file); a reset by
the client (the accept test resets) ends it quietly."
  (unwind-protect
       (handler-case (call-with-buffer (lambda (buffer) (funcall function socket buffer discard)))
         (net:network-error () nil))
    (net:close socket)))

(defun serve-threads (listener function discard)
  "Accept on LISTENER forever, each connection served in a new thread."
  (loop (let ((socket (handler-case (net:accept-connection listener)
                        (net:network-error () nil))))
          (when socket
            (mp:process-run-function "bench connection"
                                     (lambda () (serve-connection socket function discard)))))))

(defun serve-threaded-helper (port discard)
  (let ((server (net:start-threaded-server
                 (lambda (socket)
                   (call-with-buffer (lambda (buffer) (echo-blocking socket buffer discard))))
                 port :host "127.0.0.1" :threads 200 :queue 1000 :nodelay t
                      :on-error (lambda (condition socket)
                                  (declare (ignore condition socket))))))
    (print-port (net:server-port server))
    (loop (sleep 3600))))

(defun echo-datagrams (socket buffer sender)
  "Receive datagrams on SOCKET and send each back to its sender, learnt
into SENDER in place, until a non-blocking SOCKET has none."
  ;; No type declaration of BUFFER: net checks it, and ECL checks a
  ;; DEFTYPE'd array type with a call of TYPEP costing thousands of
  ;; instructions, here once per readiness event of the loop.
  (loop (multiple-value-bind (n from port) (net:receive-from socket buffer :sender-octets sender)
          (unless n (return))
          (net:send-to socket buffer from :port port :end n))))

;;; The event loop

(defconstant +receives-per-event+ 32
  "At most this many receives per readiness of a connection (as libuv
reads), so that one busy connection does not starve the others.")

(defun discard-readable (socket buffer)
  "Receive what SOCKET has and drop it; close SOCKET at end of file.  A
receive that fills BUFFER may have left more: receive again, without
going back to the loop for another readiness event."
  (dotimes (i +receives-per-event+)
    (let ((n (net:receive socket buffer)))
      (cond ((null n) (return))
            ((eql n 0) (net:close socket) (return))
            ((< n (length buffer)) (return))))))

(defun accept-discarding (loop listener buffer)
  "Accept what LISTENER's backlog holds, each connection watched by LOOP
and its octets dropped."
  (loop for socket = (handler-case (net:accept-connection listener :blocking nil)
                       (net:socket-error () :next))
        while socket
        unless (eq socket :next)
          do (net:add-watcher loop socket '(:read)
                              (lambda (s events)
                                (declare (ignore events))
                                (discard-readable s buffer)))))

(defun close-failing-socket (condition)
  (declare (ignore condition))
  (let ((restart (find-restart 'net:close-socket)))
    (when restart (invoke-restart restart))))

(defun run-loop (loop)
  (net:add-signal-watcher loop :term (lambda (signal)
                                       (declare (ignore signal))
                                       (net:stop-event-loop loop)))
  (handler-bind ((net:socket-error #'close-failing-socket))
    (net:run-event-loop loop)))

(defun serve-loop-discard (listener)
  (let ((buffer (octet-buffer)))
    (net:with-event-loop (loop)
      (net:add-watcher loop listener '(:read)
                       (lambda (l events)
                         (declare (ignore events))
                         (accept-discarding loop l buffer)))
      (run-loop loop))))

(defun serve-loop-udp (socket)
  (let ((buffer (octet-buffer))
        (sender (make-array 4 :element-type '(unsigned-byte 8))))
    (net:with-event-loop (loop)
      (net:add-watcher loop socket '(:read)
                       (lambda (s events)
                         (declare (ignore events))
                         (echo-datagrams s buffer sender)))
      (run-loop loop))))

(defun serve-loop-server (port discard)
  "START-EVENT-LOOP-SERVER: echo by examples/c10k-echo.lsp's connections,
discard by this file's."
  (let* ((buffer (octet-buffer))
         (echo-server nil)
         (server
           (net:start-event-loop-server
            (lambda (socket)
              (if discard
                  (net:add-watcher net:*server-event-loop* socket '(:read)
                                   (lambda (s events)
                                     (declare (ignore events))
                                     (discard-readable s buffer)))
                  (funcall (find-symbol "ADD-CONNECTION" "C10K-ECHO")
                           (or echo-server
                               (setf echo-server
                                     (funcall (find-symbol "MAKE-SERVER" "C10K-ECHO")
                                              net:*server-event-loop* nil)))
                           socket)))
            port :host "127.0.0.1" :nodelay t
                 :on-error (lambda (condition socket)
                             (declare (ignore condition))
                             (when socket (net:close socket :abort t))))))
    (print-port (net:server-port server))
    (loop (sleep 3600))))

;;; The program

(defun make-udp-socket (port blocking)
  (net:bind-address (net:make-socket :type :datagram :blocking blocking) "127.0.0.1" :port port))

(defun main ()
  (let* ((kind (ext:getenv "NET_BENCH_SERVER"))
         (mode (or (ext:getenv "NET_BENCH_MODE") "echo"))
         (port (parse-integer (or (ext:getenv "NET_BENCH_PORT") "0")))
         (discard (equal mode "discard"))
         (udp (equal mode "udp")))
    (unless (member mode '("echo" "discard" "udp") :test #'equal)
      (error "NET_BENCH_MODE is echo, discard or udp, not ~s" mode))
    (when (and (equal kind "loop-server") (not (equal mode "echo")) (not discard))
      (error "the loop's server helper serves TCP only"))
    (when (and udp (member kind '("threaded" "stream") :test #'equal))
      (error "the ~a server serves TCP only" kind))
    (when (and (not udp) (member kind '("loop-server" "loop") :test #'equal) (not discard))
      ;; Both echo through examples/c10k-echo.lsp's connections.
      (ext:setenv "C10K_ECHO_LIBRARY" "1")
      (load (or (ext:getenv "NET_BENCH_C10K_ECHO") "examples/c10k-echo.fas")))
    (cond ((equal kind "loop")
           (cond (udp (let ((s (make-udp-socket port nil)))
                        (print-port (net:socket-local-port s))
                        (serve-loop-udp s)))
                 (discard (let ((l (net:make-listener port :host "127.0.0.1" :blocking nil
                                                           :nodelay t)))
                            (print-port (net:socket-local-port l))
                            (serve-loop-discard l)))
                 (t (funcall (find-symbol "SERVE" "C10K-ECHO") :port port))))
          ((equal kind "loop-server") (serve-loop-server port discard))
          ((equal kind "threaded") (serve-threaded-helper port discard))
          ((member kind '("blocking" "stream") :test #'equal)
           (if udp
               (let ((s (make-udp-socket port t)))
                 (print-port (net:socket-local-port s))
                 (echo-datagrams s (octet-buffer) (make-array 4 :element-type '(unsigned-byte 8))))
               (let ((l (net:make-listener port :host "127.0.0.1" :nodelay t :backlog 4096)))
                 (print-port (net:socket-local-port l))
                 (serve-threads l (if (equal kind "stream") #'echo-through-stream #'echo-blocking)
                                discard))))
          (t (error "NET_BENCH_SERVER is loop, loop-server, blocking, threaded or stream, not ~s"
                    kind)))))

;;; A failure in any thread (out of memory with many threads, say) ends
;;; the server with status 1, instead of a debugger nobody reads.
(when (ext:getenv "NET_BENCH_SERVER")
  (setf *debugger-hook* (lambda (condition hook)
                          (declare (ignore hook))
                          (format *error-output* "~&net-servers: ~a~%" condition)
                          (finish-output *error-output*)
                          (ext:quit 1)))
  (main)
  (ext:quit 0))
