//! Give memory the allocator holds but no longer uses back to the OS.
//!
//! After a burst (thousands of clients joining, each welcome listing
//! everyone, each join announced to everyone), glibc's allocator keeps the
//! freed memory in its heaps: with 8,000 idle clients the server held
//! ~40 MB, of which ~19 MB was in use. `malloc_trim` returns the free
//! pages. The hub calls [`release_free_memory`] when the server goes
//! quiet after a burst (an interval with few inputs after many, or few
//! connections opened and closed after many), or once outbound queues
//! that held 16 MiB or more since the last release hold a quarter of it
//! or less, on a blocking thread so the hub never waits for it.

/// Return free heap pages to the OS, on a blocking thread. A no-op where
/// the allocator is not glibc's.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::task::spawn_blocking(|| {
        // SAFETY: malloc_trim takes no pointers and has no preconditions;
        // glibc makes it safe to call while other threads allocate.
        unsafe {
            libc::malloc_trim(0);
        }
    });
}
