//! JoinGroup (key 11): a member joins a classic group or rejoins for a rebalance. The
//! request waits (its connection is muted, as in Kafka) until the join phase ends, then the
//! leader gets every member's subscription and the followers just the generation.

use gregor_protocol::kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use gregor_protocol::kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use super::{str_bytes, ClientInfo};
use crate::broker::Broker;
use crate::group::classic::JoinResult;
use crate::group::coordinator::{JoinRequest, Pending};

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: JoinGroupRequest,
    client: &ClientInfo<'_>,
) -> JoinGroupResponse {
    let join = JoinRequest {
        group_id: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        client_id: client.client_id.to_string(),
        client_host: client.client_host.to_string(),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    let member_id = join.member_id.clone();
    let result = match broker.groups.join(join) {
        Pending::Ready(r) => r,
        Pending::Wait(rx) => match rx.await {
            Ok(r) => r,
            // The coordinator gave the group up (leadership moved) while we waited.
            Err(_) => JoinResult::error(
                &member_id,
                gregor_protocol::kafka_protocol::error::ResponseError::NotCoordinator,
            ),
        },
    };
    to_response(version, result)
}

fn to_response(version: i16, r: JoinResult) -> JoinGroupResponse {
    let members = r
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            JoinGroupResponseMember::default()
                .with_member_id(str_bytes(id))
                .with_group_instance_id(instance.map(str_bytes))
                .with_metadata(metadata)
        })
        .collect();
    JoinGroupResponse::default()
        .with_error_code(r.error)
        .with_generation_id(r.generation_id)
        .with_protocol_type(r.protocol_type.map(str_bytes))
        // Before v7 the protocol name is not nullable.
        .with_protocol_name(match r.protocol_name {
            Some(p) => Some(str_bytes(p)),
            None if version < 7 => Some(str_bytes("")),
            None => None,
        })
        .with_leader(str_bytes(r.leader))
        .with_skip_assignment(version >= 9 && r.skip_assignment)
        .with_member_id(str_bytes(r.member_id))
        .with_members(members)
}
