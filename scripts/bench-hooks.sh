#!/usr/bin/env bash
# Hook pipeline benchmark: POST /hooks → Redis job queue → two workers →
# Redis pub/sub → SSE subscribers, on one private Redis.
#
# Layout, per run (everything restarted, so every run starts from an empty
# Redis): one redis-server (no persistence) on a free port, one
# `darktime server --workers 0` (the web tier: POST /hooks, SSE), two
# `darktime worker --lanes 2` processes and `darktime bench hooks`. With only
# two cores and five busy processes nothing is pinned by default: any split
# starves one stage (Redis alone needs most of a core at full load), and the
# scheduler balances better than a fixed split. PIN_REDIS=<cpu list> pins
# redis-server with taskset to try a split.
#
# Before the runs, `redis-benchmark -q -n 200000 -P 16 -t set,lpush` on the
# same Redis gives the ceiling of simple pipelined commands on this machine.
# Each run posts JOBS hooks as fast as possible (throughput), then RATE
# hooks/s for DURATION (latency: hook → event on the wire at a subscriber).
#
# KINDS="one cluster" runs every repetition on one Redis and then on a
# MASTERS-master Redis Cluster (no replicas; the queue spread over its
# partitions, one slot each), interleaved; Redis CPU is summed over the
# shards.
#
# Usage: scripts/bench-hooks.sh
# Environment: REPEAT (3) JOBS (200000) BATCH (500) POSTERS (4) RATE (5000)
#              DURATION (20s) LATENCY_BATCH (10) SUBSCRIBERS (100) LANES (2)
#              PIN_REDIS (unset) KINDS (one) MASTERS (3)
# Results: results/bench/hooks-<UTC time>/ (git-ignored): run-<n>.json and
# .txt, redis INFO commandstats and cpu per run, redis-benchmark.txt,
# summary.txt.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

REPEAT=${REPEAT:-3}
JOBS=${JOBS:-200000}
BATCH=${BATCH:-500}
POSTERS=${POSTERS:-4}
RATE=${RATE:-5000}
DURATION=${DURATION:-20s}
LATENCY_BATCH=${LATENCY_BATCH:-10}
SUBSCRIBERS=${SUBSCRIBERS:-100}
LANES=${LANES:-2}
PIN_REDIS=${PIN_REDIS:-}
KINDS=${KINDS:-one}
MASTERS=${MASTERS:-3}

for tool in redis-server redis-cli redis-benchmark jq; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "bench-hooks: $tool not found (apt-get install -y redis-server redis-tools jq)" >&2
		exit 1
	fi
done

out=$repo/results/bench/hooks-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
# A private build and a private Redis directory: bin/darktime may be rebuilt
# by someone else mid-run.
tmp=$(mktemp -d)
bin=$tmp/darktime
go build -o "$bin" ./cmd/darktime
failures=0
pids=()

# shellcheck source=lib/redis.sh
. "$repo/scripts/lib/redis.sh"
PIN=$PIN_REDIS

trap 'stop_all; rm -rf "$tmp"' EXIT

# start_stack kind n: the broker, the web tier and two workers; sets
# redis_pids, redis_ports, server_pid, target, worker_pids.
start_stack() {
	local kind=$1 n=$2
	broker_start "$kind" "$tmp/redis-$kind-$n" "$MASTERS"
	local url=$redis_url port
	port=$(free_port)
	"$bin" server --listen "127.0.0.1:$port" --redis "$url" --workers 0 --log-level warn >"$out/server-$kind-$n.log" 2>&1 &
	server_pid=$!
	pids+=("$server_pid")
	target=http://127.0.0.1:$port
	wait_port "$port"
	worker_pids=()
	for w in 1 2; do
		port=$(free_port)
		"$bin" worker --redis "$url" --lanes "$LANES" --listen "127.0.0.1:$port" --log-level warn >"$out/worker$w-$kind-$n.log" 2>&1 &
		worker_pids+=($!)
		pids+=($!)
		wait_port "$port"
	done
}


cpu() { # FILE PHASE NAME: µs per job; NAME redis sums every redis* (the shards)
	if [ "$3" = redis ]; then
		jq -r "[.$2.processes[]? | select(.name | startswith(\"redis\")) | .cpu_us_per_job] | if length == 0 then \"-\" else add * 100 | round / 100 end" "$1"
	else
		get "$1" ".$2.processes[]? | select(.name == \"$3\") | .cpu_us_per_job"
	fi
}

