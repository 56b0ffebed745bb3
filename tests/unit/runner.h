/*
 * The one main() of every unit test binary: each test file defines
 * unit_suite() and links tests/unit/runner.o, which runs that suite and
 * exits non-zero when any test in it failed.
 */
#ifndef WORKOS_SYNCD_TEST_RUNNER_H
#define WORKOS_SYNCD_TEST_RUNNER_H

#include <check.h>

/* Builds the suite of this test binary; called once by runner.c's main(). */
Suite *unit_suite(void);

#endif
