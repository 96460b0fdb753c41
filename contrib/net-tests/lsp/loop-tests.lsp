;;;; loop-tests.lsp -- tests of loop.lsp, loop-queue.lsp and loop-dispatch.lsp: watchers, timers, calls, both models, write queues, the stack inside the loop.

(in-package "NET-TESTS")

(def-suite :loop :in :net)
(in-suite :loop)

(defun run-until (loop predicate &key (seconds 5))
  "Run LOOP one pass at a time until PREDICATE is true or SECONDS pass;
returns PREDICATE's last value."
  (let ((end (+ (get-internal-real-time) (* seconds internal-time-units-per-second))))
    (loop (let ((v (funcall predicate)))
            (when (or v (> (get-internal-real-time) end))
              (return v)))
          (net:run-event-loop loop :mode :once)
          ;; :once returns at once when nothing is watched
          (unless (net:wait-for-events loop :timeout 0.01) nil))))

(test make-and-close-event-loop
  (let ((l (net:make-event-loop)))
    (is (net:event-loop-p l))
    (is (eq t (net:close-event-loop l)))
    (is (null (net:close-event-loop l)))
    (signals net:event-loop-error (net:run-event-loop l))
    (signals net:event-loop-error (net:call-in-loop l (lambda ())))))

(test callback-watcher-reads
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (let* ((buf (make-octets 16)) (got nil) (seen nil)
             (w (net:add-watcher l a '(:read)
                                 (lambda (s events)
                                   (setf seen events)
                                   (push (subseq buf 0 (receive s buf)) got)))))
        (is (eq a (net:watcher-socket w)))
        (is (equal '(:read) (net:watcher-events w)))
        (send b (octets 1 2 3))
        (is (net:run-event-loop l :mode :once))
        (is (equal '(:read) seen))
        (is (equalp (list (octets 1 2 3)) got))
        ;; :nowait with nothing ready calls nothing
        (net:run-event-loop l :mode :nowait)
        (is (= 1 (length got)))))))

(test change-events-without-removing
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (let* ((seen nil)
             (w (net:add-watcher l a '(:read) (lambda (s e) (declare (ignore s)) (push e seen)))))
        (setf (net:watcher-events w) '(:write))
        (is (equal '(:write) (net:watcher-events w)))
        (net:run-event-loop l :mode :once)
        (is (equal '((:write)) seen))
        (setf (net:watcher-events w) nil seen nil)
        (send b (octets 1))
        (net:run-event-loop l :mode :nowait)
        (is (null seen))
        (setf (net:watcher-events w) '(:read :write))
        (net:run-event-loop l :mode :once)
        (is (equal '((:read :write)) seen))
        (signals type-error (setf (net:watcher-events w) '(:bogus)))))))

(test polling-model-wait-for-events
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (net:add-watcher l a '(:read))
      (is (null (net:wait-for-events l :timeout 0.05)))
      (send b (octets 7))
      (let ((ready (net:wait-for-events l :timeout 2)))
        (is (equal (list (cons a '(:read))) ready)))
      (let ((timer (net:add-timer l nil 0.01)))
        (receive a (make-octets 4))
        (is (equal (list (cons timer :timer)) (net:wait-for-events l :timeout 2)))))))

(test both-models-in-one-loop
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (with-socket-pair (c d :blocking nil)
        (let ((called 0))
          (net:add-watcher l a '(:read) (lambda (s e) (declare (ignore e))
                                          (receive s (make-octets 4)) (incf called)))
          (net:add-watcher l c '(:read))
          (send b (octets 1))
          (send d (octets 2))
          (let ((ready (net:wait-for-events l :timeout 2)))
            (is (equal (list (cons c '(:read))) ready))
            (is (= 1 called))))))))

(test remove-watcher-stops-events
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (let* ((n 0) (w (net:add-watcher l a '(:read) (lambda (s e) (declare (ignore s e)) (incf n)))))
        (net:remove-watcher l w)
        (net:remove-watcher l w)              ; idempotent
        (send b (octets 1))
        (is (null (net:run-event-loop l :mode :nowait)))
        (is (zerop n))
        (is (net:socket-open-p a))
        ;; the socket can be watched again
        (net:add-watcher l a '(:read) (lambda (s e) (declare (ignore s e)) (incf n)))
        (net:run-event-loop l :mode :once)
        (is (= 1 n))))))

(test one-watcher-per-socket
  (net:with-event-loop (l)
    (with-socket-pair (a b)
      (net:add-watcher l a '(:read))
      (let ((next (net::%next-id l)))
        (signals net:network-error (net:add-watcher l a '(:write)))
        (multiple-value-bind (closed other) (net:make-socket-pair)
          (close closed)
          (close other)
          (signals net:socket-closed (net:add-watcher l closed '(:read))))
        ;; the failures took no id: the next watcher has the one that was next
        (let ((w (net:add-watcher l b '(:read))))
          (is (= next (net::watcher-id w)))
          (is (eq w (svref (net::event-loop-objects l) next))))))))

(test close-in-callback-stops-watcher-and-frees-fd
  (net:with-event-loop (l)
    (multiple-value-bind (a b) (net:make-socket-pair :blocking nil)
      (unwind-protect
           (let ((calls 0) (fd (net:socket-fd a)))
             (net:add-watcher l a '(:read) (lambda (s e) (declare (ignore e)) (incf calls) (close s)))
             (send b (octets 1 2))
             (net:run-event-loop l :mode :once)
             (is (= 1 calls))
             (is (not (net:socket-open-p a)))
             ;; the descriptor is really closed (its number is free again)
             (is (not (probe-file (format nil "/proc/self/fd/~d" fd))))
             ;; nothing is watched any more: :default returns
             (is (null (net:run-event-loop l)))
             (is (= 1 calls)))
        (close a) (close b)))))

(test close-elsewhere-means-no-callback
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (with-socket-pair (c d :blocking nil)
        (let ((calls nil))
          ;; a's callback closes c: c's event in the same batch is not delivered
          (net:add-watcher l a '(:read) (lambda (s e) (declare (ignore s e)) (push :a calls) (close c)))
          (net:add-watcher l c '(:read) (lambda (s e) (declare (ignore s e)) (push :c calls)))
          (send b (octets 1))
          (send d (octets 1))
          (sleep 0.05)
          (net:run-event-loop l :mode :once)
          (is (member :a calls))
          (is (or (null (member :c calls))
                  ;; c came first in the batch: then it was open
                  (eq :a (first calls)))))))))

(test close-from-other-thread-removes-watcher
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (let ((calls 0))
        (net:add-watcher l a '(:read) (lambda (s e) (declare (ignore s e)) (incf calls)))
        (funcall (run-thread "closer" (lambda () (close a))))
        ;; the close shut the socket down, which wakes the watcher; it is
        ;; removed without a callback and the loop runs out of work
        (is (null (net:run-event-loop l)))
        (is (zerop calls))))))

(test timers-once-and-repeating
  (net:with-event-loop (l)
    (let* ((once 0) (rep 0) timer)
      (net:add-timer l (lambda () (incf once)) 0.01)
      (setf timer (net:add-timer l (lambda () (when (= (incf rep) 3) (net:remove-timer l timer)))
                                 0.005 :repeat 0.005))
      (is (null (net:run-event-loop l)))          ; runs until nothing is left
      (is (= 1 once))
      (is (= 3 rep)))))

(test more-events-in-one-pass-than-a-batch-holds
  ;; 3,000 timers due at once: one pass of libuv records them all, more
  ;; than the loop's event vector holds; every one is dispatched, once, in
  ;; that one pass.
  (net:with-event-loop (l)
    (let* ((n 3000)
           (fired (make-array n :element-type 'bit :initial-element 0)))
      (is (< (floor (length (net::event-loop-events l)) 2) n))
      (dotimes (i n)
        (let ((i i))
          (net:add-timer l (lambda () (incf (sbit fired i))) 0.02)))
      (sleep 0.05)
      (net:run-event-loop l :mode :once)
      (is (= n (count 1 fired)))
      (is (null (net:run-event-loop l :mode :nowait))))))

(test call-in-loop-from-threads-runs-each-once-in-order
  (net:with-event-loop (l)
    (let ((got nil)
          (keep (net:add-timer l (lambda ()) 10)))
      (let ((threads (loop for k below 4
                           collect (let ((k k))
                                     (run-thread "caller"
                                                 (lambda ()
                                                   (dotimes (i 50)
                                                     (let ((i i))
                                                       (net:call-in-loop l (lambda () (push (cons k i) got)))))))))))
        (mapc #'funcall threads))
      (run-until l (lambda () (= (length got) 200)))
      (is (= 200 (length got)))
      (is (= 200 (length (remove-duplicates got :test #'equal))))
      ;; in order per thread
      (dotimes (k 4)
        (let ((mine (mapcar #'cdr (remove k (reverse got) :key #'car :test-not #'eql))))
          (is (equal mine (loop for i below 50 collect i)))))
      (net:remove-timer l keep))))

(test stop-from-other-thread
  (net:with-event-loop (l)
    (net:add-timer l (lambda ()) 30)
    (let ((stopper (run-thread "stopper" (lambda () (sleep 0.1) (net:stop-event-loop l) t)))
          (start (get-internal-real-time)))
      (is (eq t (net:run-event-loop l)))           ; returns, the timer still there
      (is (< (- (get-internal-real-time) start) (* 5 internal-time-units-per-second)))
      (is (eq t (funcall stopper))))))

(test stop-from-callback
  (net:with-event-loop (l)
    (let ((n 0))
      (net:add-timer l (lambda () (when (= (incf n) 2) (net:stop-event-loop l))) 0.001 :repeat 0.001)
      (net:run-event-loop l)
      (is (= 2 n)))))

(test other-thread-is-refused
  (net:with-event-loop (l)
    (with-socket-pair (a b)
      (let ((r (funcall (run-thread "intruder" (lambda () (net:add-watcher l a '(:read)))))))
        (is (typep r 'net:event-loop-error)))
      (is (typep (funcall (run-thread "intruder" (lambda () (net:run-event-loop l :mode :nowait))))
                 'net:event-loop-error))
      (let ((w (net:add-watcher l b nil)))
        (is (typep (funcall (run-thread "intruder" (lambda () (net:queue-send w (octets 1)))))
                   'net:event-loop-error)))
      (is (null (funcall (run-thread "caller" (lambda () (net:call-in-loop l (lambda ())))))))
      (is (null (funcall (run-thread "stopper" (lambda () (net:stop-event-loop l)))))))))

(test callback-error-restarts
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (with-socket-pair (c d :blocking nil)
        (let ((calls 0) (other 0))
          (net:add-watcher l a '(:read) (lambda (s e) (declare (ignore s e)) (incf calls) (error "boom")))
          (net:add-watcher l c '(:read) (lambda (s e) (declare (ignore e))
                                          (receive s (make-octets 4)) (incf other)))
          (send b (octets 1))
          (send d (octets 1))
          (sleep 0.05)
          ;; skip-event: the loop goes on with the next event
          (handler-bind ((simple-error (lambda (e) (declare (ignore e)) (invoke-restart 'net:skip-event))))
            (net:run-event-loop l :mode :once))
          (is (= 1 calls))
          (is (= 1 other))
          ;; remove-watcher: no more calls for a
          (handler-bind ((simple-error (lambda (e) (declare (ignore e)) (invoke-restart 'net:remove-watcher))))
            (net:run-event-loop l :mode :once))
          (is (= 2 calls))
          (net:run-event-loop l :mode :nowait)
          (is (= 2 calls))
          (is (net:socket-open-p a))
          ;; close-socket
          (let ((w (net:add-watcher l a '(:read) (lambda (s e) (declare (ignore s e)) (error "again")))))
            (declare (ignore w))
            (handler-bind ((simple-error (lambda (e) (declare (ignore e))
                                           (invoke-restart 'net:close-socket))))
              (net:run-event-loop l :mode :once))
            (is (not (net:socket-open-p a)))))))))

(defun restart-names (&optional condition)
  "The names of the event loop's restarts offered now, innermost first."
  (loop for r in (compute-restarts condition)
        when (member (restart-name r) '(net:skip-event net:remove-watcher net:close-socket))
          collect (restart-name r)))

(test callback-restarts-offered-only-in-a-callback
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (let ((in-callback nil) (in-timer nil) (for-warning :unset) (outside :unset)
            (buf (make-octets 4)))
        (net:add-watcher l a '(:read)
                         (lambda (s e) (declare (ignore e))
                           (receive s buf)
                           (setf in-callback (restart-names))
                           (handler-bind ((warning (lambda (w)
                                                     (setf for-warning (restart-names w))
                                                     (muffle-warning w))))
                             (warn "not an error"))))
        (net:add-timer l (lambda () (setf in-timer (restart-names))) 0.001)
        (send b (octets 1))
        (is (run-until l (lambda () (and in-callback in-timer))))
        ;; the three for a watcher, once each; no CLOSE-SOCKET for a timer
        (is (equal '(net:skip-event net:remove-watcher net:close-socket) in-callback))
        (is (equal '(net:skip-event net:remove-watcher) in-timer))
        (is (null for-warning))
        ;; outside a callback, in the loop's dynamic extent (a write queue's
        ;; ON-DRAIN is called by the loop, not as a callback) and after it
        (let ((w (net:add-watcher l b '() nil
                                  :on-drain (lambda () (setf outside (restart-names))))))
          (net:queue-send w (make-octets (* 4 1024 1024)))
          (is (run-until l (lambda () (progn (loop while (receive a (make-octets 65536)))
                                             (not (eq outside :unset)))))))
        (is (null outside))
        (is (null (restart-names)))))))

(test callback-error-signalled-once-and-nested-loops-offer-the-inner-restarts
  (net:with-event-loop (outer)
    (net:with-event-loop (inner)
      (with-socket-pair (a b :blocking nil)
        (with-socket-pair (c d :blocking nil)
          (let ((handled 0) (offered nil) (inner-calls 0) (outer-calls 0))
            (net:add-watcher inner c '(:read)
                             (lambda (s e) (declare (ignore s e))
                               (incf inner-calls)
                               (error "inner boom")))
            (net:add-watcher outer a '(:read)
                             (lambda (s e) (declare (ignore e))
                               (receive s (make-octets 4))
                               (incf outer-calls)
                               (send d (octets 9))
                               (net:run-event-loop inner :mode :once)
                               (error "outer boom")))
            (send b (octets 1))
            (handler-bind ((simple-error
                             (lambda (e)
                               (incf handled)
                               (push (list (princ-to-string e) (restart-names e)) offered)
                               (invoke-restart 'net:close-socket))))
              (net:run-event-loop outer :mode :once))
            (is (= 1 inner-calls))
            (is (= 1 outer-calls))
            ;; each error reached the handler once, with one set of restarts:
            ;; the inner loop's for its callback, then the outer's
            (is (= 2 handled))
            (is (equal '(("outer boom" (net:skip-event net:remove-watcher net:close-socket))
                         ("inner boom" (net:skip-event net:remove-watcher net:close-socket)))
                       offered))
            (is (not (net:socket-open-p c)))
            (is (not (net:socket-open-p a)))
            ;; both loops still usable
            (is (null (net:run-event-loop inner :mode :nowait)))
            (is (null (net:run-event-loop outer :mode :nowait)))))))))

(test signal-watcher-and-lookup-callbacks-offer-restarts
  (net:with-event-loop (l)
    (let ((got nil) (calls 0))
      (net:lookup-host-async l "127.0.0.1"
                             (lambda (addresses canon error)
                               (declare (ignore addresses canon error))
                               (error "lookup boom")))
      (handler-bind ((simple-error (lambda (e)
                                     (setf got (restart-names e))
                                     (invoke-restart 'net:skip-event))))
        (is (run-until l (lambda () got))))
      (is (equal '(net:skip-event net:remove-watcher) got))
      ;; REMOVE-WATCHER on a signal watcher stops it
      (let ((w (net:add-signal-watcher l :usr2 (lambda (sig) (declare (ignore sig))
                                                 (incf calls)
                                                 (error "signal boom")))))
        (declare (ignore w))
        (handler-bind ((simple-error (lambda (e) (declare (ignore e))
                                       (invoke-restart 'net:remove-watcher))))
          (ext:system (format nil "kill -USR2 ~d" (ext:getpid)))
          (is (run-until l (lambda () (= calls 1))))
          (is (null (net:run-event-loop l :mode :nowait))))))))

(test non-local-exit-leaves-loop-usable
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (let ((n 0))
        (net:add-watcher l a '(:read) (lambda (s e) (declare (ignore e))
                                        (receive s (make-octets 4))
                                        (when (= (incf n) 1) (throw 'out :thrown))))
        (send b (octets 1))
        (is (eq :thrown (catch 'out (net:run-event-loop l))))
        (send b (octets 2))
        (net:run-event-loop l :mode :once)
        (is (= 2 n))))))

(test interrupt-reaches-thread-waiting-in-loop
  (let* ((interrupted 0)
         (runner (run-thread "looper"
                             (lambda ()
                               (net:with-event-loop (l)
                                 (with-socket-pair (a b)
                                   (net:add-watcher l a '(:read) (lambda (s e) (declare (ignore s e))))
                                   ;; Should the wake-up fail, the interrupts run
                                   ;; late (a failure, not a hang).
                                   (net:add-timer l (lambda ()) 0.5 :repeat 0.5)
                                   (catch 'out (net:run-event-loop l))
                                   :unwound))))))
    (sleep 0.2)
    (let ((thread (find "looper" (mp:all-processes) :key #'mp:process-name :test #'string=))
          (start (get-internal-real-time)))
      (dotimes (i 5)
        (mp:interrupt-process thread (lambda () (incf interrupted)))
        (sleep 0.02))
      (is (= 5 interrupted))
      (mp:interrupt-process thread (lambda () (throw 'out nil)))
      (is (eq :unwound (funcall runner)))
      (is (< (- (get-internal-real-time) start) (* 2 internal-time-units-per-second))))))

(test interrupts-reach-each-of-two-threads-waiting-in-their-loops
  ;; Each thread waits in its own loop's epoll_wait; an interrupt sent to
  ;; one wakes that thread's loop, not the other's, and runs there.
  (let* ((ran (list :a 0 :b 0))
         (lock (mp:make-lock :name "ran"))
         (joins (loop for name in '("looper-a" "looper-b")
                      collect (run-thread name
                                          (lambda ()
                                            (net:with-event-loop (l)
                                              (with-socket-pair (a b)
                                                (net:add-watcher l a '(:read) (lambda (s e) (declare (ignore s e))))
                                                ;; Should the wake-up fail, the interrupts run
                                                ;; late (a failure, not a hang).
                                                (net:add-timer l (lambda ()) 0.5 :repeat 0.5)
                                                (catch 'out (net:run-event-loop l))
                                                :unwound)))))))
    (sleep 0.2)
    (flet ((thread (name) (find name (mp:all-processes) :key #'mp:process-name :test #'string=))
           (bump (key) (lambda () (mp:with-lock (lock) (incf (getf ran key))))))
      (let ((ta (thread "looper-a")) (tb (thread "looper-b")))
        (dotimes (i 3)
          (mp:interrupt-process ta (bump :a))
          (sleep 0.05))
        (is (= 3 (getf ran :a)))
        (is (= 0 (getf ran :b)))
        (mp:interrupt-process tb (bump :b))
        (sleep 0.1)
        (is (= 1 (getf ran :b)))
        (is (= 3 (getf ran :a)))
        (mp:interrupt-process ta (lambda () (throw 'out nil)))
        (mp:interrupt-process tb (lambda () (throw 'out nil)))
        (is (equal '(:unwound :unwound) (mapcar #'funcall joins)))))))

(test wait-until-ready-needs-no-loop
  (with-socket-pair (a b)
    (with-socket-pair (c d)
      (is (null (net:wait-until-ready (list a c) :timeout 0.05)))
      (send d (octets 1))
      (is (equal (list c) (net:wait-until-ready (list a c) :timeout 2)))
      (is (equal (list a c) (net:wait-until-ready (list a c) :events '(:write) :timeout 2))))))

(test wait-until-ready-takes-many-sockets-and-disconnect
  ;; More sockets than one poll set on the stack, numbered past select()'s
  ;; limit when the descriptor limit allows it.
  (let ((pairs (loop repeat 100 collect (multiple-value-list (net:make-socket-pair)))))
    (unwind-protect
         (let ((ends (mapcar #'first pairs))
               (last (car (last pairs))))
           (is (null (net:wait-until-ready ends :timeout 0.05)))
           (send (second last) (octets 7))
           (is (equal (list (first last)) (net:wait-until-ready ends :timeout 2)))
           (is (null (net:wait-until-ready (butlast ends) :events '(:disconnect) :timeout 0.05)))
           (net:shutdown (second (first pairs)) :output)
           (is (equal (list (first (first pairs)))
                      (net:wait-until-ready (butlast ends) :events '(:disconnect) :timeout 2))))
      (loop for (a b) in pairs do (close a) (close b))))
  (with-socket-pair (a b)
    (close a)
    (is (null (net:wait-until-ready (list a) :timeout 0.05)))
    (signals type-error (net:wait-until-ready (list a 42) :timeout 0.05))))

(test detaching-a-watched-socket-removes-its-watcher
  (with-socket-pair (a b)
    (net:with-event-loop (l)
      (let ((calls 0) fd)
        (net:add-watcher l a '(:read) (lambda (s e) (declare (ignore s e)) (incf calls)))
        (setf fd (net:socket-detach a))
        ;; At once nothing is watched: no libuv handle stays on a descriptor
        ;; that is no longer the socket's.
        (is (null (net:run-event-loop l :mode :nowait)))
        (send b (octets 1))
        (net:run-event-loop l :mode :nowait)
        (sleep 0.05)
        (net:run-event-loop l :mode :nowait)
        (is (= 0 calls))
        ;; The descriptor stayed open, now ours: a new socket object adopts it.
        (let ((again (net:make-socket-from-fd fd)))
          (unwind-protect
               (is (eql 1 (receive again (make-octets 4) :timeout 2)))
            (close again)))))))

;;; The rest of the stack inside the loop

(test nonblocking-connect-completes-as-write
  (net:with-event-loop (l)
    (let ((listener (loopback-listener :ipv4))
          (c (make-socket :blocking nil))
          (result nil))
      (unwind-protect
           (progn
             (connect c "127.0.0.1" :port (net:socket-local-port listener))
             (net:add-watcher l c '(:write) (lambda (s e)
                                              (declare (ignore e))
                                              (setf result (net:finish-connect s))
                                              (setf (net:watcher-events
                                                     (find-watcher l s)) nil)))
             (run-until l (lambda () result))
             (is (eq c result)))
        (close c) (close listener)))))

(defun find-watcher (loop socket)
  (find-if (lambda (x) (and (typep x 'net:watcher) (eq socket (net:watcher-socket x))))
           (net::event-loop-objects loop)))

(test nonblocking-connect-error-at-write-readiness
  (net:with-event-loop (l)
    (let* ((listener (loopback-listener :ipv4))
           (port (net:socket-local-port listener))
           (c (make-socket :blocking nil))
           (result nil))
      (close listener)
      (unwind-protect
           (progn
             (connect c "127.0.0.1" :port port)
             (net:add-watcher l c '(:write)
                              (lambda (s e) (declare (ignore e))
                                (setf result (handler-case (net:finish-connect s)
                                               (net:connection-refused (x) x)))
                                (close s)))
             (run-until l (lambda () result))
             (is (typep result 'net:connection-refused)))
        (close c)))))

(test accept-drains-backlog-per-readiness
  (net:with-event-loop (l)
    (let* ((listener (listen-on (bind-address (make-socket :blocking nil) "127.0.0.1") :backlog 64))
           (clients (loop repeat 10 collect (make-socket)))
           (accepted nil) (events 0))
      (unwind-protect
           (progn
             (dolist (c clients)
               (connect c "127.0.0.1" :port (net:socket-local-port listener) :timeout 5))
             (sleep 0.05)
             (net:add-watcher l listener '(:read)
                              (lambda (s e) (declare (ignore e))
                                (incf events)
                                (loop for a = (accept-connection s)
                                      while a do (push a accepted))))
             (run-until l (lambda () (= 10 (length accepted))))
             (is (= 10 (length accepted)))
             (is (= 1 events)))
        (mapc #'close clients) (mapc #'close accepted) (close listener)))))

(test udp-inside-loop
  (net:with-event-loop (l)
    (let ((a (bind-address (make-socket :type :datagram :blocking nil) "127.0.0.1"))
          (b (bind-address (make-socket :type :datagram :blocking nil) "127.0.0.1"))
          (got nil))
      (unwind-protect
           (progn
             (net:add-watcher l b '(:read)
                              (lambda (s e) (declare (ignore e))
                                (let ((buf (make-octets 64)))
                                  (loop for (n addr port) = (multiple-value-list (net:receive-from s buf))
                                        while n
                                        do (push (list (subseq buf 0 n) port) got)))))
             (dotimes (i 3)
               (net:send-to a (octets i i) "127.0.0.1" :port (net:socket-local-port b)))
             (run-until l (lambda () (= 3 (length got))))
             (is (equalp (loop for i below 3 collect (list (octets i i) (net:socket-local-port a)))
                         (reverse got))))
        (close a) (close b)))))

(test out-of-band-is-urgent
  (net:with-event-loop (l)
    (with-tcp-pair (c s :timeout 5)
      (setf (net:socket-blocking-p s) nil)
      (let ((urgent nil))
        (net:add-watcher l s '(:urgent)
                         (lambda (sock e)
                           (let ((buf (make-octets 1)))
                             (when (receive sock buf :out-of-band t)
                               (push (cons e (aref buf 0)) urgent)))))
        (send c (octets 1 2 3))
        (send c (octets 99) :out-of-band t)
        (run-until l (lambda () urgent))
        (is (equal '(((:urgent) . 99)) urgent))))))

(test disconnect-event-on-peer-shutdown
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (let ((seen nil))
        (net:add-watcher l a '(:disconnect) (lambda (s e) (declare (ignore s)) (setf seen e)))
        (shutdown b :output)
        (run-until l (lambda () seen))
        (is (equal '(:disconnect) seen))))))

(test messages-with-descriptors-inside-loop
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (with-socket-pair (x y)
        (let ((got nil))
          (net:add-watcher l b '(:read)
                           (lambda (s e) (declare (ignore e))
                             (let ((buf (make-octets 8)))
                               (multiple-value-bind (n addr port ancillary)
                                   (net:receive-message s (list buf))
                                 (declare (ignore addr port))
                                 (setf got (list n ancillary))))))
          (net:send-message a (list (octets 5 6)) :ancillary `((:file-descriptors ,(net:socket-fd x))))
          (run-until l (lambda () got))
          (is (= 2 (first got)))
          (let ((fds (rest (assoc :file-descriptors (second got)))))
            (is (= 1 (length fds)))
            (let ((passed (net:make-socket-from-fd (first fds))))
              (send y (octets 42))
              (is (equalp (octets 42) (net:receive-octets passed :size 4)))
              (close passed))))))))

(test stream-read-available-inside-loop
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (let ((text (make-string 32)) (octs (make-octets 32)) (lines nil))
        (net:add-watcher l a '(:read)
                         (lambda (s e) (declare (ignore e))
                           (let ((end (net:read-available s text)))
                             (when (> end 0)
                               (push (subseq text 0 end) lines)))))
        (write-string "héllo" b)
        (finish-output b)
        (run-until l (lambda () lines))
        (is (equal '("héllo") lines))
        ;; octets then, on the same stream
        (setf (net:watcher-events (find-watcher l a)) nil)
        (write-sequence (octets 1 2 3) b)
        (finish-output b)
        (is (net:wait-until-ready (list a) :timeout 2))
        (is (= 3 (net:read-available a octs)))
        (is (equalp (octets 1 2 3) (subseq octs 0 3)))
        ;; nothing more now: read-available returns at once
        (is (= 0 (net:read-available a octs)))))))

(test lookup-host-async-callback-and-polling
  (net:with-event-loop (l)
    (let ((result nil))
      (net:lookup-host-async l "localhost" (lambda (addresses canon error)
                                             (setf result (list addresses canon error)))
                             :address-family :ipv4)
      (run-until l (lambda () result))
      (is (net:address-loopback-p (first (first result))))
      (is (stringp (second result)))
      (is (null (third result))))
    (let ((q (net:lookup-host-async l "127.0.0.1" nil)))
      (let ((ready (net:wait-for-events l :timeout 5)))
        (is (equal (list (cons q :lookup)) ready))
        (is (net:address= "127.0.0.1" (first (net:host-lookup-result q))))))
    (signals net:invalid-address (net:lookup-host-async l "bad name" nil))
    (let ((q (net:lookup-host-async l "no-such-host.invalid" nil)))
      (net:wait-for-events l :timeout 10)
      (signals net:resolver-error (net:host-lookup-result q)))))

;;; Write queues

(defun drain-into (socket buffer)
  "Read everything SOCKET (non-blocking) has now into BUFFER via an adjustable collector."
  (let ((chunk (make-octets 65536)))
    (loop for n = (receive socket chunk)
          while (and n (plusp n))
          do (loop for i below n do (vector-push-extend (aref chunk i) buffer)))))

(test queue-send-keeps-order-with-backpressure-and-drain
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (setf (net:socket-option a :send-buffer) 4096)
      (let* ((data (random-octets 300000))
             (drained 0)
             (w (net:add-watcher l a nil nil :high-water-mark 100000
                                 :on-drain (lambda () (incf drained))))
             (got (make-array 0 :element-type '(unsigned-byte 8) :adjustable t :fill-pointer 0))
             (results (loop for start from 0 below 300000 by 50000
                            collect (net:queue-send w data :start start :end (+ start 50000)))))
        ;; past the high-water mark the sender is told
        (is (member nil results))
        (is (plusp (net:watcher-queued-octets w)))
        (net:add-watcher l b '(:read) (lambda (s e) (declare (ignore e)) (drain-into s got)))
        (run-until l (lambda () (= (length got) 300000)))
        (is (= 300000 (length got)))
        (is (equalp data got))
        (is (zerop (net:watcher-queued-octets w)))
        (is (= 1 drained))))))

(test queue-send-zero-copy-on-free
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (setf (net:socket-option a :send-buffer) 4096)
      (let* ((big (random-octets 200000)) (small (octets 1 2 3)) (freed nil)
             (w (net:add-watcher l a nil))
             (got (make-array 0 :element-type '(unsigned-byte 8) :adjustable t :fill-pointer 0)))
        (net:queue-send w small :copy nil :on-free (lambda (buf) (push buf freed)))
        (is (equal (list small) freed))             ; all went at once: free at once
        (net:queue-send w big :copy nil :on-free (lambda (buf) (push buf freed)))
        (is (= 1 (length freed)))                   ; still being sent
        (net:add-watcher l b '(:read) (lambda (s e) (declare (ignore e)) (drain-into s got)))
        (run-until l (lambda () (= 2 (length freed))))
        (is (eq big (first freed)))
        (run-until l (lambda () (= (length got) 200003)))
        (is (equalp big (subseq got 3)))))))

(test remove-watcher-gives-back-queued-buffers
  ;; Removing a watcher whose queue holds a handed-over buffer calls its
  ;; ON-FREE; one that never queued anything is removed as well.
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (setf (net:socket-option a :send-buffer) 4096)
      (let* ((big (random-octets 200000)) (freed nil)
             (w (net:add-watcher l a nil)))
        (net:queue-send w big :copy nil :on-free (lambda (buf) (push buf freed)))
        (is (plusp (net:watcher-queued-octets w)))
        (is (null freed))
        (net:remove-watcher l w)
        (is (equal (list big) freed))
        (is (zerop (net:watcher-queued-octets w)))
        (let ((w2 (net:add-watcher l a '(:read))))
          (net:remove-watcher l w2)
          (is (zerop (net:watcher-queued-octets w2)))))
      (signals type-error (net:remove-watcher l b)))))

(test queued-write-error-reaches-owner-once
  (net:with-event-loop (l)
    (with-tcp-pair (c s :timeout 5)
      (setf (net:socket-blocking-p c) nil
            (net:socket-option c :send-buffer) 4096)
      (let* ((errors nil)
             (w (net:add-watcher l c nil nil :on-error (lambda (e) (push e errors)))))
        (net:queue-send w (random-octets 2000000))
        (is (plusp (net:watcher-queued-octets w)))
        (close s :abort t)
        (run-until l (lambda () errors))
        (net:run-event-loop l :mode :nowait)
        (is (= 1 (length errors)))
        (is (typep (first errors) 'net:socket-error))
        (is (zerop (net:watcher-queued-octets w)))))))

(test close-after-drain-sends-everything-first
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (setf (net:socket-option a :send-buffer) 4096)
      (let* ((data (random-octets 100000))
             (w (net:add-watcher l a nil))
             (got (make-array 0 :element-type '(unsigned-byte 8) :adjustable t :fill-pointer 0))
             (eof nil))
        (net:queue-send w data)
        (net:close-after-drain w)
        (is (net:socket-open-p a))
        (net:add-watcher l b '(:read) (lambda (s e) (declare (ignore e))
                                        (let ((chunk (make-octets 65536)))
                                          (loop for n = (receive s chunk)
                                                while n
                                                do (if (zerop n)
                                                       (return (setf eof t))
                                                       (loop for i below n do (vector-push-extend (aref chunk i) got)))))))
        (run-until l (lambda () eof))
        (is (equalp data got))
        (is (not (net:socket-open-p a)))))))

(test shutdown-after-drain-half-closes
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (setf (net:socket-option a :send-buffer) 4096)
      (let* ((data (random-octets 50000))
             (w (net:add-watcher l a nil))
             (got (make-array 0 :element-type '(unsigned-byte 8) :adjustable t :fill-pointer 0))
             (eof nil))
        (net:queue-send w data)
        (net:shutdown-after-drain w)
        (net:add-watcher l b '(:read) (lambda (s e) (declare (ignore e))
                                        (let ((chunk (make-octets 65536)))
                                          (loop for n = (receive s chunk)
                                                while n
                                                do (if (zerop n)
                                                       (return (setf eof t))
                                                       (loop for i below n do (vector-push-extend (aref chunk i) got)))))))
        (run-until l (lambda () eof))
        (is (equalp data got))
        ;; half close: a can still read what b sends
        (send b (octets 9))
        (is (net:wait-until-ready (list a) :timeout 2))
        (is (equalp (octets 9) (net:receive-octets a :size 4)))))))

(defparameter *ping-pong*
  '(lambda (loop a b rounds)
    (let ((buf (make-array 16 :element-type '(unsigned-byte 8))) (n 0))
      (net:add-watcher loop a '(:read) (lambda (s e) (declare (ignore e))
                                         (net:receive s buf)
                                         (net:send s buf :end 1)))
      (net:add-watcher loop b '(:read) (lambda (s e) (declare (ignore e))
                                         (net:receive s buf)
                                         (if (>= (incf n) rounds)
                                             (net:stop-event-loop loop)
                                             (net:send s buf :end 1))))
      (net:send b buf :end 1)
      ;; Bounded: a lost event ends the run here, and the count tells.
      (net:add-timer loop (lambda () (net:stop-event-loop loop)) 30)
      (net:run-event-loop loop)
      n))
  "ROUNDS round trips of one octet between A and B, both watched in LOOP,
in one RUN-EVENT-LOOP, the whole per-event path: dispatch, callback,
receive and send.  Compiled by the test: interpreted callbacks would cons.")

(test dispatch-conses-nothing-per-event
  (let ((ping-pong (let ((*error-output* (make-broadcast-stream))
                         (*standard-output* (make-broadcast-stream)))
                     (compile nil *ping-pong*))))
    (flet ((consed (rounds)
             (net:with-event-loop (l)
               (with-socket-pair (a b :blocking nil)
                 (let ((before (si::gc-stats t)))
                   (is (= rounds (funcall ping-pong l a b rounds)))
                   (- (si::gc-stats t) before))))))
      (consed 10)                                 ; warm up
      ;; 4000 events more cons less than a byte each: nothing per event
      ;; (consing anything per event would be at least a cons, 16 bytes, each)
      (let ((small (consed 100)) (large (consed 2100)))
        (is (< (- large small) 4000) "~d bytes for 200 events, ~d for 4200" small large)))))

(defparameter *ping-pong-many*
  '(lambda (loop pairs rounds)
    (let ((buf (make-array 16 :element-type '(unsigned-byte 8))) (done 0) (total 0))
      (loop for (a . b) in pairs
            do (let ((n 0))
                 (net:add-watcher loop a '(:read) (lambda (s e) (declare (ignore e))
                                                    (net:receive s buf)
                                                    (net:send s buf :end 1)))
                 (net:add-watcher loop b '(:read)
                                  (lambda (s e) (declare (ignore e))
                                    (net:receive s buf)
                                    (incf total)
                                    (if (>= (incf n) rounds)
                                        (when (= (incf done) (length pairs))
                                          (net:stop-event-loop loop))
                                        (net:send s buf :end 1))))
                 (net:send b buf :end 1)))
      ;; Bounded: a lost event ends the run here, and the count tells.
      (net:add-timer loop (lambda () (net:stop-event-loop loop)) 30)
      ;; The set-up above conses (watchers, closures, the timer); the run
      ;; must not.
      (let ((before (si::gc-stats t)))
        (net:run-event-loop loop)
        (values total (- (si::gc-stats t) before)))))
  "ROUNDS round trips on each of PAIRS at once, in one RUN-EVENT-LOOP:
passes then carry batches of events.  Returns the round trips and the
bytes consed while running.")

(test dispatch-of-batches-conses-nothing-per-event
  (let ((ping-pong (let ((*error-output* (make-broadcast-stream))
                         (*standard-output* (make-broadcast-stream)))
                     (compile nil *ping-pong-many*))))
    (flet ((consed (rounds)
             (net:with-event-loop (l)
               (let ((pairs (loop repeat 20
                                  collect (multiple-value-bind (a b)
                                              (net:make-socket-pair :blocking nil)
                                            (cons a b)))))
                 (unwind-protect
                      (multiple-value-bind (total bytes) (funcall ping-pong l pairs rounds)
                        (is (= (* 20 rounds) total))
                        bytes)
                   (loop for (a . b) in pairs do (close a) (close b)))))))
      (consed 10)                                 ; warm up
      ;; 20 pairs, 200 more round trips each: 8,000 events more, batched
      ;; by the passes, cons less than half a byte each
      (let ((small (consed 10)) (large (consed 210)))
        (is (< (- large small) 4000) "~d bytes for 400 events, ~d for 8400" small large)))))

(test signal-watchers
  (net:with-event-loop (l)
    (let* ((got nil)
           (w (net:add-signal-watcher l :usr1 (lambda (sig) (push sig got)))))
      (ext:system (format nil "kill -USR1 ~d" (ext:getpid)))
      (run-until l (lambda () got))
      (is (equal '(:usr1) got))
      (net:remove-signal-watcher l w))
    ;; ECL's own signals are refused: libuv would take them over
    (signals net:event-loop-error (net:add-signal-watcher l 2 (lambda (s) s)))
    (let ((w (net:add-signal-watcher l :usr2 nil)))
      (ext:system (format nil "kill -USR2 ~d" (ext:getpid)))
      (is (equal (list (cons w :signal)) (net:wait-for-events l :timeout 5))))))

(test close-then-remove-then-reuse-keeps-new-watcher
  ;; Closing a watched socket queues a closed event under its watcher's id;
  ;; a new watcher made before that event is dispatched must not get it.
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (with-socket-pair (c d :blocking nil)
        (let* ((w (net:add-watcher l a '(:read)))
               (calls 0))
          (close a)
          (net:remove-watcher l w)
          (net:add-watcher l c '(:read) (lambda (s e) (declare (ignore e))
                                          (receive s (make-octets 4)) (incf calls)))
          (net:run-event-loop l :mode :nowait)
          (send d (octets 1))
          (net:run-event-loop l :mode :once)
          (is (= 1 calls)))))))

(test default-run-returns-when-a-busy-pass-closes-the-last-watchers
  ;; Two sockets closed in one pass: the pass after it must not wait
  ;; forever on a loop with nothing left to watch.
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (with-socket-pair (c d :blocking nil)
        (flet ((closer (s e) (declare (ignore e)) (close s)))
          (net:add-watcher l a '(:read) #'closer)
          (net:add-watcher l c '(:read) #'closer))
        (send b (octets 1))
        (send d (octets 1))
        (sleep 0.05)
        (let* ((guard (run-thread "guard" (lambda () (sleep 3) (net:stop-event-loop l))))
               (start (get-internal-real-time)))
          (net:run-event-loop l)
          (is (< (- (get-internal-real-time) start) (* 2 internal-time-units-per-second)))
          (funcall guard))))))

(defun utf-8-octets (string)
  "STRING in UTF-8 (characters below U+0800 only, enough here)."
  (let ((out (make-array 0 :element-type '(unsigned-byte 8) :adjustable t :fill-pointer 0)))
    (loop for c across string
          for code = (char-code c)
          do (if (< code #x80)
                 (vector-push-extend code out)
                 (progn (vector-push-extend (logior #xc0 (ash code -6)) out)
                        (vector-push-extend (logior #x80 (logand code #x3f)) out))))
    out))

(test stream-text-is-queued-like-any-send
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (setf (net:socket-option a :send-buffer) 4096)
      (let* ((w (net:add-watcher l a nil))
             (lines (loop for i below 2000 collect (format nil "line ~d: héllo" i)))
             (got (make-array 0 :element-type '(unsigned-byte 8) :adjustable t :fill-pointer 0)))
        ;; more than the socket takes; each batch is below the stream's buffer
        (loop for (x y) on lines by #'cddr
              do (write-line x a) (write-line y a) (net:queue-stream-output w))
        (net:queue-send w (octets 10))          ; octets after the text, in order
        (is (plusp (net:watcher-queued-octets w)))
        (net:add-watcher l b '(:read) (lambda (s e) (declare (ignore e)) (drain-into s got)))
        (let ((expected (utf-8-octets (format nil "~{~a~%~}~c" lines (code-char 10)))))
          (run-until l (lambda () (= (length got) (length expected))))
          (is (equalp expected got)))))))

;;; A loop dropped without CLOSE-EVENT-LOOP

(defun drop-loops (n)
  "Make N loops with a timer and a watcher on a socket closed since, and
drop them unclosed."
  (dotimes (i n)
    (let ((loop (net:make-event-loop)))
      (net:add-timer loop (lambda ()) 3600)
      (multiple-value-bind (a b) (net:make-socket-pair)
        (net:add-watcher loop a '(:read) (lambda (s e) (declare (ignore s e))))
        (close a)
        (close b)))))

(defun drop-loop-watching (socket)
  "Make a loop watching SOCKET, open, and drop it unclosed."
  (net:add-watcher (net:make-event-loop) socket '(:read) (lambda (s e) (declare (ignore s e))))
  nil)

(test garbage-loops-are-freed-by-their-finalizer
  "Made in a thread that then exits, so that no stale reference stays on a
stack the conservative collector scans."
  (let ((before (car (net-sys:loops-finalized))))
    (funcall (run-thread "loop litter" (lambda () (drop-loops 5))))
    (loop repeat 20
          until (>= (car (net-sys:loops-finalized)) (+ before 5))
          do (si:gc t) (sleep 0.05))
    (is (<= (+ before 5) (car (net-sys:loops-finalized))))))

(test garbage-loop-watching-an-open-socket-lets-it-go
  "The loop is freed; the socket it watched stays open and usable, and its
close closes the descriptor (the suite checks that none leaks)."
  (multiple-value-bind (a b) (net:make-socket-pair)
    (unwind-protect
         (let ((collected (car (net-sys:loops-finalized))))
           (funcall (run-thread "loop litter" (lambda () (drop-loop-watching a))))
           (loop repeat 20
                 until (> (car (net-sys:loops-finalized)) collected)
                 do (si:gc t) (sleep 0.05))
           (is (< collected (car (net-sys:loops-finalized))))
           (send b (octets 1 2 3))
           (let ((v (make-octets 3)))
             (is (= 3 (receive a v :wait-all t)))
             (is (equalp (octets 1 2 3) v))))
      (close a)
      (close b))))
(test queue-send-refuses-past-max-queued
  ;; A peer that never reads: the producer ignores backpressure and meets
  ;; the hard maximum; the queue stays bounded, another connection of the
  ;; same loop is served.
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (with-socket-pair (c d :blocking nil)
        (setf (net:socket-option a :send-buffer) 4096)
        (let* ((chunk (make-octets 65536 7))
               (w (net:add-watcher l a nil nil :high-water-mark 65536 :max-queued 1000000))
               (condition nil)
               (sent 0))
          (loop repeat 1000
                do (handler-case (progn (net:queue-send w chunk) (incf sent))
                     (net:limit-exceeded (e) (setf condition e) (return))))
          (is (typep condition 'net:limit-exceeded))
          (when condition
            (is (eq :write-queue (net:limit-exceeded-limit condition)))
            (is (= 1000000 (net:limit-exceeded-maximum condition)))
            (is (eq a (net:limit-exceeded-socket condition))))
          (is (<= (net:watcher-queued-octets w) 1000000) "the queue stays bounded")
          (is (< sent 1000) "the producer was stopped")
          ;; Nothing of the refused call was queued: still refused, same count.
          (let ((before (net:watcher-queued-octets w)))
            (signals net:limit-exceeded (net:queue-send w chunk))
            (is (= before (net:watcher-queued-octets w))))
          ;; The loop still serves another connection.
          (let ((got (make-array 0 :element-type '(unsigned-byte 8) :adjustable t :fill-pointer 0))
                (wc (net:add-watcher l c nil)))
            (net:add-watcher l d '(:read) (lambda (s e) (declare (ignore e)) (drain-into s got)))
            (net:queue-send wc (octets 1 2 3))
            (run-until l (lambda () (= (length got) 3)))
            (is (equalp (octets 1 2 3) got))))))))

(test queued-buffers-survive-garbage-collection
  ;; L08: 2,000 freshly consed vectors handed over to the write queue
  ;; (no other reference to them), full collections while they wait: the
  ;; peer receives every octet, in order.
  (net:with-event-loop (l)
    (with-socket-pair (a b :blocking nil)
      (setf (net:socket-option a :send-buffer) 4096)
      (let* ((w (net:add-watcher l a nil nil :high-water-mark 0))
             (expected (make-array 0 :element-type '(unsigned-byte 8) :adjustable t :fill-pointer 0))
             (got (make-array 0 :element-type '(unsigned-byte 8) :adjustable t :fill-pointer 0))
             (state (make-random-state t)))
        (dotimes (i 2000)
          (let ((v (random-octets (1+ (random 200 state)) state)))
            (loop for o across v do (vector-push-extend o expected))
            (net:queue-send w v :copy nil))
          (when (zerop (mod i 500)) (si:gc t)))
        (si:gc t)
        (net:add-watcher l b '(:read) (lambda (s e) (declare (ignore e)) (drain-into s got)))
        (run-until l (lambda () (when (zerop (random 50 state)) (si:gc t))
                       (= (length got) (length expected)))
                   :seconds 20)
        (is (= (length expected) (length got)))
        (is (equalp expected got))))))
;;; The loop's dispatch under random event orders.  Batches of events are
;;; made as libuv could record them -- any order, repeats, every kind of
;;; object live when the batch starts -- and given to the dispatcher, mixed
;;; with real passes, while the callbacks add, remove and close watchers,
;;; sockets and timers, change events and fail with each restart.  The
;;; model says what is live: an event reaches only the object it was
;;; recorded for, only while it is live, only with events it asks for, and
;;; the loop's id table agrees with the model after every batch.
;;; make check runs a bounded number of rounds from a fixed seed; make fuzz
;;; runs it for a time (fuzz/lisp-fuzz.lsp).

(defstruct (fz (:constructor make-fz (state loop)))
  state loop
  (watchers '())          ; live: (watcher socket peer events)
  (timers '())            ; live: (timer repeat-p)
  (sockets '())           ; every socket made, closed at the end
  (batch nil)             ; the objects of the injected batch, by index
  (current nil)           ; the object whose callback runs
  (failures '()))

(defun fz-fail (fz &rest what)
  (push what (fz-failures fz)))

(defun fz-pick (fz list)
  (and list (nth (random (length list) (fz-state fz)) list)))

(defun fz-check-current (fz object)
  "During an injected batch, OBJECT must be the one recorded at this index."
  (let ((batch (fz-batch fz)))
    (when batch
      (let ((i (1- (net::event-loop-batch-pos (fz-loop fz)))))
        (unless (eq object (aref batch i))
          (fz-fail fz :wrong-object i))))))

(defun fz-watcher-callback (fz cell)
  (lambda (socket events)
    (let ((w (first cell)))
      (fz-check-current fz w)
      (unless (member cell (fz-watchers fz))
        (fz-fail fz :dead-watcher-called (third cell)))
      (unless (eq socket (second cell))
        (fz-fail fz :wrong-socket))
      (unless (subsetp events (fourth cell))
        (fz-fail fz :events-not-asked events (fourth cell)))
      (when (member :read events)
        (net:receive socket (make-octets 64)))   ; drain, non-blocking
      (setf (fz-current fz) w)
      (fz-act fz))))

(defun fz-timer-function (fz cell)
  (lambda ()
    (fz-check-current fz (first cell))
    (unless (member cell (fz-timers fz))
      (fz-fail fz :dead-timer-called))
    (unless (second cell)               ; a one-shot timer is done
      (setf (fz-timers fz) (remove cell (fz-timers fz))))
    (setf (fz-current fz) (first cell))
    (fz-act fz)))

(defun fz-add-watcher (fz)
  (when (< (length (fz-watchers fz)) 12)
    (multiple-value-bind (a b) (net:make-socket-pair :blocking nil)
      (push a (fz-sockets fz))
      (push b (fz-sockets fz))
      (let* ((events (fz-pick fz '((:read) (:write) (:read :write) (:read :disconnect) ())))
             (cell (list nil a b events)))
        (setf (first cell) (net:add-watcher (fz-loop fz) a events (fz-watcher-callback fz cell)))
        (push cell (fz-watchers fz))
        (when (zerop (random 2 (fz-state fz)))
          (send b (octets 1 2 3)))))))

(defun fz-add-timer (fz)
  (when (< (length (fz-timers fz)) 8)
    (let* ((repeat (zerop (random 3 (fz-state fz))))
           (cell (list nil repeat)))
      (setf (first cell) (net:add-timer (fz-loop fz) (fz-timer-function fz cell)
                                        (random 0.002 (fz-state fz))
                                        :repeat (and repeat 0.001)))
      (push cell (fz-timers fz)))))

(defun fz-act (fz)
  "What a callback does: one random action on the loop."
  (let ((state (fz-state fz)) (l (fz-loop fz)))
    (case (random 12 state)
      (0 (let ((cell (fz-pick fz (fz-watchers fz))))
           (when cell
             (setf (fz-watchers fz) (remove cell (fz-watchers fz)))
             (net:remove-watcher l (first cell)))))
      (1 (let ((cell (fz-pick fz (fz-watchers fz))))
           (when cell
             (setf (fz-watchers fz) (remove cell (fz-watchers fz)))
             (close (second cell)))))
      (2 (fz-add-watcher fz))
      (3 (fz-add-timer fz))
      (4 (let ((cell (fz-pick fz (fz-timers fz))))
           (when cell
             (setf (fz-timers fz) (remove cell (fz-timers fz)))
             (net:remove-timer l (first cell)))))
      (5 (let ((cell (fz-pick fz (fz-watchers fz))))
           (when cell
             (let ((events (fz-pick fz '((:read) (:write) (:read :write) ()))))
               (setf (net:watcher-events (first cell)) events
                     (fourth cell) events)))))
      (6 (let ((cell (fz-pick fz (fz-watchers fz))))
           (when cell (send (third cell) (octets 9)))))
      (7 (error "a callback fails"))
      (t nil))))

(defun fz-on-error (fz)
  "Take a random restart of a failed callback, and tell the model."
  (lambda (c)
    (declare (ignore c))
    (let ((object (fz-current fz))
          (choice (random 3 (fz-state fz))))
      (cond ((and (= choice 1) (find-restart 'net:remove-watcher))
             (setf (fz-watchers fz) (remove object (fz-watchers fz) :key #'first)
                   (fz-timers fz) (remove object (fz-timers fz) :key #'first))
             (invoke-restart 'net:remove-watcher))
            ((and (= choice 2) (find-restart 'net:close-socket))
             (setf (fz-watchers fz) (remove object (fz-watchers fz) :key #'first))
             (invoke-restart 'net:close-socket))
            ((find-restart 'net:skip-event) (invoke-restart 'net:skip-event))))))

(defun fz-inject (fz)
  "Dispatch one batch of events made up from the objects live now."
  (let* ((state (fz-state fz)) (l (fz-loop fz))
         (events (net::event-loop-events l))
         (live (append (mapcar (lambda (c) (cons (first c) (fourth c))) (fz-watchers fz))
                       (mapcar (lambda (c) (cons (first c) :timer)) (fz-timers fz))))
         (n (if live (random 40 state) 0))
         (batch (make-array n)))
    (dotimes (i n)
      (destructuring-bind (object . kind) (fz-pick fz live)
        (setf (aref batch i) object
              (aref events (* 2 i)) (if (net::watcher-p object)
                                        (net::watcher-id object)
                                        (net::timer-id object))
              (aref events (1+ (* 2 i)))
              (if (eq kind :timer)
                  net::+ev-timer+
                  (logior (random 16 state) (net::%events-mask kind))))))
    (setf (fz-batch fz) batch
          (net::event-loop-batch-pos l) 0
          (net::event-loop-batch-end l) n)
    (unwind-protect
         (handler-bind ((error (fz-on-error fz)))
           (net::%with-dispatch (l) (net::%dispatch l)))
      (setf (fz-batch fz) nil))))

(defun fz-check-table (fz)
  "The loop's ids agree with the model."
  (let* ((l (fz-loop fz)) (objects (net::event-loop-objects l))
         (free (net::event-loop-free-ids l)))
    (unless (= (length free) (length (remove-duplicates free)))
      (fz-fail fz :duplicate-free-ids))
    (dolist (cell (fz-watchers fz))
      (let ((id (net::watcher-id (first cell))))
        (unless (eq (svref objects id) (first cell)) (fz-fail fz :watcher-not-in-table id))
        (when (member id free) (fz-fail fz :live-watcher-id-free id))))
    (dolist (cell (fz-timers fz))
      (let ((id (net::timer-id (first cell))))
        (unless (eq (svref objects id) (first cell)) (fz-fail fz :timer-not-in-table id))
        (when (member id free) (fz-fail fz :live-timer-id-free id))))))

(defun loop-fuzz-round (state)
  "One loop through some batches and passes; returns the failures."
  (let ((l (net:make-event-loop)) (fz nil))
    (unwind-protect
         (progn
           (setf fz (make-fz state l))
           (loop repeat (1+ (random 6 state)) do (fz-add-watcher fz))
           (loop repeat (random 4 state) do (fz-add-timer fz))
           (loop repeat (1+ (random 20 state))
                 do (if (zerop (random 3 state))
                        (handler-bind ((error (fz-on-error fz)))
                          (net:run-event-loop l :mode :nowait))
                        (fz-inject fz))
                    (fz-check-table fz)))
      (net:close-event-loop l)
      (when fz (mapc #'close (fz-sockets fz))))
    (reverse (fz-failures fz))))

(defun loop-fuzz (&key (seed 14) (rounds 50) seconds)
  "Run ROUNDS rounds (or as many as fit in SECONDS) from SEED: the list of
failures and the count of rounds."
  (let ((state (make-random-state seed))
        (deadline (and seconds (+ (get-internal-real-time)
                                  (* seconds internal-time-units-per-second))))
        (failures '()) (run 0))
    (loop while (if deadline (< (get-internal-real-time) deadline) (< run rounds))
          do (setf failures (append failures (loop-fuzz-round state)))
             (incf run))
    (values failures run)))

(test dispatch-under-random-event-orders
  "Random batches and real passes, with callbacks that change the loop: no
event reaches a dead or wrong object, and the id table stays right."
  (let ((before (socket-fd-count)))
    (multiple-value-bind (failures run) (loop-fuzz :seed 14 :rounds 60)
      (is (= 60 run))
      (is (null failures) "~d failures, first ~s" (length failures) (first failures)))
    (is (= before (socket-fd-count)))))

(test add-watcher-compiled-call-checks-its-arguments
  ;; A compiled call with literal keywords goes to the positional twin:
  ;; the same checks, and a failed C start signals.
  (let ((f (compile nil '(lambda (l s hwm on-drain)
                          (net:add-watcher l s '(:read) nil :high-water-mark hwm
                                                            :on-drain on-drain)))))
    (net:with-event-loop (l)
      (with-socket-pair (a b :blocking nil)
        (signals type-error (funcall f l a -1 nil))
        (signals type-error (funcall f l a "big" nil))
        (signals type-error (funcall f l "no socket" 10 nil))
        (let ((w (funcall f l a 10 #'identity)))
          (is (eq a (net:watcher-socket w)))
          (is (equal '(:read) (net:watcher-events w)))
          ;; A second watcher of the same socket fails in the C start.
          (signals net:socket-error (funcall f l a 10 nil))
          (net:remove-watcher l w))
        (let ((w (net:add-watcher l b '(:read))))
          (is (eq b (net:watcher-socket w)))
          (net:remove-watcher l w))))))
