/* ecl.h -- stands in for ECL's header when the C core is compiled.
 *
 * The core (src/c/net/*.c) is plain C over BSD sockets and libuv, tested
 * without Lisp; only the glue (src/c/net/ecl/) may include ECL.  The core is
 * compiled with this directory first on the include path, so a core file
 * that includes <ecl/ecl.h> stops the build here. */
#error "the C core of net must not include ECL's headers: move this code to src/c/net/ecl/"
