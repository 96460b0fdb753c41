/* multicast.c -- glue for multicast memberships and interfaces. */
#include "netsys.h"

#include <string.h>

/* The octets of an address vector of exactly N octets, or NULL for NIL. */
static const uint8_t *group_octets(cl_object v, size_t n) {
  size_t len;
  const uint8_t *p;
  if (Null(v))
    return NULL;
  p = netsys_octets(v, ECL_NIL, ECL_NIL, &len);
  if (len != n)
    netsys_type_error(v, n == 4 ? "(VECTOR (UNSIGNED-BYTE 8) 4)" : "(VECTOR (UNSIGNED-BYTE 8) 16)");
  return p;
}

/* FAMILY 4 or 6; JOIN true joins, NIL leaves; IFADDR, SOURCE may be NIL. */
cl_object netsys_multicast_membership(cl_object handle, cl_object family, cl_object join,
                                      cl_object group, cl_object ifaddr, cl_object ifindex,
                                      cl_object source, cl_object sock) {
  int v6 = ecl_eql(family, ecl_make_fixnum(6));
  size_t n = v6 ? 16 : 4;
  const uint8_t *g = group_octets(group, n), *s = group_octets(source, n);
  const uint8_t *a = group_octets(ifaddr, 4);
  int idx = NETSYS_INDEX(ifindex), fd, r;
  const char *call = Null(join) ? "setsockopt (leave group)" : "setsockopt (join group)";
  if (!g)
    netsys_type_error(group, v6 ? "(VECTOR (UNSIGNED-BYTE 8) 16)" : "(VECTOR (UNSIGNED-BYTE 8) 4)");
  fd = netsys_fd_enter(handle, call, sock);
  r = net_multicast_membership(fd, v6 ? AF_INET6 : AF_INET, !Null(join), g, a, idx, s);
  netsys_fd_leave(handle);
  return netsys_check(r, call, sock);
}

cl_object netsys_multicast_interface_v4(cl_object handle, cl_object ifaddr, cl_object ifindex,
                                        cl_object sock) {
  const uint8_t *a = group_octets(ifaddr, 4);
  int idx = NETSYS_INDEX(ifindex), fd, r;
  fd = netsys_fd_enter(handle, "setsockopt", sock);
  r = net_multicast_interface_v4(fd, a, idx);
  netsys_fd_leave(handle);
  return netsys_check(r, "setsockopt", sock);
}

/* The index of the interface NAME (a string), or NIL if there is none. */
cl_object netsys_interface_index(cl_object name) {
  int r;
  if (!ecl_stringp(name))
    netsys_type_error(name, "STRING");
  name = si_coerce_to_base_string(name);
  if (Null(name) || name->base_string.fillp >= 64)
    return ECL_NIL;
  {
    char buf[64];
    memcpy(buf, name->base_string.self, name->base_string.fillp);
    buf[name->base_string.fillp] = 0;
    if (strlen(buf) != name->base_string.fillp)
      return ECL_NIL;
    r = net_interface_index(buf);
  }
  return r < 0 ? ECL_NIL : ecl_make_fixnum(r);
}
