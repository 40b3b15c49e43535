"""The scenarios, written once against the adapter interface (clients/__init__.py).
Each returns a note string on success and raises (AssertionError / ClientError) on failure."""
import signal
import time
import uuid

from . import wire
from .data import compare, make_messages, pair_header_mode

PARTITIONS = 3
RUN = uuid.uuid4().hex[:6]


class NotApplicable(Exception):
    """The client cannot do what the scenario needs (the reason is the message): "n/a" in the matrix."""


def require(client, feature):
    """NotApplicable when the client declares `feature` ("idempotent", "groups") unsupported in
    its `unsupported` map (feature -> reason); clients without the map support everything."""
    reason = getattr(client, "unsupported", {}).get(feature)
    if reason:
        raise NotApplicable(reason)


def topic_name(scenario, client):
    return f"compat-{scenario}-{client.name.replace('-', '')}-{RUN}"


def now_ms():
    return int(time.time() * 1000)


def ensure_topic(client, topic, partitions):
    """Create with the client's own admin API; kcat relies on broker auto-creation
    (num.partitions=3) when it first produces."""
    if client.name != "kcat":
        client.create_topic(topic, partitions)
        wait_partitions(client, topic, partitions)


def wait_partitions(client, topic, partitions, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        md = client.metadata(topic)
        if len(md) == partitions and all(l == 0 for l in md.values()):
            return md
        if time.monotonic() > deadline:
            return md
        time.sleep(0.3)


def check_produce_offsets(msgs, results, start=0):
    """Offsets reported by the producer: per partition start, start+1, ... in send order."""
    if results is None:
        return "producer offsets n/a"
    assert len(results) == len(msgs), f"{len(results)} delivery results for {len(msgs)} messages"
    next_off = {}
    for i, (m, (p, o)) in enumerate(zip(msgs, results)):
        assert p == m.partition, f"message {i}: delivered to partition {p}, sent to {m.partition}"
        want = next_off.get(p, start)
        assert o == want, f"message {i}: producer got offset {o} on p{p}, expected {want}"
        next_off[p] = want + 1
    return "producer offsets ok"


def produce_and_verify(writer, reader, topic, msgs, compression=None, idempotent=False):
    """Produce with `writer`, read every partition back with `reader`, compare exactly."""
    t0 = now_ms()
    results = writer.produce(topic, msgs, compression=compression, idempotent=idempotent)
    t1 = now_ms()
    note = check_produce_offsets(msgs, results)
    problems = []
    for p in sorted({m.partition for m in msgs}):
        want = sum(1 for m in msgs if m.partition == p)
        got = reader.consume(topic, p, 0, want)
        window = None if writer.timestamps else (t0 - 1000, t1 + 1000)
        problems += compare(msgs, got, p, check_ts=writer.timestamps, ts_window=window)
    assert not problems, "read-back differs:\n    " + "\n    ".join(problems)
    return note


# ---------------------------------------------------------------------------- scenarios


def s_create(ctx, client):
    topic = topic_name("create", client)
    how = client.create_topic(topic, PARTITIONS)
    md = wait_partitions(client, topic, PARTITIONS)
    assert md == {p: 0 for p in range(PARTITIONS)}, f"metadata {md}, expected 3 partitions led by broker 0"
    return "auto-created by produce (kcat has no admin API)" if how == "auto" else "created via admin API"


def s_roundtrip(ctx, client):
    topic = topic_name("roundtrip", client)
    ensure_topic(client, topic, PARTITIONS)
    base = now_ms() - 3_600_000 if client.timestamps else None
    msgs = make_messages(10_000, PARTITIONS, base, client.header_mode)
    note = produce_and_verify(client, client, topic, msgs)
    return f"10000 msgs, {note}" + ("" if client.timestamps else ", timestamps checked against produce window")


def compression_reader(clients, writer):
    """The client that reads back what `writer` writes in a compression cell, and the header mode
    of the messages: the next client in the list that can read back what the writer can write
    (not rskafka after kcat, whose fixed headers repeat a key), the writer itself at the latest;
    the writer writes the headers that its reader reads (distinct keys for rskafka)."""
    i = clients.index(writer)
    for k in range(1, len(clients) + 1):
        reader = clients[(i + k) % len(clients)]
        mode = pair_header_mode(writer.header_mode, reader.header_mode)
        if mode:
            return reader, mode
    raise AssertionError(f"no client can read back {writer.name}'s headers")


def s_compression(codec):
    def run(ctx, writer):
        reader, mode = compression_reader(ctx["clients"], writer)
        topic = topic_name(f"z{codec}", writer)
        ensure_topic(writer, topic, PARTITIONS)
        base = now_ms() - 7_200_000 if writer.timestamps else None
        msgs = make_messages(600, PARTITIONS, base, mode, tag=codec)
        produce_and_verify(writer, reader, topic, msgs, compression=codec)
        # The batches as served on the wire must carry the codec the writer was asked for.
        # Clients send a batch uncompressed when compressing would not shrink it (a lone tiny
        # record), so "none" is allowed, but each partition holds two compressible 100 KB
        # values and so must have compressed batches.
        counts = {}
        for p in range(PARTITIONS):
            err, hw, batches = wire.fetch_batches("127.0.0.1", ctx["broker"].port, topic, p)
            assert err == 0, f"raw fetch p{p}: error code {err}"
            assert batches, f"raw fetch p{p}: no batches"
            codecs = [b[2] for b in batches]
            assert set(codecs) <= {codec, "none"}, f"p{p}: batches on the wire use {sorted(set(codecs))}"
            assert codec in codecs, f"p{p}: all {len(codecs)} batches on the wire are uncompressed, expected {codec}"
            for c in codecs:
                counts[c] = counts.get(c, 0) + 1
        headers = "" if mode == writer.header_mode else f" ({mode} headers)"
        return f"read by {reader.name}{headers}; batches on the wire: {counts}"
    return run


def s_list_offsets(ctx, client):
    topic = topic_name("listoffsets", client)
    ensure_topic(client, topic, PARTITIONS)
    n = 50
    base = now_ms() - 86_400_000 if client.timestamps else None
    msgs = make_messages(n, 1, None, client.header_mode, tag="lo", big=False)
    if base is not None:
        for i, m in enumerate(msgs):
            m.timestamp = base + 10 * i  # gaps of 10 ms so ts-1 / ts+1 fall between records
    client.produce(topic, msgs)
    recs = client.consume(topic, 0, 0, n)
    assert [r.offset for r in recs] == list(range(n)), f"read back offsets {[r.offset for r in recs][:10]}..."
    ts = [r.timestamp for r in recs]
    if base is not None:
        assert ts == [m.timestamp for m in msgs], "timestamps read back differ from produced"

    def expect(target):  # Kafka: the first offset whose timestamp is >= target, else none
        return next((i for i, t in enumerate(ts) if t >= target), None)

    checks = []
    for k in (0, 1, 17, n - 1):
        for target in (ts[k] - 1, ts[k], ts[k] + 1):
            checks.append(target)
    checks.append(max(ts) + 1000)
    lo, hi, got = client.offsets(topic, 0, checks)
    assert (lo, hi) == (0, n), f"earliest/latest = {lo}/{hi}, expected 0/{n}"
    assert len(got) == len(checks), f"{len(got)} answers for {len(checks)} look-ups"
    for target, o in zip(checks, got):
        assert o == expect(target), f"offsets_for_times({target}) = {o}, expected {expect(target)}"
    return f"{len(checks)} timestamp look-ups + earliest/latest"


def s_idempotent(ctx, client):
    require(client, "idempotent")
    topic = topic_name("idem", client)
    ensure_topic(client, topic, 1)
    base = now_ms() - 1_000_000 if client.timestamps else None
    msgs = make_messages(1000, 1, base, client.header_mode, tag="idem")
    results = client.produce(topic, msgs, idempotent=True)
    if results is not None:
        got = [o for _, o in results]
        assert got == list(range(1000)), f"acknowledged offsets not 0..999 in order: {got[:5]}...{got[-5:]}"
    recs = client.consume(topic, 0, 0, 1000)
    problems = compare(msgs, recs, 0, check_ts=client.timestamps)
    assert not problems, "read-back differs:\n    " + "\n    ".join(problems)
    return ("Java producer with default settings (idempotent, acks=all)" if client.name == "java"
            else "enable.idempotence=true")


def s_restart(sig):
    def run(ctx, client):
        broker = ctx["broker"]
        label = "sigterm" if sig == signal.SIGTERM else "kill9"
        topic = topic_name(f"restart{label}", client)
        ensure_topic(client, topic, PARTITIONS)
        base = now_ms() - 500_000 if client.timestamps else None
        msgs = make_messages(300, PARTITIONS, base, client.header_mode, tag=label)
        t0 = now_ms()
        results = client.produce(topic, msgs)   # acks=all
        t1 = now_ms()
        note = check_produce_offsets(msgs, results)
        broker.restart(sig)
        problems = []
        for p in range(PARTITIONS):
            want = sum(1 for m in msgs if m.partition == p)
            got = client.consume(topic, p, 0, want)
            problems += compare(msgs, got, p, check_ts=client.timestamps,
                                ts_window=None if client.timestamps else (t0 - 1000, t1 + 1000))
            lo, hi, _ = client.offsets(topic, p)
            if (lo, hi) != (0, want):
                problems.append(f"p{p}: earliest/latest after restart {lo}/{hi}, expected 0/{want}")
        assert not problems, f"after {label} restart:\n    " + "\n    ".join(problems)
        return f"300 msgs survived {'SIGTERM' if sig == signal.SIGTERM else 'kill -9'} restart, {note}"
    return run


# (column name, function); restarts last since they bounce the shared broker.
SCENARIOS = [
    ("create-topic", s_create),
    ("roundtrip-10k", s_roundtrip),
    ("gzip", s_compression("gzip")),
    ("snappy", s_compression("snappy")),
    ("lz4", s_compression("lz4")),
    ("zstd", s_compression("zstd")),
    ("list-offsets", s_list_offsets),
    ("idempotent-1k", s_idempotent),
    ("restart-sigterm", s_restart(signal.SIGTERM)),
    ("restart-kill9", s_restart(signal.SIGKILL)),
]
