#!/usr/bin/env bash
# Cross-node fan-out through one Redis against a 3-master Redis Cluster, in
# one run, interleaved (one, cluster, one, cluster, ...) so the machine's
# drift hits both alike.
#
# Layout, per run (everything restarted, every Redis empty, no persistence):
# the broker — one redis-server, or MASTERS cluster masters without replicas
# (`redis-cli --cluster create`) — and two `darktime server` nodes on it,
# all pinned to core 0; `darktime bench fanout` on core 1 spreads
# SUBSCRIBERS subscribers and the publishes over both nodes round robin, so
# every event goes node → Redis (one script: history + publish) → pub/sub
# to both nodes (SPUBLISH/SSUBSCRIBE on the cluster, one link per shard and
# node) → SSE. Reported per run: delivery p50/p99/p99.9, the two nodes' CPU
# per delivery summed, and the Redis processes' CPU per delivery summed
# over shards.
#
# Usage: scripts/bench-cluster.sh
# Environment: REPEAT (3) SUBSCRIBERS (4000) CHANNELS (40) RATE (200 events/s)
#              DURATION (20s) SIZE (100) MASTERS (3)
# Results: results/bench/cluster-<UTC time>/ (git-ignored): {one,cluster}-<n>.json
# and .txt, summary.txt.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

REPEAT=${REPEAT:-3}
SUBSCRIBERS=${SUBSCRIBERS:-4000}
CHANNELS=${CHANNELS:-40}
RATE=${RATE:-200}
DURATION=${DURATION:-20s}
SIZE=${SIZE:-100}
MASTERS=${MASTERS:-3}

for tool in redis-server redis-cli jq taskset; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "bench-cluster: $tool not found (apt-get install -y redis-server redis-tools jq util-linux)" >&2
		exit 1
	fi
done
if [ "$(nproc)" -lt 2 ]; then
	echo "bench-cluster: needs 2 cores (servers and Redis on 0, load on 1)" >&2
	exit 1
fi
ulimit -n "$(ulimit -Hn)"

out=$repo/results/bench/cluster-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
# A private build and private Redis directories.
tmp=$(mktemp -d)
bin=$tmp/darktime
go build -o "$bin" ./cmd/darktime
failures=0
pids=()

# shellcheck source=lib/redis.sh
. "$repo/scripts/lib/redis.sh"
PIN=0

trap 'stop_all; rm -rf "$tmp"' EXIT

# start_stack kind n: the broker and two nodes; sets url, node_pids,
# redis_pids, targets.
start_stack() {
	local kind=$1 n=$2 port
	broker_start "$kind" "$tmp/$kind-$n" "$MASTERS"
	url=$redis_url
	node_pids=()
	targets=()
	for k in 1 2; do
		port=$(free_port)
		taskset -c 0 "$bin" server --listen "127.0.0.1:$port" --redis "$url" --workers 0 --node-id "node$k" \
			--log-level warn >"$out/$kind-$n-node$k.log" 2>&1 &
		pids+=($!)
		node_pids+=($!)
		targets+=("http://127.0.0.1:$port")
		wait_port "$port"
	done
}

# nodes_us FILE / redis_us FILE: CPU µs per delivery, summed.
nodes_us() { jq -r '[.server_cpu_us_per_delivery, (.processes[] | select(.name | startswith("node")) | .cpu_us_per_delivery)] | add * 100 | round / 100' "$1"; }
redis_us() { jq -r '[.processes[] | select(.name | startswith("redis")) | .cpu_us_per_delivery] | add * 100 | round / 100' "$1"; }

echo "bench-cluster: $SUBSCRIBERS subscribers on $CHANNELS channels over 2 nodes, $RATE events/s for $DURATION; one Redis vs $MASTERS masters; results in $out"
declare -A files=([one]="" [cluster]="")
for i in $(seq "$REPEAT"); do
	for kind in one cluster; do
		json=$out/$kind-$i.json
		start_stack "$kind" "$i"
		procs="node2=${node_pids[1]}"
		r=0
		for p in "${redis_pids[@]}"; do
			r=$((r + 1))
			procs+=",redis$r=$p"
		done
		taskset -c 1 "$bin" bench fanout --target "${targets[0]},${targets[1]}" --server-pid "${node_pids[0]}" \
			--pids "$procs" --subscribers "$SUBSCRIBERS" --channels "$CHANNELS" --rate "$RATE" \
			--duration "$DURATION" --size "$SIZE" --json "$json" >"$out/$kind-$i.txt" 2>"$out/$kind-$i.log" || {
			echo "bench-cluster: $kind run $i failed; see $out/$kind-$i.log" >&2
			tail -n 3 "$out/$kind-$i.log" >&2
			failures=$((failures + 1))
		}
		stop_all
		[ -s "$json" ] || continue
		files[$kind]+=" $json"
		printf '%-7s run %d: %6.0f deliveries/s  lost %s  p50 %6.2f ms  p99 %6.2f ms  p99.9 %6.2f ms  | µs CPU per delivery: nodes %s  redis %s\n' \
			"$kind" "$i" "$(get "$json" .achieved_deliveries_per_s)" "$(get "$json" .lost_deliveries)" \
			"$(get "$json" .latency_p50_ms)" "$(get "$json" .latency_p99_ms)" "$(get "$json" .latency_p999_ms)" \
			"$(nodes_us "$json")" "$(redis_us "$json")" | tee -a "$out/summary.txt"
	done
done

get_p50() { get "$1" .latency_p50_ms; }
get_p99() { get "$1" .latency_p99_ms; }
get_p999() { get "$1" .latency_p999_ms; }
get_lost() { get "$1" .lost_deliveries; }
med() { # kind extractor
	local f
	for f in ${files[$1]}; do "$2" "$f"; done | grep -v '^-$' | median
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 > 0 && a != "-") printf "%.2f", a / b; else print "-"}'; }
if [ -n "${files[one]}" ] && [ -n "${files[cluster]}" ]; then
	{
		for kind in one cluster; do
			printf 'median %-7s p50 %s ms  p99 %s ms  p99.9 %s ms  | µs CPU per delivery: nodes %s  redis %s  | lost %s\n' "$kind" \
				"$(med "$kind" get_p50)" "$(med "$kind" get_p99)" "$(med "$kind" get_p999)" \
				"$(med "$kind" nodes_us)" "$(med "$kind" redis_us)" "$(med "$kind" get_lost)"
		done
		printf 'cluster / one: p99 %s×  node CPU per delivery %s×  redis CPU per delivery %s×\n' \
			"$(ratio "$(med cluster get_p99)" "$(med one get_p99)")" \
			"$(ratio "$(med cluster nodes_us)" "$(med one nodes_us)")" \
			"$(ratio "$(med cluster redis_us)" "$(med one redis_us)")"
	} | tee -a "$out/summary.txt"
fi
if [ "$failures" -gt 0 ]; then
	echo "bench-cluster: $failures run(s) failed" >&2
	exit 1
fi
