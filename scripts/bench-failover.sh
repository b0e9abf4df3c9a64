#!/usr/bin/env bash
# What a Redis Cluster master's death costs a channel it serves: the time
# from the SIGKILL to the first delivery of an event published after it,
# and to /healthz 200 again on every node.
#
# Per run: a cluster of MASTERS masters with a replica each
# (cluster-node-timeout NODE_TIMEOUT ms, no persistence), two
# `darktime server` nodes; an SSE subscriber (curl) on node 2 to channel
# "failover"; a publisher posting to node 1 every INTERVAL seconds, each
# event carrying its send time; /healthz of both nodes polled every 50 ms.
# After WARM seconds the master serving the channel's slot is killed; the
# run ends RUN seconds later. The events' send times and the arrival times
# at the subscriber give: the last event delivered before the kill, the
# first published (answered 201) after it, the first delivered after it;
# the healthz log gives when each node answered 503 first and 200 again.
# Every event answered 201 must arrive (or be announced missed).
#
# Usage: scripts/bench-failover.sh
# Environment: REPEAT (3) MASTERS (3) NODE_TIMEOUT (2000) INTERVAL (0.02)
#              WARM (3) RUN (12)
# Results: results/bench/failover-<UTC time>/ (git-ignored).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

REPEAT=${REPEAT:-3}
MASTERS=${MASTERS:-3}
NODE_TIMEOUT=${NODE_TIMEOUT:-2000}
INTERVAL=${INTERVAL:-0.02}
WARM=${WARM:-3}
RUN=${RUN:-12}

for tool in redis-server redis-cli curl awk; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "bench-failover: $tool not found" >&2
		exit 1
	fi
done

out=$repo/results/bench/failover-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
tmp=$(mktemp -d)
bin=$tmp/darktime
go build -o "$bin" ./cmd/darktime
pids=()
# shellcheck source=lib/redis.sh
. "$repo/scripts/lib/redis.sh"

trap 'stop_all; rm -rf "$tmp"' EXIT

now() { date +%s.%N; }

echo "bench-failover: $MASTERS masters + $MASTERS replicas, cluster-node-timeout ${NODE_TIMEOUT} ms, a publish every ${INTERVAL}s; results in $out"
for i in $(seq "$REPEAT"); do
	d=$out/run-$i
	mkdir -p "$d"
	broker_start cluster "$tmp/run-$i" "$MASTERS" 1
	for port in "${redis_ports[@]}"; do redis-cli -p "$port" CONFIG SET cluster-node-timeout "$NODE_TIMEOUT" >/dev/null; done
	targets=()
	for k in 1 2; do
		port=$(free_port)
		"$bin" server --listen "127.0.0.1:$port" --redis "$redis_url" --workers 0 --node-id "node$k" \
			--log-level warn >"$d/node$k.log" 2>&1 &
		pids+=($!)
		targets+=("http://127.0.0.1:$port")
		wait_port "$port"
	done
	# The subscriber: every line stamped with its arrival time.
	curl -sN "${targets[1]}/sub/failover" | while IFS= read -r line; do printf '%s %s\n' "$(now)" "$line"; done >"$d/sub.log" &
	pids+=($!)
	for _ in $(seq 100); do
		if [ -s "$d/sub.log" ]; then break; fi
		sleep 0.05
	done
	for k in 1 2; do
		(while :; do
			printf '%s %s\n' "$(now)" "$(curl -s -o /dev/null -w '%{http_code}' "${targets[$((k - 1))]}/healthz")"
			sleep 0.05
		done) >"$d/healthz$k.log" &
		pids+=($!)
	done
	# The publisher: seq and send time in the body; the answer's code logged.
	(seq=0; while :; do
		seq=$((seq + 1)); t=$(now)
		code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST "${targets[0]}/pub?id=failover" -d "{\"seq\":$seq,\"t\":$t}")
		printf '%s %s %s\n' "$seq" "$t" "$code"
		sleep "$INTERVAL"
	done) >"$d/pub.log" &
	publisher=$!
	pids+=($publisher)
	sleep "$WARM"
	victim=$(slot_master "${redis_ports[0]}" "darktime:{failover}:h")
	for k in "${!redis_ports[@]}"; do
		if [ "${redis_ports[$k]}" = "$victim" ]; then
			kill -9 "${redis_pids[$k]}"
			t_kill=$(now)
		fi
	done
	echo "$t_kill" >"$d/kill.txt"
	sleep "$RUN"
	# Stop publishing, then give the last event answered 201 up to 5 s to
	# arrive before everything stops.
	kill "$publisher"
	wait "$publisher" 2>/dev/null || true
	last=$(awk '$3 == 201 {s = $1} END {print s}' "$d/pub.log")
	for _ in $(seq 100); do
		if grep -q "\"seq\":$last," "$d/sub.log"; then break; fi
		sleep 0.05
	done
	stop_all
	# The figures, from the logs.
	awk -v kill="$t_kill" -v run="$i" '
		FILENAME ~ /pub.log/ { if ($3 == 201) { ok[$1] = $2; if ($2 > kill && !firstpub) firstpub = $2 } next }
		FILENAME ~ /sub.log/ && $2 == "data:" {
			if (match($0, /"seq":[0-9]+/)) { s = substr($0, RSTART + 6, RLENGTH - 6); got[s] = $1 }
			if (match($0, /"t":[0-9.]+/)) { t = substr($0, RSTART + 4, RLENGTH - 4); if (t > kill && (!firstdel || $1 < firstdel)) firstdel = $1 }
			next
		}
		FILENAME ~ /sub.log/ && /darktime.missed/ { missed++ }
		FILENAME ~ /healthz/ {
			f = FILENAME; if ($1 > kill) { if ($2 != 200 && !bad[f]) bad[f] = $1; if ($2 == 200 && bad[f] && !good[f]) good[f] = $1 }
		}
		END {
			lost = 0; n = 0
			for (s in ok) { n++; if (!(s in got)) lost++ }
			worst = 0; for (f in good) if (good[f] > 0 && good[f] - kill > worst) worst = good[f] - kill
			unh = 1e9; for (f in bad) if (bad[f] > 0 && bad[f] - kill < unh) unh = bad[f] - kill
			printf "run %d: first publish answered 201 after the kill %s, first delivery of an event published after it %s, a node unhealthy %s, every node healthy again %s; %d events answered 201, %d not delivered, %d gap notice(s)\n",
				run, after(firstpub), after(firstdel), (unh < 1e9 ? sprintf("+%.2f s", unh) : "never"),
				(worst > 0 ? sprintf("+%.2f s", worst) : "never"), n, lost, missed
		}
		function after(t) { return t ? sprintf("+%.2f s", t - kill) : "never"
		}' "$d/pub.log" "$d/sub.log" "$d/healthz1.log" "$d/healthz2.log" | tee -a "$out/summary.txt"
done
