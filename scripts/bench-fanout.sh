#!/usr/bin/env bash
# Fan-out load benchmark: SUBSCRIBERS SSE subscribers over CHANNELS channels,
# the server pinned to core 0 and `darktime bench fanout` pinned to core 1.
# It runs REPEAT rounds at BASE_RATE (20 events/s over 10,000 subscribers =
# 20,000 deliveries/s) and REPEAT rounds at SAT_RATE (250 events/s = 250,000
# deliveries/s offered, beyond saturation); in each round every kind runs
# once, in turn (alternating, so a change in the machine's speed hits all
# of them), each on a freshly started server. It prints every run, the
# medians per kind and, with the floor in the set, each kind's CPU per
# delivery and p99 as a ratio to the floor's and darktime's to nchan's.
#
# Usage: scripts/bench-fanout.sh [darktime|nchan|floor|floor-syscall|all|KIND,KIND...]
#        (default darktime; all = floor,darktime,nchan)
# Environment: REPEAT SUBSCRIBERS CHANNELS DURATION SIZE BASE_RATE SAT_RATE
#              SAT_DRAIN PHASES (default "base saturation")
# floor is bench/floor: one raw write(2) per subscriber per publish and
# nothing else, the yardstick; floor-syscall is the same through
# syscall.Write (the scheduler told of every write). Floors do not run the
# saturation phase (their non-blocking writes drop what a full socket does
# not take, by design).
# nchan runs the repository's internal/nchanconf/nchan-nginx.conf (the one
# `start: nchan` uses).
# Results: results/bench/<UTC time>/<kind>-<phase>-<n>.json (git-ignored).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

kind=${1:-darktime}
REPEAT=${REPEAT:-3}
SUBSCRIBERS=${SUBSCRIBERS:-10000}
CHANNELS=${CHANNELS:-10}
DURATION=${DURATION:-20s}
SIZE=${SIZE:-100}
BASE_RATE=${BASE_RATE:-20}
SAT_RATE=${SAT_RATE:-250}
SAT_DRAIN=${SAT_DRAIN:-5s}

PHASES=${PHASES:-base saturation}
if [ "$kind" = all ]; then
	kind=floor,darktime
	if command -v nginx >/dev/null 2>&1; then
		kind+=,nchan
	else
		echo "bench-fanout: nginx not installed, skipping nchan (apt-get install -y nginx-light libnginx-mod-nchan)" >&2
	fi
fi
IFS=, read -r -a kinds <<<"$kind"
for k in "${kinds[@]}"; do
	case "$k" in
	floor | floor-syscall | darktime | nchan) ;;
	*)
		echo "usage: $0 [darktime|nchan|floor|floor-syscall|all|KIND,KIND...]" >&2
		exit 2
		;;
	esac
done

if [ "$(nproc)" -lt 2 ]; then
	echo "bench-fanout: needs 2 cores (server on 0, load on 1)" >&2
	exit 1
fi
ulimit -n "$(ulimit -Hn)"

out=$repo/results/bench/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
# A private build: bin/darktime may be rebuilt by someone else mid-run.
bindir=$(mktemp -d)
bin=$bindir/darktime
go build -o "$bin" ./cmd/darktime
go build -o "$bindir/floor" ./bench/floor
failures=0

server_pid=
server_dir=
target=

wait_port() { # host port
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "bench-fanout: nothing listens on $1:$2" >&2
	return 1
}

