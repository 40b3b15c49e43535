"""The messages every client produces and the exact comparison of what it reads back.

One deterministic generator is shared by all clients, so a scenario is the same bytes whoever
runs it. Content is printable ASCII (kcat carries messages as text lines) and never contains
the characters kcat uses as delimiters (newline, KEY_DELIM).
"""
import random
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

KEY_DELIM = "\x1f"  # never generated (outside printable ASCII); kcat's -K delimiter

Header = Tuple[str, Optional[bytes]]


@dataclass
class Msg:
    """One message to produce (timestamp None = let the client/broker choose)."""
    partition: int
    key: Optional[bytes]
    value: Optional[bytes]
    headers: List[Header] = field(default_factory=list)
    timestamp: Optional[int] = None


@dataclass
class Rec:
    """One record as a consumer saw it."""
    partition: int
    offset: int
    key: Optional[bytes]
    value: Optional[bytes]
    headers: List[Header]
    timestamp: int



def _make_pool(size=1 << 18) -> bytes:
    """A fixed pool of printable ASCII that values are sliced from: words from a small
    vocabulary, so every codec really compresses it (kafka-python sends a batch uncompressed
    when compression would not make it smaller)."""
    rng = random.Random(20240601)
    words = [bytes(rng.choices(range(33, 127), k=rng.randint(3, 9))) for _ in range(200)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


_POOL = _make_pool()
BIG = 100_000


def value_for(i: int) -> bytes:
    """0 B, 1 B, 10-200 B, and every 100th message 100 KB."""
    if i % 100 == 99:
        size = BIG
    elif i % 4 == 0:
        size = 0
    elif i % 4 == 1:
        size = 1
    else:
        size = 10 + (i * 7919) % 191
    start = (i * 104729) % (len(_POOL) - size)
    return _POOL[start:start + size]


def headers_for(i: int, mode: str) -> List[Header]:
    """mode 'full': duplicate keys and a null value; 'nonull': duplicates only;
    'fixed': the same headers on every message (kcat sets headers per run, not per message);
    'unique': distinct keys in key order, no null value (rskafka's headers are a sorted map)."""
    if mode == "fixed":
        return fixed_headers()
    if i % 5 == 0:
        return []
    if mode == "unique":
        return [("dup", b"second-%d" % (i % 7)), ("empty", b""), ("idx", str(i).encode())]
    hs: List[Header] = [("idx", str(i).encode()), ("dup", b"first"), ("dup", b"second-%d" % (i % 7))]
    if mode == "full" and i % 2 == 1:
        hs.append(("nil", None))
    hs.append(("empty", b""))
    return hs


def fixed_headers() -> List[Header]:
    return [("src", b"kcat"), ("dup", b"first"), ("dup", b"second"), ("empty", b"")]


def pair_header_mode(writer_mode: str, reader_mode: str) -> Optional[str]:
    """The header mode for messages that `writer_mode`'s client produces and `reader_mode`'s
    client reads back exactly: the writer's own, except for a reader that reads only 'unique'
    headers (rskafka), for which a writer that can set any headers writes 'unique' ones;
    None when the writer cannot write what the reader can read (kcat's fixed duplicates)."""
    if reader_mode != "unique":
        return writer_mode
    return "unique" if writer_mode in ("full", "nonull", "unique") else None


def make_messages(n: int, partitions: int, base_ts: Optional[int], header_mode: str,
                  tag: str = "", big: bool = True) -> List[Msg]:
    """n messages, message i to partition i % partitions, timestamp base_ts + i."""
    out = []
    for i in range(n):
        v = value_for(i)
        if not big and len(v) == BIG:
            v = v[:1000]
        out.append(Msg(
            partition=i % partitions,
            key=f"key{tag}-{i:06d}".encode(),
            value=v,
            headers=headers_for(i, header_mode),
            timestamp=None if base_ts is None else base_ts + i,
        ))
    return out


def _show(b) -> str:
    if b is None:
        return "null"
    s = repr(b)
    return s if len(s) < 60 else f"{s[:50]}...({len(b)} B)"


def compare(expected: List[Msg], got: List[Rec], partition: int, start_offset: int = 0,
            check_ts: bool = True, ts_window: Optional[Tuple[int, int]] = None) -> List[str]:
    """Differences between what was produced to `partition` (in order) and what was read.
    Offsets must be start_offset, start_offset+1, ... in produce order. Returns a list of
    human-readable problems (empty = identical). With check_ts False but ts_window given,
    every timestamp must lie within the window (client without per-message timestamps)."""
    want = [m for m in expected if m.partition == partition]
    problems = []
    if len(got) != len(want):
        problems.append(f"p{partition}: expected {len(want)} records, read {len(got)}")
    for j, (m, r) in enumerate(zip(want, got)):
        off = start_offset + j
        diffs = []
        if r.partition != partition:
            diffs.append(f"partition {r.partition}")
        if r.offset != off:
            diffs.append(f"offset {r.offset} != {off}")
        if r.key != m.key:
            diffs.append(f"key {_show(r.key)} != {_show(m.key)}")
        if r.value != m.value:
            diffs.append(f"value {_show(r.value)} != {_show(m.value)}")
        if list(r.headers) != list(m.headers):
            diffs.append(f"headers {r.headers} != {m.headers}")
        if check_ts and m.timestamp is not None and r.timestamp != m.timestamp:
            diffs.append(f"timestamp {r.timestamp} != {m.timestamp}")
        if ts_window and not (ts_window[0] <= r.timestamp <= ts_window[1]):
            diffs.append(f"timestamp {r.timestamp} outside produce window {ts_window}")
        if diffs:
            problems.append(f"p{partition} record #{j}: " + "; ".join(diffs))
        if len(problems) >= 5:
            problems.append("... (more differences not shown)")
            break
    return problems
