/* embed.c -- a C program that embeds ECL, links libnet.a statically, and
 * runs a Lisp echo exchange over loopback.
 *
 *   cc embed.c -o embed libnet.a $(pkg-config --libs libuv) $(ecl-config --cflags --libs)
 */
#include <net/net-ecl.h>
#include <stdio.h>
#include <string.h>

static const char *program =
  "(let* ((listener (net:listen-on (net:bind-address (net:make-socket) \"127.0.0.1\")))"
  "       (client (net:make-socket :timeout 5))"
  "       (out (map '(vector (unsigned-byte 8)) #'char-code \"ping from C\"))"
  "       (in (make-array 64 :element-type '(unsigned-byte 8))))"
  "  (unwind-protect"
  "      (progn"
  "        (net:connect client \"127.0.0.1\" :port (net:socket-local-port listener))"
  "        (let ((server (net:accept-connection listener :timeout 5)))"
  "          (net:send client out)"
  "          (let ((n (net:receive server in :timeout 5)))"
  "            (net:send server in :end n))"
  "          (net:close server))"
  "        (map 'string #'code-char (subseq in 0 (net:receive client in :wait-all t"
  "                                                            :end (length out)))))"
  "    (net:close client)"
  "    (net:close listener)))";

int main(int argc, char **argv) {
  cl_object result;
  int ok;
  cl_boot(argc, argv);
  net_ecl_init();
  /* si_safe_eval returns its third argument, here NIL, if the program signals. */
  result = si_safe_eval(3, c_string_to_object(program), ECL_NIL, ECL_NIL);
  ok = ecl_stringp(result) &&
       strcmp((const char *) si_coerce_to_base_string(result)->base_string.self, "ping from C") == 0;
  printf("embed: echo through libnet.a %s\n", ok ? "returned \"ping from C\"" : "FAILED");
  cl_shutdown();
  return ok ? 0 : 1;
}
