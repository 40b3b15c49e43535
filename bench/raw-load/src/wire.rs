//! The Kafka wire format raw_load speaks: RecordBatch v2 encoding, Produce v7 and Fetch v4
//! requests (non-flexible), and checked decoding of their answers. No I/O here.

pub const PRODUCE: i16 = 0;
pub const FETCH: i16 = 1;
const CLIENT_ID: &str = "raw_load";

/// Bytes of a RecordBatch v2 header, from the base offset to the first record.
pub const BATCH_HEADER: usize = 61;
/// Offsets inside a batch header.
const BATCH_LENGTH_AT: usize = 8;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
/// The CRC covers the batch from the attributes to its end.
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const RECORD_COUNT_AT: usize = 57;

/// Reads big-endian integers and Kafka varints from an answer; every read is checked, so a
/// short or malformed answer is an error rather than a panic.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "answer too short: wanted {n} bytes at byte {}, {} left",
                self.pos,
                self.remaining()
            ));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), String> {
        self.bytes(n).map(|_| ())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub fn i8(&mut self) -> Result<i8, String> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    pub fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// A non-flexible STRING (i16 length); only skipped, raw_load asks about one topic.
    pub fn skip_string(&mut self) -> Result<(), String> {
        let n = self.i16()?;
        self.skip(n.max(0) as usize)
    }

    /// An array count (i32); null (-1) is an empty array.
    pub fn count(&mut self) -> Result<usize, String> {
        Ok(self.i32()?.max(0) as usize)
    }

    /// A zigzag varint (Kafka's VARINT and VARLONG).
    pub fn varint(&mut self) -> Result<i64, String> {
        let mut raw: u64 = 0;
        for shift in (0..70).step_by(7) {
            let [b] = self.array()?;
            if shift == 63 && b > 1 {
                break; // more than 64 bits
            }
            raw |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(format!("malformed varint ending at byte {}", self.pos))
    }
}

/// Appends `n` as a zigzag varint.
pub fn put_varint(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    loop {
        let b = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The value every record carries: byte i is (i*7+3) % 251, as raw_load.py writes it.
pub fn value_pattern(size: usize) -> Vec<u8> {
    (0..size).map(|i| ((i * 7 + 3) % 251) as u8).collect()
}

/// One uncompressed RecordBatch v2 of `count` records with `size`-byte values, no keys, no
/// headers, base offset 0 (the broker assigns offsets), no producer id (idempotence off).
pub fn record_batch(count: usize, size: usize, now_ms: i64) -> Vec<u8> {
    let value = value_pattern(size);
    let mut records = Vec::with_capacity(count * (size + 16));
    let mut body = Vec::with_capacity(size + 16);
    for i in 0..count {
        body.clear();
        body.push(0); // attributes
        put_varint(&mut body, 0); // timestamp delta
        put_varint(&mut body, i as i64); // offset delta
        put_varint(&mut body, -1); // no key
        put_varint(&mut body, size as i64);
        body.extend_from_slice(&value);
        put_varint(&mut body, 0); // no headers
        put_varint(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    let mut batch = Vec::with_capacity(BATCH_HEADER + records.len());
    batch.extend_from_slice(&0i64.to_be_bytes()); // base offset
    batch.extend_from_slice(&0i32.to_be_bytes()); // batch length, set below
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&0u32.to_be_bytes()); // crc, set below
    batch.extend_from_slice(&0i16.to_be_bytes()); // attributes: no compression
    batch.extend_from_slice(&(count as i32 - 1).to_be_bytes()); // last offset delta
    batch.extend_from_slice(&now_ms.to_be_bytes()); // first timestamp
    batch.extend_from_slice(&now_ms.to_be_bytes()); // max timestamp
    batch.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    batch.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    batch.extend_from_slice(&(count as i32).to_be_bytes());
    batch.extend_from_slice(&records);
    let length = (batch.len() - 12) as i32;
    batch[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// A whole request frame: size, header v1 (api key, version, correlation id, client id), body.
pub fn request(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(18 + body.len());
    payload.extend_from_slice(&api_key.to_be_bytes());
    payload.extend_from_slice(&version.to_be_bytes());
    payload.extend_from_slice(&correlation_id.to_be_bytes());
    put_string(&mut payload, CLIENT_ID);
    payload.extend_from_slice(body);
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    frame.extend_from_slice(&payload);
    frame
}

/// Where the correlation id sits in a frame from `request`, so that one encoded request can
/// be sent again under a new id.
pub const CORRELATION_AT: usize = 8;

pub fn set_correlation(frame: &mut [u8], correlation_id: i32) {
    frame[CORRELATION_AT..CORRELATION_AT + 4].copy_from_slice(&correlation_id.to_be_bytes());
}

/// Produce v7 body: the same `batch` for each of `partitions` of `topic`.
pub fn produce_body(topic: &str, partitions: &[i32], batch: &[u8], acks: i16) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + partitions.len() * (8 + batch.len()));
    out.extend_from_slice(&(-1i16).to_be_bytes()); // transactional id: null
    out.extend_from_slice(&acks.to_be_bytes());
    out.extend_from_slice(&30_000i32.to_be_bytes()); // timeout ms
    out.extend_from_slice(&1i32.to_be_bytes()); // one topic
    put_string(&mut out, topic);
    out.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
    for &p in partitions {
        out.extend_from_slice(&p.to_be_bytes());
        out.extend_from_slice(&(batch.len() as i32).to_be_bytes());
        out.extend_from_slice(batch);
    }
    out
}

/// The correlation id an answer starts with.
pub fn correlation(resp: &[u8]) -> Result<i32, String> {
    Cursor::new(resp).i32()
}

/// One partition of a Produce v7 answer.
#[derive(Debug, PartialEq)]
pub struct Produced {
    pub partition: i32,
    pub error: i16,
    pub base_offset: i64,
}

/// The partitions of a Produce v7 answer (starting at the correlation id).
pub fn parse_produce(resp: &[u8]) -> Result<Vec<Produced>, String> {
    let mut c = Cursor::new(resp);
    c.skip(4)?; // correlation id
    let mut out = Vec::new();
    for _ in 0..c.count()? {
        c.skip_string()?;
        for _ in 0..c.count()? {
            let partition = c.i32()?;
            let error = c.i16()?;
            let base_offset = c.i64()?;
            c.skip(8 + 8)?; // log append time, log start offset
            out.push(Produced {
                partition,
                error,
                base_offset,
            });
        }
    }
    Ok(out)
}

/// Where a fetch stands in one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionOffset {
    pub partition: i32,
    pub next: i64,
}

/// Fetch v4 body: one topic, each partition from its next offset.
pub fn fetch_body(
    topic: &str,
    offsets: &[PartitionOffset],
    max_wait_ms: i32,
    max_bytes: i32,
    partition_max_bytes: i32,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + topic.len() + offsets.len() * 16);
    out.extend_from_slice(&(-1i32).to_be_bytes()); // replica id: a consumer
    out.extend_from_slice(&max_wait_ms.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes()); // min bytes
    out.extend_from_slice(&max_bytes.to_be_bytes());
    out.push(0); // isolation: read uncommitted
    out.extend_from_slice(&1i32.to_be_bytes()); // one topic
    put_string(&mut out, topic);
    out.extend_from_slice(&(offsets.len() as i32).to_be_bytes());
    for o in offsets {
        out.extend_from_slice(&o.partition.to_be_bytes());
        out.extend_from_slice(&o.next.to_be_bytes());
        out.extend_from_slice(&partition_max_bytes.to_be_bytes());
    }
    out
}

/// How much of each fetched batch to check.
#[derive(Clone, Copy)]
pub enum Check<'a> {
    /// Batch headers only: the record count and the next offset.
    Headers,
    /// Also magic 2, the CRC, and a base offset equal to the partition's next offset.
    Batches,
    /// Also every record of the (uncompressed) batch: offset deltas 0.., no key, this value,
    /// no headers.
    Records { value: &'a [u8] },
}

/// What the whole batches of one Fetch answer held.
#[derive(Debug, Default, PartialEq)]
pub struct Fetched {
    pub records: u64,
    /// Record-set bytes in the answer, whole batches or not.
    pub bytes: u64,
}

/// Advances `offsets` past the whole batches of a Fetch v4 answer (starting at the
/// correlation id) and counts their records. A batch cut at the size limit is left for the
/// next fetch.
pub fn walk_fetch(
    resp: &[u8],
    offsets: &mut [PartitionOffset],
    check: Check,
) -> Result<Fetched, String> {
    let mut c = Cursor::new(resp);
    c.skip(4 + 4)?; // correlation id, throttle time
    let mut out = Fetched::default();
    for _ in 0..c.count()? {
        c.skip_string()?;
        for _ in 0..c.count()? {
            let partition = c.i32()?;
            let error = c.i16()?;
            c.skip(8 + 8)?; // high watermark, last stable offset
            if error != 0 {
                return Err(format!("fetch error {error} on partition {partition}"));
            }
            let aborted = c.count()?;
            c.skip(aborted * 16)?; // (producer id, first offset) pairs
            let length = c.i32()?;
            let set = c.bytes(length.max(0) as usize)?; // -1: no records
            out.bytes += set.len() as u64;
            let Some(state) = offsets.iter_mut().find(|o| o.partition == partition) else {
                return Err(format!(
                    "fetch answer names partition {partition}, not asked for"
                ));
            };
            out.records += walk_batches(set, state, check)?;
        }
    }
    Ok(out)
}

/// Walks the whole batches of one partition's record set; returns their record count.
fn walk_batches(set: &[u8], state: &mut PartitionOffset, check: Check) -> Result<u64, String> {
    let mut records = 0;
    let mut at = 0;
    while set.len() - at >= BATCH_HEADER {
        let mut h = Cursor::new(&set[at..]);
        let base = h.i64()?;
        let length = h.i32()?;
        if length < (BATCH_HEADER - 12) as i32 {
            return Err(format!(
                "partition {}: batch at offset {base} has length {length}",
                state.partition
            ));
        }
        let end = at + 12 + length as usize;
        if end > set.len() {
            break; // cut at the size limit: fetched again next time
        }
        let batch = &set[at..end];
        let mut h = Cursor::new(&batch[LAST_OFFSET_DELTA_AT..]);
        let last_delta = h.i32()?;
        let mut h = Cursor::new(&batch[RECORD_COUNT_AT..]);
        let count = h.i32()?;
        if !matches!(check, Check::Headers) {
            check_batch(batch, base, state, check)?;
        }
        records += count.max(0) as u64;
        state.next = base + i64::from(last_delta) + 1;
        at = end;
    }
    Ok(records)
}

/// The --verify checks of one whole batch.
fn check_batch(
    batch: &[u8],
    base: i64,
    state: &PartitionOffset,
    check: Check,
) -> Result<(), String> {
    let p = state.partition;
    if base != state.next {
        return Err(format!(
            "partition {p}: batch at offset {base}, expected offset {}",
            state.next
        ));
    }
    let magic = batch[MAGIC_AT];
    if magic != 2 {
        return Err(format!(
            "partition {p}: batch at offset {base} has magic {magic}"
        ));
    }
    if !crc_matches(batch)? {
        return Err(format!(
            "partition {p}: batch at offset {base} fails its CRC"
        ));
    }
    if let Check::Records { value } = check {
        check_records(batch, base, p, value)?;
    }
    Ok(())
}

/// Whether a whole batch's stored CRC32C matches its bytes from the attributes to the end.
pub fn crc_matches(batch: &[u8]) -> Result<bool, String> {
    if batch.len() < BATCH_HEADER {
        return Err(format!(
            "batch of {} bytes is shorter than its header",
            batch.len()
        ));
    }
    let stored = Cursor::new(&batch[CRC_AT..]).u32()?;
    Ok(stored == crc32c::crc32c(&batch[ATTRIBUTES_AT..]))
}

/// Checks each record of an uncompressed batch against what `record_batch` writes.
fn check_records(batch: &[u8], base: i64, p: i32, value: &[u8]) -> Result<(), String> {
    let mut h = Cursor::new(&batch[ATTRIBUTES_AT..]);
    let attributes = h.i16()?;
    if attributes & 0x07 != 0 {
        return Err(format!(
            "partition {p}: batch at offset {base} is compressed"
        ));
    }
    let count = Cursor::new(&batch[RECORD_COUNT_AT..]).i32()?;
    let mut c = Cursor::new(&batch[BATCH_HEADER..]);
    for i in 0..count.max(0) as i64 {
        let offset = base + i;
        let bad = |what: &str| format!("partition {p}: record at offset {offset}: {what}");
        let length = c.varint().map_err(|e| bad(&e))?;
        let body = c
            .bytes(length.max(0) as usize)
            .map_err(|e| bad(&format!("length {length}: {e}")))?;
        let mut r = Cursor::new(body);
        let parsed = (|| -> Result<(i64, i64, &[u8], i64), String> {
            r.i8()?; // attributes
            r.varint()?; // timestamp delta
            let delta = r.varint()?;
            let key = r.varint()?;
            let n = r.varint()?;
            let v = r.bytes(n.max(0) as usize)?;
            let headers = r.varint()?;
            Ok((delta, key, v, headers))
        })();
        let (delta, key, v, headers) = parsed.map_err(|e| bad(&e))?;
        if delta != i {
            return Err(bad(&format!("offset delta {delta}, expected {i}")));
        }
        if key != -1 {
            return Err(bad(&format!("key length {key}, expected -1")));
        }
        if v != value {
            return Err(bad(&format!(
                "value of {} bytes differs from the {}-byte pattern",
                v.len(),
                value.len()
            )));
        }
        if headers != 0 || r.remaining() != 0 {
            return Err(bad("unexpected headers or trailing bytes"));
        }
    }
    if c.remaining() != 0 {
        return Err(format!(
            "partition {p}: batch at offset {base} has {} bytes after its {count} records",
            c.remaining()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint_bytes(n: i64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, n);
        out
    }

    #[test]
    fn varint_round_trip() {
        assert_eq!(varint_bytes(0), [0]);
        assert_eq!(varint_bytes(-1), [1]);
        assert_eq!(varint_bytes(1), [2]);
        assert_eq!(varint_bytes(300), [0xd8, 0x04]);
        for n in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            300,
            -300,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let b = varint_bytes(n);
            let mut c = Cursor::new(&b);
            assert_eq!(c.varint(), Ok(n), "{n}");
            assert_eq!(c.remaining(), 0);
        }
        assert!(Cursor::new(&[0x80, 0x80]).varint().is_err()); // cut short
        assert!(Cursor::new(&[0xff; 11]).varint().is_err()); // too long
    }

    #[test]
    fn batch_crc_verifies() {
        let mut batch = record_batch(3, 10, 1_700_000_000_000);
        assert_eq!(
            batch.len() - 12,
            i32::from_be_bytes(batch[8..12].try_into().unwrap()) as usize
        );
        assert_eq!(crc_matches(&batch), Ok(true));
        let mut state = PartitionOffset {
            partition: 0,
            next: 0,
        };
        let value = value_pattern(10);
        assert_eq!(
            walk_batches(&batch, &mut state, Check::Records { value: &value }),
            Ok(3)
        );
        assert_eq!(state.next, 3);
        let last = batch.len() - 1;
        batch[last] ^= 1;
        assert_eq!(crc_matches(&batch), Ok(false));
    }

    #[test]
    fn value_mismatch_is_reported() {
        let mut batch = record_batch(2, 10, 0);
        let last = batch.len() - 2; // a byte of the second record's value
        batch[last] ^= 1;
        let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
        batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        let value = value_pattern(10);
        let mut state = PartitionOffset {
            partition: 0,
            next: 0,
        };
        let err = walk_batches(&batch, &mut state, Check::Records { value: &value }).unwrap_err();
        assert!(err.contains("offset 1"), "{err}");
    }

    /// A batch as the broker stores it: at `base`.
    fn stored_batch(base: i64, count: usize) -> Vec<u8> {
        let mut b = record_batch(count, 20, 0);
        b[..8].copy_from_slice(&base.to_be_bytes());
        b
    }

    /// A Fetch v4 answer for partition 0 of one topic carrying `set`.
    fn fetch_answer(set: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&7i32.to_be_bytes()); // correlation id
        r.extend_from_slice(&0i32.to_be_bytes()); // throttle time
        r.extend_from_slice(&1i32.to_be_bytes());
        put_string(&mut r, "t");
        r.extend_from_slice(&1i32.to_be_bytes());
        r.extend_from_slice(&0i32.to_be_bytes()); // partition
        r.extend_from_slice(&0i16.to_be_bytes()); // error
        r.extend_from_slice(&100i64.to_be_bytes()); // high watermark
        r.extend_from_slice(&100i64.to_be_bytes()); // last stable offset
        r.extend_from_slice(&(-1i32).to_be_bytes()); // aborted: null
        r.extend_from_slice(&(set.len() as i32).to_be_bytes());
        r.extend_from_slice(set);
        r
    }

    #[test]
    fn fetch_walks_whole_batches_only() {
        let mut set = stored_batch(0, 3);
        set.extend(stored_batch(3, 4));
        let third = stored_batch(7, 5);
        set.extend_from_slice(&third[..third.len() - 9]); // cut at the size limit
        let resp = fetch_answer(&set);
        for check in [Check::Headers, Check::Batches] {
            let mut offsets = [PartitionOffset {
                partition: 0,
                next: 0,
            }];
            let got = walk_fetch(&resp, &mut offsets, check).unwrap();
            assert_eq!(
                got,
                Fetched {
                    records: 7,
                    bytes: set.len() as u64
                }
            );
            assert_eq!(offsets[0].next, 7);
        }
        // --verify: the answer must start where the partition stands
        let mut offsets = [PartitionOffset {
            partition: 0,
            next: 2,
        }];
        let err = walk_fetch(&resp, &mut offsets, Check::Batches).unwrap_err();
        assert!(
            err.contains("partition 0") && err.contains("offset 0"),
            "{err}"
        );
    }

    #[test]
    fn truncated_answers_are_errors() {
        let mut set = stored_batch(0, 3);
        set.extend(stored_batch(3, 4));
        let resp = fetch_answer(&set);
        // Every cut is an error, not a panic: the record set's length is declared up front.
        for cut in 0..resp.len() {
            let mut offsets = [PartitionOffset {
                partition: 0,
                next: 0,
            }];
            assert!(
                walk_fetch(&resp[..cut], &mut offsets, Check::Batches).is_err(),
                "{cut}"
            );
        }
        let produce = [0, 0, 0, 1, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0];
        assert!(parse_produce(&produce).is_err());
        assert!(correlation(&[0, 0]).is_err());
    }

    #[test]
    fn fetch_error_names_partition() {
        let mut resp = fetch_answer(&[]);
        let at = 4 + 4 + 4 + 3 + 4 + 4;
        resp[at..at + 2].copy_from_slice(&1i16.to_be_bytes());
        let mut offsets = [PartitionOffset {
            partition: 0,
            next: 0,
        }];
        let err = walk_fetch(&resp, &mut offsets, Check::Headers).unwrap_err();
        assert_eq!(err, "fetch error 1 on partition 0");
    }

    #[test]
    fn produce_answer_parses() {
        let mut r = Vec::new();
        r.extend_from_slice(&5i32.to_be_bytes());
        r.extend_from_slice(&1i32.to_be_bytes());
        put_string(&mut r, "t");
        r.extend_from_slice(&2i32.to_be_bytes());
        for (p, e, o) in [(0i32, 0i16, 40i64), (1, 6, -1)] {
            r.extend_from_slice(&p.to_be_bytes());
            r.extend_from_slice(&e.to_be_bytes());
            r.extend_from_slice(&o.to_be_bytes());
            r.extend_from_slice(&[0; 16]);
        }
        r.extend_from_slice(&0i32.to_be_bytes()); // throttle time
        assert_eq!(correlation(&r), Ok(5));
        let parts = parse_produce(&r).unwrap();
        assert_eq!(
            parts,
            [
                Produced {
                    partition: 0,
                    error: 0,
                    base_offset: 40
                },
                Produced {
                    partition: 1,
                    error: 6,
                    base_offset: -1
                }
            ]
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// The same bytes as raw_load.py's record_batch, fetch_body and produce_body (taken from
    /// the script with time.time() fixed at 1700000000).
    #[test]
    fn encodings_match_raw_load_py() {
        assert_eq!(
            hex(&record_batch(3, 10, 1_700_000_000_000)),
            "000000000000000000000064ffffffff021c2061b80000000000020000018bcfe568000000018bcfe568\
             00ffffffffffffffffffffffffffff00000003200000000114030a11181f262d343b4200200000020114\
             030a11181f262d343b4200200000040114030a11181f262d343b4200"
        );
        let offsets = [
            PartitionOffset {
                partition: 0,
                next: 5,
            },
            PartitionOffset {
                partition: 1,
                next: 9,
            },
        ];
        assert_eq!(
            hex(&request(
                FETCH,
                4,
                7,
                &fetch_body("t", &offsets, 500, 50 << 20, 10 << 20)
            )),
            "0000004e000100040000000700087261775f6c6f6164ffffffff000001f4000000010320000000000000\
             010001740000000200000000000000000000000500a0000000000001000000000000000900a00000"
        );
        assert_eq!(
            hex(&request(
                PRODUCE,
                7,
                0,
                &produce_body("t", &[0, 1], b"xy", -1)
            )),
            "00000039000000070000000000087261775f6c6f6164ffffffff000075300000000100017400000002\
             0000000000000002787900000001000000027879"
        );
    }

    #[test]
    fn request_frame_layout() {
        let mut f = request(FETCH, 4, 1, &[9, 9]);
        assert_eq!(
            i32::from_be_bytes(f[..4].try_into().unwrap()) as usize,
            f.len() - 4
        );
        set_correlation(&mut f, 0x01020304);
        assert_eq!(&f[4..12], &[0, 1, 0, 4, 1, 2, 3, 4]);
        assert_eq!(&f[12..22], b"\x00\x08raw_load");
        assert_eq!(&f[22..], &[9, 9]);
    }
}
