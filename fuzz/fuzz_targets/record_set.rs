//! A produce record set through the checks the broker runs before appending it: batch
//! headers, sizes and CRCs (`parse_record_set`), then the record-level walk of a compacted
//! topic's key check.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|records: &[u8]| {
    if let Ok(headers) = gregor_log::parse_record_set(records, 1 << 20) {
        let _ = gregor_log::records::check_keys(records, &headers);
    }
});
