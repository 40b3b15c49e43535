#!/usr/bin/env python3
"""raw_load: the broker-limit load of scripts/bench, with no client library in the way.

Every Kafka client does work per record (librdkafka and the JVM client build, checksum and
parse each batch themselves), and on a 2-core machine that work competes with the broker
for the same cores. This load generator does none: it encodes one RecordBatch v2 once and
sends it over and over in Produce requests (v7; one batch per partition, as Kafka
requires), keeping a window of requests in flight,
and it reads with Fetch (v4) requests, walking only the batch headers of the answers. What
it measures is how fast a broker takes and serves batches. Prints one JSON object.

  raw_load.py produce --bootstrap H:P --topic T [--partitions 1] [--size 1024]
                      [--records N] [--request-bytes 983040] [--acks 1] [--in-flight 5]
  raw_load.py consume --bootstrap H:P --topic T [--partitions 1] --records N
"""
import argparse
import json
import socket
import struct
import sys
import threading
import time

from kafka.record.util import calc_crc32c  # kafka-python, installed by scripts/install-deps.sh

PRODUCE, FETCH = 0, 1


def varint(n):
    n = (n << 1) ^ (n >> 63)  # zigzag
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def record_batch(count, size):
    """One uncompressed RecordBatch v2 of `count` records with `size`-byte values, no keys."""
    value = bytes((i * 7 + 3) % 251 for i in range(size))
    records = bytearray()
    for i in range(count):
        body = (b"\x00" + varint(0) + varint(i) + varint(-1) + varint(size) + value + varint(0))
        records += varint(len(body)) + body
    now = int(time.time() * 1000)
    # attributes .. records: the part the CRC covers
    after_crc = struct.pack(">hiqqqhii", 0, count - 1, now, now, -1, -1, -1, count) + records
    crc = calc_crc32c(after_crc)
    head = struct.pack(">ib", -1, 2) + struct.pack(">I", crc)  # leader epoch, magic, crc
    batch_length = len(head) + len(after_crc)
    return struct.pack(">qi", 0, batch_length) + head + after_crc


def string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def request(api_key, version, correlation_id, body):
    payload = struct.pack(">hhi", api_key, version, correlation_id) + string("raw_load") + body
    return struct.pack(">i", len(payload)) + payload


def produce_body(topic, partitions, records, acks):
    parts = b"".join(struct.pack(">ii", p, len(records)) + records for p in partitions)
    return (struct.pack(">hhi", -1, acks, 30000) + struct.pack(">i", 1) + string(topic)
            + struct.pack(">i", len(partitions)) + parts)


def read_exact(sock, n, buf=None):
    buf = buf if buf is not None else bytearray(n)
    view = memoryview(buf)[:n]
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise SystemExit("raw_load: broker closed the connection")
        got += k
    return buf


def read_response(sock, buf=None):
    size = struct.unpack(">i", read_exact(sock, 4))[0]
    if buf is None or len(buf) < size:
        buf = bytearray(size)
    read_exact(sock, size, buf)
    return buf, size


def connect(bootstrap):
    host, port = bootstrap.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return s


def produce_errors(resp):
    """Error codes of a Produce v7 answer (after the correlation id)."""
    pos = 4
    codes = []
    (topics,) = struct.unpack_from(">i", resp, pos)
    pos += 4
    for _ in range(topics):
        (n,) = struct.unpack_from(">h", resp, pos)
        pos += 2 + n
        (parts,) = struct.unpack_from(">i", resp, pos)
        pos += 4
        for _ in range(parts):
            _, code = struct.unpack_from(">ih", resp, pos)
            codes.append(code)
            pos += 4 + 2 + 8 + 8 + 8  # index, error, base offset, append time, log start
    return codes


