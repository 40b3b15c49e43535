//! One module per API, named after it (as franz-go's kfake does): whoever looks for how a
//! request is answered opens the file with its name. `handle` routes a decoded request to
//! its module and encodes the answer at the request's version.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod allocate_producer_ids;
pub mod alter_client_quotas;
pub mod alter_configs;
pub mod alter_partition;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod controlled_shutdown;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leader_and_isr;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod stop_replica;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod update_features;
pub mod update_metadata;
pub mod write_txn_markers;

use std::time::Duration;

use bytes::Bytes;
use gregor_log::FetchSlice;
use gregor_protocol::controller_api::{self, ControllerRequest, ControllerResponse};
use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::{
    AllocateProducerIdsResponse, AlterPartitionReassignmentsResponse, AlterPartitionResponse,
    ApiKey, ConsumerGroupHeartbeatResponse, DescribeClientQuotasResponse, DescribeLogDirsResponse,
    DescribeUserScramCredentialsResponse, HeartbeatResponse, InitProducerIdResponse,
    JoinGroupResponse, LeaveGroupResponse, ListPartitionReassignmentsResponse,
    SaslAuthenticateResponse, SaslHandshakeResponse, SyncGroupResponse,
};
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::{encode_response_parts, DecodedRequest, FramePart, Request, Response};
use tracing::error;

use crate::broker::Broker;
use crate::config::SecurityProtocol;
use crate::security::acl::AclOperation;
use crate::security::authorizer::RequestAuthorizer;
use crate::security::KafkaPrincipal;

/// GROUP_AUTHORIZATION_FAILED: a request-level refusal of a group API.
const GROUP_DENIED: i16 = 30;
/// CLUSTER_AUTHORIZATION_FAILED: a refusal of a cluster-wide API.
const CLUSTER_DENIED: i16 = 31;
const CLUSTER_DENIED_MESSAGE: &str = "Cluster authorization failed.";

/// Kafka's InitProducerId checks: WRITE on the transactional id; an idempotent producer
/// needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic.
fn init_producer_id_denied(
    authz: RequestAuthorizer<'_>,
    r: &gregor_protocol::kafka_protocol::messages::InitProducerIdRequest,
) -> Option<E> {
    use crate::security::acl::ResourceType;
    match &r.transactional_id {
        Some(id) => (!authz.allows(AclOperation::Write, ResourceType::TransactionalId, id))
            .then_some(E::TransactionalIdAuthorizationFailed),
        None => (!authz.allows_cluster(AclOperation::IdempotentWrite)
            && !authz.allows_any_of_type(AclOperation::Write, ResourceType::Topic))
        .then_some(E::ClusterAuthorizationFailed),
    }
}

/// A controller request refused for want of CLUSTER_ACTION.
fn cluster_action_refused(r: &ControllerRequest) -> ControllerResponse {
    use gregor_protocol::controller_api::zk_messages as zk;
    match r {
        ControllerRequest::LeaderAndIsr(_) => ControllerResponse::LeaderAndIsr(
            zk::LeaderAndIsrResponse::default().with_error_code(CLUSTER_DENIED),
        ),
        ControllerRequest::UpdateMetadata(_) => ControllerResponse::UpdateMetadata(
            zk::UpdateMetadataResponse::default().with_error_code(CLUSTER_DENIED),
        ),
        ControllerRequest::StopReplica(_) => ControllerResponse::StopReplica(
            zk::StopReplicaResponse::default().with_error_code(CLUSTER_DENIED),
        ),
        ControllerRequest::ControlledShutdown(_) => ControllerResponse::ControlledShutdown(
            zk::ControlledShutdownResponse::default().with_error_code(CLUSTER_DENIED),
        ),
    }
}

/// What the connection does after a request.
pub enum Reply {
    /// A response frame, in the order its parts go on the wire.
    Send(Vec<ResponsePart>),
    /// acks=0 produce: Kafka sends nothing back.
    Nothing,
    /// Kafka closes the connection here (e.g. an acks=0 produce that failed).
    Close(String),
    /// A client over its byte-rate quota: the reply, then no request read from the
    /// connection for this long (Kafka mutes the channel for the throttle time, KIP-219).
    Muted(Box<Reply>, std::time::Duration),
}

