//! `gregor cluster ...`: the cluster as Metadata describes it.
//!
//! - `gregor cluster info --bootstrap-server HOST:PORT`: the cluster id, the controller, the
//!   brokers, and the number of topics and partitions, with those under-replicated or without
//!   a leader.
//! - `gregor cluster health --bootstrap-server HOST:PORT [--wait-ms N]`: healthy when every
//!   partition has a leader and a whole ISR, and every replica's broker is registered. It
//!   exits 0 when healthy, 1 when not (after waiting up to N ms for it), 2 on a usage error.
//!   `scripts/cluster.sh rolling-restart` waits on it between brokers, as operators wait for
//!   no under-replicated partitions before restarting the next Kafka broker.

use std::time::{Duration, Instant};

use super::{Session, Target};

/// What Metadata said about the cluster.
#[derive(Debug, Default, PartialEq)]
pub(super) struct ClusterReport {
    cluster_id: Option<String>,
    controller: i32,
    /// (id, host:port, rack)
    brokers: Vec<(i32, String, Option<String>)>,
    topics: usize,
    partitions: usize,
    /// `topic-partition` with fewer ISR members than replicas, or a replica on a broker
    /// that is not registered.
    under_replicated: Vec<String>,
    /// `topic-partition` without a leader.
    leaderless: Vec<String>,
}

impl ClusterReport {
    fn healthy(&self) -> bool {
        self.controller >= 0 && self.under_replicated.is_empty() && self.leaderless.is_empty()
    }
}

/// `gregor cluster info`.
pub(super) async fn info(target: &Target) -> anyhow::Result<i32> {
    let report = describe(target).await?;
    print!("{}", render(&report));
    Ok(0)
}

/// Asks until healthy or `wait` has passed; prints the last answer.
pub(super) async fn health(target: &Target, wait: Duration) -> i32 {
    let deadline = Instant::now() + wait;
    loop {
        let answer = describe(target).await;
        let healthy = answer.as_ref().is_ok_and(ClusterReport::healthy);
        if healthy || Instant::now() >= deadline {
            match answer {
                Ok(report) => {
                    println!("healthy: {}", report.healthy());
                    print!("{}", render(&report));
                }
                Err(e) => {
                    println!("healthy: false");
                    println!("error: {e}");
                }
            }
            return if healthy { 0 } else { 1 };
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn describe(target: &Target) -> anyhow::Result<ClusterReport> {
    let mut session = Session::connect(target).await?;
    let md = session.metadata(None).await?;
    let registered: Vec<i32> = md.brokers.iter().map(|b| b.node_id.0).collect();
    let mut report = ClusterReport {
        cluster_id: md.cluster_id.map(|c| c.to_string()),
        controller: md.controller_id.0,
        brokers: md
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id.0,
                    format!("{}:{}", b.host.as_str(), b.port),
                    b.rack.as_ref().map(|r| r.to_string()),
                )
            })
            .collect(),
        ..ClusterReport::default()
    };
    report.brokers.sort();
    for t in &md.topics {
        let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
        report.topics += 1;
        for p in &t.partitions {
            report.partitions += 1;
            let id = format!("{name}-{}", p.partition_index);
            if p.leader_id.0 < 0 {
                report.leaderless.push(id.clone());
            }
            let missing = p.replica_nodes.iter().any(|r| !registered.contains(&r.0));
            if p.isr_nodes.len() < p.replica_nodes.len() || missing {
                report.under_replicated.push(id);
            }
        }
    }
    report.under_replicated.sort();
    report.leaderless.sort();
    Ok(report)
}

fn render(r: &ClusterReport) -> String {
    let mut out = String::new();
    out += &format!("cluster id: {}\n", r.cluster_id.as_deref().unwrap_or("-"));
    out += &format!("controller: {}\n", r.controller);
    out += &format!("brokers: {}\n", r.brokers.len());
    for (id, address, rack) in &r.brokers {
        match rack {
            Some(rack) => out += &format!("  {id} {address} rack={rack}\n"),
            None => out += &format!("  {id} {address}\n"),
        }
    }
    out += &format!("topics: {}\n", r.topics);
    out += &format!("partitions: {}\n", r.partitions);
    out += &format!(
        "under-replicated partitions: {}{}\n",
        r.under_replicated.len(),
        listed(&r.under_replicated)
    );
    out += &format!(
        "partitions without a leader: {}{}\n",
        r.leaderless.len(),
        listed(&r.leaderless)
    );
    out
}

/// ` (a, b, c)`, at most 20 named.
fn listed(names: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let shown: Vec<&str> = names.iter().take(20).map(String::as_str).collect();
    let more = if names.len() > 20 { ", ..." } else { "" };
    format!(" ({}{more})", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_needs_a_controller_leaders_and_whole_isrs() {
        let mut r = ClusterReport {
            controller: 1,
            ..Default::default()
        };
        assert!(r.healthy());
        r.under_replicated.push("t-0".into());
        assert!(!r.healthy());
        r.under_replicated.clear();
        r.leaderless.push("t-1".into());
        assert!(!r.healthy());
        r.leaderless.clear();
        r.controller = -1;
        assert!(!r.healthy(), "no controller");
    }
}
