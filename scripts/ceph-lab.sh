#!/usr/bin/env bash
# ceph-lab.sh — a real Ceph monitor on loopback, for interop tests and CI.
#
#   scripts/ceph-lab.sh install [--tshark]
#   scripts/ceph-lab.sh start [--v2 | --v2-only] [--port N] [--v2-port N] [DIR]
#   scripts/ceph-lab.sh status DIR
#   scripts/ceph-lab.sh stop DIR
#   scripts/ceph-lab.sh capture DIR OUT.pcapng [-- CMD ARGS...]
#
# `start` prints shell-evaluable lines on stdout (and keeps them in DIR/lab.env):
#   eval "$(scripts/ceph-lab.sh start)"   # CEPH_LAB_DIR, _CONF, _MON, _PORT, _PID, _FSID
#   timeout 5 ceph -c "$CEPH_LAB_CONF" mon dump -f json
#   scripts/ceph-lab.sh stop "$CEPH_LAB_DIR"
# Everything else (progress, timings, errors) goes to stderr.
#
# The recipe is /work/shared/docs/ceph-lab.md's: one mon "a", auth none, msgr v1 only by
# default (`--v2` binds msgr2 as well). Every ceph CLI call runs under `timeout`; `start`
# gives up after CEPH_LAB_START_TIMEOUT seconds (default 30) and prints the mon log tail.
set -euo pipefail

readonly PROG=${0##*/}
readonly MARKER="# written by ceph-lab.sh"
START_TIMEOUT=${CEPH_LAB_START_TIMEOUT:-30}
STOP_TIMEOUT=${CEPH_LAB_STOP_TIMEOUT:-15}

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }

usage() {
  cat >&2 <<EOF
usage: $PROG install [--tshark]
       $PROG start [--v2 | --v2-only] [--port N] [--v2-port N] [DIR]
       $PROG status DIR
       $PROG stop DIR
       $PROG capture DIR OUT.pcapng [-- CMD ARGS...]

install   apt-get install ceph-mon ceph-common (and tshark with --tshark), only if missing
start     create DIR (default: mktemp -d), write ceph.conf, mkfs and start mon.a on
          127.0.0.1 (v1 port 6789 unless busy or --port; v2 port 3300 with --v2), wait
          until it answers, print CEPH_LAB_* lines for eval; --v2-only binds msgr2 alone
          (ms_bind_msgr1 = false; CEPH_LAB_MON is then the v2 address)
status    ceph mon dump -f json against the lab in DIR
stop      SIGTERM (then SIGKILL) the lab's mon and remove DIR
capture   record loopback traffic to the lab's mon ports into OUT while CMD runs
          (default CMD: ceph -c DIR/ceph.conf mon dump -f json); needs tshark
EOF
}

# Monotonic-enough wall clock in milliseconds (bash 5's EPOCHREALTIME).
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
secs_since() { # start_ms -> "S.mmm"
  local d=$(($(now_ms) - $1))
  printf '%d.%03d' $((d / 1000)) $((d % 1000))
}

