;;;; codec.lsp -- external formats: parsing them, and the decoders and
;;;; encoders between octets and characters used by socket streams.
;;;
;;; A CODEC structure holds the current external format of a stream: a
;;; keyword naming the codec, the line ending, the replacement character and
;;; the tables of a single-octet ECL encoding.  The stream's own state
;;; (stream.lsp) includes it.  Codecs are plain functions dispatching on the
;;; keyword with CASE, never generic functions.  Decoders read an octet
;;; buffer; the encoder writes into one, the caller having made the room.

(in-package "NET")

(deftype octets () '(simple-array (unsigned-byte 8) (*)))

(declaim (inline %octet-vector-p))
(defun %octet-vector-p (x)
  "True for any (VECTOR (UNSIGNED-BYTE 8)); unlike TYPEP of that type, conses nothing."
  (or (typep x 'octets)
      (and (vectorp x) (equal (array-element-type x) '(unsigned-byte 8)))))

(defstruct (codec (:conc-name %cd-) (:constructor nil) (:copier nil) (:predicate nil))
  (format :utf-8)                       ; the external format as given
  (codec :utf-8 :type symbol)           ; :UTF-8 :LATIN-1 :ASCII :UTF-16LE ... :TABLE :ECL
  (eol :lf :type symbol)                ; :LF, :CRLF or :CR
  (replacement nil)                     ; NIL: signal; else the replacement character
  (dtable nil)                          ; :TABLE: octet -> char or NIL
  (etable nil)                          ; :TABLE: char -> octet
  (ecl-format nil)                      ; :ECL: ECL's encoding keyword
  (scratch nil))                        ; made by %SCRATCH on first use
(%inline-readers codec)

(defun %scratch (cd)
  "CD's string for decoding character by character, made on first use: an
idle stream holds none."
  (or (%cd-scratch cd)
      (setf (%cd-scratch cd)
            (make-array 64 :element-type 'character :adjustable t :fill-pointer 0))))

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
    ;; ECL's names of UTF-16 with a byte order mark: through ECL's decoder,
    ;; one character at a time from a fresh stream, a surrogate pair came
    ;; out as three wrong characters (found by the decoder's fuzzing).
    (:utf16 . :utf-16be) (:unicode . :utf-16be)
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
                   ((member x '(:cr :mac)) (setf eol :cr))
                   ((eq x :replacement)
                    (setf replacement (second rest))
                    (unless (characterp replacement)
                      (error 'type-error :datum replacement :expected-type 'character))
                    (return))
                   (t (error 'simple-type-error :datum x :expected-type '(member :lf :crlf :cr)
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

(defun %set-codec-format (cd format)
  "Switch codec CD to the external format FORMAT (checked here)."
  (multiple-value-bind (codec eol replacement encoding) (%parse-external-format format)
    (setf (%cd-codec cd) codec (%cd-eol cd) eol (%cd-replacement cd) replacement
          (%cd-format cd) encoding
          (%cd-dtable cd) nil (%cd-etable cd) nil (%cd-ecl-format cd) nil)
    (case codec
      (:table (let ((tables (%ecl-tables encoding)))
                (setf (%cd-dtable cd) (car tables) (%cd-etable cd) (cdr tables))))
      (:ecl (setf (%cd-ecl-format cd) (list encoding :lf))))
    cd))

(defun %codec-external-format (cd)
  "The external format of CD as SOCKET-EXTERNAL-FORMAT reports it."
  (if (or (not (eq (%cd-eol cd) :lf)) (%cd-replacement cd))
      `(,(%cd-format cd) ,(%cd-eol cd)
        ,@(and (%cd-replacement cd) (list :replacement (%cd-replacement cd))))
      (%cd-format cd)))

;;; The UTF-8 encoder.  Defined at compile time too, so that stream.lsp,
;;; compiled later in the same image, inlines it into its string loop.

(eval-when (:compile-toplevel :load-toplevel :execute)
  (declaim (inline %utf-8-put))
  (defun %utf-8-put (buf p code)
    "Store the UTF-8 of CODE (no surrogate) in BUF at P, which has room for 4
octets; returns the position after it."
    (declare (type (simple-array (unsigned-byte 8) (*)) buf) (fixnum p code)
             (optimize (speed 3) (safety 0)))
    (flet ((tail (x) (logior #x80 (logand x #x3f))))
      (cond ((< code #x80) (setf (aref buf p) code) (+ p 1))
            ((< code #x800)
             (setf (aref buf p) (logior #xc0 (ash code -6)) (aref buf (+ p 1)) (tail code))
             (+ p 2))
            ((< code #x10000)
             (setf (aref buf p) (logior #xe0 (ash code -12)) (aref buf (+ p 1)) (tail (ash code -6))
                   (aref buf (+ p 2)) (tail code))
             (+ p 3))
            (t (setf (aref buf p) (logior #xf0 (ash code -18)) (aref buf (+ p 1)) (tail (ash code -12))
                     (aref buf (+ p 2)) (tail (ash code -6)) (aref buf (+ p 3)) (tail code))
               (+ p 4))))))

;;; Decoding

(defun %invalid-input (stream cd buf start next)
  "The character replacing the invalid octets BUF[START,NEXT) read from STREAM."
  (or (%cd-replacement cd)
      (restart-case
          (error 'stream-decoding-error :stream stream :external-format (%cd-format cd)
                                        :octets (subseq buf start next))
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

(defun %decode-ecl (cd buf pos end)
  "One character of an ECL multi-octet encoding, through ECL's own decoder."
  (let* ((stop (min end (+ pos 8)))
         (in (ext:make-sequence-input-stream buf :start pos :end stop
                                             :external-format (%cd-ecl-format cd))))
    (handler-case (let ((c (read-char in nil nil)))
                    (if c
                        (values (char-code c) (file-position in))
                        (values -1 pos)))
      (error () (values -2 (1+ pos))))))

(defun %decode-raw (cd buf pos end)
  "One character code of SS's codec at POS: (values code next); code -1 means
incomplete (NEXT = POS), -2 invalid octets [POS,NEXT)."
  (declare (type codec cd) (type octets buf) (fixnum pos end) (optimize (speed 3) (safety 0)))
  (case (%cd-codec cd)
    (:utf-8 (let ((b (aref buf pos)))
              (if (< b #x80) (values b (1+ pos)) (%decode-utf-8 buf pos end))))
    (:latin-1 (values (aref buf pos) (1+ pos)))
    (:ascii (let ((b (aref buf pos))) (if (< b #x80) (values b (1+ pos)) (values -2 (1+ pos)))))
    (:utf-16le (%decode-utf-16 buf pos end nil))
    (:utf-16be (%decode-utf-16 buf pos end t))
    (:utf-32le (%decode-utf-32 buf pos end nil))
    (:utf-32be (%decode-utf-32 buf pos end t))
    (:table (let ((c (svref (%cd-dtable cd) (aref buf pos))))
              (if c (values (char-code c) (1+ pos)) (values -2 (1+ pos)))))
    (t (%decode-ecl cd buf pos end))))

(defun %decode-char (stream cd buf pos end eofp)
  "The character at POS with line endings and the invalid-input policy
applied: (values char next), or (values NIL :INCOMPLETE) / (values NIL :EOF)."
  (declare (type codec cd) (type octets buf) (fixnum pos end) (optimize (speed 3) (safety 0)))
  (when (>= pos end)
    (return-from %decode-char (values nil (if eofp :eof :incomplete))))
  (multiple-value-bind (code next) (%decode-raw cd buf pos end)
    (declare (fixnum code next))
    (cond ((and (= code 13) (eq (%cd-eol cd) :crlf))
           (if (>= next end)
               (if eofp (values #\Return next) (values nil :incomplete))
               (multiple-value-bind (c2 next2) (%decode-raw cd buf next end)
                 (cond ((= c2 10) (values #\Newline next2))
                       ((and (= c2 -1) (not eofp)) (values nil :incomplete))
                       (t (values #\Return next))))))
          ((and (= code 13) (eq (%cd-eol cd) :cr)) (values #\Newline next))
          ((>= code 0) (values (code-char code) next))
          ((and (= code -1) (not eofp)) (values nil :incomplete))
          (t (let ((next (if (= code -1) end next)))
               (values (%invalid-input stream cd buf pos next) next))))))

;;; Decoding a run of octets into a string

(defun %decode-range (stream cd buf start end)
  "A fresh string of the characters of input octets [START,END), which hold
no line end; an incomplete character at END is invalid."
  (declare (type codec cd) (type octets buf) (fixnum start end) (optimize (speed 3) (safety 0)))
  (progn
    (case (%cd-codec cd)
      (:utf-8
       (or (%decode-utf-8-range buf start end)
           (%decode-range-slowly stream cd buf start end)))
      (:latin-1
       (let ((s (make-string (- end start))))
         (loop for i fixnum from start below end for j fixnum from 0
               do (setf (schar s j) (code-char (aref buf i))))
         s))
      (t (%decode-range-slowly stream cd buf start end)))))

(defun %decode-range-slowly (stream cd buf start end)
  "%DECODE-RANGE one character at a time, with the invalid-input policy."
  (declare (type codec cd) (type octets buf) (fixnum start end) (optimize (speed 3) (safety 0)))
  (let ((scratch (%scratch cd)) (pos start))
    (declare (fixnum pos))
    (setf (fill-pointer scratch) 0)
    (loop while (< pos end)
          do (multiple-value-bind (c next) (%decode-char stream cd buf pos end t)
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

(defun %octet-newlines-p (cd)
  "True if a newline is octet 10 and octet 10 never occurs inside another character."
  (and (not (eq (%cd-eol cd) :cr))
       (member (%cd-codec cd) '(:utf-8 :latin-1 :ascii :table :ecl))))

;;; Encoding

(defun %unencodable (stream cd char)
  "The character to write instead of unencodable CHAR."
  (or (%cd-replacement cd)
      (restart-case
          (error 'stream-encoding-error :stream stream :character char
                                        :external-format (%cd-format cd))
        (use-value (new)
          :report "Write another character instead."
          :interactive (lambda () (list (read-char)))
          (check-type new character) new)
        (continue ()
          :report "Write #\\? instead."
          #\?))))

(defun %encode-ecl (cd char)
  "CHAR in an ECL multi-octet encoding: an octet vector, or NIL."
  (let ((v (make-array 8 :element-type '(unsigned-byte 8) :fill-pointer 0 :adjustable t)))
    (handler-case
        (let ((out (ext:make-sequence-output-stream v :external-format (%cd-ecl-format cd))))
          (write-char char out) v)
      (error () nil))))

(defun %encode-code (cd buf p code)
  "Encode character CODE into BUF at P, where the caller has left room for 8
octets (every encoding takes at most 4 per character); returns the position
after it, or NIL if the codec cannot encode it."
  (declare (type codec cd) (type octets buf) (fixnum p code) (optimize (speed 3) (safety 0)))
  (progn
    (macrolet ((put (&rest octets)
                 `(progn ,@(loop for o in octets for i from 0
                                 collect `(setf (aref buf (+ p ,i)) (logand ,o #xff)))
                         (+ p ,(length octets)))))
      (case (%cd-codec cd)
        (:utf-8 (and (not (<= #xd800 code #xdfff)) (%utf-8-put buf p code)))
        (:latin-1 (and (< code 256) (put code)))
        (:ascii (and (< code 128) (put code)))
        ((:utf-16le :utf-16be)
         (let ((big (eq (%cd-codec cd) :utf-16be)))
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
        (:table (let ((o (gethash (code-char code) (%cd-etable cd))))
                  (and o (put o))))
        (t (let ((v (%encode-ecl cd (code-char code))))
             (when v
               (replace buf v :start1 p)
               (+ p (length v)))))))))
