//! Stand-ins for record sets that stay on disk.
//!
//! A Fetch answer's large record sets are ranges of segment files, sent to the socket with
//! sendfile. The generated encoder still wants each one as a byte string of the right
//! length, so it gets a stand-in: a slice of one read-only mapping of zero pages that
//! nothing writes and nothing needs to read (the encoder hands it to `put_slice`, where
//! the encoding buffer in `response` recognises it by its address and leaves a gap in the
//! frame instead of copying). Stand-in number `i` starts `i` bytes into the mapping, so its
//! address also says which file range fills its gap.

use std::sync::OnceLock;

use bytes::Bytes;

/// Address space reserved for stand-ins (no memory: a read-only anonymous mapping costs
/// nothing until touched). Record sets that do not fit are read into memory instead.
const REGION_BYTES: usize = 1 << 30;

static REGION: OnceLock<Option<&'static [u8]>> = OnceLock::new();

fn region() -> Option<&'static [u8]> {
    *REGION.get_or_init(|| {
        // SAFETY: a new private anonymous read-only mapping, no file, no fixed address.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                REGION_BYTES,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        // SAFETY: the mapping is REGION_BYTES long, readable (zero pages) and never
        // unmapped, so a 'static shared slice of it is valid.
        Some(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), REGION_BYTES) })
    })
}

/// A stand-in for record set number `index` of `len` (> 0) bytes, or None if it does not
/// fit (the caller then puts the real bytes in the response).
pub fn stand_in(index: usize, len: usize) -> Option<Bytes> {
    let region = region()?;
    let end = index.checked_add(len)?;
    (len > 0 && end <= region.len()).then(|| Bytes::from_static(&region[index..end]))
}

/// The index of the stand-in `src` is, if it is one.
pub(crate) fn stand_in_index(src: &[u8]) -> Option<usize> {
    let region = (*REGION.get()?)?;
    let base = region.as_ptr() as usize;
    let start = src.as_ptr() as usize;
    (!src.is_empty() && start >= base && start + src.len() <= base + region.len())
        .then(|| start - base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_ins_are_told_apart_by_index_and_real_bytes_are_not_stand_ins() {
        let a = stand_in(0, 10_000).unwrap();
        let b = stand_in(1, 10_000).unwrap();
        assert_eq!((a.len(), b.len()), (10_000, 10_000));
        assert_eq!(stand_in_index(&a), Some(0));
        assert_eq!(stand_in_index(&b), Some(1));
        assert_eq!(stand_in_index(&vec![0u8; 10_000]), None);
        assert_eq!(stand_in_index(b""), None);
        assert!(stand_in(5, 0).is_none());
        assert!(stand_in(1, REGION_BYTES).is_none(), "past the region");
    }
}
