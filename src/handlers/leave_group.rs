//! LeaveGroup (key 13): members leave at once instead of waiting for their session to
//! expire, which starts a rebalance right away. v3+ batches members (and static members
//! leave by group instance id).

use gregor_protocol::kafka_protocol::messages::leave_group_response::MemberResponse;
use gregor_protocol::kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::str_bytes;
use crate::broker::Broker;

pub fn handle(broker: &Broker, version: i16, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let members: Vec<(String, Option<String>)> = if version < 3 {
        vec![(req.member_id.to_string(), None)]
    } else {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    };
    match broker.groups.leave(&req.group_id.0, &members) {
        Err(e) => LeaveGroupResponse::default().with_error_code(e.code()),
        Ok(errors) if version < 3 => {
            LeaveGroupResponse::default().with_error_code(errors.first().copied().unwrap_or(0))
        }
        Ok(errors) => LeaveGroupResponse::default().with_members(
            members
                .into_iter()
                .zip(errors)
                .map(|((id, instance), e)| {
                    MemberResponse::default()
                        .with_member_id(str_bytes(id))
                        .with_group_instance_id(instance.map(str_bytes))
                        .with_error_code(e)
                })
                .collect(),
        ),
    }
}
