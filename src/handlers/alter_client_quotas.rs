//! AlterClientQuotas (key 49, KIP-546): sets and removes quotas of user and client-id
//! entities (`kafka-configs.sh --alter --add-config 'producer_byte_rate=1048576'
//! --entity-type clients --entity-name c1`), stored where Kafka stores them. Quotas are
//! stored and described; gregor does not enforce them yet.

use std::collections::BTreeSet;

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::alter_client_quotas_request::EntryData as RequestEntry;
use gregor_protocol::kafka_protocol::messages::alter_client_quotas_response::{
    EntityData, EntryData,
};
use gregor_protocol::kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::metadata::{ConfigEntity, EntityName};
use crate::security::client_quotas::encode_quota;

pub async fn handle(broker: &Broker, req: AlterClientQuotasRequest) -> AlterClientQuotasResponse {
    let mut entries = Vec::with_capacity(req.entries.len());
    for entry in req.entries {
        let echoed: Vec<EntityData> = entry
            .entity
            .iter()
            .map(|e| {
                EntityData::default()
                    .with_entity_type(e.entity_type.clone())
                    .with_entity_name(e.entity_name.clone())
            })
            .collect();
        let outcome = alter(broker, &entry, req.validate_only).await;
        let answer = EntryData::default().with_entity(echoed);
        entries.push(match outcome {
            Ok(()) => answer,
            Err((code, message)) => answer
                .with_error_code(code.code())
                .with_error_message(Some(str_bytes(message))),
        });
    }
    AlterClientQuotasResponse::default().with_entries(entries)
}

/// The answer without ALTER_CONFIGS on the cluster: every entry refused with `code`.
pub fn refused(req: AlterClientQuotasRequest, code: i16) -> AlterClientQuotasResponse {
    AlterClientQuotasResponse::default().with_entries(
        req.entries
            .into_iter()
            .map(|entry| {
                EntryData::default()
                    .with_entity(
                        entry
                            .entity
                            .into_iter()
                            .map(|e| {
                                EntityData::default()
                                    .with_entity_type(e.entity_type)
                                    .with_entity_name(e.entity_name)
                            })
                            .collect(),
                    )
                    .with_error_code(code)
                    .with_error_message(Some(str_bytes("Cluster authorization failed.")))
            })
            .collect(),
    )
}

async fn alter(
    broker: &Broker,
    entry: &RequestEntry,
    validate_only: bool,
) -> Result<(), (E, String)> {
    let mut entity = ConfigEntity {
        user: None,
        client_id: None,
    };
    for e in &entry.entity {
        let name = match &e.entity_name {
            Some(n) => EntityName::Named(n.to_string()),
            None => EntityName::Default,
        };
        let slot = match e.entity_type.as_str() {
            "user" => &mut entity.user,
            "client-id" => &mut entity.client_id,
            other => {
                return Err((
                    E::InvalidRequest,
                    format!("Unhandled client quota entity type: {other}"),
                ))
            }
        };
        if slot.replace(name).is_some() {
            return Err((
                E::InvalidRequest,
                format!("Duplicate {} entity", e.entity_type.as_str()),
            ));
        }
    }
    if entity.user.is_none() && entity.client_id.is_none() {
        return Err((
            E::InvalidRequest,
            "Invalid empty client quota entity".into(),
        ));
    }
    let mut keys = BTreeSet::new();
    let mut changes = Vec::new();
    for op in &entry.ops {
        let key = op.key.to_string();
        if !keys.insert(key.clone()) {
            return Err((E::InvalidRequest, format!("Duplicate quota key {key}")));
        }
        let value = if op.remove {
            None
        } else {
            Some(encode_quota(&key, op.value).map_err(|m| (E::InvalidRequest, m))?)
        };
        // A removal of an unknown key is refused like a set.
        if op.remove {
            encode_quota(&key, 1.0).map_err(|m| (E::InvalidRequest, m))?;
        }
        changes.push((key, value));
    }
    if validate_only {
        return Ok(());
    }
    let storage = |e: crate::metadata::MetadataError| (E::UnknownServerError, e.to_string());
    let mut config = broker
        .metadata
        .entity_config(entity.clone())
        .await
        .map_err(storage)?;
    for (key, value) in changes {
        match value {
            Some(v) => config.insert(key, v),
            None => config.remove(&key),
        };
    }
    broker
        .metadata
        .set_entity_config(entity, config)
        .await
        .map_err(storage)
}
