#!/usr/bin/env bash
# Installs every Debian 12 package smtpfence needs to build, test and run its
# lab. Safe to run again; does nothing when everything is present.
set -euo pipefail

packages=(
  # build
  cmake make g++ pkg-config clang llvm
  libbpf-dev bpftool libelf-dev zlib1g-dev
  libcli11-dev nlohmann-json3-dev libgtest-dev libcpp-httplib-dev
  # tests and lab: namespaces, veth, nsenter/setpriv, JSON checks, HTTP scrapes
  iproute2 util-linux jq curl procps
  # the mail lab: Postfix instances in namespaces, swaks as the client
  postfix swaks openssl
  # `systemd-analyze verify` of the shipped unit
  systemd
)

# promtool (Prometheus' own parser of the text format) checks the metrics
# tests' output. It ships only inside the prometheus package, whose install
# would start a Prometheus server; so the package is unpacked, not installed.
PROMTOOL_DIR=/var/cache/smtpfence-deps/prometheus
PROMTOOL=$PROMTOOL_DIR/usr/bin/promtool

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)) && [[ -x $PROMTOOL ]]; then
  echo "install-deps: all ${#packages[@]} packages present, and promtool"
  exit 0
fi
if [[ $EUID -ne 0 ]]; then
  echo "install-deps: missing ${missing[*]:-} ${PROMTOOL}; run as root (sudo $0)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ((${#missing[@]} > 0)); then
  echo "install-deps: installing ${missing[*]}"
  # Postfix unconfigured: the lab runs its own instances with their own
  # config and queue directories; the system's Postfix is never started or
  # changed (an already configured one stays as it is).
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [[ ! -x $PROMTOOL ]]; then
  echo "install-deps: unpacking promtool from Debian's prometheus package into $PROMTOOL_DIR"
  tmp=$(mktemp -d)
  chmod 755 "$tmp"  # apt-get download fetches as the _apt user
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download -q prometheus) || { apt-get update -q && (cd "$tmp" && apt-get download -q prometheus); }
  mkdir -p "$PROMTOOL_DIR"
  dpkg-deb -x "$tmp"/prometheus_*.deb "$PROMTOOL_DIR"
  test -x "$PROMTOOL"
fi
