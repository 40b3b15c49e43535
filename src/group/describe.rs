//! Read-only views of groups for DescribeGroups, ListGroups and ConsumerGroupDescribe.
//! The coordinator checks that it coordinates the group and hands the group in.

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;

use super::assignor::TopicAssignment;
use super::classic::{ClassicGroup, GroupState, Member};
use super::consumer::ConsumerGroup;

/// A group as DescribeGroups shows it.
pub struct GroupDescription {
    pub error: i16,
    pub group_id: String,
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    /// (member id, instance id, client id, client host, metadata, assignment)
    pub members: Vec<DescribedMember>,
}

pub struct DescribedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
    /// "classic" or "consumer" (KIP-848).
    pub group_type: &'static str,
}

/// A KIP-848 group as ConsumerGroupDescribe shows it.
pub struct ConsumerGroupDescription {
    pub error: i16,
    pub group_id: String,
    pub state: &'static str,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: Vec<ConsumerMemberDescription>,
}

pub struct ConsumerMemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub assignment: TopicAssignment,
    pub target_assignment: TopicAssignment,
}

impl GroupDescription {
    /// A Dead group without members, no error.
    fn blank(group_id: &str) -> GroupDescription {
        GroupDescription {
            error: 0,
            group_id: group_id.to_string(),
            state: GroupState::Dead.name(),
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        }
    }

    pub fn error(group_id: &str, error: E) -> GroupDescription {
        GroupDescription {
            error: error.code(),
            ..GroupDescription::blank(group_id)
        }
    }
}

impl ConsumerGroupDescription {
    pub fn error(group_id: &str, error: E) -> ConsumerGroupDescription {
        ConsumerGroupDescription {
            error: error.code(),
            group_id: group_id.to_string(),
            state: "Dead",
            group_epoch: -1,
            assignment_epoch: -1,
            assignor: String::new(),
            members: Vec::new(),
        }
    }
}

/// DescribeGroups for a group of either kind (a KIP-848 group shows its members without
/// metadata or assignment; a classic group shows them only when Stable).
pub fn describe_group(
    group_id: &str,
    classic: Option<&ClassicGroup>,
    consumer: Option<&ConsumerGroup>,
) -> GroupDescription {
    let mut d = GroupDescription::blank(group_id);
    if let Some(g) = consumer {
        d.state = g.state_name();
        d.protocol_type = "consumer".to_string();
        d.members = g
            .members
            .values()
            .map(|m| DescribedMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: Bytes::new(),
                assignment: Bytes::new(),
            })
            .collect();
        return d;
    }
    let Some(g) = classic else {
        return GroupDescription::error(group_id, E::GroupIdNotFound);
    };
    d.state = g.state.name();
    d.protocol_type = g.protocol_type.clone().unwrap_or_default();
    let stable = g.state == GroupState::Stable;
    if stable {
        d.protocol = g.protocol_name.clone().unwrap_or_default();
    }
    let protocol = g.protocol_name.clone().unwrap_or_default();
    let mut members: Vec<&Member> = g.members.values().collect();
    members.sort_by_key(|m| m.join_seq);
    d.members = members
        .into_iter()
        .map(|m| DescribedMember {
            member_id: m.member_id.clone(),
            group_instance_id: m.group_instance_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            metadata: if stable {
                m.metadata_for(&protocol)
            } else {
                Bytes::new()
            },
            assignment: if stable {
                m.assignment.clone()
            } else {
                Bytes::new()
            },
        })
        .collect();
    d
}

/// ListGroups: groups in one of `states` (any state if empty), by group id.
pub fn list_groups<'a>(
    classic: impl Iterator<Item = &'a ClassicGroup>,
    consumer: impl Iterator<Item = &'a ConsumerGroup>,
    states: &[String],
) -> Vec<ListedGroup> {
    let wanted =
        |state: &str| states.is_empty() || states.iter().any(|s| s.eq_ignore_ascii_case(state));
    let mut out: Vec<ListedGroup> = classic
        .filter(|g| g.state != GroupState::Dead)
        .filter(|g| wanted(g.state.name()))
        .map(|g| ListedGroup {
            group_id: g.group_id.clone(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            state: g.state.name(),
            group_type: "classic",
        })
        .collect();
    out.extend(
        consumer
            .filter(|g| wanted(g.state_name()))
            .map(|g| ListedGroup {
                group_id: g.group_id.clone(),
                protocol_type: "consumer".to_string(),
                state: g.state_name(),
                group_type: "consumer",
            }),
    );
    out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    out
}

/// ConsumerGroupDescribe for one KIP-848 group.
pub fn describe_consumer_group(g: &ConsumerGroup) -> ConsumerGroupDescription {
    ConsumerGroupDescription {
        error: 0,
        group_id: g.group_id.clone(),
        state: g.state_name(),
        group_epoch: g.group_epoch,
        assignment_epoch: g.assignment_epoch,
        assignor: g
            .members
            .values()
            .find_map(|m| m.server_assignor.clone())
            .unwrap_or_else(|| g.default_assignor.clone()),
        members: g
            .members
            .values()
            .map(|m| ConsumerMemberDescription {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                rack_id: m.rack_id.clone(),
                member_epoch: m.member_epoch,
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                subscribed_topic_names: m.subscribed_names.iter().cloned().collect(),
                subscribed_topic_regex: m.subscribed_regex.clone(),
                assignment: m.assigned.clone(),
                target_assignment: g.target.get(&m.member_id).cloned().unwrap_or_default(),
            })
            .collect(),
    }
}
