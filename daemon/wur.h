/*
 * WUR marks a function whose result says whether it failed: ignoring it is
 * a compile error under -Werror.  One spelling for the whole daemon.
 */
#ifndef WORKOS_SYNCD_WUR_H
#define WORKOS_SYNCD_WUR_H

#define WUR __attribute__((warn_unused_result))

#endif
