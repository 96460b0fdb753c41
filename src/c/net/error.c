/* error.c -- names and descriptions of net's error codes, from errors.def. */
#include "net.h"

#include <string.h>

struct net_err_entry {
  int code;
  const char *name;
  const char *lisp_class;
  const char *message;
};

#define NET_ERRNO(name, lisp, parent, msg) {-name, #name, lisp, msg},
#define NET_OWN(name, code, lisp, parent, msg) {code, #name, lisp, msg},
static const struct net_err_entry net__errors[] = {
#include "errors.def"
};
#undef NET_ERRNO
#undef NET_OWN

#define NET__NERRORS ((int) (sizeof(net__errors) / sizeof(net__errors[0])))

static const struct net_err_entry *net__err_find(int code) {
  int i;
  for (i = 0; i < NET__NERRORS; i++)
    if (net__errors[i].code == code)
      return &net__errors[i];
  return NULL;
}

const char *net_err_name(int code) {
  const struct net_err_entry *e = net__err_find(code);
  return e ? e->name : "UNKNOWN";
}

const char *net_err_class(int code) {
  const struct net_err_entry *e = net__err_find(code);
  return e ? e->lisp_class : NULL;
}

const char *net_strerror(int code) {
  const struct net_err_entry *e = net__err_find(code);
  if (e)
    return e->message;
  /* strerror() is not thread-safe in general; glibc's strerrordesc_np is
   * and returns static text. */
  if (code < 0 && code > -4000) {
    const char *s = strerrordesc_np(-code);
    if (s)
      return s;
  }
  return "unknown error";
}

int net_err_count(void) {
  return NET__NERRORS;
}

int net_err_row(int i, const char **lisp_class) {
  if (i < 0 || i >= NET__NERRORS)
    return 0;
  if (lisp_class)
    *lisp_class = net__errors[i].lisp_class;
  return net__errors[i].code;
}
