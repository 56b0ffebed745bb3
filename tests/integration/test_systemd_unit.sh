#!/usr/bin/env bash
# The systemd integration and the install rules: the unit passes
# `systemd-analyze verify`, is rated at most 2.0 by `systemd-analyze
# security`, agrees with the tmpfiles snippet and the example configuration
# about credentials; the sysusers and tmpfiles snippets produce the intended
# accounts and modes; the man page renders without warnings; and
# `make install` / `make uninstall` into a DESTDIR put down exactly the
# expected files with the right modes, never overwrite an edited
# configuration, and take back everything else.
#
# Standalone (it needs no PostgreSQL and sources nothing); runs as root or
# not. Missing tools are failures, not skips, except the steps that only
# root can take (applying the tmpfiles snippet, which chowns).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NAME=test_systemd_unit
MAX_EXPOSURE=2.0

if [ -n "${SYNCD_IT_WORKDIR:-}" ]; then
    T=$SYNCD_IT_WORKDIR
    mkdir -p "$T"
else
    T=$(mktemp -d "${TMPDIR:-/tmp}/syncd-unit.XXXXXX")
fi

ok() { printf '[%s] ok: %s\n' "$NAME" "$*"; }
fail() {
    printf '[%s] FAIL: %s\n' "$NAME" "$*" >&2
    printf '[%s] work files kept in %s\n' "$NAME" "$T" >&2
    trap - EXIT
    exit 1
}
trap 'rm -rf "$T"' EXIT

# mode_is MODE PATH: PATH exists with exactly octal MODE.
mode_is() {
    local want=$1 path=$2 got
    [ -e "$path" ] || fail "$path was not installed"
    got=$(stat -c %a "$path")
    [ "$got" = "$want" ] || fail "$path has mode $got, expected $want"
}

# --- prerequisites ------------------------------------------------------------

command -v systemd-analyze >/dev/null 2>&1 ||
    fail "systemd-analyze not found: install the Debian package 'systemd' (make deps)"
for tool in systemd-sysusers systemd-tmpfiles make sed install; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool not found (make deps)"
done
command -v groff >/dev/null 2>&1 ||
    fail "groff not found: install the Debian package 'groff-base' (make deps)"
BIN=$REPO/daemon/workos-syncd
[ -x "$BIN" ] || fail "daemon binary $BIN not built (run make)"
for f in systemd/workos-syncd.service systemd/workos-syncd.sysusers \
    systemd/workos-syncd.tmpfiles systemd/install.mk daemon/workos-syncd.8 \
    config/workos-syncd.conf.example; do
    [ -f "$REPO/$f" ] || fail "$f is missing"
done
ok "running as $(id -un), systemd $(systemd-analyze --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')"

# subst FILE: FILE with the install-time placeholders filled in, as install.mk
# does, with the binary directory given in $1.
subst() {
    sed -e "s|@BINDIR@|$1|g" -e 's|@SYSCONFDIR@|/etc|g' "$2"
}

# --- the unit: verify ---------------------------------------------------------

mkdir -p "$T/unit"
UNIT=$T/unit/workos-syncd.service
subst "$REPO/daemon" "$REPO/systemd/workos-syncd.service" >"$UNIT"
if grep -n '@[A-Z]*@' "$UNIT"; then
    fail "placeholders left in the unit after substitution (install.mk substitutes only @BINDIR@ and @SYSCONFDIR@)"
fi
rc=0
systemd-analyze verify --man=no "$UNIT" >"$T/verify.out" 2>&1 || rc=$?
if [ "$rc" -ne 0 ] || grep -q 'workos-syncd' "$T/verify.out"; then
    cat "$T/verify.out" >&2
    fail "systemd-analyze verify rejected the unit (exit $rc)"
fi
ok "systemd-analyze verify: no complaint"

# The directives the daemon's behaviour depends on ($MAINPID is literal).
# shellcheck disable=SC2016
for line in 'Type=notify' 'NotifyAccess=main' 'ExecReload=/bin/kill -HUP $MAINPID' \
    'Restart=on-failure' 'WatchdogSec=30s' 'TimeoutStopSec=15s' 'User=workos-syncd' \
    "ExecStart=$REPO/daemon/workos-syncd run -c /etc/workos-syncd/workos-syncd.conf"; do
    grep -qxF "$line" "$UNIT" || fail "the unit lacks the line: $line"
done
if grep -nE '^(Environment|EnvironmentFile|PassEnvironment)=' "$UNIT"; then
    fail "the unit sets environment variables; secrets must come from LoadCredential="
fi
ok "the unit has the notify, reload, restart, watchdog and user settings"

# --- the unit: exposure -------------------------------------------------------

rc=0
systemd-analyze security --offline=true "$UNIT" >"$T/security.out" 2>&1 || rc=$?
exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p' "$T/security.out")
if [ -z "$exposure" ]; then
    cat "$T/security.out" >&2
    fail "no 'Overall exposure level' line from systemd-analyze security (exit $rc)"
fi
if ! awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e + 0 <= m + 0) }'; then
    grep '✗' "$T/security.out" >&2 || true
    fail "exposure $exposure is above $MAX_EXPOSURE"
