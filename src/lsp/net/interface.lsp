;;;; interface.lsp -- the network interfaces, their flags and addresses: getifaddrs.

(in-package "NET")

(defstruct (interface-address (:constructor %make-interface-address
                                  (address prefix-length broadcast destination))
                              (:copier nil) (:predicate nil))
  "One IP address of a network interface, with its network's prefix length
and, where the interface has them, its broadcast address or (point-to-point
links) the address of the other end."
  (address nil :read-only t)
  (prefix-length 0 :type fixnum :read-only t)
  (broadcast nil :read-only t)
  (destination nil :read-only t))

(defstruct (network-interface (:constructor %make-network-interface (name index flags addresses))
                              (:copier nil) (:predicate nil))
  "A network interface of this host (in this network namespace): its name,
index, flags and IP addresses, as LIST-NETWORK-INTERFACES found them."
  (name "" :type string :read-only t)
  (index 0 :read-only t)
  (flags '() :type list :read-only t)
  (addresses '() :type list :read-only t))

(setf (documentation 'interface-address-address 'function)
      "The IP address (an IPV4-ADDRESS or IPV6-ADDRESS; IPv6 link-local addresses carry their scope id) of an INTERFACE-ADDRESS."
      (documentation 'interface-address-prefix-length 'function)
      "The length in bits of the network prefix of an INTERFACE-ADDRESS: 8 for 127.0.0.1/8, 128 for ::1/128."
      (documentation 'interface-address-broadcast 'function)
      "The broadcast address of an IPv4 INTERFACE-ADDRESS on an interface with the :BROADCAST flag, else NIL."
      (documentation 'interface-address-destination 'function)
      "The address of the other end of a point-to-point link, for an INTERFACE-ADDRESS of an interface with the :POINT-TO-POINT flag that has one, else NIL."
      (documentation 'network-interface-name 'function)
      "The name of a NETWORK-INTERFACE, a string such as \"lo\" or \"eth0\"."
      (documentation 'network-interface-index 'function)
      "The index of a NETWORK-INTERFACE (positive, as IPv6 scope ids and multicast calls use it)."
      (documentation 'network-interface-flags 'function)
      "The flags of a NETWORK-INTERFACE, a list of keywords among :UP :BROADCAST :DEBUG
:LOOPBACK :POINT-TO-POINT :NO-TRAILERS :RUNNING :NO-ARP :PROMISCUOUS
:ALL-MULTICAST :MASTER :SLAVE :MULTICAST :PORT-SELECT :AUTOMEDIA :DYNAMIC
:LOWER-UP :DORMANT (the IFF_ flags of netdevice(7))."
      (documentation 'network-interface-addresses 'function)
      "The IP addresses of a NETWORK-INTERFACE, a list of INTERFACE-ADDRESS
structures, IPv4 ones first, in the system's order.")

(defun interface-address-netmask (interface-address)
  "The netmask of INTERFACE-ADDRESS as an address of its family: 255.0.0.0
for a prefix length of 8, ffff:ffff:ffff:ffff:: for 64."
  (let* ((a (interface-address-address interface-address))
         (bits (if (ipv4-address-p a) 32 128))
         (n (interface-address-prefix-length interface-address)))
    (ensure-address (ash (1- (ash 1 n)) (- bits n))
                    :address-family (address-family a))))

(defmethod print-object ((i network-interface) stream)
  (print-unreadable-object (i stream)
    (format stream "NETWORK-INTERFACE ~a ~d ~s" (network-interface-name i) (network-interface-index i)
            (network-interface-flags i))))

(defmethod print-object ((a interface-address) stream)
  (print-unreadable-object (a stream)
    (format stream "INTERFACE-ADDRESS ~a/~d~@[ broadcast ~a~]~@[ peer ~a~]"
            (address-string (interface-address-address a))
            (interface-address-prefix-length a)
            (let ((b (interface-address-broadcast a))) (and b (address-string b)))
            (let ((d (interface-address-destination a))) (and d (address-string d))))))

(defun %interface-address (octets prefix kind other scope)
  (let ((other (and other (%make-inet-address other))))
    (%make-interface-address (%make-inet-address octets scope) prefix
                             (and (eq kind :broadcast) other)
                             (and (eq kind :destination) other))))

(defun list-network-interfaces ()
  "A fresh list of the host's network interfaces (those of the calling
thread's network namespace), as NETWORK-INTERFACE structures in the order
of getifaddrs(3) (on Linux, by index): each with its name, index, flags and
IP addresses.  An interface that is down or has no address is listed too.
A snapshot: interfaces and addresses may change afterwards."
  (let ((interfaces '()))
    ;; Rows come interface by interface first, then address by address.  An
    ;; address of an alias label ("eth0:1") has its interface's index, and
    ;; goes with it.
    (dolist (row (net-sys:interfaces))
      (destructuring-bind (name index flags &optional octets prefix kind other scope) row
        (let ((i (find-if (lambda (i) (if (plusp index)
                                          (eql index (second i))
                                          (string= name (first i))))
                          interfaces)))
          (unless i
            (setf i (list name index flags '()))
            (push i interfaces))
          (when octets
            (push (%interface-address octets prefix kind other scope) (fourth i))))))
    (loop for (name index flags addresses) in (nreverse interfaces)
          collect (%make-network-interface
                   name index flags
                   (stable-sort (nreverse addresses) #'<
                                :key (lambda (a)
                                       (if (ipv4-address-p (interface-address-address a)) 0 1)))))))

(defun interface-name (index)
  "The name of the network interface of INDEX (a non-negative integer), a
string, or NIL if there is none; INTERFACE-INDEX goes the other way."
  (net-sys:interface-name index))
