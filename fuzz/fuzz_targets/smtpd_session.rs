//! Fuzz target: arbitrary client bytes into smtpd's session state machine
//! (every feature on, every pause answered, yes and no in turn), in two
//! pieces split where the first byte says. Nothing may panic, and content
//! is never executed as a command.
#![no_main]

use smtpd::reply::Reply;
use smtpd::session::{Action, AuthStep, Config, Session};

fn answer(s: &mut Session, a: &Action, yes: bool) -> Vec<Action> {
    let no = || Reply::new(554, Some("5.7.1"), "no");
    let v = if yes { Ok(()) } else { Err(no()) };
    match a {
        Action::CheckHelo { .. } => s.helo_checked(v),
        Action::CheckSender { .. } => s.sender_checked(v),
        Action::CheckRecipient { .. } => s.recipient_checked(v),
        Action::CheckData => s.data_checked(v),
        Action::EndMessage { .. } => s.message_queued(if yes { Ok("Q".into()) } else { Err(no()) }),
        Action::Verify(_) | Action::Etrn(_) => s.answer(Reply::new(252, None, "x")),
        Action::Auth { .. } | Action::AuthResponse(_) => s.auth_step(if yes {
            AuthStep::Challenge(String::new())
        } else {
            AuthStep::Failure(no())
        }),
        Action::StartTls => {
            s.tls_started();
            Vec::new()
        }
        _ => Vec::new(),
    }
}

fn drive(s: &mut Session, mut input: &[u8], flip: &mut bool) {
    for _ in 0..10_000 {
        let (n, acts) = s.receive(input);
        input = input.get(n..).unwrap_or(&[]);
        let mut pending: Vec<Action> = acts;
        let mut progress = n > 0 || !pending.is_empty();
        while let Some(a) = pending.pop() {
            *flip = !*flip;
            let more = answer(s, &a, *flip);
            progress |= !more.is_empty();
            pending.extend(more);
        }
        if !progress {
            return;
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let split = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    let mut s = Session::new(Config {
        tls_offered: true,
        auth_enabled: true,
        stage_checks: true,
        line_length_limit: 64,
        message_size_limit: 1000,
        ..Config::default()
    });
    let mut flip = false;
    drive(&mut s, data.get(..split).unwrap_or(&[]), &mut flip);
    drive(&mut s, data.get(split..).unwrap_or(&[]), &mut flip);
});
