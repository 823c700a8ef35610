#!/usr/bin/env bash
# End-to-end test of the container deployment (docker-compose.yml): builds
# the image, brings the stack up under a project name of its own, waits for
# the health checks, then through the ran container's published SOCKS port
# has every UE fetch its Endorse token over its PDU session (gNB -> GTP-U ->
# UPF -> in-network issuer), verifies each against the core's JWK Set,
# presents tokens to the relying party (the app container) over the host
# ("Wi-Fi") and through a UE's session (UPF NAT -> N6), and checks that a
# stolen SIM, an unregistered handset, a missing or tampered token and an
# unattached IMSI are refused. On failure it prints the containers' logs;
# it always removes the stack and its volume.
#
# Usage: scripts/compose-test.sh     (needs docker with docker compose v2 or
# docker-compose 1.29, go, curl; host ports are picked free on 127.0.0.1,
# or set SIMGATE_KEYS_PORT, SIMGATE_SOCKS_PORT, SIMGATE_APP_PORT)
set -euo pipefail
cd "$(dirname "$0")/.."

WAIT=120          # seconds, at most, for each thing waited for
UES=10            # docker-compose.yml: the ran attaches --ues 10
APP_N6=172.28.6.40:8080

say() { printf '== %s\n' "$*"; }
ok() { printf 'ok   %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*" >&2; exit 1; }

for tool in docker go curl; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose=(docker-compose)
else
  fail "neither 'docker compose' (v2) nor docker-compose is installed"
fi
docker info >/dev/null 2>&1 || fail "the docker daemon is not reachable (docker info)"

# A free port on 127.0.0.1: nothing answers a connection to it.
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  fail "no free port found on 127.0.0.1"
}
export SIMGATE_KEYS_PORT=${SIMGATE_KEYS_PORT:-$(free_port)}
export SIMGATE_SOCKS_PORT=${SIMGATE_SOCKS_PORT:-$(free_port)}
export SIMGATE_APP_PORT=${SIMGATE_APP_PORT:-$(free_port)}
KEYS=http://127.0.0.1:$SIMGATE_KEYS_PORT
APP=http://127.0.0.1:$SIMGATE_APP_PORT
JWKS=$KEYS/.well-known/jwks.json

project=simgate-test-$$-$RANDOM
dc() { "${compose[@]}" -p "$project" -f docker-compose.yml "$@"; }
tmp=$(mktemp -d)

finish() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ]; then
    echo "---- ${compose[*]} ps" >&2
    dc ps >&2 || true
    echo "---- ${compose[*]} logs" >&2
    dc logs --no-color >&2 || true
  fi
  say "down -v"
  dc down -v --remove-orphans >/dev/null 2>&1 || echo "warning: ${compose[*]} -p $project down -v failed" >&2
  rm -rf "$tmp"
  if [ "$rc" -eq 0 ]; then say "PASS"; else say "FAILED (exit $rc)"; fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

say "build (scripts/docker-build.sh)"
scripts/docker-build.sh >/dev/null
simgate=bin/simgate

say "up: project $project with ${compose[*]}; keys :$SIMGATE_KEYS_PORT, socks :$SIMGATE_SOCKS_PORT, app :$SIMGATE_APP_PORT"
# up waits for the sims service to complete and for upf and core to be
# healthy (depends_on conditions: two health waits); bound it.
timeout $((2 * WAIT)) "${compose[@]}" -p "$project" -f docker-compose.yml up -d \
  || fail "up -d did not bring the stack up"

