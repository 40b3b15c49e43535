//! The `gregor` binary: `gregor [server.properties] [--override key=value ...]`, as Kafka's
//! `kafka-server-start.sh`. Logs go to stderr, filtered by RUST_LOG (default `info`).
//! `gregor cluster ...` runs the command-line client instead (`cli`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gregor::broker::Broker;
use gregor::config::{BrokerConfig, CliAction};
use gregor::replica::log_cleaner::{self, CleanerConfig};
use gregor::replica::log_flusher;
use gregor::replica::manager::CHECKPOINT_INTERVAL;
use gregor::scheduler::{FirstRun, Scheduler};
use gregor::server;
use gregor::server::listener::{BoundListener, ListenerContext};
use tokio::net::TcpListener;
use tracing::{info, warn};

/// How often group timers are checked: the precision of session and rebalance timeouts.
const GROUP_TICK: Duration = Duration::from_millis(100);
/// How often the ACL change notifications are looked at without a watch's signal (two
/// ZooKeeper reads).
const ACL_CHANGE_POLL: Duration = Duration::from_secs(1);
/// How long a controlled shutdown waits for the controller to move leaderships away.
const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args
        .first()
        .is_some_and(|a| gregor::cli::SUBCOMMANDS.contains(&a.as_str()))
    {
        std::process::exit(gregor::cli::run(args));
    }
    let config = match BrokerConfig::from_args(args)? {
        CliAction::Help(text) => {
            print!("{text}");
            return Ok(());
        }
        CliAction::Run(config) => config,
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    for w in config.warnings() {
        warn!("{w}");
    }
    raise_open_file_limit();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?
        .block_on(run(config))
}

