//! `smtpd -S`: one SMTP session on stdin/stdout for `sendmail -bs`.
//!
//! The client is the local user who ran sendmail. As in Postfix, a
//! stand-alone smtpd does not talk to cleanup (public/ is not open to
//! every user): each message goes to command_directory/postdrop as the
//! same proto::cleanup frame stream sendmail writes, and 250 is sent only
//! after postdrop exits 0 (the maildrop file is fsynced and complete).
//! Every recipient is accepted (a local submission); there is no TLS and
//! no AUTH.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use config::Config;
use proto::cleanup::{Begin, RecipientSpec, Request};

use crate::command::{Body, Ret};
use crate::reply::Reply;
use crate::session::{Action, AuthStep, Config as SessionConfig, Session};

/// A message being handed to postdrop.
struct Drop {
    child: Option<Child>,
    pipe: Option<std::io::BufWriter<ChildStdin>>,
    failed: bool,
}

/// Runs the session; exits when the client quits or stdin ends.
pub fn run() -> ! {
    let dir = config::default_config_dir();
    let cfg = match Config::load(&dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("smtpd: fatal: {e}");
            std::process::exit(1);
        }
    };
    let file = cfg.str("maillog_file");
    maillog::init(
        maillog::Setup::new(maillog::Options {
            syslog_name: cfg.str("syslog_name"),
            program: "smtpd".into(),
            maillog_file: (!file.is_empty()).then(|| PathBuf::from(file)),
            stderr: false,
        })
        .hostname(&cfg.str("myhostname")),
    );
    let uid = nix::unistd::getuid();
    let login = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string());
    let session_cfg = SessionConfig {
        hostname: cfg.str("myhostname"),
        banner: cfg.str("smtpd_banner"),
        line_length_limit: usize::try_from(cfg.int("line_length_limit")).unwrap_or(2048),
        message_size_limit: cfg.size("message_size_limit"),
        // A local user pipes commands as fast as it likes.
        forbid_unauth_pipelining: false,
        ..SessionConfig::default()
    };
    let mut st = Standalone {
        session: Session::new(session_cfg),
        postdrop: PathBuf::from(cfg.str("command_directory")).join("postdrop"),
        config_dir: dir,
        login,
        drop: None,
        sender: String::new(),
        params: Default::default(),
        out: std::io::stdout().lock(),
        error_sleep: cfg.time("smtpd_error_sleep_time"),
    };
    maillog::info!("connect from localhost, user {}", st.login);
    let g = st.session.greeting();
    st.reply(&g);
    st.flush();
    let mut input = std::io::stdin().lock();
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) | Err(_) => {
                maillog::info!(
                    "lost connection after {} from localhost",
                    st.session.last_command()
                );
                st.abort();
                st.exit();
            }
            Ok(n) => n,
        };
        pending.extend_from_slice(buf.get(..n).unwrap_or(&[]));
        loop {
            let (used, actions) = st.session.receive(&pending);
            pending.drain(..used.min(pending.len()));
            if actions.is_empty() && used == 0 {
                break;
            }
            st.perform_all(actions);
        }
        st.flush();
    }
}

struct Standalone {
    session: Session,
    postdrop: PathBuf,
    config_dir: PathBuf,
    login: String,
    drop: Option<Drop>,
    sender: String,
    params: crate::command::MailParams,
    out: std::io::StdoutLock<'static>,
    error_sleep: Duration,
}

impl Standalone {
    fn reply(&mut self, r: &Reply) {
        let _ = self.out.write_all(&r.to_wire());
    }

    fn flush(&mut self) {
        let _ = self.out.flush();
    }

    fn exit(&mut self) -> ! {
        self.flush();
        maillog::info!(
            "disconnect from localhost {}",
            self.session.command_counts()
        );
        std::process::exit(0)
    }

    fn perform_all(&mut self, actions: Vec<Action>) {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(a) = queue.pop_front() {
            let more = self.perform(a);
            queue.extend(more);
        }
    }

