//! A bounded set of open segment files, so that the number of partitions (and segments) a
//! broker holds is not bounded by its open-file limit.
//!
//! Each segment's `.log` is a `SegmentFile`: its path and, while it is in the set, an open
//! descriptor. `SegmentFile::open` hands out an `Arc<File>`, opening the file again if the set
//! had closed it. When more files are open than `capacity`, the least recently used are closed
//! by the clock rule (a file used since the hand last passed gets a second chance).
//!
//! Closing here only drops the set's reference: a reader or a flush that holds the `Arc<File>`
//! keeps its descriptor until it is done, so a deleted segment stays readable for it as
//! before, and an fsync through a new descriptor covers writes made through an old one (it
//! syncs the file, not the descriptor).
//!
//! Lock order: the set's lock, then a file's slot lock; `SegmentFile::open` never holds its
//! slot while it takes the set's lock.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// Descriptors the set keeps open before it closes the least recently used; the broker sets it
/// from its open-file limit at start (`set_capacity`).
static CAPACITY: AtomicUsize = AtomicUsize::new(4096);

static OPEN: Mutex<VecDeque<Weak<SegmentFile>>> = Mutex::new(VecDeque::new());

/// How many segment files may stay open at once (at least 16).
pub fn set_capacity(files: usize) {
    CAPACITY.store(files.max(16), Ordering::Relaxed);
}

pub fn capacity() -> usize {
    CAPACITY.load(Ordering::Relaxed)
}

/// Segment files the set holds open now.
pub fn open_count() -> usize {
    lock(&OPEN).iter().filter(|w| w.strong_count() > 0).count()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves no half-done state worth refusing.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One segment's `.log` file, open while it is in the set.
#[derive(Debug)]
pub struct SegmentFile {
    path: PathBuf,
    slot: Mutex<Option<Arc<File>>>,
    used: AtomicBool,
}

impl SegmentFile {
    /// A file not opened yet: the first `open` opens it.
    pub fn closed(path: PathBuf) -> Arc<SegmentFile> {
        Arc::new(SegmentFile {
            path,
            slot: Mutex::new(None),
            used: AtomicBool::new(true),
        })
    }

    /// A file just opened (or created) by the caller, entered into the set.
    pub fn opened(path: PathBuf, file: File) -> Arc<SegmentFile> {
        let segment_file = Arc::new(SegmentFile {
            path,
            slot: Mutex::new(Some(Arc::new(file))),
            used: AtomicBool::new(true),
        });
        admit(&segment_file);
        segment_file
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, read and write, opened again if the set had closed it.
    pub fn open(self: &Arc<Self>) -> std::io::Result<Arc<File>> {
        self.used.store(true, Ordering::Relaxed);
        if let Some(f) = lock(&self.slot).as_ref() {
            return Ok(f.clone());
        }
        let file = Arc::new(OpenOptions::new().read(true).write(true).open(&self.path)?);
        {
            let mut slot = lock(&self.slot);
            if let Some(f) = slot.as_ref() {
                // Another thread opened it meanwhile: use theirs, close ours.
                return Ok(f.clone());
            }
            *slot = Some(file.clone());
        }
        admit(self);
        Ok(file)
    }

    /// Whether the set holds it open now.
    pub fn is_open(&self) -> bool {
        lock(&self.slot).is_some()
    }
}

/// Enters `file` into the set, then closes others until at most `capacity` are open.
fn admit(file: &Arc<SegmentFile>) {
    let mut open = lock(&OPEN);
    open.push_back(Arc::downgrade(file));
    let capacity = capacity();
    // Two passes of the hand clear every second chance, so this ends.
    let mut budget = 2 * open.len();
    while open.len() > capacity && budget > 0 {
        budget -= 1;
        let Some(oldest) = open.pop_front() else {
            break;
        };
        let Some(candidate) = oldest.upgrade() else {
            continue; // its segment is gone: its descriptor closed with it
        };
        if candidate.used.swap(false, Ordering::Relaxed) {
            open.push_back(oldest);
            continue;
        }
        // Closed for the set; holders of the Arc<File> keep theirs until done.
        lock(&candidate.slot).take();
    }
}
