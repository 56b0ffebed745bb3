#!/usr/bin/env bash
# Install the Debian packages needed to build workos-syncd and run its tests.
#
# Only packages that are missing are installed: `dpkg-query -W` tells which
# are already there, and apt is not touched at all when nothing is missing,
# so `make deps` is quiet and fast on a machine that is ready. Uses sudo
# when not run as root.
set -euo pipefail

packages=(
    build-essential pkg-config
    libevent-dev libcurl4-openssl-dev libcjson-dev libpq-dev libssl-dev
    libsystemd-dev libinih-dev check
    postgresql valgrind curl
    # used by the integration tests: runuser, flock, ps and pkill (harness), openssl
    # (webhook signatures), python3 (sd_notify reader), systemd-analyze
    # (unit checks)
    procps util-linux openssl python3 systemd
    # man page check, style checks and static analysis in CI (make tidy),
    # libFuzzer targets (make fuzz-ci; the fuzzer runtime is only a
    # recommendation of clang, and apt runs without those here)
    groff-base clang-format cppcheck clang-tidy clang libclang-rt-dev
)

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "installed" ]; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "deps.sh: missing packages (${missing[*]}) and not root; install them or run as root" >&2
        exit 1
    fi
    sudo=(sudo)
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
