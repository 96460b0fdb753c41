;;;; server-tests.lsp -- the threaded server helper: pool, queue, errors, stop.

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
