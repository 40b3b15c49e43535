//! DescribeCluster (key 60): the Admin client's view of brokers and controller.

use gregor_protocol::kafka_protocol::error::ResponseError;
use gregor_protocol::kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use gregor_protocol::kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_NAME};
use crate::security::authorizer::RequestAuthorizer;

/// DescribeCluster v1+: endpoint type 1 = brokers, 2 = controllers.
const ENDPOINT_BROKERS: i8 = 1;

/// The brokers' addresses on `listener`, the one the request came in on.
pub fn handle(
    broker: &Broker,
    version: i16,
    req: DescribeClusterRequest,
    listener: &str,
    authz: RequestAuthorizer<'_>,
) -> DescribeClusterResponse {
    let image = broker.image();
    let mut resp = DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(image.cluster_id.clone()))
        .with_controller_id(image.controller_id.into())
        .with_endpoint_type(ENDPOINT_BROKERS);
    if version >= 1 && req.endpoint_type != ENDPOINT_BROKERS {
        // We have no separate controller endpoints to describe.
        return resp
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(str_bytes("Only brokers can be described")));
    }
    // Kafka: the operations when asked, none without DESCRIBE on the cluster.
    if req.include_cluster_authorized_operations {
        resp.cluster_authorized_operations = if authz.allows_cluster(AclOperation::Describe) {
            authz.authorized_operations(ResourceType::Cluster, CLUSTER_NAME)
        } else {
            0
        };
    }
    resp.brokers = image
        .brokers
        .iter()
        .filter_map(|b| {
            let at = b.endpoint(listener)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(b.id.into())
                    .with_host(str_bytes(at.host.clone()))
                    .with_port(i32::from(at.port))
                    .with_rack(b.rack.clone().map(str_bytes)),
            )
        })
        .collect();
    resp
}
