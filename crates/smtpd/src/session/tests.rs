//! Tests of the session state machine: transactions, pipelining,
//! smuggling, STARTTLS, limits and the answers from outside.

use super::*;
use crate::line::BareNewline;
use proptest::prelude::*;

fn replies(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Reply(r) => Some(r.to_string()),
            _ => None,
        })
        .collect()
}

/// The message content the session handed out, joined.
fn content(actions: &[Action]) -> Vec<u8> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Content(c) => Some(c.as_slice()),
            _ => None,
        })
        .flatten()
        .copied()
        .collect()
}

/// Feeds all of `input`, accepting every recipient and queueing every
/// message as "Q1", "Q2", ...; returns all actions.
fn drive(s: &mut Session, input: &[u8]) -> Vec<Action> {
    let mut all = Vec::new();
    let mut pos = 0;
    let mut queued = 0;
    loop {
        let (n, acts) = s.receive(&input[pos..]);
        pos += n;
        let mut answer = Vec::new();
        for a in &acts {
            match a {
                Action::CheckRecipient { .. } => answer = s.recipient_checked(Ok(())),
                Action::EndMessage { .. } => {
                    queued += 1;
                    answer = s.message_queued(Ok(format!("Q{queued}")));
                }
                Action::Verify(v) => answer = s.answer(Reply::new(252, Some("2.0.0"), v.clone())),
                Action::Etrn(_) => answer = s.answer(Reply::new(250, None, "Queuing started")),
                _ => {}
            }
        }
        let progress = n > 0 || !answer.is_empty();
        all.extend(acts);
        all.extend(answer);
        if s.state() == State::Quit {
            return all;
        }
        if pos >= input.len() && !s.is_paused() && !progress {
            return all;
        }
        if !progress && s.is_paused() {
            return all;
        }
    }
}

fn cfg() -> Config {
    Config {
        hostname: "mx.example".into(),
        banner: "mx.example ESMTP Postfix".into(),
        forbid_unauth_pipelining: false,
        ..Config::default()
    }
}

#[test]
fn full_transaction() {
    let mut s = Session::new(cfg());
    assert_eq!(s.greeting().to_string(), "220 mx.example ESMTP Postfix\r\n");
    let acts = drive(
        &mut s,
        b"EHLO c.example\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@mx.example>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n",
    );
    let r = replies(&acts);
    assert!(r[0].starts_with(
        "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n"
    ));
    assert!(r[0].ends_with(
        "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
    ));
    assert_eq!(
        r[1..].to_vec(),
        vec![
            "250 2.1.0 Ok\r\n",
            "250 2.1.5 Ok\r\n",
            "354 End data with <CR><LF>.<CR><LF>\r\n",
            "250 2.0.0 Ok: queued as Q1\r\n",
            "221 2.0.0 Bye\r\n",
        ]
    );
    let content = content(&acts);
    assert_eq!(content, b"Subject: x\n\nhi\n");
    assert!(acts.contains(&Action::EndMessage { size: 15 }));
    assert_eq!(acts.last(), Some(&Action::Close));
    assert_eq!(s.protocol(), "ESMTP");
}

#[test]
fn smuggled_message_is_content_not_commands() {
    let mut s = Session::new(cfg());
    let input: &[u8] = b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nDATA\r\n\
        one\n.\nMAIL FROM:<evil@x>\r\nRCPT TO:<v@x>\r\nDATA\r\nsmuggled\r\n.\n\
        two\r.\nMAIL FROM:<evil2@x>\r\n\
        three\n.\r\nMAIL FROM:<evil3@x>\r\n.\r\nNOOP\r\n";
    let whole = drive(&mut s, input);
    let begins = whole
        .iter()
        .filter(|a| matches!(a, Action::BeginMessage { .. }))
        .count();
    assert_eq!(begins, 1, "a hidden MAIL FROM was executed");
    let ends = whole
        .iter()
        .filter(|a| matches!(a, Action::EndMessage { .. }))
        .count();
    assert_eq!(ends, 1);
    let content = content(&whole);
    let text = String::from_utf8_lossy(&content);
    assert!(text.contains("MAIL FROM:<evil@x>\n") && text.contains("MAIL FROM:<evil3@x>\n"));
    assert_eq!(
        replies(&whole).last().map(String::as_str),
        Some("250 2.0.0 Ok\r\n")
    );
    // Every split point gives the same actions.
    for i in 0..=input.len() {
        let mut s = Session::new(cfg());
        let mut acts = drive(&mut s, &input[..i]);
        acts.extend(drive(&mut s, &input[i..]));
        assert_eq!(acts, whole, "split at {i}");
    }
}

