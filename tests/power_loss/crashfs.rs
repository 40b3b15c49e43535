//! A FUSE filesystem, in memory, that can lose power: everything written since the last
//! fsync is forgotten, as a disk whose cache was never flushed.
//!
//! The model is the strict one POSIX promises and crash-consistency studies test against:
//! - a file's data (and size) survive only as they were at its last `fsync`/`fdatasync`;
//! - a directory's entries (creations, renames, unlinks inside it) survive only as they were
//!   at its last `fsync` (a new file needs its directory fsynced, a new directory its parent);
//! - a file no surviving directory entry reaches is gone, whatever was fsynced in it.
//!
//! Real filesystems often keep more (ext4 commits a new file's entry with its first fsync),
//! so a program that survives this model survives them; the converse is not true.
//!
//! `CrashDisk::mount` serves it at a directory; `CrashDisk::power_loss` unmounts, drops what
//! was never made durable, and mounts the survivors again; `CrashDisk::set_failing` makes
//! every request fail with EIO, as a dead disk (the log-directory failure test). Every request is served on the
//! session's one thread; the tree is shared with the test through a mutex.

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    BackgroundSession, FileAttr, FileType, Filesystem, MountOption, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request,
    TimeOrNow,
};

const ROOT: u64 = 1;
/// Files are chunks shared between the live and the durable copy until one of them writes.
const CHUNK: usize = 64 * 1024;
/// The kernel asks again for every lookup and attribute: nothing it cached can outlive a
/// power loss.
const TTL: Duration = Duration::ZERO;

const ENOENT: i32 = 2;
const EIO: i32 = 5;
const EEXIST: i32 = 17;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const EINVAL: i32 = 22;
const ENOTEMPTY: i32 = 39;

/// A file's bytes, in copy-on-write chunks: making a durable copy costs one pointer per chunk.
#[derive(Clone, Default)]
struct Data {
    chunks: Vec<Arc<Vec<u8>>>,
    len: u64,
}

impl Data {
    fn read(&self, offset: u64, size: u64) -> Vec<u8> {
        let end = (offset + size).min(self.len);
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let mut pos = offset;
        while pos < end {
            let (i, within) = ((pos as usize) / CHUNK, (pos as usize) % CHUNK);
            let take = (CHUNK - within).min((end - pos) as usize);
            out.extend_from_slice(&self.chunks[i][within..within + take]);
            pos += take as u64;
        }
        out
    }

    fn write(&mut self, offset: u64, bytes: &[u8]) {
        let end = offset + bytes.len() as u64;
        if end > self.len {
            self.set_len(end);
        }
        let mut pos = offset;
        let mut rest = bytes;
        while !rest.is_empty() {
            let (i, within) = ((pos as usize) / CHUNK, (pos as usize) % CHUNK);
            let take = (CHUNK - within).min(rest.len());
            Arc::make_mut(&mut self.chunks[i])[within..within + take]
                .copy_from_slice(&rest[..take]);
            rest = &rest[take..];
            pos += take as u64;
        }
    }

    /// Truncates or extends with zeros.
    fn set_len(&mut self, len: u64) {
        let chunks = (len as usize).div_ceil(CHUNK);
        if len < self.len {
            // Bytes past the new end must read as zeros if the file grows again.
            let within = (len as usize) % CHUNK;
            if within != 0 {
                let last = Arc::make_mut(&mut self.chunks[chunks - 1]);
                last[within..].fill(0);
            }
        }
        self.chunks.resize_with(chunks, || Arc::new(vec![0; CHUNK]));
        self.len = len;
    }
}

enum Body {
    File {
        live: Data,
        durable: Data,
    },
    Dir {
        live: BTreeMap<OsString, u64>,
        durable: BTreeMap<OsString, u64>,
    },
}

struct Node {
    body: Body,
    perm: u16,
    mtime: SystemTime,
}

/// Everything the filesystem holds, live and durable.
pub struct Tree {
    nodes: BTreeMap<u64, Node>,
    next_ino: u64,
    /// fsyncs and directory fsyncs served, for the test to show that it went through here.
    pub fsyncs: u64,
    pub dir_fsyncs: u64,
    /// A failed disk: every request answers EIO (`CrashDisk::set_failing`).
    pub failing: bool,
}

