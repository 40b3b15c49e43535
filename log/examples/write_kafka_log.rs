//! Writes a small gregor partition log for Kafka's own `DumpLogSegments` to read
//! (`log/tests/kafka_dump_log.sh`): `write_kafka_log <dir>` appends 40 batches of 5 keyed
//! records (record at offset n: key `key-n`, value `value-n`, timestamp 1700000000000 + n;
//! every third batch gzip-compressed) to `<dir>` with small segments and a dense index, then
//! closes the log cleanly so every index is trimmed and ends with its final time entry.

use bytes::{Bytes, BytesMut};
use gregor_log::{parse_record_set, Log, LogConfig};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

const BATCHES: i64 = 40;
const PER_BATCH: i64 = 5;
const BASE_TS: i64 = 1_700_000_000_000;

fn batch(first: i64, compression: Compression) -> Bytes {
    let records: Vec<Record> = (first..first + PER_BATCH)
        .map(|o| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            // Offsets in a produce batch are relative; the log assigns the real ones.
            offset: o - first,
            sequence: (o - first) as i32 - 1,
            timestamp: BASE_TS + o,
            key: Some(Bytes::from(format!("key-{o}"))),
            value: Some(Bytes::from(format!("value-{o}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    if let Err(e) = RecordBatchEncoder::encode(&mut buf, &records, &options) {
        eprintln!("cannot encode a batch: {e}");
        std::process::exit(1);
    }
    buf.freeze()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: write_kafka_log <dir>")?;
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
        let bytes = batch(b * PER_BATCH, compression);
        let headers = parse_record_set(&bytes, 1 << 20)?;
        let bytes = bytes.to_vec();
        let info = log.append(&bytes, &headers, 3)?;
        assert_eq!(info.first_offset, b * PER_BATCH);
    }
    log.close()?;
    println!("wrote offsets 0..{} to {dir}", log.log_end_offset());
    Ok(())
}
