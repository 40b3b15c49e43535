//! Writes the generated half of the decode_request fuzz target's seed corpus
//! (fuzz/corpus/decode_request; the other half is frames captured from real clients):
//! `write_request_seeds <dir>` writes, for every served API and version (the controller RPCs
//! of `controller_api` too), a frame (header and body, no size prefix) whose body is
//! `schema::sample_body` with one element per array.

use bytes::BytesMut;
use gregor_protocol::kafka_protocol::messages::RequestHeader;
use gregor_protocol::kafka_protocol::protocol::{Encodable, StrBytes};
use gregor_protocol::{controller_api, schema, SUPPORTED_APIS};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .ok_or("usage: write_request_seeds <corpus directory>")?;
    std::fs::create_dir_all(&out)?;
    let mut apis: Vec<(i16, i16, i16)> = SUPPORTED_APIS
        .iter()
        .map(|r| (r.key as i16, r.min, r.max))
        .collect();
    for key in [
        controller_api::LEADER_AND_ISR,
        controller_api::STOP_REPLICA,
        controller_api::UPDATE_METADATA,
        controller_api::CONTROLLED_SHUTDOWN,
    ] {
        let (min, max) = controller_api::served_range(key).ok_or("controller api not served")?;
        apis.push((key, min, max));
    }
    let mut written = 0;
    for (key, min, max) in apis {
        for version in min..=max {
            let body = schema::sample_body(key, version, 1)
                .ok_or_else(|| format!("no schema for api key {key}"))?;
            let header_version = match controller_api::request_header_version(key, version) {
                Some(v) => v,
                None => gregor_protocol::kafka_protocol::messages::ApiKey::try_from(key)
                    .map_err(|_| format!("unknown api key {key}"))?
                    .request_header_version(version),
            };
            let mut frame = BytesMut::new();
            RequestHeader::default()
                .with_request_api_key(key)
                .with_request_api_version(version)
                .with_correlation_id(1)
                .with_client_id(Some(StrBytes::from_static_str("seed")))
                .encode(&mut frame, header_version)
                .map_err(|e| format!("api key {key} v{version} header v{header_version}: {e}"))?;
            frame.extend_from_slice(&body);
            let name = format!("sample-{key}-v{version}");
            std::fs::write(std::path::Path::new(&out).join(name), &frame)?;
            written += 1;
        }
    }
    println!("{written} frames");
    Ok(())
}
