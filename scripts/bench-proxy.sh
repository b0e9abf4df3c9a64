#!/usr/bin/env bash
# What the shadow proxy costs on the user path (issue 14, part 5).
#
# Arrangement (2 cores): the primary (`darktime server`) and the load
# (`darktime bench fanout`) share core 0; the relay under test has core 1 to
# itself, so it never competes with the load generator. Three relays, in
# alternating order, REPEAT times each, at SUBS subscribers per channel:
#   direct  the load straight at the primary (the reference for added p99);
#   floor   bench/relayfloor: accept, dial, copy bytes both ways with one
#           read and one write per chunk — the cheapest relay in Go;
#   proxy   `darktime shadow` with every route off (no user selected): the
#           path every unselected user takes;
#   divert  `darktime shadow --mode divert --percent 10` to a second
#           server (also on core 0), the canary's path.
# CPU per relayed event is the relay's CPU (utime+stime from /proc, via
# bench fanout --server-pid) from the first publish to the end of the drain,
# over the deliveries. Prints each run and the medians.
#
# Usage: scripts/bench-proxy.sh     (environment: REPEAT=3 CHANNELS=10 RATE=20
#                                    SUBS="100 600" DURATION=20s)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
REPEAT=${REPEAT:-3}
CHANNELS=${CHANNELS:-10}
RATE=${RATE:-20}
SUBS=${SUBS:-"100 600"}
DURATION=${DURATION:-20s}
ulimit -n "$(ulimit -Hn)"
bindir=$(mktemp -d)
bin=$bindir/darktime
go build -o "$bin" ./cmd/darktime
go build -o "$bindir/relayfloor" ./bench/relayfloor
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$bindir"; }
trap cleanup EXIT
wait_up() { for _ in $(seq 200); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "bench-proxy: $1 did not come up" >&2; exit 1; }
results=$(mktemp)

run() {
	local kind=$1 subs=$2 n=$3 target relay
	taskset -c 0 "$bin" server --listen 127.0.0.1:18100 --log-level warn & local P=$!
	pids=("$P")
	wait_up http://127.0.0.1:18100/healthz
	target=http://127.0.0.1:18100 relay=$P
	case $kind in
	floor)
		taskset -c 1 "$bindir/relayfloor" --listen 127.0.0.1:18110 --upstream 127.0.0.1:18100 & relay=$!
		pids+=("$relay"); target=http://127.0.0.1:18110
		wait_up $target/healthz ;;
	proxy | divert)
		local extra=(--mode off)
		if [ "$kind" = divert ]; then
			taskset -c 0 "$bin" server --listen 127.0.0.1:18101 --log-level warn & pids+=("$!")
			wait_up http://127.0.0.1:18101/healthz
			extra=(--candidate http://127.0.0.1:18101 --mode divert --percent 10)
		fi
		taskset -c 1 "$bin" shadow --listen 127.0.0.1:18102 --admin 127.0.0.1:18103 \
			--primary http://127.0.0.1:18100 "${extra[@]}" --log-level warn & relay=$!
		pids+=("$relay"); target=http://127.0.0.1:18102
		wait_up http://127.0.0.1:18103/_darktime/healthz ;;
	esac
	local out
	out=$(taskset -c 0 "$bin" bench fanout --target "$target" --server-pid "$relay" --subscribers $((subs * CHANNELS)) \
		--channels "$CHANNELS" --rate "$RATE" --duration "$DURATION" 2>/dev/null) || echo "bench-proxy: $kind run $n: the load failed" >&2
	local cpu p50 p99 lost
	cpu=$(echo "$out" | sed -n 's/^server: *\([0-9.]*\) µs CPU per delivery.*/\1/p')
	p50=$(echo "$out" | sed -n 's/^latency: *p50 \([0-9.]*\) ms.*/\1/p')
	p99=$(echo "$out" | sed -n 's/^latency:.* p99 \([0-9.]*\) ms, p99.9.*/\1/p')
	lost=$(echo "$out" | sed -n 's/^delivery:.* \([0-9]*\) lost.*/\1/p')
	printf '%-6s %4d/ch run %d: relay CPU %6s µs/delivery  p50 %6s ms  p99 %6s ms  lost %s\n' "$kind" "$subs" "$n" "$cpu" "$p50" "$p99" "$lost"
	echo "$kind $subs $cpu $p50 $p99" >>"$results"
	kill "${pids[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	pids=()
	sleep 1
}

echo "bench-proxy: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
for subs in $SUBS; do
	for n in $(seq "$REPEAT"); do
		for kind in direct floor proxy divert; do run "$kind" "$subs" "$n"; done
	done
done
echo "medians (relay CPU µs per delivery, p99 ms; ratios in the same runs):"
for subs in $SUBS; do
	awk -v subs="$subs" '
		function median(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
		$2 == subs { k = $1; c[k, ++nc[k]] = $3; p[k, ++np[k]] = $5 }
		END {
			split("direct floor proxy divert", kinds, " ")
			for (i = 1; i <= 4; i++) { k = kinds[i]; delete a; for (j = 1; j <= nc[k]; j++) a[j] = c[k, j]; mc[k] = median(a, nc[k])
				delete a; for (j = 1; j <= np[k]; j++) a[j] = p[k, j]; mp[k] = median(a, np[k]) }
			printf "  %d/ch: floor %.2f µs, proxy %.2f µs (%.2fx floor), divert %.2f µs (%.2fx); p99 direct %.2f, floor %.2f (+%.2f), proxy %.2f (+%.2f), divert %.2f (+%.2f) ms\n",
				subs, mc["floor"], mc["proxy"], mc["proxy"] / mc["floor"], mc["divert"], mc["divert"] / mc["floor"],
				mp["direct"], mp["floor"], mp["floor"] - mp["direct"], mp["proxy"], mp["proxy"] - mp["direct"], mp["divert"], mp["divert"] - mp["direct"]
		}' "$results"
done
rm -f "$results"
