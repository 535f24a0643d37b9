#!/usr/bin/env python3
"""Independent Ceph msgr v1 ("ceph v027") test client, stdlib only.

Written from the protocol facts (Linux net/ceph/messenger_v1.c, include/linux/ceph/msgr.h,
ceph ProtocolV1.cc), not from the ceph-msgr Rust sources. It behaves like a kernel client:
banner + legacy addr, ceph_msg_connect (no authorizer), SEQ/READY, N messages, acks,
optional KEEPALIVE2, CLOSE.

    python3 v1client.py HOST:PORT [--messages N] [--size BYTES] [--keepalive]
        [--features HEX] [--old-footer] [--trickle] [--seed S] [--self-test]

The last stdout line is a JSON summary (also on failure, with an "error" key).
Exit codes: 0 ok, 1 I/O error or timeout, 2 connect rejected (reply tag not SEQ/READY),
3 protocol error (bad banner, unknown tag, CRC mismatch, aborted message).
"""
import argparse
import json
import os
import random
import select
import socket
import struct
import sys
import threading
import time

# ---------------------------------------------------------------- CRC32C (raw)
def _make_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table

_CRC_TABLE = _make_table()

def crc32c(seed, data):
    """Ceph's raw crc32c: register starts at seed, no pre/post inversion."""
    crc, t = seed & 0xFFFFFFFF, _CRC_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc

assert crc32c(0, b"123456789") == 0x58E3FA20
assert crc32c(0xFFFFFFFF, b"123456789") == 0x1CF96D7C

# ---------------------------------------------------------------- constants
BANNER = b"ceph v027"
ADDR_LEN = 136
TAGS = {1: "READY", 2: "RESETSESSION", 3: "WAIT", 4: "RETRY_SESSION", 5: "RETRY_GLOBAL",
        6: "CLOSE", 7: "MSG", 8: "ACK", 9: "KEEPALIVE", 10: "BADPROTOVER",
        11: "BADAUTHORIZER", 12: "FEATURES", 13: "SEQ", 14: "KEEPALIVE2",
        15: "KEEPALIVE2_ACK", 16: "CHALLENGE_AUTHORIZER"}
TAG = {v: k for k, v in TAGS.items()}
ENTITY_CLIENT = 8
CEPH_MONC_PROTOCOL = 15          # include/linux/ceph/ceph_fs.h (OSDC 24, MDSC 32)
FEATURE_RECONNECT_SEQ = 1 << 6
FEATURE_MSG_AUTH = 1 << 23
FEATURE_MSGR_KEEPALIVE2 = 1 << 42
DEFAULT_FEATURES = 0x3F01CFBDFFFDFFFF
CONNECT_LOSSY = 1
FOOTER_COMPLETE, FOOTER_NOCRC = 1, 2
HEADER_LEN = 53
CONNECT_FMT = "<QIIIIIIB"        # 33 bytes
REPLY_FMT = "<BQIIIIB"           # 26 bytes
HEADER_FMT = "<QQHHHIIIHBQHHI"   # 53 bytes
assert struct.calcsize(CONNECT_FMT) == 33 and struct.calcsize(REPLY_FMT) == 26
assert struct.calcsize(HEADER_FMT) == HEADER_LEN

class ProtocolError(Exception):
    def __init__(self, msg, code=3):
        super().__init__(msg)
        self.code = code

# ---------------------------------------------------------------- entity_addr (legacy)
def encode_addr(ip="0.0.0.0", port=0, nonce=0, family=socket.AF_INET):
    """136 bytes: type u32 (0), nonce u32, sockaddr_storage with BIG-endian family."""
    ss = bytearray(128)
    if family == socket.AF_INET:
        struct.pack_into(">HH4s", ss, 0, 2, port, socket.inet_aton(ip))
    else:
        struct.pack_into(">HHI16s", ss, 0, 10, port, 0, socket.inet_pton(socket.AF_INET6, ip))
    return struct.pack("<II", 0, nonce) + bytes(ss)

def decode_addr(b):
    """-> dict(type, nonce, family, ip, port)."""
    if len(b) != ADDR_LEN:
        raise ProtocolError("addr must be %d bytes" % ADDR_LEN)
    typ, nonce = struct.unpack_from("<II", b, 0)
    family, port = struct.unpack_from(">HH", b, 8)
    if family == 2:
        ip = socket.inet_ntoa(b[12:16])
    elif family == 10:
        ip = socket.inet_ntop(socket.AF_INET6, b[16:32])
    else:
        ip = "?family=%d" % family if family else "-"
    return {"type": typ, "nonce": nonce, "family": family, "ip": ip, "port": port}