fi
ok "systemd-analyze security: exposure $exposure (limit $MAX_EXPOSURE)"

# --- credentials agree across unit, tmpfiles and example config -----------------

TMPFILES=$T/unit/tmpfiles.conf
subst /usr/bin "$REPO/systemd/workos-syncd.tmpfiles" >"$TMPFILES"
n_creds=0
while IFS=: read -r id path; do
    n_creds=$((n_creds + 1))
    awk -v p="$path" '$1 == "f" && $2 == p && $3 == "0600" && $4 == "root" { found = 1 }
        END { exit !found }' "$TMPFILES" ||
        fail "credential source $path is not created 0600 root by the tmpfiles snippet"
    grep -qE "^#? *[a-z_]+_file *= *$id\$" "$REPO/config/workos-syncd.conf.example" ||
        fail "credential $id is not the name the example configuration shows for a *_file key"
done < <(sed -n 's/^LoadCredential=//p' "$UNIT")
[ "$n_creds" -eq 2 ] || fail "expected 2 LoadCredential= lines, found $n_creds"
ok "LoadCredential= sources are in the tmpfiles snippet; IDs match the example configuration"

# --- sysusers and tmpfiles snippets -------------------------------------------

ROOT=$T/sysroot
mkdir -p "$ROOT/etc"
cp /etc/passwd /etc/group "$ROOT/etc/"
systemd-sysusers --root="$ROOT" "$REPO/systemd/workos-syncd.sysusers" >"$T/sysusers.out" 2>&1 ||
    { cat "$T/sysusers.out" >&2; fail "systemd-sysusers rejected the snippet"; }
grep -q '^workos-syncd:x:[0-9]*:[0-9]*:.*:[^:]*/nologin$' "$ROOT/etc/passwd" ||
    fail "systemd-sysusers did not create a workos-syncd user without a login shell"
grep -q '^workos-syncd:x:' "$ROOT/etc/group" || fail "systemd-sysusers did not create the group"
uid=$(awk -F: '$1 == "workos-syncd" { print $3 }' "$ROOT/etc/passwd")
if [ "$uid" -le 0 ] || [ "$uid" -ge 1000 ]; then
    fail "workos-syncd got UID $uid, not a system UID"
fi
ok "sysusers snippet creates the system user workos-syncd (UID $uid in a scratch root)"

if [ "$(id -u)" -eq 0 ]; then
    mkdir -p "$ROOT/etc/workos-syncd"
    echo "[log]" >"$ROOT/etc/workos-syncd/workos-syncd.conf"
    chmod 0644 "$ROOT/etc/workos-syncd/workos-syncd.conf"
    systemd-tmpfiles --root="$ROOT" --create "$TMPFILES" >"$T/tmpfiles.out" 2>&1 ||
        { cat "$T/tmpfiles.out" >&2; fail "systemd-tmpfiles --create failed on the snippet"; }
    gid=$(awk -F: '$1 == "workos-syncd" { print $3 }' "$ROOT/etc/group")
    check_owned() { # MODE UID GID PATH
        local got
        got=$(stat -c '%a %u %g' "$4") || fail "tmpfiles did not create $4"
        [ "$got" = "$1 $2 $3" ] || fail "$4 is '$got' (mode uid gid), expected '$1 $2 $3'"
    }
    check_owned 750 0 "$gid" "$ROOT/etc/workos-syncd"
    check_owned 640 0 "$gid" "$ROOT/etc/workos-syncd/workos-syncd.conf"
    check_owned 700 0 0 "$ROOT/etc/workos-syncd/credentials"
    check_owned 600 0 0 "$ROOT/etc/workos-syncd/credentials/api-key"
    check_owned 600 0 0 "$ROOT/etc/workos-syncd/credentials/webhook-secret"
    # Applied again (as at every boot), it must keep a secret already written.
    echo sk_test_secret >"$ROOT/etc/workos-syncd/credentials/api-key"
    systemd-tmpfiles --root="$ROOT" --create "$TMPFILES" >"$T/tmpfiles.out" 2>&1 ||
        { cat "$T/tmpfiles.out" >&2; fail "systemd-tmpfiles failed the second time"; }
    [ "$(cat "$ROOT/etc/workos-syncd/credentials/api-key")" = sk_test_secret ] ||
        fail "applying tmpfiles again truncated a credential"
    ok "tmpfiles snippet: config 0640 root:workos-syncd, credentials 0700/0600 root, secrets kept"
else
    ok "tmpfiles snippet not applied: chowning needs root (checked when run as root)"
fi

# --- man page -------------------------------------------------------------------

groff -man -Tutf8 -ww -z "$REPO/daemon/workos-syncd.8" >"$T/groff.out" 2>&1 ||
    { cat "$T/groff.out" >&2; fail "groff failed on the man page"; }
if [ -s "$T/groff.out" ]; then
    cat "$T/groff.out" >&2
    fail "groff warns about the man page"
fi
ok "man page renders without warnings"

# --- make install / uninstall ---------------------------------------------------

