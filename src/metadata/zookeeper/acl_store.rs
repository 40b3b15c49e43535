//! ACLs in ZooKeeper, where and how Kafka's `AclAuthorizer` keeps them: a literal pattern at
//! `/kafka-acl/<Type>/<name>`, a prefixed one at `/kafka-acl-extended/prefixed/<Type>/<name>`,
//! each change announced by a sequential `acl_changes_<seq>` in `/kafka-acl-changes` (text
//! `TOPIC:name`) or `/kafka-acl-extended-changes` (JSON), which every broker follows.

use std::collections::BTreeSet;
use std::time::Duration;

use gregor_zk::{paths, ExtendedAclChangeEvent, ResourceAcls, ZkClient, ZkError, ZkEvent};
use tracing::warn;

use crate::metadata::{
    acl_entry_from_stored, acl_entry_to_stored, AclChangeCursor, AclEdit, AclUpdate, MetadataError,
};
use crate::security::acl::{AccessControlEntry, PatternType, ResourcePattern, ResourceType};
use crate::security::authorizer::AclTable;

/// Kafka's `maxUpdateRetries`: conditional writes that keep losing the race give up.
const MAX_UPDATE_RETRIES: u32 = 10;
/// Notifications older than this are deleted (Kafka's `changeExpirationMs`).
const CHANGE_EXPIRATION_MS: i64 = 15 * 60 * 1000;

fn root(pattern_type: PatternType) -> Option<&'static str> {
    match pattern_type {
        PatternType::Literal => Some(paths::KAFKA_ACL),
        PatternType::Prefixed => Some(paths::KAFKA_ACL_PREFIXED),
        _ => None,
    }
}

fn znode_path(pattern: &ResourcePattern) -> Result<String, MetadataError> {
    let root = root(pattern.pattern_type).ok_or_else(|| {
        MetadataError::Storage(format!("ACLs cannot be stored for pattern {pattern}"))
    })?;
    Ok(format!(
        "{root}/{}/{}",
        pattern.resource_type.zk_name(),
        pattern.name
    ))
}

fn zk_err(e: ZkError) -> MetadataError {
    MetadataError::Storage(e.to_string())
}

fn decode_entries(path: &str, acls: &ResourceAcls) -> BTreeSet<AccessControlEntry> {
    acls.acls
        .iter()
        .filter_map(|e| {
            let entry = acl_entry_from_stored(e);
            if entry.is_none() {
                warn!(
                    path,
                    ?e,
                    "ignoring an ACL with an unknown operation or permission type"
                );
            }
            entry
        })
        .collect()
}

/// Every stored ACL. Resource types this broker does not know are skipped, as Kafka does.
pub(super) async fn load_all(zk: &ZkClient) -> Result<AclTable, ZkError> {
    zk.create_acl_paths().await?;
    let mut table = AclTable::new();
    for pattern_type in [PatternType::Literal, PatternType::Prefixed] {
        let Some(root) = root(pattern_type) else {
            continue;
        };
        for (type_name, name) in zk.list_acl_resources(root).await? {
            let Some(resource_type) = ResourceType::parse(&type_name) else {
                warn!(resource_type = %type_name, "ignoring ACLs of an unknown resource type");
                continue;
            };
            let path = format!("{root}/{type_name}/{name}");
            if let Some((acls, _)) = zk.get_resource_acls(&path).await? {
                let entries = decode_entries(&path, &acls);
                if !entries.is_empty() {
                    table.insert(
                        ResourcePattern {
                            resource_type,
                            pattern_type,
                            name,
                        },
                        entries,
                    );
                }
            }
        }
    }
    Ok(table)
}

/// One resource's stored ACLs and its znode's version (`None`: no znode).
pub(super) async fn read_resource(
    zk: &ZkClient,
    pattern: &ResourcePattern,
) -> Result<(BTreeSet<AccessControlEntry>, Option<i32>), MetadataError> {
    let path = znode_path(pattern)?;
    Ok(match zk.get_resource_acls(&path).await.map_err(zk_err)? {
        Some((acls, version)) => (decode_entries(&path, &acls), Some(version)),
        None => (BTreeSet::new(), None),
    })
}

/// Kafka's `updateResourceAcls`: read, edit, write conditionally, retry on a lost race; a
/// real change is announced to the other brokers.
pub(super) async fn update(
    zk: &ZkClient,
    pattern: &ResourcePattern,
    edit: &AclEdit,
) -> Result<AclUpdate, MetadataError> {
    let path = znode_path(pattern)?;
    for attempt in 0..=MAX_UPDATE_RETRIES {
        let (before, version) = read_resource(zk, pattern).await?;
        let after = edit(&before);
        if after == before {
            return Ok(AclUpdate { before, after });
        }
        let acls = ResourceAcls::new(after.iter().map(acl_entry_to_stored).collect());
        if zk
            .write_resource_acls(&path, &acls, version)
            .await
            .map_err(zk_err)?
        {
            announce(zk, pattern).await.map_err(zk_err)?;
            return Ok(AclUpdate { before, after });
        }
        // Kafka backs off 100-150 ms before re-reading.
        tokio::time::sleep(Duration::from_millis(100 + u64::from(attempt) * 5)).await;
    }
    Err(MetadataError::Storage(format!(
        "could not update the ACLs of {pattern} after {MAX_UPDATE_RETRIES} attempts"
    )))
}