#[test]
fn bare_lf_in_data_rejected_under_reject() {
    let mut s = Session::new(Config {
        bare_newline: BareNewline::Reject,
        ..cfg()
    });
    let acts = drive(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<u@x>\r\nDATA\r\nx\n.\nMAIL FROM:<e@x>\r\n",
    );
    let r = replies(&acts);
    assert_eq!(
        r.last().map(String::as_str),
        Some("550 5.5.2 Error: bare <LF> received\r\n")
    );
    assert!(acts.contains(&Action::AbortMessage));
    assert_eq!(acts.last(), Some(&Action::Close));
    assert_eq!(
        acts.iter()
            .filter(|a| matches!(a, Action::BeginMessage { .. }))
            .count(),
        1
    );
    let mut s = Session::new(Config {
        bare_newline: BareNewline::Reject,
        ..cfg()
    });
    let acts = drive(&mut s, b"NOOP\n");
    assert_eq!(
        replies(&acts),
        vec!["550 5.5.2 Error: bare <LF> received\r\n"]
    );
    assert_eq!(acts.last(), Some(&Action::Close));
}

#[test]
fn starttls_discards_pipelined_plaintext() {
    let mut s = Session::new(Config {
        tls_offered: true,
        ..cfg()
    });
    let _ = drive(&mut s, b"EHLO c\r\n");
    let (used, acts) = s.receive(b"STARTTLS\r\nRSET\r\n");
    assert_eq!(used, 16, "the pipelined bytes are consumed (dropped)");
    assert_eq!(
        acts,
        vec![
            Action::Reply(Reply::new(220, Some("2.0.0"), "Ready to start TLS")),
            Action::StartTls
        ]
    );
    // More plaintext before the handshake is dropped too.
    let (used, acts) = s.receive(b"MAIL FROM:<a@b>\r\n");
    assert_eq!((used, acts), (17, vec![]));
    s.tls_started();
    assert!(s.tls_active());
    assert_eq!(s.state(), State::Connected);
    // Inside TLS: nothing of the RSET is left; EHLO no longer offers STARTTLS.
    let acts = drive(&mut s, b"EHLO c\r\n");
    assert_eq!(acts.len(), 1);
    assert!(!replies(&acts)[0].contains("STARTTLS"));
    assert_eq!(s.protocol(), "ESMTPS");
    // Also when the RSET arrives split in the same buffer as EHLO.
    let mut s = Session::new(Config {
        tls_offered: true,
        ..cfg()
    });
    let acts = drive(&mut s, b"EHLO c\r\nSTARTTLS\r\nRSET\r\nQUIT\r\n");
    assert!(acts.contains(&Action::StartTls));
    assert!(!acts.contains(&Action::Close));
    assert_eq!(replies(&acts).len(), 2);
}

