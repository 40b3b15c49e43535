//! `meta.properties` in the log directory, in Kafka's format: it pins the cluster id and the
//! node id to the data, so a data directory is never served under another identity.

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

/// Returns the cluster id recorded in `dir`, writing a new file (with a fresh cluster id,
/// or `configured` if given) on first start.
pub fn load_or_create(
    dir: &Path,
    node_id: i32,
    configured: Option<&str>,
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
            Ok(cluster_id)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let cluster_id = configured
                .map(str::to_string)
                .unwrap_or_else(new_cluster_id);
            let text = format!(
                "#\n#{}\nversion=1\ncluster.id={cluster_id}\nnode.id={node_id}\n",
                "written by gregor"
            );
            gregor_log::checkpoint::write_file_atomically(&path, text.as_bytes())?;
            Ok(cluster_id)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Kafka's cluster ids are random UUIDs in its base64 form (never starting with '-').
fn new_cluster_id() -> String {
    gregor_zk::znode::new_kafka_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_id_is_stable_and_node_id_checked() {
        let dir = tempfile::tempdir().unwrap();
        let id = load_or_create(dir.path(), 0, None).unwrap();
        assert_eq!(id.len(), 22);
        assert_eq!(load_or_create(dir.path(), 0, None).unwrap(), id);
        assert!(load_or_create(dir.path(), 1, None).is_err());
        assert!(load_or_create(dir.path(), 0, Some("other")).is_err());
    }
}