/// A piece of a response frame: bytes, or a range of a segment file (a Fetch answer's
/// record set, sent with sendfile).
pub enum ResponsePart {
    Bytes(Bytes),
    File(FetchSlice),
}

/// The connection a request came on, as the handlers see it (Kafka's request context): the
/// listener (Metadata answers with the brokers' addresses on it), its security protocol, the
/// peer and the principal it authenticated as.
#[derive(Clone, Debug)]
pub struct Session {
    pub listener_name: String,
    pub security_protocol: SecurityProtocol,
    /// The peer's address as Kafka shows it, `/127.0.0.1` (DescribeGroups).
    pub client_host: String,
    pub principal: KafkaPrincipal,
}

impl Session {
    /// The peer's address without Kafka's leading slash, as ACL hosts name it.
    pub fn host(&self) -> &str {
        self.client_host.trim_start_matches('/')
    }

    /// What this connection's principal may do (everything without an authorizer).
    pub fn authorizer<'a>(&'a self, broker: &'a Broker) -> RequestAuthorizer<'a> {
        RequestAuthorizer {
            authorizer: broker.authorizer.as_deref(),
            principal: &self.principal,
            host: self.host(),
        }
    }
}

/// Who sent a request: the client id from its header and the peer's address (shown as
/// Kafka shows it, `/127.0.0.1`, in DescribeGroups).
pub struct ClientInfo<'a> {
    pub client_id: &'a str,
    pub client_host: &'a str,
}

/// Answers one request. With a `request_percentage` quota in force, the time spent handling
/// a client's request is measured (the time its future is polled: work on this broker's
/// threads, not waits such as a long poll) and charged to the client; a client in debt from
/// earlier requests is told to wait and not read from for that long, as Kafka's request
/// quota does. The brokers' own requests are exempt.
pub async fn handle(broker: &Broker, req: DecodedRequest, session: &Session) -> Reply {
    if !broker.request_quotas.is_active() || exempt_from_request_quota(&req) {
        return handle_request(broker, req, session, Duration::ZERO).await;
    }
    let client_id = req.client_id.clone().unwrap_or_default();
    let user = session.principal.name.as_str();
    let owed = broker.request_quotas.debt(user, &client_id);
    let (reply, busy) = PollTimed::new(handle_request(broker, req, session, owed)).await;
    let nanos = usize::try_from(busy.as_nanos()).unwrap_or(usize::MAX);
    broker.request_quotas.record(user, &client_id, nanos);
    reply
}

/// Requests one broker sends another (replication, the controller's): never throttled.
fn exempt_from_request_quota(req: &DecodedRequest) -> bool {
    match &req.request {
        Request::Fetch(r) => fetch::replica_id(req.api_version, r) >= 0,
        Request::Controller(_) | Request::AlterPartition(_) | Request::AllocateProducerIds(_) => {
            true
        }
        _ => false,
    }
}

/// A future with the time spent polling it: the work done for it, not its waits.
struct PollTimed<F> {
    inner: std::pin::Pin<Box<F>>,
    busy: Duration,
}

impl<F: std::future::Future> PollTimed<F> {
    fn new(inner: F) -> Self {
        PollTimed {
            inner: Box::pin(inner),
            busy: Duration::ZERO,
        }
    }
}

impl<F: std::future::Future> std::future::Future for PollTimed<F> {
    type Output = (F::Output, Duration);

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let started = std::time::Instant::now();
        let polled = self.inner.as_mut().poll(cx);
        self.busy += started.elapsed();
        let busy = self.busy;
        polled.map(|out| (out, busy))
    }
}

