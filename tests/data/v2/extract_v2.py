#!/usr/bin/env python3
"""Cut the msgr2 control frames of one TCP connection out of a pcapng capture.

Usage: extract_v2.py CAPTURE CONN_INDEX OUT_DIR [--list]

No tshark needed: a minimal pcapng reader (EPB/SPB blocks, Ethernet, Linux SLL/SLL2 or
loopback/null link types, IPv4/IPv6, TCP) reassembles both directions of each connection
(in SYN order), refusing gaps and retransmissions. Each direction must start with the
26-byte msgr2 banner; the frames after it are walked by their preambles (crc mode:
segment 0 + le32 crc when non-empty, epilogue only when nseg > 1). Every control frame
(tag != 17, MESSAGE) is written whole (preamble + payload + crc) as
OUT_DIR/NN-DIR-TAGNAME.bin, DIR = c2s or s2c, NN = order on the connection.
"""
import os
import struct
import sys

TAGS = {1: "hello", 2: "auth_request", 3: "auth_bad_method", 4: "auth_reply_more",
        5: "auth_request_more", 6: "auth_done", 7: "auth_signature", 8: "client_ident",
        9: "server_ident", 10: "ident_missing_features", 11: "session_reconnect",
        12: "session_reset", 13: "session_retry", 14: "session_retry_global",
        15: "session_reconnect_ok", 16: "wait", 17: "message", 18: "keepalive2",
        19: "keepalive2_ack", 20: "ack"}


def packets(path):
    data = open(path, "rb").read()
    off, links, endian = 0, [], "<"
    while off + 12 <= len(data):
        btype, blen = struct.unpack_from(endian + "II", data, off)
        if btype == 0x0A0D0D0A:
            endian = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            btype, blen = struct.unpack_from(endian + "II", data, off)
        body = data[off + 8:off + blen - 4]
        if btype == 1:
            links.append(struct.unpack_from(endian + "H", body, 0)[0])
        elif btype == 6:
            iface, _, _, caplen, _ = struct.unpack_from(endian + "IIIII", body, 0)
            yield links[iface], body[20:20 + caplen]
        elif btype == 3:
            yield links[0], body[4:]
        off += blen


def ip_payload(link, pkt):
    if link == 1:  # Ethernet
        etype, pkt = struct.unpack_from(">H", pkt, 12)[0], pkt[14:]
    elif link == 113:  # Linux SLL
        etype, pkt = struct.unpack_from(">H", pkt, 14)[0], pkt[16:]
    elif link == 276:  # Linux SLL2
        etype, pkt = struct.unpack_from(">H", pkt, 0)[0], pkt[20:]
    elif link in (0, 108):  # null / loopback
        fam = struct.unpack_from("<I", pkt, 0)[0]
        etype, pkt = (0x0800 if fam == 2 else 0x86DD), pkt[4:]
    elif link == 101:  # raw IP
        etype = 0x0800 if pkt[0] >> 4 == 4 else 0x86DD
    else:
        sys.exit(f"link type {link} not handled")
    if etype == 0x0800:
        ihl, total = (pkt[0] & 15) * 4, struct.unpack_from(">H", pkt, 2)[0]
        return pkt[9], pkt[12:16], pkt[16:20], pkt[ihl:total]
    if etype == 0x86DD:
        plen = struct.unpack_from(">H", pkt, 4)[0]
        return pkt[6], pkt[8:24], pkt[24:40], pkt[40:40 + plen]
    return None


def connections(path):
    conns, order = {}, []
    for link, pkt in packets(path):
        ip = ip_payload(link, pkt)
        if not ip or ip[0] != 6:
            continue
        _, src, dst, tcp = ip
        sport, dport, seq = struct.unpack_from(">HHI", tcp, 0)
        flags, doff = tcp[13], (tcp[12] >> 4) * 4
        payload = tcp[doff:]
        a, b = (src, sport), (dst, dport)
        key = tuple(sorted([a, b]))
        if flags & 0x02 and not flags & 0x10:  # SYN
            conns[key] = {"client": a, a: [seq + 1, bytearray()], b: None}
            order.append(key)
            continue
        c = conns.get(key)
        if c is None:
            continue
        if flags & 0x02:  # SYN-ACK
            c[a] = [seq + 1, bytearray()]
            continue
        if payload and c.get(a):
            nxt, buf = c[a]
            if seq != nxt + len(buf):
                sys.exit(f"gap or retransmission on {a}->{b} at seq {seq}")
            buf += payload
    return [(conns[k]["client"], bytes(conns[k][conns[k]["client"]][1]),
             bytes(conns[k][[p for p in k if p != conns[k]["client"]][0]][1]))
            for k in order]


def frames(stream):
    if stream[:8] != b"ceph v2\n":
        return []
    off, out = 26, []
    while off + 32 <= len(stream):
        tag, nseg = stream[off], stream[off + 1]
        lens = [struct.unpack_from("<I", stream, off + 2 + 6 * i)[0] for i in range(4)]
        n = 32 + sum(lens) + (4 if lens[0] else 0) + (13 if nseg > 1 else 0)
        out.append((tag, stream[off:off + n]))
        off += n
    return out


def main():
    capture, idx, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    conns = connections(capture)
    if "--list" in sys.argv:
        for i, (client, c, s) in enumerate(conns):
            tags = [TAGS.get(t, t) for t, _ in frames(c)][:8]
            print(i, client[1], len(c), len(s), tags)
        return
    _, c2s, s2c = conns[idx]
    seq = [("c2s", f) for f in frames(c2s)] + [("s2c", f) for f in frames(s2c)]
    os.makedirs(outdir, exist_ok=True)
    n = 0
    for d, (tag, raw) in seq:
        if tag == 17:
            continue
        name = os.path.join(outdir, f"{n:02}-{d}-{TAGS.get(tag, tag)}.bin")
        open(name, "wb").write(raw)
        print(name, len(raw))
        n += 1


if __name__ == "__main__":
    main()
