/*
 * `workos-emulator gen`: writes a deterministic stream of AuthKit events
 * (JSONL) simulating an environment over time, quirks included, and the
 * exact mirror state a correct consumer must end up with.
 */
#ifndef EMU_GEN_H
#define EMU_GEN_H

/* Runs the gen command with argv[0] = "gen". Returns the process exit
 * status: 0 on success, 64 on bad usage, 1 on I/O failure. */
int emu_gen_main(int argc, char **argv);

#endif
