//! Writes a small compacted gregor partition log for Kafka's own `DumpLogSegments` to read
//! (`log/tests/kafka_dump_log.sh`): `write_compacted_log <dir> <expected-file>` appends 40
//! batches of 5 records (record written at offset n: key `key-(n % 7)`, value `value-n`,
//! timestamp 1700000000000 + n; every third batch gzip-compressed), compacts every closed
//! segment with the cleaner, closes the log cleanly, and writes to `<expected-file>` the
//! records a reader must see, one `offset timestamp key value` line each: below the active
//! segment the newest record of each key, from it on every record.

use std::collections::BTreeMap;
use std::io::Write;

use bytes::{Bytes, BytesMut};
use gregor_log::cleaner::{clean, CleanParams};
use gregor_log::{parse_record_set, Log, LogConfig};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

const BATCHES: i64 = 40;
const PER_BATCH: i64 = 5;
const KEYS: i64 = 7;
const BASE_TS: i64 = 1_700_000_000_000;

fn batch(first: i64, compression: Compression) -> Result<Bytes, String> {
    let records: Vec<Record> = (first..first + PER_BATCH)
        .map(|o| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: o - first,
            sequence: (o - first) as i32 - 1,
            timestamp: BASE_TS + o,
            key: Some(Bytes::from(format!("key-{}", o % KEYS))),
            value: Some(Bytes::from(format!("value-{o}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).map_err(|e| e.to_string())?;
    Ok(buf.freeze())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(expected_path)) = (args.next(), args.next()) else {
        return Err("usage: write_compacted_log <dir> <expected-file>".into());
    };
    let config = LogConfig {
        segment_bytes: 2500,
        index_interval_bytes: 200,
        ..LogConfig::default()
    };
    let mut log = Log::open(std::path::Path::new(&dir), config)?;
    for b in 0..BATCHES {
        let compression = if b % 3 == 2 {
            Compression::Gzip
        } else {
            Compression::None
        };
        let bytes = batch(b * PER_BATCH, compression)?;
        let headers = parse_record_set(&bytes, 1 << 20)?;
        let bytes = bytes.to_vec();
        log.append(&bytes, &headers, 3)?;
    }
    let view = log.cleanable_view(log.log_end_offset())?;
    let active_base = view.active_base_offset;
    let params = CleanParams {
        now_ms: BASE_TS + 1_000,
        min_compaction_lag_ms: 0,
        delete_retention_ms: 86_400_000,
        dedupe_buffer_size: 1 << 20,
    };
    let result = clean(&view, 0, &params)?.ok_or("nothing to clean")?;
    log.replace_cleaned(&result)?;
    gregor_log::remove_deleted_files(&log.take_deleted_files());
    log.close()?;
    let mut newest = BTreeMap::new();
    for o in 0..active_base {
        newest.insert(o % KEYS, o);
    }
    let mut out = std::fs::File::create(&expected_path)?;
    for o in 0..BATCHES * PER_BATCH {
        if o >= active_base || newest.get(&(o % KEYS)) == Some(&o) {
            writeln!(out, "{o} {} key-{} value-{o}", BASE_TS + o, o % KEYS)?;
        }
    }
    println!("compacted offsets below {active_base} in {dir}");
    Ok(())
}
