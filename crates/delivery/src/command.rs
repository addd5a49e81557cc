//! Running a delivery command (Postfix's pipe_command.c): `|command`
//! aliases and .forward entries, mailbox_command, and pipe(8) services.
//!
//! The command runs in its own process group with a clean environment,
//! as the given user (when the agent is root), with the message on stdin
//! and stdout and stderr on one pipe. The first [`OUTPUT_LIMIT`] bytes of
//! its output are kept (for the DSN text), the rest is read and dropped.
//! Past the time limit the whole process group is killed.
//!
//! [`outcome`] maps the result as Postfix does: exit 0 is success; a
//! sysexits code gets its status and text from [`crate::sysexits`] (75,
//! EX_TEMPFAIL, and 71 defer, the others bounce); any other status
//! bounces with 5.3.0 `Command died with status N`; a signal defers; the
//! time limit bounces with 5.3.0; a damaged queue file defers.

use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::agent::Outcome;
use crate::copy;
use crate::privs::Ids;

/// Bytes of command output kept for the DSN text.
pub const OUTPUT_LIMIT: usize = 200;

/// The longest time limit applied (a longer one is cut to this): the
/// largest that main.cf time parameters allow (2^31 - 1 seconds).
pub const MAX_TIME_LIMIT: Duration = Duration::from_secs(i32::MAX as u64);

/// How long to wait for the output pipe to close after the command exited
/// (a background child may keep it open).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// A command to run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Program and arguments (`["/bin/sh", "-c", "cmd"]` for shell commands).
    pub argv: Vec<String>,
    /// The whole environment.
    pub env: Vec<(String, String)>,
    /// Working directory (None: `/`).
    pub cwd: Option<PathBuf>,
    /// Run as this user (only applied when the agent is root).
    pub ids: Option<Ids>,
    /// Time limit.
    pub time_limit: Duration,
}

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// exit(n).
    Code(i32),
    /// Killed by a signal.
    Signal(i32),
    /// Killed after the time limit.
    TimedOut,
}

/// What happened.
#[derive(Debug)]
pub struct Finished {
    /// Exit.
    pub exit: Exit,
    /// The first [`OUTPUT_LIMIT`] bytes of output, made printable.
    pub output: String,
    /// Reading the message failed (damaged queue file): never a success.
    pub read_error: Option<io::Error>,
    /// Writing to the command failed other than by a closed pipe.
    pub write_error: Option<io::Error>,
}

/// Runs `spec`, writing the message with `copy_options` from `content`.
///
/// # Errors
/// The command could not be started (fork, exec, pipes).
pub fn run(
    spec: &Spec,
    content: &mut dyn Read,
    copy_options: &copy::Options,
) -> io::Result<Finished> {
    let Some((program, args)) = spec.argv.split_first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
    };
    let (out_read, out_write) = nix::unistd::pipe().map_err(io::Error::from)?;
    let err_write: OwnedFd = out_write.try_clone()?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(spec.cwd.clone().unwrap_or_else(|| PathBuf::from("/")))
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out_write))
        .stderr(Stdio::from(err_write))
        .process_group(0);
    if let Some(ids) = spec.ids
        && crate::privs::can_switch()
    {
        cmd.uid(ids.uid).gid(ids.gid);
    }
    let mut child = cmd.spawn()?;
    // The parent's copies of the write ends are gone with `cmd`.
    drop(cmd);
    let pgid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
    let started = Instant::now();
    let deadline = started
        .checked_add(spec.time_limit.min(MAX_TIME_LIMIT))
        .unwrap_or(started);
    let output = collect_output(std::fs::File::from(out_read));

    // A watchdog kills the group if writing the message outlasts the limit
    // (a command that does not read its input). It is called off before
    // the child is reaped, so the pid cannot have been reused.
    let (cancel, cancelled) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if cancelled.recv_timeout(spec_limit(deadline)) == Err(mpsc::RecvTimeoutError::Timeout) {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::SIGKILL);
            return true;
        }
        false
    });
    let mut read_error = None;
    let mut write_error = None;
    if let Some(mut stdin) = child.stdin.take() {
        match copy::copy(content, &mut stdin, copy_options) {
            Ok(_) => {}
            Err(copy::Error::Read(e)) => read_error = Some(e),
            Err(copy::Error::Write(e)) => {
                if e.kind() != io::ErrorKind::BrokenPipe {
                    write_error = Some(e);
                }
                // The command stopped reading: the rest must still be
                // read, so that a damaged queue file is never a success.
                if let Err(e) = io::copy(content, &mut io::sink()) {
                    read_error = Some(e);
                }
            }
        }
    }
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::SIGKILL);
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = cancel.send(());
    if watchdog.join().unwrap_or(false) {
        timed_out = true;
    }
    let exit = if timed_out {
        Exit::TimedOut
    } else if let Some(code) = status.code() {
        Exit::Code(code)
    } else {
        Exit::Signal(status.signal().unwrap_or(0))
    };
    let output = output.recv_timeout(OUTPUT_GRACE).unwrap_or_default();
    Ok(Finished {
        exit,
        output,
        read_error,
        write_error,
    })
}

