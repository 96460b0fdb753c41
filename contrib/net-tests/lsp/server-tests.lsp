;;;; server-tests.lsp -- the server helpers (server.lsp, server-threaded.lsp, server-loop.lsp): pool, queue, loops, errors, stop.

(in-package "NET-TESTS")

(def-suite :server :in :net :description "start-threaded-server and stop-server.")
(in-suite :server)

(defun echo-line-handler (socket)
  (let ((line (read-line socket nil)))
    (when line
      (write-line line socket))))

(defmacro with-server ((var handler &rest args) &body body)
  `(let ((,var (net:start-threaded-server ,handler 0 ,@args)))
     (unwind-protect (progn ,@body)
       (net:stop-server ,var :grace 2))))

(defun ask-server (port line &key (timeout 10))
  "Send LINE to the server on PORT and return its one-line answer (NIL at end of file)."
  (net:with-connection (c "127.0.0.1" port :timeout timeout)
    (setf (net:socket-timeout-of c) timeout)
    (write-line line c)
    (finish-output c)
    (read-line c nil)))

(defun thread-count ()
  (length (mp:all-processes)))

(test threaded-server-serves-more-clients-than-threads
  (let ((threads-before (thread-count))
        (fds-before (socket-fd-count)))
    (with-server (server (lambda (s) (sleep 0.05) (echo-line-handler s))
                         :threads 3 :queue 64 :timeout 10 :error-output (make-broadcast-stream))
      (let* ((port (net:server-port server))
             (clients (loop for i below 12
                            collect (let ((i i))
                                      (run-thread "client" (lambda () (ask-server port (format nil "n~d" i))))))))
        (is (equal (loop for i below 12 collect (format nil "n~d" i))
                   (mapcar #'funcall clients)))
        (let ((stats (net:server-statistics server)))
          (is (= 12 (getf stats :accepted)))
          (is (<= (getf stats :threads) 3) "the pool stays bounded"))))
    (is (= threads-before (thread-count)) "every thread joined")
    (is (= fds-before (socket-fd-count)) "no descriptor leaked")))

(test threaded-server-contains-handler-errors
  (let* ((log (make-string-output-stream))
         (errors '())
         (lock (mp:make-lock)))
    (with-server (server (lambda (s)
                           (let ((line (read-line s)))
                             (when (string= line "boom") (error "handler failed on ~a" line))
                             (write-line line s)))
                         :threads 2 :error-output log)
      (let ((port (net:server-port server)))
        (is (null (ask-server port "boom")) "the failing connection is closed")
        (is (string= "fine" (ask-server port "fine")) "the server goes on")
        (is (= 1 (getf (net:server-statistics server) :errors)))))
    (is-true (search "handler failed on boom" (get-output-stream-string log)))
    ;; :on-error receives the condition and the socket.
    (with-server (server (lambda (s) (declare (ignore s)) (error "oops"))
                         :on-error (lambda (c s) (mp:with-lock (lock) (push (list c s) errors))))
      ;; (Closing with the request unread resets the connection.)
      (ignore-errors (ask-server (net:server-port server) "x"))
      (net:stop-server server)
      (is (= 1 (length errors)))
      (is (typep (first (first errors)) 'simple-error))
      (is (typep (second (first errors)) 'net:stream-socket)))))

(test threaded-server-worker-handles-each-failure-once
  ;; One worker serves every connection (:threads 1).  Its one error
  ;; handler meets only what the server's handler leaves unhandled:
  ;; failures are reported one by one and the worker goes on; an error the
  ;; handler catches itself is not reported; a failed orderly close (the
  ;; buffered reply to a client that reset) resets quietly.
  (let ((errors '())
        (lock (mp:make-lock)))
    (with-server (server (lambda (s)
                           (let ((line (ignore-errors (read-line s))))
                             (cond ((null line) (write-string "pending" s))
                                   ((string= line "boom") (error "boom ~a" line))
                                   (t (write-line line s)))))
                         :threads 1
                         :on-error (lambda (c s)
                                     (declare (ignore s))
                                     (mp:with-lock (lock) (push c errors))))
      (let ((port (net:server-port server)))
        (dotimes (i 3)
          (is (null (ask-server port "boom")) "a failing connection is closed"))
        (is (string= "fine" (ask-server port "fine")) "the worker goes on")
        ;; A client that resets at once: the handler's READ-LINE fails
        ;; inside its own IGNORE-ERRORS; its buffered output cannot go.
        (let ((c (net:connect-to "127.0.0.1" port :timeout 5)))
          (close c :abort t))
        (is (string= "again" (ask-server port "again")))
        (mp:with-lock (lock)
          (is (= 3 (length errors)))
          (is (every (lambda (c) (typep c 'simple-error)) errors)))
        (is (= 3 (getf (net:server-statistics server) :errors)))))))

(test threaded-server-refuses-past-the-queue
  (let* ((release nil)
         (reports '())
         (lock (mp:make-lock)))
    (with-server (server (lambda (s)
                           (loop repeat 500 until release do (sleep 0.01))
                           (echo-line-handler s))
                         :threads 1 :queue 1 :on-full :refuse
                         :on-error (lambda (c s) (declare (ignore s))
                                     (mp:with-lock (lock) (push c reports))))
      (let* ((port (net:server-port server))
             (busy (run-thread "busy" (lambda () (ask-server port "first"))))
             (queued nil))
        ;; One connection runs, one waits in the queue: the third is refused.
        (loop repeat 200 until (= 1 (getf (net:server-statistics server) :active))
              do (sleep 0.01))
        (setf queued (run-thread "queued" (lambda () (ask-server port "second"))))
        (loop repeat 200 until (= 1 (getf (net:server-statistics server) :queued))
              do (sleep 0.01))
        (let ((third (handler-case (ask-server port "third" :timeout 5)
                       (net:network-error (e) e))))
          (is (or (null third) (typep third 'net:network-error))
              "the refused client reads end of file or a reset"))
        (setf release t)
        (is (string= "first" (funcall busy)))
        (is (string= "second" (funcall queued)))
        (is (= 1 (getf (net:server-statistics server) :refused)))))
    (is (= 1 (length reports)))
    (is (typep (first reports) 'net:server-busy))
    (is-true (search "refused" (princ-to-string (first reports))))))

(test threaded-server-waits-when-asked
  (let ((release nil))
    (with-server (server (lambda (s)
                           (loop repeat 500 until release do (sleep 0.01))
                           (echo-line-handler s))
                         :threads 1 :queue 0 :on-full :wait)
      (let* ((port (net:server-port server))
             (clients (loop for i below 3
                            collect (let ((i i))
                                      (run-thread "c" (lambda () (ask-server port (format nil "w~d" i))))))))
        (sleep 0.1)
        (setf release t)
        (is (equal '("w0" "w1" "w2") (sort (mapcar #'funcall clients) #'string<)))
        (is (= 0 (getf (net:server-statistics server) :refused)))))))

(test threaded-server-timeout-and-stop
  ;; A silent client: the per-connection timeout frees the thread.
  (let ((log (make-string-output-stream)))
    (with-server (server #'echo-line-handler :threads 1 :timeout 0.2 :error-output log)
      (net:with-connection (c "127.0.0.1" (net:server-port server))
        (setf (net:socket-timeout-of c) 5)
        (is (null (read-line c nil)) "closed by the server after its timeout"))
      (is-true (search "timed out" (get-output-stream-string log)))))
  ;; stop-server with a running handler: it finishes within the grace period.
  (let* ((threads-before (thread-count))
         (finished nil)
         (server (net:start-threaded-server (lambda (s)
                                              (sleep 0.3)
                                              (setf finished t)
                                              (echo-line-handler s))
                                            0 :threads 2))
         (port (net:server-port server))
         (client (run-thread "client" (lambda () (ask-server port "late")))))
    (loop repeat 200 until (= 1 (getf (net:server-statistics server) :active))
          do (sleep 0.01))
    (is-true (net:stop-server server :grace 5))
    (is-true finished "the running handler finished")
    (is (string= "late" (funcall client)))
    (is-false (net:stop-server server) "a second stop does nothing")
    (signals net:connection-failed (net:connect-to "127.0.0.1" port :timeout 5))
    (is (= threads-before (thread-count))))
  ;; A handler stuck past the grace period is woken by closing its socket.
  (let* ((threads-before (thread-count))
         (server (net:start-threaded-server (lambda (s) (read-line s)) 0
                                            :error-output (make-broadcast-stream)))
         (c (net:connect-to "127.0.0.1" (net:server-port server))))
    (loop repeat 200 until (= 1 (getf (net:server-statistics server) :active))
          do (sleep 0.01))
    (is-true (net:stop-server server :grace 0.1))
    (close c)
    (is (= threads-before (thread-count)))))

;;; The event-loop server

(defun evented-echo (socket)
  "An echo handler on the event loop: what arrives is queued back; end of
file closes once the queue has drained."
  (let ((buffer (make-octets 4096))
        (watcher nil))
    (setf watcher
          (net:add-watcher net:*server-event-loop* socket '(:read)
                           (lambda (s events)
                             (declare (ignore events))
                             (let ((n (receive s buffer)))
                               (cond ((null n))
                                     ((zerop n) (net:close-after-drain watcher))
                                     (t (net:queue-send watcher buffer :end n)))))))))

(test event-loop-server-echoes-on-several-loops
  (let ((threads-before (thread-count))
        (fds-before (socket-fd-count)))
    (let ((server (net:start-event-loop-server #'evented-echo 0 :loops 2)))
      (unwind-protect
           (let* ((port (net:server-port server))
                  (clients (loop for i below 20
                                 collect (let ((i i))
                                           (run-thread "client"
                                                       (lambda () (ask-server port (format nil "e~d" i))))))))
             (is (equal (loop for i below 20 collect (format nil "e~d" i))
                        (mapcar #'funcall clients))))
        (is-true (net:stop-server server :grace 2))))
    (is (= threads-before (thread-count)) "every loop thread joined")
    (is (= fds-before (socket-fd-count)) "no descriptor leaked")))

(test event-loop-server-contains-errors-and-stops
  (let* ((reports '())
         (lock (mp:make-lock))
         (server (net:start-event-loop-server
                  (lambda (s)
                    (net:add-watcher net:*server-event-loop* s '(:read)
                                     (lambda (s events)
                                       (declare (ignore events))
                                       (let ((line (read-line s nil)))
                                         (cond ((null line) (close s))
                                               ((string= line "boom") (error "callback failed"))
                                               (t (write-line line s)
                                                  (finish-output s)))))))
                  0 :on-error (lambda (c s) (declare (ignore s))
                                (mp:with-lock (lock) (push c reports))))))
    (unwind-protect
         (let ((port (net:server-port server)))
           (is (null (ignore-errors (ask-server port "boom"))) "the failing connection is closed")
           (is (string= "fine" (ask-server port "fine")) "the loop goes on")
           (is (= 1 (length reports)) "reports: ~{~a~^; ~}" reports)
           (is-true (search "callback failed" (princ-to-string (first reports))))
           ;; A connection still open at stop time is closed after the grace period.
           (let ((c (net:connect-to "127.0.0.1" port :timeout 5)))
             (unwind-protect
                  (progn
                    (setf (net:socket-timeout-of c) 5)
                    (write-line "held" c) (finish-output c)
                    (is (string= "held" (read-line c)))
                    (is-true (net:stop-server server :grace 0.2))
                    (is (null (handler-case (read-line c nil) (net:connection-reset () nil)))
                        "closed by the stop"))
               (close c)))
           (is-false (net:stop-server server))
           (signals net:connection-failed (net:connect-to "127.0.0.1" port :timeout 5)))
      (net:stop-server server :grace 0))))

(test stop-server-after-a-loop-thread-ended
  (let* ((fds-before (socket-fd-count))
         (server (net:start-event-loop-server #'evented-echo 0))
         (shard (first (net::event-loop-server-shards server))))
    (is (string= "x" (ask-server (net:server-port server) "x")))
    ;; The loop's thread ends on its own (here: its loop stopped), closing
    ;; its loop; stopping the server must still close the listener.
    (net:stop-event-loop (net::%shard-loop shard))
    (loop repeat 500 while (mp:process-active-p (net::%shard-thread shard)) do (sleep 0.01))
    (is (not (mp:process-active-p (net::%shard-thread shard))))
    (is-true (net:stop-server server :grace 0.2))
    (is (= fds-before (socket-fd-count)) "the listener is closed")))

;;; Limits against hostile clients: each attack leaves the server serving others.

(defun collecting-reports ()
  "An ON-ERROR function that collects its conditions, and a function returning them."
  (let ((reports '()) (lock (mp:make-lock)))
    (values (lambda (c s) (declare (ignore s)) (mp:with-lock (lock) (push c reports)))
            (lambda () (mp:with-lock (lock) (copy-list reports))))))

(defun trickle-until-cut (port bytes &key (interval 0.1) (max-seconds 10))
  "Connect to PORT and send BYTES one octet every INTERVAL seconds, never a
newline, until the server closes the connection or MAX-SECONDS pass.
Returns T if the server cut the connection."
  (let ((c (net:connect-to "127.0.0.1" port :timeout 5))
        (end (+ (get-internal-real-time) (* max-seconds internal-time-units-per-second))))
    (unwind-protect
         (loop for i from 0 below bytes
               while (< (get-internal-real-time) end)
               do (handler-case
                      (progn (send c (octets (char-code #\a)))
                             (when (net:wait-until-ready (list c) :timeout interval)
                               ;; Readable: end of file or a reset, the server let go.
                               (return (handler-case (eql 0 (receive c (make-octets 16)))
                                         (net:socket-error () t)))))
                    (net:socket-error () (return t)))
               finally (return nil))
      (close c :abort t))))

(defun ask-line-at-once (port line)
  (ask-server port line :timeout 10))

(test threaded-server-long-line-is-refused-and-others-served
  (multiple-value-bind (on-error reports) (collecting-reports)
    (with-server (server (lambda (s)
                           (let ((net:*max-line-length* 65536))
                             (echo-line-handler s)))
                         :threads 4 :on-error on-error)
      (let* ((port (net:server-port server))
             (attacker (run-thread "attacker"
                                   (lambda ()
                                     ;; 8 MiB without a newline, far past the limit.
                                     (handler-case
                                         (net:with-connection (c "127.0.0.1" port :timeout 10)
                                           (let ((chunk (make-octets 65536 (char-code #\x))))
                                             (loop repeat 128 do (send c chunk)))
                                           :sent-all)
                                       (net:socket-error () :cut))))))
        (is (string= "ok" (ask-line-at-once port "ok")) "another client is served meanwhile")
        (is (eq :cut (funcall attacker)) "the attacker's connection is closed before 8 MiB")
        (is (string= (make-string 65536 :initial-element #\y)
                     (ask-line-at-once port (make-string 65536 :initial-element #\y)))
            "a line of exactly the limit is read")
        (let ((e (find-if (lambda (c) (typep c 'net:limit-exceeded)) (funcall reports))))
          (is-true e "the handler met LIMIT-EXCEEDED")
          (when e
            (is (eq :line-length (net:limit-exceeded-limit e)))
            (is (= 65536 (net:limit-exceeded-maximum e)))))))))

(defun header-then-echo-handler (socket)
  "Read a header line, say it arrived, then echo one line."
  (let ((header (read-line socket nil)))
    (when header
      (net:header-received socket)
      (sleep 1.5)                       ; longer than the header timeout
      (write-line header socket))))

(test threaded-server-header-timeout-cuts-slowloris
  (multiple-value-bind (on-error reports) (collecting-reports)
    (with-server (server #'header-then-echo-handler :threads 4 :header-timeout 1
                                                    :on-error on-error)
      (let* ((port (net:server-port server))
             (slow (run-thread "slowloris" (lambda () (trickle-until-cut port 100)))))
        (is (string= "fast" (ask-line-at-once port "fast"))
            "a client that sends its header at once is served past the header timeout")
        (is-true (funcall slow) "the slow client was cut off")
        (is-true (find-if (lambda (c) (typep c 'net:socket-timeout)) (funcall reports)))))))

(test threaded-server-accept-rate
  (with-server (server #'echo-line-handler :threads 8 :accept-rate 10)
    (let* ((port (net:server-port server))
           (start (get-internal-real-time))
           (clients (loop repeat 40
                          collect (let ((s (make-socket)))
                                    (connect s "127.0.0.1" :port port :timeout 5)
                                    s))))
      (unwind-protect
           (progn
             (sleep 0.5)
             (let ((elapsed (/ (- (get-internal-real-time) start) internal-time-units-per-second))
                   (accepted (getf (net:server-statistics server) :accepted)))
               (is (<= accepted (+ 10 (* 10 elapsed) 1))
                   "~d accepted in ~,2f s: more than the rate allows" accepted elapsed)
               (is (< accepted 40))))
        (mapc #'close clients))
      ;; The backlog drains at the rate; a new client is served after it.
      (is (string= "late" (ask-server port "late" :timeout 20))))))

(defun evented-line-echo (socket)
  "The event-loop handler: echo each complete line; the first line is the
header.  Partial lines wait in a buffer of the connection's own."
  (let ((pending (make-array 0 :element-type '(unsigned-byte 8) :adjustable t :fill-pointer 0))
        (buffer (make-octets 4096))
        (watcher nil))
    (setf watcher
          (net:add-watcher
           net:*server-event-loop* socket '(:read)
           (lambda (s events)
             (declare (ignore events))
             (let ((n (handler-case (receive s buffer)
                        (net:socket-error () (close s :abort t) nil))))
               (cond ((or (null n) (not (net:socket-open-p s))))
                     ((zerop n) (close s))
                     (t (loop for i below n do (vector-push-extend (aref buffer i) pending))
                        (let ((lf (position 10 pending :from-end t)))
                          (when lf
                            (net:header-received s)
                            (net:queue-send watcher (coerce (subseq pending 0 (1+ lf))
                                                            '(simple-array (unsigned-byte 8) (*))))
                            (let ((rest (subseq pending (1+ lf))))
                              (setf (fill-pointer pending) 0)
                              (loop for o across rest do (vector-push-extend o pending)))))))))))))

(defmacro with-event-loop-server ((var handler &rest args) &body body)
  `(let ((,var (net:start-event-loop-server ,handler 0 ,@args)))
     (unwind-protect (progn ,@body)
       (net:stop-server ,var :grace 1))))

