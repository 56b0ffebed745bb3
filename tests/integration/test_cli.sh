#!/usr/bin/env bash
# The command line: -h/--help prints the usage on stdout and exits 0;
# -V/--version prints the version and exits 0; --config FILE is -c FILE;
# no command, an unknown command, an unknown option or an option without
# its argument is exit 64 with the usage (or the reason, as
# `workos-syncd: ...`, naming the option as typed) on stderr and nothing
# on stdout.
source "$(dirname "$0")/lib.sh"
require_bins

# run_cli WANT_RC ARGS...: runs the binary, checks the exit status, leaves
# stdout and stderr in $T/cli.out and $T/cli.err.
run_cli() {
    local want=$1 rc=0
    shift
    timeout 20 "$SYNCD" "$@" >"$T/cli.out" 2>"$T/cli.err" </dev/null || rc=$?
    [ "$rc" -eq "$want" ] || {
        cat "$T/cli.err" >&2
        fail "workos-syncd $*: exit $rc, want $want"
    }
}

version=$(sed -n 's/^VERSION *[:?]*= *//p' "$REPO_ROOT/Makefile" | head -n 1)
[ -n "$version" ] || fail "no VERSION in the Makefile"

for opt in -h --help; do
    run_cli 0 "$opt"
    grep -q '^usage: workos-syncd COMMAND' "$T/cli.out" || fail "$opt: no usage on stdout"
    grep -q -- '--help' "$T/cli.out" || fail "$opt: the usage does not name --help"
    [ -s "$T/cli.err" ] && fail "$opt: wrote to stderr: $(cat "$T/cli.err")"
done
log "-h and --help: usage on stdout, exit 0"

for opt in -V --version; do
    run_cli 0 "$opt"
    assert_eq "workos-syncd $version" "$(cat "$T/cli.out")" "$opt"
done
log "-V and --version: workos-syncd $version"

# --config is -c: a file with a bad key is refused naming that file.
printf '[workos]\nbogus_key = 1\n' >"$T/bad.conf"
for opt in -c --config; do
    run_cli 78 status "$opt" "$T/bad.conf"
    grep -q -F "$T/bad.conf:2: [workos] bogus_key" "$T/cli.err" ||
        fail "status $opt: the error does not name the file: $(cat "$T/cli.err")"
done
log "--config FILE reads FILE as -c FILE does"

# expect_usage_error WHAT ARGS...: exit 64, stdout empty, stderr says WHAT.
expect_usage_error() {
    local what=$1
    shift
    run_cli 64 "$@"
    [ -s "$T/cli.out" ] && fail "workos-syncd $*: wrote to stdout"
    grep -q -F -- "$what" "$T/cli.err" || fail "workos-syncd $*: stderr lacks '$what': $(cat "$T/cli.err")"
}
expect_usage_error "usage: workos-syncd COMMAND"
expect_usage_error "unknown command 'bogus'" bogus
expect_usage_error "workos-syncd: unknown option '--bogus'" --bogus
expect_usage_error "workos-syncd: unknown option '--bogus'" status --bogus
expect_usage_error "workos-syncd: unknown option '-x'" status -xc
expect_usage_error "workos-syncd: unknown option '--help=x'" --help=x
expect_usage_error "workos-syncd: option '--config' needs an argument" status --config
expect_usage_error "workos-syncd: option '-c' needs an argument" status -c
expect_usage_error "usage: workos-syncd COMMAND" status extra-argument
log "usage errors: exit 64, the reason on stderr"
