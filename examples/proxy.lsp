;;;; proxy.lsp -- a TCP port forwarder on the event loop: half close and backpressure.
;;;
;;;   ecl --shell examples/proxy.lsp
;;;
;;; START-PROXY serves a port with start-event-loop-server; for each client
;;; it connects, without blocking, to the target and relays both ways with
;;; the write queues.  A side whose peer's queue is past the high-water mark
;;; is not read until that queue drains (backpressure); end of file on one
;;; side shuts down the other side's output once its queue is sent (half
;;; close); both are closed when both directions are done.
;;;
;;; The self-check runs an echo target in a thread, which after the client's
;;; end of file sends the Adler-32 of what it got and half-closes.  A client
;;; with a small receive buffer that starts reading late pushes 3 MiB through
;;; the proxy and half-closes; it checks the echo, the target's checksum, the
;;; end of file, and that the proxy paused reading rather than queueing
;;; megabytes.  Uses the installed module, (require :net), or the file named
;;; by NET_FAS.

(let ((fas (ext:getenv "NET_FAS")))
  (if fas (load fas) (require :net)))

(defpackage "PROXY" (:use "CL"))
(in-package "PROXY")

(defconstant +high-water-mark+ (* 64 1024))
(defconstant +chunk+ (* 64 1024))