async fn announce(zk: &ZkClient, pattern: &ResourcePattern) -> Result<String, ZkError> {
    match pattern.pattern_type {
        PatternType::Literal => {
            let text = format!("{}:{}", pattern.resource_type.enum_name(), pattern.name);
            zk.announce_acl_change(paths::KAFKA_ACL_CHANGES, text.as_bytes())
                .await
        }
        _ => {
            let event = ExtendedAclChangeEvent {
                version: ExtendedAclChangeEvent::VERSION,
                resource_type: pattern.resource_type.enum_name().to_string(),
                name: pattern.name.clone(),
                pattern_type: pattern.pattern_type.enum_name().to_string(),
            };
            zk.announce_acl_change(paths::KAFKA_ACL_EXTENDED_CHANGES, &event.encode())
                .await
        }
    }
}

/// One signal per change of either notification directory's children (ZooKeeper watches),
/// until the session ends.
pub(super) fn change_signals(zk: &ZkClient) -> tokio::sync::mpsc::Receiver<()> {
    let mut literal = zk.watch_children(paths::KAFKA_ACL_CHANGES);
    let mut prefixed = zk.watch_children(paths::KAFKA_ACL_EXTENDED_CHANGES);
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                e = literal.recv() => e,
                e = prefixed.recv() => e,
                _ = tx.closed() => return,
            };
            match event {
                None => return,
                Some(ZkEvent::Session(s)) if s.is_terminal() => return,
                // Full: a signal is already pending, which covers this change too.
                Some(_) => {
                    let _ = tx.try_send(());
                }
            }
        }
    });
    rx
}

/// The resources named by notifications newer than the cursor; expired notifications are
/// deleted on the way (as each Kafka broker's change listener does).
pub(super) async fn changes_since(
    zk: &ZkClient,
    cursor: AclChangeCursor,
) -> Result<(AclChangeCursor, Vec<ResourcePattern>), ZkError> {
    let fresh = cursor.literal.is_none() && cursor.prefixed.is_none();
    let mut changed = Vec::new();
    let mut next = AclChangeCursor::default();
    for (root, seen, literal) in [
        (paths::KAFKA_ACL_CHANGES, &cursor.literal, true),
        (paths::KAFKA_ACL_EXTENDED_CHANGES, &cursor.prefixed, false),
    ] {
        let names = zk.get_children(root).await?;
        let newest = names.last().cloned().or_else(|| seen.clone());
        if !fresh {
            for name in names
                .iter()
                .filter(|n| seen.as_ref().is_none_or(|s| *n > s))
            {
                let path = format!("{root}/{name}");
                let Some((data, _)) = zk.get_acl_change(&path).await? else {
                    continue;
                };
                match decode_change(literal, &data) {
                    Some(p) => changed.push(p),
                    None => warn!(path, "ignoring an ACL change notification it cannot read"),
                }
            }
        }
        // Oldest first: stop at the first one young enough to keep.
        let now_ms = crate::clock::now_ms();
        for name in &names {
            let path = format!("{root}/{name}");
            match zk.get_acl_change(&path).await? {
                Some((_, ctime)) if now_ms - ctime > CHANGE_EXPIRATION_MS => {
                    zk.delete_acl_change(&path).await?
                }
                Some(_) => break,
                None => {}
            }
        }
        if literal {
            next.literal = newest.or_else(|| Some(String::new()));
        } else {
            next.prefixed = newest.or_else(|| Some(String::new()));
        }
    }
    Ok((next, changed))
}

fn decode_change(literal: bool, data: &[u8]) -> Option<ResourcePattern> {
    if literal {
        let text = std::str::from_utf8(data).ok()?;
        let (resource_type, name) = text.split_once(':')?;
        Some(ResourcePattern::literal(
            ResourceType::parse(resource_type)?,
            name,
        ))
    } else {
        let event = ExtendedAclChangeEvent::decode(paths::KAFKA_ACL_EXTENDED_CHANGES, data).ok()?;
        Some(ResourcePattern {
            resource_type: ResourceType::parse(&event.resource_type)?,
            pattern_type: PatternType::parse(&event.pattern_type)?,
            name: event.name,
        })
    }
}
