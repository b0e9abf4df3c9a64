# Shared by the benchmark scripts (source it): free ports, waiting for a
# listener, stopping what was started, private redis-servers and a Redis
# Cluster made of them, numbers out of result files (get, median). The
# caller defines pids=() (every process started is appended, for its
# stop_all) and may set PIN (a taskset cpu list) before starting Redis.

# free_port: a loopback port in 20000..21999 that nothing listens on, and
# whose cluster bus port (+10000) is free and below the ephemeral range too.
free_port() {
	local port
	for _ in $(seq 200); do
		port=$((20000 + RANDOM % 2000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
			! (exec 3<>"/dev/tcp/127.0.0.1/$((port + 10000))") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	echo "no free port" >&2
	return 1
}

wait_port() { # port
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "nothing listens on 127.0.0.1:$1" >&2
	return 1
}

# redis_start DIR PORT [cluster]: a redis-server without persistence;
# appends its pid to pids and redis_pids.
redis_start() {
	mkdir -p "$1"
	local extra=() pin=()
	if [ "${3:-}" = cluster ]; then
		extra=(--cluster-enabled yes --cluster-config-file "$1/nodes.conf" --cluster-node-timeout 2000)
	fi
	if [ -n "${PIN:-}" ]; then pin=(taskset -c "$PIN"); fi
	"${pin[@]}" redis-server --bind 127.0.0.1 --port "$2" --save "" --appendonly no --dir "$1" \
		--daemonize no --protected-mode no --loglevel warning --logfile "$1/redis.log" "${extra[@]}" &
	pids+=($!)
	redis_pids+=($!)
	wait_port "$2"
}

# broker_start KIND DIR MASTERS [REPLICAS]: KIND one (a redis-server) or
# cluster (MASTERS masters with REPLICAS replicas each, default 0; slots
# spread evenly by redis-cli); sets redis_url, redis_ports and redis_pids
# (in the same order).
broker_start() {
	local kind=$1 dir=$2 masters=$3 replicas=${4:-0} port addrs=()
	redis_pids=()
	redis_ports=()
	if [ "$kind" = one ]; then
		port=$(free_port)
		redis_start "$dir" "$port"
		redis_ports=("$port")
		redis_url=redis://127.0.0.1:$port/0
		return 0
	fi
	for m in $(seq $((masters * (1 + replicas)))); do
		port=$(free_port)
		redis_start "$dir/$m" "$port" cluster
		redis_ports+=("$port")
		addrs+=("127.0.0.1:$port")
	done
	redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$replicas" --cluster-yes >"$dir/create.log" 2>&1
	for port in "${redis_ports[@]}"; do
		for _ in $(seq 100); do
			if redis-cli -h 127.0.0.1 -p "$port" CLUSTER INFO | grep -q 'cluster_state:ok'; then break; fi
			sleep 0.1
		done
	done
	# A replica that has not finished its first sync cannot be promoted:
	# wait until every master sees its replicas online.
	if [ "$replicas" -gt 0 ]; then
		for port in "${redis_ports[@]}"; do
			for _ in $(seq 200); do
				info=$(redis-cli -p "$port" INFO replication)
				if ! grep -q '^role:master' <<<"$info" || [ "$(grep -c 'state=online' <<<"$info")" -ge "$replicas" ]; then break; fi
				sleep 0.1
			done
		done
	fi
	redis_url=redis+cluster://$(
		IFS=,
		echo "${addrs[*]}"
	)
}

# slot_master PORT KEY: the port of the master serving KEY's slot, asked of
# the cluster node on PORT.
slot_master() {
	local slot
	slot=$(redis-cli -p "$1" CLUSTER KEYSLOT "$2")
	redis-cli -p "$1" CLUSTER NODES | awk -v slot="$slot" '
		$3 ~ /master/ && $3 !~ /fail/ {
			for (i = 9; i <= NF; i++) {
				n = split($i, r, "-")
				lo = r[1]; hi = (n == 2 ? r[2] : r[1])
				if (slot >= lo && slot <= hi) { split($2, a, "[:@]"); print a[2]; exit }
			}
		}'
}

# stop_all: stops (and reaps) every process in pids.
stop_all() {
	local pid
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	pids=()
}

# get FILE JQ-PATH: a number from a result to 2 decimals, "-" when absent.
get() { jq -r "[$2] | first // \"-\" | if type == \"number\" then (. * 100 | round) / 100 else . end" "$1"; }

# median: the median of the numbers on stdin, "-" for none.
median() {
	sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
