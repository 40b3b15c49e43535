//! Wall-clock time in Kafka's unit (milliseconds since the Unix epoch). Timers and timeouts
//! use tokio's monotonic clock instead; this is for timestamps that are stored or compared
//! with stored ones (retention, LogAppendTime, group state, offset expiry).

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
