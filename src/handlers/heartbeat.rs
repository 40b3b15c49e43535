//! Heartbeat (key 12): keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to
//! rejoin.

use gregor_protocol::kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::broker::Broker;

pub fn handle(broker: &Broker, _version: i16, req: HeartbeatRequest) -> HeartbeatResponse {
    let instance = req.group_instance_id.as_ref().map(|s| s.to_string());
    let error = broker.groups.heartbeat(
        &req.group_id.0,
        req.generation_id,
        &req.member_id,
        instance.as_deref(),
    );
    HeartbeatResponse::default().with_error_code(error)
}
