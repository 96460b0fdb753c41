/* embed.c -- initialising net in a C program that embeds ECL (libnet.a only). */
#include "net-ecl.h"

void net_ecl_init(void) {
  ecl_init_module(NULL, init_lib_NET);
}
