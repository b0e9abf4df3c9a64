#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine:
#   redis-server                      tests start private instances on free ports
#   nginx-light, libnginx-mod-nchan   the swarm is tested against a real nchan
#   chromium                          report's HTML page is checked in headless Chromium
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
ls /usr/lib/nginx/modules/ngx_nchan_module.so >/dev/null 2>&1 || need+=(libnginx-mod-nchan)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing from Debian's packages: ${need[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The package starts nginx on port 80; the tests run their own.
  if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true; fi
  pkill -x nginx 2>/dev/null || true
fi
