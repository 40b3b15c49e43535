//! DescribeClientQuotas (key 48, KIP-546): the quotas of the user and client-id entities that
//! match a filter (`kafka-configs.sh --describe --entity-type users|clients`). Each filter
//! component names an entity type and matches one name (EXACT), the default entity (DEFAULT)
//! or any named one (SPECIFIED); `strict` leaves out entities with other types as well.

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use gregor_protocol::kafka_protocol::messages::describe_client_quotas_response::{
    EntityData, EntryData, ValueData,
};
use gregor_protocol::kafka_protocol::messages::{
    DescribeClientQuotasRequest, DescribeClientQuotasResponse,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::metadata::{ConfigEntity, EntityName};
use crate::security::client_quotas::{decode_quota, is_quota_key};

const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

pub async fn handle(
    broker: &Broker,
    req: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let error = |code: E, message: String| {
        DescribeClientQuotasResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(message)))
    };
    for c in &req.components {
        if c.entity_type.as_str() != "user" && c.entity_type.as_str() != "client-id" {
            return error(
                E::InvalidRequest,
                format!(
                    "Custom entity type '{}' not supported",
                    c.entity_type.as_str()
                ),
            );
        }
        if c.match_type == MATCH_EXACT && c._match.is_none() {
            return error(E::InvalidRequest, "an EXACT match needs a name".into());
        }
        if !(MATCH_EXACT..=MATCH_SPECIFIED).contains(&c.match_type) {
            return error(
                E::InvalidRequest,
                format!("unknown match type {}", c.match_type),
            );
        }
    }
    if req.components.len() == 2 && req.components[0].entity_type == req.components[1].entity_type
        || req.components.len() > 2
    {
        return error(
            E::InvalidRequest,
            "Duplicate filter component entity type".into(),
        );
    }
    let entities = match broker.metadata.config_entities().await {
        Ok(e) => e,
        Err(e) => return error(E::UnknownServerError, e.to_string()),
    };
    let mut entries = Vec::new();
    for entity in entities {
        if !matches(&entity, &req.components, req.strict) {
            continue;
        }
        let config = match broker.metadata.entity_config(entity.clone()).await {
            Ok(c) => c,
            Err(e) => return error(E::UnknownServerError, e.to_string()),
        };
        let values: Vec<ValueData> = config
            .iter()
            .filter(|(k, _)| is_quota_key(k))
            .filter_map(|(k, v)| {
                Some(
                    ValueData::default()
                        .with_key(str_bytes(k.clone()))
                        .with_value(decode_quota(v)?),
                )
            })
            .collect();
        if values.is_empty() {
            continue;
        }
        entries.push(
            EntryData::default()
                .with_entity(entity_data(&entity))
                .with_values(values),
        );
    }
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}

/// Whether `entity` passes every component (and, when strict, has no other entity type).
fn matches(entity: &ConfigEntity, components: &[ComponentData], strict: bool) -> bool {
    let name_of = |entity_type: &str| match entity_type {
        "user" => entity.user.as_ref(),
        _ => entity.client_id.as_ref(),
    };
    for c in components {
        let ok = match (name_of(c.entity_type.as_str()), c.match_type) {
            (Some(EntityName::Named(n)), MATCH_EXACT) => {
                c._match.as_ref().is_some_and(|m| m.as_str() == n)
            }
            (Some(EntityName::Default), MATCH_DEFAULT) => true,
            (Some(EntityName::Named(_)), MATCH_SPECIFIED) => true,
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    if strict {
        let types = usize::from(entity.user.is_some()) + usize::from(entity.client_id.is_some());
        return types == components.len();
    }
    true
}

/// The entity as the response names it: the default entity has a null name.
fn entity_data(entity: &ConfigEntity) -> Vec<EntityData> {
    let name = |n: &EntityName| match n {
        EntityName::Named(s) => Some(str_bytes(s.clone())),
        EntityName::Default => None,
    };
    let mut out = Vec::new();
    if let Some(u) = &entity.user {
        out.push(
            EntityData::default()
                .with_entity_type(str_bytes("user"))
                .with_entity_name(name(u)),
        );
    }
    if let Some(c) = &entity.client_id {
        out.push(
            EntityData::default()
                .with_entity_type(str_bytes("client-id"))
                .with_entity_name(name(c)),
        );
    }
    out
}
