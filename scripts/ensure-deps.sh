#!/usr/bin/env bash
# Installs what the test suite needs on a Debian machine, from Debian's
# packages, when it is missing (make deps; make test and .ci/run call it, so
# nothing skips in CI):
#   redis-server                      tests start private instances on free ports
#   nginx-light, libnginx-mod-nchan   the swarm is tested against a real nchan; start: nchan
#   chromium                          report's HTML page is checked in headless Chromium
#   postgresql                        the history's PostgreSQL store is tested against a private
#                                     server (initdb + postgres on a free port, internal/pgtest)
#   prometheus                        live metrics (swarm/live) are tested against a private
#                                     Prometheus with its remote-write receiver (internal/promtest)
# The tests themselves install nothing: one whose tool is missing skips
# (nginx, chromium, postgresql, prometheus) or fails (redis-server) and says to run make deps.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
postgres_bin() { [ -n "${DARKTIME_POSTGRES_BIN:-}" ] && [ -x "$DARKTIME_POSTGRES_BIN/initdb" ] && return 0; ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
nchan_module() { [ -e /usr/lib/nginx/modules/ngx_nchan_module.so ] || [ -e /usr/share/nginx/modules/ngx_nchan_module.so ]; }

need=()
have redis-server || need+=(redis-server)
have nginx || need+=(nginx-light)
nchan_module || need+=(libnginx-mod-nchan)
have chromium || have chromium-browser || need+=(chromium)
postgres_bin || need+=(postgresql)
have prometheus || need+=(prometheus)
if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-deps: missing ${need[*]}, and this is not a Debian machine (no apt-get): install them" >&2
	exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
	sudo=()
elif command -v sudo >/dev/null 2>&1; then
	sudo=(sudo)
else
	echo "ensure-deps: missing ${need[*]}; as root: apt-get install -y ${need[*]}" >&2
	exit 1
fi
new_nginx=no
if ! have nginx; then new_nginx=yes; fi
new_postgres=no
if ! postgres_bin; then new_postgres=yes; fi
new_prometheus=no
if ! have prometheus; then new_prometheus=yes; fi

echo "installing from Debian's packages: ${need[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

# A freshly installed nginx package may start Debian's service on port 80
# with the default config; the tests and start: nchan run private nginx
# processes of their own. Stop that service through its init system, or
# through the default config's pid file (nginx -s quit) where there is
# none — never by process name, which would stop anyone's nginx.
if [ "$new_nginx" = yes ]; then
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		"${sudo[@]}" systemctl disable --now nginx >/dev/null 2>&1 || true
	elif command -v service >/dev/null 2>&1; then
		"${sudo[@]}" service nginx stop >/dev/null 2>&1 || true
	fi
	if [ -s /run/nginx.pid ]; then
		nginx=$(command -v nginx || echo /usr/sbin/nginx)
		"${sudo[@]}" "$nginx" -s quit >/dev/null 2>&1 || true
	fi
fi
# Debian's postgresql package creates a cluster and may start its service
# on port 5432; the tests start private servers of their own. Stop it
# through its init system, never by process name.
if [ "$new_postgres" = yes ]; then
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		"${sudo[@]}" systemctl disable --now postgresql >/dev/null 2>&1 || true
	elif command -v service >/dev/null 2>&1; then
		"${sudo[@]}" service postgresql stop >/dev/null 2>&1 || true
	fi
fi
# Debian's prometheus package may start its service on port 9090 (and
# scrape itself); the tests start private servers of their own. Stop it
# through its init system, never by process name.
if [ "$new_prometheus" = yes ]; then
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		"${sudo[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
	elif command -v service >/dev/null 2>&1; then
		"${sudo[@]}" service prometheus stop >/dev/null 2>&1 || true
	fi
fi
