//! gregor-zk: typed access to the znodes Apache Kafka used in ZooKeeper mode.
//!
//! Scaffolding for now: the single-node broker keeps its metadata embedded in the data
//! directory. The cluster-mode issue fills this crate with broker registration, topic
//! assignment, partition state and controller election on the `zookeeper-client` crate.
//! The paths below are Kafka's, so that the layout is fixed from the first day.

/// Kafka's znode paths (ZooKeeper mode, 3.x), relative to the chroot.
pub mod paths {
    pub const BROKER_IDS: &str = "/brokers/ids";
    pub const BROKER_TOPICS: &str = "/brokers/topics";
    pub const BROKER_SEQID: &str = "/brokers/seqid";
    pub const CONTROLLER: &str = "/controller";
    pub const CONTROLLER_EPOCH: &str = "/controller_epoch";
    pub const CONFIG_TOPICS: &str = "/config/topics";
    pub const CONFIG_CHANGES: &str = "/config/changes";
    pub const ADMIN_DELETE_TOPICS: &str = "/admin/delete_topics";
    pub const CLUSTER_ID: &str = "/cluster/id";
    pub const LATEST_PRODUCER_ID_BLOCK: &str = "/latest_producer_id_block";

    /// `/brokers/topics/<topic>/partitions/<partition>/state`
    pub fn partition_state(topic: &str, partition: i32) -> String {
        format!("{BROKER_TOPICS}/{topic}/partitions/{partition}/state")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn partition_state_path_matches_kafka() {
        assert_eq!(
            super::paths::partition_state("orders", 3),
            "/brokers/topics/orders/partitions/3/state"
        );
    }
}
