//! Arbitrary bytes as the only segment of a partition opened after an unclean shutdown:
//! recovery must not panic, and whatever the log then serves must be whole, valid batches
//! (recovery keeps the longest valid prefix and cuts the rest).
#![no_main]

use gregor_log::{parse_record_set, Log, LogConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|segment: &[u8]| {
    let dir = tempfile::tempdir_in(scratch()).expect("a scratch directory");
    let partition = dir.path().join("fuzz-0");
    std::fs::create_dir_all(&partition).expect("partition directory");
    std::fs::write(partition.join("00000000000000000000.log"), segment).expect("segment");
    let Ok(log) = Log::open(&partition, LogConfig::default()) else {
        return;
    };
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let slice = log
            .read(offset, 1 << 20, i64::MAX, true)
            .expect("every offset below the log end is readable")
            .expect("something to read below the log end");
        let bytes = slice.read().expect("the slice is in the file");
        let headers = parse_record_set(&bytes, u32::MAX).expect("recovered batches are valid");
        let last = headers.last().expect("at least one batch").last_offset();
        assert!(last >= offset, "the log went backwards");
        offset = last + 1;
    }
});

/// Memory-backed when the machine has it: recovery writes indexes and checkpoints.
fn scratch() -> &'static str {
    if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    }
}
