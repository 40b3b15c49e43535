//! Dynamic broker config changes: AlterConfigs and IncrementalAlterConfigs on BROKER
//! resources, as Kafka's ZooKeeper-mode `ZkAdminManager` makes them. The resource named ""
//! is the cluster-wide default (`/config/brokers/<default>`), this broker's id is this broker
//! (`/config/brokers/<id>`); another id is refused (the Admin client sends a broker's
//! resource to that broker). A change is checked (`config::dynamic::check_update`), written to
//! the metadata store and applied here at once; other brokers apply it when their image shows
//! it (Kafka brokers through the `/config/changes` notification).

use std::collections::BTreeMap;

use tracing::info;

use crate::config::dynamic::check_update;
use crate::config::BrokerEntity;
use crate::topic_admin::{AdminError, TopicAdminContext};

/// The entity a BROKER resource name stands for on this broker.
pub fn resolve_entity(resource_name: &str, own_id: i32) -> Result<BrokerEntity, AdminError> {
    if resource_name.is_empty() {
        return Ok(BrokerEntity::Default);
    }
    let id: i32 = resource_name.parse().map_err(|_| {
        AdminError::InvalidRequest(format!(
            "Broker id must be an integer, but it is: {resource_name}"
        ))
    })?;
    if id != own_id {
        return Err(AdminError::InvalidRequest(format!(
            "Unexpected broker id, expected {own_id}, but received {resource_name}"
        )));
    }
    Ok(BrokerEntity::Broker(id))
}

/// Changes the dynamic configs of the BROKER resource `resource_name`: `change` edits the
/// stored configs of its entity; the result replaces them unless `validate_only`.
pub async fn alter_broker_configs(
    broker: &impl TopicAdminContext,
    resource_name: &str,
    change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), AdminError>,
    validate_only: bool,
) -> Result<(), AdminError> {
    let entity = resolve_entity(resource_name, broker.config().broker_id)?;
    let _guard = broker.admin_lock().lock().await;
    let image = broker.image();
    let current = &image.dynamic_broker_configs;
    let before = current.of(entity);
    let mut configs = before.clone();
    change(&mut configs)?;
    check_update(broker.config(), current, entity, &configs).map_err(|e| {
        AdminError::InvalidRequest(format!(
            "Invalid config value for resource ConfigResource(type=BROKER, name='{resource_name}'): {e}"
        ))
    })?;
    if validate_only || configs == before {
        return Ok(());
    }
    broker
        .metadata()
        .set_broker_configs(entity, configs)
        .await?;
    crate::blocking::run(|| broker.sync_replicas())
        .map_err(|e| AdminError::Storage(e.to_string()))?;
    info!(entity = %entity, "altered dynamic broker configs");
    Ok(())
}
