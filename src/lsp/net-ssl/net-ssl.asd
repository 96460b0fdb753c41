;;;; net-ssl.asd -- cl+ssl over net's stream sockets: load this system (or
;;;; (require :net-ssl)) and cl+ssl's streams over a net socket let OpenSSL
;;;; read and write the socket's descriptor itself, waiting through net.

;; A NET already loaded (by REQUIRE, or from a build tree) is the one used:
;; ASDF must not load the installed net.fas over it.
(when (find-package "NET")
  (asdf:register-immutable-system "net"))

(asdf:defsystem "net-ssl"
  :description "cl+ssl over net's stream sockets, on the socket's descriptor."
  :depends-on ("net" "cl+ssl")
  :components ((:file "ssl" :type "lsp")))
