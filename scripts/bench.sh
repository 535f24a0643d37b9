#!/usr/bin/env bash
# Every performance figure in one run, next to the machine's limits measured in the same
# run (iperf3 over loopback, bare crc32c), printed as one table. Medians of RUNS runs.
# Usage: scripts/bench.sh [RUNS]   (default 3; installs iperf3 from Debian if missing)
# BENCH_WARM=1 keeps both cores from idling (two nice-19 spinners) for the whole run, for
# iperf3 and ceph-msgr alike: on a VM whose idle vCPUs take tens of µs to wake, a
# request/response workload otherwise measures the hypervisor's wake-up latency.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT

if ! command -v iperf3 >/dev/null; then
  echo "installing iperf3" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iperf3) >&2
fi
cargo build --release -q
bin=target/release/ceph-msgr
if [ "${BENCH_WARM:-0}" = 1 ]; then
  for _ in 1 2; do nice -n 19 sh -c 'while :; do :; done' & done
  echo "== warm: two nice-19 spinners keep the cores from idling" >&2
fi

echo "== criterion benches (send path, receive path, revoke/ack scale)" >&2
for b in send_path recv_path scale; do
  cargo bench -q --bench "$b" -- --warm-up-time 1 --measurement-time 3 >"$out/$b.txt" 2>&1
done
cargo bench -q --bench idle_memory >"$out/idle.txt" 2>&1

echo "== iperf3 over loopback" >&2
port=$((20000 + RANDOM % 20000))
iperf3 -s -p "$port" >/dev/null 2>&1 &
sleep 0.5
for len in 64 4K 1M; do   # iperf3 caps -l at 1 MiB
  for ((r = 0; r < runs; r++)); do
    iperf3 -c 127.0.0.1 -p "$port" -l "$len" -t 2 -J >"$out/iperf-$len-$r.json"
  done
done

echo "== end to end: ceph-msgr send -> ceph-msgr serve (separate processes), msgr v1 and msgr2" >&2
"$bin" serve --listen 127.0.0.1:0 --quiet >"$out/serve.out" 2>/dev/null &
serve_pid=$!
for _ in $(seq 50); do [ -s "$out/serve.out" ] && break; sleep 0.1; done
addr=$(head -1 "$out/serve.out")
e2e() { # name size count inflight connections  (msgr v1)
  for ((r = 0; r < runs; r++)); do
    "$bin" send "$addr" --protocol v1 --size "$2" --count "$3" --in-flight "$4" --connections "$5" --json >>"$out/e2e-$1.json"
  done
}
e2e_both() { # name size count inflight: v1 and v2 alternated run by run against one serve
  for ((r = 0; r < runs; r++)); do
    for p in v1 v2; do
      f="$out/e2e-$1.json"; [ "$p" = v2 ] && f="$out/e2e-v2-$1.json"
      "$bin" send "$addr" --protocol "$p" --size "$2" --count "$3" --in-flight "$4" --json >>"$f"
    done
  done
}
e2e_both 64-1 64 50000 1
e2e_both 64-16 64 200000 16
e2e_both 4k-1 4096 50000 1
e2e_both 4k-16 4096 200000 16
e2e_both 1m-16 1048576 1600 16
e2e_both 4m-1 4194304 400 1
e2e_both 4m-16 4194304 400 16
for c in 1 10 100 1000; do e2e "conns-$c" 64 200000 16 "$c"; done
kill "$serve_pid" 2>/dev/null || true

echo "== end to end with busy-polling on both sides (--busy-poll-us 50)" >&2
"$bin" serve --listen 127.0.0.1:0 --quiet --busy-poll-us 50 >"$out/serve-bp.out" 2>/dev/null &
for _ in $(seq 50); do [ -s "$out/serve-bp.out" ] && break; sleep 0.1; done
addr=$(head -1 "$out/serve-bp.out")
e2e_bp() { # name size count inflight
  for ((r = 0; r < runs; r++)); do
    "$bin" send "$addr" --protocol v1 --size "$2" --count "$3" --in-flight "$4" --busy-poll-us 50 --json >>"$out/e2e-bp-$1.json"
  done
}
e2e_bp 64-1 64 50000 1
e2e_bp 4k-16 4096 200000 16
e2e_bp 4m-1 4194304 400 1
e2e_bp 4m-16 4194304 400 16

