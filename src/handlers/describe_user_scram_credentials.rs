//! DescribeUserScramCredentials (key 50, KIP-554): which SCRAM mechanisms each user has a
//! credential for, and with how many iterations (`kafka-configs.sh --describe --entity-type
//! users`). Never the credential itself.

use std::collections::BTreeSet;

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use gregor_protocol::kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::metadata::{ConfigEntity, EntityConfig, EntityName};
use crate::security::scram::{ScramCredential, ScramMechanism};

pub async fn handle(
    broker: &Broker,
    req: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let fail = |e: String| {
        DescribeUserScramCredentialsResponse::default()
            .with_error_code(E::UnknownServerError.code())
            .with_error_message(Some(str_bytes(e)))
    };
    let requested: Vec<String> = req
        .users
        .unwrap_or_default()
        .into_iter()
        .map(|u| u.name.to_string())
        .collect();
    // An empty or null list: every user with a credential.
    let all = requested.is_empty();
    let users = if all {
        match broker.metadata.config_entities().await {
            Ok(entities) => entities
                .into_iter()
                .filter_map(|e| match e {
                    ConfigEntity {
                        user: Some(EntityName::Named(user)),
                        client_id: None,
                    } => Some(user),
                    _ => None,
                })
                .collect(),
            Err(e) => return fail(e.to_string()),
        }
    } else {
        requested.clone()
    };
    let mut seen = BTreeSet::new();
    let mut results = Vec::new();
    for user in users {
        let result =
            DescribeUserScramCredentialsResult::default().with_user(str_bytes(user.clone()));
        if !seen.insert(user.clone()) {
            if !all {
                results.push(
                    result
                        .with_error_code(E::DuplicateResource.code())
                        .with_error_message(Some(str_bytes(format!(
                            "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
                        )))),
                );
            }
            continue;
        }
        let config = match broker.metadata.user_config(user.clone()).await {
            Ok(c) => c,
            Err(e) => return fail(e.to_string()),
        };
        let infos = credential_infos(&config);
        if infos.is_empty() {
            if !all {
                results.push(
                    result
                        .with_error_code(E::ResourceNotFound.code())
                        .with_error_message(Some(str_bytes(format!(
                            "Attempt to describe a user credential that does not exist: {user}"
                        )))),
                );
            }
            continue;
        }
        results.push(result.with_credential_infos(infos));
    }
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

/// The mechanisms and iteration counts of a user's stored credentials.
fn credential_infos(config: &EntityConfig) -> Vec<CredentialInfo> {
    ScramMechanism::ALL
        .into_iter()
        .filter_map(|m| {
            let credential = ScramCredential::decode(config.get(m.name())?).ok()?;
            Some(
                CredentialInfo::default()
                    .with_mechanism(m.id())
                    .with_iterations(credential.iterations),
            )
        })
        .collect()
}
