//! Giving the heap's free memory back to the system: a long-lived process
//! that goes idle after a peak (imapd's mail process after a command on a
//! large mailbox) would otherwise keep the peak's pages, as the C
//! library returns only a free top of the heap by itself.

/// Returns the free pages of the C library's heap to the system (glibc's
/// `malloc_trim(0)`); nothing elsewhere.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim takes a plain integer and works on the
    // allocator's own free lists under the allocator's lock; it may be
    // called at any time, from any thread, and frees nothing in use.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}
