//! SyncGroup (key 14): the leader hands in the assignment, every member gets its own. Waits
//! like JoinGroup until the leader's assignment is stored.

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::group::classic::SyncResult;
use crate::group::coordinator::{Pending, SyncRequest};

pub async fn handle(broker: &Broker, _version: i16, req: SyncGroupRequest) -> SyncGroupResponse {
    let sync = SyncRequest {
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        protocol_type: req.protocol_type.map(|s| s.to_string()),
        protocol_name: req.protocol_name.map(|s| s.to_string()),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let result = match broker.groups.sync(sync) {
        Pending::Ready(r) => r,
        Pending::Wait(rx) => rx
            .await
            .unwrap_or_else(|_| SyncResult::error(E::NotCoordinator)),
    };
    SyncGroupResponse::default()
        .with_error_code(result.error)
        .with_protocol_type(result.protocol_type.map(str_bytes))
        .with_protocol_name(result.protocol_name.map(str_bytes))
        .with_assignment(result.assignment)
}
