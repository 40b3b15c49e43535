//! The broker's log directories (`log.dirs`), Kafka's JBOD model: where each partition lives,
//! where a new one goes, and which directories have failed.
//!
//! - At start every configured directory is created (durably) and listed. One that cannot be
//!   is offline from the start; if none can, the broker does not start. A partition directory
//!   found in two of them stops the start, naming both (Kafka refuses the same).
//! - A partition stays where it was found; a new one goes to the online directory holding the
//!   fewest partitions (Kafka's `LogManager.nextLogDirs`).
//! - An I/O error other than a full disk on a log takes its whole directory offline (Kafka's
//!   `LogDirFailureChannel`): every partition in it answers KAFKA_STORAGE_ERROR, no checkpoint
//!   or clean-shutdown marker is written there, and the broker serves the other directories.
//!   When the last one fails the broker halts, as Kafka does. A full disk is not a failure:
//!   writes fail until space is freed (`storage_errors`).
//!
//! Broker-wide files (`meta.properties` in each directory, the embedded metadata store's file
//! and `cleaner-offset-checkpoint`) are the caller's; per-directory checkpoint files and the
//! clean-shutdown marker are the replica manager's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use gregor_log::LogError;
use tokio::sync::watch;
use tracing::error;

/// One of `log.dirs`.
#[derive(Debug)]
pub struct LogDir {
    pub path: PathBuf,
    online: AtomicBool,
    /// Partitions placed here (found at start or created since, less those deleted): what
    /// placement balances.
    partitions: AtomicUsize,
    /// The directory held the clean-shutdown marker at start.
    pub clean_shutdown: bool,
    /// It was listed at start: every partition directory in it is known.
    listed: bool,
    /// How many of the broker's directories are online (shared by all of them).
    online_dirs: Arc<AtomicUsize>,
    /// Halt the process when the last directory fails (a broker; not a test).
    halt_when_all_fail: bool,
    /// How many of the broker's directories have failed (shared): wakes whoever tells the
    /// controller (`LogDirs::failures`).
    failed_dirs: Arc<watch::Sender<usize>>,
}

impl LogDir {
    /// A directory of its own, online: for a partition opened outside a broker (tests).
    pub fn standalone(path: &Path) -> Arc<LogDir> {
        Arc::new(LogDir {
            path: path.to_path_buf(),
            online: AtomicBool::new(true),
            partitions: AtomicUsize::new(0),
            clean_shutdown: false,
            listed: true,
            online_dirs: Arc::new(AtomicUsize::new(1)),
            halt_when_all_fail: false,
            failed_dirs: Arc::new(watch::channel(0).0),
        })
    }

    /// (total, usable) bytes of the file system holding the directory.
    pub fn space(&self) -> Option<(u64, u64)> {
        super::storage_errors::disk_space(&self.path)
    }

    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    /// Takes the directory offline after `error`; true for the call that did it.
    pub fn fail(&self, error: &dyn std::fmt::Display) -> bool {
        let first = self.online.swap(false, Ordering::AcqRel);
        if !first {
            return false;
        }
        error!(log_dir = %self.path.display(), %error,
            partitions = self.partitions.load(Ordering::Relaxed),
            "log directory failed: it is offline, its partitions answer KAFKA_STORAGE_ERROR until the broker restarts with it repaired");
        self.failed_dirs.send_modify(|n| *n += 1);
        let left = self.online_dirs.fetch_sub(1, Ordering::AcqRel) - 1;
        if left == 0 && self.halt_when_all_fail {
            // Kafka's answer too: with no directory left there is nothing to serve.
            error!("every log directory has failed: halting the broker");
            std::process::exit(1);
        }
        true
    }

    /// A partition here was deleted.
    fn release(&self) {
        let _ = self
            .partitions
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    fn count(&self) -> usize {
        self.partitions.load(Ordering::Relaxed)
    }
}

/// Whether `e` means the directory itself failed: an I/O error, except a full disk or quota.
pub fn is_dir_failure(e: &LogError) -> bool {
    matches!(e, LogError::Io(_) | LogError::IoAt { .. }) && !e.is_out_of_space()
}

#[derive(Debug, thiserror::Error)]
pub enum LogDirsError {
    #[error("log.dirs is empty")]
    NoneConfigured,
    #[error("every log directory failed: {0}")]
    AllFailed(String),
    #[error(
        "partition directory {name} is in two log directories, {} and {}: remove the stale one",
        first.display(),
        second.display()
    )]
    Duplicate {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
}

