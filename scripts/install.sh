#!/usr/bin/env bash
# Installs smtpfence: the binary to /usr/local/sbin, the systemd units to
# /etc/systemd/system, and the example config to /etc/smtpfence/smtpfence.conf
# (only when there is none: an existing config is never overwritten).
# Builds first when build/smtpfence is missing (BUILD_DIR overrides build/).
#
#   sudo scripts/install.sh               # install, enable the units
#   DESTDIR=/tmp/stage scripts/install.sh # stage under a root (no systemctl)
#
# Then edit /etc/smtpfence/smtpfence.conf (interfaces) and
# `systemctl start smtpfence`.
set -euo pipefail
cd "$(dirname "$0")/.."

DESTDIR=${DESTDIR:-}
build=${BUILD_DIR:-build}
if [[ ! -x $build/smtpfence ]]; then
    scripts/install-deps.sh
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
    cmake --build "$build" -j"$(nproc)" --target smtpfence
fi

install -D -m 0755 "$build/smtpfence" "$DESTDIR/usr/local/sbin/smtpfence"
for unit in smtpfence.service smtpfence-reap.service smtpfence-reap.timer; do
    install -D -m 0644 "systemd/$unit" "$DESTDIR/etc/systemd/system/$unit"
done
if [[ -e $DESTDIR/etc/smtpfence/smtpfence.conf ]]; then
    echo "kept the existing $DESTDIR/etc/smtpfence/smtpfence.conf"
else
    install -D -m 0644 etc/smtpfence.conf "$DESTDIR/etc/smtpfence/smtpfence.conf"
    echo "installed $DESTDIR/etc/smtpfence/smtpfence.conf: set the interfaces there"
fi
install -d -m 0755 "$DESTDIR/var/lib/smtpfence"
install -d -m 0750 "$DESTDIR/var/log/smtpfence"

# Enable only on a live system run by systemd.
if [[ -z $DESTDIR && -d /run/systemd/system ]]; then
    systemctl daemon-reload
    systemctl enable smtpfence.service smtpfence-reap.timer
    echo "enabled smtpfence.service and smtpfence-reap.timer; start with: systemctl start smtpfence smtpfence-reap.timer"
fi
echo "installed smtpfence to ${DESTDIR:-/}"
