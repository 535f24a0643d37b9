#!/usr/bin/env python3
"""Write both directions of one TCP stream of a capture as raw byte files.

Usage: extract.py CAPTURE STREAM OUT_PREFIX
Writes OUT_PREFIX.client.bin (bytes from the side that sent the first SYN) and
OUT_PREFIX.server.bin (bytes from the other side). Needs tshark. Fails on gaps,
retransmissions or out-of-order segments instead of guessing.
"""
import subprocess
import sys


def directions(capture, stream):
    fields = ["tcp.srcport", "tcp.seq", "tcp.len", "tcp.flags.syn", "tcp.flags.ack",
              "tcp.payload", "tcp.analysis.retransmission", "tcp.analysis.out_of_order"]
    cmd = ["tshark", "-r", capture, "-Y", f"tcp.stream eq {stream}", "-T", "fields",
           "-E", "separator=|"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    client = None
    data = {}
    for line in out.splitlines():
        sport, seq, length, syn, ack, payload, retrans, ooo = line.split("|")
        sport, seq, length = int(sport), int(seq), int(length)
        if syn == "1" and ack == "0":
            client = sport
        if length == 0:
            continue
        if retrans or ooo:
            sys.exit(f"stream {stream}: retransmission or out-of-order segment at seq {seq}")
        buf = data.setdefault(sport, bytearray())
        if seq != len(buf) + 1:
            sys.exit(f"stream {stream}, port {sport}: gap at relative seq {seq}")
        chunk = bytes.fromhex(payload.replace(":", ""))
        if len(chunk) != length:
            sys.exit(f"stream {stream}: payload of {len(chunk)} bytes, tcp.len {length}")
        buf += chunk
    if client is None:
        sys.exit(f"stream {stream}: no SYN in the capture")
    (server,) = [p for p in data if p != client] or [None]
    return client, bytes(data.get(client, b"")), server, bytes(data.get(server, b""))


def main():
    capture, stream, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    cport, cdata, sport, sdata = directions(capture, stream)
    for role, port, blob in (("client", cport, cdata), ("server", sport, sdata)):
        with open(f"{prefix}.{role}.bin", "wb") as f:
            f.write(blob)
        print(f"{prefix}.{role}.bin: {len(blob)} bytes from port {port}")


if __name__ == "__main__":
    main()
