//! Giving the heap's free memory back to the system: a long-lived process
//! that goes idle after a peak (imapd's mail process after a command on a
//! large mailbox) would otherwise keep the peak's pages, as the C
//! library returns only a free top of the heap by itself; and the C
//! library's settings for such a process ([`COMPACT_HEAP_TUNABLES`]).

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

/// The environment variable that carries [`COMPACT_HEAP_TUNABLES`] to a
/// process started with exec (glibc reads it at start; other C libraries
/// ignore it).
pub const TUNABLES_VARIABLE: &str = "GLIBC_TUNABLES";

/// glibc malloc settings for a process that spends most of its life idle
/// holding little (imapd's mail process): no per-thread cache and no fast
/// bins, so that a freed chunk merges with its free neighbours at once
/// and [`trim_heap`] finds whole free pages to give back, instead of
/// small freed chunks kept aside pinning pages of the heap (about 65 KiB
/// of a 600 KiB session measured). Costs some speed in allocation-heavy
/// commands.
pub const COMPACT_HEAP_TUNABLES: &str = "glibc.malloc.tcache_count=0:glibc.malloc.mxfast=0";
