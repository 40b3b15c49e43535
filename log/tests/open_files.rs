//! The bounded set of open segment files, in a process of its own: the set and its
//! capacity are process-wide.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use gregor_log::open_files::{open_count, set_capacity, SegmentFile};

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn the_set_bounds_open_files_and_reopens_closed_ones() {
    set_capacity(16);
    let dir = tempfile::tempdir().unwrap();
    let fds_before = fd_count();
    let files: Vec<Arc<SegmentFile>> = (0..200)
        .map(|i| {
            let path = dir.path().join(format!("{i}.log"));
            let mut f = OpenOptions::new()
                .create(true)
                .read(true)
                .write(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            f.write_all(format!("segment {i}").as_bytes()).unwrap();
            SegmentFile::opened(path, f)
        })
        .collect();
    assert!(open_count() <= 16, "{} open", open_count());
    assert!(fd_count() <= fds_before + 16 + 1);
    // Every file reads back its own bytes, reopened where it was closed.
    for (i, f) in files.iter().enumerate() {
        let want = format!("segment {i}");
        let mut buf = vec![0u8; want.len()];
        f.open().unwrap().read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(buf, want.as_bytes());
    }
    assert!(open_count() <= 16);
    // A holder keeps its descriptor across eviction, and its writes land in the file.
    let held = files[0].open().unwrap();
    for f in &files[1..40] {
        f.open().unwrap();
    }
    assert!(!files[0].is_open());
    held.write_all_at(b"SEGMENT", 0).unwrap();
    drop(held);
    let mut buf = vec![0u8; 9];
    files[0].open().unwrap().read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"SEGMENT 0");
    // A file used again and again survives a sweep of others (its second chance).
    let hot = files[100].clone();
    for f in &files[101..110] {
        hot.open().unwrap();
        f.open().unwrap();
    }
    assert!(hot.is_open());
    // Dropped segments leave the set.
    drop(files);
    drop(hot);
    assert_eq!(open_count(), 0);
    assert!(fd_count() <= fds_before);
}
