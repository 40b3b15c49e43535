//! ConsumerGroupHeartbeat (key 68, KIP-848): the whole membership protocol of
//! `group.protocol=consumer` clients in one request: join (epoch 0), stay alive, report
//! owned partitions, receive the assignment the coordinator computed, leave (epoch -1 / -2).

use std::collections::BTreeSet;

use gregor_protocol::kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment, TopicPartitions,
};
use gregor_protocol::kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
};

use super::{str_bytes, ClientInfo};
use crate::broker::Broker;
use crate::group::assignor::TopicAssignment;
use crate::group::consumer::HeartbeatRequest;

pub fn handle(
    broker: &Broker,
    _version: i16,
    req: ConsumerGroupHeartbeatRequest,
    client: &ClientInfo<'_>,
) -> ConsumerGroupHeartbeatResponse {
    let owned: Option<TopicAssignment> = req.topic_partitions.map(|tps| {
        tps.into_iter()
            .map(|tp| {
                (
                    tp.topic_id,
                    tp.partitions.into_iter().collect::<BTreeSet<i32>>(),
                )
            })
            .filter(|(_, ps)| !ps.is_empty())
            .collect()
    });
    let heartbeat = HeartbeatRequest {
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.map(|s| s.to_string()),
        rack_id: req.rack_id.map(|s| s.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req
            .subscribed_topic_names
            .map(|names| names.into_iter().map(|n| n.0.to_string()).collect()),
        subscribed_topic_regex: req.subscribed_topic_regex.map(|s| s.to_string()),
        server_assignor: req.server_assignor.map(|s| s.to_string()),
        owned,
        client_id: client.client_id.to_string(),
        client_host: client.client_host.to_string(),
    };
    let interval = broker.groups.config().consumer_heartbeat_interval_ms;
    match broker
        .groups
        .consumer_heartbeat(&req.group_id.0, heartbeat, &broker.image())
    {
        Ok(r) => ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(str_bytes(r.member_id)))
            .with_member_epoch(r.member_epoch)
            .with_heartbeat_interval_ms(interval)
            .with_assignment(r.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    a.into_iter()
                        .map(|(id, ps)| {
                            TopicPartitions::default()
                                .with_topic_id(id)
                                .with_partitions(ps.into_iter().collect())
                        })
                        .collect(),
                )
            })),
        Err(e) => ConsumerGroupHeartbeatResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(str_bytes(e.to_string())))
            .with_member_epoch(-1)
            .with_heartbeat_interval_ms(interval),
    }
}