fn spec_limit(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Reads the output pipe to its end in a thread; sends the kept part.
fn collect_output(mut pipe: std::fs::File) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::with_capacity(OUTPUT_LIMIT);
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                    kept.extend_from_slice(buf.get(..n.min(room)).unwrap_or_default());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        for b in &mut kept {
            if b.is_ascii_whitespace() {
                *b = b' ';
            }
        }
        let text = maillog::printable_bytes(&kept, OUTPUT_LIMIT);
        let _ = tx.send(text.split_whitespace().collect::<Vec<_>>().join(" "));
    });
    rx
}

/// Maps a finished command to a delivery outcome, Postfix's way;
/// `command` names it in texts, `success` is the text on success.
pub fn outcome(result: &Finished, command: &str, success: &str) -> Outcome {
    let command = maillog::printable(command, 100);
    let with_output = |text: String| {
        if result.output.is_empty() {
            text
        } else {
            format!("{text}. Command output: {}", result.output)
        }
    };
    if let Some(e) = &result.read_error {
        return Outcome::defer("4.3.0", format!("queue file read error: {e}"));
    }
    match result.exit {
        Exit::Code(0) => match &result.write_error {
            Some(e) => Outcome::defer("4.3.0", format!("command failed: {e}")),
            None => Outcome::sent(success),
        },
        Exit::Code(code) => match crate::sysexits::detail(code) {
            Some(d) => {
                let text = with_output(d.text.to_string());
                if d.is_temporary() {
                    Outcome::defer(d.dsn, text)
                } else {
                    Outcome::bounce(d.dsn, text)
                }
            }
            None => Outcome::bounce(
                "5.3.0",
                with_output(format!("Command died with status {code}: \"{command}\"")),
            ),
        },
        Exit::Signal(sig) => Outcome::defer(
            "4.3.0",
            with_output(format!("Command died with signal {sig}: \"{command}\"")),
        ),
        Exit::TimedOut => Outcome::bounce(
            "5.3.0",
            with_output(format!("Command time limit exceeded: \"{command}\"")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::deliver::Action;

    fn sh(cmd: &str, limit: Duration) -> Spec {
        Spec {
            argv: vec!["/bin/sh".into(), "-c".into(), cmd.into()],
            env: vec![
                ("PATH".into(), "/usr/bin:/bin".into()),
                ("X".into(), "y".into()),
            ],
            cwd: None,
            ids: None,
            time_limit: limit,
        }
    }

    #[test]
    fn success_reads_stdin_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let spec = sh(
            &format!("cat > {}; echo $X >> {}", out.display(), out.display()),
            Duration::from_secs(10),
        );
        let r = run(&spec, &mut "hello\n".as_bytes(), &copy::Options::default()).unwrap();
        assert_eq!(r.exit, Exit::Code(0));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "hello\ny\n");
        assert_eq!(outcome(&r, "c", "ok").action, Action::Delivered);
    }

    #[test]
    fn tempfail_defers_and_other_codes_bounce_with_output() {
        let spec = sh("echo try later; exit 75", Duration::from_secs(10));
        let r = run(&spec, &mut "m\n".as_bytes(), &copy::Options::default()).unwrap();
        let o = outcome(&r, "c", "ok");
        assert_eq!((o.action, o.dsn.as_str()), (Action::Deferred, "4.3.0"));
        assert_eq!(o.text, "temporary failure. Command output: try later");

        let spec = sh(
            "cat >/dev/null; echo no such thing >&2; exit 1",
            Duration::from_secs(10),
        );
        let r = run(&spec, &mut "m\n".as_bytes(), &copy::Options::default()).unwrap();
        let o = outcome(&r, "/bin/x", "ok");
        assert_eq!(o.action, Action::Bounced);
        assert_eq!(
            o.text,
            "Command died with status 1: \"/bin/x\". Command output: no such thing"
        );

        let spec = sh("exit 67", Duration::from_secs(10));
        let r = run(&spec, &mut "m\n".as_bytes(), &copy::Options::default()).unwrap();
        assert_eq!(outcome(&r, "c", "ok").dsn, "5.1.1");
    }

    #[test]
    fn time_limit_kills_the_group() {
        let started = Instant::now();
        let spec = sh("sleep 30 & sleep 30", Duration::from_millis(300));
        let big = vec![b'x'; 10];
        let r = run(&spec, &mut big.as_slice(), &copy::Options::default()).unwrap();
        assert_eq!(r.exit, Exit::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(outcome(&r, "c", "ok").action, Action::Bounced);
    }

    /// A limit past what Instant can hold is cut, not a panic.
    #[test]
    fn huge_time_limit_is_cut_not_a_panic() {
        let spec = sh("cat >/dev/null", Duration::MAX);
        let r = run(&spec, &mut "m\n".as_bytes(), &copy::Options::default()).unwrap();
        assert_eq!(r.exit, Exit::Code(0));
    }

    #[test]
    fn command_not_reading_a_large_message() {
        // Exits at once without reading: a broken pipe is not an error.
        let spec = sh("exit 0", Duration::from_secs(10));
        let big = vec![b'x'; 4 << 20];
        let r = run(&spec, &mut big.as_slice(), &copy::Options::default()).unwrap();
        assert_eq!(outcome(&r, "c", "ok").action, Action::Delivered);
    }

    #[test]
    fn output_is_bounded() {
        let spec = sh("yes | head -c 100000; exit 1", Duration::from_secs(10));
        let r = run(&spec, &mut "m\n".as_bytes(), &copy::Options::default()).unwrap();
        assert!(r.output.len() <= OUTPUT_LIMIT);
    }
}