/// `owed`: how long the client must still wait under its request quota (zero if none).
async fn handle_request(
    broker: &Broker,
    req: DecodedRequest,
    session: &Session,
    owed: Duration,
) -> Reply {
    let v = req.api_version;
    let listener = session.listener_name.as_str();
    let authz = session.authorizer(broker);
    let client = ClientInfo {
        client_id: req.client_id.as_deref().unwrap_or(""),
        client_host: &session.client_host,
    };
    let response = match req.request {
        Request::ApiVersions(r) => Response::ApiVersions(api_versions::handle(
            v,
            r,
            &broker.image().finalized_features,
        )),
        Request::ApiVersionsUnsupported => {
            // Answered with the v0 body, whatever version was asked.
            return encode(
                ApiKey::ApiVersions,
                0,
                req.correlation_id,
                &Response::ApiVersions(api_versions::unsupported_version()),
            );
        }
        Request::Metadata(r) => {
            Response::Metadata(metadata::handle(broker, v, r, listener, authz).await)
        }
        Request::Produce(r) => {
            let bytes: usize = r
                .topic_data
                .iter()
                .flat_map(|t| &t.partition_data)
                .map(|p| p.records.as_ref().map_or(0, |b| b.len()))
                .sum();
            let throttle = broker
                .produce_quotas
                .record(&session.principal.name, client.client_id, bytes)
                .max(owed);
            let reply = match produce::handle(broker, v, r, authz).await {
                produce::Outcome::Respond(resp) => {
                    let resp = resp.with_throttle_time_ms(millis(throttle));
                    encode(
                        ApiKey::Produce,
                        v,
                        req.correlation_id,
                        &Response::Produce(resp),
                    )
                }
                produce::Outcome::Silent => Reply::Nothing,
                produce::Outcome::Close(reason) => return Reply::Close(reason),
            };
            return muted(reply, throttle);
        }
        Request::Fetch(r) => {
            let from_follower = fetch::replica_id(v, &r) >= 0;
            let mut answer = fetch::handle(broker, v, r, authz).await;
            // Replication is not a client: Kafka exempts it from client quotas.
            let throttle = if from_follower {
                Duration::ZERO
            } else {
                // Every record set, read into memory or a stand-in for a file range of the
                // same length (the file ranges are not counted again).
                let bytes: usize = answer
                    .response
                    .responses
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.records.as_ref().map_or(0, |b| b.len()))
                    .sum();
                broker
                    .fetch_quotas
                    .record(&session.principal.name, client.client_id, bytes)
                    .max(owed)
            };
            answer.response.throttle_time_ms = millis(throttle);
            let response = Response::Fetch(answer.response);
            let reply = encode_with_files(
                ApiKey::Fetch,
                v,
                req.correlation_id,
                &response,
                answer.file_ranges,
            );
            return muted(reply, throttle);
        }
        Request::ListOffsets(r) => Response::ListOffsets(list_offsets::handle(broker, v, r, authz)),
        Request::CreateTopics(r) => {
            Response::CreateTopics(create_topics::handle(broker, v, r, authz).await)
        }
        Request::DeleteTopics(r) => {
            Response::DeleteTopics(delete_topics::handle(broker, v, r, authz).await)
        }
        Request::DeleteRecords(r) => {
            Response::DeleteRecords(delete_records::handle(broker, v, r, authz).await)
        }
        Request::CreatePartitions(r) => {
            Response::CreatePartitions(create_partitions::handle(broker, v, r, authz).await)
        }
        Request::DescribeConfigs(r) => {
            Response::DescribeConfigs(describe_configs::handle(broker, v, r, authz))
        }
        Request::InitProducerId(r) if init_producer_id_denied(authz, &r).is_some() => {
            let error = init_producer_id_denied(authz, &r).unwrap_or(E::ClusterAuthorizationFailed);
            Response::InitProducerId(
                InitProducerIdResponse::default()
                    .with_error_code(error.code())
                    .with_producer_id((-1).into())
                    .with_producer_epoch(-1),
            )
        }
        Request::InitProducerId(r) => {
            Response::InitProducerId(init_producer_id::handle(broker, v, r).await)
        }
        Request::AddPartitionsToTxn(r) => {
            Response::AddPartitionsToTxn(add_partitions_to_txn::handle(broker, v, r, authz).await)
        }
        Request::AddOffsetsToTxn(r) => {
            Response::AddOffsetsToTxn(add_offsets_to_txn::handle(broker, v, r, authz).await)
        }
        Request::EndTxn(r)
            if !authz.allows(
                AclOperation::Write,
                crate::security::acl::ResourceType::TransactionalId,
                &r.transactional_id,
            ) =>
        {
            Response::EndTxn(end_txn::refused())
        }
        Request::EndTxn(r) => Response::EndTxn(end_txn::handle(broker, v, r).await),
        Request::TxnOffsetCommit(r) => {
            Response::TxnOffsetCommit(txn_offset_commit::handle(broker, v, r, authz).await)
        }
        Request::DescribeProducers(r) => {
            Response::DescribeProducers(describe_producers::handle(broker, v, r, authz))
        }
        Request::DescribeTransactions(r) => {
            Response::DescribeTransactions(describe_transactions::handle(broker, v, r, authz))
        }
        Request::ListTransactions(r) => {
            Response::ListTransactions(list_transactions::handle(broker, v, r, authz))
        }
        Request::OffsetForLeaderEpoch(r) => {
            Response::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(broker, v, r, authz))
        }
        Request::DescribeCluster(r) => {
            Response::DescribeCluster(describe_cluster::handle(broker, v, r, listener, authz))
        }
        Request::DescribeLogDirs(_) if !authz.allows_cluster(AclOperation::Describe) => {
            Response::DescribeLogDirs(
                DescribeLogDirsResponse::default().with_error_code(CLUSTER_DENIED),
            )
        }
        Request::DescribeLogDirs(r) => {
            Response::DescribeLogDirs(describe_log_dirs::handle(broker, v, r))
        }
        Request::AlterConfigs(r) => {
            Response::AlterConfigs(alter_configs::handle(broker, v, r, authz).await)
        }
        Request::IncrementalAlterConfigs(r) => Response::IncrementalAlterConfigs(
            incremental_alter_configs::handle(broker, v, r, authz).await,
        ),
        Request::FindCoordinator(r) => {
            Response::FindCoordinator(find_coordinator::handle(broker, v, r, listener, authz).await)
        }
        // The classic group protocol: READ on the group, else GROUP_AUTHORIZATION_FAILED.
        Request::JoinGroup(r) if !authz.allows_group(AclOperation::Read, &r.group_id) => {
            Response::JoinGroup(JoinGroupResponse::default().with_error_code(GROUP_DENIED))
        }
        Request::JoinGroup(r) => {
            Response::JoinGroup(join_group::handle(broker, v, r, &client).await)
        }
        Request::SyncGroup(r) if !authz.allows_group(AclOperation::Read, &r.group_id) => {
            Response::SyncGroup(SyncGroupResponse::default().with_error_code(GROUP_DENIED))
        }
        Request::SyncGroup(r) => Response::SyncGroup(sync_group::handle(broker, v, r).await),
        Request::Heartbeat(r) if !authz.allows_group(AclOperation::Read, &r.group_id) => {
            Response::Heartbeat(HeartbeatResponse::default().with_error_code(GROUP_DENIED))
        }
        Request::Heartbeat(r) => Response::Heartbeat(heartbeat::handle(broker, v, r)),
        Request::LeaveGroup(r) if !authz.allows_group(AclOperation::Read, &r.group_id) => {
            Response::LeaveGroup(LeaveGroupResponse::default().with_error_code(GROUP_DENIED))
        }
        Request::LeaveGroup(r) => Response::LeaveGroup(leave_group::handle(broker, v, r)),
        Request::OffsetCommit(r) => {
            Response::OffsetCommit(offset_commit::handle(broker, v, r, authz).await)
        }
        Request::OffsetFetch(r) => Response::OffsetFetch(offset_fetch::handle(broker, v, r, authz)),
        Request::DescribeGroups(r) => {
            Response::DescribeGroups(describe_groups::handle(broker, v, r, authz))
        }
        Request::ListGroups(r) => Response::ListGroups(list_groups::handle(broker, v, r, authz)),
        Request::DeleteGroups(r) => {
            Response::DeleteGroups(delete_groups::handle(broker, v, r, authz))
        }
        Request::OffsetDelete(r) => {
            Response::OffsetDelete(offset_delete::handle(broker, v, r, authz))
        }
        Request::ElectLeaders(r) if !authz.allows_cluster(AclOperation::Alter) => {
            Response::ElectLeaders(elect_leaders::refused(v, r, CLUSTER_DENIED))
        }
        Request::ElectLeaders(r) => {
            Response::ElectLeaders(elect_leaders::handle(broker, v, r).await)
        }
        Request::UpdateFeatures(r) if !authz.allows_cluster(AclOperation::Alter) => {
            Response::UpdateFeatures(update_features::refused(v, &r))
        }
        Request::UpdateFeatures(r) => {
            Response::UpdateFeatures(update_features::handle(broker, v, r).await)
        }
        // KIP-848 groups: READ on the group, DESCRIBE on every subscribed topic.
        Request::ConsumerGroupHeartbeat(r)
            if !authz.allows_group(AclOperation::Read, &r.group_id) =>
        {
            Response::ConsumerGroupHeartbeat(
                ConsumerGroupHeartbeatResponse::default().with_error_code(GROUP_DENIED),
            )
        }
        Request::ConsumerGroupHeartbeat(r)
            if r.subscribed_topic_names.as_ref().is_some_and(|names| {
                names
                    .iter()
                    .any(|t| !authz.allows_topic(AclOperation::Describe, t))
            }) =>
        {
            Response::ConsumerGroupHeartbeat(
                ConsumerGroupHeartbeatResponse::default()
                    .with_error_code(E::TopicAuthorizationFailed.code()),
            )
        }
        Request::ConsumerGroupHeartbeat(r) => Response::ConsumerGroupHeartbeat(
            consumer_group_heartbeat::handle(broker, v, r, &client),
        ),
        Request::ConsumerGroupDescribe(r) => {
            Response::ConsumerGroupDescribe(consumer_group_describe::handle(broker, v, r, authz))
        }
        Request::AlterPartition(_) if !authz.allows_cluster(AclOperation::ClusterAction) => {
            Response::AlterPartition(
                AlterPartitionResponse::default().with_error_code(CLUSTER_DENIED),
            )
        }
        Request::AlterPartition(r) => {
            Response::AlterPartition(alter_partition::handle(broker, v, r).await)
        }
        Request::AllocateProducerIds(_) if !authz.allows_cluster(AclOperation::ClusterAction) => {
            Response::AllocateProducerIds(
                AllocateProducerIdsResponse::default().with_error_code(CLUSTER_DENIED),
            )
        }
        Request::AllocateProducerIds(r) => {
            Response::AllocateProducerIds(allocate_producer_ids::handle(broker, r).await)
        }
        Request::WriteTxnMarkers(r) if !authz.allows_cluster(AclOperation::ClusterAction) => {
            Response::WriteTxnMarkers(write_txn_markers::refused(r, CLUSTER_DENIED))
        }
        Request::WriteTxnMarkers(r) => {
            Response::WriteTxnMarkers(write_txn_markers::handle(broker, r).await)
        }
        Request::AlterPartitionReassignments(_) if !authz.allows_cluster(AclOperation::Alter) => {
            Response::AlterPartitionReassignments(
                AlterPartitionReassignmentsResponse::default()
                    .with_error_code(CLUSTER_DENIED)
                    .with_error_message(Some(str_bytes(CLUSTER_DENIED_MESSAGE))),
            )
        }
        Request::AlterPartitionReassignments(r) => Response::AlterPartitionReassignments(
            alter_partition_reassignments::handle(broker, v, r).await,
        ),
        Request::ListPartitionReassignments(_) if !authz.allows_cluster(AclOperation::Describe) => {
            Response::ListPartitionReassignments(
                ListPartitionReassignmentsResponse::default()
                    .with_error_code(CLUSTER_DENIED)
                    .with_error_message(Some(str_bytes(CLUSTER_DENIED_MESSAGE))),
            )
        }
        Request::ListPartitionReassignments(r) => Response::ListPartitionReassignments(
            list_partition_reassignments::handle(broker, r).await,
        ),
        Request::DescribeClientQuotas(_)
            if !authz.allows_cluster(AclOperation::DescribeConfigs) =>
        {
            Response::DescribeClientQuotas(
                DescribeClientQuotasResponse::default()
                    .with_error_code(CLUSTER_DENIED)
                    .with_error_message(Some(str_bytes(CLUSTER_DENIED_MESSAGE))),
            )
        }
        Request::DescribeClientQuotas(r) => {
            Response::DescribeClientQuotas(describe_client_quotas::handle(broker, r).await)
        }
        Request::AlterClientQuotas(r) if !authz.allows_cluster(AclOperation::AlterConfigs) => {
            Response::AlterClientQuotas(alter_client_quotas::refused(r, CLUSTER_DENIED))
        }
        Request::AlterClientQuotas(r) => {
            Response::AlterClientQuotas(alter_client_quotas::handle(broker, r).await)
        }
        Request::DescribeAcls(r) => {
            Response::DescribeAcls(describe_acls::handle(broker, session, r))
        }
        Request::CreateAcls(r) => {
            Response::CreateAcls(create_acls::handle(broker, session, r).await)
        }
        Request::DeleteAcls(r) => {
            Response::DeleteAcls(delete_acls::handle(broker, session, r).await)
        }
        Request::DescribeUserScramCredentials(_)
            if !authz.allows_cluster(AclOperation::Describe) =>
        {
            Response::DescribeUserScramCredentials(
                DescribeUserScramCredentialsResponse::default()
                    .with_error_code(CLUSTER_DENIED)
                    .with_error_message(Some(str_bytes(CLUSTER_DENIED_MESSAGE))),
            )
        }
        Request::DescribeUserScramCredentials(r) => Response::DescribeUserScramCredentials(
            describe_user_scram_credentials::handle(broker, r).await,
        ),
        Request::AlterUserScramCredentials(r) if !authz.allows_cluster(AclOperation::Alter) => {
            Response::AlterUserScramCredentials(alter_user_scram_credentials::refused(
                r,
                CLUSTER_DENIED,
            ))
        }
        Request::AlterUserScramCredentials(r) => Response::AlterUserScramCredentials(
            alter_user_scram_credentials::handle(broker, r).await,
        ),
        // SASL requests reach the handlers only where no authentication is under way (a
        // listener without SASL, or after it): Kafka answers ILLEGAL_SASL_STATE.
        Request::SaslHandshake(_) => Response::SaslHandshake(
            SaslHandshakeResponse::default().with_error_code(E::IllegalSaslState.code()),
        ),
        Request::SaslAuthenticate(_) => Response::SaslAuthenticate(
            SaslAuthenticateResponse::default()
                .with_error_code(E::IllegalSaslState.code())
                .with_error_message(Some(str_bytes(
                    "SaslAuthenticate request received after successful authentication",
                ))),
        ),
        Request::Controller(r) => {
            // Kafka: the controller's requests need CLUSTER_ACTION (brokers are super users
            // or hold it).
            let response = if !authz.allows_cluster(AclOperation::ClusterAction) {
                cluster_action_refused(&r)
            } else {
                match r {
                    ControllerRequest::LeaderAndIsr(r) => {
                        ControllerResponse::LeaderAndIsr(leader_and_isr::handle(broker, v, r).await)
                    }
                    ControllerRequest::UpdateMetadata(r) => {
                        ControllerResponse::UpdateMetadata(update_metadata::handle(broker, r).await)
                    }
                    ControllerRequest::StopReplica(r) => {
                        ControllerResponse::StopReplica(stop_replica::handle(broker, v, r).await)
                    }
                    ControllerRequest::ControlledShutdown(r) => {
                        ControllerResponse::ControlledShutdown(
                            controlled_shutdown::handle(broker, r).await,
                        )
                    }
                }
            };
            return match controller_api::encode_response(v, req.correlation_id, &response) {
                Ok(frame) => Reply::Send(vec![ResponsePart::Bytes(frame)]),
                Err(e) => {
                    error!(error = %e, "response encoding failed");
                    Reply::Close(e.to_string())
                }
            };
        }
    };
    let mut response = response;
    if !owed.is_zero() {
        response.set_throttle_time_ms(millis(owed));
    }
    match ApiKey::try_from(req.api_key) {
        Ok(key) => muted(encode(key, v, req.correlation_id, &response), owed),
        Err(_) => Reply::Close(format!("no response encoding for api key {}", req.api_key)),
    }
}