#[test]
fn tls_required_and_auth_required() {
    let mut s = Session::new(Config {
        tls_offered: true,
        tls_required: true,
        ..cfg()
    });
    let r = replies(&drive(&mut s, b"EHLO c\r\nMAIL FROM:<a@b>\r\nNOOP\r\n"));
    assert_eq!(r[1], "530 5.7.0 Must issue a STARTTLS command first\r\n");
    assert_eq!(r[2], "250 2.0.0 Ok\r\n");
    let mut s = Session::new(Config {
        auth_enabled: true,
        auth_required: true,
        ..cfg()
    });
    let acts = drive(&mut s, b"EHLO c\r\nMAIL FROM:<a@b>\r\nAUTH PLAIN\r\n");
    let r = replies(&acts);
    assert!(r[0].contains("250-AUTH PLAIN LOGIN\r\n"));
    assert_eq!(r[1], "530 5.7.0 Authentication required\r\n");
    assert_eq!(
        acts.last(),
        Some(&Action::Auth {
            mechanism: "PLAIN".into(),
            initial: None
        })
    );
    let acts = s.auth_step(AuthStep::Challenge(String::new()));
    assert_eq!(replies(&acts), vec!["334 \r\n"]);
    let (_, acts) = s.receive(b"AGEAYg==\r\nMAIL FROM:<a@b>\r\n");
    assert_eq!(acts, vec![Action::AuthResponse("AGEAYg==".into())]);
    let acts = s.auth_step(AuthStep::Success("a".into()));
    assert_eq!(
        replies(&acts),
        vec!["235 2.7.0 Authentication successful\r\n"]
    );
    let r = replies(&drive(&mut s, b""));
    assert_eq!(r, vec!["250 2.1.0 Ok\r\n"]);
    assert_eq!(s.protocol(), "ESMTPA");
    // smtpd_tls_auth_only hides AUTH without TLS.
    let mut s = Session::new(Config {
        auth_enabled: true,
        tls_auth_only: true,
        ..cfg()
    });
    let r = replies(&drive(&mut s, b"EHLO c\r\nAUTH PLAIN\r\n"));
    assert!(!r[0].contains("AUTH"));
    assert_eq!(r[1], "503 5.5.1 Error: authentication not enabled\r\n");
}

#[test]
fn unauth_pipelining_forbidden() {
    let mut s = Session::new(Config {
        forbid_unauth_pipelining: true,
        ..cfg()
    });
    let acts = drive(&mut s, b"EHLO c\r\nMAIL FROM:<a@b>\r\n");
    assert_eq!(
        replies(&acts),
        vec!["554 5.5.0 Error: SMTP protocol synchronization\r\n"]
    );
    assert_eq!(acts.last(), Some(&Action::Close));
    let mut s = Session::new(Config {
        forbid_unauth_pipelining: true,
        ..cfg()
    });
    let acts = drive(&mut s, b"EHLO c\r\nQUIT\r\n");
    assert_eq!(
        replies(&acts),
        vec!["554 5.5.0 Error: SMTP protocol synchronization\r\n"]
    );
    let mut s = Session::new(Config {
        forbid_unauth_pipelining: true,
        ..cfg()
    });
    assert_eq!(s.pregreet().last(), Some(&Action::Close));
    let mut s = Session::new(cfg());
    assert!(s.pregreet().is_empty());
    // MAIL, RCPT pipelined after a separate EHLO are fine (PIPELINING).
    let mut s = Session::new(Config {
        forbid_unauth_pipelining: true,
        ..cfg()
    });
    let _ = drive(&mut s, b"EHLO c\r\n");
    let acts = drive(&mut s, b"MAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nDATA\r\n");
    assert_eq!(replies(&acts).len(), 3);
    let acts = drive(&mut s, b"x\r\n.\r\n");
    assert_eq!(replies(&acts), vec!["250 2.0.0 Ok: queued as Q1\r\n"]);
}

#[test]
fn sequence_errors_and_error_limits() {
    let mut s = Session::new(Config {
        hard_error_limit: 3,
        soft_error_limit: 2,
        ..cfg()
    });
    let acts = drive(&mut s, b"RCPT TO:<u@x>\r\nDATA\r\nFOO\r\nNOOP\r\n");
    let r = replies(&acts);
    assert_eq!(
        r,
        vec![
            "503 5.5.1 Error: need MAIL command\r\n",
            "503 5.5.1 Error: need RCPT command\r\n",
            "500 5.5.2 Error: command not recognized\r\n",
            "421 4.7.0 mx.example Error: too many errors\r\n",
        ]
    );
    assert!(acts.contains(&Action::ErrorSleep));
    assert_eq!(acts.last(), Some(&Action::Close));
    let mut s = Session::new(cfg());
    let r = replies(&drive(
        &mut s,
        b"MAIL FROM:<a@b>\r\nMAIL FROM:<a@b>\r\nDATA\r\nMAIL FROM:<a@b> SIZE=99999999999\r\n",
    ));
    assert_eq!(r[1], "503 5.5.1 Error: nested MAIL command\r\n");
    assert_eq!(r[2], "554 5.5.1 Error: no valid recipients\r\n");
    let mut s = Session::new(Config {
        helo_required: true,
        ..cfg()
    });
    let r = replies(&drive(&mut s, b"MAIL FROM:<a@b>\r\n"));
    assert_eq!(r, vec!["503 5.5.1 Error: send HELO/EHLO first\r\n"]);
}

