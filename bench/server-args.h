/* server-args.h -- the command line of the C reference servers (uv-echo, thread-echo): [--discard | --udp] [PORT]. */
#ifndef BENCH_SERVER_ARGS_H
#define BENCH_SERVER_ARGS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum server_mode { SERVE_ECHO, SERVE_DISCARD, SERVE_UDP };

/* Parse ARGV into *MODE and *PORT; on bad usage print it, naming PROGRAM,
 * and exit with status 2. */
static inline void server_args(int argc, char **argv, const char *program,
                               enum server_mode *mode, int *port) {
  int i = 1;
  *mode = SERVE_ECHO;
  if (i < argc && !strcmp(argv[i], "--discard")) *mode = SERVE_DISCARD, i++;
  else if (i < argc && !strcmp(argv[i], "--udp")) *mode = SERVE_UDP, i++;
  *port = i < argc ? atoi(argv[i]) : 0;
  if (argc > i + 1 || *port < 0 || *port > 65535 || (i < argc && argv[i][0] == '-')) {
    fprintf(stderr, "usage: %s [--discard | --udp] [PORT]   (0 or none: any free port)\n",
            program);
    exit(2);
  }
}

#endif
