//! The broker's periodic background work in one place (Kafka's `KafkaScheduler`): checkpoint
//! files, retention, the log flusher and cleaner, the group coordinator's timers.
//!
//! Each task runs its work, waits its period, and runs it again, until `shutdown`. Shutdown
//! lets a run in progress finish and then waits for every task: aborting a tokio task whose
//! work is on a blocking thread would stop only the waiting, not the file work, which would
//! then race the logs being closed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::warn;

/// When a task first runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstRun {
    Now,
    AfterPeriod,
}

pub struct Scheduler {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Default for Scheduler {
    fn default() -> Self {
        Self::new()
    }
}

impl Scheduler {
    pub fn new() -> Scheduler {
        Scheduler {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }

    /// Work that touches files: each run goes to a blocking thread.
    pub fn schedule_blocking<F>(
        &mut self,
        name: &'static str,
        period: Duration,
        first: FirstRun,
        work: F,
    ) where
        F: Fn() + Send + Sync + 'static,
    {
        let work = Arc::new(work);
        self.spawn(name, period, first, move || {
            let work = work.clone();
            async move {
                if let Err(e) = tokio::task::spawn_blocking(move || work()).await {
                    warn!(task = name, error = %e, "background task failed");
                }
            }
        });
    }

    /// Quick work that never blocks (it runs on the runtime's worker).
    pub fn schedule<F>(&mut self, name: &'static str, period: Duration, first: FirstRun, work: F)
    where
        F: Fn() + Send + Sync + 'static,
    {
        let work = Arc::new(work);
        self.spawn(name, period, first, move || {
            let work = work.clone();
            async move { work() }
        });
    }

    /// Runs async `work` every `period` on the runtime (work that waits on I/O, not the CPU).
    pub fn schedule_async<R, Fut>(
        &mut self,
        name: &'static str,
        period: Duration,
        first: FirstRun,
        work: R,
    ) where
        R: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        self.spawn(name, period, first, work);
    }

    fn spawn<R, Fut>(&mut self, name: &'static str, period: Duration, first: FirstRun, run: R)
    where
        R: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let mut stop = self.stop.subscribe();
        let task = tokio::spawn(async move {
            if first == FirstRun::AfterPeriod && stopped_while_waiting(period, &mut stop).await {
                return;
            }
            loop {
                run().await;
                if stopped_while_waiting(period, &mut stop).await {
                    return;
                }
            }
        });
        self.tasks.push((name, task));
    }

    /// Stops every task after its current run and waits for all of them.
    pub async fn shutdown(self) {
        // Nobody may be subscribed any more (every task ended): nothing to tell then.
        let _ = self.stop.send(true);
        for (name, task) in self.tasks {
            if let Err(e) = task.await {
                warn!(task = name, error = %e, "background task ended abnormally");
            }
        }
    }
}

/// Sleeps `period`; true if shutdown was asked meanwhile (or before).
async fn stopped_while_waiting(period: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let slept = tokio::select! {
        _ = tokio::time::sleep(period) => true,
        _ = stop.wait_for(|stopped| *stopped) => false,
    };
    !slept || *stop.borrow()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_waits_for_the_run_in_progress_and_stops_every_task() {
        let mut scheduler = Scheduler::new();
        let started = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let (s, f) = (started.clone(), finished.clone());
        scheduler.schedule_blocking("slow", Duration::from_millis(1), FirstRun::Now, move || {
            s.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(200));
            f.fetch_add(1, Ordering::SeqCst);
        });
        let ticks = Arc::new(AtomicUsize::new(0));
        let t = ticks.clone();
        scheduler.schedule(
            "quick",
            Duration::from_millis(5),
            FirstRun::AfterPeriod,
            move || {
                t.fetch_add(1, Ordering::SeqCst);
            },
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            started.load(Ordering::SeqCst),
            1,
            "the slow run is in progress"
        );
        scheduler.shutdown().await;
        // The run in progress finished before shutdown returned, and no new one started.
        assert_eq!(finished.load(Ordering::SeqCst), 1);
        assert_eq!(started.load(Ordering::SeqCst), 1);
        let after = ticks.load(Ordering::SeqCst);
        assert!(after >= 2, "the quick task ran ({after})");
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(
            ticks.load(Ordering::SeqCst),
            after,
            "nothing runs after shutdown"
        );
    }
}