#[test]
fn line_too_long_and_recipient_limit() {
    let mut s = Session::new(Config {
        line_length_limit: 20,
        recipient_limit: 1,
        ..cfg()
    });
    let mut input = b"NOOP ".to_vec();
    input.extend(std::iter::repeat_n(b'x', 100));
    input.extend_from_slice(b"\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nRCPT TO:<v@x>\r\n");
    let r = replies(&drive(&mut s, &input));
    assert_eq!(
        r,
        vec![
            "500 5.5.0 Error: line too long\r\n",
            "250 2.1.0 Ok\r\n",
            "250 2.1.5 Ok\r\n",
            "452 4.5.3 Error: too many recipients\r\n",
        ]
    );
}

#[test]
fn recipient_hook_rejects() {
    let mut s = Session::new(cfg());
    let (_, acts) = s.receive(b"HELO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nNOOP\r\n");
    assert!(s.is_paused());
    assert!(matches!(acts.last(), Some(Action::CheckRecipient { .. })));
    let acts = s.recipient_checked(Err(Reply::new(
        554,
        Some("5.7.1"),
        "<u@x>: Relay access denied",
    )));
    assert_eq!(
        replies(&acts),
        vec!["554 5.7.1 <u@x>: Relay access denied\r\n"]
    );
    let (_, acts) = s.receive(b"");
    assert_eq!(replies(&acts), vec!["250 2.0.0 Ok\r\n"]);
    assert_eq!(s.state(), State::Mail);
    assert_eq!(s.protocol(), "SMTP");
}

#[test]
fn bdat_chunks_and_refused_bdat_skipped() {
    let mut s = Session::new(cfg());
    let acts = drive(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nBDAT 5\r\nab\r\ncBDAT 3 LAST\r\nd\r\nQUIT\r\n",
    );
    let r = replies(&acts);
    assert_eq!(r[3], "250 2.0.0 Ok: 5 bytes\r\n");
    assert_eq!(r[4], "250 2.0.0 Ok: queued as Q1\r\n");
    assert_eq!(r[5], "221 2.0.0 Bye\r\n");
    let content = content(&acts);
    assert_eq!(content, b"ab\ncd\n");
    // A BDAT without a transaction: its bytes are skipped, not executed.
    let mut s = Session::new(cfg());
    let acts = drive(
        &mut s,
        b"EHLO c\r\nBDAT 17 LAST\r\nMAIL FROM:<e@x>\r\nNOOP\r\n",
    );
    assert!(
        !acts
            .iter()
            .any(|a| matches!(a, Action::BeginMessage { .. }))
    );
    assert_eq!(
        replies(&acts)[1..].to_vec(),
        vec!["503 5.5.1 Error: need RCPT command\r\n", "250 2.0.0 Ok\r\n"]
    );
    // BDAT 0 LAST ends the message.
    let mut s = Session::new(cfg());
    let acts = drive(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nBDAT 2\r\nx\nBDAT 0 LAST\r\n",
    );
    assert!(acts.contains(&Action::EndMessage { size: 2 }));
}

#[test]
fn vrfy_and_etrn_hooks() {
    let mut s = Session::new(cfg());
    let r = replies(&drive(&mut s, b"EHLO c\r\nVRFY u\r\nETRN x\r\n"));
    assert_eq!(
        r[1..].to_vec(),
        vec!["252 2.0.0 u\r\n", "250 Queuing started\r\n"]
    );
    let mut s = Session::new(Config {
        disable_vrfy_command: true,
        ..cfg()
    });
    let r = replies(&drive(&mut s, b"EHLO c\r\nVRFY u\r\n"));
    assert!(!r[0].contains("VRFY"));
    assert_eq!(r[1], "502 5.5.1 VRFY command is disabled\r\n");
}