(defun hold-connection (port)
  (let ((c (net:connect-to "127.0.0.1" port :timeout 5)))
    (setf (net:socket-timeout-of c) 10)
    c))

(defun chat (socket line)
  (write-line line socket)
  (finish-output socket)
  (read-line socket nil))

(test event-loop-server-max-connections
  (multiple-value-bind (on-error reports) (collecting-reports)
    (let ((fds-before (socket-fd-count)))
      (with-event-loop-server (server #'evented-line-echo :max-connections 3 :on-error on-error)
        (let* ((port (net:server-port server))
               (held (loop for i below 3
                           collect (let ((c (hold-connection port)))
                                     (is (string= "in" (chat c "in")))
                                     c))))
          (unwind-protect
               (progn
                 ;; Reset at once: even the connect may see the reset.
                 (is (null (handler-case (let ((extra (hold-connection port)))
                                           (unwind-protect (chat extra "over")
                                             (close extra :abort t)))
                             (net:network-error () nil)))
                     "the connection past the cap is closed")
                 (is (= 1 (getf (net:server-statistics server) :refused)))
                 (let ((busy (find-if (lambda (c) (typep c 'net:server-busy)) (funcall reports))))
                   (is-true busy)
                   ;; The refused client's address, asked for at the refusal
                   ;; (or NIL if it has reset already).
                   (let ((peer (and busy (net:server-busy-peer busy))))
                     (is (or (null peer) (net:address= peer "127.0.0.1")))))
                 (is (string= "still" (chat (first held) "still")) "held connections go on")
                 (close (pop held))
                 ;; Once the loop has seen that close, there is room again.
                 (is (equal "again"
                            (loop repeat 50
                                  for answer = (handler-case (ask-server port "again")
                                                 (net:network-error () (sleep 0.1) nil))
                                  when answer return answer))
                     "room again after a close"))
            (mapc #'close held))))
      (is (= fds-before (socket-fd-count)) "no descriptor leaked"))))

(test event-loop-server-idle-and-header-timeouts
  (multiple-value-bind (on-error reports) (collecting-reports)
    (with-event-loop-server (server #'evented-line-echo :timeout 1 :header-timeout 1
                                                        :on-error on-error)
      (let* ((port (net:server-port server))
             (slow (run-thread "slowloris" (lambda () (trickle-until-cut port 100))))
             (silent (hold-connection port))
             (busy (hold-connection port)))
        (unwind-protect
             (progn
               ;; BUSY talks every 0.2 s for 2.5 s: past both timeouts.
               (is (every (lambda (i) (sleep 0.2) (equal (princ-to-string i)
                                                         (chat busy (princ-to-string i))))
                          (loop for i below 12 collect i))
                   "an active connection outlives the timeouts")
               (is-true (funcall slow) "the slowloris client was cut by the header timeout")
               ;; SILENT sent nothing: closed by the header timeout, then
               ;; the idle one would have.
               (is (null (handler-case (progn (net:wait-until-ready (list silent) :timeout 5)
                                              (read-line silent nil))
                           (net:socket-error () nil)))
                   "the silent connection was closed")
               (is (<= 2 (getf (net:server-statistics server) :timed-out)))
               (is (<= 2 (count-if (lambda (c) (typep c 'net:socket-timeout)) (funcall reports)))))
          (close silent :abort t)
          (close busy))))))

(test event-loop-server-idle-timeout-alone
  (with-event-loop-server (server #'evented-line-echo :timeout 1
                                                        :error-output (make-broadcast-stream))
    (let* ((port (net:server-port server))
           (c (hold-connection port)))
      (unwind-protect
           (progn
             (is (string= "hi" (chat c "hi")) "the header came at once")
             (is (null (handler-case (progn (net:wait-until-ready (list c) :timeout 8)
                                            (read-line c nil))
                         (net:socket-error () nil)))
                 "closed once idle")
             (is (= 1 (getf (net:server-statistics server) :timed-out)))
             (is (string= "next" (ask-server port "next")) "the server goes on"))
        (close c :abort t)))))

;;; What the event-loop server keeps per connection, and its error path

(test event-loop-server-contains-handler-and-timer-errors
  ;; A handler that fails: its connection closed and reported with its
  ;; socket; the listener goes on with the next connections.  A timer that
  ;; fails: reported, the event skipped, the timer kept (it repeats).
  (let ((reports '()) (lock (mp:make-lock)) (ticks 0) (n 0))
    (with-event-loop-server
        (server (lambda (s)
                  (when (= 1 (incf n))
                    (net:add-timer net:*server-event-loop*
                                   (lambda () (when (<= (incf ticks) 2) (error "timer failed")))
                                   0.05 :repeat 0.05))
                  (if (evenp n)
                      (error "handler failed")
                      (evented-line-echo s)))
                :on-error (lambda (c s) (mp:with-lock (lock) (push (cons c s) reports))))
      (let ((port (net:server-port server)))
        (is (string= "one" (ask-server port "one")))
        (is (null (ignore-errors (ask-server port "two"))) "the failing handler's connection is closed")
        (is (string= "three" (ask-server port "three")) "the next connection is served")
        (loop repeat 200 until (<= 3 ticks) do (sleep 0.01))
        (is (<= 3 ticks) "the failing timer was kept and fires again")
        (let ((reports (mp:with-lock (lock) (reverse reports))))
          (is (= 1 (count-if (lambda (r) (search "handler failed" (princ-to-string (car r))))
                             reports)))
          (is-true (typep (cdr (find-if (lambda (r) (search "handler failed" (princ-to-string (car r))))
                                        reports))
                          'net:socket)
                   "a handler's error is reported with its socket")
          (is (= 2 (count-if (lambda (r) (and (search "timer failed" (princ-to-string (car r)))
                                              (null (cdr r))))
                             reports)))
          (is (= 3 (getf (net:server-statistics server) :errors))))))))

(test event-loop-server-idle-sweep-conses-nothing
  ;; The idle sweep walks every connection each period: with TCP_INFO as
  ;; a list it left 32 conses (512 bytes) per connection per sweep.
  (let* ((listener (net:make-listener 0 :host "127.0.0.1"))
         (port (net:socket-local-port listener))
         (server (net::%make-event-loop-server :timeout 300))
         (shard (net::%make-shard listener nil))
         (clients '()))
    (unwind-protect
         (progn
           (dotimes (i 300)
             (push (net:connect-to "127.0.0.1" port :timeout 5) clients)
             (net::%add-connection shard (net:accept-connection listener :timeout 5)))
           (let ((ms (net-sys:tcp-idle-ms (net::socket-handle (first clients)))))
             (is (typep ms 'fixnum))
             (is (<= 0 ms 5000)))
           (net::%sweep-idle server shard)
           (let ((consed (loop repeat 5
                               minimize (let ((before (si:gc-stats t)))
                                          (dotimes (i 10) (net::%sweep-idle server shard))
                                          (- (si:gc-stats t) before)))))
             ;; 3,000 connection checks: a list each would be 1.5 MB.  Past 256
             ;; connections, the vector has grown once.
             (is (> 1000 consed) "~d bytes consed by 10 sweeps of 300" consed))
           (is (= 300 (net::%shard-count shard)) "none idle: none closed")
           ;; Closed connections are forgotten by the next sweep.
           (dotimes (i 5) (close (svref (net::%shard-connections shard) (* 2 i))))
           (net::%sweep-idle server shard)
           (is (= 295 (net::%shard-count shard)))
           (is (every #'net:socket-open-p (subseq (net::%shard-connections shard) 0 295)))
           ;; A walk left by a throw keeps every connection, once each.
           (let ((seen 0))
             (catch 'out
               (net::%walk-connections shard (lambda (s) (declare (ignore s))
                                               (if (= 10 (incf seen)) (throw 'out nil) t)))))
           (is (= 295 (net::%shard-count shard)))
           (is (= 295 (length (remove-duplicates
                               (subseq (net::%shard-connections shard) 0 295)))))
           (is (every #'net:socket-open-p (subseq (net::%shard-connections shard) 0 295))))
      (mapc #'close clients)
      (dotimes (i (net::%shard-count shard)) (close (svref (net::%shard-connections shard) i)))
      (close listener))))

(test event-loop-server-accept-rate
  (with-event-loop-server (server #'evented-line-echo :accept-rate 10)
    (let* ((port (net:server-port server))
           (start (get-internal-real-time))
           (clients (loop repeat 40
                          collect (let ((s (make-socket)))
                                    (connect s "127.0.0.1" :port port :timeout 5)
                                    s))))
      (unwind-protect
           (progn
             (sleep 0.5)
             (let ((elapsed (/ (- (get-internal-real-time) start) internal-time-units-per-second))
                   (accepted (getf (net:server-statistics server) :accepted)))
               (is (<= accepted (+ 10 (* 10 elapsed) 1))
                   "~d accepted in ~,2f s: more than the rate allows" accepted elapsed)
               (is (< accepted 40))))
        (mapc #'close clients))
      (is (string= "late" (ask-server port "late" :timeout 20))))))

(test event-loop-server-write-queue-cap-closes-a-non-reader
  ;; A client asks for an endless stream and never reads it: the handler
  ;; produces without heeding backpressure, meets MAX-QUEUED, and the
  ;; server closes that connection, reports it, and serves the next client.
  (multiple-value-bind (on-error reports) (collecting-reports)
    (with-event-loop-server
        (server (lambda (socket)
                  (let ((chunk (make-octets 65536 (char-code #\z)))
                        (w nil))
                    (setf w (net:add-watcher
                             net:*server-event-loop* socket '(:read)
                          (lambda (s events)
                            (declare (ignore events))
                            (let ((line (handler-case (read-line s nil)
                                          (net:socket-error () nil))))
                              (cond ((null line) (close s))
                                    ((string= line "flood")
                                     (loop repeat 1000 do (net:queue-send w chunk)))
                                    (t (net:queue-send w (map '(vector (unsigned-byte 8)) #'char-code
                                                              (format nil "~a~%" line)))))))
                          :max-queued (* 1024 1024)))))
                :on-error on-error)
      (let* ((port (net:server-port server))
             (attacker (net:connect-to "127.0.0.1" port :timeout 5)))
        (unwind-protect
             (progn
               (setf (net:socket-option attacker :receive-buffer) 4096)
               (write-line "flood" attacker)
               (finish-output attacker)
               (let ((e (loop repeat 100
                              for e = (find-if (lambda (c) (typep c 'net:limit-exceeded))
                                               (funcall reports))
                              until e do (sleep 0.05)
                              finally (return e))))
                 (is-true e "the flood met the write queue's cap")
                 (when e (is (eq :write-queue (net:limit-exceeded-limit e)))))
               (is (string= "next" (ask-server port "next")) "the next client is served"))
          (close attacker :abort t))))))

(test threaded-server-reuses-idle-workers
  ;; A worker counts its finished connection and waits for the next in one
  ;; hold of the lock: sequential clients are served by the same threads
  ;; again and again, counted as they go, none refused though the queue
  ;; holds nothing; stopping joins every thread.
  (let ((threads-before (thread-count))
        (fds-before (socket-fd-count)))
    (with-server (server #'echo-line-handler :threads 4 :queue 0 :timeout 10
                                             :error-output (make-broadcast-stream))
      (let ((port (net:server-port server)))
        (dotimes (i 40)
          (is (equal (format nil "r~d" i) (ask-server port (format nil "r~d" i)))))
        ;; The handler's thread counts the connection after the client
        ;; has read its answer: wait a moment for the last one.
        (loop repeat 200
              until (= 40 (getf (net:server-statistics server) :handled))
              do (sleep 0.01))
        (let ((stats (net:server-statistics server)))
          (is (= 40 (getf stats :accepted)))
          (is (= 40 (getf stats :handled)))
          (is (= 0 (getf stats :refused)) "a woken worker counts as idle: nothing refused")
          ;; The next client may connect before the last one's thread is
          ;; idle again: a second thread, no more.
          (is (<= 1 (getf stats :threads) 2) "idle threads served the sequential clients")
          (is (= 0 (getf stats :active)))
          (is (= 0 (getf stats :queued))))))
    (is (= threads-before (thread-count)) "every thread joined")
    (is (= fds-before (socket-fd-count)) "no descriptor leaked")))

(defun server-workers ()
  "The threads of threaded servers' pools now running."
  (remove "net server worker" (mp:all-processes) :key #'mp:process-name :test-not #'string=))

(test threaded-server-hands-many-connections-to-a-small-pool
  ;; 300 connections from 6 clients at once through 2 threads: each is
  ;; handed to a waiting worker, none lost or refused (the queue holds
  ;; the rest), every count right, nothing leaked.
  (let ((threads-before (thread-count))
        (fds-before (socket-fd-count)))
    (with-server (server #'echo-line-handler :threads 2 :queue 64 :timeout 10
                                             :error-output (make-broadcast-stream))
      (let* ((port (net:server-port server))
             (clients (loop for c below 6
                            collect (let ((c c))
                                      (run-thread "client"
                                                  (lambda ()
                                                    (loop for i below 50
                                                          count (equal (format nil "~d-~d" c i)
                                                                       (ask-server port (format nil "~d-~d" c i))))))))))
        (is (= 300 (reduce #'+ (mapcar #'funcall clients))))
        (loop repeat 200 until (= 300 (getf (net:server-statistics server) :handled))
              do (sleep 0.01))
        (let ((stats (net:server-statistics server)))
          (is (= 300 (getf stats :accepted)))
          (is (= 300 (getf stats :handled)))
          (is (= 0 (getf stats :refused)))
          (is (= 2 (getf stats :threads)))
          (is (= 0 (getf stats :active)))
          (is (= 0 (getf stats :queued))))))
    (is (= threads-before (thread-count)) "every thread joined")
    (is (= fds-before (socket-fd-count)) "no descriptor leaked")))

(test threaded-server-idle-worker-runs-interrupts
  ;; A worker waiting for a connection runs an interrupt at once and goes
  ;; back to waiting, still counted idle: the next client is served by it,
  ;; no second thread started.
  (with-server (server #'echo-line-handler :threads 4 :queue 0 :timeout 10)
    (let ((port (net:server-port server))
          (ran nil))
      (is (string= "a" (ask-server port "a")))
      (loop repeat 200 until (= 1 (getf (net:server-statistics server) :handled))
            do (sleep 0.01))
      (let ((workers (server-workers)))
        (is (= 1 (length workers)))
        (let ((start (get-internal-real-time)))
          (mp:interrupt-process (first workers) (lambda () (setf ran t)))
          (loop repeat 500 until ran do (sleep 0.002))
          (is-true ran "the idle worker ran the interrupt")
          (is (< (/ (- (get-internal-real-time) start) internal-time-units-per-second) 0.5)
              "and promptly")))
      (sleep 0.05)
      (is (string= "b" (ask-server port "b")))
      (is (= 1 (getf (net:server-statistics server) :threads)) "the same worker served it"))))

(test threaded-server-stops-idle-workers-promptly
  ;; Four workers, all idle: stop-server wakes them and returns at once,
  ;; not after its grace period.
  (let* ((threads-before (thread-count))
         (release nil)
         (server (net:start-threaded-server (lambda (s)
                                              (loop repeat 500 until release do (sleep 0.01))
                                              (echo-line-handler s))
                                            0 :threads 4 :queue 4 :timeout 10))
         (port (net:server-port server))
         (clients (loop for i below 4
                        collect (let ((i i))
                                  (run-thread "c" (lambda () (ask-server port (format nil "s~d" i))))))))
    (loop repeat 200 until (= 4 (getf (net:server-statistics server) :active))
          do (sleep 0.01))
    (setf release t)
    (is (equal '("s0" "s1" "s2" "s3") (sort (mapcar #'funcall clients) #'string<)))
    (loop repeat 200 until (= 0 (getf (net:server-statistics server) :active))
          do (sleep 0.01))
    (is (= 4 (length (server-workers))))
    (let ((start (get-internal-real-time)))
      (is-true (net:stop-server server :grace 5))
      (is (< (/ (- (get-internal-real-time) start) internal-time-units-per-second) 1)
          "stop-server waited for idle workers"))
    (is (null (server-workers)))
    (is (= threads-before (thread-count)))))
