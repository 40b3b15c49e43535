//! The Prometheus endpoint: `GET /metrics` on `metrics.port`, in the text format. hyper
//! serves HTTP/1.1; each scrape gathers `crate::metrics`' registry and reads the broker's
//! state (partitions, groups, the metadata image) into gauges, on a blocking thread since it
//! takes every partition's lock in turn. `main.rs` binds the port before the broker opens,
//! so a port in use stops the start.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::proto::MetricFamily;
use tokio::net::TcpListener;
use tracing::{debug, error, warn};

use super::Shutdown;
use crate::broker::Broker;
use crate::metrics::{self, gauge_family};
use crate::replica::PartitionStats;

/// A scraper that opens a connection and sends nothing is dropped after this.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves scrapes until shutdown.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, mut shutdown: Shutdown) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let broker = broker.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req| respond(req, broker.clone()));
                        let served = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(HEADER_READ_TIMEOUT)
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                        if let Err(e) = served {
                            debug!(%peer, error = %e, "metrics connection failed");
                        }
                    });
                }
                Err(e) => {
                    warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.recv() => return,
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r
}

async fn respond(
    req: Request<Incoming>,
    broker: Arc<Broker>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != "/metrics" {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            "gregor serves its metrics at /metrics\n",
        ));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(r);
    }
    let rendered = tokio::task::spawn_blocking(move || render(&broker)).await;
    let text = match rendered {
        Ok(Ok(text)) => text,
        Ok(Err(e)) => {
            error!(error = %e, "encoding the metrics failed");
            return Ok(plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding failed\n",
            ));
        }
        Err(e) => {
            error!(error = %e, "gathering the metrics failed");
            return Ok(plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "gathering failed\n",
            ));
        }
    };
    let mut r = Response::new(Full::new(Bytes::from(text)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(metrics::TEXT_CONTENT_TYPE),
    );
    Ok(r)
}

/// Everything a scrape shows: the registry and the broker's state now.
pub fn render(broker: &Broker) -> Result<String, prometheus::Error> {
    let mut families = metrics::gather();
    families.extend(state_families(broker));
    metrics::encode_text(&families)
}