#[test]
fn etrn_domain_syntax() {
    let mut s = Session::new(cfg());
    let acts = drive(
        &mut s,
        b"EHLO c\r\nETRN @example.com\r\nETRN #x.example\r\nETRN bad!name\r\nETRN [192.0.2.1]\r\nETRN 1.2.3\r\nETRN trailing.dot.\r\n",
    );
    let asked: Vec<&str> = acts
        .iter()
        .filter_map(|a| match a {
            Action::Etrn(d) => Some(d.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(asked, vec!["example.com", "x.example", "[192.0.2.1]"]);
    let r = replies(&acts);
    assert_eq!(r[3], "501 Error: invalid parameter syntax\r\n");
    assert_eq!(r[5], "501 Error: invalid parameter syntax\r\n");
    assert_eq!(r[6], "501 Error: invalid parameter syntax\r\n");
}

#[test]
fn junk_commands_beyond_the_limit_end_the_session() {
    // Postfix: junk_cmds++ > limit counts an error, so with limit 2 the
    // fourth junk command is the first error, the sixth the third.
    let c = Config {
        junk_command_limit: 2,
        hard_error_limit: 3,
        soft_error_limit: 10,
        ..cfg()
    };
    let mut s = Session::new(c.clone());
    let acts = drive(&mut s, &b"NOOP\r\n".repeat(10));
    let r = replies(&acts);
    assert_eq!(r.len(), 7, "{r:?}");
    assert!(r[..6].iter().all(|l| l == "250 2.0.0 Ok\r\n"), "{r:?}");
    assert_eq!(r[6], "421 4.7.0 mx.example Error: too many errors\r\n");
    assert_eq!(acts.last(), Some(&Action::Close));
    // RSET, HELO and VRFY count too.
    let mut s = Session::new(c.clone());
    let r = replies(&drive(
        &mut s,
        b"HELO c\r\nRSET\r\nVRFY u\r\nRSET\r\nRSET\r\nRSET\r\nRSET\r\n",
    ));
    assert_eq!(
        r.last().unwrap(),
        "421 4.7.0 mx.example Error: too many errors\r\n"
    );
    assert_eq!(r.len(), 7, "{r:?}");
    // A message received forgives them.
    let mut s = Session::new(c);
    let r = replies(&drive(
        &mut s,
        b"HELO c\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nDATA\r\nx\r\n.\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n",
    ));
    assert!(!r.iter().any(|l| l.starts_with("421")), "{r:?}");
    // Without a limit in reach nothing changes.
    let mut s = Session::new(cfg());
    let r = replies(&drive(&mut s, &b"NOOP\r\n".repeat(50)));
    assert!(r.iter().all(|l| l == "250 2.0.0 Ok\r\n"));
}

#[test]
fn sasl_security_options_filter_mechanisms() {
    let c = Config {
        auth_enabled: true,
        sasl_security: SaslSecurity::parse("noanonymous, noplaintext"),
        sasl_tls_security: SaslSecurity::parse("noanonymous"),
        ..cfg()
    };
    let mut s = Session::new(c.clone());
    let r = replies(&drive(&mut s, b"EHLO c\r\nAUTH PLAIN\r\n"));
    assert!(!r[0].contains("AUTH"), "{}", r[0]);
    assert_eq!(r[1], "503 5.5.1 Error: authentication not enabled\r\n");
    // After STARTTLS, smtpd_sasl_tls_security_options applies.
    s.tls_started();
    let acts = drive(&mut s, b"EHLO c\r\nAUTH ANONYMOUS\r\nAUTH PLAIN\r\n");
    let r = replies(&acts);
    assert!(r[0].contains("250-AUTH PLAIN LOGIN\r\n"), "{}", r[0]);
    assert_eq!(
        r[1],
        "535 5.7.8 Error: authentication failed: Invalid authentication mechanism: 'ANONYMOUS'\r\n"
    );
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::Auth { mechanism, .. } if mechanism == "PLAIN"))
    );
    // The defaults (noanonymous) offer both.
    let mut s = Session::new(Config {
        auth_enabled: true,
        ..cfg()
    });
    let r = replies(&drive(&mut s, b"EHLO c\r\n"));
    assert!(r[0].contains("250-AUTH PLAIN LOGIN\r\n"), "{}", r[0]);
    let sec = SaslSecurity::parse("nodictionary");
    assert!(!sec.allows("cram-md5") && sec.allows("ANONYMOUS") && sec.allows("EXTERNAL"));
}

