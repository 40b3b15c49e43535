//! The unit tests' allocator: the system allocator, except that a single allocation above
//! `LIMIT` aborts the test binary with a message. No test frame is larger than a few
//! kilobytes, so an allocation that size can only come from a length read off the wire.

use std::alloc::{GlobalAlloc, Layout, System};

const LIMIT: usize = 256 << 20;

struct Guard;

fn check(size: usize) {
    if size > LIMIT {
        let msg = b"alloc_guard: an allocation above 256 MiB (a length taken from a frame?)\n";
        // SAFETY: writing a static buffer to stderr; no allocation on this path.
        unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
        std::process::abort();
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator after the size check.
unsafe impl GlobalAlloc for Guard {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GUARD: Guard = Guard;
