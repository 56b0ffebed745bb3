# Build rules for the WorkOS emulator used by the integration tests.
# Included from the top-level Makefile, which supplies CC, CFLAGS, LDFLAGS and
# LDLIBS (SANITIZE=... adds the sanitizer flags there).

EMU_SRCS := $(wildcard tests/emulator/*.c)
EMU_OBJS := $(EMU_SRCS:.c=.o)
EMU_HDRS := $(wildcard tests/emulator/*.h)

.PHONY: emulator emulator-smoke

emulator: tests/emulator/workos-emulator

tests/emulator/workos-emulator: $(EMU_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(EMU_OBJS) $(LDLIBS)

tests/emulator/%.o: tests/emulator/%.c $(EMU_HDRS)
	$(CC) $(CFLAGS) -c -o $@ $<

# Self-check of the emulator itself (needs curl and jq).
emulator-smoke: tests/emulator/workos-emulator
	bash tests/emulator/smoke.sh tests/emulator/workos-emulator

CLEAN_EXTRA += tests/emulator/workos-emulator $(EMU_OBJS)