/// Kafka's check of a config resource (DescribeConfigs, AlterConfigs): DESCRIBE_CONFIGS or
/// ALTER_CONFIGS on the topic, or on the cluster for a broker; the error and message to
/// answer when refused.
pub(crate) fn config_resource_denied(
    authz: RequestAuthorizer<'_>,
    operation: crate::security::acl::AclOperation,
    resource_type: i8,
    name: &str,
) -> Option<(i16, &'static str)> {
    use crate::security::acl::ResourceType;
    let (resource, error, message) = match resource_type {
        2 => (
            ResourceType::Topic,
            E::TopicAuthorizationFailed,
            "Topic authorization failed.",
        ),
        4 | 8 => (
            ResourceType::Cluster,
            E::ClusterAuthorizationFailed,
            "Cluster authorization failed.",
        ),
        32 => (
            ResourceType::Group,
            E::GroupAuthorizationFailed,
            "Group authorization failed.",
        ),
        _ => return None,
    };
    let name = if resource == ResourceType::Cluster {
        crate::security::acl::CLUSTER_NAME
    } else {
        name
    };
    (!authz.allows(operation, resource, name)).then_some((error.code(), message))
}

/// A quota's wait as a response's throttle_time_ms.
fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// The reply, muted for `throttle` when the client is over its quota.
fn muted(reply: Reply, throttle: Duration) -> Reply {
    if throttle.is_zero() {
        reply
    } else {
        Reply::Muted(Box::new(reply), throttle)
    }
}

