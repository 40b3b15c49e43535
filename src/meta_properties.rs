//! `meta.properties` in the log directory, in Kafka's format: it pins the cluster id and the
//! node id to the data, so a data directory is never served under another identity.
//!
//! Kafka has two versions: 0 (`broker.id`), the only one a ZooKeeper-mode broker accepts,
//! and 1 (`node.id`, KRaft). gregor reads both and writes the one its mode implies: version 0
//! with `zookeeper.connect` (so that a Kafka 3.9 broker can take the directory over, and a
//! version 1 file is rewritten as version 0, as Kafka rewrites it at start), version 1
//! standalone.

use std::path::Path;

use anyhow::{bail, Context};

const FILE_NAME: &str = "meta.properties";

/// The node id recorded in `dir`'s meta.properties, if any (for `broker.id=-1`: a broker
/// keeps the id it was generated on its first start, as Kafka does).
pub fn stored_node_id(dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(dir.join(FILE_NAME)).ok()?;
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| matches!(k.trim(), "node.id" | "broker.id"))
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// Which of Kafka's two versions a broker writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// Version 0, `broker.id` (Kafka's ZooKeeper mode).
    ZooKeeper,
    /// Version 1, `node.id` (KRaft; gregor standalone).
    Standalone,
}

/// Returns the cluster id recorded in `dir`, writing a new file (with a fresh cluster id,
/// or `configured` if given) on first start, or rewriting one of the other version.
pub fn load_or_create(
    dir: &Path,
    node_id: i32,
    configured: Option<&str>,
    version: Version,
) -> anyhow::Result<String> {
    let path = dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let value = |key: &str| {
                text.lines()
                    .filter_map(|l| l.split_once('='))
                    .find(|(k, _)| k.trim() == key)
                    .map(|(_, v)| v.trim().to_string())
            };
            let cluster_id = value("cluster.id")
                .with_context(|| format!("{} has no cluster.id", path.display()))?;
            if let Some(stored) = value("node.id").or_else(|| value("broker.id")) {
                if stored != node_id.to_string() {
                    bail!(
                        "{} belongs to node {stored}, but broker.id is {node_id}",
                        path.display()
                    );
                }
            }
            if let Some(c) = configured {
                if c != cluster_id {
                    bail!(
                        "{} has cluster.id {cluster_id}, configured {c}",
                        path.display()
                    );
                }
            }
            let wanted = match version {
                Version::ZooKeeper => "0",
                Version::Standalone => "1",
            };
            // Only ZooKeeper mode rewrites: Kafka's ZooKeeper-mode broker refuses version 1,
            // while a standalone gregor reads a version 0 directory as it is.
            if version == Version::ZooKeeper && value("version").as_deref() != Some(wanted) {
                write(&path, &cluster_id, node_id, version)?;
            }
            Ok(cluster_id)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let cluster_id = configured
                .map(str::to_string)
                .unwrap_or_else(new_cluster_id);
            write(&path, &cluster_id, node_id, version)?;
            Ok(cluster_id)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn write(path: &Path, cluster_id: &str, node_id: i32, version: Version) -> anyhow::Result<()> {
    let text = match version {
        Version::ZooKeeper => {
            format!(
                "#\n#written by gregor\nbroker.id={node_id}\nversion=0\ncluster.id={cluster_id}\n"
            )
        }
        Version::Standalone => {
            format!(
                "#\n#written by gregor\nversion=1\ncluster.id={cluster_id}\nnode.id={node_id}\n"
            )
        }
    };
    gregor_log::checkpoint::write_file_atomically(path, text.as_bytes())?;
    Ok(())
}

/// Kafka's cluster ids are random UUIDs in its base64 form (never starting with '-').
fn new_cluster_id() -> String {
    gregor_zk::znode::new_kafka_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SA: Version = Version::Standalone;

    #[test]
    fn cluster_id_is_stable_and_node_id_checked() {
        let dir = tempfile::tempdir().unwrap();
        let id = load_or_create(dir.path(), 0, None, SA).unwrap();
        assert_eq!(id.len(), 22);
        assert_eq!(load_or_create(dir.path(), 0, None, SA).unwrap(), id);
        assert!(load_or_create(dir.path(), 1, None, SA).is_err());
        assert!(load_or_create(dir.path(), 0, Some("other"), SA).is_err());
    }

    #[test]
    fn zookeeper_mode_writes_and_rewrites_version_0_and_reads_kafkas_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let id = load_or_create(dir.path(), 3, None, SA).unwrap();
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("node.id=3"));
        // Taken over in ZooKeeper mode: rewritten as Kafka's ZooKeeper mode wants it.
        assert_eq!(
            load_or_create(dir.path(), 3, Some(&id), Version::ZooKeeper).unwrap(),
            id
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("version=0") && text.contains("broker.id=3"),
            "{text}"
        );
        assert!(!text.contains("node.id"), "{text}");
        // Kafka 3.9's own file, as a ZooKeeper-mode Kafka broker writes it.
        std::fs::write(
            &path,
            "#\n#Sun Dec 06 08:11:28 UTC 2026\nbroker.id=1\nversion=0\ncluster.id=oeZLnQCmT0a-O6pEdGHmZw\n",
        )
        .unwrap();
        assert_eq!(stored_node_id(dir.path()), Some(1));
        assert_eq!(
            load_or_create(
                dir.path(),
                1,
                Some("oeZLnQCmT0a-O6pEdGHmZw"),
                Version::ZooKeeper
            )
            .unwrap(),
            "oeZLnQCmT0a-O6pEdGHmZw"
        );
        assert!(load_or_create(dir.path(), 2, None, Version::ZooKeeper).is_err());
        // Standalone reads it as it is.
        assert_eq!(
            load_or_create(dir.path(), 1, None, SA).unwrap(),
            "oeZLnQCmT0a-O6pEdGHmZw"
        );
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("version=0"));
    }
}
