/* check_glue.h -- the Check suites of net's ECL glue, one per src/c/net/ecl file. */
#ifndef CHECK_GLUE_H
#define CHECK_GLUE_H

#include <check.h>
#include "netsys.h"

Suite *glue_error_suite(void);
Suite *glue_sockaddr_suite(void);
Suite *glue_address_suite(void);

/* The checked fixture of every glue test case: boots ECL in the forked
 * child before the test, shuts it down after.  It also defines a stand-in
 * for NET-SYS::%SIGNAL-ERROR, which records the code it was given in
 * NET-SYS::*LAST-CODE* and signals a SIMPLE-ERROR. */
void check_glue_boot(void);
void check_glue_shutdown(void);
/* A test case named NAME using the fixture, with a timeout. */
TCase *check_glue_tcase(const char *name);

/* Calls F(ARG) under a handler for ERROR; returns the condition it
 * signalled, or NIL when it returned normally. */
typedef void (*check_glue_thunk)(void *arg);
cl_object check_glue_signal(check_glue_thunk f, void *arg);
/* True when X is of the Lisp type named by the text TYPE. */
int check_glue_typep(cl_object x, const char *type);
/* The expected type of the TYPE-ERROR C, printed readably, as a C string in
 * a static buffer. */
const char *check_glue_expected_type(cl_object c);
/* The code last given to NET-SYS::%SIGNAL-ERROR, or 0. */
int check_glue_last_code(void);
/* A fresh (unsigned-byte 8) vector of N octets 0, 1, ..., N-1. */
cl_object check_glue_octets(int n);

#endif
