;;;; net-hunchentoot.asd -- Hunchentoot over net: its acceptors serve on
;;;; net's sockets (through net-usocket), HTTPS through net-ssl.

;; A NET already loaded (by REQUIRE, or from a build tree) is the one used:
;; ASDF must not load the installed net.fas over it.
(when (find-package "NET")
  (asdf:register-immutable-system "net"))

(asdf:defsystem "net-hunchentoot"
  :description "Hunchentoot over net: usocket and cl+ssl on net's sockets,
and Hunchentoot's socket timeouts as net's."
  :depends-on ("net" "net-usocket" "net-ssl" "hunchentoot")
  :components ((:file "hunchentoot" :type "lsp")))
