//! Writes the seed corpora of the log's fuzz targets (fuzz/fuzz_targets): `write_log_seeds
//! <fuzz/corpus>` fills `record_set/` with produce record sets (one or several batches, each
//! codec, idempotent producers) and `log_recovery/` with whole segment files written by `Log`.

use std::path::Path;

use gregor_log::batch::test_batches::batch_with;
use gregor_log::{parse_record_set, Log, LogConfig};
use kafka_protocol::records::Compression;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .ok_or("usage: write_log_seeds <fuzz/corpus directory>")?;
    let out = Path::new(&out);
    let codecs = [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ];
    let record_sets = out.join("record_set");
    std::fs::create_dir_all(&record_sets)?;
    let mut sets = Vec::new();
    for (name, codec) in codecs {
        sets.push((
            format!("{name}-3"),
            batch_with(3, 1_700_000_000_000, None, codec, 20).to_vec(),
        ));
        let idempotent = batch_with(2, 1_700_000_000_000, Some((7, 0, 0)), codec, 8);
        sets.push((format!("{name}-idempotent"), idempotent.to_vec()));
    }
    let mut two = batch_with(1, 1, None, Compression::None, 4).to_vec();
    two.extend_from_slice(&batch_with(4, 2, None, Compression::None, 4));
    sets.push(("none-two-batches".into(), two));
    for (name, bytes) in &sets {
        std::fs::write(record_sets.join(name), bytes)?;
    }

    // Segments as the broker writes them: offsets assigned, several batches.
    let recovery = out.join("log_recovery");
    std::fs::create_dir_all(&recovery)?;
    for (name, bytes) in &sets {
        let dir = tempfile::tempdir()?;
        let partition = dir.path().join("seed-0");
        let mut log = Log::open(&partition, LogConfig::default())?;
        let plain = batch_with(2, 1_700_000_000_000, None, Compression::None, 10);
        for (set, epoch) in [(&bytes[..], 0), (&plain[..], 0), (&plain[..], 3)] {
            let headers = parse_record_set(set, u32::MAX)?;
            log.append(set, &headers, epoch)?;
        }
        log.close()?;
        let segment = std::fs::read(partition.join("00000000000000000000.log"))?;
        std::fs::write(recovery.join(name), segment)?;
    }
    println!("{} record sets, {} segments", sets.len(), sets.len());
    Ok(())
}
