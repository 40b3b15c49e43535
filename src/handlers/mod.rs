//! One module per API, named after it (as franz-go's kfake does): whoever looks for how a
//! request is answered opens the file with its name. `handle` routes a decoded request to
//! its module and encodes the answer at the request's version.

pub mod alter_configs;
pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;

use bytes::Bytes;
use gregor_protocol::kafka_protocol::messages::ApiKey;
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::{encode_response_parts, DecodedRequest, Request, Response};
use tracing::error;

use crate::broker::Broker;

/// What the connection does after a request.
pub enum Reply {
    /// A response frame in parts (record sets travel by reference), for one vectored write.
    Send(Vec<Bytes>),
    /// acks=0 produce: Kafka sends nothing back.
    Nothing,
    /// Kafka closes the connection here (e.g. an acks=0 produce that failed).
    Close(String),
}

/// Who sent a request: the client id from its header and the peer's address (shown as
/// Kafka shows it, `/127.0.0.1`, in DescribeGroups).
pub struct ClientInfo<'a> {
    pub client_id: &'a str,
    pub client_host: &'a str,
}

pub async fn handle(broker: &Broker, req: DecodedRequest, client_host: &str) -> Reply {
    let v = req.api_version;
    let client = ClientInfo {
        client_id: req.client_id.as_deref().unwrap_or(""),
        client_host,
    };
    let response = match req.request {
        Request::ApiVersions(r) => Response::ApiVersions(api_versions::handle(v, r)),
        Request::ApiVersionsUnsupported => {
            // Answered with the v0 body, whatever version was asked.
            return encode(
                ApiKey::ApiVersions,
                0,
                req.correlation_id,
                &Response::ApiVersions(api_versions::unsupported_version()),
            );
        }
        Request::Metadata(r) => Response::Metadata(metadata::handle(broker, v, r).await),
        Request::Produce(r) => match produce::handle(broker, v, r) {
            produce::Outcome::Respond(resp) => Response::Produce(resp),
            produce::Outcome::Silent => return Reply::Nothing,
            produce::Outcome::Close(reason) => return Reply::Close(reason),
        },
        Request::Fetch(r) => Response::Fetch(fetch::handle(broker, v, r).await),
        Request::ListOffsets(r) => Response::ListOffsets(list_offsets::handle(broker, v, r)),
        Request::CreateTopics(r) => {
            Response::CreateTopics(create_topics::handle(broker, v, r).await)
        }
        Request::DeleteTopics(r) => {
            Response::DeleteTopics(delete_topics::handle(broker, v, r).await)
        }
        Request::DeleteRecords(r) => {
            Response::DeleteRecords(delete_records::handle(broker, v, r).await)
        }
        Request::CreatePartitions(r) => {
            Response::CreatePartitions(create_partitions::handle(broker, v, r).await)
        }
        Request::DescribeConfigs(r) => {
            Response::DescribeConfigs(describe_configs::handle(broker, v, r))
        }
        Request::InitProducerId(r) => {
            Response::InitProducerId(init_producer_id::handle(broker, v, r).await)
        }
        Request::OffsetForLeaderEpoch(r) => {
            Response::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(broker, v, r))
        }
        Request::DescribeCluster(r) => {
            Response::DescribeCluster(describe_cluster::handle(broker, v, r))
        }
        Request::AlterConfigs(r) => {
            Response::AlterConfigs(alter_configs::handle(broker, v, r).await)
        }
        Request::IncrementalAlterConfigs(r) => {
            Response::IncrementalAlterConfigs(incremental_alter_configs::handle(broker, v, r).await)
        }
        Request::FindCoordinator(r) => {
            Response::FindCoordinator(find_coordinator::handle(broker, v, r).await)
        }
        Request::JoinGroup(r) => {
            Response::JoinGroup(join_group::handle(broker, v, r, &client).await)
        }
        Request::SyncGroup(r) => Response::SyncGroup(sync_group::handle(broker, v, r).await),
        Request::Heartbeat(r) => Response::Heartbeat(heartbeat::handle(broker, v, r)),
        Request::LeaveGroup(r) => Response::LeaveGroup(leave_group::handle(broker, v, r)),
        Request::OffsetCommit(r) => Response::OffsetCommit(offset_commit::handle(broker, v, r)),
        Request::OffsetFetch(r) => Response::OffsetFetch(offset_fetch::handle(broker, v, r)),
        Request::DescribeGroups(r) => {
            Response::DescribeGroups(describe_groups::handle(broker, v, r))
        }
        Request::ListGroups(r) => Response::ListGroups(list_groups::handle(broker, v, r)),
        Request::DeleteGroups(r) => Response::DeleteGroups(delete_groups::handle(broker, v, r)),
        Request::OffsetDelete(r) => Response::OffsetDelete(offset_delete::handle(broker, v, r)),
        Request::ConsumerGroupHeartbeat(r) => Response::ConsumerGroupHeartbeat(
            consumer_group_heartbeat::handle(broker, v, r, &client),
        ),
        Request::ConsumerGroupDescribe(r) => {
            Response::ConsumerGroupDescribe(consumer_group_describe::handle(broker, v, r))
        }
    };
    encode(req.api_key, v, req.correlation_id, &response)
}

fn encode(api_key: ApiKey, version: i16, correlation_id: i32, response: &Response) -> Reply {
    // A Fetch answer's record sets are sent from the memory they were read into, not
    // copied into the frame.
    let record_sets: Vec<Bytes> = match response {
        Response::Fetch(r) => r
            .responses
            .iter()
            .flat_map(|t| t.partitions.iter())
            .filter_map(|p| p.records.clone())
            .collect(),
        _ => Vec::new(),
    };
    match encode_response_parts(api_key, version, correlation_id, response, &record_sets) {
        Ok(parts) => Reply::Send(parts),
        Err(e) => {
            error!(error = %e, "response encoding failed");
            Reply::Close(e.to_string())
        }
    }
}

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
