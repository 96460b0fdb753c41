;;;; resolver.lsp -- host names, services and protocols: getaddrinfo and friends.

(in-package "NET")

(defun %family-code (address-family)
  (case address-family
    ((nil) 0)
    (:ipv4 4)
    (:ipv6 6)
    (t (error 'type-error :datum address-family :expected-type '(member nil :ipv4 :ipv6)))))

(defun lookup-host (name &key address-family)
  "Resolve the host NAME (a string) with getaddrinfo and return two values:
a fresh list of every address it has, in getaddrinfo's order (which follows
RFC 6724 preferences) without duplicates, and its canonical name (a string).
ADDRESS-FAMILY :IPV4 or :IPV6 asks for that family only; NIL (the default)
for both.  A numeric NAME (\"127.0.0.1\", \"::1\") or an address object
returns that address without a lookup.

NAME is checked before any call into libc: a string that is empty, too long,
holds a NUL, white space or a non-ASCII character (use the punycode form), or
that libc would read as a lax number (\"1.2.3\", \"0177.0.0.1\", \"0x7f.1\")
signals INVALID-ADDRESS.  A name that does not resolve, or an address (text,
vector or object) of the other family than ADDRESS-FAMILY, signals
HOST-NOT-FOUND; a temporary failure RESOLVER-AGAIN; other failures
RESOLVER-FAILURE (all RESOLVER-ERRORs).  The lookup may wait for the network;
Lisp interrupts are held until it returns."
  (let ((family (%family-code address-family)))
    (etypecase name
      (string (%lookup-name name family))
      ((or address vector) (%lookup-designator name address-family)))))

(defun %lookup-designator (designator address-family)
  (let ((a (ensure-address designator)))
    ;; An address of the other family is a host with no address of the
    ;; family asked for, as getaddrinfo answers for the same text.
    (when (and address-family (not (eq address-family (address-family a))))
      (net-sys::%signal-error -3009 "getaddrinfo" designator)) ; EAI_ADDRFAMILY
    (values (list a) (address-string a))))

(defun %lookup-name (name family)
  (let ((r (net-sys:lookup-host name family)))
    (when (stringp r)
      (%invalid name r))
    (values (loop for (octets . scope) in (cdr r)
                  collect (%make-inet-address octets scope))
            (car r))))

(defun lookup-address (address)
  "The host name of ADDRESS (an IP address designator), by getnameinfo (a
reverse lookup: the hosts file, then DNS PTR records).  Signals
HOST-NOT-FOUND when the address has no name, RESOLVER-AGAIN or
RESOLVER-FAILURE when the lookup fails."
  (let ((a (%inet address)))
    (net-sys:lookup-address (address-octets a) (address-scope-id a) a)))

(defun %db-name (x what)
  "A service or protocol name as a string: strings as they are, symbols
lower-cased (:http -> \"http\")."
  (typecase x
    (string x)
    (symbol (string-downcase (symbol-name x)))
    (t (error 'type-error :datum x :expected-type `(or string symbol ,what)))))

(defun %decimal (string)
  "The value of STRING if it is all decimal digits (a number), else NIL."
  (and (plusp (length string))
       (<= (length string) 10)
       (every #'digit-char-p string)
       (parse-integer string)))

(defun %check-integer-range (n lo hi)
  "N if it is an integer from LO to HI, else a type-error."
  (unless (typep n `(integer ,lo ,hi))
    (error 'type-error :datum n :expected-type `(integer ,lo ,hi)))
  n)

(defun lookup-service (name-or-port &key (protocol :tcp))
  "Look up a service of the services database (/etc/services) for PROTOCOL
(:tcp, the default, :udp, or another protocol name as a keyword or string)
and return two values, its port and its official name.  NAME-OR-PORT is a
service name (\"http\", or a symbol such as :http), a port number (an integer
from 0 to 65535, or a string of digits), and then the name is NIL when the
database names no service on that port.  Signals UNKNOWN-SERVICE for an
unknown name, TYPE-ERROR for a port outside 0-65535."
  (let* ((proto (%db-name protocol 'keyword))
         (service (if (integerp name-or-port)
                      (%check-integer-range name-or-port 0 65535)
                      (let ((s (%db-name name-or-port '(integer 0 65535))))
                        (let ((n (%decimal s)))
                          (if n (%check-integer-range n 0 65535) s)))))
         (r (net-sys:lookup-service service proto)))
    (values (car r) (cdr r))))

(defun lookup-protocol (name-or-number)
  "Look up a protocol of the protocols database (/etc/protocols) and return
two values, its number and its official name: (lookup-protocol :udp) => 17,
\"udp\"; (lookup-protocol 6) => 6, \"tcp\".  NAME-OR-NUMBER is a name (string
or symbol) or a number from 0 to 255 (an integer or a string of digits).
Signals UNKNOWN-PROTOCOL when the database has no such protocol."
  (let ((p (if (integerp name-or-number)
               (%check-integer-range name-or-number 0 255)
               (let* ((s (%db-name name-or-number '(integer 0 255)))
                      (n (%decimal s)))
                 (if n (%check-integer-range n 0 255) s)))))
    (let ((r (net-sys:lookup-protocol p)))
      (values (car r) (cdr r)))))

(defun %protocol-number (protocol)
  "The protocol number MAKE-SOCKET passes to socket(2): 0 for :DEFAULT, an
integer as it is, a name by LOOKUP-PROTOCOL; the usual names need no
protocols database (containers often lack /etc/protocols)."
  (case protocol
    (:default 0) (:icmp 1) (:tcp 6) (:udp 17) (:icmpv6 58) (:sctp 132) (:udplite 136)
    ((nil) (error 'type-error :datum protocol
                              :expected-type '(or (member :default) (integer 0 255) string keyword)))
    (t (values (lookup-protocol protocol)))))