#[test]
fn message_too_big() {
    let mut s = Session::new(Config {
        message_size_limit: 10,
        ..cfg()
    });
    let r = replies(&drive(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<a@b> SIZE=11\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nDATA\r\n0123456789abc\r\n.\r\nNOOP\r\n",
    ));
    assert_eq!(r[1], "552 5.3.4 Message size exceeds fixed limit\r\n");
    assert_eq!(r[5], "552 5.3.4 Error: message file too big\r\n");
    assert_eq!(r[6], "250 2.0.0 Ok\r\n");
}

#[test]
fn stage_checks_pause_and_refuse() {
    let mut s = Session::new(Config {
        stage_checks: true,
        ..cfg()
    });
    let (_, acts) = s.receive(b"EHLO c\r\nMAIL FROM:<a@b>\r\n");
    assert_eq!(acts, vec![Action::CheckHelo { name: "c".into() }]);
    assert!(s.is_paused());
    let acts = s.helo_checked(Err(Reply::new(
        550,
        Some("5.7.1"),
        "<c>: Helo command rejected: go away",
    )));
    assert_eq!(
        replies(&acts),
        vec!["550 5.7.1 <c>: Helo command rejected: go away\r\n"]
    );
    assert!(s.helo_name().is_none());
    // The pipelined MAIL is checked next, then refused.
    let (_, acts) = s.receive(b"");
    assert!(matches!(acts.as_slice(), [Action::CheckSender { .. }]));
    let acts = s.sender_checked(Err(Reply::new(
        554,
        Some("5.7.1"),
        "<a@b>: Sender address rejected",
    )));
    assert_eq!(replies(&acts).len(), 1);
    assert_eq!(s.state(), State::Connected);
    // Accepted HELO, MAIL, RCPT; DATA refused; BDAT refused skips its chunk.
    let (_, _) = s.receive(b"HELO c\r\n");
    let acts = s.helo_checked(Ok(()));
    assert_eq!(replies(&acts), vec!["250 mx.example\r\n"]);
    let (_, _) = s.receive(b"MAIL FROM:<a@b>\r\n");
    let acts = s.sender_checked(Ok(()));
    assert!(matches!(acts.first(), Some(Action::BeginMessage { .. })));
    let (_, _) = s.receive(b"RCPT TO:<u@x>\r\n");
    let _ = s.recipient_checked(Ok(()));
    let (_, acts) = s.receive(b"DATA\r\n");
    assert_eq!(acts, vec![Action::CheckData]);
    let acts = s.data_checked(Err(Reply::new(554, Some("5.7.1"), "Data command rejected")));
    assert_eq!(replies(&acts), vec!["554 5.7.1 Data command rejected\r\n"]);
    assert_eq!(s.state(), State::Rcpt);
    let (_, acts) = s.receive(b"BDAT 4 LAST\r\nQUITNOOP\r\n");
    assert_eq!(acts, vec![Action::CheckData]);
    let acts = s.data_checked(Err(Reply::new(554, Some("5.7.1"), "no")));
    assert!(acts.is_empty());
    let acts = drive(&mut s, b"");
    assert_eq!(
        replies(&acts),
        vec!["554 5.7.1 no\r\n", "250 2.0.0 Ok\r\n"],
        "the chunk was skipped, not executed"
    );
    let (_, _) = s.receive(b"DATA\r\n");
    let acts = s.data_checked(Ok(()));
    assert_eq!(
        replies(&acts),
        vec!["354 End data with <CR><LF>.<CR><LF>\r\n"]
    );
    assert_eq!(s.state(), State::Data);
}

