/*
 * main() for the unit tests: runs unit_suite() with Check's defaults
 * (CK_FORK from the environment, so valgrind runs can say CK_FORK=no).
 */
#include <stdlib.h>

#include "runner.h"

int main(void)
{
    SRunner *sr = srunner_create(unit_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
