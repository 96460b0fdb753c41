/* address.c -- glue for parsing and printing IP address text. */
#include "netsys.h"

#include <string.h>

cl_object netsys_octet_vector(const uint8_t *octets, int n) {
  /* Straight to the allocator: no symbol looked up per vector. */
  cl_object v = ecl_alloc_simple_vector((cl_index) n, ecl_aet_b8);
  memcpy(v->vector.self.b8, octets, (size_t) n);
  return v;
}

/* A Lisp string as C text: a base string, or NULL when it holds a
 * character outside Latin-1 (never valid in an address or a name). */
cl_object netsys_base_string(cl_object text) {
  cl_index i, n;
  if (!ecl_stringp(text))
    netsys_type_error(text, "STRING");
  n = ecl_length(text);
  for (i = 0; i < n; i++)
    if (ecl_char_code(ecl_aref1(text, i)) > 255)
      return ECL_NIL;
  return si_coerce_to_base_string(text);
}

cl_object netsys_ip_parse_text(cl_object text) {
  uint8_t oct[16];
  uint32_t scope;
  const char *why;
  int n;
  cl_object base = netsys_base_string(text);
  if (Null(base))
    return ecl_make_simple_base_string("the text contains a non-ASCII character", -1);
  n = net_ip_parse_why((const char *) base->base_string.self, base->base_string.fillp, oct,
                       &scope, &why);
  if (n < 0)
    return ecl_make_simple_base_string(why, -1);
  return ecl_cons(netsys_octet_vector(oct, n), ecl_make_fixnum(scope));
}

cl_object netsys_ip_format(cl_object octets, cl_object scope) {
  char buf[NET_IP_STRLEN];
  size_t n;
  uint8_t *p = netsys_octets(octets, ECL_NIL, ECL_NIL, &n);
  int k = net_ip_format(p, n, (uint32_t) NETSYS_INDEX(scope), buf, sizeof(buf));
  if (k < 0)
    netsys_type_error(octets, "(OR (VECTOR (UNSIGNED-BYTE 8) 4) (VECTOR (UNSIGNED-BYTE 8) 16))");
  return ecl_make_simple_base_string(buf, k);
}