async fn run(config: BrokerConfig) -> anyhow::Result<()> {
    let first = config.listeners.first().context("no listener configured")?;
    let bind_host = if first.host.is_empty() {
        "0.0.0.0".to_string()
    } else {
        first.host.clone()
    };
    // Every listener is bound, and its TLS and SASL settings read, before the broker registers
    // itself (cluster mode), so a taken port or a bad keystore fails the start before other
    // brokers and clients are told about us.
    let mut listeners = Vec::new();
    for l in &config.listeners {
        let context =
            ListenerContext::from_config(&config, l).with_context(|| format!("listener {l}"))?;
        // A listener checking signed OAUTHBEARER tokens needs its identity provider's keys
        // before it serves.
        if let Some(jwks) = context.sasl.as_ref().and_then(|s| s.jwks()) {
            jwks.start()
                .await
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("listener {l}"))?;
        }
        let socket = TcpListener::bind(l.host_port())
            .await
            .with_context(|| format!("cannot listen on {l}"))?;
        info!(listener = %l, security_protocol = %l.security_protocol, "listening");
        listeners.push(BoundListener {
            socket,
            context: Arc::new(context),
        });
    }
    // The metrics port too: a port in use stops the start, as a taken listener port does
    // (operators expect a missing endpoint to be loud, as Kafka's JMX exporter agent is).
    let metrics_listener = match config.metrics_port {
        0 => None,
        port => {
            let at = format!("{bind_host}:{port}");
            let l = TcpListener::bind(&at).await.with_context(|| {
                format!("cannot serve metrics on {at} (metrics.port; 0 turns metrics off)")
            })?;
            Some((l, at))
        }
    };
    let broker = Arc::new(tokio::task::block_in_place(|| Broker::open(config))?);
    broker.follow_metadata();
    broker.load_acls().await?;
    // The logs were opened with the markers' word (LogDirs::open read them): from now on the
    // data changes, so the markers go until the next graceful shutdown writes them.
    broker
        .replicas
        .remove_clean_shutdown_markers()
        .context("removing the clean-shutdown markers")?;
    let mut scheduler = Scheduler::new();
    let replicas = broker.replicas.clone();
    scheduler.schedule_blocking(
        "checkpoints",
        CHECKPOINT_INTERVAL,
        FirstRun::AfterPeriod,
        move || {
            replicas.write_checkpoints();
        },
    );
    // Kafka's retention check (`log.retention.check.interval.ms`).
    let replicas = broker.replicas.clone();
    scheduler.schedule_blocking(
        "log retention",
        Duration::from_millis(broker.config.log_retention_check_interval_ms.max(1)),
        FirstRun::AfterPeriod,
        move || {
            replicas.delete_old_segments();
        },
    );
    // Kafka's producer id expiration (`producer.id.expiration.check.interval.ms`).
    let replicas = broker.replicas.clone();
    let expiration_ms = broker.config.producer_id_expiration_ms;
    scheduler.schedule_blocking(
        "producer id expiration",
        Duration::from_millis(
            broker
                .config
                .producer_id_expiration_check_interval_ms
                .max(1),
        ),
        FirstRun::AfterPeriod,
        move || {
            replicas.remove_expired_producers(expiration_ms);
        },
    );
    // Kafka's ISR expiration: followers that have not caught up for
    // `replica.lag.time.max.ms` leave the ISR of the partitions led here.
    let replicas = broker.replicas.clone();
    let lag_ms = broker.config.replica_lag_time_max_ms;
    scheduler.schedule(
        "isr expiration",
        Duration::from_millis((lag_ms / 2).max(1) as u64),
        FirstRun::AfterPeriod,
        move || replicas.shrink_isrs(lag_ms),
    );
    // The group coordinator's timers: session expiry, join and sync deadlines, offset expiry.
    let groups_broker = broker.clone();
    scheduler.schedule("group timers", GROUP_TICK, FirstRun::Now, move || {
        groups_broker.groups.tick(&groups_broker.image())
    });
    // The transaction coordinator aborts transactions past their timeout
    // (`transaction.abort.timed.out.transaction.cleanup.interval.ms`).
    let txn_broker = broker.clone();
    scheduler.schedule_async(
        "transaction timeouts",
        txn_broker.txns.config().abort_timed_out_interval,
        FirstRun::AfterPeriod,
        move || {
            let txns = txn_broker.txns.clone();
            async move {
                txns.abort_timed_out_transactions(gregor::clock::now_ms())
                    .await
            }
        },
    );
    // Transactional ids idle past `transactional.id.expiration.ms` are forgotten
    // (`transaction.remove.expired.transaction.cleanup.interval.ms`).
    let expiry_broker = broker.clone();
    scheduler.schedule_async(
        "transactional id expiration",
        expiry_broker.txns.config().remove_expired_interval,
        FirstRun::AfterPeriod,
        move || {
            let txns = expiry_broker.txns.clone();
            async move {
                txns.remove_expired_transactional_ids(gregor::clock::now_ms())
                    .await
            }
        },
    );
    // Client quotas: the stored quotas put in force.
    let quotas_broker = broker.clone();
    scheduler.schedule_async(
        "client quotas",
        Duration::from_secs(1),
        FirstRun::Now,
        move || {
            let broker = quotas_broker.clone();
            async move { broker.refresh_client_quotas().await }
        },
    );
    // ACLs changed through other brokers (Kafka: its ACL change listener).
    if broker.authorizer.is_some() {
        tokio::spawn(broker.clone().follow_acl_changes(ACL_CHANGE_POLL));
    }
    // Kafka's log cleaner: compacts `cleanup.policy=compact` partitions.
    log_cleaner::schedule(
        &mut scheduler,
        broker.replicas.clone(),
        CleanerConfig::from_broker(&broker.config),
    );
    // Kafka's log flusher: `flush.ms` / `log.flush.interval.ms`.
    log_flusher::schedule(
        &mut scheduler,
        broker.replicas.clone(),
        log_flusher::check_interval(&broker.config),
    );
    let (trigger, shutdown) = server::shutdown::channel();
    if let Some((l, at)) = metrics_listener {
        info!(address = %at, "serving Prometheus metrics at /metrics");
        tokio::spawn(server::metrics_http::serve(
            l,
            broker.clone(),
            shutdown.clone(),
        ));
    }
    info!(broker_id = broker.config.broker_id, "gregor is serving");

    let leaving = broker.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutdown requested");
        // Leaderships move to other replicas while this broker still answers.
        leaving
            .controlled_shutdown(CONTROLLED_SHUTDOWN_TIMEOUT)
            .await;
        trigger.trigger();
    });
    server::run(listeners, broker.clone(), shutdown).await;
    scheduler.shutdown().await;
    // Each directory's marker tells the next start that every log in it was closed with its
    // indexes and checkpoints written, so nothing there needs validating: it is written only
    // where that is true (`ReplicaManager::shutdown`).
    if tokio::task::block_in_place(|| broker.shutdown()) {
        info!("shut down cleanly");
    } else {
        warn!("shut down, but some logs did not close: the next start validates them");
    }
    Ok(())
}

/// Raises the soft limit on open files to the hard limit (what Kafka's operators are told to
/// do by hand) and gives half of it to segment files (`gregor_log::open_files`): the other
/// half is for client sockets, ZooKeeper, index and checkpoint writes. Beyond that share the
/// least recently used segments are closed and opened again when next used, so the number of
/// partitions a broker holds is not bounded by the limit.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by reference.
    let raised = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && {
            let before = limit.rlim_cur;
            limit.rlim_cur = limit.rlim_max;
            before == limit.rlim_max || libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0
        }
    };
    if !raised {
        warn!("cannot raise the open file limit");
        // SAFETY: as above.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return;
        }
    }
    let segment_files = usize::try_from(limit.rlim_cur / 2).unwrap_or(usize::MAX);
    gregor_log::open_files::set_capacity(segment_files);
    info!(
        open_files = limit.rlim_cur,
        segment_files = gregor_log::open_files::capacity(),
        "open file limit"
    );
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            warn!("cannot install signal handlers; only ctrl-c stops the broker");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
