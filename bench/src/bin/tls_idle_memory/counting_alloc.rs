//! The global allocator of `tls-idle-memory`: the system allocator, counting the bytes and
//! blocks that are live, and — while [`trace_start`] is on — remembering where each new block
//! was allocated, so the blocks one connection still holds when it is idle can be named.
//!
//! Counted bytes are the sizes asked for (`Layout::size`), not what glibc hands out: its
//! per-block header and rounding, and the holes between blocks, show only in RSS.

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// The system allocator, counted.
pub struct Counting;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static LIVE_BLOCKS: AtomicI64 = AtomicI64::new(0);
static TRACING: AtomicBool = AtomicBool::new(false);
/// Blocks allocated while tracing and not yet freed: address → (size, where).
static TRACED: Mutex<Option<HashMap<usize, (usize, Backtrace)>>> = Mutex::new(None);

thread_local! {
    /// Set while this thread is inside the tracing bookkeeping, whose own allocations
    /// (the backtrace, the map) are neither traced nor looked up.
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Live bytes and live blocks now.
pub fn live() -> (i64, i64) {
    (LIVE_BYTES.load(Ordering::SeqCst), LIVE_BLOCKS.load(Ordering::SeqCst))
}

/// From now on, every new block remembers its backtrace until it is freed.
pub fn trace_start() {
    TRACING.store(true, Ordering::SeqCst);
}

/// Stops tracing; the blocks allocated while tracing that are still live, with their size.
pub fn trace_stop() -> Vec<(usize, Backtrace)> {
    TRACING.store(false, Ordering::SeqCst);
    let taken = TRACED.lock().map(|mut m| m.take()).unwrap_or_default();
    taken.map(|m| m.into_values().collect()).unwrap_or_default()
}

fn guarded(f: impl FnOnce()) {
    let _ = INSIDE.try_with(|inside| {
        if inside.get() {
            return;
        }
        inside.set(true);
        f();
        inside.set(false);
    });
}

fn added(ptr: *mut u8, size: usize) {
    LIVE_BYTES.fetch_add(size as i64, Ordering::Relaxed);
    LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
    if TRACING.load(Ordering::Relaxed) {
        guarded(|| {
            let trace = Backtrace::force_capture();
            if let Ok(mut map) = TRACED.lock() {
                map.get_or_insert_with(HashMap::new).insert(ptr as usize, (size, trace));
            }
        });
    }
}

fn removed(ptr: *mut u8, size: usize) {
    LIVE_BYTES.fetch_sub(size as i64, Ordering::Relaxed);
    LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
    if TRACING.load(Ordering::Relaxed) {
        guarded(|| {
            if let Ok(mut map) = TRACED.lock()
                && let Some(map) = map.as_mut()
            {
                map.remove(&(ptr as usize));
            }
        });
    }
}

// SAFETY: every call is passed to `System` unchanged; the counting around it touches only
// atomics, a thread-local flag and a mutex whose own allocations skip the bookkeeping.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            added(ptr, layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            added(ptr, layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        removed(ptr, layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            removed(ptr, layout.size());
            added(new, new_size);
        }
        new
    }
}