echo "bench-hooks: $JOBS jobs in batches of $BATCH, then $RATE jobs/s for $DURATION; $SUBSCRIBERS subscribers; 2 workers × $LANES lanes; brokers: $KINDS; results in $out"

# The ceiling: plain pipelined commands on the same kind of Redis.
start_stack one 0
redis-benchmark -h 127.0.0.1 -p "${redis_ports[0]}" -q -n 200000 -P 16 -t set,lpush | tr '\r' '\n' | grep -v -e '^ *$' -e 'rps=' | tee "$out/redis-benchmark.txt"
stop_all

declare -A files
for i in $(seq "$REPEAT"); do
	for kind in $KINDS; do
		json=$out/$kind-$i.json
		start_stack "$kind" "$i"
		procs="server=$server_pid,worker1=${worker_pids[0]},worker2=${worker_pids[1]}"
		for r in "${!redis_pids[@]}"; do procs+=",redis$((r + 1))=${redis_pids[$r]}"; done
		"$bin" bench hooks --target "$target" --subscribers "$SUBSCRIBERS" \
			--jobs "$JOBS" --batch "$BATCH" --posters "$POSTERS" \
			--rate "$RATE" --duration "$DURATION" --latency-batch "$LATENCY_BATCH" \
			--pids "$procs" --json "$json" >"$out/$kind-$i.txt" 2>"$out/$kind-$i.log" || {
			echo "bench-hooks: $kind run $i failed; see $out/$kind-$i.log" >&2
			tail -n 3 "$out/$kind-$i.log" >&2
			failures=$((failures + 1))
		}
		for r in "${!redis_ports[@]}"; do
			redis-cli -p "${redis_ports[$r]}" INFO commandstats >"$out/redis$((r + 1))-commandstats-$kind-$i.txt" 2>&1 || true
		done
		stop_all
		[ -s "$json" ] || continue
		files[$kind]+=" $json"
		printf '%-7s run %d: %6.0f jobs/s (accepted %6.0f/s)  lost %s  | at %s jobs/s: p50 %6.2f ms  p99 %7.2f ms  p99.9 %7.2f ms  lost %s  | µs/job server %s worker1 %s worker2 %s redis %s bench %s\n' \
			"$kind" "$i" "$(get "$json" .throughput.jobs_per_s)" "$(get "$json" .throughput.accepted_jobs_per_s)" \
			"$(get "$json" .throughput.events_lost)" "$(get "$json" .latency.offered_jobs_per_s)" \
			"$(get "$json" .latency.latency_p50_ms)" "$(get "$json" .latency.latency_p99_ms)" \
			"$(get "$json" .latency.latency_p999_ms)" "$(get "$json" .latency.events_lost)" \
			"$(cpu "$json" throughput server)" "$(cpu "$json" throughput worker1)" \
			"$(cpu "$json" throughput worker2)" "$(cpu "$json" throughput redis)" \
			"$(get "$json" .throughput.client.cpu_us_per_job)" | tee -a "$out/summary.txt"
	done
done

for kind in $KINDS; do
	[ -n "${files[$kind]:-}" ] || continue
	med() { for f in ${files[$kind]}; do get "$f" "$1"; done | grep -v '^-$' | median; }
	medcpu() { for f in ${files[$kind]}; do cpu "$f" "$1" "$2"; done | grep -v '^-$' | median; }
	{
		printf '%s, median of %d: throughput %s jobs/s (accepted %s/s); latency at %s jobs/s p50 %s ms, p99 %s ms, p99.9 %s ms, max %s ms\n' \
			"$kind" "$(wc -w <<<"${files[$kind]}")" "$(med .throughput.jobs_per_s)" "$(med .throughput.accepted_jobs_per_s)" \
			"$(med .latency.offered_jobs_per_s)" "$(med .latency.latency_p50_ms)" \
			"$(med .latency.latency_p99_ms)" "$(med .latency.latency_p999_ms)" "$(med .latency.latency_max_ms)"
		for phase in throughput latency; do
			printf '  µs CPU per job, %-10s server %s  worker1 %s  worker2 %s  redis (all shards) %s  bench %s\n' "$phase:" \
				"$(medcpu "$phase" server)" "$(medcpu "$phase" worker1)" "$(medcpu "$phase" worker2)" \
				"$(medcpu "$phase" redis)" "$(med ".$phase.client.cpu_us_per_job")"
		done
	} | tee -a "$out/summary.txt"
done
if [ "$failures" -gt 0 ]; then
	echo "bench-hooks: $failures run(s) failed" >&2
	exit 1
fi