/// The fence of every controller request, as Kafka checks it: a broker epoch older than
/// this broker's registration (-1: not checked) is STALE_BROKER_EPOCH, a controller epoch
/// older than the newest heard from is STALE_CONTROLLER_EPOCH. None: accepted. A refusal is
/// logged here, naming `api` and the controller.
pub(crate) fn controller_fence(
    broker: &Broker,
    api: &'static str,
    controller_id: i32,
    controller_epoch: i32,
    broker_epoch: i64,
) -> Option<i16> {
    let refused = if broker_epoch != -1 && broker_epoch < broker.metadata.broker_epoch() {
        E::StaleBrokerEpoch.code()
    } else if !broker.replicas.accept_controller_epoch(controller_epoch) {
        E::StaleControllerEpoch.code()
    } else {
        return None;
    };
    tracing::warn!(
        api,
        controller = controller_id,
        controller_epoch,
        broker_epoch,
        error_code = refused,
        "controller request refused"
    );
    Some(refused)
}

pub(crate) fn encode(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &Response,
) -> Reply {
    encode_with_files(api_key, version, correlation_id, response, Vec::new())
}

/// Encodes a response whose record-set stand-in number `i` stands for `file_ranges[i]`.
fn encode_with_files(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &Response,
    file_ranges: Vec<FetchSlice>,
) -> Reply {
    let parts = match encode_response_parts(api_key, version, correlation_id, response) {
        Ok(parts) => parts,
        Err(e) => {
            error!(error = %e, "response encoding failed");
            return Reply::Close(e.to_string());
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            FramePart::Bytes(b) => out.push(ResponsePart::Bytes(b)),
            FramePart::Gap { index, len } => match file_ranges.get(index) {
                Some(range) if range.len == len => out.push(ResponsePart::File(range.clone())),
                _ => {
                    error!(index, len, "a record-set gap with no matching file range");
                    return Reply::Close("record-set gap without its file range".into());
                }
            },
        }
    }
    Reply::Send(out)
}

