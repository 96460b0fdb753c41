;;; net-ssl.asd -- cl+ssl over net's stream sockets: OpenSSL reads and writes
;;; the socket's descriptor itself, waiting through net when it would block.
;;; Needs NET loaded first (REQUIRE :NET, or net.fas from a build tree).
(defsystem "net-ssl"
  :description "cl+ssl over net's stream sockets, on the socket's descriptor."
  :depends-on ("cl+ssl")
  :components ((:cl-source-file.lsp "net-ssl")))
