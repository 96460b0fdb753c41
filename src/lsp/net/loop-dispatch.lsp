;;;; loop-dispatch.lsp -- the event loop's dispatch: a pass of libuv and the
;;;; batch of events it recorded, the restarts of a failed callback, and the
;;;; two models that run passes (callbacks, and the polling of
;;;; wait-for-events); wait-until-ready, which needs no loop.
;;;
;;; The objects, ids, watchers, timers, lookups and signals these dispatch
;;; are in loop.lsp, the write queue in loop-queue.lsp.

(in-package "NET")

;;; Dispatch

(eval-when (:compile-toplevel :load-toplevel :execute) ; special in later files too
  (defvar *dispatching-loop* nil
    "The event loop whose dispatch is the innermost in this thread: only its
callbacks' restarts are offered."))

(net-sys:%defun-inline %failing-object (loop)
  "The watcher, timer or other object whose callback of LOOP runs now, if
LOOP's dispatch is the innermost of this thread; else NIL: what an error
signalled now is a failure of."
  (and (eq *dispatching-loop* loop) (event-loop-current loop)))

(defun %take-restart (loop action)
  "A restart of a failed callback of LOOP: ACTION (NIL, :REMOVE or :CLOSE)
on the object whose callback failed, then on with the next event (the
CATCH of %DISPATCH)."
  (let ((object (event-loop-current loop)))
    (setf (event-loop-current loop) nil)
    (case action
      (:remove (cond ((watcher-p object) (%free-watcher loop object))
                     ((timer-p object) (%free-timer loop object))
                     ((signal-watcher-p object) (%free-signal-watcher loop object))))
      (:close (when (watcher-p object)
                (close (watcher-socket object) :abort t))))
    (throw loop nil)))

(defun %callback-restarts (loop)
  "The restarts SKIP-EVENT, REMOVE-WATCHER and CLOSE-SOCKET of LOOP's
callbacks, made once per loop.  RUN-EVENT-LOOP and WAIT-FOR-EVENTS put
them in effect (as RESTART-BIND would, which makes them anew on each call);
their tests offer them for an error while a callback of LOOP runs and
LOOP's dispatch is the innermost of this thread, and CLOSE-SOCKET only for
a watcher's.  An error in a callback is so signalled once, by whoever
signals it, with nothing consed for the restarts."
  (let ((watcher-class (find-class 'watcher)))
    (flet ((offered-p (condition watcher-only)
             ;; Run for each restart each time restarts are computed (twice
             ;; when a handler finds one and invokes it): loads and compares.
             (declare (optimize (speed 3) (safety 0)))
             (let ((object (%failing-object loop)))
               (and object
                    ;; Not TYPEP: ECL calls its generic CL_TYPEP for a class name.
                    (or (null condition) (si::of-class-p condition 'error))
                    (or (not watcher-only)
                        (net-sys:%instance-class-is object watcher-class))))))
      (list (si::make-restart
             :name 'skip-event
             :function (lambda () (%take-restart loop nil))
             :report-function (lambda (s) (write-string "Skip this event; the event loop goes on." s))
             :test-function (lambda (c) (offered-p c nil)))
            (si::make-restart
             :name 'remove-watcher
             :function (lambda () (%take-restart loop :remove))
             :report-function (lambda (s) (format s "Remove the watcher (timer, signal ~
watcher) whose callback failed; the event loop goes on."))
             :test-function (lambda (c) (offered-p c nil)))
            (si::make-restart
             :name 'close-socket
             :function (lambda () (%take-restart loop :close))
             :report-function (lambda (s) (format s "Close the socket of the watcher whose ~
callback failed; the event loop goes on."))
             :test-function (lambda (c) (offered-p c t)))))))

(declaim (inline %watcher-event))
(defun %watcher-event (loop w mask)
  (declare (optimize speed (safety 0)) (type watcher w) (fixnum mask))
  (cond ((%bits-p mask +ev-closed+)
         ;; Closed on this thread: the C watcher has let go already.
         (%free-watcher loop w t))
        ((not (net-sys:handle-open-p (watcher-handle w)))
         ;; Closed by another thread, or earlier in this batch.
         (%free-watcher loop w))
        (t
         (when (and (%bits-p mask +ev-write+) (plusp (watcher-queued w)))
           (%flush-queue w)
           (setf mask (logand mask (watcher-mask w))))
         (let ((user (logand (logand mask (watcher-mask w)) 15))
               (cb (watcher-callback w)))
           (cond ((or (zerop user) (null (watcher-pointer w))))
                 ((null cb)
                  (push (cons (watcher-socket w) (svref +event-lists+ user))
                        (event-loop-ready loop)))
                 (t
                  (setf (event-loop-current loop) w)
                  (funcall (the function cb) (watcher-socket w) (svref +event-lists+ user))))))))

(defun %timer-event (loop timer)
  (declare (type timer timer))
  (unless (timer-repeat timer)
    ;; A one-shot timer is done: free it first, so that its function may
    ;; add another.
    (%free-timer loop timer))
  (let ((f (timer-function timer)))
    (if f
        (progn (setf (event-loop-current loop) timer)
               (funcall (the function f)))
        (push (cons timer :timer) (event-loop-ready loop)))))

(declaim (inline %dispatch-one))
(defun %dispatch-one (loop id mask)
  (declare (optimize speed (safety 0)) (fixnum id mask))
  (if (< id 0)
      (%run-calls loop)
      (let ((object (svref (event-loop-objects loop) id)))
        (when object
          (cond ((eq object :closing)   ; a watcher removed after its socket closed
                 (when (%bits-p mask +ev-closed+)
                   (%free-id loop id)))
                ((%bits-p mask +ev-timer+) (%timer-event loop object))
                ((%bits-p mask +ev-lookup+) (%lookup-event loop object))
                ((%bits-p mask +ev-signal+) (%signal-event loop object))
                (t (%watcher-event loop object mask)))))))

(declaim (inline %dispatch))
(defun %dispatch (loop)
  "Dispatch the rest of the current batch.  The events are dispatched in a
CATCH that the restarts of failed callbacks throw to (%TAKE-RESTART), made
once per batch and again after each throw; an event whose callback unwinds past
RUN-EVENT-LOOP leaves the rest of the batch to the next pass."
  (declare (optimize speed (safety 0)))
  (let ((events (event-loop-events loop)))
    (declare (type (simple-array fixnum (*)) events))
    (loop
      (when (>= (event-loop-batch-pos loop) (event-loop-batch-end loop))
        (return))
      (catch loop
        (loop
          (let ((i (event-loop-batch-pos loop)))
            (declare (fixnum i))
            (when (>= i (event-loop-batch-end loop))
              (return))
            (setf (event-loop-batch-pos loop) (the fixnum (1+ i)))
            (let ((j (the fixnum (+ i i))))
              (declare (fixnum j))
              (%dispatch-one loop (aref events j) (aref events (the fixnum (1+ j)))))
            (setf (event-loop-current loop) nil))))
      (setf (event-loop-current loop) nil)))
  (%end-batch loop))

(defun %pass (loop wait-ms)
  "One pass: dispatch what is left of an interrupted batch, or wait up to
WAIT-MS, run libuv once and dispatch every event it recorded.  LOOP's owner
was checked by the caller, once per call of it."
  (declare (optimize speed (safety 0)) (type event-loop loop) (fixnum wait-ms))
  (let ((p (or (event-loop-pointer loop) (%loop-error loop "the event loop is closed"))))
    (if (< (event-loop-batch-pos loop) (event-loop-batch-end loop))
        (%dispatch loop)
        (let* ((events (event-loop-events loop))
               (room (ash (length events) -1))
               (n (net-sys:loop-pass p wait-ms events)))
          (declare (type (simple-array fixnum (*)) events) (fixnum room n))
          ;; A batch that filled EVENTS may have left more.
          (loop while (plusp n)
                do (setf (event-loop-batch-pos loop) 0 (event-loop-batch-end loop) n)
                   (%dispatch loop)
                   (setf n (if (< n room) 0 (net-sys:loop-take p events))))))
    ;; Calls queued before anything woke the loop run too.
    (when (or (event-loop-calls loop) (event-loop-pending-calls loop))
      (%run-calls loop))))

(defmacro %with-dispatch ((loop) &body body)
  "Run BODY (passes of LOOP) with LOOP's restarts of callback errors in
effect: its own, made once (%CALLBACK-RESTARTS), so that a call conses one
cell and dispatch nothing."
  (let ((l (gensym "LOOP")))
    `(let* ((,l ,loop)
            (*dispatching-loop* ,l)
            (si:*restart-clusters* (cons (event-loop-restarts ,l) si:*restart-clusters*)))
       ;; No callback runs yet: a callback left by a non-local exit is not
       ;; one that fails now.
       (setf (event-loop-current ,l) nil)
       ,@body)))

(defun run-event-loop (loop &key (mode :default))
  "Run LOOP, calling the callbacks of its watchers and timers.  MODE
:DEFAULT runs until STOP-EVENT-LOOP is called or nothing is watched; :ONCE
waits for events once and dispatches them; :NOWAIT dispatches what is ready
without waiting.  An error in a callback offers the restarts SKIP-EVENT,
REMOVE-WATCHER and CLOSE-SOCKET; the loop goes on when one is taken, and
stays usable after any non-local exit.  A thread waiting here runs
interrupts (MP:INTERRUPT-PROCESS) at once.  Returns true if something is
still watched."
  (let ((p (%loop-pointer loop)))
    (%with-dispatch (loop)
      (ecase mode
        (:default
         (loop (%pass loop -1)
               (unless (net-sys:loop-go-on p)
                 (return))))
        (:once (%pass loop (if (net-sys:loop-alive p) -1 0)))
        (:nowait (%pass loop 0))))
    (net-sys:loop-alive p)))

(defun %ms-until (deadline)
  (max 0 (ceiling (- deadline (net-sys:now)) 1000000)))

(defun wait-for-events (loop &key timeout)
  "The polling model: wait at most TIMEOUT seconds (NIL: until something
happens) for events of LOOP's watchers without callback and return them as
a fresh list of (SOCKET . EVENTS), EVENTS a list of keywords as for
callbacks, oldest first.  Timers without function appear as (TIMER .
:TIMER), finished lookups without callback as (LOOKUP . :LOOKUP) (see
HOST-LOOKUP-RESULT).  Callbacks of other watchers run meanwhile.  Returns NIL
on timeout, or at once when nothing is watched and TIMEOUT is NIL."
  (%loop-pointer loop)
  (let ((deadline (and timeout (+ (net-sys:now) (%seconds->ns timeout))))
        (p (event-loop-pointer loop)))
    (%with-dispatch (loop)
      (loop
        (%pass loop (cond ((event-loop-ready loop) 0)
                          (deadline (%ms-until deadline))
                          ((net-sys:loop-alive p) -1)
                          (t 0)))
        (when (event-loop-ready loop)
          (return (nreverse (shiftf (event-loop-ready loop) nil))))
        (when (if deadline
                  (>= (net-sys:now) deadline)
                  (not (net-sys:loop-alive p)))
          (return nil))))))

(defun wait-until-ready (sockets &key (events '(:read)) timeout)
  "Wait at most TIMEOUT seconds (NIL: forever) until one of SOCKETS is ready
for one of EVENTS (as for ADD-WATCHER), and return the list of the sockets
ready, in the order given; NIL on timeout.  Needs no event loop: it is one
poll(2) over every socket's descriptor, so any number of sockets may be
given (no FD_SETSIZE limit).  A socket closed before or during the wait is
never ready.  Interrupts run while it waits."
  (let* ((mask (%events-mask events))
         (deadline (and (%check-timeout timeout) (%ns-from-now (%seconds->ns timeout))))
         (ready (net-sys:wait-many (mapcar #'socket-handle sockets) mask deadline)))
    (loop for s in sockets
          for i of-type fixnum from 0
          when (and ready (= i (the fixnum (car ready))))
            collect s and do (pop ready))))
