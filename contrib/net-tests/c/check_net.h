/* check_net.h -- the Check suites of net's C core, one per src/c/net file. */
#ifndef CHECK_NET_H
#define CHECK_NET_H

#include <check.h>
#include "net.h"

Suite *error_suite(void);
Suite *address_suite(void);
Suite *resolver_suite(void);
Suite *socket_suite(void);
Suite *handle_suite(void);
Suite *io_suite(void);
Suite *local_suite(void);
Suite *loop_suite(void);
Suite *message_suite(void);
Suite *options_suite(void);
Suite *multicast_suite(void);
Suite *interface_suite(void);
Suite *wait_suite(void);
Suite *pool_suite(void);

/* A TCP listener on 127.0.0.1 (or ::1 when V6), port chosen by the kernel;
 * returns the fd and fills ADDR with its address. */
int check_listener(int v6, net_sockaddr *addr);
/* A connected pair over loopback TCP: fills FDS[0] (client) and FDS[1]. */
void check_tcp_pair(int v6, int fds[2]);

#endif
