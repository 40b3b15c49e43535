//! Storage failures an operator must hear about, without one log line per failed request:
//! a full log directory (ENOSPC, EDQUOT) is reported as an ERROR naming the directory and its
//! free space, at most once every `REPORT_INTERVAL_MS`, while the writes keep failing with
//! KAFKA_STORAGE_ERROR.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};

use gregor_log::LogError;
use tracing::error;

const REPORT_INTERVAL_MS: i64 = 30_000;

static LAST_REPORT_MS: AtomicI64 = AtomicI64::new(i64::MIN);

/// Looks at a failed write to a log in `log_dir` and reports a full disk.
pub fn note_write_failure(log_dir: &Path, e: &LogError) {
    if !e.is_out_of_space() {
        return;
    }
    let now = crate::clock::now_ms();
    let last = LAST_REPORT_MS.load(Ordering::Relaxed);
    if now.saturating_sub(last) < REPORT_INTERVAL_MS
        || LAST_REPORT_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let free_bytes = disk_space(log_dir).map_or(0, |(_, usable)| usable);
    error!(log_dir = %log_dir.display(), free_bytes, error = %e,
        "log directory is full: produces to it fail with KAFKA_STORAGE_ERROR until space is freed (DeleteRecords, DeleteTopics, retention)");
}

/// (total, available to the broker) bytes of the file system holding `dir`.
pub fn disk_space(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs reads the NUL-terminated path and writes only the struct it is given.
    unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(path.as_ptr(), &mut stat) == 0).then(|| {
            (
                stat.f_blocks.saturating_mul(stat.f_frsize),
                stat.f_bavail.saturating_mul(stat.f_frsize),
            )
        })
    }
}