#[test]
fn http_and_headers_end_the_session() {
    for line in ["GET / HTTP/1.1", "post /x", "User-Agent: curl"] {
        let mut s = Session::new(cfg());
        let acts = drive(&mut s, format!("{line}\r\nNOOP\r\n").as_bytes());
        assert_eq!(
            replies(&acts),
            vec!["221 2.7.0 Error: I can break rules, too. Goodbye.\r\n"],
            "{line}"
        );
        assert!(matches!(acts.first(), Some(Action::NonSmtpCommand(_))));
        assert_eq!(acts.last(), Some(&Action::Close));
    }
    let mut s = Session::new(cfg());
    let acts = drive(&mut s, b"FROB x\r\n");
    assert_eq!(
        replies(&acts),
        vec!["500 5.5.2 Error: command not recognized\r\n"]
    );
}

#[test]
fn denied_client_gets_503_but_may_quit() {
    let mut s = Session::new(cfg());
    s.deny_access("host[192.0.2.1]");
    let acts = drive(&mut s, b"EHLO c\r\nMAIL FROM:<a@b>\r\nQUIT\r\n");
    assert_eq!(
        replies(&acts),
        vec![
            "503 5.7.0 Error: access denied for host[192.0.2.1]\r\n",
            "503 5.7.0 Error: access denied for host[192.0.2.1]\r\n",
            "221 2.0.0 Bye\r\n"
        ]
    );
}

#[test]
fn command_counts_for_the_disconnect_line() {
    let mut s = Session::new(cfg());
    assert_eq!(s.last_command(), "CONNECT");
    let _ = drive(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nDATA\r\nx\r\n.\r\nXYZZY\r\nRCPT TO:<v@x>\r\n",
    );
    assert_eq!(
        s.command_counts(),
        "ehlo=1 mail=1 rcpt=1/2 data=1 unknown=0/1 commands=4/6"
    );
    assert_eq!(s.last_command(), "RCPT");
    let _ = drive(&mut s, b"MAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nDATA\r\nabc");
    assert_eq!(s.last_command(), "DATA");
}

proptest! {
    #[test]
    fn random_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..400), split in 0usize..400) {
        let mut s = Session::new(Config { line_length_limit: 64, tls_offered: true, auth_enabled: true, ..cfg() });
        let split = split.min(input.len());
        let _ = drive(&mut s, &input[..split]);
        let _ = drive(&mut s, &input[split..]);
    }

    #[test]
    fn content_is_never_a_command(parts in proptest::collection::vec(prop_oneof![
        Just("\r"), Just("\n"), Just("."), Just("\r\n"), Just("MAIL FROM:<e@x>"), Just("QUIT"),
        Just("RSET"), Just("BDAT 1 LAST"), Just("x")], 0..40), split in 0usize..200) {
        let body: String = parts.concat();
        let framed = format!("\r\n{body}");
        prop_assume!(!framed.contains("\r\n.\r\n"));
        let input = format!("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nDATA\r\n{body}\r\n.\r\n");
        let input = input.as_bytes();
        let split = split.min(input.len());
        let mut s = Session::new(cfg());
        let mut acts = drive(&mut s, &input[..split]);
        acts.extend(drive(&mut s, &input[split..]));
        prop_assert_eq!(acts.iter().filter(|a| matches!(a, Action::BeginMessage { .. })).count(), 1);
        prop_assert_eq!(acts.iter().filter(|a| matches!(a, Action::EndMessage { .. })).count(), 1);
        prop_assert!(!acts.contains(&Action::Close));
        prop_assert_eq!(s.state(), State::Greeted);
    }

    #[test]
    fn random_commands_never_panic(cmds in proptest::collection::vec(prop_oneof![
        Just("EHLO c\r\n"), Just("HELO c\r\n"), Just("MAIL FROM:<a@b>\r\n"), Just("RCPT TO:<u@x>\r\n"),
        Just("DATA\r\n"), Just("x\r\n.\r\n"), Just("BDAT 3\r\n"), Just("BDAT 0 LAST\r\n"), Just("RSET\r\n"),
        Just("\n.\n"), Just("abc"), Just("STARTTLS\r\n"), Just("AUTH PLAIN\r\n"), Just("QUIT\r\n")], 0..20)) {
        let mut s = Session::new(Config { tls_offered: true, auth_enabled: true, ..cfg() });
        let input: Vec<u8> = cmds.concat().into_bytes();
        let _ = drive(&mut s, &input);
    }
}
