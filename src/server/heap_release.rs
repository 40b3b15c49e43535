//! Gives the heap that a burst of connections freed back to the OS.
//!
//! Each connection's buffers are small, but ten thousand long-poll Fetch connections at once
//! take tens of MiB, freed when they close. glibc's malloc keeps freed memory in its arenas
//! (one per thread that allocated, up to 8 per core) and returns only what lies at the top of
//! the main heap, so without help the broker's RSS stays at its highest burst forever.
//! `malloc_trim` returns every whole free page of every arena. The accept loop calls it shortly
//! after a burst has ended: the open connections fell to half of their peak since the last
//! release, and that peak was large.

use std::time::{Duration, Instant};

/// Bursts smaller than this many connections are not worth a trim.
const MIN_BURST: usize = 256;
/// How long after a burst starts to end the heap is released, so that the connections
/// closing meanwhile are released in the same trim.
const DELAY: Duration = Duration::from_millis(500);

/// Watches the number of open connections and says when to release the heap.
pub struct BurstWatch {
    /// The most connections open at once since the last release.
    peak: usize,
    release_at: Option<Instant>,
}

impl Default for BurstWatch {
    fn default() -> Self {
        Self::new()
    }
}

impl BurstWatch {
    pub fn new() -> BurstWatch {
        BurstWatch {
            peak: 0,
            release_at: None,
        }
    }

    /// Records the connections open now: a large burst that has fallen to half its peak
    /// schedules a release.
    pub fn observe(&mut self, open: usize, now: Instant) {
        self.peak = self.peak.max(open);
        if self.release_at.is_none() && self.peak >= MIN_BURST && open <= self.peak / 2 {
            self.release_at = Some(now + DELAY);
        }
    }

    /// When the heap is to be released, if a burst has ended.
    pub fn release_at(&self) -> Option<Instant> {
        self.release_at
    }

    /// The release was done with `open` connections still open: the next burst is
    /// measured from them.
    pub fn released(&mut self, open: usize) {
        self.peak = open;
        self.release_at = None;
    }
}

/// Returns free heap pages to the OS (glibc's `malloc_trim`); a no-op elsewhere. It walks
/// every arena under its lock, so it runs on a blocking thread.
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointers and is thread-safe (it locks each arena).
        let released = unsafe { libc::malloc_trim(0) };
        tracing::debug!(released = released != 0, "returned free heap to the OS");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_burst_that_halved_is_released_after_the_delay() {
        let t0 = Instant::now();
        let mut w = BurstWatch::new();
        for open in [10, 500, 1000, 501] {
            w.observe(open, t0);
            assert_eq!(w.release_at(), None);
        }
        w.observe(500, t0);
        assert_eq!(w.release_at(), Some(t0 + DELAY));
        // Closing more meanwhile does not move the release.
        w.observe(0, t0 + DELAY / 2);
        assert_eq!(w.release_at(), Some(t0 + DELAY));
        w.released(0);
        assert_eq!(w.release_at(), None);
        w.observe(0, t0 + DELAY * 2);
        assert_eq!(w.release_at(), None);
    }

    #[test]
    fn small_bursts_are_not_released_and_peaks_restart_from_what_was_left() {
        let t0 = Instant::now();
        let mut w = BurstWatch::new();
        w.observe(200, t0);
        w.observe(0, t0);
        assert_eq!(w.release_at(), None);
        w.observe(3000, t0);
        w.observe(1400, t0);
        w.released(1400);
        w.observe(800, t0);
        assert_eq!(w.release_at(), None, "1400 -> 800 is not half");
        w.observe(0, t0);
        assert_eq!(w.release_at(), Some(t0 + DELAY));
    }
}
