;;;; soak-server.lsp -- the server side of the soak: an echo server (event
;;;; loop or threaded) and a UDP sink, driven by soak.py.
;;;
;;; Run as: ecl --norc --load soak-server.lsp with NET_FAS and SOAK_MODE
;;; (event-loop or threaded) in the environment.  Prints "ports TCP UDP",
;;; then obeys one command a line on its standard input:
;;;   stats  prints "stats" and a plist: the server's statistics, the
;;;          errors reported by kind, the datagrams received
;;;   gc     collects garbage, prints "gc"
;;;   quit   stops the server, prints "bye" and exits

(setf *debugger-hook*
      (lambda (condition hook)
        (declare (ignore hook))
        (format *error-output* "~&soak-server: unhandled error: ~a~%" condition)
        (ext:quit 2)))
(load (ext:getenv "NET_FAS"))

(defpackage "SOAK" (:use "CL"))
(in-package "SOAK")

(defvar *lock* (mp:make-lock :name "soak counts"))
(defvar *errors* (make-hash-table :test #'eq) "condition class name -> count")
(defvar *datagrams* 0)

(defvar *unexpected* '() "The reports of the first conditions that are not network errors.")

(defun note-error (condition socket)
  (declare (ignore socket))
  (mp:with-lock (*lock*)
    (incf (gethash (class-name (class-of condition)) *errors* 0))
    (when (and (not (typep condition 'net:network-error)) (< (length *unexpected*) 5))
      (push (princ-to-string condition) *unexpected*))))

(defun evented-echo (socket)
  "Echo with the write queue and backpressure: stop reading while the
queue is past its high-water mark, read again when it drains."
  (let ((buffer (make-array 65536 :element-type '(unsigned-byte 8)))
        (watcher nil))
    (setf watcher
          (net:add-watcher net:*server-event-loop* socket '(:read)
                           (lambda (s events)
                             (declare (ignore events))
                             (let ((n (net:receive s buffer)))
                               (cond ((null n))
                                     ((zerop n) (net:close-after-drain watcher))
                                     ((not (net:queue-send watcher buffer :end n))
                                      (setf (net:watcher-events watcher) nil)))))
                           :high-water-mark (* 256 1024)
                           :on-drain (lambda ()
                                       (when (net:socket-open-p socket)
                                         (setf (net:watcher-events watcher) '(:read))))
                           :on-error (lambda (c)
                                       (note-error c socket)
                                       (close socket :abort t))))))

(defun threaded-echo (socket)
  (let ((buffer (make-array 65536 :element-type '(unsigned-byte 8))))
    (loop for n = (net:receive socket buffer)
          while (plusp n)
          do (net:send socket buffer :end n))))

(defun udp-sink (socket)
  (let ((buffer (make-array 65536 :element-type '(unsigned-byte 8))))
    (handler-case
        (loop (when (net:receive-from socket buffer)
                (mp:with-lock (*lock*) (incf *datagrams*))))
      (net:socket-closed () nil))))

(defun start (mode)
  (if (string= mode "threaded")
      (net:start-threaded-server #'threaded-echo 0 :threads 120 :queue 256 :timeout 30
                                                   :on-error #'note-error)
      (net:start-event-loop-server #'evented-echo 0 :loops 2 :timeout 30
                                                    :on-error #'note-error)))

(defun main ()
  (let* ((server (start (or (ext:getenv "SOAK_MODE") "event-loop")))
         (udp (net:make-udp-socket :host "127.0.0.1" :port 0))
         (sink (mp:process-run-function "udp sink" (lambda () (udp-sink udp)))))
    (format t "ports ~d ~d~%" (net:server-port server) (net:socket-local-port udp))
    (finish-output)
    (loop for line = (read-line *standard-input* nil)
          do (cond ((or (null line) (string= line "quit"))
                    (net:stop-server server :grace 2)
                    (close udp)
                    (mp:process-join sink)
                    (format t "bye~%") (finish-output)
                    (ext:quit 0))
                   ((string= line "gc")
                    (ext:gc t)
                    (format t "gc~%") (finish-output))
                   ((string= line "stats")
                    (let ((*print-pretty* nil))
                      (mp:with-lock (*lock*)
                        (format t "stats ~s~%"
                                (list :server (net:server-statistics server)
                                      :errors (loop for k being the hash-keys of *errors*
                                                      using (hash-value v)
                                                    collect (list (string k) v))
                                      :datagrams *datagrams*
                                      :unexpected *unexpected*))))
                    (finish-output))))))

(main)
