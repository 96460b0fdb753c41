/* net-ecl.h -- embedding net in a C program that boots ECL and links libnet.a.
 *
 *   cl_boot(argc, argv);
 *   net_ecl_init();          // as (require :net) would, from the static library
 *   ... cl_eval / cl_funcall on the NET package ...
 *   cl_shutdown();
 *
 * Link with: libnet.a $(pkg-config --libs libuv) $(ecl-config --libs)
 */
#ifndef NET_ECL_H
#define NET_ECL_H

#include <ecl/ecl.h>
#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The init function of net's Lisp code in libnet.a. */
extern ECL_DLLEXPORT void init_lib_NET(cl_object block);

/* Loads net into the running ECL (after cl_boot) and marks the module as
 * provided, so that a later (require :net) does nothing. */
void net_ecl_init(void);

#ifdef __cplusplus
}
#endif

#endif /* NET_ECL_H */
