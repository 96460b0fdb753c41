;;;; stream.lsp -- bivalent Gray streams on connected stream sockets.
;;;
;;; A STREAM-SOCKET keeps its stream state in one STREAM-STATE structure
;;; (created on first stream use): an input buffer, an output buffer and the
;;; codec of the current external format.  Octets and characters share the
;;; buffers, so text and binary interleave freely.  Codecs are plain functions
;;; dispatching on a keyword with CASE, never generic functions.
;;;
;;; Reading rule: a call that exits non-locally (a timeout, a decoding error
;;; that is not handled by a restart) consumes nothing; the stream stays where
;;; it was before the call.

(in-package "NET")

(deftype octets () '(simple-array (unsigned-byte 8) (*)))

(declaim (inline %octet-vector-p))
(defun %octet-vector-p (x)
  "True for any (VECTOR (UNSIGNED-BYTE 8)); unlike TYPEP of that type, conses nothing."
  (or (typep x 'octets)
      (and (vectorp x) (equal (array-element-type x) '(unsigned-byte 8)))))

(defconstant +buffer-size+ 32768
  "Octets in each of a stream's two buffers.")

(defstruct (stream-state (:conc-name %ss-) (:constructor %make-stream-state ()))
  (ibuf (make-array +buffer-size+ :element-type '(unsigned-byte 8)) :type octets)
  (ipos 0 :type fixnum)                 ; next octet to read
  (iend 0 :type fixnum)                 ; end of buffered input
  (mark -1 :type fixnum)                ; start of the last char read, for UNREAD-CHAR
  (eof nil)                             ; the peer ended its output
  (obuf (make-array +buffer-size+ :element-type '(unsigned-byte 8)) :type octets)
  (opos 0 :type fixnum)                 ; end of buffered output
  (column 0)                            ; output column, NIL after binary output
  (format :utf-8)                       ; the external format as given
  (codec :utf-8 :type symbol)           ; :UTF-8 :LATIN-1 :ASCII :UTF-16LE ... :TABLE :ECL
  (eol :lf :type symbol)                ; :LF or :CRLF
  (replacement nil)                     ; NIL: signal; else the replacement character
  (dtable nil)                          ; :TABLE: octet -> char or NIL
  (etable nil)                          ; :TABLE: char -> octet
  (ecl-format nil)                      ; :ECL: ECL's encoding keyword
  (scratch (make-array 64 :element-type 'character :adjustable t :fill-pointer 0)))

(defvar *stream-state-lock* (mp:make-lock :name "net stream state")
  "Serialises the first-use creation of stream states, so a reader and a
writer thread starting together share one.")

(defun %stream-state (socket)
  "SOCKET's stream state, made on first use, in the socket's initial
external format."
  (or (slot-value socket 'stream-state)
      (mp:with-lock (*stream-state-lock*)
        (or (slot-value socket 'stream-state)
            (let ((ss (%make-stream-state))
                  (format (slot-value socket 'external-format)))
              (when format
                (%set-stream-format ss format))
              (setf (slot-value socket 'stream-state) ss))))))

;;; Conditions

(define-condition stream-decoding-error (network-error stream-error)
  ((octets :initarg :octets :reader stream-decoding-error-octets
           :documentation "The invalid octets, a vector.")
   (external-format :initarg :external-format :reader stream-coding-error-external-format
                    :documentation "The external format in effect."))
  (:report (lambda (c s)
             (format s "Invalid ~s input on ~a: octets ~s"
                     (stream-coding-error-external-format c)
                     (stream-error-stream c) (coerce (stream-decoding-error-octets c) 'list))))
  (:documentation "Octets read from a socket stream are not valid in its
external format.  Restarts: USE-VALUE (a character to use instead) and
CONTINUE (use the Unicode replacement character U+FFFD).  The invalid
octets are consumed when a restart is taken."))

(define-condition stream-encoding-error (network-error stream-error)
  ((character :initarg :character :reader stream-encoding-error-character
              :documentation "The character that cannot be encoded.")
   (external-format :initarg :external-format :reader stream-coding-error-external-format
                    :documentation "The external format in effect."))
  (:report (lambda (c s)
             (format s "Character ~s cannot be encoded in ~s on ~a"
                     (stream-encoding-error-character c)
                     (stream-coding-error-external-format c) (stream-error-stream c))))
  (:documentation "A character written to a socket stream has no encoding in
its external format.  Restarts: USE-VALUE (a character to write instead) and
CONTINUE (write #\\? instead)."))

(defun %would-block (socket syscall)
  (error 'would-block :errno 11 :syscall syscall :socket socket
                      :message "the socket is non-blocking and the operation would block"))

(setf (documentation 'stream-decoding-error-octets 'function)
      "The octets of a STREAM-DECODING-ERROR that are invalid in the stream's external format, a vector."
      (documentation 'stream-encoding-error-character 'function)
      "The character of a STREAM-ENCODING-ERROR that the stream's external format cannot encode."
      (documentation 'stream-coding-error-external-format 'function)
      "The external format in effect when a STREAM-DECODING-ERROR or STREAM-ENCODING-ERROR was signalled.")

;;; External formats

(defparameter *native-codecs*
  '((:utf-8 . :utf-8) (:utf8 . :utf-8)
    (:latin-1 . :latin-1) (:latin1 . :latin-1) (:iso-8859-1 . :latin-1)
    (:iso8859-1 . :latin-1) (:cp819 . :latin-1) (:ibm819 . :latin-1)
    (:ascii . :ascii) (:us-ascii . :ascii)
    (:utf-16le . :utf-16le) (:ucs-2le . :utf-16le) (:ucs2le . :utf-16le)
    (:utf-16be . :utf-16be) (:ucs-2be . :utf-16be) (:ucs2be . :utf-16be)
    (:utf-16 . :utf-16be) (:ucs-2 . :utf-16be) (:ucs2 . :utf-16be)
    (:utf-32le . :utf-32le) (:ucs-4le . :utf-32le) (:ucs4le . :utf-32le)
    (:utf-32be . :utf-32be) (:ucs-4be . :utf-32be) (:ucs4be . :utf-32be)
    (:utf-32 . :utf-32be) (:ucs-4 . :utf-32be) (:ucs4 . :utf-32be) (:utf32 . :utf-32be))
  "Encoding names decoded by net itself, and their codec.")

(defvar *table-cache* (make-hash-table :test 'eq)
  "ECL encoding keyword -> (dtable . etable), or :MULTIBYTE.")
(defvar *table-cache-lock* (mp:make-lock :name "net codec tables"))

(defun %ecl-decode-one (octets external-format)
  "Decode OCTETS alone with ECL: a character, :INCOMPLETE or NIL (invalid)."
  (let ((in (ext:make-sequence-input-stream octets :external-format external-format)))
    (handler-case (let ((c (read-char in nil nil)))
                    (cond ((null c) :incomplete)
                          ((= (file-position in) (length octets)) c)
                          (t nil)))
      (error () nil))))

(defun %ecl-tables (encoding)
  "The decode and encode tables of ECL's single-octet ENCODING, or :MULTIBYTE."
  (mp:with-lock (*table-cache-lock*)
    (or (gethash encoding *table-cache*)
        (setf (gethash encoding *table-cache*)
              (let ((dtable (make-array 256 :initial-element nil))
                    (etable (make-hash-table :test 'eql))
                    (one (make-array 1 :element-type '(unsigned-byte 8))))
                (dotimes (b 256 (cons dtable etable))
                  (setf (aref one 0) b)
                  (let ((c (%ecl-decode-one one (list encoding :lf))))
                    (when (eq c :incomplete) (return :multibyte))
                    (when c
                      (setf (aref dtable b) c)
                      (unless (gethash c etable) (setf (gethash c etable) b))))))))))

(defun %parse-external-format (format)
  "FORMAT -> (values codec eol replacement encoding-keyword), or an error."
  (let* ((list (if (listp format) format (list format)))
         (encoding (first list))
         (eol :lf) (replacement nil))
    (loop for rest on (rest list)
          for x = (first rest)
          do (cond ((member x '(:lf :unix)) (setf eol :lf))
                   ((member x '(:crlf :dos)) (setf eol :crlf))
                   ((eq x :replacement)
                    (setf replacement (second rest))
                    (unless (characterp replacement)
                      (error 'type-error :datum replacement :expected-type 'character))
                    (return))
                   (t (error 'simple-type-error :datum x :expected-type '(member :lf :crlf)
                             :format-control "Unknown external format option ~s in ~s"
                             :format-arguments (list x format)))))
    (when (eq encoding :default) (setf encoding :utf-8))
    (let ((native (cdr (assoc encoding *native-codecs*))))
      (cond (native (values native eol replacement encoding))
            ((and (keywordp encoding) (member encoding (ext:all-encodings))
                  (not (member encoding '(:iso-2022-jp :iso-2022-jp-1))))
             (values (if (consp (%ecl-tables encoding)) :table :ecl) eol replacement encoding))
            (t (error 'simple-type-error :datum format
                      :expected-type '(or keyword list)
                      :format-control "Unsupported external format ~s: the encoding must be one of ~
UTF-8, Latin-1, ASCII, UTF-16, UTF-32 or an encoding of EXT:ALL-ENCODINGS (stateful ISO-2022 excepted)"
                      :format-arguments (list format)))))))

(defun socket-external-format (socket)
  "The external format of the stream SOCKET: the encoding keyword, or a list
(ENCODING EOL) when the line ending is :CRLF, with :REPLACEMENT CHAR when
set.  SETF-able at any point of the connection; the default is :UTF-8."
  (check-type socket stream-socket)
  (let ((ss (%stream-state socket)))
    (if (or (eq (%ss-eol ss) :crlf) (%ss-replacement ss))
        `(,(%ss-format ss) ,(%ss-eol ss)
          ,@(and (%ss-replacement ss) (list :replacement (%ss-replacement ss))))
        (%ss-format ss))))

(defun (setf socket-external-format) (format socket)
  "Switch SOCKET's external format to FORMAT, from the next character on.
FORMAT is an encoding keyword or a list (ENCODING [EOL] [:REPLACEMENT CHAR]):
ENCODING is :UTF-8, :LATIN-1, :ASCII, :UTF-16LE, :UTF-16BE (:UTF-16 is
big-endian), :UTF-32LE, :UTF-32BE or any other encoding of ECL's
EXT:ALL-ENCODINGS; EOL is :LF (default) or :CRLF; with :REPLACEMENT, invalid
input decodes to CHAR and unencodable output is written as CHAR instead of
signalling STREAM-DECODING-ERROR or STREAM-ENCODING-ERROR."
  (check-type socket stream-socket)
  (%set-stream-format (%stream-state socket) format)
  format)

(defun %set-stream-format (ss format)
  (multiple-value-bind (codec eol replacement encoding) (%parse-external-format format)
    (setf (%ss-codec ss) codec (%ss-eol ss) eol (%ss-replacement ss) replacement
          (%ss-format ss) encoding
          (%ss-dtable ss) nil (%ss-etable ss) nil (%ss-ecl-format ss) nil)
    (case codec
      (:table (let ((tables (%ecl-tables encoding)))
                (setf (%ss-dtable ss) (car tables) (%ss-etable ss) (cdr tables))))
      (:ecl (setf (%ss-ecl-format ss) (list encoding :lf))))
    ss))

;;; Filling and flushing

(defun %fill (socket ss deadline &optional nohang)
  "Receive more input after IEND, moving or growing the buffer as needed.
Returns the count, 0 at end of file; when nothing can be read without
waiting (DEADLINE -1), NIL if NOHANG, else WOULD-BLOCK.  Keeps every octet from MARK (or IPOS) on."
  (declare (type stream-state ss))
  (let* ((buf (%ss-ibuf ss))
         (mark (%ss-mark ss))
         (keep (if (>= mark 0) (min mark (%ss-ipos ss)) (%ss-ipos ss))))
    (declare (type octets buf) (fixnum keep))
    (when (and (= keep (%ss-iend ss)) (< mark 0))
      (setf (%ss-ipos ss) 0 (%ss-iend ss) 0 keep 0))
    (when (= (%ss-iend ss) (length buf))
      (if (plusp keep)
          (progn (replace buf buf :start2 keep :end2 (%ss-iend ss))
                 (decf (%ss-iend ss) keep) (decf (%ss-ipos ss) keep)
                 (when (>= mark 0) (decf (%ss-mark ss) keep)))
          (let ((new (make-array (* 2 (length buf)) :element-type '(unsigned-byte 8))))
            (replace new buf)
            (setf (%ss-ibuf ss) new buf new))))
    (when (%ss-eof ss) (return-from %fill 0))
    (let ((n (net-sys:recv (socket-handle socket) buf (%ss-iend ss) (length buf) 0
                           deadline socket)))
      (cond ((null n) (if nohang nil (%would-block socket "recv")))
            ((zerop n) (setf (%ss-eof ss) t) 0)
            (t (incf (%ss-iend ss) n) n)))))

(defun %read-deadline (socket)
  (%deadline socket nil))

(defun %flush (socket ss)
  "Send all buffered output.  Octets not sent when a timeout or error
unwinds stay buffered."
  (declare (type stream-state ss))
  (let ((end (%ss-opos ss)) (pos 0) (buf (%ss-obuf ss)))
    (declare (fixnum end pos))
    (when (plusp end)
      (let ((deadline (%deadline socket nil)) (handle (socket-handle socket)))
        (unwind-protect
             (loop while (< pos end)
                   do (let ((n (net-sys:send handle buf pos end 0 deadline socket)))
                        (if n (incf pos n) (%would-block socket "send"))))
          (when (plusp pos)
            (replace buf buf :start2 pos :end2 end)
            (setf (%ss-opos ss) (- end pos))))))
    nil))

(declaim (inline %room))
(defun %room (socket ss n)
  "Make room for N octets of output."
  (declare (type stream-state ss) (fixnum n) (optimize (speed 3) (safety 0)))
  (when (> (+ (%ss-opos ss) n) (length (%ss-obuf ss)))
    (%flush socket ss)))

;;; Decoding

(defun %invalid-input (socket ss start next)
  "The character replacing invalid octets [START,NEXT) of the input buffer."
  (or (%ss-replacement ss)
      (restart-case
          (error 'stream-decoding-error :stream socket :external-format (%ss-format ss)
                                        :octets (subseq (%ss-ibuf ss) start next))
        (use-value (char)
          :report "Use a character instead of the invalid octets."
          :interactive (lambda () (list (read-char)))
          (check-type char character) char)
        (continue ()
          :report "Use the replacement character U+FFFD."
          (code-char #xfffd)))))

(defmacro %utf8-tail-p (b) `(= (logand ,b #xc0) #x80))

(defun %decode-utf-8 (buf pos end)
  "One UTF-8 character at POS: (values code next); code -1 incomplete, -2 invalid."
  (declare (type octets buf) (fixnum pos end) (optimize (speed 3) (safety 0)))
  (let* ((b0 (aref buf pos))
         (n (cond ((< b0 #xc2) 0) ((< b0 #xe0) 2) ((< b0 #xf0) 3) ((< b0 #xf5) 4) (t 0)))
         (lo (case b0 (#xe0 #xa0) (#xf0 #x90) (t #x80)))
         (hi (case b0 (#xed #x9f) (#xf4 #x8f) (t #xbf))))
    (declare (fixnum b0 n lo hi))
    (when (zerop n) (return-from %decode-utf-8 (values -2 (1+ pos))))
    (loop for i fixnum from 1 below n
          for p fixnum = (+ pos i)
          do (when (>= p end) (return-from %decode-utf-8 (values -1 pos)))
             (let ((b (aref buf p)))
               (unless (if (= i 1) (<= lo b hi) (%utf8-tail-p b))
                 (return-from %decode-utf-8 (values -2 p)))))
    (values (case n
              (2 (logior (ash (logand b0 #x1f) 6) (logand (aref buf (+ pos 1)) #x3f)))
              (3 (logior (ash (logand b0 #x0f) 12) (ash (logand (aref buf (+ pos 1)) #x3f) 6)
                         (logand (aref buf (+ pos 2)) #x3f)))
              (t (logior (ash (logand b0 #x07) 18) (ash (logand (aref buf (+ pos 1)) #x3f) 12)
                         (ash (logand (aref buf (+ pos 2)) #x3f) 6)
                         (logand (aref buf (+ pos 3)) #x3f))))
            (+ pos n))))

(defun %decode-utf-16 (buf pos end big)
  (declare (type octets buf) (fixnum pos end) (optimize (speed 3) (safety 0)))
  (flet ((unit (p) (if big
                       (logior (ash (aref buf p) 8) (aref buf (1+ p)))
                       (logior (ash (aref buf (1+ p)) 8) (aref buf p)))))
    (when (> (+ pos 2) end) (return-from %decode-utf-16 (values -1 pos)))
    (let ((u (unit pos)))
      (cond ((<= #xdc00 u #xdfff) (values -2 (+ pos 2)))
            ((<= #xd800 u #xdbff)
             (if (> (+ pos 4) end)
                 (values -1 pos)
                 (let ((v (unit (+ pos 2))))
                   (if (<= #xdc00 v #xdfff)
                       (values (+ #x10000 (ash (- u #xd800) 10) (- v #xdc00)) (+ pos 4))
                       (values -2 (+ pos 2))))))
            (t (values u (+ pos 2)))))))

(defun %decode-utf-32 (buf pos end big)
  (declare (type octets buf) (fixnum pos end) (optimize (speed 3) (safety 0)))
  (if (> (+ pos 4) end)
      (values -1 pos)
      (let ((c (if big
                   (logior (ash (aref buf pos) 24) (ash (aref buf (+ pos 1)) 16)
                           (ash (aref buf (+ pos 2)) 8) (aref buf (+ pos 3)))
                   (logior (ash (aref buf (+ pos 3)) 24) (ash (aref buf (+ pos 2)) 16)
                           (ash (aref buf (+ pos 1)) 8) (aref buf pos)))))
        (if (or (>= c char-code-limit) (<= #xd800 c #xdfff))
            (values -2 (+ pos 4))
            (values c (+ pos 4))))))

(defun %decode-ecl (ss buf pos end)
  "One character of an ECL multi-octet encoding, through ECL's own decoder."
  (let* ((stop (min end (+ pos 8)))
         (in (ext:make-sequence-input-stream buf :start pos :end stop
                                             :external-format (%ss-ecl-format ss))))
    (handler-case (let ((c (read-char in nil nil)))
                    (if c
                        (values (char-code c) (file-position in))
                        (values -1 pos)))
      (error () (values -2 (1+ pos))))))

(defun %decode-raw (ss buf pos end)
  "One character code of SS's codec at POS: (values code next); code -1 means
incomplete (NEXT = POS), -2 invalid octets [POS,NEXT)."
  (declare (type stream-state ss) (type octets buf) (fixnum pos end) (optimize (speed 3) (safety 0)))
  (case (%ss-codec ss)
    (:utf-8 (let ((b (aref buf pos)))
              (if (< b #x80) (values b (1+ pos)) (%decode-utf-8 buf pos end))))
    (:latin-1 (values (aref buf pos) (1+ pos)))
    (:ascii (let ((b (aref buf pos))) (if (< b #x80) (values b (1+ pos)) (values -2 (1+ pos)))))
    (:utf-16le (%decode-utf-16 buf pos end nil))
    (:utf-16be (%decode-utf-16 buf pos end t))
    (:utf-32le (%decode-utf-32 buf pos end nil))
    (:utf-32be (%decode-utf-32 buf pos end t))
    (:table (let ((c (svref (%ss-dtable ss) (aref buf pos))))
              (if c (values (char-code c) (1+ pos)) (values -2 (1+ pos)))))
    (t (%decode-ecl ss buf pos end))))

(defun %decode-char (socket ss buf pos end eofp)
  "The character at POS with line endings and the invalid-input policy
applied: (values char next), or (values NIL :INCOMPLETE) / (values NIL :EOF)."
  (declare (type stream-state ss) (type octets buf) (fixnum pos end) (optimize (speed 3) (safety 0)))
  (when (>= pos end)
    (return-from %decode-char (values nil (if eofp :eof :incomplete))))
  (multiple-value-bind (code next) (%decode-raw ss buf pos end)
    (declare (fixnum code next))
    (cond ((and (= code 13) (eq (%ss-eol ss) :crlf))
           (if (>= next end)
               (if eofp (values #\Return next) (values nil :incomplete))
               (multiple-value-bind (c2 next2) (%decode-raw ss buf next end)
                 (cond ((= c2 10) (values #\Newline next2))
                       ((and (= c2 -1) (not eofp)) (values nil :incomplete))
                       (t (values #\Return next))))))
          ((>= code 0) (values (code-char code) next))
          ((and (= code -1) (not eofp)) (values nil :incomplete))
          (t (let ((next (if (= code -1) end next)))
               (values (%invalid-input socket ss pos next) next))))))

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
                                            (setf deadline (%read-deadline socket))))))))))))

;;; Decoding a run of octets into a string

(defun %decode-range (socket ss start end)
  "A fresh string of the characters of input octets [START,END), which hold
no line end; an incomplete character at END is invalid."
  (declare (type stream-state ss) (fixnum start end) (optimize (speed 3) (safety 0)))
  (let ((buf (%ss-ibuf ss)))
    (declare (type octets buf))
    (case (%ss-codec ss)
      (:utf-8
       (or (%decode-utf-8-range buf start end)
           (%decode-range-slowly socket ss start end)))
      (:latin-1
       (let ((s (make-string (- end start))))
         (loop for i fixnum from start below end for j fixnum from 0
               do (setf (schar s j) (code-char (aref buf i))))
         s))
      (t (%decode-range-slowly socket ss start end)))))

(defun %decode-range-slowly (socket ss start end)
  "%DECODE-RANGE one character at a time, with the invalid-input policy."
  (declare (type stream-state ss) (fixnum start end) (optimize (speed 3) (safety 0)))
  (let ((scratch (%ss-scratch ss)) (pos start) (buf (%ss-ibuf ss)))
    (declare (fixnum pos) (type octets buf))
    (setf (fill-pointer scratch) 0)
    (loop while (< pos end)
          do (multiple-value-bind (c next) (%decode-char socket ss buf pos end t)
               (vector-push-extend c scratch)
               (setf pos next)))
    (coerce scratch 'simple-string)))

(defun %decode-utf-8-range (buf start end)
  "A fresh string of the valid UTF-8 in BUF[START,END), or NIL if some of it
is invalid or incomplete (the caller then decodes it slowly)."
  (declare (type octets buf) (fixnum start end) (optimize (speed 3) (safety 0)))
  (let ((count 0) (pos start))
    (declare (fixnum count pos))
    (loop while (< pos end)
          do (if (< (aref buf pos) #x80)
                 (incf pos)
                 (multiple-value-bind (code next) (%decode-utf-8 buf pos end)
                   (declare (fixnum code next))
                   (when (< code 0) (return-from %decode-utf-8-range nil))
                   (setf pos next)))
             (incf count))
    (let ((string (make-string count)))
      (declare (type (simple-array character (*)) string))
      (setf pos start)
      (dotimes (i count string)
        (let ((b (aref buf pos)))
          (if (< b #x80)
              (progn (setf (schar string i) (code-char b)) (incf pos))
              (multiple-value-bind (code next) (%decode-utf-8 buf pos end)
                (declare (fixnum code next))
                (setf (schar string i) (code-char code) pos next))))))))

(defun %octet-newlines-p (ss)
  "True if a newline is octet 10 and octet 10 never occurs inside another character."
  (member (%ss-codec ss) '(:utf-8 :latin-1 :ascii :table :ecl)))

(defun %find-lf (buf start end)
  "The index of the first octet 10 of BUF[START,END), or NIL."
  (declare (type octets buf) (fixnum start end) (optimize (speed 3) (safety 0)))
  (loop for i fixnum from start below end
        when (= (aref buf i) 10) return i))

(defun %read-line-fast (socket ss)
  "READ-LINE for codecs where octet 10 is the line end: (values line missing-newline-p), or :EOF."
  (declare (type stream-state ss))
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
                 (let ((line (%decode-range socket ss pos line-end)))
                   (setf (%ss-ipos ss) (1+ lf) (%ss-mark ss) -1)
                   (return (values line nil)))))
              ((%ss-eof ss)
               (when (= pos end) (return :eof))
               (let ((line (%decode-range socket ss pos end)))
                 (setf (%ss-ipos ss) end (%ss-mark ss) -1)
                 (return (values line t))))
              (t (setf scanned (- end pos))
                 (%fill socket ss (or deadline (setf deadline (%read-deadline socket))))))))))

(defun %read-line-general (socket ss)
  "READ-LINE for any codec, character by character without consuming until the end."
  (declare (type stream-state ss) (optimize (speed 3) (safety 0)))
  (let ((scratch (%ss-scratch ss)) (offset 0) (deadline nil))
    (declare (fixnum offset))
    (setf (fill-pointer scratch) 0)
    (loop
      (multiple-value-bind (c next)
          (%decode-char socket ss (%ss-ibuf ss) (+ (%ss-ipos ss) offset) (%ss-iend ss) (%ss-eof ss))
        (cond ((eql c #\Newline)
               (setf (%ss-ipos ss) next (%ss-mark ss) -1)
               (return (values (coerce scratch 'simple-string) nil)))
              (c (vector-push-extend c scratch) (setf offset (- next (%ss-ipos ss))))
              ((eq next :eof)
               (when (zerop (fill-pointer scratch)) (return :eof))
               (setf (%ss-ipos ss) (%ss-iend ss) (%ss-mark ss) -1)
               (return (values (coerce scratch 'simple-string) t)))
              (t (%fill socket ss (or deadline (setf deadline (%read-deadline socket))))))))))

;;; Encoding

(defun %unencodable (socket ss char)
  "The character to write instead of unencodable CHAR."
  (or (%ss-replacement ss)
      (restart-case
          (error 'stream-encoding-error :stream socket :character char
                                        :external-format (%ss-format ss))
        (use-value (new)
          :report "Write another character instead."
          :interactive (lambda () (list (read-char)))
          (check-type new character) new)
        (continue ()
          :report "Write #\\? instead."
          #\?))))

(defun %encode-ecl (ss char)
  "CHAR in an ECL multi-octet encoding: an octet vector, or NIL."
  (let ((v (make-array 8 :element-type '(unsigned-byte 8) :fill-pointer 0 :adjustable t)))
    (handler-case
        (let ((out (ext:make-sequence-output-stream v :external-format (%ss-ecl-format ss))))
          (write-char char out) v)
      (error () nil))))

(defun %encode-code (socket ss code)
  "Put character CODE into the output buffer (room for 8 octets is made
here); returns NIL if the codec cannot encode it."
  (declare (type stream-state ss) (fixnum code) (optimize (speed 3) (safety 0)))
  (%room socket ss 8)
  (let ((buf (%ss-obuf ss)) (p (%ss-opos ss)))
    (declare (type octets buf) (fixnum p))
    (macrolet ((put (&rest octets)
                 `(progn ,@(loop for o in octets for i from 0
                                 collect `(setf (aref buf (+ p ,i)) (logand ,o #xff)))
                         (setf (%ss-opos ss) (+ p ,(length octets)))
                         t)))
      (case (%ss-codec ss)
        (:utf-8 (flet ((tail (x) (logior #x80 (logand x #x3f))))
                  (cond ((< code #x80) (put code))
                        ((< code #x800) (put (logior #xc0 (ash code -6)) (tail code)))
                        ((<= #xd800 code #xdfff) nil)
                        ((< code #x10000) (put (logior #xe0 (ash code -12))
                                               (tail (ash code -6)) (tail code)))
                        (t (put (logior #xf0 (ash code -18)) (tail (ash code -12))
                                (tail (ash code -6)) (tail code))))))
        (:latin-1 (and (< code 256) (put code)))
        (:ascii (and (< code 128) (put code)))
        ((:utf-16le :utf-16be)
         (let ((big (eq (%ss-codec ss) :utf-16be)))
           (cond ((<= #xd800 code #xdfff) nil)
                 ((< code #x10000)
                  (if big (put (ash code -8) code) (put code (ash code -8))))
                 (t (let* ((v (- code #x10000))
                           (hi (+ #xd800 (ash v -10))) (lo (+ #xdc00 (logand v #x3ff))))
                      (if big
                          (put (ash hi -8) hi (ash lo -8) lo)
                          (put hi (ash hi -8) lo (ash lo -8))))))))
        (:utf-32be (and (not (<= #xd800 code #xdfff))
                        (put (ash code -24) (ash code -16) (ash code -8) code)))
        (:utf-32le (and (not (<= #xd800 code #xdfff))
                        (put code (ash code -8) (ash code -16) (ash code -24))))
        (:table (let ((o (gethash (code-char code) (%ss-etable ss))))
                  (and o (put o))))
        (t (let ((v (%encode-ecl ss (code-char code))))
             (when v
               (%room socket ss (length v))
               (let ((p (%ss-opos ss)))
                 (replace (%ss-obuf ss) v :start1 p)
                 (setf (%ss-opos ss) (+ p (length v)))))))))))

(defun %write-char (socket ss char)
  (declare (type stream-state ss) (character char) (optimize (speed 3) (safety 0)))
  (let ((code (char-code char)))
    (when (and (= code 10) (eq (%ss-eol ss) :crlf))
      (%encode-code socket ss 13))
    (unless (%encode-code socket ss code)
      (let ((new (%unencodable socket ss char)))
        (unless (%encode-code socket ss (char-code new))
          (error 'stream-encoding-error :stream socket :character new
                                        :external-format (%ss-format ss)))))
    (setf (%ss-column ss) (cond ((= code 10) 0)
                                ((%ss-column ss) (1+ (the fixnum (%ss-column ss))))))
    char))

(defmacro %ascii-run (type)
  "Copy the ASCII characters of STRING of TYPE straight into the buffer."
  `(let ((string string) (buf (%ss-obuf ss)) (i start) (utf-8 (eq (%ss-codec ss) :utf-8))
          (latin-1 (eq (%ss-codec ss) :latin-1)) (crlf (eq (%ss-eol ss) :crlf)))
     (declare (type ,type string) (type octets buf) (fixnum i))
     (loop while (< i end)
           do (let ((code (char-code (schar string i))) (p (%ss-opos ss)))
                (declare (fixnum code p))
                (cond ((and (< code #x80) (/= code 10) (< p (length buf)))
                       (setf (aref buf p) code (%ss-opos ss) (1+ p)))
                      ((and (= code 10) (< (+ p 1) (length buf)))
                       (if crlf
                           (setf (aref buf p) 13 (aref buf (+ p 1)) 10 (%ss-opos ss) (+ p 2))
                           (setf (aref buf p) 10 (%ss-opos ss) (+ p 1))))
                      ((and latin-1 (< code 256) (< p (length buf)))
                       (setf (aref buf p) code (%ss-opos ss) (1+ p)))
                      ((and utf-8 (< code #x800) (< (+ p 1) (length buf)))
                       (setf (aref buf p) (logior #xc0 (ash code -6))
                             (aref buf (+ p 1)) (logior #x80 (logand code #x3f))
                             (%ss-opos ss) (+ p 2)))
                      ((and utf-8 (< code #x10000) (not (<= #xd800 code #xdfff))
                            (< (+ p 2) (length buf)))
                       (setf (aref buf p) (logior #xe0 (ash code -12))
                             (aref buf (+ p 1)) (logior #x80 (logand (ash code -6) #x3f))
                             (aref buf (+ p 2)) (logior #x80 (logand code #x3f))
                             (%ss-opos ss) (+ p 3)))
                      (t (%write-char socket ss (schar string i))))
                (incf i)))))

(defun %write-string (socket ss string start end)
  (declare (type stream-state ss) (string string) (fixnum start end) (optimize (speed 3) (safety 0)))
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

;;; Octet sequences

(defun %read-octets (socket ss vector start end)
  "Fill VECTOR[START,END) with octets: from the buffer first, then straight
from the socket for large ranges.  Returns the index past the last octet
stored (< END only at end of file).  If a timeout unwinds, the octets already
stored go back into the input buffer."
  (declare (type stream-state ss) (fixnum start end))
  (setf (%ss-mark ss) -1)
  (let* ((pos start) (deadline nil) (done nil)
         (buf (%ss-ibuf ss)) (avail (- (%ss-iend ss) (%ss-ipos ss))))
    (declare (fixnum pos avail))
    (when (plusp avail)
      (let ((n (min avail (- end start))))
        (replace vector buf :start1 start :end1 (+ start n) :start2 (%ss-ipos ss))
        (incf (%ss-ipos ss) n) (incf pos n)))
    (when (< pos end)
      (unwind-protect
           (progn
             (loop while (and (< pos end) (not (%ss-eof ss)))
                   do (setf deadline (or deadline (%read-deadline socket)))
                      (if (and (>= (- end pos) (length (%ss-ibuf ss)))
                               (%octet-vector-p vector))
                          (let ((n (net-sys:recv (socket-handle socket) vector pos end 0
                                                 deadline socket)))
                            (cond ((null n) (%would-block socket "recv"))
                                  ((zerop n) (setf (%ss-eof ss) t))
                                  (t (incf pos n))))
                          (progn
                            (setf (%ss-ipos ss) 0 (%ss-iend ss) 0)
                            (%fill socket ss deadline)
                            (let ((n (min (- (%ss-iend ss) (%ss-ipos ss)) (- end pos))))
                              (replace vector (%ss-ibuf ss) :start1 pos :end1 (+ pos n)
                                                            :start2 (%ss-ipos ss))
                              (incf (%ss-ipos ss) n) (incf pos n)))))
             (setf done t))
        (unless done (%unread-octets ss vector start pos))))
    pos))

(defun %unread-octets (ss vector start end)
  "Put VECTOR[START,END) back in front of the buffered input."
  (let* ((n (- end start))
         (old (%ss-ibuf ss))
         (rest (- (%ss-iend ss) (%ss-ipos ss)))
         (new (if (<= (+ n rest) (length old))
                  old
                  (make-array (+ n rest) :element-type '(unsigned-byte 8)))))
    (replace new old :start1 n :start2 (%ss-ipos ss) :end2 (%ss-iend ss))
    (replace new vector :start2 start :end2 end)
    (setf (%ss-ibuf ss) new (%ss-ipos ss) 0 (%ss-iend ss) (+ n rest) (%ss-mark ss) -1)))

(defun %write-octets (socket ss vector start end)
  "Write VECTOR[START,END): into the buffer, or straight to the socket when
it is at least a buffer's worth."
  (declare (type stream-state ss) (fixnum start end))
  (let* ((n (- end start)) (buf (%ss-obuf ss)) (size (length buf)))
    (declare (fixnum n size))
    (setf (%ss-column ss) nil)
    (cond ((<= n (- size (%ss-opos ss)))
           (replace buf vector :start1 (%ss-opos ss) :start2 start :end2 end)
           (incf (%ss-opos ss) n))
          ((and (>= n size) (%octet-vector-p vector))
           (%flush socket ss)
           (let ((deadline (%deadline socket nil)) (handle (socket-handle socket)) (pos start))
             (declare (fixnum pos))
             (loop while (< pos end)
                   do (let ((k (net-sys:send handle vector pos end 0 deadline socket)))
                        (if k (incf pos k) (%would-block socket "send"))))))
          (t (loop with pos fixnum = start
                   while (< pos end)
                   do (%room socket ss 1)
                      (let ((k (min (- end pos) (- size (%ss-opos ss)))))
                        (replace buf vector :start1 (%ss-opos ss) :start2 pos :end2 (+ pos k))
                        (incf (%ss-opos ss) k) (incf pos k)))))
    vector))

(defun %check-range (sequence start end)
  "END, defaulted, once START and END are checked as bounds of SEQUENCE."
  (let ((len (length sequence)))
    (unless (and (typep start 'fixnum) (<= 0 start len))
      (error 'type-error :datum start :expected-type (list 'integer 0 len)))
    (let ((end (or end len)))
      (unless (and (typep end 'fixnum) (<= start end len))
        (error 'type-error :datum end :expected-type (list 'integer start len)))
      end)))

;;; The Gray stream methods

(defmethod gray:stream-element-type ((s stream-socket))
  '(or (unsigned-byte 8) character))

(defmethod gray:stream-read-byte ((s stream-socket))
  (let ((ss (%stream-state s)))
    (setf (%ss-mark ss) -1)
    (loop
      (let ((pos (%ss-ipos ss)))
        (when (< pos (%ss-iend ss))
          (setf (%ss-ipos ss) (1+ pos))
          (return (aref (%ss-ibuf ss) pos)))
        (when (zerop (%fill s ss (%read-deadline s)))
          (return :eof))))))

(defmethod gray:stream-write-byte ((s stream-socket) byte)
  (check-type byte (unsigned-byte 8))
  (let ((ss (%stream-state s)))
    (%room s ss 1)
    (setf (aref (%ss-obuf ss) (%ss-opos ss)) byte)
    (incf (%ss-opos ss))
    (setf (%ss-column ss) nil)
    byte))

(defmethod gray:stream-read-char ((s stream-socket))
  (%read-char s (%stream-state s) nil))

(defmethod gray:stream-read-char-no-hang ((s stream-socket))
  (%read-char s (%stream-state s) t))

(defmethod gray:stream-unread-char ((s stream-socket) char)
  (declare (ignore char))
  (let ((ss (%stream-state s)))
    (when (>= (%ss-mark ss) 0)
      (setf (%ss-ipos ss) (%ss-mark ss) (%ss-mark ss) -1))
    nil))

(defmethod gray:stream-peek-char ((s stream-socket))
  (let* ((ss (%stream-state s))
         (c (%read-char s ss nil)))
    (unless (eq c :eof)
      (setf (%ss-ipos ss) (%ss-mark ss) (%ss-mark ss) -1))
    c))

(defmethod gray:stream-listen ((s stream-socket))
  (let* ((ss (%stream-state s))
         (c (%read-char s ss t)))
    (when (characterp c)
      (setf (%ss-ipos ss) (%ss-mark ss) (%ss-mark ss) -1)
      t)))

(defmethod gray:stream-read-line ((s stream-socket))
  (let ((ss (%stream-state s)))
    (multiple-value-bind (line missing)
        (if (%octet-newlines-p ss) (%read-line-fast s ss) (%read-line-general s ss))
      ;; ECL's READ-LINE takes a true second value as end of file even
      ;; with a non-empty line, so a last unterminated line is returned
      ;; as if terminated; the next call reports end of file.
      (if (eq line :eof) (values nil t) (values line (and missing nil))))))

(defmethod gray:stream-clear-input ((s stream-socket))
  (let ((ss (%stream-state s)))
    (setf (%ss-ipos ss) 0 (%ss-iend ss) 0 (%ss-mark ss) -1)
    nil))

(defmethod gray:stream-write-char ((s stream-socket) char)
  (check-type char character)
  (%write-char s (%stream-state s) char))

(defmethod gray:stream-write-string ((s stream-socket) string &optional (start 0) end)
  (check-type string string)
  (let ((end (%check-range string start end)))
    (%write-string s (%stream-state s) string start end)))

(defmethod gray:stream-terpri ((s stream-socket))
  (%write-char s (%stream-state s) #\Newline)
  nil)

(defmethod gray:stream-line-column ((s stream-socket))
  (%ss-column (%stream-state s)))

(defmethod gray:stream-start-line-p ((s stream-socket))
  (eql (%ss-column (%stream-state s)) 0))

(defmethod gray:stream-fresh-line ((s stream-socket))
  (unless (eql (%ss-column (%stream-state s)) 0)
    (%write-char s (%stream-state s) #\Newline)
    t))

(defmethod gray:stream-advance-to-column ((s stream-socket) column)
  (let ((ss (%stream-state s)))
    (when (%ss-column ss)
      (loop repeat (- column (%ss-column ss)) do (%write-char s ss #\Space))
      t)))

(defmethod gray:stream-finish-output ((s stream-socket))
  (%flush s (%stream-state s)))

(defmethod gray:stream-force-output ((s stream-socket))
  (%flush s (%stream-state s)))

(defmethod gray:stream-clear-output ((s stream-socket))
  (setf (%ss-opos (%stream-state s)) 0)
  nil)

(defmethod gray:stream-file-position ((s stream-socket) &optional position)
  (declare (ignore position))
  nil)

(defmethod gray:stream-interactive-p ((s stream-socket))
  nil)

(defmethod gray:stream-read-sequence ((s stream-socket) sequence &optional (start 0) end)
  (let ((end (%check-range sequence start end))
        (ss (%stream-state s)))
    (if (stringp sequence)
        (%read-chars s ss sequence start end)
        (%read-octets s ss sequence start end))))

(defmethod gray:stream-write-sequence ((s stream-socket) sequence &optional (start 0) end)
  (let ((end (%check-range sequence start end))
        (ss (%stream-state s)))
    (if (stringp sequence)
        (%write-string s ss sequence start end)
        (%write-octets s ss sequence start end))
    sequence))

(defun %read-chars (socket ss string start end)
  "READ-SEQUENCE into STRING: consumes only when it returns."
  (declare (type stream-state ss) (fixnum start end) (optimize (speed 3) (safety 0)))
  (let ((pos start) (offset 0) (deadline nil)
        (ascii (member (%ss-codec ss) '(:utf-8 :latin-1 :ascii)))
        (utf-8 (eq (%ss-codec ss) :utf-8)))
    (declare (fixnum pos offset))
    (setf (%ss-mark ss) -1)
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
                        (%fill socket ss (or deadline (setf deadline (%read-deadline socket))))
                        (setf (%ss-mark ss) -1)))))
    (incf (%ss-ipos ss) offset)
    pos))

(defmethod close :around ((s stream-socket) &key abort)
  (if (and (not abort) (socket-open-p s) (slot-value s 'stream-state))
      (unwind-protect (%flush s (%stream-state s))
        (call-next-method))
      (call-next-method)))

;;; Reading what is there

(defun read-available (socket vector &key (start 0) end)
  "Read into VECTOR[START,END) what SOCKET has buffered or readable now,
without waiting: an octet vector gets octets, a string characters (only
complete ones).  Returns the index past the last element stored; START
means nothing is available now, and at end of file the second value is T."
  (check-type socket stream-socket)
  (let* ((end (%check-range vector start end))
         (ss (%stream-state socket)))
    (if (stringp vector)
        (let ((pos start))
          (loop while (< pos end)
                do (let ((c (%read-char socket ss t)))
                     (if (characterp c)
                         (progn (setf (char vector pos) c) (incf pos))
                         (loop-finish))))
          (setf (%ss-mark ss) -1)
          (values pos (and (= pos start) (%ss-eof ss) (= (%ss-ipos ss) (%ss-iend ss)))))
        (progn
          (when (and (= (%ss-ipos ss) (%ss-iend ss)) (< start end))
            (%fill socket ss -1 t))
          (let ((n (min (- end start) (- (%ss-iend ss) (%ss-ipos ss)))))
            (replace vector (%ss-ibuf ss) :start1 start :end1 (+ start n) :start2 (%ss-ipos ss))
            (incf (%ss-ipos ss) n)
            (setf (%ss-mark ss) -1)
            (values (+ start n) (and (zerop n) (%ss-eof ss))))))))
