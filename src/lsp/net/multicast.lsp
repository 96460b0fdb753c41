;;;; multicast.lsp -- joining and leaving IP multicast groups, IPv4 and IPv6.
;;;
;;; The TTL/hops, loop and outgoing interface of multicast sends are socket
;;; options (options.lsp): :MULTICAST-TTL (IPv4), :MULTICAST-HOPS (IPv6),
;;; :MULTICAST-LOOP, :MULTICAST-INTERFACE and :MULTICAST-ALL.

(in-package "NET")

(defun %multicast-address (socket designator what)
  "DESIGNATOR as an address of SOCKET's family; for WHAT :GROUP a multicast
one, for :SOURCE a unicast one."
  (let ((a (ensure-address designator))
        (family (socket-address-family socket)))
    (unless (if (eq family :ipv4) (ipv4-address-p a) (ipv6-address-p a))
      (error 'invalid-address :text designator
                              :reason (format nil "not an ~a address, as the socket is"
                                              (if (eq family :ipv4) "IPv4" "IPv6"))))
    (unless (eq (and (address-multicast-p a) t) (eq what :group))
      (error 'invalid-address :text designator
                              :reason (if (eq what :group)
                                          "not a multicast group address"
                                          "a multicast address cannot be a source")))
    a))

(defun %multicast-membership (socket join group interface source)
  (let ((family (socket-address-family socket))
        (call (if join 'join-multicast-group 'leave-multicast-group)))
    (unless (and (member family '(:ipv4 :ipv6)) (member (socket-type socket) '(:datagram :raw)))
      (error 'socket-option-not-applicable
             :option call :socket socket
             :reason "multicast needs an IPv4 or IPv6 datagram or raw socket"))
    (let ((g (%multicast-address socket group :group))
          (s (and source (%multicast-address socket source :source))))
      (multiple-value-bind (ifaddr index) (%interface interface family)
        (when (and (null interface) (ipv6-address-p g))
          (setf index (address-scope-id g)))
        (net-sys:multicast-membership (socket-handle socket) (if (eq family :ipv4) 4 6)
                                      join (address-octets g) ifaddr index
                                      (and s (address-octets s)) socket)
        t))))

(defun join-multicast-group (socket group &key interface source)
  "Make datagram SOCKET a member of multicast GROUP (an address designator of
the socket's family), so that it receives what is sent to the group on the
port it is bound to.  INTERFACE selects the interface: NIL lets the system
choose (for IPv6, the group's scope id if it has one), an integer is an
interface index, a string an interface name (\"eth0\") or, for IPv4, an
interface address; an IPv4 address object also works.  SOURCE, an address,
makes the membership source-specific (RFC 4607): only datagrams from SOURCE
are delivered; join once per source to accept several.  Returns T."
  (%multicast-membership socket t group interface source))

(defun leave-multicast-group (socket group &key interface source)
  "Undo the JOIN-MULTICAST-GROUP with the same GROUP, INTERFACE and SOURCE.
Leaving a group that was not joined signals ADDRESS-NOT-AVAILABLE.  Returns T."
  (%multicast-membership socket nil group interface source))