def run_produce(a):
    partitions = list(range(a.partitions))
    per_batch = max(1, a.request_bytes // len(partitions) // (a.size + 10))
    batch = record_batch(per_batch, a.size)
    per_request = per_batch * len(partitions)
    requests = -(-a.records // per_request)
    frame = request(PRODUCE, 7, 0, produce_body(a.topic, partitions, batch, a.acks))
    sock = connect(a.bootstrap)
    window = threading.Semaphore(a.in_flight)
    errors = []

    def answers():
        buf = None
        for _ in range(requests):
            buf, _ = read_response(sock, buf)
            errors.extend(c for c in produce_errors(buf) if c != 0)
            window.release()

    reader = threading.Thread(target=answers, daemon=True)
    reader.start()
    start = time.monotonic()
    for _ in range(requests):
        window.acquire()
        sock.sendall(frame)
    reader.join()
    secs = time.monotonic() - start
    sock.close()
    records = requests * per_request
    print(json.dumps({"mode": "produce", "records": records, "errors": len(errors),
                      "seconds": round(secs, 3), "msgs": records / secs,
                      "mbs": records * a.size / secs / 1e6}))
    return 1 if errors else 0


def fetch_body(topic, offsets, max_bytes, partition_max_bytes):
    parts = b"".join(struct.pack(">iqi", p, o, partition_max_bytes) for p, o in offsets.items())
    return (struct.pack(">iiiib", -1, 500, 1, max_bytes, 0) + struct.pack(">i", 1) + string(topic)
            + struct.pack(">i", len(offsets)) + parts)


def walk_fetch(resp, offsets):
    """Advances `offsets` past the whole batches of a Fetch v4 answer; returns the records
    they hold. Only batch headers are read."""
    pos = 4 + 4  # correlation id, throttle time
    (topics,) = struct.unpack_from(">i", resp, pos)
    pos += 4
    records = 0
    for _ in range(topics):
        (n,) = struct.unpack_from(">h", resp, pos)
        pos += 2 + n
        (parts,) = struct.unpack_from(">i", resp, pos)
        pos += 4
        for _ in range(parts):
            partition, code = struct.unpack_from(">ih", resp, pos)
            pos += 4 + 2 + 8 + 8
            if code != 0:
                raise SystemExit(f"raw_load: fetch error {code} on partition {partition}")
            (aborted,) = struct.unpack_from(">i", resp, pos)
            pos += 4 + max(aborted, 0) * 16
            (length,) = struct.unpack_from(">i", resp, pos)
            pos += 4
            end = pos + length
            at = pos
            while at + 61 <= end:
                base, blen = struct.unpack_from(">qi", resp, at)
                if at + 12 + blen > end:
                    break  # a batch cut at the size limit: fetched again next time
                (delta,) = struct.unpack_from(">i", resp, at + 23)
                (count,) = struct.unpack_from(">i", resp, at + 57)
                records += count
                offsets[partition] = base + delta + 1
                at += 12 + blen
            pos = end
    return records


def run_consume(a):
    sock = connect(a.bootstrap)
    offsets = {p: 0 for p in range(a.partitions)}
    got, buf, start, first = 0, None, time.monotonic(), None
    first_got = 0
    correlation = 0
    while got < a.records:
        correlation += 1
        body = fetch_body(a.topic, offsets, 50 << 20, 10 << 20)
        sock.sendall(request(FETCH, 4, correlation, body))
        buf, _ = read_response(sock, buf)
        got += walk_fetch(buf, offsets)
        if first is None and got:
            first, first_got = time.monotonic(), got  # timed from the first answer with data
        if time.monotonic() - start > 600:
            break
    end = time.monotonic()
    sock.close()
    secs = max(end - (first or start), 1e-9)
    rate = (got - first_got) / secs
    print(json.dumps({"mode": "consume", "records": got, "seconds": round(secs, 3),
                      "msgs": rate, "mbs": rate * a.size / 1e6}))
    return 0 if got >= a.records else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["produce", "consume"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--records", type=int, required=True)
    # About librdkafka's largest request (message.max.bytes 1,000,000), split evenly over the
    # partitions; one partition's batch stays under Kafka's max.message.bytes.
    ap.add_argument("--request-bytes", type=int, default=960 * 1024)
    ap.add_argument("--acks", type=int, default=1)
    ap.add_argument("--in-flight", type=int, default=5)
    a = ap.parse_args()
    return run_produce(a) if a.mode == "produce" else run_consume(a)


if __name__ == "__main__":
    sys.exit(main())
