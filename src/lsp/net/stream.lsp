;;;; stream.lsp -- bivalent Gray streams on connected stream sockets.
;;;
;;; A STREAM-SOCKET keeps its stream state in one STREAM-STATE structure
;;; (created on first stream use): an input buffer, an output buffer and,
;;; included, the CODEC of the current external format (codec.lsp).  Octets
;;; and characters share the buffers, so text and binary interleave freely.
;;;
;;; Buffers come from a pool shared by every stream and go back to it when
;;; empty, so an idle stream holds none: the input buffer is taken when a
;;; read must receive and given back when a call leaves nothing unread in
;;; it (the octets of the last character read, which UNREAD-CHAR may want
;;; back, are kept in a fixnum); the output buffer is taken by a write and
;;; given back when FINISH-OUTPUT, FORCE-OUTPUT, a buffering flush, a raw
;;; SEND or QUEUE-STREAM-OUTPUT empties it.  A stream without a buffer
;;; holds an empty vector in its place, so every bound check stays as it
;;; was and no slot is ever NIL.
;;;
;;; Reading rule: a call that exits non-locally (a timeout, a decoding error
;;; that is not handled by a restart) consumes nothing; the stream stays where
;;; it was before the call.

(in-package "NET")

(defconstant +buffer-size+ 32768
  "Octets in each of a stream's two buffers.")

