//! UpdateFeatures (key 57): `kafka-features.sh upgrade|downgrade` finalizes a feature's level
//! for the whole cluster (KIP-584), at the controller (NOT_CONTROLLER elsewhere; clients
//! send it to the controller Metadata names). Needs ALTER on the cluster. The only feature
//! gregor knows is `transaction.version` (0-2, KIP-890); in ZooKeeper mode a level is
//! finalized only if every live broker's registration supports it (so never while a Kafka
//! 3.9 broker is in the cluster), and written to `/feature`.
//!
//! Kafka's rules: a level below the finalized one needs a downgrade (v0 `allow_downgrade`,
//! v1+ `upgrade_type` 2 or 3), a downgrade may not raise the level, level 0 removes the
//! feature. v0-1 answer per feature; v2 only at the top.

use gregor_protocol::kafka_protocol::error::ResponseError as E;
use gregor_protocol::kafka_protocol::messages::update_features_request::FeatureUpdateKey;
use gregor_protocol::kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use gregor_protocol::kafka_protocol::messages::{UpdateFeaturesRequest, UpdateFeaturesResponse};
use tracing::info;

use super::str_bytes;
use crate::broker::Broker;
use crate::metadata::{MetadataError, MAX_TRANSACTION_VERSION, TRANSACTION_VERSION_FEATURE};

/// Kafka's `FeatureUpdate.UpgradeType`.
const UPGRADE: i8 = 1;
const SAFE_DOWNGRADE: i8 = 2;
const UNSAFE_DOWNGRADE: i8 = 3;
/// The first version answering only at the top.
const NO_RESULTS_FROM: i16 = 2;

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: UpdateFeaturesRequest,
) -> UpdateFeaturesResponse {
    let mut outcomes = Vec::with_capacity(req.feature_updates.len());
    for update in &req.feature_updates {
        let outcome = match check(broker, version, update) {
            Ok(level) => {
                let name = update.feature.to_string();
                store(broker, name, level, req.validate_only).await
            }
            Err(e) => Err(e),
        };
        outcomes.push((update.feature.to_string(), outcome));
    }
    answer(version, outcomes)
}

/// What UpdateFeatures answers without ALTER on the cluster.
pub fn refused(version: i16, req: &UpdateFeaturesRequest) -> UpdateFeaturesResponse {
    let outcomes = req
        .feature_updates
        .iter()
        .map(|u| {
            let message = "not authorized to alter the cluster".to_string();
            (
                u.feature.to_string(),
                Err((E::ClusterAuthorizationFailed, message)),
            )
        })
        .collect();
    answer(version, outcomes)
}

type Outcome = Result<(), (E, String)>;

/// The level to finalize, or why not.
fn check(broker: &Broker, version: i16, update: &FeatureUpdateKey) -> Result<i16, (E, String)> {
    let name = update.feature.as_str();
    let level = update.max_version_level;
    let invalid = |message: String| Err((E::InvalidUpdateVersion, message));
    let upgrade_type = if version == 0 {
        if update.allow_downgrade {
            SAFE_DOWNGRADE
        } else {
            UPGRADE
        }
    } else {
        update.upgrade_type
    };
    if !(UPGRADE..=UNSAFE_DOWNGRADE).contains(&upgrade_type) {
        return Err((
            E::InvalidRequest,
            format!("unknown upgrade type {upgrade_type}"),
        ));
    }
    if name != TRANSACTION_VERSION_FEATURE {
        return invalid(format!("feature {name} is not supported by this broker"));
    }
    let level = level.max(0);
    if level > MAX_TRANSACTION_VERSION {
        return invalid(format!(
            "invalid update version {level} for feature {name}: supported 0-{MAX_TRANSACTION_VERSION}"
        ));
    }
    let current = broker
        .image()
        .finalized_features
        .levels
        .get(name)
        .copied()
        .unwrap_or(0);
    if level < current && upgrade_type == UPGRADE {
        return invalid(format!(
            "can't downgrade {name} from {current} to {level} without a downgrade type"
        ));
    }
    if level > current && upgrade_type != UPGRADE {
        return invalid(format!(
            "can't downgrade {name} from {current} to a newer version {level}"
        ));
    }
    Ok(level)
}

async fn store(broker: &Broker, name: String, level: i16, validate_only: bool) -> Outcome {
    let stored = broker
        .metadata
        .update_finalized_feature(name.clone(), level, validate_only)
        .await;
    match stored {
        Ok(()) => {
            if !validate_only {
                info!(feature = %name, level, "finalized feature level changed");
            }
            Ok(())
        }
        Err(MetadataError::NotController) => {
            Err((E::NotController, "this broker is not the controller".into()))
        }
        Err(MetadataError::InvalidUpdateVersion(message)) => {
            Err((E::InvalidUpdateVersion, message))
        }
        Err(e) => Err((E::UnknownServerError, e.to_string())),
    }
}

fn answer(version: i16, outcomes: Vec<(String, Outcome)>) -> UpdateFeaturesResponse {
    let first_error = outcomes.iter().find_map(|(_, o)| o.clone().err());
    let mut resp = UpdateFeaturesResponse::default();
    if version >= NO_RESULTS_FROM {
        if let Some((e, message)) = first_error {
            resp = resp
                .with_error_code(e.code())
                .with_error_message(Some(str_bytes(message)));
        }
        return resp;
    }
    // v0-1: a request-wide error only for authorization; the rest per feature.
    if let Some((E::ClusterAuthorizationFailed, message)) = &first_error {
        resp = resp
            .with_error_code(E::ClusterAuthorizationFailed.code())
            .with_error_message(Some(str_bytes(message.clone())));
    }
    resp.with_results(
        outcomes
            .into_iter()
            .map(|(name, outcome)| {
                let (code, message) = match outcome {
                    Ok(()) => (0, None),
                    Err((e, m)) => (e.code(), Some(str_bytes(m))),
                };
                UpdatableFeatureResult::default()
                    .with_feature(str_bytes(name))
                    .with_error_code(code)
                    .with_error_message(message)
            })
            .collect(),
    )
}
