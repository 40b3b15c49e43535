//! The settings one partition's log runs with (Kafka's topic-level names in comments).

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment past this size.
    pub segment_bytes: u64,
    /// `segment.ms`: roll once the active segment's first append is older than this.
    pub segment_ms: i64,
    /// `segment.index.bytes`: the size each `.index` and `.timeindex` file is preallocated to;
    /// the segment rolls when either is full.
    pub max_index_bytes: u32,
    /// `index.interval.bytes`: bytes between two offset index entries.
    pub index_interval_bytes: u32,
    /// `flush.messages`: fsync after this many messages (1 = before every acknowledgement,
    /// `u64::MAX` or Kafka's default `Long.MAX_VALUE` = leave it to the OS).
    pub flush_interval_messages: u64,
    /// `max.message.bytes`: the largest record batch accepted.
    pub max_message_bytes: u32,
    /// `retention.ms`: a closed segment whose largest timestamp is older than this is
    /// deleted (negative: no time limit). Only with `delete_enabled`.
    pub retention_ms: i64,
    /// `retention.bytes`: the oldest segments are deleted while the log stays at least this
    /// big without them (negative: no size limit). Only with `delete_enabled`.
    pub retention_bytes: i64,
    /// `cleanup.policy` contains `delete`: time and size retention apply. Segments below the
    /// log start offset (DeleteRecords) are deleted whatever the policy.
    pub delete_enabled: bool,
}

impl LogConfig {
    /// No fsync policy: Kafka's default `Long.MAX_VALUE` (or `u64::MAX`) messages.
    pub fn leaves_flushing_to_os(&self) -> bool {
        self.flush_interval_messages >= i64::MAX as u64
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            max_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            flush_interval_messages: u64::MAX,
            max_message_bytes: 1_048_588,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            delete_enabled: true,
        }
    }
}
