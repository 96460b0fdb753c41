/* local.c -- Unix-domain socket addresses: file names and abstract names. */
#include "net.h"

#include <stddef.h>
#include <string.h>
#include <sys/un.h>

#define NET__SUN_PATH_SIZE sizeof(((struct sockaddr_un *) 0)->sun_path)

int net_sockaddr_make_local(net_sockaddr *out, const char *path, size_t len, int abstract) {
  struct sockaddr_un *un = (struct sockaddr_un *) &out->u.ss;
  memset(out, 0, sizeof(*out));
  un->sun_family = AF_UNIX;
  if (abstract) {
    /* A leading NUL, then the name; its length is the address's length. */
    if (len + 1 > NET__SUN_PATH_SIZE)
      return NET_ENAMETOOLONG;
    memcpy(un->sun_path + 1, path, len);
    out->len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + len);
    return 0;
  }
  if (len == 0 || memchr(path, '\0', len))
    return NET_EINVAL;
  if (len + 1 > NET__SUN_PATH_SIZE)
    return NET_ENAMETOOLONG;
  memcpy(un->sun_path, path, len);
  out->len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len + 1);
  return 0;
}

int net_sockaddr_split_local(const net_sockaddr *sa, const char **path, size_t *len,
                             int *abstract) {
  const struct sockaddr_un *un = (const struct sockaddr_un *) &sa->u.ss;
  size_t n;
  *path = NULL;
  *len = 0;
  *abstract = 0;
  if (sa->u.sa.sa_family != AF_UNIX)
    return NET_EAFNOSUPPORT;
  if (sa->len <= offsetof(struct sockaddr_un, sun_path))
    return 0; /* unnamed: a socketpair end or an unbound client */
  n = sa->len - offsetof(struct sockaddr_un, sun_path);
  if (n > NET__SUN_PATH_SIZE)
    n = NET__SUN_PATH_SIZE;
  if (un->sun_path[0] == '\0') {
    *abstract = 1;
    *path = un->sun_path + 1;
    *len = n - 1;
  } else {
    *path = un->sun_path;
    *len = strnlen(un->sun_path, n);
  }
  return 1;
}
