/* version.c -- versions of net and of the libuv it runs on. */
#include "net.h"

#include <uv.h>

const char *net_libuv_version(void) {
  return uv_version_string();
}
