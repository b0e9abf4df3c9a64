#!/usr/bin/env bash
# Shadow proxy benchmark: the reference server alone, then behind
# `darktime shadow --mode mirror --percent 100`, under the same fan-out load.
# Primary and candidate servers are pinned to core 0; the proxy and
# `darktime bench fanout` share core 1 (a 2-core machine has no core to
# spare for the proxy alone). Prints, per run, the user-side latency and the
# CPU of every process over the whole run (ticks of 10 ms).
#
# Usage: scripts/bench-shadow.sh            (environment: REPEAT=3 SUBSCRIBERS=6000 RATE=20)
# 6,000 streams by default: a mirrored stream costs the proxy three file
# descriptors (user, primary, candidate), and a process may open 20,000.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
REPEAT=${REPEAT:-3}
SUBSCRIBERS=${SUBSCRIBERS:-6000}
RATE=${RATE:-20}
ulimit -n "$(ulimit -Hn)"
bindir=$(mktemp -d)
bin=$bindir/darktime
go build -o "$bin" ./cmd/darktime
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$bindir"; }
trap cleanup EXIT
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
wait_up() { for _ in $(seq 100); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "bench-shadow: $1 did not come up" >&2; exit 1; }

run() {
	local mode=$1 n=$2 target
	taskset -c 0 "$bin" server --listen 127.0.0.1:18100 --log-level warn & local P=$!
	taskset -c 0 "$bin" server --listen 127.0.0.1:18101 --log-level warn & local C=$!
	pids=("$P" "$C")
	wait_up http://127.0.0.1:18100/healthz; wait_up http://127.0.0.1:18101/healthz
	target=http://127.0.0.1:18100
	local X=
	if [ "$mode" = mirror ]; then
		taskset -c 1 "$bin" shadow --listen 127.0.0.1:18102 --admin 127.0.0.1:18103 \
			--primary http://127.0.0.1:18100 --candidate http://127.0.0.1:18101 \
			--mode mirror --percent 100 --mirror-unsafe --log-level warn & X=$!
		pids+=("$X")
		wait_up http://127.0.0.1:18103/_darktime/healthz
		target=http://127.0.0.1:18102
	fi
	local p0 c0 x0=0 p1 c1 x1=0
	p0=$(cpu "$P"); c0=$(cpu "$C"); [ -n "$X" ] && x0=$(cpu "$X")
	local out
	out=$(taskset -c 1 "$bin" bench fanout --target "$target" --server-pid "$P" --subscribers "$SUBSCRIBERS" \
		--channels 10 --rate "$RATE" --duration 20s 2>/dev/null) || echo "bench-shadow: $mode run $n: the load failed" >&2
	p1=$(cpu "$P"); c1=$(cpu "$C"); [ -n "$X" ] && x1=$(cpu "$X")
	printf '%-6s run %d: %s | cpu ticks primary %d candidate %d proxy %d\n' "$mode" "$n" \
		"$(echo "$out" | grep -E '^latency:' | sed 's/ *latency: *//')" $((p1 - p0)) $((c1 - c0)) $((x1 - x0))
	echo "$out" | grep -E '^delivery:' | sed 's/^/         /' || true
	if [ -n "$X" ]; then
		curl -s http://127.0.0.1:18103/_darktime/ledger | grep -m1 -E '"balance"' | sed 's/^ */         ledger /' || true
	fi
	kill "${pids[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	pids=()
	sleep 1
}
for n in $(seq "$REPEAT"); do run direct "$n"; done
for n in $(seq "$REPEAT"); do run mirror "$n"; done
