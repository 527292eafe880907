//! glibc's own account of its heap: `malloc_stats()` writes, to standard error, each arena's
//! system bytes (taken from the kernel) and in-use bytes (handed out), and the totals. The
//! difference is what RSS holds beyond the live blocks: headers, rounding and free holes.

#[allow(unsafe_code)]
mod ffi {
    // SAFETY: glibc's `void malloc_stats(void)`, no arguments, no return value.
    unsafe extern "C" {
        pub fn malloc_stats();
    }
}

/// Prints glibc's arena statistics to standard error.
pub fn print_stats() {
    // SAFETY: malloc_stats takes nothing and only reads the allocator's state under its locks.
    #[allow(unsafe_code)]
    unsafe {
        ffi::malloc_stats()
    }
}