start_server() { # kind
	case "$1" in
	darktime)
		taskset -c 0 "$bin" server --listen 127.0.0.1:8080 >"$out/darktime-server.log" 2>&1 &
		server_pid=$!
		target=http://127.0.0.1:8080
		wait_port 127.0.0.1 8080
		;;
	floor | floor-syscall)
		local mode=raw
		[ "$1" = floor-syscall ] && mode=syscall
		taskset -c 0 "$bindir/floor" --listen 127.0.0.1:8070 --write "$mode" >"$out/$1-server.log" 2>&1 &
		server_pid=$!
		target=http://127.0.0.1:8070
		wait_port 127.0.0.1 8070
		;;
	nchan)
		if ! command -v nginx >/dev/null 2>&1; then
			echo "bench-fanout: nginx not installed (apt-get install -y nginx-light libnginx-mod-nchan)" >&2
			exit 1
		fi
		server_dir=$(mktemp -d)
		cp "$repo/internal/nchanconf/nchan-nginx.conf" "$server_dir/"
		(cd "$server_dir" && taskset -c 0 nginx -c "$PWD/nchan-nginx.conf" -g "pid $PWD/nginx.pid; error_log $PWD/error.log warn;")
		for _ in $(seq 50); do [ -s "$server_dir/nginx.pid" ] && break; sleep 0.1; done
		server_pid=$(cat "$server_dir/nginx.pid") # the master; its worker is measured as its child
		target=http://127.0.0.1:8090
		wait_port 127.0.0.1 8090
		;;
	esac
}

alive() { # pid: running and not a zombie (nginx's master is nobody's child here)
	local state
	state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ $state != Z* ]]
}

stop_server() {
	[ -n "$server_pid" ] || return 0
	kill "$server_pid" 2>/dev/null || true
	for _ in $(seq 100); do alive "$server_pid" || break; sleep 0.1; done
	wait "$server_pid" 2>/dev/null || true # only our own child (darktime) is waitable
	if [ -n "$server_dir" ]; then
		cp "$server_dir/error.log" "$out/nchan-error.log" 2>/dev/null || true
		rm -rf "$server_dir"
	fi
	server_pid= server_dir=
}
trap 'stop_server; rm -rf "$bindir"' EXIT

# field KEY FILE: a number from the indented JSON darktime writes.
field() {
	sed -n "s/^ *\"$1\": \([-0-9.eE+]*\),\{0,1\}\$/\1/p" "$2" | head -n1
}