# Until the top-level Makefile includes systemd/install.mk, include it here.
MAKE_FILES=()
grep -q 'systemd/install.mk' "$REPO/Makefile" || MAKE_FILES=(-f Makefile -f systemd/install.mk)
# -o: install the binary that was built; never rebuild it from here.
run_make() {
    make -C "$REPO" --no-print-directory "${MAKE_FILES[@]}" -o daemon/workos-syncd \
        DESTDIR="$D" PREFIX=/usr "$@" >>"$T/make.out" 2>&1 ||
        { cat "$T/make.out" >&2; fail "make $* failed"; }
}

pc_dir() { # VARIABLE FALLBACK: where systemd.pc says, as install.mk asks
    local v
    v=$(pkg-config --variable="$1" systemd 2>/dev/null || true)
    echo "${v:-$2}"
}
UNITDIR=$(pc_dir systemdsystemunitdir /lib/systemd/system)
SYSUSERSDIR=$(pc_dir sysusersdir /usr/lib/sysusers.d)
TMPFILESDIR=$(pc_dir tmpfilesdir /usr/lib/tmpfiles.d)
CONF=/etc/workos-syncd/workos-syncd.conf
EXAMPLE=/usr/share/doc/workos-syncd/workos-syncd.conf.example

# path:mode of everything a staged install must put down, and nothing else.
expected=(
    "/usr/bin/workos-syncd:755"
    "/usr/share/man/man8/workos-syncd.8:644"
    "$EXAMPLE:644"
    "$UNITDIR/workos-syncd.service:644"
    "$SYSUSERSDIR/workos-syncd.conf:644"
    "$TMPFILESDIR/workos-syncd.conf:644"
    "$CONF:640"
)

check_installed() {
    local entry path
    for entry in "${expected[@]}"; do
        path=${entry%:*}
        mode_is "${entry##*:}" "$D$path"
    done
    mode_is 750 "$D/etc/workos-syncd"
    cmp -s "$D/usr/bin/workos-syncd" "$BIN" || fail "the installed binary is not daemon/workos-syncd"
    cmp -s "$D$EXAMPLE" "$REPO/config/workos-syncd.conf.example" ||
        fail "the installed example differs from config/workos-syncd.conf.example"
    local unit=$D$UNITDIR/workos-syncd.service
    grep -qxF "ExecStart=/usr/bin/workos-syncd run -c $CONF" "$unit" ||
        fail "installed unit: ExecStart does not run /usr/bin/workos-syncd: $(grep '^ExecStart' "$unit")"
    subst /usr/bin "$REPO/systemd/workos-syncd.service" | cmp -s - "$unit" ||
        fail "the installed unit is not the source unit with @BINDIR@=/usr/bin"
    subst /usr/bin "$REPO/systemd/workos-syncd.tmpfiles" | cmp -s - "$D$TMPFILESDIR/workos-syncd.conf" ||
        fail "the installed tmpfiles snippet is not the source with its paths filled in"
    ! grep -l '@[A-Z]*@' "$unit" "$D$TMPFILESDIR/workos-syncd.conf" ||
        fail "placeholders left in installed files"
    # Nothing beyond the list above.
    local want got
    want=$(printf '%s\n' "${expected[@]%:*}" | sort)
    got=$(cd "$D" && find . \( -type f -o -type l \) | sed 's|^\.||' | sort)
    [ "$want" = "$got" ] ||
        fail "installed files differ from the expected list:
$(diff <(echo "$want") <(echo "$got") || true)"
}

D=$T/stage
run_make install
check_installed
cmp -s "$D$CONF" "$REPO/config/workos-syncd.conf.example" ||
    fail "a first install did not put the example in place as $CONF"
ok "make install DESTDIR=... PREFIX=/usr: ${#expected[@]} files, modes right, ExecStart=/usr/bin/workos-syncd"

echo "# edited by the administrator" >>"$D$CONF"
cp "$D$CONF" "$T/edited.conf"
run_make install
check_installed
cmp -s "$D$CONF" "$T/edited.conf" || fail "a second install replaced the edited $CONF"
ok "a second install keeps the edited configuration"

run_make uninstall
left=$(cd "$D" && find . \( -type f -o -type l \) | sed 's|^\.||' | sort)
[ "$left" = "$CONF" ] || fail "after uninstall, expected only $CONF to remain; found:
$left"
cmp -s "$D$CONF" "$T/edited.conf" || fail "uninstall changed the edited configuration"
[ ! -e "$D/usr/share/doc/workos-syncd" ] || fail "uninstall left the doc directory"
ok "make uninstall removes everything but the edited configuration"

# An unedited configuration goes away with the rest, directory included.
D=$T/stage2
run_make install
run_make uninstall
left=$(cd "$D" && find . \( -type f -o -type l \) | sed 's|^\.||')
[ -z "$left" ] || fail "install then uninstall left files behind:
$left"
[ ! -e "$D/etc/workos-syncd" ] || fail "uninstall left $D/etc/workos-syncd"
ok "install then uninstall with an untouched configuration leaves no file"

echo "[$NAME] PASS"
