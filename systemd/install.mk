# install.mk: `make install` and `make uninstall`, included by the top-level
# Makefile.
#
#   make install                                  into /usr/local (+ /etc, systemd dirs)
#   make install PREFIX=/usr DESTDIR=/tmp/stage   staged, for packaging
#   make uninstall [same variables]               removes what install added
#
# The binary, man page and example go under PREFIX; the unit, sysusers and
# tmpfiles snippets go where systemd looks for them (asked from pkg-config
# when systemd.pc is installed), and the configuration under SYSCONFDIR.
# Every path is prefixed with DESTDIR.
#
# The configuration file is installed only when none exists, so an edited
# one is never replaced; uninstall removes it only when it still equals the
# example it was installed from.
#
# Installing for real (root, no DESTDIR) also does what a package's
# post-install step would: create the user (systemd-sysusers), the
# directories with their modes (systemd-tmpfiles) and reload systemd.
# A staged install touches nothing outside DESTDIR.

# Included before or after `all`, this file must not become the default goal.
INSTALL_MK_SAVED_GOAL := $(.DEFAULT_GOAL)

PREFIX      ?= /usr/local
DESTDIR     ?=
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/workos-syncd
SYSCONFDIR  ?= /etc
# Recursively expanded, so pkg-config only runs when a path is needed.
UNITDIR     ?= $(or $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null),/lib/systemd/system)
SYSUSERSDIR ?= $(or $(shell pkg-config --variable=sysusersdir systemd 2>/dev/null),/usr/lib/sysusers.d)
TMPFILESDIR ?= $(or $(shell pkg-config --variable=tmpfilesdir systemd 2>/dev/null),/usr/lib/tmpfiles.d)
INSTALL     ?= install

# The unit and the tmpfiles snippet name installed paths; these fill them in.
SYSTEMD_SUBST = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g'

INST_CONFDIR  = $(DESTDIR)$(SYSCONFDIR)/workos-syncd
INST_CONF     = $(INST_CONFDIR)/workos-syncd.conf
INST_EXAMPLE  = $(DESTDIR)$(DOCDIR)/workos-syncd.conf.example
# Created empty by the tmpfiles snippet; uninstall removes them while empty.
INST_CREDDIR  = $(INST_CONFDIR)/credentials
INST_CREDS    = $(INST_CREDDIR)/api-key $(INST_CREDDIR)/webhook-secret

# Everything install puts down except the configuration, which has its own rule.
INST_FILES = $(DESTDIR)$(BINDIR)/workos-syncd \
             $(DESTDIR)$(MANDIR)/man8/workos-syncd.8 \
             $(DESTDIR)$(UNITDIR)/workos-syncd.service \
             $(DESTDIR)$(SYSUSERSDIR)/workos-syncd.conf \
             $(DESTDIR)$(TMPFILESDIR)/workos-syncd.conf \
             $(INST_EXAMPLE)

# A real install on a machine run by systemd: root, no staging directory.
LIVE_INSTALL = [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ]

.PHONY: install uninstall

install: daemon/workos-syncd
	$(INSTALL) -D -m 0755 daemon/workos-syncd $(DESTDIR)$(BINDIR)/workos-syncd
	$(INSTALL) -D -m 0644 daemon/workos-syncd.8 $(DESTDIR)$(MANDIR)/man8/workos-syncd.8
	$(INSTALL) -D -m 0644 config/workos-syncd.conf.example $(INST_EXAMPLE)
	$(INSTALL) -d -m 0755 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(TMPFILESDIR)
	$(SYSTEMD_SUBST) systemd/workos-syncd.service >$(DESTDIR)$(UNITDIR)/workos-syncd.service.tmp
	mv -f $(DESTDIR)$(UNITDIR)/workos-syncd.service.tmp $(DESTDIR)$(UNITDIR)/workos-syncd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/workos-syncd.service
	$(SYSTEMD_SUBST) systemd/workos-syncd.tmpfiles >$(DESTDIR)$(TMPFILESDIR)/workos-syncd.conf.tmp
	mv -f $(DESTDIR)$(TMPFILESDIR)/workos-syncd.conf.tmp $(DESTDIR)$(TMPFILESDIR)/workos-syncd.conf
	chmod 0644 $(DESTDIR)$(TMPFILESDIR)/workos-syncd.conf
	$(INSTALL) -D -m 0644 systemd/workos-syncd.sysusers $(DESTDIR)$(SYSUSERSDIR)/workos-syncd.conf
	$(INSTALL) -d -m 0750 $(INST_CONFDIR)
	@if [ -e $(INST_CONF) ]; then \
	    echo "keeping existing $(INST_CONF)"; \
	else \
	    echo "$(INSTALL) -m 0640 config/workos-syncd.conf.example $(INST_CONF)"; \
	    $(INSTALL) -m 0640 config/workos-syncd.conf.example $(INST_CONF); \
	fi
	@if $(LIVE_INSTALL); then \
	    set -e; \
	    if command -v systemd-sysusers >/dev/null; then \
	        echo "systemd-sysusers $(SYSUSERSDIR)/workos-syncd.conf"; \
	        systemd-sysusers $(SYSUSERSDIR)/workos-syncd.conf; \
	    fi; \
	    if command -v systemd-tmpfiles >/dev/null; then \
	        echo "systemd-tmpfiles --create $(TMPFILESDIR)/workos-syncd.conf"; \
	        systemd-tmpfiles --create $(TMPFILESDIR)/workos-syncd.conf; \
	    fi; \
	    if [ -d /run/systemd/system ]; then \
	        echo "systemctl daemon-reload"; \
	        systemctl daemon-reload; \
	    fi; \
	    echo "next: put the WorkOS API key in $(SYSCONFDIR)/workos-syncd/credentials/api-key,"; \
	    echo "      edit $(SYSCONFDIR)/workos-syncd/workos-syncd.conf, then"; \
	    echo "      systemctl enable --now workos-syncd"; \
	fi

uninstall:
	@if [ -f $(INST_CONF) ]; then \
	    ref=$(INST_EXAMPLE); \
	    [ -f "$$ref" ] || ref=config/workos-syncd.conf.example; \
	    if cmp -s $(INST_CONF) "$$ref"; then \
	        echo "rm -f $(INST_CONF)"; \
	        rm -f $(INST_CONF); \
	    else \
	        echo "keeping $(INST_CONF): it was edited"; \
	    fi; \
	fi
	@for f in $(INST_CREDS); do \
	    if [ -f "$$f" ] && [ ! -s "$$f" ]; then echo "rm -f $$f"; rm -f "$$f"; fi; \
	done
	rm -f $(INST_FILES)
	@rmdir $(INST_CREDDIR) $(INST_CONFDIR) $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	@if $(LIVE_INSTALL) && [ -d /run/systemd/system ]; then \
	    echo "systemctl daemon-reload"; \
	    systemctl daemon-reload; \
	fi

.DEFAULT_GOAL := $(INSTALL_MK_SAVED_GOAL)