python3 - "$out" <<'PY'
import json, re, statistics, sys, glob, os
d = sys.argv[1]
def crit(name, bench):
    txt = open(f"{d}/{name}.txt").read()
    m = re.search(re.escape(bench) + r"\s+time:\s+\[[^\]]+\]\s+thrpt:\s+\[\S+ \S+ (\S+) (\S+)", txt)
    if not m:
        return None
    v, unit = float(m.group(1)), m.group(2)
    scale = {"GiB/s": 1024**3, "MiB/s": 1024**2, "KiB/s": 1024, "B/s": 1,
             "Gelem/s": 1e9, "Melem/s": 1e6, "Kelem/s": 1e3, "elem/s": 1}[unit]
    return v * scale
def crit_time(name, bench):
    txt = open(f"{d}/{name}.txt").read()
    m = re.search(re.escape(bench) + r"\s+time:\s+\[\S+ \S+ (\S+) (\S+)", txt)
    if not m:
        return None
    return float(m.group(1)) * {"ns": 1, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}[m.group(2)]
def iperf(len_):
    v = [json.load(open(f))["end"]["sum_received"]["bits_per_second"] for f in sorted(glob.glob(f"{d}/iperf-{len_}-*.json"))]
    return statistics.median(v)
def e2e(name):
    rows = [json.loads(l) for l in open(f"{d}/e2e-{name}.json")]
    med = lambda k: statistics.median(r[k] for r in rows)
    return {k: med(k) for k in ("gbit_per_s", "msgs_per_s", "mb_per_s", "ack_p50_us", "ack_p99_us")}
G = 1e9
rows = []
def row(what, ours, limit=None, unit="", goal=""):
    ratio = f"{ours/limit:.2f}" if (ours is not None and limit) else ""
    fmt = lambda x: "" if x is None else (f"{x:,.2f}" if x < 100 else f"{x:,.0f}")
    rows.append((what, fmt(ours) + (" " + unit if ours is not None else ""), fmt(limit) + (" " + unit if limit else ""), ratio, goal))
crc4m = crit("send_path", "send_path/4MiB/bare_crc32c")
row("send path 4 MiB (GB/s, incl. CRC) vs bare crc32c", (crit("send_path", "send_path/4MiB/messenger") or 0) / G, crc4m / G if crc4m else None, "GB/s", "≥ 0.90")
row("send path 4 MiB msgr2 (GB/s, incl. CRC) vs bare crc32c", (crit("send_path", "send_path/4MiB/messenger_v2") or 0) / G, crc4m / G if crc4m else None, "GB/s", "≥ 0.90")
for s in ["64B", "4KiB", "64KiB", "4MiB"]:
    v1s, v2s = crit("send_path", f"send_path/{s}/messenger"), crit("send_path", f"send_path/{s}/messenger_v2")
    row(f"send path {s} msgr2 vs v1 (GB/s)", v2s / G if v2s else None, v1s / G if v1s else None, "GB/s", "≥ 0.95")
for s in ["64B", "4KiB", "64KiB"]:
    row(f"send path {s} (msgs/s)", crit("send_path", f"send_path_msgs/{s}/messenger"), None, "msg/s")
for s in ["64B", "4KiB", "64KiB", "4MiB"]:
    row(f"receive path {s}, copied in (GB/s) vs bare crc32c", (crit("recv_path", f"recv_path/{s}/receiver") or 0) / G, (crit("recv_path", f"recv_path/{s}/bare_crc32c") or 0) / G, "GB/s")
    row(f"receive path {s}, in place (GB/s) vs bare crc32c", (crit("recv_path", f"recv_path/{s}/in_place") or 0) / G, (crit("recv_path", f"recv_path/{s}/bare_crc32c") or 0) / G, "GB/s")
