;;;; transfer.lsp -- the data transfers of a socket: SEND and RECEIVE, their
;;;; common calls inline, and the blocking send's send-everything loop.

(in-package "NET")

;;; Raw calls and the stream keep each direction's bytes in order: SEND
;;; sends the stream's buffered output first, RECEIVE takes the stream's
;;; buffered input first (stream.lsp).
(declaim (ftype function %flush-stream-output %take-stream-input))

(net-sys:%defun-inline %flags (out-of-band peek)
  (declare (optimize (speed 3) (safety 0)))
  (the fixnum (logior (the fixnum (if out-of-band net-sys:+msg-oob+ 0))
                      (the fixnum (if peek net-sys:+msg-peek+ 0)))))

(net-sys:%defun-inline %transfer-flags (out-of-band peek errorp)
  "%FLAGS of SEND and RECV, with NET-SYS:+RETURN-ERROR+ for ERRORP NIL: the
glue then returns a failure as its negative code instead of raising it."
  (declare (optimize (speed 3) (safety 0)))
  (the fixnum (logior (%flags out-of-band peek) (if errorp 0 net-sys:+return-error+))))

(defun %would-block (socket syscall)
  (error 'would-block :errno net-sys:+eagain+ :syscall syscall :socket socket
                      :message "the socket is non-blocking and the operation would block"))