median() {
	sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

metrics=(server_cpu_us_per_delivery latency_p50_ms latency_p99_ms achieved_deliveries_per_s lost_deliveries server_rss_per_subscriber_kib client_cpu_us_per_event)

run_one() { # kind phase rate drain round
	local k=$1 phase=$2 rate=$3 drain=$4 i=$5
	local json=$out/$k-$phase-$i.json
	start_server "$k"
	local load
	load=$(cut -d' ' -f1 /proc/loadavg)
	taskset -c 1 "$bin" bench fanout --target "$target" --server-pid "$server_pid" \
		--subscribers "$SUBSCRIBERS" --channels "$CHANNELS" --rate "$rate" \
		--duration "$DURATION" --size "$SIZE" --drain "$drain" \
		--json "$json" >"$out/$k-$phase-$i.txt" 2>"$out/$k-$phase-$i.log" || {
		echo "bench-fanout: $k $phase run $i failed; see $out/$k-$phase-$i.log" >&2
		tail -n 3 "$out/$k-$phase-$i.log" >&2
		failures=$((failures + 1))
	}
	stop_server
	[ -s "$json" ] || return 0
	local note=
	if grep -q '"client_limited": true' "$json"; then note=" CLIENT-BOUND"; fi
	printf '%-8s %-10s run %d: %7.2f µs/delivery  p50 %7.2f ms  p99 %8.2f ms  %8.0f deliveries/s  lost %s  pub-fail %s  %5.2f KiB/sub  client %5.2f µs/event  load %s%s\n' \
		"$k" "$phase" "$i" "$(field server_cpu_us_per_delivery "$json")" \
		"$(field latency_p50_ms "$json")" "$(field latency_p99_ms "$json")" \
		"$(field achieved_deliveries_per_s "$json")" "$(field lost_deliveries "$json")" \
		"$(field publishes_failed "$json")" \
		"$(field server_rss_per_subscriber_kib "$json")" "$(field client_cpu_us_per_event "$json")" "$load" "$note" |
		tee -a "$out/runs.txt"
}

# med KIND PHASE METRIC: the median of a metric over the kind's runs.
med() {
	local f
	for f in "$out/$1-$2"-*.json; do
		if [ -s "$f" ]; then field "$3" "$f"; fi
	done | median
}

summarise() { # kind phase: every metric's median over the runs that wrote a result
	local runs=0 f m
	for f in "$out/$1-$2"-*.json; do
		if [ -s "$f" ]; then runs=$((runs + 1)); fi
	done
	[ "$runs" -gt 0 ] || return 0
	printf '%-22s median of %d:' "$1 $2" "$runs"
	for m in "${metrics[@]}"; do
		printf ' %s=%s' "$m" "$(med "$1" "$2" "$m")"
	done
	printf '\n'
}

ratio() { # a b
	awk -v a="$1" -v b="$2" 'BEGIN {if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f×", a / b}'
}

run_phase() { # phase rate drain
	local phase=$1 rate=$2 drain=$3 k i
	for i in $(seq "$REPEAT"); do
		for k in "${kinds[@]}"; do
			if [[ $k == floor* ]] && [ "$phase" = saturation ]; then continue; fi
			run_one "$k" "$phase" "$rate" "$drain" "$i"
		done
	done
	for k in "${kinds[@]}"; do
		summarise "$k" "$phase" | tee -a "$out/summary.txt"
	done
	local has_floor=false has_nchan=false has_darktime=false
	for k in "${kinds[@]}"; do
		case "$k" in floor) has_floor=true ;; nchan) has_nchan=true ;; darktime) has_darktime=true ;; esac
	done
	if [ "$phase" = base ] && $has_floor; then
		for k in "${kinds[@]}"; do
			[ "$k" = floor ] && continue
			printf '%-8s %-10s against the floor: CPU per delivery %s, p50 %s, p99 %s\n' "$k" "$phase" \
				"$(ratio "$(med "$k" "$phase" server_cpu_us_per_delivery)" "$(med floor "$phase" server_cpu_us_per_delivery)")" \
				"$(ratio "$(med "$k" "$phase" latency_p50_ms)" "$(med floor "$phase" latency_p50_ms)")" \
				"$(ratio "$(med "$k" "$phase" latency_p99_ms)" "$(med floor "$phase" latency_p99_ms)")" |
				tee -a "$out/summary.txt"
		done
	fi
	if $has_nchan && $has_darktime; then
		printf '%-8s %-10s against nchan: CPU per delivery %s, p50 %s, p99 %s, deliveries/s %s\n' darktime "$phase" \
			"$(ratio "$(med darktime "$phase" server_cpu_us_per_delivery)" "$(med nchan "$phase" server_cpu_us_per_delivery)")" \
			"$(ratio "$(med darktime "$phase" latency_p50_ms)" "$(med nchan "$phase" latency_p50_ms)")" \
			"$(ratio "$(med darktime "$phase" latency_p99_ms)" "$(med nchan "$phase" latency_p99_ms)")" \
			"$(ratio "$(med darktime "$phase" achieved_deliveries_per_s)" "$(med nchan "$phase" achieved_deliveries_per_s)")" |
			tee -a "$out/summary.txt"
	fi
}

echo "bench-fanout: $SUBSCRIBERS subscribers, $CHANNELS channels, $DURATION, $SIZE-byte events; results in $out"
for phase in $PHASES; do
	case "$phase" in
	base) run_phase base "$BASE_RATE" 2s ;;
	saturation) run_phase saturation "$SAT_RATE" "$SAT_DRAIN" ;;
	*)
		echo "bench-fanout: unknown phase $phase (base, saturation)" >&2
		exit 2
		;;
	esac
done
if [ "$failures" -gt 0 ]; then
	echo "bench-fanout: $failures run(s) failed" >&2
	exit 1
fi