pub struct LogDirs {
    dirs: Vec<Arc<LogDir>>,
    failed_dirs: Arc<watch::Sender<usize>>,
    /// Partition directories found at start, by name (`<topic>-<index>`).
    found: Mutex<HashMap<String, Arc<LogDir>>>,
}

impl LogDirs {
    /// Creates and lists every directory; reads each one's clean-shutdown marker (`marker`).
    /// With `halt_when_all_fail`, the process exits when the last online directory fails.
    pub fn open(
        paths: &[PathBuf],
        marker: &str,
        halt_when_all_fail: bool,
    ) -> Result<LogDirs, LogDirsError> {
        if paths.is_empty() {
            return Err(LogDirsError::NoneConfigured);
        }
        let online_dirs = Arc::new(AtomicUsize::new(0));
        let failed_dirs = Arc::new(watch::channel(0).0);
        let mut dirs = Vec::new();
        let mut found: HashMap<String, Arc<LogDir>> = HashMap::new();
        let mut failures = Vec::new();
        for path in paths {
            let listed =
                gregor_log::durable::create_dir_all(path).and_then(|()| partition_dirs(path));
            let (online, names) = match listed {
                Ok(names) => (true, names),
                Err(e) => {
                    error!(log_dir = %path.display(), error = %e,
                        "log directory cannot be used: it is offline");
                    failures.push(format!("{}: {e}", path.display()));
                    (false, Vec::new())
                }
            };
            let dir = Arc::new(LogDir {
                path: path.clone(),
                online: AtomicBool::new(online),
                partitions: AtomicUsize::new(names.len()),
                clean_shutdown: online && path.join(marker).exists(),
                listed: online,
                online_dirs: online_dirs.clone(),
                halt_when_all_fail,
                failed_dirs: failed_dirs.clone(),
            });
            if online {
                online_dirs.fetch_add(1, Ordering::AcqRel);
            } else {
                failed_dirs.send_modify(|n| *n += 1);
            }
            for name in names {
                if let Some(other) = found.get(&name) {
                    return Err(LogDirsError::Duplicate {
                        first: other.path.join(&name),
                        second: path.join(&name),
                        name,
                    });
                }
                found.insert(name, dir.clone());
            }
            dirs.push(dir);
        }
        if dirs.iter().all(|d| !d.is_online()) {
            return Err(LogDirsError::AllFailed(failures.join("; ")));
        }
        Ok(LogDirs {
            dirs,
            failed_dirs,
            found: Mutex::new(found),
        })
    }

    pub fn all(&self) -> &[Arc<LogDir>] {
        &self.dirs
    }

    /// The first directory that is online (else the first configured).
    pub fn first_online_path(&self) -> &Path {
        let dir = self.dirs.iter().find(|d| d.is_online());
        &dir.unwrap_or(&self.dirs[0]).path
    }

    /// Where partition directory `name` is: where it was found at start or placed since
    /// (online or not: a partition in a failed directory is never recreated elsewhere, which
    /// would serve an empty log in place of its data), or else the online directory with the
    /// fewest partitions. Refused when all are offline, and when a directory could not be
    /// listed at start: the partition may be there (Kafka too refuses to create a log that
    /// is not new while a directory is offline).
    pub fn place(&self, name: &str) -> Result<Arc<LogDir>, String> {
        let mut found = self.found.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(dir) = found.get(name) {
            return Ok(dir.clone());
        }
        if let Some(unlisted) = self.dirs.iter().find(|d| !d.listed) {
            return Err(format!(
                "log directory {} could not be read at start and may hold {name}: repair it,                  or remove it from log.dirs, and restart",
                unlisted.path.display()
            ));
        }
        let dir = self
            .dirs
            .iter()
            .filter(|d| d.is_online())
            .min_by_key(|d| d.count())
            .ok_or_else(|| "every log directory has failed".to_string())?
            .clone();
        dir.partitions.fetch_add(1, Ordering::Relaxed);
        found.insert(name.to_string(), dir.clone());
        Ok(dir)
    }

    /// Whether partition directory `name` lives in a directory that has failed, or may live
    /// in one that could not be read at start.
    pub fn is_offline(&self, name: &str) -> bool {
        let found = self.found.lock().unwrap_or_else(|p| p.into_inner());
        match found.get(name) {
            Some(dir) => !dir.is_online(),
            None => self.dirs.iter().any(|d| !d.listed),
        }
    }

