;;; net.asd -- lets ASDF load the installed net (and link it into programs
;;; built with asdf:make-build), like ECL's own contrib modules.
(defsystem "net" :class asdf::prebuilt-system
  :lib #P"SYS:LIBNET.A"
  :depends-on nil
  :components ((:compiled-file "net" :pathname #P"SYS:NET.FAS")))
