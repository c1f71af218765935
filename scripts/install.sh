#!/usr/bin/env bash
# Installs smtpfence with `cmake --install` (the rules are in CMakeLists.txt):
# the binary to /usr/local/sbin, the systemd units to /etc/systemd/system,
# and the example config to /etc/smtpfence/smtpfence.conf (only when there is
# none: an existing config is never overwritten), and creates
# /var/lib/smtpfence and /var/log/smtpfence.
# Configures and builds first when the build directory has never been
# configured. BUILD_DIR (default build/) may also name a directory inside
# the build directory, such as the one holding the binary.
#
#   sudo scripts/install.sh               # install, enable the units
#   DESTDIR=/tmp/stage scripts/install.sh # stage under a root (no systemctl)
#
# Then edit /etc/smtpfence/smtpfence.conf (interfaces) and
# `systemctl start smtpfence`.
set -euo pipefail
cd "$(dirname "$0")/.."

# The units' ExecStart lines name /usr/local/sbin/smtpfence.
prefix=/usr/local
build=${BUILD_DIR:-build}
# A directory inside a build tree has its own cmake_install.cmake (for its
# rules only): go up to the tree's top, the one with the CMake cache.
while [[ -f $build/cmake_install.cmake && ! -f $build/CMakeCache.txt ]]; do build=$build/..; done
if [[ ! -f $build/CMakeCache.txt ]]; then
    scripts/install-deps.sh
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
    cmake --build "$build" -j"$(nproc)" --target smtpfence
fi

# cmake --install reads DESTDIR from the environment.
cmake --install "$build" --prefix "$prefix"

# Enable only on a live system run by systemd.
if [[ -z ${DESTDIR:-} && -d /run/systemd/system ]]; then
    systemctl daemon-reload
    systemctl enable smtpfence.service smtpfence-reap.timer
    echo "enabled smtpfence.service and smtpfence-reap.timer; start with: systemctl start smtpfence smtpfence-reap.timer"
fi
echo "installed smtpfence to ${DESTDIR:-/}"