/// The gauges read from the broker's state at scrape time.
fn state_families(broker: &Broker) -> Vec<MetricFamily> {
    let mut out = Vec::new();
    let image = broker.image();

    // Per partition hosted here (Kafka's kafka.log:type=Log beans), and the replica
    // manager's counts over them.
    let mut partitions: Vec<(String, String, PartitionStats)> = broker
        .replicas
        .all_partitions()
        .iter()
        .map(|p| (p.topic.clone(), p.index.to_string(), p.stats()))
        .collect();
    partitions.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let per_partition = |f: fn(&PartitionStats) -> i64| {
        partitions
            .iter()
            .map(move |(t, p, s)| ([t.as_str(), p.as_str()], f(s)))
    };
    let tp = &["topic", "partition"];
    out.extend(gauge_family(
        "kafka_log_log_size",
        "Bytes in the partition's segment files (Log Size)",
        tp,
        per_partition(|s| i64::try_from(s.size_bytes).unwrap_or(i64::MAX)),
    ));
    out.extend(gauge_family(
        "kafka_log_log_numlogsegments",
        "Segments of the partition's log, the active one included (Log NumLogSegments)",
        tp,
        per_partition(|s| i64::try_from(s.segments).unwrap_or(i64::MAX)),
    ));
    out.extend(gauge_family(
        "kafka_log_log_logstartoffset",
        "The partition's log start offset (Log LogStartOffset)",
        tp,
        per_partition(|s| s.log_start_offset),
    ));
    out.extend(gauge_family(
        "kafka_log_log_logendoffset",
        "The partition's log end offset (Log LogEndOffset)",
        tp,
        per_partition(|s| s.log_end_offset),
    ));
    out.extend(gauge_family(
        "kafka_cluster_partition_underreplicated",
        "1 if this broker leads the partition and its ISR is smaller than its replica set (Partition UnderReplicated)",
        tp,
        per_partition(|s| i64::from(s.under_replicated)),
    ));
    let count =
        |f: fn(&PartitionStats) -> bool| partitions.iter().filter(|(_, _, s)| f(s)).count() as i64;
    let single = |name: &str, help: &str, v: i64| gauge_family(name, help, &[], [([], v)]);
    out.extend(single(
        "kafka_server_replicamanager_partitioncount",
        "Partitions hosted here, led or followed (PartitionCount)",
        partitions.len() as i64,
    ));
    out.extend(single(
        "kafka_server_replicamanager_leadercount",
        "Partitions this broker leads (LeaderCount)",
        count(|s| s.is_leader),
    ));
    out.extend(single(
        "kafka_server_replicamanager_underreplicatedpartitions",
        "Partitions led here whose ISR is smaller than their replica set (UnderReplicatedPartitions)",
        count(|s| s.under_replicated),
    ));
    out.extend(single(
        "kafka_server_replicamanager_underminisrpartitioncount",
        "Partitions led here whose ISR is smaller than min.insync.replicas (UnderMinIsrPartitionCount)",
        count(|s| s.under_min_isr),
    ));

    // The controller's view (Kafka's KafkaController beans: 0 except on the active
    // controller; standalone, this broker is the controller).
    let active = image.controller_id == broker.config.broker_id;
    out.extend(single(
        "kafka_controller_kafkacontroller_activecontrollercount",
        "1 on the active controller (ZooKeeper mode: the broker holding /controller; standalone: 1)",
        i64::from(active),
    ));
    let (mut topics, mut total, mut offline) = (0i64, 0i64, 0i64);
    if active {
        for (name, topic) in &image.topics {
            if image.topics_being_deleted.contains(name) {
                continue;
            }
            topics += 1;
            for p in &topic.partitions {
                total += 1;
                if p.leader < 0 || image.broker(p.leader).is_none() {
                    offline += 1;
                }
            }
        }
    }
    out.extend(single(
        "kafka_controller_kafkacontroller_offlinepartitionscount",
        "Controller: partitions without a live leader (OfflinePartitionsCount)",
        offline,
    ));
    out.extend(single(
        "kafka_controller_kafkacontroller_globaltopiccount",
        "Controller: topics in the cluster (GlobalTopicCount)",
        topics,
    ));
    out.extend(single(
        "kafka_controller_kafkacontroller_globalpartitioncount",
        "Controller: partitions in the cluster (GlobalPartitionCount)",
        total,
    ));

    // Consumer groups this broker coordinates, named as kafka-exporter names them; lag only
    // for partitions hosted here, whose high watermark this broker knows.
    let high_watermarks: HashMap<(&str, &str), i64> = partitions
        .iter()
        .map(|(t, p, s)| ((t.as_str(), p.as_str()), s.high_watermark))
        .collect();
    let committed: Vec<(String, String, String, i64)> = broker
        .groups
        .committed_offsets()
        .into_iter()
        .map(|(group, topic, p, offset)| (group, topic, p.to_string(), offset))
        .collect();
    let gtp = &["group", "topic", "partition"];
    out.extend(gauge_family(
        "kafka_consumergroup_current_offset",
        "A group's committed offset, for groups this broker coordinates (kafka-exporter)",
        gtp,
        committed
            .iter()
            .map(|(g, t, p, offset)| ([g.as_str(), t.as_str(), p.as_str()], *offset)),
    ));
    out.extend(gauge_family(
        "kafka_consumergroup_lag",
        "High watermark minus committed offset, for groups this broker coordinates and partitions hosted here (kafka-exporter)",
        gtp,
        committed.iter().filter_map(|(g, t, p, offset)| {
            let hw = high_watermarks.get(&(t.as_str(), p.as_str()))?;
            Some(([g.as_str(), t.as_str(), p.as_str()], (hw - offset).max(0)))
        }),
    ));
    out
}
