/*
 * `workos-emulator send`: delivers events from a JSONL stream as signed
 * webhooks (WorkOS-Signature: t=<unix ms>, v1=<hex HMAC-SHA256>) to a
 * receiver, with optional reordering, duplicates, bad signatures and clock
 * skew, retrying the way a webhook sender does.
 */
#ifndef EMU_SEND_H
#define EMU_SEND_H

/* Runs the send command with argv[0] = "send". Returns 0 when every delivery
 * got the expected answer, 1 when some did not or on I/O failure, 64 on bad
 * usage. */
int emu_send_main(int argc, char **argv);

#endif