impl Tree {
    fn new() -> Tree {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            ROOT,
            Node {
                body: Body::Dir {
                    live: BTreeMap::new(),
                    durable: BTreeMap::new(),
                },
                perm: 0o755,
                mtime: SystemTime::now(),
            },
        );
        Tree {
            nodes,
            next_ino: ROOT + 1,
            fsyncs: 0,
            dir_fsyncs: 0,
            failing: false,
        }
    }

    /// The power goes: every node falls back to its durable state, and nodes that no
    /// durable entry reaches from the root are gone.
    fn lose_power(&mut self) {
        let mut reachable = HashSet::from([ROOT]);
        let mut todo = vec![ROOT];
        while let Some(ino) = todo.pop() {
            if let Some(Node {
                body: Body::Dir { durable, .. },
                ..
            }) = self.nodes.get(&ino)
            {
                for child in durable.values() {
                    if reachable.insert(*child) {
                        todo.push(*child);
                    }
                }
            }
        }
        self.nodes.retain(|ino, _| reachable.contains(ino));
        for node in self.nodes.values_mut() {
            match &mut node.body {
                Body::File { live, durable } => *live = durable.clone(),
                Body::Dir { live, durable } => *live = durable.clone(),
            }
        }
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let node = self.nodes.get(&ino)?;
        let (kind, size, nlink) = match &node.body {
            Body::File { live, .. } => (FileType::RegularFile, live.len, 1),
            Body::Dir { .. } => (FileType::Directory, 0, 2),
        };
        Some(FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: node.mtime,
            mtime: node.mtime,
            ctime: node.mtime,
            crtime: node.mtime,
            kind,
            perm: node.perm,
            nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    fn children(&self, ino: u64) -> Result<&BTreeMap<OsString, u64>, i32> {
        match self.nodes.get(&ino).map(|n| &n.body) {
            Some(Body::Dir { live, .. }) => Ok(live),
            Some(Body::File { .. }) => Err(ENOTDIR),
            None => Err(ENOENT),
        }
    }

    fn children_mut(&mut self, ino: u64) -> Result<&mut BTreeMap<OsString, u64>, i32> {
        match self.nodes.get_mut(&ino) {
            Some(Node {
                body: Body::Dir { live, .. },
                mtime,
                ..
            }) => {
                *mtime = SystemTime::now();
                Ok(live)
            }
            Some(_) => Err(ENOTDIR),
            None => Err(ENOENT),
        }
    }

    fn data_mut(&mut self, ino: u64) -> Result<&mut Data, i32> {
        match self.nodes.get_mut(&ino) {
            Some(Node {
                body: Body::File { live, .. },
                mtime,
                ..
            }) => {
                *mtime = SystemTime::now();
                Ok(live)
            }
            Some(_) => Err(EISDIR),
            None => Err(ENOENT),
        }
    }

    fn add(&mut self, parent: u64, name: &OsStr, body: Body, perm: u16) -> Result<u64, i32> {
        if self.children(parent)?.contains_key(name) {
            return Err(EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(
            ino,
            Node {
                body,
                perm,
                mtime: SystemTime::now(),
            },
        );
        self.children_mut(parent)?.insert(name.to_owned(), ino);
        Ok(ino)
    }

    /// fsync: the node's live state becomes its durable state.
    fn make_durable(&mut self, ino: u64) -> Result<(), i32> {
        match self.nodes.get_mut(&ino).map(|n| &mut n.body) {
            Some(Body::File { live, durable }) => *durable = live.clone(),
            Some(Body::Dir { live, durable }) => *durable = live.clone(),
            None => return Err(ENOENT),
        }
        Ok(())
    }

    /// unlink (`dir` false: a file) or rmdir (`dir` true: an empty directory) of `name` in
    /// `parent`. The node stays until the power goes: an open descriptor still reads it, and
    /// a durable entry elsewhere may still name it.
    fn remove(&mut self, parent: u64, name: &OsStr, dir: bool) -> Result<(), i32> {
        let ino = *self.children(parent)?.get(name).ok_or(ENOENT)?;
        match (dir, self.children(ino).is_ok()) {
            (false, true) => return Err(EISDIR),
            (true, false) => return Err(ENOTDIR),
            (true, true) if !self.is_empty_dir(ino) => return Err(ENOTEMPTY),
            _ => {}
        }
        self.children_mut(parent)?.remove(name);
        Ok(())
    }

    fn is_empty_dir(&self, ino: u64) -> bool {
        self.children(ino).is_ok_and(|c| c.is_empty())
    }

    fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
    ) -> Result<(), i32> {
        let ino = *self.children(parent)?.get(name).ok_or(ENOENT)?;
        let moving_dir = self.children(ino).is_ok();
        if let Some(&target) = self.children(new_parent)?.get(new_name) {
            if target == ino {
                return Ok(());
            }
            match (moving_dir, self.children(target).is_ok()) {
                (true, false) => return Err(ENOTDIR),
                (false, true) => return Err(EISDIR),
                (true, true) if !self.is_empty_dir(target) => return Err(ENOTEMPTY),
                _ => {}
            }
        }
        self.children_mut(parent)?.remove(name);
        self.children_mut(new_parent)?
            .insert(new_name.to_owned(), ino);
        Ok(())
    }
}

/// The filesystem the kernel talks to.
struct CrashFs {
    tree: Arc<Mutex<Tree>>,
}

impl CrashFs {
    fn tree(&self) -> MutexGuard<'_, Tree> {
        self.tree.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The disk has failed: every request answers EIO.
    fn failing(&self) -> bool {
        self.tree().failing
    }

    fn entry(&self, ino: u64, reply: ReplyEntry) {
        match self.tree().attr(ino) {
            Some(attr) => reply.entry(&TTL, &attr, 0),
            None => reply.error(ENOENT),
        }
    }
}

impl Filesystem for CrashFs {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        if self.failing() {
            reply.error(EIO);
            return;
        }
        let found = self.tree().children(parent).map(|c| c.get(name).copied());
        match found {
            Ok(Some(ino)) => self.entry(ino, reply),
            Ok(None) => reply.error(ENOENT),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        if self.failing() {
            reply.error(EIO);
            return;
        }
        match self.tree().attr(ino) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(ENOENT),
        }
    }

    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        if self.failing() {
            reply.error(EIO);
            return;
        }
        let mut tree = self.tree();
        if let Some(size) = size {
            match tree.data_mut(ino) {
                Ok(data) => data.set_len(size),
                Err(e) => return reply.error(e),
            }
        }
        if let Some(node) = tree.nodes.get_mut(&ino) {
            if let Some(mode) = mode {
                node.perm = (mode & 0o7777) as u16;
            }
            match mtime {
                Some(TimeOrNow::SpecificTime(t)) => node.mtime = t,
                Some(TimeOrNow::Now) => node.mtime = SystemTime::now(),
                None => {}
            }
        }
        match tree.attr(ino) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(ENOENT),
        }
    }

    fn mkdir(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        if self.failing() {
            reply.error(EIO);
            return;
        }
        let body = Body::Dir {
            live: BTreeMap::new(),
            durable: BTreeMap::new(),
        };
        let added = self.tree().add(parent, name, body, (mode & 0o7777) as u16);
        match added {
            Ok(ino) => self.entry(ino, reply),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        if self.failing() {
            reply.error(EIO);
            return;
        }
        let body = Body::File {
            live: Data::default(),
            durable: Data::default(),
        };
        let mut tree = self.tree();
        match tree.add(parent, name, body, (mode & 0o7777) as u16) {
            Ok(ino) => match tree.attr(ino) {
                Some(attr) => reply.created(&TTL, &attr, 0, 0, 0),
                None => reply.error(ENOENT),
            },
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        if self.failing() {
            reply.error(EIO);
            return;
        }
        answer(reply, self.tree().remove(parent, name, false));
    }

    fn rmdir(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        if self.failing() {
            reply.error(EIO);
            return;
        }
        answer(reply, self.tree().remove(parent, name, true));
    }

    fn rename(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: u32,
        reply: ReplyEmpty,
    ) {
        if self.failing() {
            reply.error(EIO);
            return;
        }
        let mut tree = self.tree();
        const RENAME_NOREPLACE: u32 = 1;
        let result = match flags {
            0 => tree.rename(parent, name, new_parent, new_name),
            RENAME_NOREPLACE => match tree.children(new_parent).map(|c| c.contains_key(new_name)) {
                Ok(true) => Err(EEXIST),
                Ok(false) => tree.rename(parent, name, new_parent, new_name),
                Err(e) => Err(e),
            },
            _ => Err(EINVAL),
        };
        answer(reply, result);
    }

    fn open(&mut self, _req: &Request<'_>, _ino: u64, _flags: i32, reply: ReplyOpen) {
        if self.failing() {
            reply.error(EIO);
            return;
        }
        reply.opened(0, 0);
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        if self.failing() {
            reply.error(EIO);
            return;
        }
        let tree = self.tree();
        match tree.nodes.get(&ino).map(|n| &n.body) {
            Some(Body::File { live, .. }) => {
                reply.data(&live.read(offset.max(0) as u64, u64::from(size)))
            }
            Some(Body::Dir { .. }) => reply.error(EISDIR),
            None => reply.error(ENOENT),
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        if self.failing() {
            reply.error(EIO);
            return;
        }
        match self.tree().data_mut(ino) {
            Ok(live) => {
                live.write(offset.max(0) as u64, data);
                reply.written(data.len() as u32)
            }
            Err(e) => reply.error(e),
        }
    }

    fn flush(&mut self, _req: &Request<'_>, _ino: u64, _fh: u64, _owner: u64, reply: ReplyEmpty) {
        if self.failing() {
            reply.error(EIO);
            return;
        }
        // close(2) makes nothing durable.
        reply.ok();
    }

    fn fsync(&mut self, _req: &Request<'_>, ino: u64, _fh: u64, _data: bool, reply: ReplyEmpty) {
        if self.failing() {
            reply.error(EIO);
            return;
        }
        let mut tree = self.tree();
        tree.fsyncs += 1;
        // fsync(2) on a directory descriptor may arrive here rather than as fsyncdir.
        answer(reply, tree.make_durable(ino));
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        if self.failing() {
            reply.error(EIO);
            return;
        }
        let tree = self.tree();
        let children = match tree.children(ino) {
            Ok(c) => c,
            Err(e) => return reply.error(e),
        };
        let entries = [
            (ino, FileType::Directory, OsString::from(".")),
            (ino, FileType::Directory, OsString::from("..")),
        ]
        .into_iter()
        .chain(children.iter().map(|(name, child)| {
            let kind = match tree.nodes.get(child).map(|n| &n.body) {
                Some(Body::Dir { .. }) => FileType::Directory,
                _ => FileType::RegularFile,
            };
            (*child, kind, name.clone())
        }));
        for (i, (child, kind, name)) in entries.enumerate().skip(offset.max(0) as usize) {
            if reply.add(child, i as i64 + 1, kind, name) {
                break;
            }
        }
        reply.ok()
    }

    fn fsyncdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        if self.failing() {
            reply.error(EIO);
            return;
        }
        let mut tree = self.tree();
        tree.dir_fsyncs += 1;
        let synced = tree
            .children(ino)
            .map(|_| ())
            .and_then(|()| tree.make_durable(ino));
        answer(reply, synced);
    }

    fn statfs(&mut self, _req: &Request<'_>, _ino: u64, reply: ReplyStatfs) {
        if self.failing() {
            reply.error(EIO);
            return;
        }
        // 16 GiB free in 4 KiB blocks: the broker's free-space checks see a roomy disk.
        let blocks = 4 << 20;
        reply.statfs(blocks, blocks, blocks, 1 << 20, 1 << 20, 4096, 255, 4096);
    }
}

fn answer(reply: ReplyEmpty, result: Result<(), i32>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

/// The filesystem mounted at a directory, and the power switch.
pub struct CrashDisk {
    pub mountpoint: PathBuf,
    tree: Arc<Mutex<Tree>>,
    session: Option<BackgroundSession>,
}

impl CrashDisk {
    /// Mounts an empty filesystem at `mountpoint` (an existing directory). Needs /dev/fuse
    /// and the right to mount (root); the error says which failed.
    pub fn mount(mountpoint: &Path) -> std::io::Result<CrashDisk> {
        let mut disk = CrashDisk {
            mountpoint: mountpoint.to_path_buf(),
            tree: Arc::new(Mutex::new(Tree::new())),
            session: None,
        };
        disk.attach()?;
        Ok(disk)
    }

    fn attach(&mut self) -> std::io::Result<()> {
        let fs = CrashFs {
            tree: self.tree.clone(),
        };
        let options = [
            MountOption::FSName("crashfs".into()),
            MountOption::RW,
            MountOption::DefaultPermissions,
        ];
        self.session = Some(fuser::spawn_mount2(fs, &self.mountpoint, &options)?);
        Ok(())
    }

    /// Cuts the power: unmounts (every process using the disk must be gone), forgets what
    /// was never made durable, and mounts what is left.
    pub fn power_loss(&mut self) -> std::io::Result<()> {
        if let Some(session) = self.session.take() {
            session.join();
        }
        self.tree
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lose_power();
        self.attach()
    }

    pub fn tree(&self) -> MutexGuard<'_, Tree> {
        self.tree.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The disk fails (every request answers EIO, as a dying disk's do) or is repaired.
    pub fn set_failing(&self, failing: bool) {
        self.tree().failing = failing;
    }
}

impl Drop for CrashDisk {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            // Detached first: a test that failed may leave a process with files open here,
            // and a plain unmount would then wait for it forever.
            if let Ok(path) = std::ffi::CString::new(self.mountpoint.as_os_str().as_encoded_bytes())
            {
                // SAFETY: umount2 reads the NUL-terminated path only.
                unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
            }
            session.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_reads_back_what_was_written_across_chunks_and_truncation() {
        let mut d = Data::default();
        d.write(CHUNK as u64 - 3, b"abcdef");
        assert_eq!(d.len, CHUNK as u64 + 3);
        assert_eq!(d.read(CHUNK as u64 - 3, 6), b"abcdef");
        assert_eq!(d.read(0, 2), [0, 0]);
        let durable = d.clone();
        d.set_len(CHUNK as u64 - 1);
        d.set_len(CHUNK as u64 + 3);
        assert_eq!(d.read(CHUNK as u64 - 3, 6), b"ab\0\0\0\0");
        assert_eq!(
            durable.read(CHUNK as u64 - 3, 6),
            b"abcdef",
            "the copy is untouched"
        );
    }

    #[test]
    fn power_loss_keeps_only_fsynced_data_reachable_through_fsynced_entries() {
        let mut t = Tree::new();
        let file = |t: &mut Tree, parent, name: &str| {
            let body = Body::File {
                live: Data::default(),
                durable: Data::default(),
            };
            t.add(parent, OsStr::new(name), body, 0o644).unwrap()
        };
        let synced = file(&mut t, ROOT, "synced");
        let unsynced_entry = file(&mut t, ROOT, "entry-not-synced");
        t.data_mut(synced).unwrap().write(0, b"durable");
        t.data_mut(unsynced_entry).unwrap().write(0, b"x");
        t.make_durable(synced).unwrap();
        // The root is fsynced as it was before the second file was created.
        t.remove(ROOT, OsStr::new("entry-not-synced"), false)
            .unwrap();
        t.make_durable(ROOT).unwrap();
        t.children_mut(ROOT)
            .unwrap()
            .insert("entry-not-synced".into(), unsynced_entry);
        t.data_mut(synced).unwrap().write(7, b" and lost");
        t.lose_power();
        let names: Vec<_> = t.children(ROOT).unwrap().keys().cloned().collect();
        assert_eq!(names, vec![OsString::from("synced")]);
        let Some(Body::File { live, .. }) = t.nodes.get(&synced).map(|n| &n.body) else {
            panic!("the synced file is gone");
        };
        assert_eq!(live.read(0, 100), b"durable");
        assert!(!t.nodes.contains_key(&unsynced_entry));
    }
}
