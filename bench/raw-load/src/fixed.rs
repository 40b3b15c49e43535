//! The fixed workloads: the same requests in the same order on every run, one at a time on one
//! connection to partition 0, so that the broker's instruction count under valgrind compares
//! between runs and builds. Every answer is checked.

use crate::load::now_ms;
use crate::net;
use crate::wire::{self, Check, PartitionOffset};

pub struct FixedOpts<'a> {
    pub bootstrap: &'a str,
    pub topic: &'a str,
    pub size: usize,
    pub batches: u64,
    pub records_per_batch: u32,
    /// fixed-consume: max bytes and partition max bytes of each Fetch
    pub max_bytes: i32,
}

pub struct FixedReport {
    pub requests: u64,
    pub records: u64,
}

/// B Produce requests (acks 1) of the same batch of R records; the i-th must land at i*R.
pub fn produce(o: &FixedOpts) -> Result<FixedReport, String> {
    let stream = net::connect(o.bootstrap)?;
    let r = o.records_per_batch;
    let batch = wire::record_batch(r as usize, o.size, now_ms());
    let body = wire::produce_body(o.topic, &[0], &batch, 1);
    let mut frame = wire::request(wire::PRODUCE, 7, 0, &body);
    let mut buf = Vec::new();
    for i in 0..o.batches {
        let id = (i % i32::MAX as u64) as i32 + 1;
        wire::set_correlation(&mut frame, id);
        net::exchange(&stream, &frame, id, &mut buf)?;
        let want = (i * u64::from(r)) as i64;
        match wire::parse_produce(&buf)?.as_slice() {
            [p] if p.partition == 0 && p.error == 0 && p.base_offset == want => {}
            [p] if p.error != 0 => {
                return Err(format!(
                    "produce {i}: error {} on partition {}",
                    p.error, p.partition
                ))
            }
            [p] => {
                return Err(format!(
                    "produce {i}: partition {} base offset {}, expected partition 0 offset {want}",
                    p.partition, p.base_offset
                ))
            }
            parts => {
                return Err(format!(
                    "produce {i}: answer with {} partitions, expected 1",
                    parts.len()
                ))
            }
        }
    }
    Ok(FixedReport {
        requests: o.batches,
        records: o.batches * u64::from(r),
    })
}

/// Fetches partition 0 from offset 0 until B*R records are read, checking every batch (CRC,
/// contiguous offsets) and every record's value.
pub fn consume(o: &FixedOpts) -> Result<FixedReport, String> {
    let stream = net::connect(o.bootstrap)?;
    let goal = o.batches * u64::from(o.records_per_batch);
    let value = wire::value_pattern(o.size);
    let check = Check::Records { value: &value };
    let mut offsets = [PartitionOffset {
        partition: 0,
        next: 0,
    }];
    let mut buf = Vec::new();
    let (mut requests, mut records) = (0u64, 0u64);
    while records < goal {
        requests += 1;
        let id = (requests % i32::MAX as u64) as i32;
        // Max wait 0: everything was produced before, so waiting would only add idle time.
        let body = wire::fetch_body(o.topic, &offsets, 0, o.max_bytes, o.max_bytes);
        net::exchange(
            &stream,
            &wire::request(wire::FETCH, 4, id, &body),
            id,
            &mut buf,
        )?;
        let got = wire::walk_fetch(&buf, &mut offsets, check)?;
        if got.records == 0 {
            // With the data all there an empty answer means it is not: stop rather than spin.
            return Err(format!(
                "fetch at offset {} brought no whole batch ({records} of {goal} records read)",
                offsets[0].next
            ));
        }
        records += got.records;
    }
    Ok(FixedReport { requests, records })
}
