;;;; ecl-servers.lsp -- the baseline of the benchmarks: the same servers on ECL's bundled sockets module (sb-bsd-sockets), a thread per connection and serve-event.
;;;
;;;   ECL_BENCH_SERVER=KIND NET_BENCH_MODE=MODE NET_BENCH_PORT=0 \
;;;     ecl --norc --load bench/servers/ecl-servers.fas
;;;
;;; What an ECL user has without net.  Serves on 127.0.0.1 (port 0: any
;;; free port), prints "port=N", runs until killed.  MODE as in
;;; net-servers.lsp: echo, discard or udp.  KIND:
;;;
;;;   ecl-threads      blocking sockets, a new MP thread per connection
;;;                    (udp: one thread)
;;;   ecl-serve-event  non-blocking sockets on the serve-event module's
;;;                    handlers (select(2), so at most FD_SETSIZE
;;;                    descriptors: not for 1,000 connections and more)
;;;
;;; Buffers cannot be reused here as they are in the net servers: ECL's
;;; SOCKET-RECEIVE shrinks the vector it is given, in place, to the count
;;; received, so a reused buffer ends no longer than the shortest read (and
;;; empty after an end of file).  Each receive therefore takes a fresh
;;; vector (SOCKET-RECEIVE with NIL allocates one), as a user of the module
;;; must; and the sender of a datagram comes as fresh objects too.

(eval-when (:compile-toplevel :load-toplevel :execute)
  (require :sb-bsd-sockets)
  (require :serve-event))

(defpackage "ECL-BENCH-SERVERS" (:use "CL" "SB-BSD-SOCKETS"))
(in-package "ECL-BENCH-SERVERS")

(defconstant +buffer-size+ 65536)

(defun receive (socket)
  "SOCKET-RECEIVE into a fresh vector: the values buffer, count, address, port."
  (socket-receive socket nil +buffer-size+ :element-type '(unsigned-byte 8)))

(defun make-server-socket (port udp)
  "A socket bound to 127.0.0.1 and PORT: listening, or with UDP a datagram one."
  (let ((s (make-instance 'inet-socket :type (if udp :datagram :stream)
                                       :protocol (if udp :udp :tcp))))
    (setf (sockopt-reuse-address s) t)
    (socket-bind s #(127 0 0 1) port)
    (unless udp (socket-listen s 4096))
    (format t "port=~d~%" (nth-value 1 (socket-name s)))
    (finish-output)
    s))

(defun send-all (socket buffer n)
  (loop with sent = 0
        while (< sent n)
        do (incf sent (socket-send socket (if (zerop sent) buffer (subseq buffer sent n))
                                   (- n sent)))))

(defun serve-once (socket discard)
  "One receive on SOCKET, echoed unless DISCARD; NIL at end of file or
error, T otherwise (also when a non-blocking SOCKET had nothing)."
  (handler-case
      (multiple-value-bind (b n) (receive socket)
        (cond ((null b) t)
              ((zerop n) nil)
              (t (unless discard (send-all socket b n)) t)))
    (error () nil)))

;;; A thread per connection

(defun serve-threads (listener discard)
  (loop (let ((socket (handler-case (socket-accept listener) (error () nil))))
          (when socket
            (mp:process-run-function
             "ecl connection"
             (lambda ()
               (unwind-protect (loop while (serve-once socket discard))
                 (ignore-errors (socket-close socket)))))))))

(defun serve-udp (socket)
  "Each datagram back to its sender, forever (blocking SOCKET), or until
none is left (non-blocking)."
  (loop (multiple-value-bind (b n address port) (receive socket)
          (unless b (return))
          (ignore-errors (socket-send socket b n :address (list address port))))))

;;; serve-event

(defun watch-connection (socket discard)
  (setf (non-blocking-mode socket) t)
  (let ((handler nil))
    (setf handler
          (serve-event:add-fd-handler
           (socket-file-descriptor socket) :input
           (lambda (fd)
             (declare (ignore fd))
             (unless (serve-once socket discard)
               (serve-event:remove-fd-handler handler)
               (ignore-errors (socket-close socket))))))))

(defun serve-events (socket udp discard)
  (progn
    (setf (non-blocking-mode socket) t)
    (serve-event:add-fd-handler
     (socket-file-descriptor socket) :input
     (if udp
         (lambda (fd) (declare (ignore fd)) (serve-udp socket))
         (lambda (fd)
           (declare (ignore fd))
           ;; A non-blocking accept with nothing pending signals an error.
           (loop for s = (handler-case (socket-accept socket) (error () nil))
                 while s do (watch-connection s discard)))))
    (loop (serve-event:serve-all-events))))

(defun main ()
  (let* ((kind (ext:getenv "ECL_BENCH_SERVER"))
         (mode (or (ext:getenv "NET_BENCH_MODE") "echo"))
         (udp (equal mode "udp"))
         (discard (equal mode "discard"))
         (socket (make-server-socket (parse-integer (or (ext:getenv "NET_BENCH_PORT") "0"))
                                     udp)))
    (cond ((equal kind "ecl-serve-event") (serve-events socket udp discard))
          ((not (equal kind "ecl-threads"))
           (error "ECL_BENCH_SERVER is ecl-threads or ecl-serve-event, not ~s" kind))
          (udp (serve-udp socket))
          (t (serve-threads socket discard)))))

;;; A failure in any thread (out of memory with many threads, say) ends
;;; the server with status 1, instead of a debugger nobody reads.
(when (ext:getenv "ECL_BENCH_SERVER")
  (setf *debugger-hook* (lambda (condition hook)
                          (declare (ignore hook))
                          (format *error-output* "~&ecl-servers: ~a~%" condition)
                          (finish-output *error-output*)
                          (ext:quit 1)))
  (main)
  (ext:quit 0))