/// The error code of a controller operation the metadata store refused: NOT_CONTROLLER
/// (clients then ask the controller Metadata names), STALE_BROKER_EPOCH, else
/// UNKNOWN_SERVER_ERROR.
pub(crate) fn controller_error_code(e: &crate::metadata::MetadataError) -> i16 {
    use crate::metadata::MetadataError;
    use gregor_protocol::kafka_protocol::error::ResponseError as E;
    match e {
        MetadataError::NotController => E::NotController.code(),
        MetadataError::StaleBrokerEpoch(_) => E::StaleBrokerEpoch.code(),
        _ => E::UnknownServerError.code(),
    }
}

/// A topic name for a response.
pub(crate) fn topic_name(
    s: impl Into<String>,
) -> gregor_protocol::kafka_protocol::messages::TopicName {
    gregor_protocol::kafka_protocol::messages::TopicName(str_bytes(s))
}

/// Kafka answers PRODUCER_FENCED as INVALID_PRODUCER_EPOCH to the versions of a
/// transaction API before `fenced_from` (clients that do not know the newer code).
pub(crate) fn txn_error_for_version(e: E, version: i16, fenced_from: i16) -> E {
    if e == E::ProducerFenced && version < fenced_from {
        E::InvalidProducerEpoch
    } else {
        e
    }
}

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
