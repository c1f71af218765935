#!/bin/bash
# The etcd client (userspace/etcd) against a real etcd: one throwaway member
# with TLS and client-certificate auth on 127.0.0.1:22479 (peer 22480; never
# 2379/2380, where Debian's own etcd.service may run). Three runs of the gtest
# binary: without etcd auth, with auth enabled (token expiry: --auth-token-ttl
# 5), and last the test that kills etcd. Exit 77 (skip) when etcd or openssl
# is missing (exit 1 in strict mode, SMTPFENCE_TESTS_STRICT=1).
#   SMTPFENCE_FLEET_CLIENT_TESTS=build/tests/smtpfence_fleet_client_tests bash tests/fleet/test_etcd_client.sh
set -euo pipefail

bin=${SMTPFENCE_FLEET_CLIENT_TESTS:?set SMTPFENCE_FLEET_CLIENT_TESTS to the smtpfence_fleet_client_tests binary}
for tool in etcd etcdctl openssl; do
    command -v "$tool" >/dev/null && continue
    [[ ${SMTPFENCE_TESTS_STRICT:-} == 1 ]] && { echo "FAIL: $tool not installed (strict mode: no skips)"; exit 1; }
    echo "SKIP: $tool not installed"
    exit 77
done
client_port=22479 peer_port=22480 down_port=22481
for port in $client_port $peer_port $down_port; do
    if ss -Htln "sport = :$port" | grep -q .; then echo "FAIL: port $port is in use"; exit 1; fi
done

tmp=$(mktemp -d /tmp/smtpfence-etcd-client.XXXXXX)
etcd_pid=
cleanup() {
    # Only the etcd this script started, by its pid.
    if [[ -n $etcd_pid ]] && kill -0 "$etcd_pid" 2>/dev/null; then
        kill "$etcd_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$etcd_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$etcd_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A throwaway CA, a server certificate for 127.0.0.1 and a client certificate.
cd "$tmp"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca-key.pem -out ca.pem -days 2 -subj /CN=smtpfence-test-ca 2>/dev/null
issue() {  # NAME EXTENDED_KEY_USAGE SUBJECT
    openssl req "${ec[@]}" -keyout "$1-key.pem" -out "$1.csr" -subj "$3" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=%s\n' "$2" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile "$1.ext" \
        -out "$1.pem" 2>/dev/null
    chmod 600 "$1-key.pem"
}
# The server's also says clientAuth: the gateway connects to etcd's own gRPC
# port with it. The client's has no CommonName: with auth enabled, etcd
# refuses a gateway request over a certificate with a CN (HTTP 400); one with
# a CN is issued to test that message.
issue server serverAuth,clientAuth /CN=server
issue client clientAuth /O=smtpfence-test-client
issue client-cn clientAuth /CN=client-cn

endpoint=https://127.0.0.1:$client_port
setsid etcd --name t --data-dir "$tmp/data" \
    --listen-client-urls "$endpoint" --advertise-client-urls "$endpoint" \
    --listen-peer-urls http://127.0.0.1:$peer_port --initial-advertise-peer-urls http://127.0.0.1:$peer_port \
    --initial-cluster t=http://127.0.0.1:$peer_port --initial-cluster-state new \
    --cert-file server.pem --key-file server-key.pem --trusted-ca-file ca.pem --client-cert-auth \
    --auth-token-ttl 5 --experimental-watch-progress-notify-interval 1s \
    --logger zap --log-outputs "$tmp/etcd.log" </dev/null >/dev/null 2>&1 &
etcd_pid=$!

ctl() { etcdctl --endpoints "$endpoint" --cacert ca.pem --cert client.pem --key client-key.pem "$@"; }
deadline=$((SECONDS + 15))
until ctl endpoint health >/dev/null 2>&1; do
    if ((SECONDS > deadline)) || ! kill -0 "$etcd_pid" 2>/dev/null; then
        echo "FAIL: etcd did not become healthy; its log:"; tail -20 "$tmp/etcd.log"; exit 1
    fi
    sleep 0.1
done

export SMTPFENCE_ETCD_ENDPOINT=$endpoint SMTPFENCE_ETCD_DOWN_ENDPOINT=https://127.0.0.1:$down_port
export SMTPFENCE_ETCD_CA=$tmp/ca.pem SMTPFENCE_ETCD_CERT=$tmp/client.pem SMTPFENCE_ETCD_KEY=$tmp/client-key.pem
export SMTPFENCE_ETCD_CN_CERT=$tmp/client-cn.pem SMTPFENCE_ETCD_CN_KEY=$tmp/client-cn-key.pem
failed=0
"$bin" --gtest_filter='EtcdClient.*' || failed=1

# Auth on: a root user; the gateway ignores certificate CNs, so every client
# logs in with a password.
printf 'fleet-test-%s\n' "$RANDOM$RANDOM" >password
chmod 600 password
ctl user add root --new-user-password "$(head -1 password)" >/dev/null
ctl user grant-role root root >/dev/null
ctl auth enable >/dev/null
export SMTPFENCE_ETCD_USER=root SMTPFENCE_ETCD_PASSWORD_FILE=$tmp/password
"$bin" --gtest_filter='EtcdAuth.*' || failed=1

# Last: this one kills etcd.
SMTPFENCE_ETCD_PID=$etcd_pid "$bin" --gtest_filter='EtcdKill.*' || failed=1
exit $failed
