//! AlterUserScramCredentials (key 51, KIP-554): adds, replaces and deletes users' SCRAM
//! credentials (`kafka-configs.sh --alter --add-config 'SCRAM-SHA-512=[password=...]'
//! --entity-type users`). The client sends the salted password, never the password; the broker
//! keeps the stored and server keys derived from it (Kafka's `/config/users/<user>` layout),
//! and every broker uses the new credential from the next authentication on.

use std::collections::{BTreeMap, BTreeSet};

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use gregor_protocol::kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::metadata::ConfigEntity;
use crate::security::scram::{ScramCredential, ScramMechanism, MAX_ITERATIONS, MIN_ITERATIONS};

/// One change to one user's credential.
enum Change {
    Delete(ScramMechanism),
    Upsert(ScramMechanism, ScramCredential),
}

/// The answer without ALTER on the cluster: every user named refused with `code`.
pub fn refused(
    req: AlterUserScramCredentialsRequest,
    code: i16,
) -> AlterUserScramCredentialsResponse {
    let mut users: Vec<String> = Vec::new();
    let named = req
        .deletions
        .iter()
        .map(|d| d.name.to_string())
        .chain(req.upsertions.iter().map(|u| u.name.to_string()));
    for user in named {
        if !users.contains(&user) {
            users.push(user);
        }
    }
    AlterUserScramCredentialsResponse::default().with_results(
        users
            .into_iter()
            .map(|user| {
                AlterUserScramCredentialsResult::default()
                    .with_user(str_bytes(user))
                    .with_error_code(code)
                    .with_error_message(Some(str_bytes("Cluster authorization failed.")))
            })
            .collect(),
    )
}

pub async fn handle(
    broker: &Broker,
    req: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    // Validated per user first: a user with any invalid alteration gets that error, and none
    // of its alterations apply (Kafka's ZkAdminManager does the same).
    let mut errors: BTreeMap<String, (i16, String)> = BTreeMap::new();
    let mut changes: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    let mut seen: BTreeSet<(String, i8)> = BTreeSet::new();
    let mut order: Vec<String> = Vec::new();
    let note = |user: &str, order: &mut Vec<String>| {
        if !order.iter().any(|u| u == user) {
            order.push(user.to_string());
        }
    };
    for d in &req.deletions {
        let user = d.name.to_string();
        note(&user, &mut order);
        if !seen.insert((user.clone(), d.mechanism)) {
            errors.insert(
                user,
                (
                    E::DuplicateResource.code(),
                    "A user credential cannot be altered twice in the same request".into(),
                ),
            );
            continue;
        }
        match check(&user, d.mechanism, None) {
            Ok(m) => changes.entry(user).or_default().push(Change::Delete(m)),
            Err(e) => {
                errors.entry(user).or_insert(e);
            }
        }
    }
    for u in &req.upsertions {
        let user = u.name.to_string();
        note(&user, &mut order);
        if !seen.insert((user.clone(), u.mechanism)) {
            errors.insert(
                user,
                (
                    E::DuplicateResource.code(),
                    "A user credential cannot be altered twice in the same request".into(),
                ),
            );
            continue;
        }
        match check(&user, u.mechanism, Some(u.iterations)) {
            Ok(m) => {
                if u.salt.is_empty() || u.salted_password.is_empty() {
                    errors.entry(user).or_insert((
                        E::UnacceptableCredential.code(),
                        "Salt and salted password must not be empty".into(),
                    ));
                    continue;
                }
                let credential = ScramCredential::from_salted_password(
                    m,
                    &u.salted_password,
                    u.salt.to_vec(),
                    u.iterations,
                );
                changes
                    .entry(user)
                    .or_default()
                    .push(Change::Upsert(m, credential));
            }
            Err(e) => {
                errors.entry(user).or_insert(e);
            }
        }
    }
    let mut results = Vec::new();
    for user in order {
        let result = AlterUserScramCredentialsResult::default().with_user(str_bytes(user.clone()));
        if let Some((code, message)) = errors.get(&user) {
            results.push(
                result
                    .with_error_code(*code)
                    .with_error_message(Some(str_bytes(message.clone()))),
            );
            continue;
        }
        let outcome = apply(broker, &user, changes.remove(&user).unwrap_or_default()).await;
        results.push(match outcome {
            Ok(()) => result,
            Err((code, message)) => result
                .with_error_code(code)
                .with_error_message(Some(str_bytes(message))),
        });
    }
    AlterUserScramCredentialsResponse::default().with_results(results)
}

/// Kafka's checks of one alteration: a user name, a known mechanism, iterations in bounds.
fn check(
    user: &str,
    mechanism: i8,
    iterations: Option<i32>,
) -> Result<ScramMechanism, (i16, String)> {
    if user.is_empty() {
        return Err((
            E::UnacceptableCredential.code(),
            "Username must not be empty".into(),
        ));
    }
    let m = ScramMechanism::from_id(mechanism).ok_or_else(|| {
        (
            E::UnsupportedSaslMechanism.code(),
            "Unknown SCRAM mechanism".into(),
        )
    })?;
    match iterations {
        Some(i) if i < MIN_ITERATIONS => Err((
            E::UnacceptableCredential.code(),
            "Too few iterations".into(),
        )),
        Some(i) if i > MAX_ITERATIONS => Err((
            E::UnacceptableCredential.code(),
            "Too many iterations".into(),
        )),
        _ => Ok(m),
    }
}

/// Reads the user's configs, applies the changes, writes them back.
async fn apply(broker: &Broker, user: &str, changes: Vec<Change>) -> Result<(), (i16, String)> {
    let storage = |e: crate::metadata::MetadataError| (E::UnknownServerError.code(), e.to_string());
    let mut config = broker
        .metadata
        .user_config(user.to_string())
        .await
        .map_err(storage)?;
    for change in changes {
        match change {
            Change::Delete(m) => {
                if config.remove(m.name()).is_none() {
                    return Err((
                        E::ResourceNotFound.code(),
                        "Attempt to delete a user credential that does not exist".into(),
                    ));
                }
            }
            Change::Upsert(m, credential) => {
                config.insert(m.name().to_string(), credential.encode());
            }
        }
    }
    broker
        .metadata
        .set_entity_config(ConfigEntity::user(user), config)
        .await
        .map_err(storage)
}
