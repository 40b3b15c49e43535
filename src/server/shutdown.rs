//! Graceful shutdown as a value passed down to every task (the mini-redis pattern): a
//! `watch` channel that flips to `true` once, observed by the accept loop and by each
//! connection between requests.

use tokio::sync::watch;

#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }
}

impl Shutdown {
    pub fn is_shutdown(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once shutdown has been triggered (immediately if it already was).
    pub async fn recv(&mut self) {
        // An error means the trigger is gone, which only happens when the process exits.
        let _ = self.rx.wait_for(|stop| *stop).await;
    }
}
