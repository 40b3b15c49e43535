//! FindCoordinator (key 10): which broker coordinates a consumer group or a transactional
//! id. There is no group or transaction coordinator yet, so every key gets
//! COORDINATOR_NOT_AVAILABLE (retriable): clients that only `assign()` partitions are
//! unaffected, and group or transactional clients wait instead of being misled.

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::find_coordinator_response::Coordinator;
use gregor_protocol::kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};

use super::str_bytes;

const MESSAGE: &str = "The group and transaction coordinators are not implemented yet";

pub fn handle(version: i16, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let code = E::CoordinatorNotAvailable.code();
    if version < 4 {
        return FindCoordinatorResponse::default()
            .with_error_code(code)
            .with_error_message(Some(str_bytes(MESSAGE)))
            .with_node_id((-1).into())
            .with_host(str_bytes(""))
            .with_port(-1);
    }
    // v4+ batches keys.
    let coordinators = req
        .coordinator_keys
        .into_iter()
        .map(|key| {
            Coordinator::default()
                .with_key(key)
                .with_node_id((-1).into())
                .with_host(str_bytes(""))
                .with_port(-1)
                .with_error_code(code)
                .with_error_message(Some(str_bytes(MESSAGE)))
        })
        .collect();
    FindCoordinatorResponse::default().with_coordinators(coordinators)
}
