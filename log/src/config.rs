//! The settings one partition's log runs with (Kafka's topic-level names in comments).

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment past this size.
    pub segment_bytes: u64,
    /// `index.interval.bytes`: bytes between two offset index entries.
    pub index_interval_bytes: u32,
    /// `flush.messages`: fsync after this many messages (1 = before every acknowledgement,
    /// `u64::MAX` = leave it to the OS, Kafka's default).
    pub flush_interval_messages: u64,
    /// `max.message.bytes`: the largest record batch accepted.
    pub max_message_bytes: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            index_interval_bytes: 4096,
            flush_interval_messages: u64::MAX,
            max_message_bytes: 1_048_588,
        }
    }
}
