"""Raw requests on a plain socket. `raw_call` sends one request of a version that is not
flexible and returns its response body; the tests use it where no client asks what they
need (or asks it differently). `fetch_batches`, a raw Fetch (v4), shows the record batches
exactly as the broker serves them: used to check that a producer's compression codec really
reached the log (librdkafka, for one, silently stops compressing when it dislikes the
broker's ApiVersions answer)."""
import socket
import struct

CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


CORRELATION_ID = 7


def string16(s: str) -> bytes:
    """A Kafka STRING: int16 length, then the UTF-8 bytes."""
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return bytes(buf)


def raw_call(host, port, api_key, version, body, client_id="compat-wire", timeout=15.0):
    """One request (request header v1, so a version that is not flexible) on a socket of its
    own: the response body, after its size and correlation id (which must be ours)."""
    req = struct.pack(">hhi", api_key, version, CORRELATION_ID) + string16(client_id) + body
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(req)) + req)
        size = struct.unpack(">i", _recv_exact(s, 4))[0]
        resp = _recv_exact(s, size)
    (corr,) = struct.unpack_from(">i", resp, 0)
    assert corr == CORRELATION_ID, f"correlation id {corr}"
    return resp[4:]


def fetch_batches(host, port, topic, partition, offset=0, max_bytes=64 << 20, timeout=15.0):
    """Returns (error_code, high_watermark, [(base_offset, last_offset_delta, codec_name, record_count)])."""
    err, hw, raw = fetch_raw_batches(host, port, topic, partition, offset, max_bytes, timeout)
    batches = []
    for base_offset, header in raw:
        attributes, last_delta = struct.unpack_from(">hi", header, 21)
        count = struct.unpack_from(">i", header, 57)[0]
        batches.append((base_offset, last_delta, CODECS.get(attributes & 7, f"?{attributes & 7}"), count))
    return err, hw, batches


def fetch_batch_producers(host, port, topic, partition, offset=0, timeout=15.0):
    """Each batch's producer as stored: [(base_offset, producer_id, producer_epoch,
    transactional, control)]."""
    _err, _hw, raw = fetch_raw_batches(host, port, topic, partition, offset, 64 << 20, timeout)
    out = []
    for base_offset, header in raw:
        attributes = struct.unpack_from(">h", header, 21)[0]
        producer_id, producer_epoch = struct.unpack_from(">qh", header, 43)
        out.append((base_offset, producer_id, producer_epoch, bool(attributes & 0x10),
                    bool(attributes & 0x20)))
    return out


def fetch_raw_batches(host, port, topic, partition, offset, max_bytes, timeout):
    """Fetch v4 at read_uncommitted: (error_code, high_watermark, [(base_offset, the batch's
    61-byte header)])."""
    body = struct.pack(">iiiib", -1, 100, 1, max_bytes, 0)              # replica, wait, min, max, isolation
    body += struct.pack(">i", 1) + string16(topic)
    body += struct.pack(">i", 1) + struct.pack(">iqi", partition, offset, max_bytes)
    resp = raw_call(host, port, 1, 4, body, timeout=timeout)  # Fetch v4
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from(fmt, resp, pos)
        pos += struct.calcsize(fmt)
        return vals

    _throttle, ntopics = take(">ii")
    assert ntopics == 1, f"{ntopics} topics in response"
    (tlen,) = take(">h")
    pos += tlen
    (nparts,) = take(">i")
    assert nparts == 1, f"{nparts} partitions in response"
    _p, err, hw, _lso, naborted = take(">ihqqi")
    pos += max(naborted, 0) * 16
    (rlen,) = take(">i")
    records = resp[pos:pos + max(rlen, 0)]
    batches = []
    bpos = 0
    while bpos + 61 <= len(records):
        base_offset, batch_len = struct.unpack_from(">qi", records, bpos)
        if bpos + 12 + batch_len > len(records):
            break  # partial trailing batch, as Kafka allows
        magic = records[bpos + 16]
        assert magic == 2, f"batch magic {magic}"
        batches.append((base_offset, records[bpos:bpos + 61]))
        bpos += 12 + batch_len
    return err, hw, batches