    /// Partition directory `name` was deleted: it may go anywhere when created again.
    pub fn forget(&self, name: &str) {
        let mut found = self.found.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(dir) = found.remove(name) {
            dir.release();
        }
    }

    /// The directory of partition `name` if one of the online directories holds it.
    pub fn existing(&self, name: &str) -> Option<PathBuf> {
        self.dirs
            .iter()
            .filter(|d| d.is_online())
            .map(|d| d.path.join(name))
            .find(|p| p.is_dir())
    }

    /// The number of failed directories, changing whenever one fails (from the start: those
    /// unusable at start count).
    pub fn failures(&self) -> watch::Receiver<usize> {
        self.failed_dirs.subscribe()
    }

    /// Whether any directory has failed.
    pub fn any_offline(&self) -> bool {
        self.dirs.iter().any(|d| !d.is_online())
    }
}

/// The partition directories in `log_dir`: `<topic>-<index>`, not those being deleted or set
/// aside (`-delete`, `-stray`, `-future`).
fn partition_dirs(log_dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(log_dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Some((topic, index)) = name.rsplit_once('-') else {
            continue;
        };
        if !topic.is_empty() && !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) {
            names.push(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_partitions_go_to_the_least_loaded_online_dir_and_found_ones_stay() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        std::fs::create_dir_all(a.join("t-0")).unwrap();
        std::fs::create_dir_all(a.join("t-1")).unwrap();
        std::fs::create_dir_all(a.join("t-2.abc-delete")).unwrap();
        std::fs::write(a.join(".marker"), b"").unwrap();
        let dirs = LogDirs::open(&[a.clone(), b.clone()], ".marker", false).unwrap();
        assert!(dirs.all()[0].clean_shutdown && !dirs.all()[1].clean_shutdown);
        assert_eq!(dirs.place("t-0").unwrap().path, a);
        // b holds none, a two: new ones fill b first, then alternate.
        assert_eq!(dirs.place("u-0").unwrap().path, b);
        assert_eq!(dirs.place("u-1").unwrap().path, b);
        assert_eq!(dirs.place("u-2").unwrap().path, a);
        let failures = dirs.failures();
        assert_eq!(*failures.borrow(), 0);
        assert!(dirs.all()[0].fail(&"test"));
        assert!(!dirs.all()[0].fail(&"again"), "one failure per directory");
        assert_eq!(*failures.borrow(), 1);
        assert_eq!(dirs.place("u-3").unwrap().path, b);
        assert_eq!(
            dirs.place("t-1").unwrap().path,
            a,
            "found in a, though offline"
        );
        assert!(dirs.is_offline("t-1") && dirs.is_offline("u-2") && !dirs.is_offline("u-0"));
        // Deleted, it is created again where there is room.
        dirs.forget("u-2");
        assert_eq!(dirs.place("u-2").unwrap().path, b);
        dirs.all()[1].fail(&"test");
        assert!(dirs.place("u-4").is_err(), "every directory has failed");
    }

    #[test]
    fn a_partition_in_two_dirs_or_no_usable_dir_refuses_the_start() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        std::fs::create_dir_all(a.join("t-0")).unwrap();
        std::fs::create_dir_all(b.join("t-0")).unwrap();
        let err = LogDirs::open(&[a, b], ".m", false)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("t-0") && err.contains("two log directories"),
            "{err}"
        );
        let file = root.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let err = LogDirs::open(&[file.join("x")], ".m", false).err().unwrap();
        assert!(matches!(err, LogDirsError::AllFailed(_)), "{err}");
        // One unreadable at start: the others are served, but nothing new is placed, since
        // the partition may be in the unreadable one.
        std::fs::remove_dir_all(root.path().join("b")).unwrap();
        let dirs = LogDirs::open(&[root.path().join("a"), file.join("x")], ".m", false).unwrap();
        assert!(dirs.all()[0].is_online() && !dirs.all()[1].is_online());
        assert_eq!(*dirs.failures().borrow(), 1, "failed from the start");
        assert_eq!(dirs.place("t-0").unwrap().path, root.path().join("a"));
        let refused = dirs.place("t-1").err().unwrap();
        assert!(refused.contains("could not be read at start"), "{refused}");
        assert!(dirs.is_offline("t-1") && !dirs.is_offline("t-0"));
    }
}
