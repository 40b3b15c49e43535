//! Time. `now_ms` is wall-clock time in Kafka's unit (milliseconds since the Unix epoch), for
//! timestamps that are stored or compared with stored ones (retention, LogAppendTime, group
//! state, offset expiry); timers and timeouts use the monotonic `Instant` instead.
//!
//! `Clock` bundles both so that code with timers (the group coordinator) can be handed a
//! `ManualClock` in unit tests and be driven through session timeouts, rebalance delays and
//! offset retention deterministically.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Both readings of one moment, handed down to code that sets deadlines and stamps state.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    /// Monotonic, for deadlines.
    pub at: Instant,
    /// Wall clock, milliseconds since the Unix epoch, for stored timestamps.
    pub ms: i64,
}

/// A source of both kinds of time.
pub trait Clock: Send + Sync {
    /// Monotonic time, for deadlines.
    fn now(&self) -> Instant;
    /// Wall-clock milliseconds since the Unix epoch, for stored timestamps.
    fn now_ms(&self) -> i64;

    fn read(&self) -> Now {
        Now {
            at: self.now(),
            ms: self.now_ms(),
        }
    }
}

/// The real clocks.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn now_ms(&self) -> i64 {
        now_ms()
    }
}

/// A clock that moves only when told to (`advance`); both readings move together.
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    start_ms: i64,
    elapsed: Mutex<Duration>,
}

impl ManualClock {
    /// Starts at the current real time, frozen.
    pub fn new() -> ManualClock {
        ManualClock {
            start: Instant::now(),
            start_ms: now_ms(),
            elapsed: Mutex::new(Duration::ZERO),
        }
    }

    pub fn advance(&self, by: Duration) {
        *self.elapsed.lock().unwrap_or_else(|p| p.into_inner()) += by;
    }

    fn elapsed(&self) -> Duration {
        *self.elapsed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + self.elapsed()
    }

    fn now_ms(&self) -> i64 {
        self.start_ms + self.elapsed().as_millis() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_both_readings_together() {
        let c = ManualClock::new();
        let (t0, ms0) = (c.now(), c.now_ms());
        assert_eq!(c.now(), t0, "frozen until advanced");
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.now() - t0, Duration::from_millis(1500));
        assert_eq!(c.now_ms() - ms0, 1500);
    }
}