for len_, name, goal in [("1M", "4m-1", "≥ 0.90"), ("1M", "4m-16", "≥ 0.90"), ("4K", "4k-16", "≥ 1.50"), ("4K", "4k-1", ""), ("64", "64-16", ""), ("64", "64-1", "")]:
    e = e2e(name)
    row(f"end to end {name} (Gbit/s) vs iperf3 -l {len_}", e["gbit_per_s"], iperf(len_) / G, "Gbit/s", goal)
for name in ["4k-16", "64-16", "64-1"]:
    e = e2e(name)
    row(f"end to end {name} (msgs/s)", e["msgs_per_s"], None, "msg/s")
# msgr2 beside v1: same sizes, runs alternated against the same serve; limit = v1.
for name in ["64-1", "64-16", "4k-1", "4k-16", "1m-16", "4m-1", "4m-16"]:
    a, b = e2e(name), e2e("v2-" + name)
    row(f"end to end msgr2 vs v1 {name} (Gbit/s)", b["gbit_per_s"], a["gbit_per_s"], "Gbit/s", "≥ 0.95")
    row(f"end to end msgr2 vs v1 {name} (msgs/s)", b["msgs_per_s"], a["msgs_per_s"], "msg/s", "≥ 0.95")
row("msgr2 64 B message→ACK round trip p50 (µs)", e2e("v2-64-1")["ack_p50_us"], e2e("64-1")["ack_p50_us"], "µs")
e = e2e("64-1")
row("64 B message→ACK round trip p50 (µs)", e["ack_p50_us"], None, "µs")
row("64 B message→ACK round trip p99 (µs)", e["ack_p99_us"], None, "µs")
for len_, name, goal in [("1M", "4m-1", "≥ 0.90"), ("1M", "4m-16", "≥ 0.90"), ("4K", "4k-16", "≥ 1.50")]:
    e = e2e("bp-" + name)
    row(f"busy-poll: end to end {name} (Gbit/s) vs iperf3 -l {len_}", e["gbit_per_s"], iperf(len_) / G, "Gbit/s", goal)
e = e2e("bp-4k-16")
row("busy-poll: end to end 4k-16 (msgs/s)", e["msgs_per_s"], None, "msg/s")
e = e2e("bp-64-1")
row("busy-poll: 64 B message→ACK round trip p50 (µs)", e["ack_p50_us"], None, "µs")
row("busy-poll: 64 B message→ACK round trip p99 (µs)", e["ack_p99_us"], None, "µs")
for c in [1, 10, 100, 1000]:
    row(f"serve (mio, 1 thread), {c} connections, 64 B (msgs/s)", e2e(f"conns-{c}")["msgs_per_s"], None, "msg/s")
for n in [1, 1000, 100000]:
    row(f"revoke, {n} queued (ns)", crit_time("scale", f"revoke/queued/{n}"), None, "ns", "flat")
    row(f"revoke, {n} written (ns)", crit_time("scale", f"revoke/written/{n}"), None, "ns", "flat")
for n in [1000, 100000]:
    t = crit_time("scale", f"ack/trim/{n}")
    row(f"ack trimming {n} messages (ns per message)", t / n if t else None, None, "ns")
idle = open(f"{d}/idle.txt").read()
m = re.search(r"after shrink_to_fit: \d+ bytes \(total (\d+) bytes\)", idle)
row("idle connection after shrink_to_fit (bytes)", float(m.group(1)) if m else None, 2048, "B", "≤ 2048")
m = re.search(r"after traffic: \d+ bytes \(total (\d+) bytes\)", idle)
row("connection after traffic, before shrink (bytes)", float(m.group(1)) if m else None, None, "B")
w = [max(len(r[i]) for r in rows + [("what", "ours", "limit", "ratio", "goal")]) for i in range(5)]
hdr = ("what", "ours", "limit (same run)", "ratio", "goal")
print(" | ".join(h.ljust(w[i]) for i, h in enumerate(hdr)))
print("-+-".join("-" * x for x in w))
for r in rows:
    print(" | ".join(c.ljust(w[i]) for i, c in enumerate(r)))
PY
