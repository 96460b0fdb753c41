;;;; sys.lsp -- the primitives: every call from Lisp into net's C glue.
;;;
;;; Each primitive is a function of NET-SYS (callable from the REPL and by
;;; FUNCALL) and a compiler macro that turns a call in compiled code into a
;;; direct C call with FFI:C-INLINE: the cheapest path ECL has (see the
;;; manual, "Calling the primitives", and bench/callpath.lsp).  This is the
;;; only file with C-INLINE; the C is in src/c/net/ecl/.

(in-package "NET-SYS")

(eval-when (:compile-toplevel :load-toplevel :execute)
  (defmacro define-primitive (name (&rest args) c-function documentation &key env)
    "Define NAME as the C glue function C-FUNCTION of ARGS (cl_objects in,
one cl_object out), inlined into compiled callers.  ENV: C-FUNCTION takes
the calling thread's cl_env_ptr first, the compiled caller's own (no
ecl_process_env in the glue)."
    ;; The call declares C-FUNCTION itself: it is also inlined into files
    ;; compiled outside net (with-deadline, an inline function, expands to
    ;; primitives), which do not include netsys.h, and C would take an
    ;; undeclared function to return an int, truncating the cl_object.
    (let ((call (if env
                    (format nil "{extern cl_object ~a(cl_env_ptr~{~*,cl_object~}); @(return 0)=~a(cl_env_copy~{,#~36r~});}"
                            c-function args c-function
                            (loop for i below (length args) collect i))
                    (format nil "{extern cl_object ~a(~:[void~;~:*~{~*cl_object~^,~}~]); @(return 0)=~a(~{#~36r~^,~});}"
                            c-function args c-function
                            (loop for i below (length args) collect i))))
          (types (make-list (length args) :initial-element :object)))
      `(progn
         (eval-when (:compile-toplevel :load-toplevel :execute)
           (define-compiler-macro ,name (&whole form &rest forms)
             (if (= (length forms) ,(length args))
                 (list 'ffi:c-inline forms ',types :object ,call :one-liner nil)
                 form)))
         (eval-when (:compile-toplevel :load-toplevel :execute)
           (export ',name))
         (defun ,name ,args ,documentation (,name ,@args))))))

(define-primitive init () "netsys_init"
  "Initialise the C side; returns the error table as (code . class-name).")
(define-primitive strerror (code) "netsys_strerror"
  "The description of error CODE, a string.")
(define-primitive now () "netsys_now"
  "The monotonic clock in nanoseconds, the scale of deadlines.")
(define-primitive finalized-count () "netsys_finalized_count"
  "How many handles were closed by a finalizer because they became garbage while open.")
(define-primitive socket-open (family type protocol) "netsys_socket_open"
  "socket(2), non-blocking and close-on-exec; returns a handle.")
(define-primitive handle-close (handle) "netsys_handle_close"
  "Close HANDLE (idempotent); T if this call closed it.")
(define-primitive handle-fd (handle) "netsys_handle_fd"
  "The descriptor of HANDLE, or NIL once closed.")
(define-primitive handle-open-p (handle) "netsys_handle_open_p"
  "True while HANDLE is open.")
(define-primitive bind (handle octets port scope socket) "netsys_bind"
  "bind(2) to the address of OCTETS (4 or 16), PORT and SCOPE.")
(define-primitive listen-socket (handle backlog socket) "netsys_listen"
  "listen(2).")
(define-primitive accept (handle deadline peer socket) "netsys_accept"
  "accept4(2): (handle octets port scope), or the handle alone when PEER is
NIL; NIL if non-blocking and none is pending.")
(define-primitive connect (handle octets port scope deadline socket) "netsys_connect"
  "connect(2), waiting until DEADLINE; NIL when non-blocking and still in progress.")
(define-primitive shutdown (handle how socket) "netsys_shutdown"
  "shutdown(2) with HOW 0, 1 or 2.")
(define-primitive socket-name (handle peer-p socket) "netsys_socket_name"
  "getsockname(2) or getpeername(2): (octets port scope), or NIL.")
(define-primitive send (handle buffer start end flags deadline socket) "netsys_send_env"
  "One send(2) from BUFFER[START,END): the count sent, or NIL if it would block."
  :env t)
(define-primitive recv (handle buffer start end flags deadline socket) "netsys_recv_env"
  "One recv(2) into BUFFER[START,END): the count, 0 at end of file, NIL if it would block."
  :env t)
(define-primitive socket-at-mark (handle socket) "netsys_socket_at_mark"
  "sockatmark(3): true if the next octet to read is at the out-of-band mark.")
(define-primitive set-abortive (handle) "netsys_set_abortive"
  "SO_LINGER {1, 0}, so that closing resets the connection: best effort, T
if set, NIL if not (never connected, closed meanwhile); signals nothing.")
(define-primitive finish-connect (handle deadline socket) "netsys_finish_connect"
  "Complete a connection in progress: T when connected, NIL if non-blocking and not yet.")
(define-primitive wait-many (handles events deadline) "netsys_wait_many"
  "Wait until one of the list HANDLES (any length) is ready for EVENTS (1 read, 2 write, 4 urgent, 8 disconnect) or DEADLINE: the ready indices, or NIL.")
(define-primitive socket-pair (type) "netsys_socket_pair"
  "socketpair(2) of AF_UNIX and TYPE: a cons of two handles.")
(define-primitive adopt (fd) "netsys_adopt"
  "Own descriptor FD: (handle family type listening-p).")
(define-primitive send-to (handle buffer start end flags address port scope deadline socket)
  "netsys_send_to_env"
  "One sendto(2) of BUFFER[START,END) to ADDRESS (octets, or a Unix name): the count, or NIL."
  :env t)
(define-primitive recv-from (handle buffer start end flags deadline socket)
  "netsys_recv_from_env"
  "One recvfrom(2): (count truncated-p . sender), or NIL if it would block."
  :env t)
(define-primitive recv-from-into (handle buffer start end flags deadline socket octets)
  "netsys_recv_from_into_env"
  "One recvfrom(2), the sender's octets into OCTETS: count + truncated-p * 2^32 + port * 2^33, or NIL."
  :env t)
(define-primitive send-message (handle buffers address port scope fds credentials flags
                                       deadline socket)
  "netsys_send_message"
  "One sendmsg(2) of the octet vectors BUFFERS with ancillary data: the count, or NIL.")
(define-primitive recv-message (handle buffers control-size flags deadline socket)
  "netsys_recv_message"
  "One recvmsg(2) into BUFFERS: (count msg-flags sender ancillary), or NIL.")
(define-primitive libuv-version () "netsys_libuv_version"
  "The version of the libuv net is linked with, a string.")
(define-primitive ip-parse-text (text) "netsys_ip_parse_text"
  "Parse an IP literal strictly: (octets . scope-id), or a string saying what is wrong.")
(define-primitive ip-format (octets scope) "netsys_ip_format"
  "The text of OCTETS (4 or 16) and SCOPE: dotted quad, or RFC 5952 for IPv6.")
(define-primitive lookup-host (name family) "netsys_lookup_host"
  "getaddrinfo for FAMILY 0, 4 or 6: (canonical-name (octets . scope) ...), or a string saying why NAME is invalid.")
(define-primitive lookup-address (octets scope address) "netsys_lookup_address"
  "getnameinfo with NI_NAMEREQD: the host name of an address.")
(define-primitive lookup-service (service protocol) "netsys_lookup_service"
  "getservbyname_r or getservbyport_r: (port . name).")
(define-primitive lookup-protocol (protocol) "netsys_lookup_protocol"
  "getprotobyname_r or getprotobynumber_r: (number . name).")
(define-primitive resolver-strerror (code) "netsys_resolver_strerror"
  "gai_strerror's message for resolver error CODE.")

;;; Socket options and multicast (src/c/net/ecl/options.c, multicast.c).
(define-primitive sockopt-int (handle level name socket) "netsys_sockopt_int"
  "getsockopt(2) of an int option.")
(define-primitive set-sockopt-int (handle level name value socket) "netsys_set_sockopt_int"
  "setsockopt(2) of an int option to VALUE, a (signed-byte 32).")
(define-primitive sockopt-usec (handle level name socket) "netsys_sockopt_usec"
  "getsockopt(2) of a struct timeval option, in microseconds.")
(define-primitive set-sockopt-usec (handle level name usec socket) "netsys_set_sockopt_usec"
  "setsockopt(2) of a struct timeval option to USEC microseconds.")
(define-primitive sockopt-linger (handle socket) "netsys_sockopt_linger"
  "SO_LINGER: NIL when off, else its seconds.")
(define-primitive set-sockopt-linger (handle seconds socket) "netsys_set_sockopt_linger"
  "Set SO_LINGER to SECONDS, or off for NIL.")
(define-primitive sockopt-raw (handle level name buffer start end socket) "netsys_sockopt_raw"
  "getsockopt(2) into BUFFER[START,END); returns the length written.")
(define-primitive set-sockopt-raw (handle level name buffer start end socket) "netsys_set_sockopt_raw"
  "setsockopt(2) from BUFFER[START,END).")
(define-primitive peer-credentials (handle socket) "netsys_peer_credentials"
  "SO_PEERCRED of a Unix-domain socket: (pid uid gid) of its peer.")
(define-primitive tcp-info (handle socket) "netsys_tcp_info"
  "TCP_INFO as a list of integers in struct tcp_info's order.")
(define-primitive tcp-idle-ms (handle) "netsys_tcp_idle_ms"
  "Milliseconds since data last went either way on a TCP connection (TCP_INFO's
last_data_sent and last_data_recv, the lesser), a fixnum; NIL when not TCP or
closed.  Conses nothing and signals nothing.")
(define-primitive option-constants () "netsys_option_constants"
  "The system's option constants, a list of (\"NAME\" . value).")
(define-primitive multicast-membership (handle family join group ifaddr ifindex source socket)
  "netsys_multicast_membership"
  "Join (JOIN true) or leave GROUP; FAMILY 4 or 6; IFADDR and SOURCE octets or NIL.")
(define-primitive multicast-interface-v4 (handle ifaddr ifindex socket) "netsys_multicast_interface_v4"
  "IP_MULTICAST_IF by interface address octets (or NIL) and index.")
(define-primitive interface-index (name) "netsys_interface_index"
  "The index of the network interface NAME, or NIL.")

;;; Constants of the C headers, read once at load time.
(macrolet ((define-c-constants (&rest pairs)
             `(progn
                ,@(loop for (name c) on pairs by #'cddr
                        collect `(defparameter ,name
                                   (ffi:c-inline () () :int ,c :one-liner t)))
                (eval-when (:compile-toplevel :load-toplevel :execute)
                  ;; so that files compiled later know them as special
                  (proclaim '(special ,@(loop for (name) on pairs by #'cddr collect name)))
                  (export ',(loop for (name) on pairs by #'cddr collect name))))))
  (define-c-constants
    +af-inet+ "AF_INET" +af-inet6+ "AF_INET6" +af-unix+ "AF_UNIX"
    +sock-stream+ "SOCK_STREAM" +sock-dgram+ "SOCK_DGRAM"
    +sock-seqpacket+ "SOCK_SEQPACKET" +sock-raw+ "SOCK_RAW"
    +msg-oob+ "MSG_OOB" +msg-peek+ "MSG_PEEK" +somaxconn+ "SOMAXCONN"
    +msg-trunc+ "MSG_TRUNC" +msg-ctrunc+ "MSG_CTRUNC" +msg-eor+ "MSG_EOR"
    ;; errno values, by name: conditions carry them in their ERRNO slot.
    +eagain+ "EAGAIN" +ewouldblock+ "EWOULDBLOCK" +eintr+ "EINTR"
    +einprogress+ "EINPROGRESS" +etimedout+ "ETIMEDOUT"))

;;; A bit of the FLAGS of SEND, RECV and SEND-TO above the MSG_* flags.
(defconstant +return-error+ (ash 1 32)
  "In the FLAGS of SEND, RECV or SEND-TO: a failure is returned as its
negative code instead of signalled (NETSYS_RETURN_ERROR of the glue).")
(eval-when (:compile-toplevel :load-toplevel :execute) (export '+return-error+))

;;; Network interfaces (src/c/net/ecl/interface.c).
(define-primitive interfaces () "netsys_interfaces"
  "getifaddrs(3): (name index flags) per interface and (name index flags octets prefix other-kind other scope) per IP address.")
(define-primitive interface-name (index) "netsys_interface_name"
  "if_indextoname(3): the name of the interface of INDEX, or NIL.")

;;; Descriptors: dup, detach, connected (src/c/net/ecl/handle.c).
(define-primitive handle-dup (handle socket) "netsys_handle_dup"
  "A new handle owning a close-on-exec dup(2) of HANDLE's descriptor.")
(define-primitive handle-detach (handle socket) "netsys_handle_detach"
  "Mark HANDLE closed without closing its descriptor; returns the descriptor.")
(define-primitive socket-connected (handle socket) "netsys_socket_connected"
  "T if the socket of HANDLE has a peer (getpeername(2) succeeds); NIL if not, or closed.")
;;; The threaded server's pool (src/c/net/ecl/pool.c).
(define-primitive pool-new (threads queue) "netsys_pool_new"
  "A hand-off of accepted descriptors to at most THREADS worker threads, at
most QUEUE of them queued beyond what idle or unstarted workers take.")
(define-primitive handle-spare () "netsys_handle_spare"
  "A socket handle owning no descriptor yet: POOL-ACCEPT's SPARE.")
(define-primitive pool-accept (pool handle deadline socket may-refuse spare) "netsys_pool_accept"
  "Accept a connection on HANDLE (waiting until DEADLINE) and queue it on
POOL: 0, or 1 when a worker should be started for it.  Refused (MAY-REFUSE
and the queue full) or POOL stopped: SPARE owns the descriptor, and the
result is (T . peer) or (NIL).  NIL if non-blocking and none is pending.")
(define-primitive pool-take (pool done) "netsys_pool_take"
  "Count a connection handled if DONE, then wait for a queued one: a new
handle owning it, or NIL once POOL stops.  Lisp interrupts run while waiting.")
(define-primitive pool-done (pool) "netsys_pool_done"
  "Count a connection handled.")
(define-primitive pool-error (pool) "netsys_pool_error"
  "Count a handler that failed.")
(define-primitive pool-wait-room (pool) "netsys_pool_wait_room"
  "Wait until POOL-ACCEPT would queue rather than refuse: T, or NIL once POOL stops.")
(define-primitive pool-stop (pool) "netsys_pool_stop"
  "Stop POOL: waits end, queued connections are reset.  Their number, or NIL
if POOL was stopped already.")
(define-primitive pool-statistics (pool) "netsys_pool_statistics"
  "(accepted handled refused active queued started errors) of POOL.")
;;; The event loop (src/c/net/ecl/loop.c).
(define-primitive loop-new () "netsys_loop_new"
  "A new libuv loop whose callbacks only record events: a loop pointer object.")
(define-primitive loops-finalized () "netsys_loops_finalized"
  "(COLLECTED . LEFT): event loops freed by their finalizer, and those it had
to leave: a host lookup was running, or the loop's thread was closing a
watched socket at that moment.")
(define-primitive loop-close (loop) "netsys_loop_close"
  "Free LOOP (its watchers and timers freed first); T, or NIL if it was freed already.")
(define-primitive loop-pass (loop wait-ms vector) "netsys_loop_pass"
  "Wait up to WAIT-MS ms (-1 forever, 0 not) with interrupts able to run, run libuv once and copy the events recorded into VECTOR as LOOP-TAKE does; their count (LOOP-TAKE takes the rest when VECTOR was filled)."
  :env t)
(define-primitive loop-take (loop vector) "netsys_loop_take"
  "Copy recorded events into VECTOR, a (simple-array fixnum (*)), as id, events pairs; the number of events.")
(define-primitive loop-wake (loop) "netsys_loop_wake"
  "Wake LOOP from any thread (coalesced).")
(define-primitive loop-stop (loop) "netsys_loop_stop"
  "Ask LOOP to stop, from any thread, and wake it.")
(define-primitive loop-go-on (loop) "netsys_loop_go_on"
  "After a pass of RUN-EVENT-LOOP: true unless LOOP-STOP was called (the
request is taken) or LOOP watches nothing any more (see LOOP-ALIVE).")
(define-primitive loop-alive (loop) "netsys_loop_alive"
  "True while LOOP watches something (an active watcher, timer or lookup).")
(define-primitive watch-start (loop handle id events socket) "netsys_watch_start"
  "Watch the fd of HANDLE for the event mask EVENTS under ID: a watch pointer object.")
(define-primitive watch-set-events (watch events socket) "netsys_watch_set_events"
  "Change the event mask of WATCH (0: none, still registered).")
(define-primitive watch-attached (watch) "netsys_watch_attached"
  "NIL once the socket of WATCH was closed on the loop's thread (a closed event is then queued).")
(define-primitive watch-free (watch) "netsys_watch_free"
  "Stop and free WATCH, letting go of its fd; idempotent.")
(define-primitive timer-start (loop id ms repeat-ms) "netsys_timer_start"
  "A timer recording a timer event under ID after MS ms, then every REPEAT-MS (0: once).")
(define-primitive timer-active (timer) "netsys_timer_active"
  "True while TIMER will fire again.")
(define-primitive timer-free (timer) "netsys_timer_free"
  "Stop and free TIMER; idempotent.")
(define-primitive lookup-start (loop id name family) "netsys_lookup_start"
  "Start getaddrinfo of NAME on libuv's thread pool: a lookup pointer, or a string saying why NAME is invalid.")
(define-primitive lookup-result (lookup) "netsys_lookup_result"
  "The result of a finished lookup: (canonical-name (octets . scope) ...), or its negative resolver code.")
(define-primitive lookup-free (lookup) "netsys_lookup_free"
  "Free LOOKUP, cancelling it if still running; idempotent.")
(define-primitive signal-start (loop id signum) "netsys_signal_start"
  "Record a signal event under ID whenever SIGNUM arrives: a signal pointer, or NIL if another handler owns SIGNUM.")
(define-primitive signal-free (signal) "netsys_signal_free"
  "Stop and free a signal watcher; idempotent.")

;;; A slot of a CLOS instance by location, for net's per-call path: one
;;; load.  SI:INSTANCE-REF is a checked C call even at safety 0.  The
;;; caller guarantees that OBJECT is an instance with a slot at LOCATION
;;; (the per-class cache of socket.lsp is also the type check).
(defmacro %instance-slot (object location)
  `(ffi:c-inline (,object ,location) (:object :fixnum) :object
                 "(#0)->instance.slots[#1]" :one-liner t :side-effects nil))
(eval-when (:compile-toplevel :load-toplevel :execute) (export '%instance-slot))

(defmacro %instance-class-is (object class)
  "True if OBJECT is an instance (or structure) whose class is CLASS: two
loads and compares, where TYPEP of a structure type is a call."
  `(ffi:c-inline (,object ,class) (:object :object) :bool
                 "(ECL_INSTANCEP(#0) && (#0)->instance.clas == (#1))" :one-liner t :side-effects nil))
(eval-when (:compile-toplevel :load-toplevel :execute) (export '%instance-class-is))

;;; The class of OBJECT, an instance: one load, where SI:INSTANCE-CLASS is
;;; a C call.
(defmacro %instance-class (object)
  `(ffi:c-inline (,object) (:object) :object "(#0)->instance.clas" :one-liner t :side-effects nil))
(eval-when (:compile-toplevel :load-toplevel :execute) (export '%instance-class))

;;; The length of OBJECT (a variable) if it is a vector of (unsigned-byte
;;; 8), else -1: a type test and a load, where TYPEP of that array type is
;;; a call of CL:TYPEP.
(eval-when (:compile-toplevel :load-toplevel :execute)
  (defparameter +octet-vector-test+
    "(ecl_t_of(#0) == t_vector && (#0)->vector.elttype == ecl_aet_b8)"
    "The C test of %OCTETS-LENGTH and %OCTET-ARRAY-P: a vector of (unsigned-byte 8)."))

(defmacro %octets-length (object)
  (check-type object symbol)
  `(ffi:c-inline (,object) (:object) :fixnum
                 ,(format nil "(~a ? (cl_fixnum) (#0)->vector.fillp : -1)" +octet-vector-test+)
                 :one-liner t :side-effects nil))
(eval-when (:compile-toplevel :load-toplevel :execute) (export '%octets-length))

;;; Net's functions with keyword arguments that run once per operation
;;; (RECEIVE, SEND, QUEUE-SEND...) are a keyword front over a positional
;;; function; a compiler macro turns a call whose keywords are literal into
;;; a direct call of the positional one, so that no keyword is parsed per
;;; call.  Any other call (APPLY, keywords computed at run time,
;;; :ALLOW-OTHER-KEYS) goes through the front, which checks them.
(eval-when (:compile-toplevel :load-toplevel :execute)
  (defun %positional-call (form positional n-required keys args &optional trim)
    "The expansion of FORM, a call with ARGS, into a call of POSITIONAL
with the N-REQUIRED arguments then the value of each of KEYS ((keyword
default) entries) in order, or FORM itself when its keywords are not all
literal, known and distinct.  The arguments are evaluated once, in the
order written.  TRIM: POSITIONAL takes KEYS as optional arguments with
the same defaults, and the trailing ones the call does not give are left
out (a call with fewer arguments is cheaper from code compiled outside
net: no trampoline)."
    (let ((given (nthcdr n-required args)))
      (if (or (< (length args) n-required)
              (oddp (length given))
              (loop for (k) on given by #'cddr
                    thereis (or (not (assoc k keys)) (> (count k given :test #'eq) 1))))
          form
          (let* ((temps (loop repeat (length args) collect (gensym "ARG")))
                 (key-temps (nthcdr n-required temps)))
            `(let ,(mapcar #'list temps args)
               (declare (ignorable ,@temps))
               (,positional
                ,@(subseq temps 0 n-required)
                ,@(let ((values (loop for (k default) in keys
                                      collect (let ((p (loop for (g) on given by #'cddr
                                                             for i from 1 by 2
                                                             when (eq g k) return i)))
                                                (if p (nth p key-temps) (list default))))))
                    ;; A default is (DEFAULT) here, a given value its temp.
                    (when trim
                      (loop while (and values (consp (car (last values))))
                            do (setf values (butlast values))))
                    (mapcar (lambda (v) (if (consp v) (car v) v)) values)))))))))
(eval-when (:compile-toplevel :load-toplevel :execute) (export '%positional-call))

(defmacro %define-positional (name positional n-required keys &optional trim)
  "Give NAME, a function of N-REQUIRED arguments and the keyword arguments
KEYS ((keyword default) entries, defaults constant), a compiler macro that
calls POSITIONAL instead when the keywords of a call are literal.  TRIM:
POSITIONAL's arguments after the required ones are optional, with KEYS's
defaults, and a call leaves out the trailing ones not given."
  `(define-compiler-macro ,name (&whole form &rest args)
     (%positional-call form ',positional ,n-required ',keys args ,trim)))
(eval-when (:compile-toplevel :load-toplevel :execute) (export '%define-positional))

;;; ECL inlines a function declared INLINE only in the file defining it: a
;;; call from another of net's files is a full call through
;;; ECL_FUNCTION_DISPATCH.  %DEFUN-INLINE also gives the function a
;;; compiler macro, at compile time only, that expands a call into the
;;; function's lambda: net's later files inline it too, user code compiled
;;; against net.fas calls it.
(defmacro %defun-inline (name lambda-list &body body)
  "DEFUN of NAME, inline in this file and in net's files compiled after it.
LAMBDA-LIST has required arguments only."
  `(progn
     (declaim (inline ,name))
     (defun ,name ,lambda-list ,@body)
     (eval-when (:compile-toplevel)
       (define-compiler-macro ,name (&whole form &rest args)
         (if (= (length args) ,(length lambda-list))
             (list* (list* 'lambda ',lambda-list ',(if (stringp (first body)) (rest body) body))
                    args)
             form)))))
(eval-when (:compile-toplevel :load-toplevel :execute) (export '%defun-inline))

;;; Octet vectors on the stream path (stream.lsp): a type test that is one
;;; tag and one field compare (TYPEP of a DEFTYPE is a call into ECL's type
;;; system, thousands of instructions), and a copy that is one memmove.
(defmacro %octet-array-p (object)
  "True if OBJECT is a vector of (UNSIGNED-BYTE 8), simple or not."
  `(ffi:c-inline (,object) (:object) :bool ,+octet-vector-test+
                 :one-liner t :side-effects nil))
(defmacro %copy-octets (to to-start from from-start count)
  "Copy COUNT octets from FROM at FROM-START to TO at TO-START (octet
vectors, ranges checked by the caller; they may overlap)."
  `(ffi:c-inline (,to ,to-start ,from ,from-start ,count) (:object :fixnum :object :fixnum :fixnum)
                 :void "memmove((#0)->vector.self.b8 + (#1), (#2)->vector.self.b8 + (#3), (#4))"
                 :one-liner t))
(eval-when (:compile-toplevel :load-toplevel :execute) (export '(%octet-array-p %copy-octets)))

