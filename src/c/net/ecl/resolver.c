/* resolver.c -- glue for host names, services and protocols.
 *
 * The lookups may wait for the network (DNS) for seconds.  They run with
 * ECL's interrupts disabled: an interrupt that unwound from inside
 * getaddrinfo could leave libc's locks held and its memory leaked.  Results
 * are copied into C arrays on the stack, libc's memory is freed, and only
 * then are Lisp objects made and errors signalled.
 */
#include "netsys.h"

#include <string.h>

/* Printable ASCII without NUL, for service and protocol names; NULL if not. */
static const char *db_name(cl_object name) {
  cl_object base = netsys_base_string(name);
  cl_index i;
  if (Null(base) || base->base_string.fillp == 0 || base->base_string.fillp > 255)
    return NULL;
  for (i = 0; i < base->base_string.fillp; i++) {
    unsigned char c = base->base_string.self[i];
    if (c <= ' ' || c >= 0x7f)
      return NULL;
  }
  return (const char *) base->base_string.self;
}

cl_object netsys__addr_list(const net_ip_addr *a, int n) {
  cl_object list = ECL_NIL;
  while (n-- > 0)
    list = ecl_cons(ecl_cons(netsys_octet_vector(a[n].octets, a[n].len),
                             ecl_make_fixnum(a[n].scope_id)), list);
  return list;
}

cl_object netsys_lookup_host(cl_object name, cl_object family) {
  const cl_env_ptr env = ecl_process_env();
  net_ip_addr out[NET_RESOLVE_MAX];
  char canon[NET_HOST_STRLEN];
  const char *why = NULL;
  int fam = netsys__int(family, 0, 6, "(MEMBER 0 4 6)");
  cl_object base = netsys_base_string(name);
  int n;
  if (Null(base))
    return ecl_make_simple_base_string("the host name contains a non-ASCII character"
                                       " (use the ASCII, punycode form)", -1);
  ecl_disable_interrupts_env(env);
  n = net_resolve_host((const char *) base->base_string.self, base->base_string.fillp, fam,
                       out, NET_RESOLVE_MAX, canon, sizeof(canon), &why);
  ecl_enable_interrupts_env(env);
  if (n == NET_EINVAL && why)
    return ecl_make_simple_base_string(why, -1);
  if (n < 0)
    netsys_raise(n, "getaddrinfo", name);
  return ecl_cons(ecl_make_simple_base_string(canon, -1), netsys__addr_list(out, n));
}

cl_object netsys_lookup_address(cl_object octets, cl_object scope, cl_object address) {
  const cl_env_ptr env = ecl_process_env();
  char host[NET_HOST_STRLEN];
  net_ip_addr a;
  size_t n;
  uint8_t *p = netsys_octets(octets, ECL_NIL, ECL_NIL, &n);
  int r;
  memset(&a, 0, sizeof(a));
  if (n != 4 && n != 16)
    netsys_type_error(octets, "(OR (VECTOR (UNSIGNED-BYTE 8) 4) (VECTOR (UNSIGNED-BYTE 8) 16))");
  memcpy(a.octets, p, n);
  a.len = (int) n;
  a.scope_id = (uint32_t) NETSYS_INDEX(scope);
  ecl_disable_interrupts_env(env);
  r = net_resolve_address(&a, host, sizeof(host));
  ecl_enable_interrupts_env(env);
  if (r < 0)
    netsys_raise(r, "getnameinfo", address);
  return ecl_make_simple_base_string(host, -1);
}

/* (port . name) of a service given by name (a string) or port (an integer);
 * the name is NIL for a port the services database does not name. */
cl_object netsys_lookup_service(cl_object service, cl_object protocol) {
  const cl_env_ptr env = ecl_process_env();
  char name[256];
  const char *proto = db_name(protocol), *text = NULL;
  int port = 0, r;
  if (!proto)
    netsys_type_error(protocol, "(MEMBER \"tcp\" \"udp\" \"sctp\" \"dccp\")");
  if (ECL_FIXNUMP(service))
    port = netsys__int(service, 0, 65535, "(INTEGER 0 65535)");
  else if (!(text = db_name(service)))
    netsys_raise(NET_ESERVICE, "getservbyname", service);
  ecl_disable_interrupts_env(env);
  if (text)
    r = port = net_resolve_service(text, proto, name, sizeof(name));
  else
    r = net_service_name(port, proto, name, sizeof(name));
  ecl_enable_interrupts_env(env);
  if (r == NET_ESERVICE && !text)
    return ecl_cons(ecl_make_fixnum(port), ECL_NIL);
  if (r < 0)
    netsys_raise(r, "getservbyname", service);
  return ecl_cons(ecl_make_fixnum(port), ecl_make_simple_base_string(name, -1));
}

/* (number . name) of a protocol given by name or number. */
cl_object netsys_lookup_protocol(cl_object protocol) {
  const cl_env_ptr env = ecl_process_env();
  char name[256];
  const char *text = NULL;
  int number = 0, r;
  if (ECL_FIXNUMP(protocol))
    number = netsys__int(protocol, 0, 255, "(INTEGER 0 255)");
  else if (!(text = db_name(protocol)))
    netsys_raise(NET_EPROTOCOL, "getprotobyname", protocol);
  ecl_disable_interrupts_env(env);
  if (text)
    r = number = net_resolve_protocol(text, name, sizeof(name));
  else
    r = net_protocol_name(number, name, sizeof(name));
  ecl_enable_interrupts_env(env);
  if (r < 0)
    netsys_raise(r, text ? "getprotobyname" : "getprotobynumber", protocol);
  return ecl_cons(ecl_make_fixnum(number), ecl_make_simple_base_string(name, -1));
}

cl_object netsys_resolver_strerror(cl_object code) {
  int c = netsys__int(code, -4000, 0, "(INTEGER -4000 0)");
  return ecl_make_simple_base_string(net_resolver_strerror(c), -1);
}