def addr_str(a):
    ip = "[%s]" % a["ip"] if a["family"] == 10 else a["ip"]
    return "%s:%d/%d" % (ip, a["port"], a["nonce"])

# ---------------------------------------------------------------- connect records
def encode_connect(features, global_seq=1, connect_seq=0, proto=CEPH_MONC_PROTOCOL,
                   flags=CONNECT_LOSSY, host_type=ENTITY_CLIENT):
    return struct.pack(CONNECT_FMT, features, host_type, global_seq, connect_seq, proto,
                       0, 0, flags)   # authorizer_protocol 0, authorizer_len 0

def decode_reply(b):
    k = ("tag", "features", "global_seq", "connect_seq", "protocol_version",
         "authorizer_len", "flags")
    return dict(zip(k, struct.unpack(REPLY_FMT, b)))

# ---------------------------------------------------------------- message framing
HDR_FIELDS = ("seq", "tid", "type", "priority", "version", "front_len", "middle_len",
              "data_len", "data_off", "src_type", "src_num", "compat_version", "reserved")

def encode_header(**f):
    body = struct.pack(HEADER_FMT[:-1], *(f.get(k, 0) for k in HDR_FIELDS))
    return body + struct.pack("<I", crc32c(0, body))

def decode_header(b):
    vals = struct.unpack(HEADER_FMT, b)
    h = dict(zip(HDR_FIELDS + ("crc",), vals))
    want = crc32c(0, b[:49])
    if h["crc"] != want:
        raise ProtocolError("header crc mismatch: got 0x%08x want 0x%08x" % (h["crc"], want))
    return h

def encode_footer(front, middle, data, new_footer, flags=FOOTER_COMPLETE):
    crcs = struct.pack("<III", crc32c(0, front), crc32c(0, middle), crc32c(0, data))
    return crcs + (struct.pack("<QB", 0, flags) if new_footer else struct.pack("<B", flags))

def decode_footer(b):
    front_crc, middle_crc, data_crc = struct.unpack_from("<III", b, 0)
    sig, flags = struct.unpack_from("<QB", b, 12) if len(b) == 21 else (0, b[12])
    return {"front_crc": front_crc, "middle_crc": middle_crc, "data_crc": data_crc,
            "sig": sig, "flags": flags}

def encode_message(seq, mtype, front, data, src_num, new_footer, tid=None):
    hdr = encode_header(seq=seq, tid=seq if tid is None else tid, type=mtype, priority=127,
                        version=1, front_len=len(front), middle_len=0, data_len=len(data),
                        data_off=0, src_type=ENTITY_CLIENT, src_num=src_num,
                        compat_version=1, reserved=0)
    return (bytes([TAG["MSG"]]) + hdr + front + data
            + encode_footer(front, b"", data, new_footer))