;;; What the self-check asks of the proxy: how often it paused a side, and
;;; the most octets one of its queues held (updated in the loop's thread).
(defvar *pauses* 0)
(defvar *max-queued* 0)

;;; A side: its socket, its watcher, and whether it has sent end of file.
(defstruct side socket watcher eof)

(defun pump (from to buffer)
  "FROM is readable: move what it has to TO's queue.  Returns :EOF at end of file."
  (let ((n (net:receive (side-socket from) buffer)))
    (cond ((null n) nil)                ; nothing after all
          ((zerop n)                    ; end of file: half close TO once sent
           (setf (side-eof from) t
                 (net:watcher-events (side-watcher from)) nil)
           (net:shutdown-after-drain (side-watcher to))
           :eof)
          ((not (net:queue-send (side-watcher to) buffer :end n))
           ;; Past the high-water mark: stop reading FROM until TO drains.
           (incf *pauses*)
           (setf *max-queued* (max *max-queued* (net:watcher-queued-octets (side-watcher to)))
                 (net:watcher-events (side-watcher from)) nil)))))

(defun resume (side)
  "The other side's queue drained: read SIDE again, unless it is at end of file."
  (let ((w (side-watcher side)))
    (when (and w (not (side-eof side)) (null (net:watcher-events w)))
      (setf (net:watcher-events w) '(:read)))))

(defun relay (client target-address target-port)
  "The handler: connect to the target without blocking, then relay both ways."
  (let* ((loop net:*server-event-loop*)
         (buffer (make-array +chunk+ :element-type '(unsigned-byte 8)))
         (c (make-side :socket client))
         (target (net:make-socket :address-family (net:address-family target-address)
                                  :blocking nil))
         (tg (make-side :socket target))
         (connected nil))
    (labels ((abort-both (&optional condition)
               (when condition (format *error-output* "~&proxy: ~a~%" condition))
               (net:close client :abort t)
               (net:close target :abort t))
             (readable (from to)
               (handler-case
                   (when (and (eq (pump from to buffer) :eof) (side-eof to))
                     ;; Both ends have sent end of file: nothing more can
                     ;; arrive, so closing loses nothing once the queues are sent.
                     (net:close-after-drain (side-watcher c))
                     (net:close-after-drain (side-watcher tg)))
                 (net:socket-error (e) (abort-both e))))
             (watch (side events callback other)
               (setf (side-watcher side)
                     (net:add-watcher loop (side-socket side) events callback
                                      :high-water-mark +high-water-mark+
                                      :on-drain (lambda () (resume other))
                                      :on-error #'abort-both)))
             (connect-done ()
               (handler-case (net:finish-connect target)
                 (net:socket-error (e) (return-from connect-done (abort-both e))))
               (setf connected t
                     (net:watcher-events (side-watcher tg)) '(:read))
               (watch c '(:read) (lambda (s events)
                                   (declare (ignore s events))
                                   (readable c tg))
                      tg)))
      ;; The connection's completion shows as :WRITE.
      (watch tg '(:write) (lambda (s events)
                            (declare (ignore s events))
                            (if connected (readable tg c) (connect-done)))
             c)
      (handler-case (net:connect target target-address :port target-port)
        (net:socket-error (e) (abort-both e))))))

(defun start-proxy (port target-host target-port &rest server-args)
  "Forward connections to PORT (0: a free one) to TARGET-HOST and
TARGET-PORT; the event-loop server, for net:stop-server and net:server-port."
  (let ((address (first (net:lookup-host target-host))))
    (apply #'net:start-event-loop-server
           (lambda (client) (relay client address target-port))
           port server-args)))

;;; The self-check

(defun adler-32 (octets &key (sum 1) (end (length octets)))
  "The Adler-32 of OCTETS[0,END), continuing from SUM."
  (let ((a (logand sum #xffff))
        (b (ash sum -16)))
    (declare (fixnum a b))
    (dotimes (i end (logior (ash b 16) a))
      (setf a (mod (+ a (aref octets i)) 65521)
            b (mod (+ b a) 65521)))))

(defun ascii (string)
  (map '(vector (unsigned-byte 8)) #'char-code string))

(defun echo-target (listener)
  "Echo one connection until end of file, then send a line with the count
and the Adler-32 of what came and half-close; return the count, the sum and
whether the proxy then closed the connection."
  (let ((s (net:accept-connection listener :timeout 10))
        (buffer (make-array +chunk+ :element-type '(unsigned-byte 8)))
        (count 0)
        (sum 1))
    (unwind-protect
         (progn
           (setf (net:socket-timeout-of s) 10)
           (loop for n = (net:receive s buffer)
                 until (zerop n)
                 do (setf sum (adler-32 buffer :sum sum :end n))
                    (incf count n)
                    (net:send s buffer :end n))
           (net:send s (ascii (format nil "target got ~d octets, Adler-32 ~8,'0x~%" count sum)))
           (net:shutdown s :output)
           (list count sum (zerop (net:receive s buffer))))
      (net:close s))))

(defun client (port data)
  "Send DATA through the proxy at PORT from a thread and half-close, while
reading (late, through a small receive buffer) until end of file; the
octets read."
  (net:with-connection (s "127.0.0.1" port :timeout 10 :receive-buffer 16384)
    (setf (net:socket-timeout-of s) 10)
    (let* ((writer (mp:process-run-function
                    "writer"
                    (lambda ()
                      (net:send s data)
                      (net:shutdown s :output))))
           (got (make-array (+ (length data) 100) :element-type '(unsigned-byte 8)))
           (count 0))
      (sleep 0.5)                       ; a slow reader: the proxy must hold back
      (loop for n = (net:receive s got :start count)
            until (zerop n)
            do (incf count n)
               (when (= count (length got))
                 (error "more than ~d octets came back" count)))
      (mp:process-join writer)
      (subseq got 0 count))))

(let* ((size (* 3 1024 1024))
       (data (let ((v (make-array size :element-type '(unsigned-byte 8)))
                   (state (make-random-state t)))
               (dotimes (i size v) (setf (aref v i) (random 256 state)))))
       (sum (adler-32 data)))
  (net:with-listener (listener 0 :send-buffer 16384 :receive-buffer 16384)
    (let* ((target (mp:process-run-function "target" #'echo-target listener))
           ;; Small kernel buffers toward the client (accepted sockets inherit
           ;; the listener's), so that the proxy's own queue fills.
           (proxy (start-proxy 0 "127.0.0.1" (net:socket-local-port listener)
                               :send-buffer 65536)))
      (format t "~&proxy on port ~d to the echo target on port ~d~%"
              (net:server-port proxy) (net:socket-local-port listener))
      (unwind-protect
           (let* ((got (client (net:server-port proxy) data))
                  (echo (subseq got 0 (min size (length got))))
                  (line (map 'string #'code-char (subseq got (length echo))))
                  (expected (format nil "target got ~d octets, Adler-32 ~8,'0x~%" size sum)))
             (destructuring-bind (count target-sum closed) (mp:process-join target)
               (format t "~&client sent ~d octets (Adler-32 ~8,'0x) and half-closed~%" size sum)
               (format t "~&target got ~d octets (Adler-32 ~8,'0x), echoed them, half-closed~:[~;, then saw the proxy close~]~%"
                       count target-sum closed)
               (format t "~&client got the echo (Adler-32 ~8,'0x), the line ~s, then end of file~%"
                       (adler-32 echo) (string-right-trim '(#\Newline) line))
               (format t "~&proxy paused a side ~d time~:p; its largest queue held ~d octets (high-water mark ~d)~%"
                       *pauses* *max-queued* +high-water-mark+)
               (unless (and (= count size) (= target-sum sum) closed)
                 (error "the target got ~d octets, Adler-32 ~x" count target-sum))
               (unless (and (equalp echo data) (string= line expected))
                 (error "the echo or the target's line differs"))
               (unless (plusp *pauses*)
                 (error "the proxy never paused a side"))
               (unless (< *max-queued* (+ +high-water-mark+ +chunk+))
                 (error "a queue grew to ~d octets" *max-queued*))))
        (net:stop-server proxy)))))
