//! A request frame (without its size prefix) through the broker's decoder: header, length
//! checks against the schema, typed decode. Run with `-malloc_limit_mb` so that a length taken
//! from the frame and reserved before it is read counts as a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    let _ = gregor_protocol::decode_request(bytes::BytesMut::from(frame));
});
