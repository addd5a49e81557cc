//! The entry point of a command that runs once per message (sendmail,
//! postdrop): C's `main`, without Rust's runtime set-up.
//!
//! ```text
//! privsep::lean_main!(body: fn());   // in the binary's main.rs, with #![no_main]
//! privsep::entry::run(body: fn()) -> !
//! ```
//!
//! Rust's `fn main` first reads /proc/self/maps (to find the main thread's
//! stack guard), maps an alternate signal stack and installs SIGSEGV and
//! SIGBUS handlers that print "stack overflow"; on this machine kind that
//! is about a tenth of a millisecond a process, and a submission starts
//! two (docs/BENCH.md, "Issue 12: two commands a message, started lean").
//! [`run`] does what of that set-up these commands need, in Postfix's
//! order: the standard descriptors are opened on /dev/null when closed
//! (before anything else is opened, so a closed stderr cannot become the
//! maildrop file or the log), SIGPIPE is ignored (a write to a closed pipe
//! or socket is an error to report, not a silent death), then the body
//! runs; a panic is reported by the panic hook on stderr and ends the
//! process with EX_SOFTWARE (70). `std::env::args` needs no set-up with
//! the GNU C library (the standard library takes them from `.init_array`).
//! A stack overflow still ends the process (SIGSEGV), without the message.

use std::io::Write;

/// sysexits.h EX_OSERR: a standard descriptor could not be opened.
const EX_OSERR: i32 = 71;
/// sysexits.h EX_SOFTWARE: the body panicked.
const EX_SOFTWARE: i32 = 70;

/// Declares C's `main` for a binary crate with `#![cfg_attr(not(test),
/// no_main)]`: it calls [`run`] with `body`. Unit tests keep the test
/// harness's own `main`.
#[macro_export]
macro_rules! lean_main {
    ($body:path) => {
        #[cfg(not(test))]
        #[allow(unsafe_code, reason = "C's main is the process entry point")]
        #[unsafe(no_mangle)]
        extern "C" fn main(
            _argc: ::std::ffi::c_int,
            _argv: *const *const ::std::ffi::c_char,
        ) -> ::std::ffi::c_int {
            $crate::entry::run($body)
        }
        // Unit test builds have no C main; the body is still in use.
        #[cfg(test)]
        const _: fn() = $body;
    };
}

/// Prepares the process (see the module doc), runs `body` and exits: 0
/// when it returns, 70 (EX_SOFTWARE) when it panics. Exits through
/// `std::process::exit`, which flushes Rust's stdout.
pub fn run(body: fn()) -> ! {
    if let Err(e) = crate::setgid::open_standard_fds() {
        let _ = writeln!(std::io::stderr(), "fatal: {e}");
        std::process::exit(EX_OSERR);
    }
    ignore_sigpipe();
    match std::panic::catch_unwind(body) {
        Ok(()) => std::process::exit(0),
        Err(_) => std::process::exit(EX_SOFTWARE),
    }
}

/// SIGPIPE to SIG_IGN, as Rust's runtime does (and as children started
/// through std::process::Command get it reset to the default).
fn ignore_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    #[allow(unsafe_code, reason = "setting a signal's disposition")]
    // SAFETY: SIG_IGN installs no handler code; nothing else in the
    // process has touched SIGPIPE this early (no threads exist yet).
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
}
