;;;; net-usocket.asd -- usocket's API running on net: load this system
;;;; (or (require :net-usocket)) and usocket's sockets are net's sockets.
;;;
;;; usocket picks its backend with read-time features and has no backend
;;; registry, so this system loads usocket as packaged and then replaces
;;; every function and method of its ECL backend with one over net (see
;;; backend.lsp and the manual, "Using net from existing libraries").

;; A NET already loaded (by REQUIRE, or from a build tree) is the one used:
;; ASDF must not load the installed net.fas over it.
(when (find-package "NET")
  (asdf:register-immutable-system "net"))

(asdf:defsystem "net-usocket"
  :description "usocket over net: usocket's sockets, streams, waiting and
conditions implemented with net's."
  :depends-on ("net" "usocket")
  :components ((:file "backend" :type "lsp")))