(eval-when (:compile-toplevel :load-toplevel :execute) ; special in later files too
  (defvar *send-progress* nil
    "Bound to a fixnum around a %SEND-ALL whose caller must know, if it
unwinds, how far it got: %SEND-ALL keeps it at the index past the last
octet sent."))

(defun %send-all (socket handle buffer start end flags deadline)
  "The one send-everything loop: send BUFFER[START,END) whole, each send
waiting until DEADLINE; returns END.  When nothing can go without waiting
(DEADLINE -1), signals WOULD-BLOCK."
  (declare (fixnum start end))
  (let ((pos start))
    (declare (fixnum pos))
    (loop while (< pos end)
          do (let ((n (net-sys:send handle buffer pos end flags deadline socket)))
               (unless n (%would-block socket "send"))
               (incf pos (the fixnum n))
               (when *send-progress* (setf *send-progress* pos))))
    pos))

(net-sys:%defun-inline %send-unbuffered (socket handle deadline buffer start end out-of-band errorp)
  "SEND once nothing is buffered before it: one send(2), which checks BUFFER,
START and END, a failure coming back as its code only for ERRORP NIL;
blocking, it mostly sent all, else the rest goes by %SEND-REST."
  (declare (optimize (speed 3) (safety 0)))
  (let ((n (net-sys:send handle buffer start end (%transfer-flags out-of-band nil errorp)
                         deadline socket)))
    (cond ((null n) nil)
          ((< (the fixnum n) 0) (%failed n "send" socket errorp))
          ((eql deadline -1) n)
          (t (let ((from (the fixnum (+ (the fixnum (or start 0)) (the fixnum n))))
                   (end (or end (length buffer))))
               (declare (fixnum from end))
               (if (= from end)
                   n
                   (%send-rest socket handle buffer start from end out-of-band deadline
                               errorp)))))))

(defun %send-rest (socket handle buffer start from end out-of-band deadline errorp)
  "The rest, BUFFER[FROM,END), of a blocking SEND of BUFFER[START,END) whose
first send(2) was partial: the whole count, or with ERRORP NIL a failure
returned as NIL and its condition."
  (flet ((rest-of-it ()
           (- (%send-all socket handle buffer from end (%flags out-of-band nil) deadline)
              (or start 0))))
    (if errorp
        (rest-of-it)
        (handler-case (rest-of-it)
          (socket-error (c) (values nil c))))))

(defun %send (socket buffer &optional end (start 0) (errorp t) out-of-band timeout)
  "SEND with its arguments positional, most used first."
  ;; Safety 0: the glue checks BUFFER, START and END, %CALL-ARGS SOCKET.
  (declare (optimize (speed 3) (safety 0)))
  (multiple-value-bind (handle deadline ss) (%call-args socket timeout)
    (cond ((null ss)
           (%send-unbuffered socket handle deadline buffer start end out-of-band errorp))
          (errorp (%send-slowly socket handle deadline ss buffer start end out-of-band))
          (t (%send-slowly-returning-error socket handle deadline ss buffer start end
                                           out-of-band)))))

(defun %send-slowly (socket handle deadline ss buffer start end out-of-band)
  "SEND after the stream's buffered output (urgent data goes before it)."
  (unless out-of-band
    (%flush-stream-output socket ss))
  (%send-unbuffered socket handle deadline buffer start end out-of-band t))

(defun %send-slowly-returning-error (socket handle deadline ss buffer start end out-of-band)
  "%SEND-SLOWLY for :ERRORP NIL (a function of its own: see
%RECEIVE-SLOWLY-RETURNING-ERROR)."
  (handler-case (%send-slowly socket handle deadline ss buffer start end out-of-band)
    (socket-error (c) (values nil c))))

(defun send (socket buffer &key (start 0) end out-of-band timeout (errorp t))
  "Send BUFFER[START,END) (an (unsigned-byte 8) vector, used in place) on
SOCKET.  Blocking: sends it all and returns the count; TIMEOUT (or the
socket's default) bounds the whole call, then SOCKET-TIMEOUT.  Non-blocking:
returns the count sent now, maybe partial, or NIL if none could be.  With
OUT-OF-BAND, sends TCP urgent data (the last octet is the urgent one).
Writing to a reset peer signals BROKEN-PIPE or CONNECTION-RESET, never
SIGPIPE.  With ERRORP NIL, a failure of the connection (a SOCKET-ERROR:
BROKEN-PIPE, CONNECTION-RESET, SOCKET-TIMEOUT, SOCKET-CLOSED...) is not
signalled: SEND returns NIL and the condition as a second value."
  (%send socket buffer end start errorp out-of-band timeout))
(net-sys:%define-positional send %send 2
  ((:end nil) (:start 0) (:errorp t) (:out-of-band nil) (:timeout nil)) t)

(defun %receive (socket buffer &optional end (start 0) (errorp t) out-of-band peek wait-all
                   timeout)
  "RECEIVE with its arguments positional, most used first."
  ;; Safety 0: the glue checks BUFFER, START and END, %CALL-ARGS SOCKET.
  (declare (optimize (speed 3) (safety 0)))
  (multiple-value-bind (handle deadline ss) (%call-args socket timeout)
    (if (or wait-all (and ss (not out-of-band)))
        (if errorp
            (%receive-slowly socket handle deadline ss buffer start end out-of-band peek
                             wait-all)
            (%receive-slowly-returning-error socket handle deadline ss buffer start end
                                             out-of-band peek wait-all))
        ;; The common call: one recv(2), which checks the range; a failure
        ;; comes back as its code only for ERRORP NIL.
        (let ((n (net-sys:recv handle buffer start end (%transfer-flags out-of-band peek errorp)
                               deadline socket)))
          (cond ((null n) nil)
                ((< (the fixnum n) 0) (%failed n "recv" socket errorp))
                ((and (eql n 0)
                      (< (the fixnum start) (the fixnum (or end (length buffer))))
                      (%reset-code socket))
                 ;; End of file after a reset: the reset again.
                 (%failed (%reset-code socket) "recv" socket errorp))
                (t n))))))

(defun %receive-slowly-returning-error (socket handle deadline ss buffer start end
                                        out-of-band peek wait-all)
  "%RECEIVE-SLOWLY for :ERRORP NIL.  A function of its own: a HANDLER-CASE
makes ECL keep its function's arguments and locals in memory (volatile),
and %RECEIVE's common call would pay for it."
  (handler-case (%receive-slowly socket handle deadline ss buffer start end out-of-band peek
                                 wait-all)
    (socket-error (c) (values nil c))))

(defun %receive-slowly (socket handle deadline ss buffer start end out-of-band peek wait-all)
  "RECEIVE through the stream's buffered input, or with WAIT-ALL."
  (let* ((flags (%flags out-of-band peek))
         (end (or end (length buffer)))
         (taken (if (and ss (not out-of-band))
                    (%take-stream-input ss buffer start end peek)
                    0))
         (from (+ start taken))
         (n (if (and (plusp taken) (or (not wait-all) peek (>= from end)))
                0
                (net-sys:recv handle buffer from end flags deadline socket))))
    (declare (fixnum taken from))
    (when (and (eql n 0) (zerop taken) (< from end))
      (%check-reset socket))            ; end of file after a reset: the reset again
    ;; A peek cannot wait for more, and there is one urgent octet at a time.
    (if (or (not wait-all) peek out-of-band (null n) (zerop n))
        (if (plusp taken) (+ taken (or n 0)) n)
        (loop with pos of-type fixnum = (+ from n)
              while (< pos end)
              do (let ((k (net-sys:recv handle buffer pos end flags deadline socket)))
                   (when (or (null k) (zerop k)) (loop-finish))
                   (incf pos k))
              finally (return (- pos start))))))

(defun receive (socket buffer &key (start 0) end out-of-band peek wait-all timeout
                                   (errorp t))
  "Receive into BUFFER[START,END) (an (unsigned-byte 8) vector, filled in
place) from SOCKET.  Returns the count received, 0 at end of file, NIL if
SOCKET is non-blocking and nothing is there.  WAIT-ALL waits until the range
is full or the peer ends the stream.  PEEK leaves the data to be read
again (one look: WAIT-ALL does not apply).  OUT-OF-BAND reads the TCP urgent octet (waiting for one to arrive).
TIMEOUT (or the socket's default) bounds the whole call, then SOCKET-TIMEOUT.
On a datagram socket one call reads one datagram; its excess past END is lost
(RECEIVE-FROM reports it).  After a CONNECTION-RESET every later read of
SOCKET signals it again.  With ERRORP NIL, a failure of the connection
(a SOCKET-ERROR: CONNECTION-RESET, SOCKET-TIMEOUT, SOCKET-CLOSED...) is
not signalled: RECEIVE returns NIL and the condition as a second value,
which costs a server meeting many resets much less than a signal."
  (%receive socket buffer end start errorp out-of-band peek wait-all timeout))
(net-sys:%define-positional receive %receive 2
  ((:end nil) (:start 0) (:errorp t) (:out-of-band nil) (:peek nil) (:wait-all nil)
   (:timeout nil))
  t)

(defun %check-size (size)
  (unless (typep size '(integer 0 #.array-dimension-limit))
    (error 'type-error :datum size :expected-type `(integer 0 ,array-dimension-limit)))
  size)

(defun receive-octets (socket &key (size 4096) wait-all out-of-band peek timeout)
  "The convenience form of RECEIVE that allocates: receive at most SIZE
octets from SOCKET and return them as a fresh (unsigned-byte 8) vector
holding exactly what arrived (empty at end of file), or NIL if SOCKET is
non-blocking and nothing is there.  Other arguments as for RECEIVE.  For
repeated reads, RECEIVE into one reused buffer conses nothing."
  (let* ((buffer (make-array (%check-size size) :element-type '(unsigned-byte 8)))
         (n (receive socket buffer :wait-all wait-all :out-of-band out-of-band :peek peek
                                   :timeout timeout)))
    (cond ((null n) nil)
          ((= n size) buffer)
          (t (subseq buffer 0 n)))))