    fn perform(&mut self, action: Action) -> Vec<Action> {
        match action {
            Action::Reply(r) => self.reply(&r),
            Action::BeginMessage { sender, params } => {
                self.sender = sender.address.to_internal();
                self.params = params;
            }
            Action::CheckRecipient { .. } => return self.session.recipient_checked(Ok(())),
            Action::CheckHelo { .. } => return self.session.helo_checked(Ok(())),
            Action::CheckSender { .. } => return self.session.sender_checked(Ok(())),
            Action::CheckData => return self.session.data_checked(Ok(())),
            Action::AddRecipient { recipient, params } => {
                if self.drop.is_none() {
                    self.open();
                }
                let spec = RecipientSpec {
                    address: recipient.address.to_internal(),
                    orcpt: params.orcpt.map(|(t, a)| format!("{t};{a}")),
                    notify: 0,
                };
                self.write(&Request::Recipient(spec));
            }
            Action::Content(c) => self.write(&Request::Content(c)),
            Action::EndMessage { .. } => {
                let r = self.finish();
                return self.session.message_queued(r);
            }
            Action::AbortMessage => self.abort(),
            Action::Verify(text) => {
                return self.session.answer(Reply::new(252, Some("2.0.0"), text));
            }
            Action::Etrn(_) => {
                return self
                    .session
                    .answer(Reply::new(458, None, "Unable to queue messages"));
            }
            Action::Auth { .. } | Action::AuthResponse(_) => {
                return self.session.auth_step(AuthStep::Failure(Reply::new(
                    503,
                    Some("5.5.1"),
                    "Error: authentication not enabled",
                )));
            }
            Action::ErrorSleep => {
                self.flush();
                std::thread::sleep(self.error_sleep);
            }
            Action::Close => self.exit(),
            _ => {}
        }
        Vec::new()
    }

    fn open(&mut self) {
        let mut cmd = Command::new(&self.postdrop);
        cmd.arg("-r")
            .arg("-c")
            .arg(&self.config_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                maillog::warning!("execvp {}: {e}", self.postdrop.display());
                self.drop = Some(Drop {
                    child: None,
                    pipe: None,
                    failed: true,
                });
                return;
            }
        };
        let pipe = child.stdin.take().map(std::io::BufWriter::new);
        self.drop = Some(Drop {
            child: Some(child),
            pipe,
            failed: false,
        });
        let mut attributes = vec![
            ("protocol".to_string(), self.session.protocol().to_string()),
            ("rewrite_context".to_string(), "local".to_string()),
        ];
        if let Some(h) = self.session.helo_name() {
            attributes.push(("helo_name".into(), h.to_string()));
        }
        if let Some(e) = &self.params.envid {
            attributes.push(("dsn_envid".into(), e.clone()));
        }
        if let Some(r) = self.params.ret {
            let v = if r == Ret::Full { "FULL" } else { "HDRS" };
            attributes.push(("dsn_ret".into(), v.into()));
        }
        if self.params.smtputf8 {
            attributes.push(("smtputf8".into(), "yes".into()));
        }
        if let Some(b) = self.params.body {
            let v = if b == Body::SevenBit {
                "7BIT"
            } else {
                "8BITMIME"
            };
            attributes.push(("body".into(), v.into()));
        }
        let begin = Begin {
            flags: proto::cleanup::flags::LOCAL_SUBMISSION,
            sender: self.sender.clone(),
            full_name: None,
            attributes,
        };
        self.write(&Request::Begin(begin));
    }

    fn write(&mut self, req: &Request) {
        let Some(d) = self.drop.as_mut() else {
            return;
        };
        if d.failed {
            return;
        }
        if let Some(p) = d.pipe.as_mut()
            && proto::send(p, req).is_err()
        {
            d.failed = true;
        }
    }

    fn finish(&mut self) -> Result<String, Reply> {
        self.write(&Request::End);
        let Some(mut d) = self.drop.take() else {
            return Err(temp_error());
        };
        let flushed = d.pipe.take().is_some_and(|mut p| p.flush().is_ok());
        let Some(mut child) = d.child.take() else {
            return Err(temp_error());
        };
        match child.wait() {
            Ok(s) if s.success() && flushed && !d.failed => {
                maillog::info!("message from user {} queued by postdrop", self.login);
                Ok(String::new())
            }
            Ok(s) if s.code() == Some(65) => Err(Reply::new(
                552,
                Some("5.3.4"),
                "Error: message file too big",
            )),
            _ => Err(temp_error()),
        }
    }

    fn abort(&mut self) {
        if let Some(mut d) = self.drop.take() {
            // Closing the pipe without End makes postdrop remove its file.
            drop(d.pipe.take());
            if let Some(mut c) = d.child.take() {
                let _ = c.wait();
            }
        }
    }
}

fn temp_error() -> Reply {
    Reply::new(451, Some("4.3.0"), "Error: queue file write error")
}
