//! Blocking file work called from a request's task (creating a topic's logs, rewriting the
//! metadata file). Run in place it would stall the worker thread and every connection
//! queued behind it; `block_in_place` first hands the worker's other tasks to a new thread.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `f`, which blocks, from async code without stalling the other tasks of this worker.
/// On a current-thread runtime (tests) or outside tokio there is nothing to hand over, and
/// `f` simply runs.
pub fn run<T>(f: impl FnOnce() -> T) -> T {
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
