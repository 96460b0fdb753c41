;;;; loop.lsp -- the event loop and what it watches: watchers, timers, calls
;;;; from other threads, host lookups and signals, on libuv.
;;;
;;; libuv's C callbacks only record (id, event mask) pairs (src/c/net/loop.c);
;;; after each pass the whole batch is copied into a fixnum vector in one
;;; call and dispatched in Lisp, outside uv_run (loop-dispatch.lsp).  IDs index the loop's
;;; OBJECTS vector, which holds every watcher, timer and lookup, so that no
;;; Lisp object is held only from C memory.

(in-package "NET")

(define-condition event-loop-error (network-error)
  ((loop :initarg :loop :initform nil :reader event-loop-error-loop
         :documentation "The event loop concerned.")
   (message :initarg :message :initform nil :reader event-loop-error-message
            :documentation "What was wrong, a sentence."))
  (:report (lambda (c s)
             (format s "~a: ~a" (event-loop-error-loop c) (event-loop-error-message c))))
  (:documentation "An event loop was used wrongly: from a thread that does
not own it, after it was closed, or with a socket it already watches."))

(setf (documentation 'event-loop-error-loop 'function)
      "The event loop an EVENT-LOOP-ERROR is about."
      (documentation 'event-loop-error-message 'function)
      "What was wrong, a sentence.")

;;; Event masks: the bits of NET_EV_* in net.h.
(defconstant +ev-read+ 1)
(defconstant +ev-write+ 2)
(defconstant +ev-urgent+ 4)
(defconstant +ev-disconnect+ 8)
(defconstant +ev-timer+ 16)
(defconstant +ev-closed+ 32)
(defconstant +ev-wake+ 64)
(defconstant +ev-lookup+ 128)
(defconstant +ev-signal+ 256)

(eval-when (:compile-toplevel :load-toplevel :execute) ; special in loop-dispatch.lsp too
  (defparameter +event-lists+
    (let ((v (make-array 16)))
      (dotimes (mask 16 v)
        (setf (svref v mask)
              (loop for (bit key) in '((1 :read) (2 :write) (4 :urgent) (8 :disconnect))
                    when (logtest bit mask) collect key))))
    "The list of event keywords of each mask below 16: callbacks get these
lists, made once, so that dispatching an event conses nothing."))

(defmacro %bits-p (mask bits)
  "True if the fixnum MASK has any of BITS (LOGTEST compiled inline: ECL
calls the generic function for LOGTEST even on fixnums)."
  `(not (zerop (logand (the fixnum ,mask) (the fixnum ,bits)))))

(defun %events-mask (events)
  "The mask of EVENTS, a list of :READ :WRITE :URGENT :DISCONNECT (or one of them)."
  (let ((mask 0))
    (dolist (e (if (listp events) events (list events)) mask)
      (setf mask (logior mask (case e
                                (:read +ev-read+) (:write +ev-write+) (:urgent +ev-urgent+)
                                (:disconnect +ev-disconnect+)
                                (t (error 'type-error :datum e
                                                      :expected-type
                                                      '(member :read :write :urgent
                                                        :disconnect)))))))))

;;; Objects

(defstruct (event-loop (:constructor %make-event-loop (pointer owner)) (:copier nil))
  "A libuv event loop, owned by the thread that made it."
  (pointer nil)
  (owner nil)
  (objects (make-array 64 :initial-element nil) :type simple-vector)
  (free-ids nil :type list)
  (next-id 0 :type fixnum)
  (deferred-ids nil :type list)     ; freed during a batch: reusable after it
  (events (make-array 2048 :element-type 'fixnum) :type (simple-array fixnum (*)))
  (batch-pos 0 :type fixnum)        ; the next event of the batch to dispatch
  (batch-end 0 :type fixnum)
  (current nil)                     ; the object whose callback runs, for restarts
  (ready nil :type list)            ; for WAIT-FOR-EVENTS, newest first
  (lock (mp:make-lock :name "event-loop calls"))
  (calls nil :type list)            ; CALL-IN-LOOP, newest first, under LOCK
  (pending-calls nil :type list)    ; taken from CALLS, oldest first
  (restarts nil :type list))        ; of failed callbacks, %CALLBACK-RESTARTS
(%inline-readers event-loop)

(defmethod print-object ((l event-loop) stream)
  (print-unreadable-object (l stream :type t :identity t)
    (format stream "~:[closed~;~:*~a~]"
            (and (event-loop-pointer l) (mp:process-name (event-loop-owner l))))))

(defstruct (watcher (:constructor %make-watcher (loop socket handle id mask callback
                                                 high-water-mark max-queued on-drain on-error))
                    (:copier nil))
  "A socket watched by an event loop."
  (loop nil)
  (socket nil)
  (handle nil)
  (id 0 :type fixnum)
  (mask 0 :type fixnum)             ; the events asked for
  (callback nil)
  (pointer nil)                     ; the C watcher; NIL once removed
  ;; The write queue (loop-queue.lsp).
  (queue-head nil :type list)
  (queue-tail nil :type list)
  (queued 0 :type fixnum)
  (high-water-mark 0 :type fixnum)
  (max-queued 0 :type fixnum)
  (on-drain nil)
  (on-error nil)
  (after-drain nil))                ; NIL, :CLOSE or :SHUTDOWN
(%inline-readers watcher)

(defmethod print-object ((w watcher) stream)
  (print-unreadable-object (w stream :type t :identity t)
    (format stream "~a ~s" (watcher-socket w) (svref +event-lists+ (watcher-mask w)))))

(defstruct (timer (:constructor %make-timer (loop id function repeat)) (:copier nil))
  "A timer of an event loop."
  (loop nil) (id 0 :type fixnum) (function nil) (repeat nil) (pointer nil))
(%inline-readers timer)

(defstruct (host-lookup (:constructor %make-host-lookup (loop id name callback))
                        (:copier nil))
  "An asynchronous host lookup (LOOKUP-HOST-ASYNC)."
  (loop nil) (id 0 :type fixnum) (name nil) (callback nil) (pointer nil)
  (outcome nil))                    ; (addresses canonical-name) or a condition, when done

(setf (documentation 'watcher-socket 'function) "The socket a watcher watches."
      (documentation 'watcher-loop 'function) "The event loop of a watcher."
      (documentation 'event-loop-p 'function) "True if the argument is an EVENT-LOOP.")

;;; Ownership

(defun %loop-error (loop message &rest args)
  (error 'event-loop-error :loop loop :message (apply #'format nil message args)))

(defun %loop-pointer (loop)
  "LOOP's C pointer, after checking it is open and this thread owns it."
  (declare (optimize speed (safety 0)))
  (unless (event-loop-p loop)
    (error 'type-error :datum loop :expected-type 'event-loop))
  (let ((p (event-loop-pointer loop)))
    (unless p
      (%loop-error loop "the event loop is closed"))
    (unless (eq (event-loop-owner loop) mp:*current-process*)
      (%loop-error loop "used from ~a, but owned by ~a: only CALL-IN-LOOP and ~
STOP-EVENT-LOOP may be called from another thread"
                   (mp:process-name mp:*current-process*)
                   (mp:process-name (event-loop-owner loop))))
    p))

;;; IDs

(declaim (inline %next-id))
(defun %next-id (loop)
  "The id %TAKE-ID gives next."
  (declare (optimize speed (safety 0)) (type event-loop loop))
  (the fixnum (or (car (event-loop-free-ids loop)) (event-loop-next-id loop))))

(defun %take-id (loop id object)
  "Give OBJECT the id ID, which %NEXT-ID just returned."
  (declare (optimize speed (safety 0)) (type event-loop loop) (fixnum id))
  (if (eql id (car (event-loop-free-ids loop)))
      (pop (event-loop-free-ids loop))
      (setf (event-loop-next-id loop) (the fixnum (1+ id))))
  (let ((objects (event-loop-objects loop)))
    (declare (simple-vector objects))
    (when (>= id (length objects))
      (let ((new (make-array (* 2 (length objects)) :initial-element nil)))
        (replace new objects)
        (setf (event-loop-objects loop) new objects new)))
    (setf (svref objects id) object)
    id))

(defun %new-id (loop object)
  (%take-id loop (%next-id loop) object))

(defun %free-id (loop id)
  "Forget ID's object.  Within a batch the ID is reused only after it, so
that a later event of the batch for the old object is not given to a new one."
  (declare (optimize speed (safety 0)) (type event-loop loop) (fixnum id))
  (setf (svref (event-loop-objects loop) id) nil)
  (if (< (event-loop-batch-pos loop) (event-loop-batch-end loop))
      (push id (event-loop-deferred-ids loop))
      (push id (event-loop-free-ids loop))))

(net-sys:%defun-inline %end-batch (loop) ; every pass's, in loop-dispatch.lsp
  (declare (optimize speed (safety 0)) (type event-loop loop))
  (setf (event-loop-batch-pos loop) 0 (event-loop-batch-end loop) 0)
  (when (event-loop-deferred-ids loop)
    (setf (event-loop-free-ids loop) (nconc (event-loop-deferred-ids loop)
                                            (event-loop-free-ids loop))
          (event-loop-deferred-ids loop) nil)))

;;; Creation

(declaim (ftype function %callback-restarts)) ; loop-dispatch.lsp

(defun make-event-loop ()
  "A new event loop, owned by the calling thread: only that thread may use
it, except for CALL-IN-LOOP and STOP-EVENT-LOOP, which any thread may call.
Close it with CLOSE-EVENT-LOOP (WITH-EVENT-LOOP does)."
  (let ((loop (%make-event-loop (net-sys:loop-new) mp:*current-process*)))
    (setf (event-loop-restarts loop) (%callback-restarts loop))
    loop))

(defun close-event-loop (loop)
  "Close LOOP: remove its watchers (their sockets stay open), timers and
lookups, and free it.  Functions queued by CALL-IN-LOOP that have not run
are discarded.  Idempotent: returns T if this call closed it."
  (when (event-loop-pointer loop)
    (let ((p (%loop-pointer loop)))
      (loop for object across (event-loop-objects loop)
            do (typecase object
                 (watcher (%free-watcher loop object))
                 (timer (%free-timer loop object))
                 (host-lookup (%free-lookup loop object))
                 (signal-watcher (%free-signal-watcher loop object))))
      (setf (event-loop-pointer loop) nil
            (event-loop-ready loop) nil
            (event-loop-calls loop) nil
            (event-loop-pending-calls loop) nil)
      (net-sys:loop-close p)
      t)))

(defmacro with-event-loop ((var) &body body)
  "Run BODY with VAR bound to a new event loop, closed however BODY exits."
  `(let ((,var (make-event-loop)))
     (unwind-protect (progn ,@body)
       (close-event-loop ,var))))

;;; Watchers

(defun add-watcher (loop socket events &optional callback
                    &key (high-water-mark (* 1024 1024)) (max-queued (* 64 1024 1024))
                      on-drain on-error)
  "Watch SOCKET in LOOP for EVENTS, a list of :READ, :WRITE, :URGENT
(out-of-band data) and :DISCONNECT (the peer shut down its side).  Returns
the watcher.  CALLBACK, a function of (SOCKET EVENTS), is called from
RUN-EVENT-LOOP or WAIT-FOR-EVENTS with the list of ready events (a list
shared between calls: do not modify it); without CALLBACK the watcher's
events are returned by WAIT-FOR-EVENTS.  HIGH-WATER-MARK (1 MiB),
MAX-QUEUED (64 MiB: the most octets the queue may hold), ON-DRAIN and
ON-ERROR configure the write queue (see QUEUE-SEND).  A socket has at most
one watcher in a loop.  Closing the socket removes its watcher."
  (%add-watcher loop socket events callback high-water-mark max-queued on-drain on-error))

(defun %add-watcher (loop socket events callback high-water-mark max-queued on-drain on-error)
  "ADD-WATCHER with its arguments positional (a connection's accept adds one)."
  ;; Compiled without checks: %LOOP-POINTER checks LOOP, SOCKET-HANDLE
  ;; SOCKET, CHECK-TYPE the rest.
  (declare (optimize speed (safety 0)))
  (let* ((p (%loop-pointer loop))
         (mask (%events-mask events))
         (handle (socket-handle socket)))
    (check-type high-water-mark (integer 0 #.most-positive-fixnum))
    (check-type max-queued (integer 0 #.most-positive-fixnum))
    ;; The id is taken once the C watcher has started: a failure to start
    ;; leaves nothing to undo (no UNWIND-PROTECT per watcher), and nothing
    ;; in between can take an id.
    (let* ((id (%next-id loop))
           (w (%make-watcher loop socket handle id mask callback
                             high-water-mark max-queued on-drain on-error)))
      (setf (watcher-pointer w) (net-sys:watch-start p handle id mask socket))
      (%take-id loop id w)
      w)))
(net-sys:%define-positional add-watcher %add-watcher 4
  ((:high-water-mark #.(* 1024 1024)) (:max-queued #.(* 64 1024 1024))
   (:on-drain nil) (:on-error nil)))

(defun %watch-mask (w)
  "The mask the C watcher needs: the user's, and :WRITE while the queue holds data."
  (if (plusp (watcher-queued w))
      (logior (watcher-mask w) +ev-write+)
      (watcher-mask w)))

(defun %update-watch (w)
  (let ((p (watcher-pointer w)))
    (when p
      (net-sys:watch-set-events p (%watch-mask w) (watcher-socket w)))))

(defun watcher-events (watcher)
  "The events WATCHER watches, a list of keywords; SETF-able (NIL: none for
now, the watcher stays)."
  (svref +event-lists+ (watcher-mask watcher)))

(defun (setf watcher-events) (events watcher)
  (let ((mask (%events-mask events))
        (loop (watcher-loop watcher)))
    (%loop-pointer loop)
    (when (watcher-pointer watcher)
      (setf (watcher-mask watcher) mask)
      (%update-watch watcher))
    events))

(defun %free-watcher (loop w &optional closed-event)
  "Free W's C watcher and its id, once.  A watcher whose socket was closed
on this thread has a closed event queued under its id: the id stays taken
until that event (CLOSED-EVENT true) is dispatched, so that it cannot reach
a newer watcher."
  (declare (optimize speed (safety 0)) (type watcher w))
  (let ((p (watcher-pointer w)))
    (when p
      (setf (watcher-pointer w) nil)
      (if (or closed-event (net-sys:watch-attached p))
          (%free-id loop (watcher-id w))
          (setf (svref (event-loop-objects loop) (watcher-id w)) :closing))
      (net-sys:watch-free p)
      (when (watcher-queue-head w)    ; a call saved per connection otherwise
        (%drop-queue w)))))

(defun remove-watcher (loop watcher)
  "Stop WATCHER and remove it from LOOP; its socket stays open, and octets
still in its write queue are dropped.  Idempotent."
  (%loop-pointer loop)
  (check-type watcher watcher)
  (%free-watcher loop watcher)
  nil)

;;; Timers

(defun %ms (seconds)
  (check-type seconds (real 0))
  (min most-positive-fixnum (ceiling (* seconds 1000))))

(defun add-timer (loop function seconds &key repeat)
  "Call FUNCTION (of no arguments) in LOOP after SECONDS, then every REPEAT
seconds if REPEAT is given.  Returns the timer; REMOVE-TIMER stops it.
FUNCTION NIL makes WAIT-FOR-EVENTS return (TIMER . :TIMER) instead.
Timers have libuv's millisecond resolution."
  (let* ((p (%loop-pointer loop))
         (ms (%ms seconds))
         (rep (if repeat (max 1 (%ms repeat)) 0))
         (timer (%make-timer loop 0 function repeat))
         (id (%new-id loop timer)))
    (setf (timer-id timer) id
          (timer-pointer timer) (net-sys:timer-start p id ms rep))
    timer))

(defun %free-timer (loop timer)
  (let ((p (timer-pointer timer)))
    (when p
      (setf (timer-pointer timer) nil)
      (net-sys:timer-free p)
      (%free-id loop (timer-id timer)))))

(defun remove-timer (loop timer)
  "Stop TIMER; it does not fire again.  Idempotent."
  (%loop-pointer loop)
  (%free-timer loop timer)
  nil)

;;; Calls from other threads

(defun call-in-loop (loop function)
  "Run FUNCTION (of no arguments) in LOOP's thread, from its next pass.
Any thread may call it.  Wake-ups coalesce, but every function queued runs
once, in the order queued.  Returns NIL."
  (let ((p (event-loop-pointer loop)))
    (unless p
      (%loop-error loop "the event loop is closed"))
    (mp:with-lock ((event-loop-lock loop))
      (push function (event-loop-calls loop)))
    (net-sys:loop-wake p)
    nil))

(defun %run-calls (loop)
  ;; Take the queued functions first, so that one that unwinds leaves the
  ;; rest queued, to run at the next pass.
  (when (event-loop-calls loop)
    (let ((new (mp:with-lock ((event-loop-lock loop))
                 (shiftf (event-loop-calls loop) nil))))
      (setf (event-loop-pending-calls loop)
            (nconc (event-loop-pending-calls loop) (nreverse new)))))
  (loop while (event-loop-pending-calls loop)
        do (funcall (the function (pop (event-loop-pending-calls loop))))))

(defun stop-event-loop (loop)
  "Make RUN-EVENT-LOOP return after the events of the current pass.  Any
thread may call it.  Returns NIL."
  (let ((p (event-loop-pointer loop)))
    (when p
      (net-sys:loop-stop p))
    nil))

;;; Asynchronous host lookups

(defun lookup-host-async (loop name callback &key address-family)
  "Resolve host NAME as LOOKUP-HOST does, on libuv's thread pool, without
blocking LOOP.  When done, CALLBACK is called in LOOP with three arguments:
the list of addresses, the canonical name, and NIL; or NIL, NIL and the
RESOLVER-ERROR when the lookup failed.  With CALLBACK NIL the finished
lookup appears in WAIT-FOR-EVENTS as (LOOKUP . :LOOKUP), and
HOST-LOOKUP-RESULT gives its result.  An invalid NAME signals
INVALID-ADDRESS at once.  Returns the lookup object."
  (check-type name string)
  (let* ((p (%loop-pointer loop))
         (family (%family-code address-family))
         (q (%make-host-lookup loop 0 name callback))
         (id (%new-id loop q))
         (r (handler-bind ((error (lambda (c) (declare (ignore c)) (%free-id loop id))))
              (net-sys:lookup-start p id name family))))
    (when (stringp r)
      (%free-id loop id)
      (%invalid name r))
    (setf (host-lookup-id q) id (host-lookup-pointer q) r)
    q))

(defun %lookup-finish (q)
  "Read the result of finished lookup Q into its RESULT slot."
  (let ((r (net-sys:lookup-result (host-lookup-pointer q))))
    (setf (host-lookup-outcome q)
          (if (integerp r)
              (%error-condition r "getaddrinfo" (host-lookup-name q))
              (list (loop for (octets . scope) in (cdr r)
                          collect (%make-inet-address octets scope))
                    (car r))))))

(defun %free-lookup (loop q)
  (let ((p (host-lookup-pointer q)))
    (when p
      (setf (host-lookup-pointer q) nil)
      (net-sys:lookup-free p)
      (%free-id loop (host-lookup-id q)))))

(defun %lookup-event (loop q)
  (%lookup-finish q)
  (%free-lookup loop q)
  (let ((cb (host-lookup-callback q))
        (r (host-lookup-outcome q)))
    (cond ((null cb) (push (cons q :lookup) (event-loop-ready loop)))
          (t (setf (event-loop-current loop) q)
             (if (consp r)
                 (funcall cb (first r) (second r) nil)
                 (funcall cb nil nil r))))))

(defun host-lookup-result (lookup)
  "The result of a finished LOOKUP (from LOOKUP-HOST-ASYNC): the addresses
and the canonical name as two values, as LOOKUP-HOST returns them; signals
the lookup's RESOLVER-ERROR if it failed.  NIL while it is running."
  (let ((r (host-lookup-outcome lookup)))
    (cond ((null r) nil)
          ((consp r) (values (copy-list (first r)) (second r)))
          (t (error r)))))
;;; Signals

(defstruct (signal-watcher (:constructor %make-signal-watcher (loop id signal function))
                           (:copier nil))
  "A watcher of a Unix signal (ADD-SIGNAL-WATCHER)."
  (loop nil) (id 0 :type fixnum) (signal nil) (function nil) (pointer nil))

(defparameter +signals+
  '((:hup . 1) (:quit . 3) (:usr1 . 10) (:usr2 . 12) (:alrm . 14) (:term . 15)
    (:chld . 17) (:cont . 18) (:tstp . 20) (:winch . 28))
  "Signal names ADD-SIGNAL-WATCHER knows, with their Linux numbers.")

(defun add-signal-watcher (loop signal function)
  "Call FUNCTION (of one argument, SIGNAL) in LOOP each time SIGNAL arrives:
a keyword (:TERM :HUP :USR1 :USR2 :QUIT :CHLD :WINCH :ALRM :CONT :TSTP) or a
signal number.  FUNCTION NIL makes WAIT-FOR-EVENTS return (WATCHER .
:SIGNAL).  Arrivals between two passes may coalesce into one call.  A
signal that ECL handles itself (SIGINT, SIGSEGV, SIGPIPE, the collector's
SIGPWR, ...) or that another handler owns is refused with an
EVENT-LOOP-ERROR: libuv would take it over.  Returns the signal watcher;
REMOVE-SIGNAL-WATCHER stops it and restores the default action."
  (let* ((p (%loop-pointer loop))
         (n (if (integerp signal)
                signal
                (or (cdr (assoc signal +signals+))
                    (error 'type-error :datum signal
                                       :expected-type `(or (integer 1 64)
                                                           (member ,@(mapcar #'car +signals+)))))))
         (w (%make-signal-watcher loop 0 signal function))
         (id (%new-id loop w))
         (r (handler-bind ((error (lambda (c) (declare (ignore c)) (%free-id loop id))))
              (net-sys:signal-start p id n))))
    (unless r
      (%free-id loop id)
      (%loop-error loop "signal ~a has a handler already (ECL's own or another): ~
                         it cannot be watched" signal))
    (setf (signal-watcher-id w) id (signal-watcher-pointer w) r)
    w))

(defun %free-signal-watcher (loop w)
  (let ((p (signal-watcher-pointer w)))
    (when p
      (setf (signal-watcher-pointer w) nil)
      (net-sys:signal-free p)
      (%free-id loop (signal-watcher-id w)))))

(defun remove-signal-watcher (loop watcher)
  "Stop WATCHER (from ADD-SIGNAL-WATCHER).  Idempotent."
  (%loop-pointer loop)
  (%free-signal-watcher loop watcher)
  nil)

(defun %signal-event (loop w)
  (let ((f (signal-watcher-function w)))
    (if f
        (progn (setf (event-loop-current loop) w)
               (funcall f (signal-watcher-signal w)))
        (push (cons w :signal) (event-loop-ready loop)))))
