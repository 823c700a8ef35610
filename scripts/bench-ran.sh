#!/usr/bin/env bash
# Measures the control plane end to end on this machine: `simgate up` (core
# and UPF) and `simgate ran` (gNBs and UEs) as two processes on loopback,
# SCTP over UDP on N2, PFCP on N4.
#  1. attach rate: 10,000 UEs register and open a PDU session as fast as they can;
#  2. latency at a fixed rate: 2,000 UEs at 200/s, p50/p99;
#  3. core memory per attached UE: RSS of `simgate up` with 10,000 UEs held
#     attached, minus its RSS before, divided by 10,000.
# Usage: scripts/bench-ran.sh [UEs]   (prints JSON reports and a summary)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
work=$(mktemp -d)
trap 'kill $up_pid $hold_pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/simgate" ./cmd/simgate
sg="$work/simgate"
up_pid= hold_pid=
# Ports of their own, so a running simgate does not disturb the measurement.
amf=127.0.0.1:39899
"$sg" up --data-dir "$work/data" --up.test_sims "$N" --http.addr "" --log.level warn \
  --amf.n2.local_addr "$amf" --upf.n4_addr 127.0.0.1:0 --upf.n3_addr 127.0.0.1 --upf.n3_listen 127.0.0.1:0 &
up_pid=$!
for _ in $(seq 1 100); do [ -f "$work/data/sims.json" ] && break; sleep 0.1; done
sleep 1
rss() { awk '/VmRSS/ {print $2}' /proc/$1/status; }
rss0=$(rss $up_pid)

echo "== attach rate: $N UEs, no rate limit, 4 gNBs"
"$sg" ran --amf "$amf" --data-dir "$work/ran" --ues "$N" --rate 0 --gnbs 4 --json "$work/rate.json" 2>/dev/null >/dev/null
cat "$work/rate.json"

echo "== latency at 200/s: 2000 UEs"
"$sg" ran --amf "$amf" --data-dir "$work/ran" --ues 2000 --rate 200 --json "$work/lat.json" 2>/dev/null >/dev/null
cat "$work/lat.json"

echo "== memory: $N UEs held attached"
"$sg" ran --amf "$amf" --data-dir "$work/ran" --ues "$N" --rate 0 --gnbs 4 --hold --json "$work/hold.json" 2>/dev/null >/dev/null &
hold_pid=$!
for _ in $(seq 1 600); do
  sleep 0.5
  r=$(rss $up_pid); [ -n "$r" ] || break
  # settle: the UEs are attached once the core's RSS stops growing for 3 s
  if [ "${last:-0}" = "$r" ]; then stable=$((stable+1)); else stable=0; fi
  last=$r
  [ "$stable" -ge 6 ] && break
done
rss1=$(rss $up_pid)
kill -INT $hold_pid; wait $hold_pid || true
echo "core RSS before: ${rss0} KiB, with $N attached: ${rss1} KiB"
echo "core memory per attached UE: $(( (rss1 - rss0) * 1024 / N )) bytes"