(defvar *no-buffer* (make-array 0 :element-type '(unsigned-byte 8))
  "What a stream holds in place of a buffer it has given back to the pool.")

(defstruct (stream-state (:include codec) (:conc-name %ss-)
                         (:constructor %make-stream-state ()))
  (ibuf *no-buffer* :type octets)       ; empty: none taken (see the pool)
  (ipos 0 :type fixnum)                 ; next octet to read
  (iend 0 :type fixnum)                 ; end of buffered input
  (mark -1 :type fixnum)                ; start of the last char read, for UNREAD-CHAR
  (carry 0 :type fixnum)                ; without IBUF: the last char's octets, count in 3 bits
  (eof nil)                             ; the peer ended its output
  (more nil)                            ; the last receive filled the buffer: maybe more now
  (obuf *no-buffer* :type octets)       ; empty: none taken
  (opos 0 :type fixnum)                 ; end of buffered output
  (buffering :full :type symbol)        ; :FULL, :LINE or :NONE (SOCKET-BUFFERING)
  (column 0))                           ; output column, NIL after binary output
(%inline-readers stream-state)

(defvar *stream-state-lock* (mp:make-lock :name "net stream state")
  "Serialises the first-use creation of stream states, so a reader and a
writer thread starting together share one.")

(defun %make-stream-state-slowly (socket)
  "SOCKET's stream state, made now if it has none yet."
  (or (slot-value socket 'stream-state)
      (mp:with-lock (*stream-state-lock*)
        (or (slot-value socket 'stream-state)
            (let ((ss (%make-stream-state))
                  (format (slot-value socket 'external-format)))
              (when format
                (%set-codec-format ss format))
              (setf (%ss-buffering ss) (slot-value socket 'buffering))
              (setf (slot-value socket 'stream-state) ss))))))

(defmacro %handle (socket)
  "(SOCKET-HANDLE SOCKET), SOCKET a variable, inline."
  `(%slot-at ,socket (%slot-locations ,socket) 1))

(net-sys:%defun-inline %stream-state (socket)
  "SOCKET's stream state (SOCKET a stream socket), made on first use, in
the socket's initial external format.  The slot is read at its cached
location: one load, no generic SLOT-VALUE."
  (declare (optimize (speed 3) (safety 0)))
  (let* ((e (%slot-locations socket)) (loc (svref e 4)))
    (declare (simple-vector e))
    (or (and loc (net-sys:%instance-slot socket (the fixnum loc)))
        (%make-stream-state-slowly socket))))

(declaim (inline %stream-socket-p))
(defun %stream-socket-p (object)
  "True if OBJECT is a STREAM-SOCKET: for a socket class met before, a
look in the slot location cache (only stream sockets have a stream-state
slot), else TYPEP."
  (declare (optimize (speed 3) (safety 0)))
  (if (let ((class (and (si:instancep object) (net-sys:%instance-class object))))
        (and class
             (dolist (e *slot-locations* nil)
               (declare (simple-vector e))
               (when (eq (svref e 0) class) (return (svref e 4))))))
      t
      (typep object 'stream-socket)))

;;; The buffer pool

(defconstant +pool-size+ 32
  "Free buffers the pool keeps at most (1 MiB); more go to the collector.")

(defvar *buffer-pool* (make-array +pool-size+ :initial-element nil)
  "Free stream buffers, one per slot, taken and given back with
compare-and-swap on the slot: no lock, nothing consed, any thread.")

(defun %take-buffer ()
  "A buffer of +BUFFER-SIZE+ octets: a free one from the pool, else a new one."
  (declare (optimize (speed 3) (safety 0)))
  (let ((pool *buffer-pool*))
    (declare (simple-vector pool))
    (dotimes (i +pool-size+ (make-array +buffer-size+ :element-type '(unsigned-byte 8)))
      (let ((b (svref pool i)))
        (when (and b (eq (mp:compare-and-swap-svref pool i b nil) b))
          (return b))))))

(defun %give-buffer (buffer)
  "Put BUFFER in the pool if it is a stream buffer (a grown one is not) and
the pool has room; else the collector takes it."
  (declare (type octets buffer) (optimize (speed 3) (safety 0)))
  (when (= (length buffer) +buffer-size+)
    (let ((pool *buffer-pool*))
      (declare (simple-vector pool))
      (dotimes (i +pool-size+)
        (when (and (null (svref pool i))
                   (null (mp:compare-and-swap-svref pool i nil buffer)))
          (return)))))
  nil)

(defun %take-input-buffer (ss)
  "Give SS an input buffer, with the carried octets of the last character
read (see %RELEASE-INPUT) back in front of it."
  (declare (type stream-state ss) (optimize (speed 3) (safety 0)))
  (let* ((buf (%take-buffer)) (carry (%ss-carry ss)) (k (logand carry 7)) (bits (ash carry -3)))
    (declare (type octets buf) (fixnum carry k bits))
    (loop for i fixnum from (1- k) downto 0
          do (setf (aref buf i) (logand bits 255) bits (ash bits -8)))
    (setf (%ss-ibuf ss) buf (%ss-ipos ss) k (%ss-iend ss) k
          (%ss-mark ss) (if (plusp k) 0 -1) (%ss-carry ss) 0)
    buf))

(defun %release-input (ss)
  "Everything buffered has been read: give the input buffer back to the
pool.  The octets of the last character read (at most 7), which
UNREAD-CHAR may put back, are carried in a fixnum, 8 bits each and their
count in the low 3."
  (declare (type stream-state ss) (optimize (speed 3) (safety 0)))
  (let* ((buf (%ss-ibuf ss)) (end (%ss-iend ss)) (mark (%ss-mark ss))
         (keep (if (>= mark 0) (the fixnum (- end mark)) 0)))
    (declare (type octets buf) (fixnum end mark keep))
    (when (and (plusp (length buf)) (= (%ss-ipos ss) end) (<= keep 7))
      (let ((carry 0))
        (declare (type (unsigned-byte 56) carry))
        (loop for i fixnum from (the fixnum (- end keep)) below end
              do (setf carry (logior (the (unsigned-byte 56) (ash (logand carry #xffffffffffff) 8))
                                     (aref buf i))))
        (setf (%ss-carry ss) (the fixnum (logior (the fixnum (ash carry 3)) keep))
              (%ss-ibuf ss) *no-buffer* (%ss-ipos ss) 0 (%ss-iend ss) 0 (%ss-mark ss) -1)
        (%give-buffer buf)))))

(defmacro %input-done (ss)
  "After a read call on the state SS (a variable): give the input buffer
back if nothing is left in it."
  `(when (= (%ss-ipos ,ss) (%ss-iend ,ss))
     (%release-input ,ss)))

(defun %release-output (ss)
  "Give the output buffer back to the pool if it is empty."
  (declare (type stream-state ss) (optimize (speed 3) (safety 0)))
  (let ((buf (%ss-obuf ss)))
    (when (and (zerop (%ss-opos ss)) (plusp (length buf)))
      (setf (%ss-obuf ss) *no-buffer*)
      (%give-buffer buf))))

(defun %stream-buffer-octets (socket)
  "The octets of buffer SOCKET's stream holds now (0 when it holds none),
and the count of octets it has buffered, unread or unsent."
  (let ((ss (slot-value socket 'stream-state)))
    (if ss
        (values (+ (length (%ss-ibuf ss)) (length (%ss-obuf ss)))
                (+ (- (%ss-iend ss) (%ss-ipos ss)) (%ss-opos ss)))
        (values 0 0))))


(defun socket-external-format (socket)
  "The external format of the stream SOCKET: the encoding keyword, or a list
(ENCODING EOL) when the line ending is :CRLF or :CR, with :REPLACEMENT CHAR when
set.  SETF-able at any point of the connection; the default is :UTF-8."
  (check-type socket stream-socket)
  (%codec-external-format (%stream-state socket)))

(defun (setf socket-external-format) (format socket)
  "Switch SOCKET's external format to FORMAT, from the next character on.
FORMAT is an encoding keyword or a list (ENCODING [EOL] [:REPLACEMENT CHAR]):
ENCODING is :UTF-8, :LATIN-1, :ASCII, :UTF-16LE, :UTF-16BE (:UTF-16 is
big-endian), :UTF-32LE, :UTF-32BE or any other encoding of ECL's
EXT:ALL-ENCODINGS; EOL is :LF (default), :CRLF or :CR (#\Newline is written
as CR, and CR is read as #\Newline); with :REPLACEMENT, invalid
input decodes to CHAR and unencodable output is written as CHAR instead of
signalling STREAM-DECODING-ERROR or STREAM-ENCODING-ERROR."
  (check-type socket stream-socket)
  (%set-codec-format (%stream-state socket) format)
  format)

;;; Output buffering

(defun %check-buffering (mode)
  (unless (member mode '(:full :line :none))
    (error 'type-error :datum mode :expected-type '(member :full :line :none)))
  mode)

(defun socket-buffering (socket)
  "The output buffering of the stream SOCKET: :FULL (the default: output is
sent when the buffer is full, and by FINISH-OUTPUT, FORCE-OUTPUT, SHUTDOWN
and CLOSE), :LINE (also after every write that holds a newline: a
#\\Newline, or an octet 10 among octets) or :NONE (after every write
call).  SETF-able at any time; sockets accepted from a listener start with
its buffering, set by MAKE-SOCKET's :BUFFERING."
  (check-type socket socket)
  (slot-value socket 'buffering))

(defun (setf socket-buffering) (mode socket)
  "Set SOCKET's output buffering to MODE, :FULL, :LINE or :NONE (see
SOCKET-BUFFERING); leaving :FULL sends what is buffered now."
  (check-type socket socket)
  (%check-buffering mode)
  (setf (slot-value socket 'buffering) mode)
  (when (typep socket 'passive-socket)
    (setf (slot-value socket 'accept-prototype) nil))
  (let ((ss (and (typep socket 'stream-socket) (slot-value socket 'stream-state))))
    (when ss
      (setf (%ss-buffering ss) mode)
      (unless (or (eq mode :full) (not (socket-open-p socket)))
        (%flush-out socket ss))))
  mode)

(defmacro %flush-by-buffering (socket ss newline-form)
  "After a write: send the buffer if the buffering says so; NEWLINE-FORM
(evaluated only under :LINE) says whether the write held a newline."
  `(let ((mode (%ss-buffering ,ss)))
     (unless (eq mode :full)
       (when (or (eq mode :none) ,newline-form)
         (%flush-out ,socket ,ss)))))

;;; Filling and flushing

(defun %fill (socket ss deadline nohang)
  "Receive more input after IEND, moving or growing the buffer as needed.
Returns the count, 0 at end of file; when nothing can be read without
waiting (DEADLINE -1), NIL if NOHANG, else WOULD-BLOCK.  Keeps every octet
from MARK (or IPOS) on.  A receive that fills the buffer to its end sets
MORE: the socket may have more at once (see READ-AVAILABLE)."
  (declare (type stream-state ss) (optimize (speed 3) (safety 0)))
  (when (%ss-eof ss) (return-from %fill 0))
  (when (zerop (length (the octets (%ss-ibuf ss))))
    (%take-input-buffer ss))
  (let* ((buf (%ss-ibuf ss))
         (mark (%ss-mark ss))
         (ipos (%ss-ipos ss))
         (keep (if (>= mark 0) (min mark ipos) ipos)))
    (declare (type octets buf) (fixnum mark ipos keep))
    (when (and (= keep (%ss-iend ss)) (< mark 0))
      (setf (%ss-ipos ss) 0 (%ss-iend ss) 0 keep 0))
    (when (= (%ss-iend ss) (length buf))
      (if (plusp keep)
          (let ((iend (%ss-iend ss)))
            (declare (fixnum iend))
            (net-sys:%copy-octets buf 0 buf keep (the fixnum (- iend keep)))
            (setf (%ss-iend ss) (the fixnum (- iend keep))
                  (%ss-ipos ss) (the fixnum (- (%ss-ipos ss) keep)))
            (when (>= mark 0) (setf (%ss-mark ss) (the fixnum (- mark keep)))))
          (let ((new (make-array (the fixnum (* 2 (length buf))) :element-type '(unsigned-byte 8))))
            (net-sys:%copy-octets new 0 buf 0 (length buf))
            (%give-buffer buf)
            (setf (%ss-ibuf ss) new buf new))))
    (let* ((iend (%ss-iend ss))
           (n (net-sys:recv (%handle socket) buf iend (length buf) net-sys:+return-error+
                            deadline socket)))
      (declare (fixnum iend))
      ;; A read that fails (a reset, a timeout, would block) first gives
      ;; back the buffer it took if it holds nothing: CLOSE leaves a held
      ;; input buffer to the collector (%LET-BUFFERS-GO).
      (cond ((null n) (unless nohang (%release-input ss) (%would-block socket "recv")))
            ((< (the fixnum n) 0) (%release-input ss) (%failed n "recv" socket t))
            ((eql n 0) (%check-reset socket) (setf (%ss-eof ss) t) 0)
            (t (let ((new-end (the fixnum (+ iend (the fixnum n)))))
                 (setf (%ss-iend ss) new-end
                       (%ss-more ss) (= new-end (length buf)))
                 n))))))

(declaim (inline %read-deadline))
(defun %read-deadline (socket)
  "(%DEADLINE SOCKET NIL), inline: the deadline argument of a stream call
on SOCKET, -1 if non-blocking."
  (declare (optimize (speed 3) (safety 0)))
  (let ((e (%slot-locations socket)))
    (declare (simple-vector e))
    (if (not (%slot-at socket e 2))
        -1
        (let ((ns (%slot-at socket e 3)) (dl *deadline*))
          (if ns
              (let ((d (%ns-from-now ns)))
                (declare (fixnum d))
                (if dl (min d (the fixnum dl)) d))
              dl)))))

(defun %flush (socket ss)
  "Send all buffered output.  Octets not sent when a timeout or error
unwinds stay buffered."
  (declare (type stream-state ss) (optimize (speed 3) (safety 0)))
  (let ((end (%ss-opos ss)))
    (declare (fixnum end))
    (when (plusp end)
      ;; One send(2) takes it all in the common case; only a partial send
      ;; needs the loop that keeps the unsent octets if it unwinds.
      (multiple-value-bind (handle deadline) (values (%handle socket) (%read-deadline socket))
        (let ((n (net-sys:send handle (%ss-obuf ss) 0 end 0 deadline socket)))
          (if (eql n end)
              (setf (%ss-opos ss) 0)
              (%flush-rest socket ss handle deadline (or n 0))))))
    nil))

(defun %flush-rest (socket ss handle deadline sent)
  "%FLUSH after a first send(2) sent only SENT octets: send the rest; what
is not sent when a timeout or error unwinds stays buffered."
  (declare (type stream-state ss) (fixnum sent))
  (let ((end (%ss-opos ss)) (pos sent) (buf (%ss-obuf ss)))
    (declare (fixnum end pos))
    (let ((*send-progress* sent))
      (unwind-protect
           (setf pos (%send-all socket handle buf sent end 0 deadline))
        (setf pos (max pos *send-progress*))
        (when (plusp pos)
          (replace buf buf :start2 pos :end2 end)
          (setf (%ss-opos ss) (- end pos)))))
    nil))

(defun %flush-out (socket ss)
  "Send all buffered output, then give the emptied buffer back (FLUSH
alone keeps it: it is also called to make room in the middle of a write)."
  (declare (optimize (speed 3) (safety 0)))
  (%flush socket ss)
  (%release-output ss))

(defun %make-room (socket ss)
  "%ROOM's slow path: take a buffer, or send the full one."
  (declare (type stream-state ss) (optimize (speed 3) (safety 0)))
  (if (zerop (length (%ss-obuf ss)))
      (setf (%ss-obuf ss) (%take-buffer))
      (%flush socket ss)))

(declaim (inline %room))
(defun %room (socket ss n)
  "Make room for N octets of output."
  (declare (type stream-state ss) (fixnum n) (optimize (speed 3) (safety 0)))
  (when (> (the fixnum (+ (%ss-opos ss) n)) (length (the octets (%ss-obuf ss))))
    (%make-room socket ss)))

(defun %read-char (socket ss nohang)
  "The next character, consumed; :EOF at end of file; NIL if NOHANG and
none is complete yet."
  (declare (type stream-state ss) (optimize (speed 3) (safety 0)))
  (let ((deadline nil))
    (loop
      (let ((buf (%ss-ibuf ss)) (pos (%ss-ipos ss)) (end (%ss-iend ss)))
        (declare (type octets buf) (fixnum pos end))
        (if (and (< pos end) (eq (%ss-codec ss) :utf-8)
                 (< (aref buf pos) #x80) (/= (aref buf pos) 13))
            (progn (setf (%ss-mark ss) pos (%ss-ipos ss) (1+ pos))
                   (return (code-char (aref buf pos))))
            (multiple-value-bind (c next) (%decode-char socket ss buf pos end (%ss-eof ss))
              (cond (c (setf (%ss-mark ss) pos (%ss-ipos ss) next) (return c))
                    ((eq next :eof) (return :eof))
                    (nohang (unless (%fill socket ss -1 t) (return nil)))
                    (t (%fill socket ss (or deadline
                                            (setf deadline (%read-deadline socket)))
                              nil)))))))))

(defun %find-lf (buf start end)
  "The index of the first octet 10 of BUF[START,END), or NIL."
  (declare (type octets buf) (fixnum start end) (optimize (speed 3) (safety 0)))
  (loop for i fixnum from start below end
        when (= (aref buf i) 10) return i))

(defvar *max-line-length* (* 1024 1024)
  "The most octets READ-LINE buffers looking for the end of a line (1 MiB
by default): past it, READ-LINE signals LIMIT-EXCEEDED (limit
:LINE-LENGTH) and consumes nothing, so a peer that never sends a newline
cannot make the stream grow without bound.  NIL: no limit.")

(defun %check-line-length (socket octets)
  "Signal LIMIT-EXCEEDED when OCTETS, buffered without a line end, pass *MAX-LINE-LENGTH*."
  (declare (fixnum octets))
  (let ((max *max-line-length*))
    (when (and max (> octets (the fixnum max)))
      (error 'limit-exceeded :limit :line-length :maximum max :socket socket))))

(defun %read-line-fast (socket ss)
  "READ-LINE for codecs where octet 10 is the line end: (values line missing-newline-p), or :EOF."
  (declare (type stream-state ss) (optimize (speed 3) (safety 0)))
  (let ((scanned 0) (deadline nil))
    (declare (fixnum scanned))
    (loop
      (let* ((buf (%ss-ibuf ss)) (pos (%ss-ipos ss)) (end (%ss-iend ss))
             (lf (%find-lf buf (+ pos scanned) end)))
        (declare (type octets buf) (fixnum pos end))
        (cond (lf
               (let ((line-end (if (and (eq (%ss-eol ss) :crlf) (> lf pos)
                                        (= (aref buf (1- lf)) 13))
                                   (1- lf) lf)))
                 (%check-line-length socket (- line-end pos))
                 (let ((line (%decode-range socket ss buf pos line-end)))
                   (setf (%ss-ipos ss) (1+ lf) (%ss-mark ss) -1)
                   (return (values line nil)))))
              ((%ss-eof ss)
               (when (= pos end) (return :eof))
               (let ((line (%decode-range socket ss buf pos end)))
                 (setf (%ss-ipos ss) end (%ss-mark ss) -1)
                 (return (values line t))))
              (t (setf scanned (- end pos))
                 (%check-line-length socket scanned)
                 (%fill socket ss (or deadline (setf deadline (%read-deadline socket))) nil)))))))

(defun %read-line-general (socket ss)
  "READ-LINE for any codec, character by character without consuming until the end."
  (declare (type stream-state ss) (optimize (speed 3) (safety 0)))
  (let ((scratch (%scratch ss)) (offset 0) (deadline nil))
    (declare (fixnum offset))
    (setf (fill-pointer scratch) 0)
    (loop
      (multiple-value-bind (c next)
          (%decode-char socket ss (%ss-ibuf ss) (+ (%ss-ipos ss) offset) (%ss-iend ss) (%ss-eof ss))
        (cond ((eql c #\Newline)
               (%check-line-length socket offset)
               (setf (%ss-ipos ss) next (%ss-mark ss) -1)
               (return (values (coerce scratch 'simple-string) nil)))
              (c (vector-push-extend c scratch) (setf offset (- next (%ss-ipos ss))))
              ((eq next :eof)
               (when (zerop (fill-pointer scratch)) (return :eof))
               (setf (%ss-ipos ss) (%ss-iend ss) (%ss-mark ss) -1)
               (return (values (coerce scratch 'simple-string) t)))
              (t (%check-line-length socket offset)
                 (%fill socket ss (or deadline (setf deadline (%read-deadline socket))) nil)))))))

(defun %put-code (socket ss code)
  "Encode character CODE into the output buffer; NIL if the codec cannot."
  (declare (type stream-state ss) (fixnum code) (optimize (speed 3) (safety 0)))
  (%room socket ss 8)
  (let ((p (%encode-code ss (%ss-obuf ss) (%ss-opos ss) code)))
    (when p
      (setf (%ss-opos ss) p)
      t)))

(defun %write-char (socket ss char)
  (declare (type stream-state ss) (character char) (optimize (speed 3) (safety 0)))
  (let* ((code (char-code char))
         (out (if (and (= code 10) (eq (%ss-eol ss) :cr)) 13 code)))
    (declare (fixnum code out))
    (when (and (= code 10) (eq (%ss-eol ss) :crlf))
      (%put-code socket ss 13))
    (unless (%put-code socket ss out)
      (let ((new (%unencodable socket ss char)))
        (unless (%put-code socket ss (char-code new))
          (error 'stream-encoding-error :stream socket :character new
                                        :external-format (%ss-format ss)))))
    (setf (%ss-column ss) (cond ((= code 10) 0)
                                ((%ss-column ss) (1+ (the fixnum (%ss-column ss))))))
    char))

(defmacro %ascii-run (type)
  "Copy the ASCII characters of STRING of TYPE straight into the buffer."
  `(let ((string string) (buf (%ss-obuf ss)) (i start) (utf-8 (eq (%ss-codec ss) :utf-8))
          (latin-1 (eq (%ss-codec ss) :latin-1)) (crlf (eq (%ss-eol ss) :crlf))
          (newline (if (eq (%ss-eol ss) :cr) 13 10)))
     (declare (type ,type string) (type octets buf) (fixnum i))
     (loop while (< i end)
           do (let ((code (char-code (schar string i))) (p (%ss-opos ss)))
                (declare (fixnum code p))
                (cond ((and (< code #x80) (/= code 10) (< p (length buf)))
                       (setf (aref buf p) code (%ss-opos ss) (1+ p)))
                      ((and (= code 10) (< (+ p 1) (length buf)))
                       (if crlf
                           (setf (aref buf p) 13 (aref buf (+ p 1)) 10 (%ss-opos ss) (+ p 2))
                           (setf (aref buf p) newline (%ss-opos ss) (+ p 1))))
                      ((and latin-1 (< code 256) (< p (length buf)))
                       (setf (aref buf p) code (%ss-opos ss) (1+ p)))
                      ((and utf-8 (not (<= #xd800 code #xdfff)) (< (+ p 3) (length buf)))
                       (setf (%ss-opos ss) (%utf-8-put buf p code)))
                      ;; The slow path may flush, or take a buffer.
                      (t (%write-char socket ss (schar string i))
                         (setf buf (%ss-obuf ss))))
                (incf i)))))

(defun %write-string (socket ss string start end)
  (declare (type stream-state ss) (string string) (fixnum start end) (optimize (speed 3) (safety 0)))
  (when (and (< start end) (zerop (length (%ss-obuf ss))))
    (setf (%ss-obuf ss) (%take-buffer)))
  (if (and (member (%ss-codec ss) '(:latin-1 :utf-8 :ascii)) (simple-string-p string))
      (let ((column (%ss-column ss)))
        (if (typep string '(simple-array character (*)))
            (%ascii-run (simple-array character (*)))
            (%ascii-run simple-base-string))
        (let ((nl (position #\Newline string :start start :end end :from-end t)))
          (setf (%ss-column ss) (cond (nl (- end nl 1))
                                      (column (+ column (- end start)))))))
      (loop for i fixnum from start below end
            do (%write-char socket ss (char string i))))
  string)

;;; Raw calls on a stream socket (socket.lsp)

(defun %flush-stream-output (socket ss)
  "Before a raw send: send what the stream has buffered."
  (%flush-out socket ss))

(defun %take-stream-input (ss vector start end peek)
  "Before a raw receive into VECTOR[START,END): move there what the stream
has buffered, leaving it buffered if PEEK.  Returns the count."
  (declare (type stream-state ss))
  (let ((avail (- (%ss-iend ss) (%ss-ipos ss))))
    (declare (fixnum avail))
    (if (zerop avail)
        0
        (let* ((end (%check-range vector start end))
               (n (min avail (- end start))))
          (unless (net-sys:%octet-array-p vector)
            (error 'type-error :datum vector :expected-type '(vector (unsigned-byte 8))))
          (replace vector (%ss-ibuf ss) :start1 start :end1 (+ start n) :start2 (%ss-ipos ss))
          (unless peek
            (incf (%ss-ipos ss) n)
            (setf (%ss-mark ss) -1)
            (%input-done ss))
          n))))

;;; Octet sequences

(defun %read-octets (socket ss vector start end)
  "Fill VECTOR[START,END) with octets: from the buffer first, then straight
from the socket for large ranges.  Returns the index past the last octet
stored (< END only at end of file).  If a timeout unwinds, the octets already
stored go back into the input buffer."
  (declare (type stream-state ss) (fixnum start end) (optimize (speed 3) (safety 0)))
  (setf (%ss-mark ss) -1 (%ss-carry ss) 0)
  (let* ((pos start) (deadline nil) (done nil) (octets (net-sys:%octet-array-p vector)))
    (declare (fixnum pos))
    (setf pos (%move-input ss vector octets pos end))
    (when (< pos end)
      (unwind-protect
           (progn
             (loop while (and (< pos end) (not (%ss-eof ss)))
                   do (setf deadline (or deadline (%read-deadline socket)))
                      (if (and octets (>= (the fixnum (- end pos)) +buffer-size+))
                          (let ((n (net-sys:recv (%handle socket) vector pos end 0
                                                 deadline socket)))
                            (cond ((null n) (%would-block socket "recv"))
                                  ((eql n 0) (setf (%ss-eof ss) t))
                                  (t (setf pos (the fixnum (+ pos (the fixnum n)))))))
                          (progn
                            (setf (%ss-ipos ss) 0 (%ss-iend ss) 0)
                            (%fill socket ss deadline nil)
                            (setf pos (%move-input ss vector octets pos end)))))
             (setf done t))
        (unless done (%unread-octets ss vector start pos))))
    pos))

(defun %move-input (ss vector octets start end)
  "Move what the input buffer holds, as much as fits, into
VECTOR[START,END) (an octet vector if OCTETS); the index past the last
octet stored."
  (declare (type stream-state ss) (fixnum start end) (optimize (speed 3) (safety 0)))
  (let* ((ipos (%ss-ipos ss))
         (n (min (the fixnum (- (%ss-iend ss) ipos)) (the fixnum (- end start)))))
    (declare (fixnum ipos n))
    (when (plusp n)
      (if octets
          (net-sys:%copy-octets vector start (%ss-ibuf ss) ipos n)
          (%replace-checked vector (%ss-ibuf ss) start ipos n))
      (setf (%ss-ipos ss) (the fixnum (+ ipos n))))
    (the fixnum (+ start n))))

(defun %replace-checked (to from to-start from-start n)
  "REPLACE of N elements, at the default safety: TO or FROM is a sequence
of the caller's, of any type, whose elements are checked as they are stored."
  (declare (fixnum to-start from-start n))
  (replace to from :start1 to-start :end1 (+ to-start n) :start2 from-start))

(defun %unread-octets (ss vector start end)
  "Put VECTOR[START,END) back in front of the buffered input."
  (let* ((n (- end start))
         (old (%ss-ibuf ss))
         (rest (- (%ss-iend ss) (%ss-ipos ss)))
         (new (cond ((<= (+ n rest) (length old)) old)
                    ((<= (+ n rest) +buffer-size+) (%take-buffer))
                    (t (make-array (+ n rest) :element-type '(unsigned-byte 8))))))
    (replace new old :start1 n :start2 (%ss-ipos ss) :end2 (%ss-iend ss))
    (replace new vector :start2 start :end2 end)
    (unless (eq new old) (%give-buffer old))
    (setf (%ss-ibuf ss) new (%ss-ipos ss) 0 (%ss-iend ss) (+ n rest) (%ss-mark ss) -1)))

(defun %write-octets (socket ss vector start end)
  "Write VECTOR[START,END): into the buffer, or straight to the socket when
it is at least a buffer's worth."
  (declare (type stream-state ss) (fixnum start end) (optimize (speed 3) (safety 0)))
  (let ((n (- end start)) (octets (net-sys:%octet-array-p vector)))
    (declare (fixnum n))
    (setf (%ss-column ss) nil)
    (if (and octets (>= n +buffer-size+))
        (progn
          (%flush socket ss)
          (multiple-value-bind (handle deadline) (values (%handle socket) (%read-deadline socket))
            (%send-all socket handle vector start end 0 deadline)))
        (loop with pos fixnum = start
              while (< pos end)
              do (%room socket ss 1)
                 (let* ((buf (%ss-obuf ss))
                        (opos (%ss-opos ss))
                        (k (min (the fixnum (- end pos)) (the fixnum (- (length buf) opos)))))
                   (declare (type octets buf) (fixnum opos k))
                   (if octets
                       (net-sys:%copy-octets buf opos vector pos k)
                       (%replace-checked buf vector opos pos k))
                   (setf (%ss-opos ss) (the fixnum (+ opos k)))
                   (setf pos (the fixnum (+ pos k))))))
    vector))

(defun %check-range (sequence start end)
  "END, defaulted, once START and END are checked as bounds of SEQUENCE."
  (declare (optimize (speed 3) (safety 0)))
  (let ((len (if (net-sys:%octet-array-p sequence) (length (the vector sequence)) (length sequence))))
    (declare (fixnum len))
    (unless (and (typep start 'fixnum) (<= 0 (the fixnum start) len))
      (error 'type-error :datum start :expected-type (list 'integer 0 len)))
    (let ((end (or end len)))
      (unless (and (typep end 'fixnum) (<= (the fixnum start) (the fixnum end) len))
        (error 'type-error :datum end :expected-type (list 'integer start len)))
      (the fixnum end))))

;;; The Gray stream methods

(defmethod gray:stream-element-type ((s stream-socket))
  '(or (unsigned-byte 8) character))

(defmethod gray:stream-read-byte ((s stream-socket))
  (declare (optimize (speed 3) (safety 0)))
  (let ((ss (%stream-state s)))
    (declare (type stream-state ss))
    (setf (%ss-mark ss) -1 (%ss-carry ss) 0)
    (loop
      (let ((pos (%ss-ipos ss)))
        (declare (fixnum pos))
        (when (< pos (%ss-iend ss))
          (let ((byte (aref (the octets (%ss-ibuf ss)) pos)))
            (setf (%ss-ipos ss) (the fixnum (1+ pos)))
            (%input-done ss)
            (return byte)))
        (when (eql (%fill s ss (%read-deadline s) nil) 0)
          (%input-done ss)
          (return :eof))))))

(defmethod gray:stream-write-byte ((s stream-socket) byte)
  (check-type byte (unsigned-byte 8))
  (let ((ss (%stream-state s)))
    (%room s ss 1)
    (setf (aref (%ss-obuf ss) (%ss-opos ss)) byte)
    (incf (%ss-opos ss))
    (setf (%ss-column ss) nil)
    (%flush-by-buffering s ss (= byte 10))
    byte))

(defmethod gray:stream-read-char ((s stream-socket))
  (let* ((ss (%stream-state s)) (c (%read-char s ss nil)))
    (%input-done ss)
    c))

(defmethod gray:stream-read-char-no-hang ((s stream-socket))
  (let* ((ss (%stream-state s)) (c (%read-char s ss t)))
    (%input-done ss)
    c))

(defmethod gray:stream-unread-char ((s stream-socket) char)
  (declare (ignore char))
  (let ((ss (%stream-state s)))
    (when (and (zerop (length (%ss-ibuf ss))) (plusp (%ss-carry ss)))
      (%take-input-buffer ss))          ; the last character's octets
    (when (>= (%ss-mark ss) 0)
      (setf (%ss-ipos ss) (%ss-mark ss) (%ss-mark ss) -1))
    nil))

(defmethod gray:stream-peek-char ((s stream-socket))
  (let* ((ss (%stream-state s))
         (c (%read-char s ss nil)))
    (if (eq c :eof)
        (%input-done ss)
        (setf (%ss-ipos ss) (%ss-mark ss) (%ss-mark ss) -1))
    c))

(defmethod gray:stream-listen ((s stream-socket))
  (let* ((ss (%stream-state s))
         (c (%read-char s ss t)))
    (cond ((characterp c)
           (setf (%ss-ipos ss) (%ss-mark ss) (%ss-mark ss) -1)
           t)
          (t (%input-done ss) nil))))

(defmethod gray:stream-read-line ((s stream-socket))
  (let ((ss (%stream-state s)))
    (multiple-value-bind (line missing)
        (if (%octet-newlines-p ss) (%read-line-fast s ss) (%read-line-general s ss))
      ;; ECL's READ-LINE takes a true second value as end of file even
      ;; with a non-empty line, so a last unterminated line is returned
      ;; as if terminated; the next call reports end of file.
      (declare (ignore missing))
      (%input-done ss)
      (if (eq line :eof) (values nil t) (values line nil)))))

(defmethod gray:stream-clear-input ((s stream-socket))
  (let ((ss (%stream-state s)))
    (setf (%ss-ipos ss) (%ss-iend ss) (%ss-mark ss) -1 (%ss-carry ss) 0)
    (%release-input ss)
    nil))

(defmethod gray:stream-write-char ((s stream-socket) char)
  (check-type char character)
  (let ((ss (%stream-state s)))
    (%write-char s ss char)
    (%flush-by-buffering s ss (char= char #\Newline))
    char))

(defmethod gray:stream-write-string ((s stream-socket) string &optional (start 0) end)
  (check-type string string)
  (let ((end (%check-range string start end))
        (ss (%stream-state s)))
    (%write-string s ss string start end)
    (%flush-by-buffering s ss (find #\Newline string :start start :end end))
    string))

(defmethod gray:stream-terpri ((s stream-socket))
  (let ((ss (%stream-state s)))
    (%write-char s ss #\Newline)
    (%flush-by-buffering s ss t))
  nil)

(defmethod gray:stream-line-column ((s stream-socket))
  (%ss-column (%stream-state s)))

(defmethod gray:stream-start-line-p ((s stream-socket))
  (eql (%ss-column (%stream-state s)) 0))

(defmethod gray:stream-fresh-line ((s stream-socket))
  (let ((ss (%stream-state s)))
    (unless (eql (%ss-column ss) 0)
      (%write-char s ss #\Newline)
      (%flush-by-buffering s ss t)
      t)))

(defmethod gray:stream-advance-to-column ((s stream-socket) column)
  (let ((ss (%stream-state s)))
    (when (%ss-column ss)
      (loop repeat (- column (%ss-column ss)) do (%write-char s ss #\Space))
      (%flush-by-buffering s ss nil)
      t)))

(defmethod gray:stream-finish-output ((s stream-socket))
  (declare (optimize (speed 3) (safety 0)))
  (%flush-out s (%stream-state s)))

(defmethod gray:stream-force-output ((s stream-socket))
  (declare (optimize (speed 3) (safety 0)))
  (%flush-out s (%stream-state s)))

(defmethod gray:stream-clear-output ((s stream-socket))
  (let ((ss (%stream-state s)))
    (setf (%ss-opos ss) 0)
    (%release-output ss))
  nil)

(defmethod gray:stream-file-position ((s stream-socket) &optional position)
  (declare (ignore position))
  nil)

(defmethod gray:stream-interactive-p ((s stream-socket))
  nil)

(defmethod gray:stream-read-sequence ((s stream-socket) sequence &optional (start 0) end)
  (declare (optimize (speed 3) (safety 0)))
  (let ((end (%check-range sequence start end))
        (ss (%stream-state s)))
    (declare (fixnum end) (type stream-state ss))
    (prog1 (if (stringp sequence)
               (%read-chars s ss sequence start end)
               (%read-octets s ss sequence start end))
      (%input-done ss))))

(defmethod gray:stream-write-sequence ((s stream-socket) sequence &optional (start 0) end)
  (declare (optimize (speed 3) (safety 0)))
  (let ((end (%check-range sequence start end))
        (ss (%stream-state s)))
    (declare (fixnum end) (type stream-state ss))
    (if (stringp sequence)
        (progn (%write-string s ss sequence start end)
               (%flush-by-buffering s ss (find #\Newline sequence :start start :end end)))
        (progn (%write-octets s ss sequence start end)
               (%flush-by-buffering s ss (%find-octet-10 sequence start end))))
    sequence))

(defun %find-octet-10 (sequence start end)
  "True if SEQUENCE[START,END) holds the octet 10 (:LINE buffering)."
  (declare (fixnum start end) (optimize (speed 3) (safety 0)))
  (find 10 sequence :start start :end end))

(defun %read-chars (socket ss string start end)
  "READ-SEQUENCE into STRING: consumes only when it returns."
  (declare (type stream-state ss) (fixnum start end) (optimize (speed 3) (safety 0)))
  (let ((pos start) (offset 0) (deadline nil)
        (ascii (member (%ss-codec ss) '(:utf-8 :latin-1 :ascii)))
        (utf-8 (eq (%ss-codec ss) :utf-8)))
    (declare (fixnum pos offset))
    (setf (%ss-mark ss) -1 (%ss-carry ss) 0)
    (loop while (< pos end)
          do (multiple-value-bind (c next)
                 (let* ((buf (%ss-ibuf ss)) (p (+ (%ss-ipos ss) offset)))
                   (declare (type octets buf) (fixnum p))
                   (cond ((not (and ascii (< p (%ss-iend ss))))
                          (%decode-char socket ss buf p (%ss-iend ss) (%ss-eof ss)))
                         ((and (< (aref buf p) #x80) (/= (aref buf p) 13))
                          (values (code-char (aref buf p)) (1+ p)))
                         ((and utf-8 (>= (aref buf p) #x80))
                          (multiple-value-bind (code next) (%decode-utf-8 buf p (%ss-iend ss))
                            (declare (fixnum code))
                            (if (>= code 0)
                                (values (code-char code) next)
                                (%decode-char socket ss buf p (%ss-iend ss) (%ss-eof ss)))))
                         (t (%decode-char socket ss buf p (%ss-iend ss) (%ss-eof ss)))))
               (cond (c (setf (char string pos) c) (incf pos)
                        (setf offset (- next (%ss-ipos ss))))
                     ((eq next :eof) (loop-finish))
                     (t (setf (%ss-mark ss) (%ss-ipos ss))
                        (%fill socket ss (or deadline (setf deadline (%read-deadline socket))) nil)
                        (setf (%ss-mark ss) -1)))))
    (incf (%ss-ipos ss) offset)
    pos))

(defun %let-buffers-go (socket ss)
  "After CLOSE: SOCKET holds no buffer.  The output buffer, flushed or
discarded, goes back to the pool.  The input buffer is left to the
collector with the state holding it, as another thread may still be
inside a read on it (closing a socket is how a blocked reader is woken):
SOCKET gets a copy of its state without one."
  (setf (%ss-opos ss) 0)
  (%release-output ss)
  (when (plusp (length (%ss-ibuf ss)))
    (let ((new (copy-stream-state ss)))
      (setf (%ss-ibuf new) *no-buffer* (%ss-ipos new) 0 (%ss-iend new) 0
            (%ss-mark new) -1 (%ss-carry new) 0)
      (setf (slot-value socket 'stream-state) new))))

;;; Reading what is there

(defun %read-available (socket vector start end &optional wait)
  "READ-AVAILABLE with its arguments positional."
  (declare (optimize (speed 3) (safety 0)))
  (unless (%stream-socket-p socket)
    (error 'type-error :datum socket :expected-type 'stream-socket))
  (let* ((end (%check-range vector start end))
         (start start)
         (ss (%stream-state socket))
         ;; The deadline of a wait for the first element: -1 (none) unless
         ;; WAIT on a blocking socket.
         (deadline (if wait (%read-deadline socket) -1)))
    (declare (fixnum end start) (type stream-state ss))
    (if (stringp vector)
        (let ((pos start))
          (declare (fixnum pos))
          (loop while (< pos end)
                do (let ((c (%read-char socket ss (or (eql deadline -1) (> pos start)))))
                     (if (characterp c)
                         (progn (setf (char vector pos) c) (setf pos (the fixnum (1+ pos))))
                         (loop-finish))))
          (setf (%ss-mark ss) -1)
          (%input-done ss)
          (values pos (and (= pos start) (%ss-eof ss) (= (%ss-ipos ss) (%ss-iend ss)))))
        (let ((octets (net-sys:%octet-array-p vector))
              (buffered (< (%ss-ipos ss) (%ss-iend ss)))
              (pos (%move-input ss vector (net-sys:%octet-array-p vector) start end)))
          (declare (fixnum pos))
          ;; The socket's turn, without waiting (or, when WAIT and nothing
          ;; was buffered, until DEADLINE): when nothing was buffered, or
          ;; when the receive that buffered it filled the buffer (more may
          ;; be there).  A large range of an octet vector receives
          ;; straight into it, as uv and RECEIVE do, taking no buffer.
          (when (and (< pos end) (or (not buffered) (%ss-more ss)) (not (%ss-eof ss)))
            (let ((dl (if (= pos start) deadline -1)))
              (if (and octets (>= (the fixnum (- end pos)) +buffer-size+))
                  (let ((n (net-sys:recv (%handle socket) vector pos end 0 dl socket)))
                    (cond ((null n) (setf (%ss-more ss) nil))
                          ((eql n 0) (%check-reset socket) (setf (%ss-eof ss) t))
                          (t (setf (%ss-more ss) (= (the fixnum n) (the fixnum (- end pos)))
                                   pos (the fixnum (+ pos (the fixnum n)))))))
                  (when (%fill socket ss dl t)
                    (setf pos (%move-input ss vector octets pos end))))))
          (setf (%ss-mark ss) -1)
          (%input-done ss)
          (values pos (and (= pos start) (%ss-eof ss)))))))

(defun read-available (socket vector &key (start 0) end wait)
  "Read into VECTOR[START,END) what SOCKET has buffered or readable now,
without waiting: an octet vector gets octets, a string characters (only
complete ones).  Returns the index past the last element stored; START
means nothing is available now, and at end of file the second value is T.
With WAIT true on a blocking socket, it first waits for one element when
none is buffered, until end of file or the socket's timeout (or
WITH-DEADLINE's: then SOCKET-TIMEOUT), then takes what else is there
without waiting: the read of an echo or a proxy.  On a non-blocking socket
WAIT changes nothing."
  (%read-available socket vector start end wait))
(net-sys:%define-positional read-available %read-available 2 ((:start 0) (:end nil) (:wait nil)))
