#!/usr/bin/env bash
# Install what harness needs on Debian bookworm (as root), then the Python venv.
#   ./bootstrap.sh          what `harness run` needs
#   ./bootstrap.sh --test   also what the test suite needs (LAVA server, PostgreSQL, Chromium)
# Idempotent: a second run installs nothing and takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(
  # kernel builds
  make gcc libc6-dev flex bison bc libssl-dev libelf-dev cpio xz-utils kmod patch file ccache git
  # cross toolchains (static workloads need the cross libc)
  gcc-arm-linux-gnueabihf libc6-dev-armhf-cross binutils-arm-linux-gnueabihf
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu
  # guests
  qemu-system-arm qemu-system-x86
  # LAVA: lava-run and lava_common's job schema (`harness lava job|run`)
  lava-dispatcher
  # the offline default kernel source
  linux-source-6.12
  # python
  python3 python3-venv
)
TEST_PACKAGES=(
  # the REST round trip: the integration test starts lava-server and PostgreSQL on loopback
  # (without a running PostgreSQL lava-server's postinst skips its database; the test makes it)
  lava-server postgresql
  # headless browser: the nightly's HTML report is rendered in a test
  chromium
  # --host: the tests start their own sshd on 127.0.0.1 (own keys, own config); Debian
  # enables the system ssh service on install (disable it if unwanted)
  openssh-server
)
if [ "${1:-}" = "--test" ]; then
  APT_PACKAGES+=("${TEST_PACKAGES[@]}")
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# reinstall the Python side whenever pyproject.toml changes
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat .venv/.harness-deps 2>/dev/null)" != "$want" ] || ! [ -x .venv/bin/tox ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[test]" tox
  echo "$want" > .venv/.harness-deps
fi
echo "bootstrap: ready (.venv/bin/harness, .venv/bin/tox)"
