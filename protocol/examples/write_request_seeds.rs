//! Writes the generated half of the decode_request fuzz target's seed corpus
//! (fuzz/corpus/decode_request; the other half is frames captured from real clients):
//! `write_request_seeds <dir>` writes, for every served API and version, a frame (header and
//! body, no size prefix) whose body is `schema::sample_body` with one element per array.

use bytes::BytesMut;
use gregor_protocol::kafka_protocol::messages::RequestHeader;
use gregor_protocol::kafka_protocol::protocol::{Encodable, StrBytes};
use gregor_protocol::{schema, SUPPORTED_APIS};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .ok_or("usage: write_request_seeds <corpus directory>")?;
    std::fs::create_dir_all(&out)?;
    let mut written = 0;
    for r in SUPPORTED_APIS {
        for version in r.min..=r.max {
            let body = schema::sample_body(r.key as i16, version, 1)
                .ok_or_else(|| format!("no schema for {:?}", r.key))?;
            let mut frame = BytesMut::new();
            RequestHeader::default()
                .with_request_api_key(r.key as i16)
                .with_request_api_version(version)
                .with_correlation_id(1)
                .with_client_id(Some(StrBytes::from_static_str("seed")))
                .encode(&mut frame, r.key.request_header_version(version))?;
            frame.extend_from_slice(&body);
            let name = format!("sample-{}-v{version}", r.key as i16);
            std::fs::write(std::path::Path::new(&out).join(name), &frame)?;
            written += 1;
        }
    }
    println!("{written} frames");
    Ok(())
}
