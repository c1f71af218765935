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
  # the shared libraries of Exim's binary (unpacked below, see EXIM_DIR): all
  # but libidn12 come with the packages above or with Debian's base system
  libidn12 libdb5.3 libgnutls30 libgnutls-dane0 libidn2-0 libnsl2 libpcre2-8-0 libcrypt1
  # `systemd-analyze verify` of the shipped unit
  systemd
  # the fleet tests: a real etcd cluster in namespaces (tests/fleet/etcd.sh)
  etcd-server etcd-client
  # the fleet agent's etcd client (HTTP/JSON over TLS with libcurl)
  libcurl4-openssl-dev
  # SHA-256 of imported prefix lists (libcrypto)
  libssl-dev
)

# promtool (Prometheus' own parser of the text format) checks the metrics
# tests' output. It ships only inside the prometheus package, whose install
# would start a Prometheus server; so the package is unpacked, not installed.
PROMTOOL_DIR=/var/cache/smtpfence-deps/prometheus
PROMTOOL=$PROMTOOL_DIR/usr/bin/promtool

# Exim (exim4-daemon-light) as a second kind of upstream relay in the mail lab
# (scripts/lab/exim.sh). Its packages conflict with postfix (both provide
# mail-transport-agent), so the daemon package is unpacked, not installed:
# one binary, setuid root, whose re-executions the lab points at this copy
# (exim_path). exim4-base (init script, cron jobs, exim_tidydb ...) and
# exim4-config (Debian's configuration generator) are not needed: the lab
# writes its own configuration. The binary looks up its compiled-in user
# Debian-exim before it reads any configuration, so that system user and
# group are created, as exim4-base's postinst would (home not created, no login).
EXIM_DIR=/var/cache/smtpfence-deps/exim
EXIM=$EXIM_DIR/usr/sbin/exim4
exim_ready() { [[ -u $EXIM ]] && getent passwd Debian-exim >/dev/null; }

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)) && [[ -x $PROMTOOL ]] && exim_ready; then
  echo "install-deps: all ${#packages[@]} packages present, promtool and exim"
  exit 0
fi
if [[ $EUID -ne 0 ]]; then
  echo "install-deps: missing ${missing[*]:-} ${PROMTOOL} ${EXIM} (or the Debian-exim user); run as root (sudo $0)" >&2
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
if ! getent passwd Debian-exim >/dev/null; then
  echo "install-deps: creating the system user Debian-exim (Exim's compiled-in user)"
  getent group Debian-exim >/dev/null || groupadd --system Debian-exim
  useradd --system --gid Debian-exim --home-dir /var/spool/exim4 --no-create-home \
    --shell /usr/sbin/nologin --comment "Exim (smtpfence lab, unpacked)" Debian-exim
fi
if [[ ! -u $EXIM ]]; then
  echo "install-deps: unpacking exim from Debian's exim4-daemon-light package into $EXIM_DIR"
  etmp=$(mktemp -d)
  chmod 755 "$etmp"
  trap 'rm -rf "${tmp:-}" "$etmp"' EXIT
  (cd "$etmp" && apt-get download -q exim4-daemon-light) || { apt-get update -q && (cd "$etmp" && apt-get download -q exim4-daemon-light); }
  rm -rf "$EXIM_DIR"
  mkdir -p "$EXIM_DIR"
  dpkg-deb -x "$etmp"/exim4-daemon-light_*.deb "$EXIM_DIR"
  test -u "$EXIM"  # setuid root, as packaged
  if ldd "$EXIM" | grep -q 'not found'; then
    echo "install-deps: $EXIM lacks libraries: $(ldd "$EXIM" | grep 'not found' | tr -s ' \t\n' ' ')" >&2
    exit 1
  fi
fi