as_root() {
  if [[ $EUID -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

pkg_installed() {
  [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}

cmd_install() {
  local want=(ceph-mon ceph-common) missing=() p t0
  while [[ $# -gt 0 ]]; do
    case $1 in
      --tshark) want+=(tshark); shift ;;
      -h|--help) usage; exit 0 ;;
      *) die "install: unknown argument '$1'" ;;
    esac
  done
  command -v dpkg-query >/dev/null 2>&1 || die "install: needs a Debian-like system (dpkg/apt)"
  for p in "${want[@]}"; do pkg_installed "$p" || missing+=("$p"); done
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "install: already installed: ${want[*]}"
    return 0
  fi
  t0=$(now_ms)
  export DEBIAN_FRONTEND=noninteractive
  if [[ " ${missing[*]} " == *" tshark "* ]]; then
    # Don't ask whether non-root users may capture; answer no.
    echo "wireshark-common wireshark-common/install-setuid boolean false" \
      | as_root debconf-set-selections
  fi
  log "install: apt-get update"
  as_root apt-get update -qq || die "install: apt-get update failed"
  log "install: apt-get update took $(secs_since "$t0") s; apt-get install ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" \
    >&2 || die "install: apt-get install ${missing[*]} failed"
  for p in "${missing[@]}"; do
    pkg_installed "$p" || die "install: $p is still not installed"
  done
  log "install: installed ${missing[*]} in $(secs_since "$t0") s"
}

need_tools() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || die "'$t' not found; run: $0 install"
  done
}

# Is something listening on 127.0.0.1:PORT (or the wildcard address)?
port_busy() {
  local port=$1
  if command -v ss >/dev/null 2>&1; then
    [[ -n $(ss -Hltn "sport = :$port" 2>/dev/null) ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

# First port from START upwards (up to 200 tries) that is not listened on and not in SKIP.
free_port() {
  local port=$1 skip=${2:-} i
  for ((i = 0; i < 200; i++, port++)); do
    ((port > 65535)) && port=20000
    [[ $port == "$skip" ]] && continue
    port_busy "$port" || { echo "$port"; return 0; }
  done
  die "no free TCP port found near $1"
}

new_fsid() {
  if command -v uuidgen >/dev/null 2>&1; then uuidgen
  elif [[ -r /proc/sys/kernel/random/uuid ]]; then cat /proc/sys/kernel/random/uuid
  else python3 -c 'import uuid; print(uuid.uuid4())'
  fi
}

# Absolute path of an existing directory.
abs_dir() { (cd "$1" && pwd -P); }

# Refuse to act on directories this script did not set up.
lab_dir() {
  local dir=${1:-}
  [[ -n $dir ]] || die "missing DIR"
  [[ -d $dir ]] || die "$dir: no such directory"
  dir=$(abs_dir "$dir")
  if ! { [[ -f $dir/ceph.conf ]] && head -n1 "$dir/ceph.conf" | grep -qxF "$MARKER"; }; then
    die "$dir does not look like a ceph-lab directory (no ceph.conf written by $PROG)"
  fi
  echo "$dir"
}

# Pid from DIR's pid file if that process is still a ceph-mon for this lab, else nothing.
lab_pid() {
  local dir=$1 pid cmdline
  [[ -s $dir/mon.a.pid ]] || return 0
  pid=$(tr -dc '0-9' <"$dir/mon.a.pid")
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 0
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline")
  [[ $cmdline == *ceph-mon*"$dir/ceph.conf"* ]] && echo "$pid"
  return 0
}

# Value of NAME in DIR/lab.env (written by `start`; values are plain, no quoting needed).
lab_var() { sed -n "s/^$2=//p" "$1/lab.env" 2>/dev/null | head -n1; }

# SIGTERM, wait up to STOP_TIMEOUT s, then SIGKILL.
kill_mon() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "mon pid $pid ignored SIGTERM for ${STOP_TIMEOUT} s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "mon pid $pid still present after SIGKILL"
  return 1
}

write_conf() { # dir fsid mon_host bind_v2 [bind_v1]
  local dir=$1 fsid=$2 mon_host=$3 v2=$4 v1=${5:-true}
  cat >"$dir/ceph.conf" <<EOF
$MARKER
[global]
fsid = $fsid
mon_host = $mon_host
mon_initial_members = a
public_network = 127.0.0.0/8
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_bind_msgr1 = $v1
ms_bind_msgr2 = $v2
ms_bind_ipv6 = false
run_dir = $dir/run
log_file = $dir/\$name.log
pid_file = $dir/\$name.pid
mon_data = $dir/mon-\$id
keyring = $dir/keyring
# A lab on a nearly full disk must still start.
mon_data_avail_crit = 0
mon_data_avail_warn = 0
# A taken port fails at once (default: 3 tries 5 s apart); start picks another port.
ms_bind_retry_count = 1
# Keep "ceph health" at HEALTH_OK: with auth none the global_id reclaim warning is noise.
mon_warn_on_insecure_global_id_reclaim_allowed = false

[client]
admin_socket =
EOF
}

print_log_tail() {
  local f
  for f in "$1"/mon.a.log "$1"/mkfs.log "$1"/mon.a.out; do
    [[ -s $f ]] || continue
    printf '%s: --- last lines of %s ---\n' "$PROG" "$f" >&2
    tail -n 25 "$f" >&2
  done
}

# `start --v2-only`: bind msgr2 alone.
V2_ONLY=0

# State for the failure trap of `start`.
START_DIR="" START_CREATED=0 START_DONE=0

start_cleanup() {
  local rc=$? pid
  [[ $START_DONE -eq 1 || -z $START_DIR ]] && return 0
  if [[ -d $START_DIR ]]; then
    pid=$(lab_pid "$START_DIR")
    if [[ -n $pid ]]; then kill_mon "$pid" || true; fi
    if [[ $START_CREATED -eq 1 ]]; then
      rm -rf -- "$START_DIR"
    else
      log "start failed (exit $rc); left $START_DIR for inspection"
    fi
  fi
}

# One attempt at bringing up mon.a in DIR. Returns 2 when a port turned out to be taken
# (so the caller may retry with other ports), 1 on any other failure.
start_once() { # dir port v2port(or "")
  local dir=$1 port=$2 v2port=$3 fsid mon_host addrv pid t_end left out
  fsid=$(new_fsid)
  [[ -n $fsid ]] || { log "could not make an fsid"; return 1; }
  if [[ -n $v2port && $V2_ONLY -eq 1 ]]; then
    addrv="[v2:127.0.0.1:$v2port]"
    mon_host=$addrv
  elif [[ -n $v2port ]]; then
    addrv="[v2:127.0.0.1:$v2port,v1:127.0.0.1:$port]"
    mon_host=$addrv
  else
    addrv="[v1:127.0.0.1:$port]"
    mon_host="v1:127.0.0.1:$port"
  fi
  rm -rf -- "$dir/mon-a" "$dir/run" "$dir"/*.log "$dir"/*.pid "$dir/monmap"
  mkdir -p "$dir/run" || return 1
  write_conf "$dir" "$fsid" "$mon_host" "$([[ -n $v2port ]] && echo true || echo false)" \
    "$([[ $V2_ONLY -eq 1 ]] && echo false || echo true)" \
    || { log "could not write $dir/ceph.conf"; return 1; }

  timeout 30 monmaptool --create --fsid "$fsid" --addv a "$addrv" "$dir/monmap" \
    >"$dir/mkfs.log" 2>&1 || { log "monmaptool failed"; return 1; }
  timeout 60 ceph-mon -c "$dir/ceph.conf" --mkfs -i a --monmap "$dir/monmap" \
    >>"$dir/mkfs.log" 2>&1 || { log "ceph-mon --mkfs failed"; return 1; }
  # ceph-mon daemonizes and writes pid_file; its own stdout/stderr go to mon.a.out.
  timeout 60 ceph-mon -c "$dir/ceph.conf" -i a >"$dir/mon.a.out" 2>&1 \
    || { log "ceph-mon failed to start"; bind_failed "$dir" && return 2; return 1; }

  t_end=$(($(now_ms) + START_TIMEOUT * 1000))
  while :; do
    pid=$(lab_pid "$dir")
    # Each try gets at most 5 s, and no more than what is left of START_TIMEOUT (+1 s).
    left=$(((t_end - $(now_ms)) / 1000 + 1))
    ((left > 5)) && left=5
    if [[ -n $pid ]] \
      && out=$(timeout "$left" ceph -c "$dir/ceph.conf" --connect-timeout 5 mon stat 2>&1); then
      log "mon stat: $out"
      break
    fi
    if [[ -s $dir/mon.a.pid && -z $pid ]]; then
      log "ceph-mon exited during start-up"
      bind_failed "$dir" && return 2
      return 1
    fi
    if (($(now_ms) > t_end)); then
      log "mon did not answer 'ceph mon stat' within ${START_TIMEOUT} s"
      return 1
    fi
    sleep 0.1
  done
  LAB_FSID=$fsid LAB_PID=$pid
}

bind_failed() { grep -qs -e 'Address already in use' -e 'unable to bind' "$1"/mon.a.log "$1"/mon.a.out; }

cmd_start() {
  local dir="" port="" v2port="" v2=0 port_fixed=0 t0 try rc mon
  while [[ $# -gt 0 ]]; do
    case $1 in
      --v2) v2=1; shift ;;
      --v2-only) v2=1; V2_ONLY=1; shift ;;
      --port) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--port needs a number"; port=$2; port_fixed=1; shift 2 ;;
      --port=*) port=${1#*=}; port_fixed=1; shift ;;
      --v2-port) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--v2-port needs a number"; v2port=$2; v2=1; shift 2 ;;
      --v2-port=*) v2port=${1#*=}; v2=1; shift ;;
      -h|--help) usage; exit 0 ;;
      -*) die "start: unknown option '$1'" ;;
      *) [[ -z $dir ]] || die "start: more than one DIR given"; dir=$1; shift ;;
    esac
  done
  [[ -z $port || $port =~ ^[0-9]+$ ]] || die "--port needs a number"
  [[ -z $v2port || $v2port =~ ^[0-9]+$ ]] || die "--v2-port needs a number"
  need_tools ceph-mon monmaptool ceph timeout
  t0=$(now_ms)

  trap start_cleanup EXIT
  if [[ -z $dir ]]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/ceph-lab.XXXXXX")
    START_CREATED=1
  elif [[ ! -e $dir ]]; then
    mkdir -p -- "$dir"
    START_CREATED=1
  else
    [[ -d $dir ]] || die "$dir exists and is not a directory"
    if [[ -f $dir/ceph.conf ]] && [[ -n $(lab_pid "$(abs_dir "$dir")") ]]; then
      die "a lab mon is already running in $dir; stop it first"
    fi
    if [[ -n $(ls -A -- "$dir") ]] && ! head -n1 "$dir/ceph.conf" 2>/dev/null | grep -qxF "$MARKER"; then
      die "$dir is not empty and is not a ceph-lab directory"
    fi
  fi
  dir=$(abs_dir "$dir")
  START_DIR=$dir
  chmod 700 "$dir"

  for try in 1 2 3 4 5; do
    if [[ $port_fixed -eq 1 ]]; then
      port_busy "$port" && die "port $port is already in use on 127.0.0.1"
    else
      port=$(free_port "${port:-6789}")
    fi
    if [[ $v2 -eq 1 ]]; then
      if [[ -n $v2port && $try -eq 1 ]]; then
        port_busy "$v2port" && die "v2 port $v2port is already in use on 127.0.0.1"
      else
        v2port=$(free_port "${v2port:-3300}" "$port")
      fi
    fi
    rc=0
    start_once "$dir" "$port" "$v2port" || rc=$?
    [[ $rc -eq 0 ]] && break
    if [[ $rc -eq 2 && $port_fixed -eq 0 && $try -lt 5 ]]; then
      log "port taken during start-up (attempt $try); retrying with other ports"
      port=$((port + 1)); [[ -n $v2port ]] && v2port=$((v2port + 1))
      continue
    fi
    print_log_tail "$dir"
    exit 1
  done

  mon="v1:127.0.0.1:$port"
  [[ $V2_ONLY -eq 1 ]] && mon="v2:127.0.0.1:$v2port"
  {
    printf 'CEPH_LAB_DIR=%q\n' "$dir"
    printf 'CEPH_LAB_CONF=%q\n' "$dir/ceph.conf"
    printf 'CEPH_LAB_MON=%q\n' "$mon"
    printf 'CEPH_LAB_PORT=%q\n' "$port"
    [[ -n $v2port ]] && printf 'CEPH_LAB_MON_V2=%q\n' "v2:127.0.0.1:$v2port"
    printf 'CEPH_LAB_PID=%q\n' "$LAB_PID"
    printf 'CEPH_LAB_FSID=%q\n' "$LAB_FSID"
  } >"$dir/lab.env"
  START_DONE=1
  trap - EXIT
  cat "$dir/lab.env"
  log "mon.a ready at $mon${v2port:+ and v2:127.0.0.1:$v2port} (pid $LAB_PID) in $(secs_since "$t0") s; dir $dir"
}

cmd_stop() {
  [[ $# -eq 1 ]] || die "usage: $PROG stop DIR"
  local dir pid
  dir=$(lab_dir "$1")
  pid=$(lab_pid "$dir")
  if [[ -n $pid ]]; then
    kill_mon "$pid" || die "could not stop mon pid $pid; leaving $dir"
    log "stopped mon.a (pid $pid)"
  else
    log "no running mon for $dir"
  fi
  rm -rf -- "$dir"
  log "removed $dir"
}

cmd_status() {
  [[ $# -eq 1 ]] || die "usage: $PROG status DIR"
  local dir
  dir=$(lab_dir "$1")
  need_tools ceph timeout
  timeout 5 ceph -c "$dir/ceph.conf" --connect-timeout 5 mon dump -f json \
    || die "mon in $dir did not answer 'mon dump' (pid: $(lab_pid "$dir"))"
}

cmd_capture() {
  [[ $# -ge 2 ]] || die "usage: $PROG capture DIR OUT.pcapng [-- CMD ARGS...]"
  local dir out filter port v2 ports=() tpid rc=0 i
  dir=$(lab_dir "$1"); out=$2; shift 2
  [[ ${1:-} == -- ]] && shift
  need_tools tshark timeout
  [[ -n $(lab_pid "$dir") ]] || die "no running mon in $dir"
  port=$(lab_var "$dir" CEPH_LAB_PORT)
  [[ -n $port ]] || die "no CEPH_LAB_PORT in $dir/lab.env"
  ports+=("$port")
  v2=$(lab_var "$dir" CEPH_LAB_MON_V2)
  [[ -n $v2 ]] && ports+=("${v2##*:}")
  filter="tcp port ${ports[0]}"
  [[ ${#ports[@]} -gt 1 ]] && filter+=" or tcp port ${ports[1]}"
  [[ $# -gt 0 ]] || set -- ceph -c "$dir/ceph.conf" mon dump -f json
  rm -f -- "$out"
  : >"$dir/tshark.log"
  tshark -q -i lo -f "$filter" -w "$out" >"$dir/tshark.log" 2>&1 &
  tpid=$!
  for ((i = 0; i < 100; i++)); do
    # "Capturing on" is printed before packets are seen; "Capture started" once they are.
    grep -qs 'Capture started' "$dir/tshark.log" && break
    kill -0 "$tpid" 2>/dev/null || { cat "$dir/tshark.log" >&2; die "tshark failed"; }
    sleep 0.1
  done
  log "capture: '$filter' on lo -> $out; running: $*"
  timeout 20 "$@" || rc=$?
  sleep 0.5 # let the last segments (FIN/RST) land
  kill -INT "$tpid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$tpid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$tpid" 2>/dev/null && kill -KILL "$tpid" 2>/dev/null
  wait "$tpid" 2>/dev/null || true
  [[ -s $out ]] || die "capture: $out is empty"
  chmod 644 "$out"
  log "capture: wrote $out ($(stat -c %s "$out") bytes); command exit $rc"
  return "$rc"
}

main() {
  local cmd=${1:-}
  [[ $# -gt 0 ]] && shift
  case $cmd in
    install) cmd_install "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    capture) cmd_capture "$@" ;;
    -h|--help|help) usage ;;
    "") usage; exit 2 ;;
    *) usage; die "unknown command '$cmd'" ;;
  esac
}

main "$@"
