//! Produce (key 0): validate each partition's record set (one batch, as Kafka requires from
//! v3 on; structure, magic 2, CRC32C, size), check the idempotent producer's epoch and
//! sequence, append, and answer with the base offset. Batches are stored as the client sent them, straight from the request's
//! buffer; only the base offset and leader epoch in each header are written anew.

use gregor_log::{parse_record_set, LogError};
use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::produce_request::PartitionProduceData;
use gregor_protocol::kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, TopicProduceResponse,
};
use gregor_protocol::kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use tracing::debug;

use super::str_bytes;
use crate::broker::Broker;
use crate::replica::PartitionError;

pub enum Outcome {
    Respond(ProduceResponse),
    /// acks=0 and all went well: no response at all.
    Silent,
    /// acks=0 and something failed: Kafka closes the connection so the client notices.
    Close(String),
}

pub fn handle(broker: &Broker, _version: i16, req: ProduceRequest) -> Outcome {
    let acks = req.acks;
    let valid_acks = matches!(acks, -1..=1);
    let mut failed = None;
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let name = topic.name.0.to_string();
        let partition_responses = topic
            .partition_data
            .into_iter()
            .map(|data| {
                let index = data.index;
                let resp = if valid_acks {
                    produce_partition(broker, &name, data, acks)
                } else {
                    error_response(index, E::InvalidRequiredAcks.code(), None)
                };
                if resp.error_code != 0 && failed.is_none() {
                    failed = Some(format!(
                        "produce to {name}-{index} failed with error {}",
                        resp.error_code
                    ));
                }
                resp
            })
            .collect();
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partition_responses),
        );
    }
    if acks == 0 {
        return match failed {
            Some(reason) => Outcome::Close(reason),
            None => Outcome::Silent,
        };
    }
    Outcome::Respond(ProduceResponse::default().with_responses(responses))
}

fn produce_partition(
    broker: &Broker,
    topic: &str,
    data: PartitionProduceData,
    acks: i16,
) -> PartitionProduceResponse {
    let index = data.index;
    if topic == crate::group::OFFSETS_TOPIC {
        // Kafka: clients may not append to internal topics.
        return error_response(
            index,
            E::InvalidTopicException.code(),
            Some(format!("Cannot append to internal topic {topic}")),
        );
    }
    let Some(partition) = broker.replicas.partition(topic, index) else {
        return error_response(index, broker.not_leader_code(topic, index), None);
    };
    let Some(records) = data.records else {
        return error_response(
            index,
            E::CorruptMessage.code(),
            Some("null record set".into()),
        );
    };
    let result = parse_record_set(&records, partition.max_message_bytes())
        .and_then(|headers| match headers.len() {
            // Kafka's ProduceRequest.validateRecords (v3+, all we serve).
            1 => Ok(headers),
            n => Err(LogError::InvalidRecord(format!(
                "produce requests must hold exactly one record batch per partition, not {n}"
            ))),
        })
        .map_err(PartitionError::from)
        .and_then(|headers| partition.append(records, headers, acks));
    match result {
        Ok(info) => PartitionProduceResponse::default()
            .with_index(index)
            .with_base_offset(info.first_offset)
            .with_log_append_time_ms(info.log_append_time)
            .with_log_start_offset(info.log_start_offset),
        Err(e) => {
            debug!(topic, partition = index, error = %e, "produce refused");
            error_response(index, e.error_code(), Some(e.to_string()))
        }
    }
}

fn error_response(index: i32, code: i16, message: Option<String>) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(message.map(str_bytes))
}
