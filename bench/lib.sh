# Helpers shared by the bench scripts; sourced, not run.

# sluice_toml GATEWAY_PORT ADMIN_PORT DIR [SECTIONS]: the configuration of a
# benchmarked gateway on 127.0.0.1, its SQLite store in DIR, access log off
# and warnings only, with SECTIONS (TOML) added.
sluice_toml() {
  cat <<TOML
[gateway]
listen = "127.0.0.1:$1"
drain_timeout = "1s"
[admin]
listen = "127.0.0.1:$2"
[store]
url = "sqlite://$3/sluice.db"
${4:-}
[log]
access_log = false
level = "warn"
TOML
}

# field NAME: the top-level field NAME of the JSON object on stdin.
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }

# rss_kb PID: the resident memory of process PID, in kB.
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# cpu_ticks PID[,PID...]: "USER SYSTEM", the processes' utime and stime in
# clock ticks (getconf CLK_TCK per second), summed.
cpu_ticks() {
  local pid user=0 system=0 u s
  for pid in ${1//,/ }; do
    read -r u s < <(awk '{print $14, $15}' "/proc/$pid/stat" 2>/dev/null || echo 0 0)
    user=$((user + u)); system=$((system + s))
  done
  echo "$user $system"
}

source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"   # apt_install

# install_missing COMMAND...: install the Debian package of each command not
# on the PATH (nginx from nginx-light, or nginx where that is missing; perf
# from linux-perf). Debian starts a service when its package is installed: a
# policy-rc.d guard keeps the system NGINX, HAProxy and Redis from starting
# (and staying up) on ports 80 and 6379.
install_missing() {
  local command packages=() guard="" status=0 sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo   # as apt_install does
  for command in "$@"; do
    command -v "$command" >/dev/null && continue
    case $command in
      nginx) packages+=(nginx-light) ;;
      perf) packages+=(linux-perf) ;;
      *) packages+=("$command") ;;
    esac
  done
  [ ${#packages[@]} -gt 0 ] || return 0
  echo "installing ${packages[*]}"
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    guard=/usr/sbin/policy-rc.d
  fi
  if ! apt_install "${packages[@]}" >/dev/null; then
    # Newer Debian releases have no nginx-light: their NGINX is `nginx`.
    [[ " ${packages[*]} " == *" nginx-light "* ]] \
      && apt_install "${packages[@]/#nginx-light/nginx}" >/dev/null || status=1
  fi
  [ -n "$guard" ] && $sudo rm -f "$guard"
  return $status
}