# ---------------------------------------------------------------- connection
class Client:
    def __init__(self, sock, trickle=False, rng=None):
        self.sock, self.trickle, self.rng = sock, trickle, rng or random.Random(0)
        self.send_lock = threading.Lock()
        self.cond = threading.Condition()
        self.acked = 0          # highest ACK seq received
        self.in_seq = 0         # highest server MSG seq received
        self.server_msgs = 0
        self.ka_acks = []       # (sec, nsec) stamps from KEEPALIVE2_ACK
        self.error = None       # ProtocolError set by the reader thread
        self.peer_closed = False
        self.closing = False
        self.polling = False    # True once the reader thread owns the receive side
        self.footer_len = 21

    def send(self, data):
        with self.send_lock:
            if not self.trickle:
                self.sock.sendall(data)
                return
            i = 0
            while i < len(data):
                n = self.rng.randint(1, 7)
                self.sock.sendall(data[i:i + n])
                i += n
                if self.rng.random() < 0.25:
                    time.sleep(0.0005)

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            if self.polling:   # reader thread: wake up regularly to notice `closing`
                if not select.select([self.sock], [], [], 0.2)[0]:
                    if self.closing:
                        raise EOFError("closing")
                    continue
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("peer closed the connection after %d/%d bytes" % (len(buf), n))
            buf += chunk
        return bytes(buf)

    # ---- stream reader (runs in a thread once the session is open)
    def reader(self):
        try:
            while True:
                tag = self.recv_exact(1)[0]
                name = TAGS.get(tag)
                if name == "ACK":
                    seq = struct.unpack("<Q", self.recv_exact(8))[0]
                    with self.cond:
                        self.acked = max(self.acked, seq)
                        self.cond.notify_all()
                elif name == "KEEPALIVE2_ACK":
                    stamp = struct.unpack("<II", self.recv_exact(8))
                    with self.cond:
                        self.ka_acks.append(stamp)
                        self.cond.notify_all()
                elif name == "KEEPALIVE2":   # userspace peers may ping us too: answer it
                    stamp = self.recv_exact(8)
                    self.send(bytes([TAG["KEEPALIVE2_ACK"]]) + stamp)
                elif name == "KEEPALIVE":
                    pass
                elif name == "MSG":
                    self.read_message()
                elif name == "CLOSE":
                    with self.cond:
                        self.peer_closed = True
                        self.cond.notify_all()
                    return
                else:
                    raise ProtocolError("unexpected tag %d (%s) in open state"
                                        % (tag, name or "unknown"))
        except (EOFError, OSError) as e:
            with self.cond:
                if not self.closing and self.error is None:
                    self.error = ProtocolError("read failed: %s" % e, code=1)
                self.cond.notify_all()
        except ProtocolError as e:
            with self.cond:
                self.error = e
                self.cond.notify_all()

    def read_message(self):
        h = decode_header(self.recv_exact(HEADER_LEN))
        front = self.recv_exact(h["front_len"])
        middle = self.recv_exact(h["middle_len"])
        data = self.recv_exact(h["data_len"])
        f = decode_footer(self.recv_exact(self.footer_len))
        if not f["flags"] & FOOTER_COMPLETE:
            raise ProtocolError("server message seq %d is ABORTED (COMPLETE clear)" % h["seq"])
        for name, sec in (("front", front), ("middle", middle), ("data", data)):
            if name == "data" and f["flags"] & FOOTER_NOCRC:
                continue
            got, want = f[name + "_crc"], crc32c(0, sec)
            if got != want:
                raise ProtocolError("server message seq %d %s crc 0x%08x != 0x%08x"
                                    % (h["seq"], name, got, want))
        if h["seq"] <= self.in_seq:
            print("# server msg seq %d <= in_seq %d: old, ignored" % (h["seq"], self.in_seq))
            return
        if h["seq"] > self.in_seq + 1:
            print("# server msg seq %d: gap after %d" % (h["seq"], self.in_seq))
        print("# server msg seq=%d type=%d front=%d middle=%d data=%d src=%d.%d" % (
            h["seq"], h["type"], len(front), len(middle), len(data), h["src_type"],
            h["src_num"]))
        with self.cond:
            self.in_seq = h["seq"]
            self.server_msgs += 1
        self.send(struct.pack("<BQ", TAG["ACK"], h["seq"]))

    def wait_for(self, pred, timeout):
        """Wait until pred() is true; raise on reader error, peer CLOSE or timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                if self.error:
                    raise self.error
                if self.peer_closed:
                    raise ProtocolError("server sent CLOSE early", code=1)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ProtocolError("timeout", code=1)
                self.cond.wait(left)

# ---------------------------------------------------------------- session
def make_payload(rng, seq, size):
    """Odd seqs: front only; even seqs: front + `size` data bytes (deterministic)."""
    front = b"ceph-msgr interop msg %d " % seq + rng.randbytes(rng.randint(0, 64))
    data = rng.randbytes(size) if seq % 2 == 0 else b""
    return front, data

def run(args, summary):
    rng = random.Random(args.seed)
    host, port = args.target.rsplit(":", 1)
    sock = socket.create_connection((host.strip("[]"), int(port)), timeout=args.timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c = Client(sock, trickle=args.trickle, rng=rng)

    # 1. banner + addresses; like the kernel we send ours immediately
    nonce = int.from_bytes(os.urandom(4), "little")
    c.send(BANNER + encode_addr("0.0.0.0", 0, nonce))
    banner = c.recv_exact(len(BANNER))
    if banner != BANNER:
        raise ProtocolError("bad banner %r" % banner)
    server_addr = decode_addr(c.recv_exact(ADDR_LEN))
    my_addr = decode_addr(c.recv_exact(ADDR_LEN))
    summary["server_addr"], summary["my_addr_seen"] = addr_str(server_addr), addr_str(my_addr)
    print("# server addr %s (type %d); my addr as seen by server %s; my nonce %d"
          % (summary["server_addr"], server_addr["type"], summary["my_addr_seen"], nonce))

    # 2. connect
    features = args.features & ~FEATURE_MSG_AUTH if args.old_footer else args.features
    connect = encode_connect(features, proto=args.protocol_version, flags=args.flags)
    print("# connect %s" % connect.hex())
    c.send(connect)

    # 3. connect reply (+ authorizer reply) (+ le64 in_seq if SEQ)
    reply = decode_reply(c.recv_exact(26))
    c.recv_exact(reply["authorizer_len"])
    tag_name = TAGS.get(reply["tag"], "unknown(%d)" % reply["tag"])
    summary["reply_tag"] = tag_name
    print("# reply tag=%s features=0x%x gseq=%d cseq=%d proto=%d flags=%d" % (
        tag_name, reply["features"], reply["global_seq"], reply["connect_seq"],
        reply["protocol_version"], reply["flags"]))
    if tag_name not in ("SEQ", "READY"):
        raise ProtocolError("connect rejected: %s" % tag_name, code=2)
    if tag_name == "SEQ":
        summary["server_in_seq"] = struct.unpack("<Q", c.recv_exact(8))[0]
        c.send(struct.pack("<Q", 0))        # our in_seq, no tag byte
    negotiated = features & reply["features"]
    c.footer_len = 21 if negotiated & FEATURE_MSG_AUTH else 13
    summary["features"], summary["footer"] = "0x%x" % negotiated, c.footer_len
    print("# open: negotiated features 0x%x, footer %d bytes" % (negotiated, c.footer_len))

    c.polling = True
    reader = threading.Thread(target=c.reader, daemon=True)
    reader.start()

    # 4. messages
    # --gap skips seqs halfway (the server delivers after the gap); --duplicates then
    # resends that many messages it already acknowledged (the server drops them) and
    # ends with one more new message, whose ACK shows the duplicates were passed over.
    src_num = rng.getrandbits(64)
    half = args.messages // 2
    seqs = [i + (args.gap if i > half else 0) for i in range(1, args.messages + 1)]
    new = c.footer_len == 21
    try:
        for n, seq in enumerate(seqs, 1):
            front, data = make_payload(rng, seq, args.size)
            c.send(encode_message(seq, args.msg_type, front, data, src_num, new))
            summary["sent"] = n
        if args.duplicates:
            c.wait_for(lambda: c.acked >= seqs[-1], args.timeout)
            for seq in seqs[:args.duplicates]:
                c.send(encode_message(seq, args.msg_type, b"duplicate", b"", src_num, new))
            seqs.append(seqs[-1] + 1)
            c.send(encode_message(seqs[-1], args.msg_type, b"after the duplicates", b"",
                                  src_num, new))
            summary["sent"] += 1
    except OSError:
        reader.join(1)
        raise c.error or sys.exc_info()[1]   # prefer the reader's diagnosis
    c.wait_for(lambda: c.acked >= seqs[-1], args.timeout)
    summary["acked"] = sum(1 for q in seqs if q <= c.acked)   # messages, not seqs
    print("# all %d messages acked (last seq %d)" % (summary["sent"], seqs[-1]))

    # 6. keepalive2
    if args.keepalive:
        if not negotiated & FEATURE_MSGR_KEEPALIVE2:
            raise ProtocolError("--keepalive: server lacks MSGR_KEEPALIVE2", code=2)
        now = time.time_ns()
        stamp = (now // 10**9 & 0xFFFFFFFF, now % 10**9)
        t0 = time.monotonic()
        c.send(struct.pack("<BII", TAG["KEEPALIVE2"], *stamp))
        c.wait_for(lambda: stamp in c.ka_acks, args.timeout)
        summary["keepalive_rtt_us"] = round((time.monotonic() - t0) * 1e6)
        print("# keepalive2 acked, rtt %d us" % summary["keepalive_rtt_us"])

    # 7. close
    with c.cond:
        c.closing = True
    c.send(bytes([TAG["CLOSE"]]))
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    reader.join(2)
    sock.close()
    summary["acked"] = sum(1 for q in seqs if q <= c.acked)
    summary["acked_seq"], summary["server_msgs"] = c.acked, c.server_msgs
    if c.error:
        raise c.error

# ---------------------------------------------------------------- self test
def self_test():
    assert crc32c(0, b"") == 0 and crc32c(0, bytes(4096)) == 0
    assert crc32c(0xFFFFFFFF, b"\0") == 0xAD82ACAE and crc32c(0xFFFFFFFF, b"") == 0xFFFFFFFF
    assert crc32c(crc32c(0, b"1234"), b"56789") == 0x58E3FA20          # chaining
    a = encode_addr("10.1.2.3", 6789, 0xDEADBEEF)
    assert len(a) == 136 and a[8:12] == b"\x00\x02\x1a\x85" and a[12:16] == bytes([10, 1, 2, 3])
    d = decode_addr(a)
    assert (d["ip"], d["port"], d["nonce"], d["type"]) == ("10.1.2.3", 6789, 0xDEADBEEF, 0)
    assert addr_str(decode_addr(encode_addr("::1", 6800, 7, socket.AF_INET6))) == "[::1]:6800/7"
    assert decode_addr(bytes(136))["ip"] == "-"
    conn = encode_connect(DEFAULT_FEATURES)
    assert conn.hex() == ("fffffdffbdcf013f" "08000000" "01000000" "00000000" "0f000000"
                          "00000000" "00000000" "01")
    assert DEFAULT_FEATURES & (FEATURE_MSG_AUTH | FEATURE_RECONNECT_SEQ
                               | FEATURE_MSGR_KEEPALIVE2) == (1 << 23 | 1 << 6 | 1 << 42)
    r = decode_reply(struct.pack(REPLY_FMT, 13, 0xABC, 5, 1, 15, 0, 1))
    assert r["tag"] == 13 and r["features"] == 0xABC and r["connect_seq"] == 1
    fields = dict(seq=3, tid=9, type=42, priority=127, version=1, front_len=10, middle_len=0,
                  data_len=4096, data_off=0, src_type=8, src_num=2**64 - 2,
                  compat_version=1, reserved=0)
    h = encode_header(**fields)
    assert len(h) == 53 and h[36] == 8 and struct.unpack_from("<Q", h, 37)[0] == 2**64 - 2
    back = decode_header(h)
    assert all(back[k] == v for k, v in fields.items()) and back["crc"] == crc32c(0, h[:49])
    try:
        decode_header(h[:20] + bytes([h[20] ^ 1]) + h[21:])
        raise AssertionError("corrupt header accepted")
    except ProtocolError:
        pass
    front, data = b"hello", b"\x01" * 100
    for new, flen in ((True, 21), (False, 13)):
        m = encode_message(1, 42, front, data, 5, new)
        assert len(m) == 1 + 53 + len(front) + len(data) + flen and m[0] == 7
        f = decode_footer(m[-flen:])
        assert f["front_crc"] == crc32c(0, front) and f["data_crc"] == crc32c(0, data)
        assert f["middle_crc"] == 0 and f["flags"] == FOOTER_COMPLETE and f["sig"] == 0
    p1 = make_payload(random.Random(7), 2, 100)
    assert p1 == make_payload(random.Random(7), 2, 100) and len(p1[1]) == 100
    assert make_payload(random.Random(7), 1, 100)[1] == b""
    print("self-test ok")

# ---------------------------------------------------------------- CLI
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("target", nargs="?", help="HOST:PORT of a msgr v1 server")
    ap.add_argument("--messages", type=int, default=10)
    ap.add_argument("--size", type=int, default=4096, help="data bytes of even messages")
    ap.add_argument("--keepalive", action="store_true")
    ap.add_argument("--features", type=lambda s: int(s, 16), default=DEFAULT_FEATURES)
    ap.add_argument("--old-footer", action="store_true", help="clear MSG_AUTH (bit 23)")
    ap.add_argument("--trickle", action="store_true", help="send in 1-7 byte pieces")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gap", type=int, default=0, help="skip this many seqs halfway")
    ap.add_argument("--duplicates", type=int, default=0,
                    help="then resend this many acknowledged messages, and one new one")
    ap.add_argument("--msg-type", type=int, default=42)
    ap.add_argument("--protocol-version", type=int, default=CEPH_MONC_PROTOCOL)
    ap.add_argument("--flags", type=int, default=CONNECT_LOSSY, help="connect flags")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args(argv)
    if args.self_test:
        self_test()
        return 0
    if not args.target:
        ap.error("HOST:PORT required")
    summary = {"server_addr": None, "my_addr_seen": None, "reply_tag": None,
               "features": None, "footer": None, "sent": 0, "acked": 0,
               "keepalive_rtt_us": None, "server_msgs": 0}
    code = 0
    try:
        run(args, summary)
    except ProtocolError as e:
        code, summary["error"] = e.code, str(e)
    except (OSError, EOFError) as e:
        code, summary["error"] = 1, "%s: %s" % (type(e).__name__, e)
    if code:
        print("v1client: error: %s" % summary["error"], file=sys.stderr)
    print(json.dumps(summary), flush=True)
    return code

if __name__ == "__main__":
    sys.exit(main())