# health <service>: the container's health status ("none" without a check).
health() {
  local id
  id=$(dc ps -a -q "$1")
  [ -n "$id" ] || { echo missing; return; }
  docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id"
}
for svc in upf core app ran; do
  deadline=$((SECONDS + WAIT))
  until [ "$(health "$svc")" = healthy ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$svc not healthy after ${WAIT}s (status $(health "$svc"))"
    sleep 1
  done
  ok "$svc is healthy"
done
sims_id=$(dc ps -a -q sims)
[ "$(docker inspect -f '{{.State.ExitCode}}' "$sims_id")" = 0 ] || fail "the sims service did not provision the test SIMs"
ok "sims provisioned the test SIMs"

# The core publishes its keys.
code=$(curl -sS -m 10 -o "$tmp/jwks" -w '%{http_code}' "$JWKS") || fail "GET $JWKS failed"
[ "$code" = 200 ] && grep -q '"keys"' "$tmp/jwks" || fail "GET $JWKS answered $code: $(cat "$tmp/jwks")"
ok "core serves the JWK Set on $JWKS"

imsi() { printf '00101%010d' "$1"; }
# imei IMSI: ran.imei_tac 35693803 + the IMSI's last 6 digits + Luhn digit.
imei() {
  local body=35693803${1: -6} sum=0 i d
  for ((i = 0; i < 14; i++)); do
    d=${body:13-i:1}
    if ((i % 2 == 0)); then d=$((d * 2)); ((d > 9)) && d=$((d - 9)); fi
    sum=$((sum + d))
  done
  echo "$body$(((10 - sum % 10) % 10))"
}
# socks IMSI ARGS...: curl as the UE with that IMSI, names resolved in the network.
socks() { local who=$1; shift; curl -sS -m 15 --proxy "socks5h://$who@127.0.0.1:$SIMGATE_SOCKS_PORT" "$@"; }
json_field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }
# token IMSI: the UE's token from http://endorse.soracom.io/ over its session.
token() { socks "$1" http://endorse.soracom.io/ | json_field token; }

# Wait for the UEs: the first token through SOCKS means attached and routed.
deadline=$((SECONDS + WAIT))
until t=$(token "$(imsi 1)" 2>"$tmp/err") && [ -n "$t" ]; do
  [ "$SECONDS" -lt "$deadline" ] || fail "no token through SOCKS after ${WAIT}s: $(cat "$tmp/err")"
  sleep 2
done
ok "UE $(imsi 1) reaches endorse.soracom.io through SOCKS"

# Every UE: token over its PDU session, verified with the core's keys, naming
# exactly its own IMSI and IMEI.
declare -A tokens
for n in $(seq 1 "$UES"); do
  s=$(imsi "$n") e=$(imei "$(imsi "$n")")
  t=$(token "$s") && [ -n "$t" ] || fail "UE $s: no token"
  "$simgate" token verify --jwks "$JWKS" "$t" >"$tmp/claims" 2>&1 || fail "UE $s: token does not verify: $(cat "$tmp/claims")"
  grep -q "\"imsi\": \"$s\"" "$tmp/claims" || fail "UE $s: token names another IMSI: $(cat "$tmp/claims")"
  grep -q "\"imei\": \"$e\"" "$tmp/claims" || fail "UE $s: token does not name IMEI $e: $(cat "$tmp/claims")"
  tokens[$n]=$t
done
ok "$UES UEs got tokens through GTP-U and the UPF, each verified and naming its IMSI and IMEI"

# upload LABEL WANT_CODE WANT_TEXT CURL_ARGS...: POST /upload, check the answer.
upload() {
  local label=$1 want=$2 text=$3 code
  shift 3
  code=$(curl -sS -m 15 -o "$tmp/body" -w '%{http_code}' --data-binary "simgate compose test" "$@") \
    || fail "$label: request failed"
  [ "$code" = "$want" ] && grep -q "$text" "$tmp/body" \
    || fail "$label: want $want with $text, got $code: $(cat "$tmp/body")"
  ok "$label: $code $(grep -o "$text" "$tmp/body" | head -1)"
}
bearer() { echo "Authorization: Bearer ${tokens[$1]}"; }

upload "upload over the host (Wi-Fi) with UE 1's token" 201 "\"imei\":\"$(imei "$(imsi 1)")\"" \
  -H "$(bearer 1)" "$APP/upload"
upload "upload through UE 2's session (UPF NAT -> N6) with its token" 201 "\"imsi\":\"$(imsi 2)\"" \
  --proxy "socks5h://$(imsi 2)@127.0.0.1:$SIMGATE_SOCKS_PORT" -H "$(bearer 2)" "http://$APP_N6/upload"
upload "stolen SIM (UE 9's SIM registered in another handset)" 403 '"error":"imei_mismatch"' \
  -H "$(bearer 9)" "$APP/upload"
upload "unregistered handset (UE 10)" 403 '"error":"device_not_registered"' \
  -H "$(bearer 10)" "$APP/upload"
upload "no token" 401 '"error":"missing_token"' "$APP/upload"
# Tampered: UE 1's token with the claims of UE 10's (valid signature, wrong payload).
IFS=. read -r h1 _ s1 <<<"${tokens[1]}"
IFS=. read -r _ p10 _ <<<"${tokens[10]}"
forged=$h1.$p10.$s1
if "$simgate" token verify --jwks "$JWKS" "$forged" >/dev/null 2>&1; then fail "a forged token verifies"; fi
ok "a forged token does not verify (simgate token verify)"
upload "forged token" 401 '"error":"invalid_token"' -H "Authorization: Bearer $forged" "$APP/upload"

# An IMSI with no attached UE gets no session through SOCKS.
if socks "$(imsi 11)" -o /dev/null http://endorse.soracom.io/ 2>"$tmp/err"; then
  fail "SOCKS spoke as $(imsi 11), which is not attached"
fi
ok "SOCKS refuses an IMSI that is not attached: $(tr -d '\n' <"$tmp/err")"

# Nothing crashed along the way.
for svc in upf core app ran; do [ "$(health "$svc")" = healthy ] || fail "$svc is $(health "$svc") after the test"; done
ok "every service is still up"
