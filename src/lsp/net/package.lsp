;;;; package.lsp -- the NET package and its internal primitives, NET-SYS.

(defpackage "NET-SYS"
  (:use "CL")
  (:documentation "Internal primitives of NET: thin calls into the C glue.
Users never need them; the NET package is the API."))

(defpackage "NET"
  (:use "CL")
  ;; One CLOSE for every socket: the Gray streams generic function, which
  ;; CL:CLOSE also calls on socket streams.
  (:shadowing-import-from "GRAY" "CLOSE")
  (:documentation "Networking for ECL: BSD sockets (TCP, UDP, Unix-domain,
IPv4 and IPv6) with conditions, CLOS socket classes and bivalent streams.")
  (:export
   ;; conditions
   "NETWORK-ERROR" "SOCKET-ERROR" "SOCKET-ERROR-ERRNO" "SOCKET-ERROR-SYSCALL"
   "SOCKET-ERROR-SOCKET" "SOCKET-ERROR-MESSAGE" "RESOURCE-EXHAUSTED"
   "INVALID-ADDRESS" "INVALID-ADDRESS-TEXT" "INVALID-ADDRESS-REASON"
   ;; the classes generated from errors.def are exported where defined
   ;; addresses
   "ADDRESS" "IPV4-ADDRESS" "IPV6-ADDRESS" "ENSURE-ADDRESS" "ADDRESS-OCTETS"
   "ADDRESS-STRING" "ADDRESS=" "ADDRESS-SCOPE-ID" "IPV4-ADDRESS-P" "IPV6-ADDRESS-P"
   "LOCAL-ADDRESS" "LOCAL-ADDRESS-P" "MAKE-LOCAL-ADDRESS" "LOCAL-ADDRESS-PATH"
   "LOCAL-ADDRESS-ABSTRACT-P"
   "+IPV4-ANY+" "+IPV4-LOOPBACK+" "+IPV6-ANY+" "+IPV6-LOOPBACK+"
   ;; sockets
   "SOCKET" "INET-SOCKET" "INET6-SOCKET" "LOCAL-SOCKET"
   "STREAM-SOCKET" "DATAGRAM-SOCKET" "PASSIVE-SOCKET"
   "MAKE-SOCKET" "BIND-ADDRESS" "LISTEN-ON" "ACCEPT-CONNECTION" "CONNECT"
   "SHUTDOWN" "CLOSE" "SEND" "RECEIVE"
   "SOCKET-LOCAL-ADDRESS" "SOCKET-LOCAL-PORT" "SOCKET-REMOTE-ADDRESS"
   "SOCKET-REMOTE-PORT" "SOCKET-FD" "SOCKET-OPEN-P" "SOCKET-TIMEOUT-OF"
   "SOCKET-ADDRESS-FAMILY" "SOCKET-TYPE" "SOCKET-BLOCKING-P"
   "WITH-OPEN-SOCKET" "WITH-DEADLINE" "FINALIZED-SOCKET-COUNT"
   ;; streams
   "SOCKET-EXTERNAL-FORMAT" "READ-AVAILABLE"
   "STREAM-DECODING-ERROR" "STREAM-DECODING-ERROR-OCTETS"
   "STREAM-ENCODING-ERROR" "STREAM-ENCODING-ERROR-CHARACTER"
   "STREAM-CODING-ERROR-EXTERNAL-FORMAT"))
