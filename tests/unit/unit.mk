# Unit tests (Check). Included by the top-level Makefile, which provides CC,
# CFLAGS, LDFLAGS, LDLIBS and the daemon/%.o rule. Each test links only the
# module under test and its pure helpers.
#
#   make unit-check       run every unit test (from the repository root)
#   make unit-valgrind    the same under valgrind, without fork

UNIT_TESTS += tests/unit/test_config tests/unit/test_log tests/unit/test_backoff \
              tests/unit/test_event tests/unit/test_metrics tests/unit/test_signature \
              tests/unit/test_poller tests/unit/test_apply tests/unit/test_webhook \
              tests/unit/test_webhook_head tests/unit/test_store_schema \
              tests/unit/test_reconciler tests/unit/test_cursor_set \
              tests/unit/test_poller_page tests/unit/test_http_client

tests/unit/test_config: tests/unit/test_config.o daemon/config.o daemon/config_value.o \
                        daemon/config_check.o daemon/config_screen.o daemon/log.o daemon/event.o \
                        daemon/event_mirror.o daemon/event_page.o daemon/clock.o daemon/pgarray.o
tests/unit/test_log: tests/unit/test_log.o daemon/log.o daemon/clock.o
tests/unit/test_backoff: tests/unit/test_backoff.o daemon/backoff.o daemon/clock.o
tests/unit/test_event: tests/unit/test_event.o daemon/event.o daemon/event_mirror.o \
                       daemon/event_page.o daemon/pgarray.o daemon/clock.o
tests/unit/test_metrics: tests/unit/test_metrics.o daemon/metrics.o
tests/unit/test_apply: tests/unit/test_apply.o daemon/apply.o daemon/event.o \
                       daemon/event_mirror.o daemon/pgarray.o daemon/clock.o daemon/metrics.o
tests/unit/test_signature: tests/unit/test_signature.o daemon/signature.o
tests/unit/test_http_client: tests/unit/test_http_client.o daemon/http_client.o daemon/clock.o \
                             daemon/log.o
tests/unit/test_poller: tests/unit/test_poller.o daemon/poller_fsm.o
tests/unit/test_webhook: tests/unit/test_webhook.o daemon/webhook_fsm.o
tests/unit/test_reconciler: tests/unit/test_reconciler.o daemon/reconciler_fsm.o
tests/unit/test_cursor_set: tests/unit/test_cursor_set.o daemon/cursor_set.o
tests/unit/test_webhook_head: tests/unit/test_webhook_head.o daemon/webhook_head.o daemon/signature.o
tests/unit/test_store_schema: tests/unit/test_store_schema.o daemon/store_schema.o daemon/log.o \
                              daemon/clock.o daemon/migrations.o
# poller_page's out-of-memory cases fail event.c's allocations through the
# linker: calls to these two from the other objects go to the test's
# __wrap_ functions, which call __real_ ones unless told to fail.
tests/unit/test_poller_page: tests/unit/test_poller_page.o daemon/poller_page.o daemon/event.o \
                             daemon/event_mirror.o daemon/event_page.o daemon/pgarray.o \
                             daemon/clock.o daemon/log.o daemon/metrics.o
tests/unit/test_poller_page: LDFLAGS += -Wl,--wrap=event_batch_new -Wl,--wrap=event_batch_add

CHECK_CFLAGS := $(shell pkg-config --cflags check)
CHECK_LIBS   := $(shell pkg-config --libs check)

tests/unit/test_%.o: tests/unit/test_%.c $(wildcard daemon/*.h)
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) -Idaemon -c -o $@ $<

tests/unit/test_%: tests/unit/test_%.o tests/unit/runner.o
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

.PHONY: unit-check unit-valgrind

# Every test runs even after one fails; the target fails if any did.
unit-check: $(UNIT_TESTS)
	@failed=""; \
	for t in $(UNIT_TESTS); do \
		echo "== $$t"; \
		(cd $(CURDIR) && ./$$t) || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "unit tests failed:$$failed"; exit 1; fi

unit-valgrind: $(UNIT_TESTS)
	@failed=""; \
	for t in $(UNIT_TESTS); do \
		echo "== valgrind $$t"; \
		(cd $(CURDIR) && CK_FORK=no valgrind -q --error-exitcode=1 --leak-check=full \
			--errors-for-leak-kinds=definite,possible ./$$t) || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "valgrind failed:$$failed"; exit 1; fi

CLEAN_EXTRA += $(UNIT_TESTS) $(UNIT_TESTS:=.o)

tests/unit/runner.o: tests/unit/runner.c tests/unit/runner.h
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

CLEAN_EXTRA += tests/unit/runner.o
