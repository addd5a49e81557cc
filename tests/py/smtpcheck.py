#!/usr/bin/env python3
"""SMTP client checks run by the Rust system tests (tests/smtp.rs).

    smtpcheck.py CHECK --port N [--host H] [--ca FILE] [--user U --password P]
                 [--rcpt ADDR] [--sender ADDR] [--tag TEXT] ...

Each CHECK talks to a running smtpd with Python's smtplib (or a raw socket
where smtplib cannot: BDAT, pipelined STARTTLS, smuggling), asserts what
the protocol must look like, prints what it saw, and exits non-zero with a
message on the first failure. What arrives in the mailbox is checked by the
Rust side. TLS clients trust only --ca (the test's own CA) and check the
name `localhost`.
"""

import argparse
import base64
import json
import selectors
import smtplib
import socket
import ssl
import sys
import time

TIMEOUT = 30


class CheckFailed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise CheckFailed(what)


def tls_context(args):
    ctx = ssl.create_default_context(cafile=args.ca)
    return ctx


def connect(args, port=None):
    s = smtplib.SMTP(args.host, port or args.port, local_hostname="client.test", timeout=TIMEOUT)
    return s


def message(args, subject, body="Hello.\r\n", extra_headers=""):
    return (
        f"From: <{args.sender}>\r\nTo: <{args.rcpt}>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{args.tag}.{subject.replace(' ', '-')}@client.test>\r\n{extra_headers}\r\n{body}"
    )


def esmtp_features(s):
    return {k.upper(): v for k, v in s.esmtp_features.items()}


def expect_reply(got, code, what, enhanced=None):
    c, text = got
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    check(c == code, f"{what}: expected {code}, got {c} {text}")
    if enhanced is not None:
        check(text.startswith(enhanced), f"{what}: expected enhanced code {enhanced}, got {c} {text}")
    return text


# --- checks -----------------------------------------------------------------


def c_ehlo(args):
    """EHLO keywords; with --tls also after STARTTLS, with AUTH there."""
    s = connect(args)
    code, _ = s.ehlo()
    check(code == 250, f"EHLO: {code}")
    f = esmtp_features(s)
    print("EHLO:", sorted(f))
    for k in ["PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN", "CHUNKING"]:
        check(k.lower() in {x.lower() for x in f}, f"EHLO lacks {k}: {sorted(f)}")
    check(f.get("SIZE", "").strip().isdigit(), f"SIZE has no number: {f.get('SIZE')!r}")
    if args.expect_size:
        check(f["SIZE"].strip() == args.expect_size, f"SIZE {f['SIZE']!r}, expected {args.expect_size}")
    if args.tls:
        check("STARTTLS" in f, f"EHLO lacks STARTTLS: {sorted(f)}")
        if args.auth_only:
            check("AUTH" not in f, "AUTH offered before STARTTLS under smtpd_tls_auth_only")
        s.starttls(context=tls_context(args))
        s.ehlo()
        f = esmtp_features(s)
        print("EHLO after STARTTLS:", sorted(f))
        check("STARTTLS" not in f, "STARTTLS offered again inside TLS")
        for k in ["PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN", "CHUNKING"]:
            check(k in f, f"EHLO after STARTTLS lacks {k}")
        if args.expect_auth:
            mechs = f.get("AUTH", "").upper().split()
            check("PLAIN" in mechs and "LOGIN" in mechs, f"AUTH line {f.get('AUTH')!r}")
    else:
        check("STARTTLS" not in f, "STARTTLS offered without a certificate")
        if args.expect_auth:
            mechs = f.get("AUTH", "").upper().split()
            check("PLAIN" in mechs and "LOGIN" in mechs, f"AUTH line {f.get('AUTH')!r}")
    s.quit()


def c_send(args):
    """A plain message; prints the queue id."""
    s = connect(args)
    s.ehlo()
    s.mail(args.sender)
    expect_reply(s.rcpt(args.rcpt), 250, "RCPT", "2.1.5")
    text = expect_reply(s.data(message(args, "plain " + args.tag).encode()), 250, "DATA end", "2.0.0")
    check("queued as" in text, f"no queue id in {text!r}")
    print("queued:", text)
    s.quit()


def c_helo(args):
    """Plain old HELO (no extensions), then a message."""
    s = connect(args)
    code, text = s.helo("client.test")
    check(code == 250, f"HELO: {code} {text}")
    check(not s.does_esmtp, "HELO must not turn on ESMTP")
    r = s.mail(args.sender)
    check(r[0] == 250, f"MAIL after HELO: {r}")
    expect_reply(s.rcpt(args.rcpt), 250, "RCPT")
    expect_reply(s.data(message(args, "helo " + args.tag).encode()), 250, "DATA end")
    s.quit()


def c_8bitmime(args):
    body = "Grüße aus Köln: ½ € ✓\r\n"
    msg = message(
        args,
        "8bit " + args.tag,
        body=body,
        extra_headers="MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n",
    ).encode("utf-8")
    s = connect(args)
    s.ehlo()
    check(s.has_extn("8bitmime"), "no 8BITMIME")
    expect_reply(s.mail(args.sender, ["BODY=8BITMIME"]), 250, "MAIL BODY=8BITMIME", "2.1.0")
    expect_reply(s.rcpt(args.rcpt), 250, "RCPT")
    expect_reply(s.data(msg), 250, "DATA end")
    s.quit()


def c_smtputf8(args):
    sender = "dëlia@exämple.test"
    msg = (
        f"From: <{sender}>\r\nTo: <{args.rcpt}>\r\nSubject: ünïcode {args.tag}\r\n"
        f"Message-ID: <{args.tag}.utf8@client.test>\r\n\r\nUTF-8 everywhere.\r\n"
    ).encode("utf-8")
    s = connect(args)
    s.ehlo()
    check(s.has_extn("smtputf8"), "no SMTPUTF8")
    r = s.sendmail(sender, [args.rcpt], msg, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    check(r == {}, f"refused: {r}")
    # Without SMTPUTF8 a UTF-8 address must not be taken as is.
    s.ehlo()
    s.command_encoding = "utf-8"
    code, text = s.docmd(f"MAIL FROM:<{sender}>")
    print("UTF-8 MAIL without SMTPUTF8:", code, text)
    s.rset()
    s.quit()


def c_dsn(args):
    s = connect(args)
    s.ehlo()
    check(s.has_extn("dsn"), "no DSN")
    expect_reply(s.mail(args.sender, ["RET=HDRS", "ENVID=env-" + args.tag]), 250, "MAIL RET ENVID", "2.1.0")
    expect_reply(
        s.rcpt(args.rcpt, ["NOTIFY=SUCCESS,FAILURE", f"ORCPT=rfc822;{args.rcpt}"]),
        250,
        "RCPT NOTIFY ORCPT",
        "2.1.5",
    )
    expect_reply(s.data(message(args, "dsn " + args.tag).encode()), 250, "DATA end")
    # A bad NOTIFY is a syntax error.
    s.mail(args.sender)
    code, text = s.rcpt(args.rcpt, ["NOTIFY=SOMETIMES"])
    check(500 <= code < 600, f"RCPT NOTIFY=SOMETIMES accepted: {code} {text}")
    s.rset()
    s.quit()


class Raw:
    """A line-level SMTP client on a plain or TLS socket."""

    def __init__(self, args, port=None, wrap=False):
        self.args = args
        sock = socket.create_connection((args.host, port or args.port), timeout=TIMEOUT)
        if wrap:
            sock = tls_context(args).wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def readline(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise CheckFailed(f"connection closed; partial data {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def reply(self):
        """One (possibly multi-line) reply: (code, [lines])."""
        lines = []
        while True:
            line = self.readline()
            check(line.endswith(b"\r\n"), f"reply line not CRLF-terminated: {line!r}")
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            check(len(text) >= 3 and text[:3].isdigit(), f"malformed reply line {text!r}")
            lines.append(text)
            if len(text) == 3 or text[3] == " ":
                return int(text[:3]), lines
            check(text[3] == "-", f"malformed reply line {text!r}")

    def cmd(self, line, code=None, what=None):
        self.send(line.encode("utf-8") + b"\r\n")
        got = self.reply()
        if code is not None:
            check(got[0] == code, f"{what or line}: expected {code}, got {got}")
        return got

    def pending(self, wait=0.5):
        """Whatever the server sends within `wait` seconds."""
        self.sock.settimeout(wait)
        try:
            data = self.buf + self.sock.recv(65536)
        except (socket.timeout, ssl.SSLError):
            data = self.buf
        self.buf = b""
        self.sock.settimeout(TIMEOUT)
        return data


def c_bdat(args):
    r = Raw(args)
    r.reply()
    code, lines = r.cmd("EHLO client.test", 250)
    check(any("CHUNKING" in l for l in lines), f"no CHUNKING: {lines}")
    r.cmd(f"MAIL FROM:<{args.sender}>", 250)
    r.cmd(f"RCPT TO:<{args.rcpt}>", 250)
    part1 = message(args, "bdat " + args.tag, body="").encode()
    # Line breaks split across chunks, and a "." line that is content.
    part2 = b"first chunk line\r\n.\r\nline after a dot\r"
    part3 = b"\nlast line\r\n"
    r.send(b"BDAT %d\r\n" % len(part1) + part1)
    code, lines = r.reply()
    check(code == 250, f"BDAT 1: {code} {lines}")
    r.send(b"BDAT %d\r\n" % len(part2) + part2)
    code, lines = r.reply()
    check(code == 250, f"BDAT 2: {code} {lines}")
    r.send(b"BDAT %d LAST\r\n" % len(part3) + part3)
    code, lines = r.reply()
    check(code == 250 and "queued as" in lines[-1], f"BDAT LAST: {code} {lines}")
    # BDAT 0 LAST on its own ends an (empty-chunk) second message.
    r.cmd(f"MAIL FROM:<{args.sender}>", 250)
    r.cmd(f"RCPT TO:<{args.rcpt}>", 250)
    part = message(args, "bdat-two " + args.tag).encode()
    r.send(b"BDAT %d\r\n" % len(part) + part)
    check(r.reply()[0] == 250, "BDAT of the second message")
    code, lines = r.cmd("BDAT 0 LAST")
    check(code == 250 and "queued as" in lines[-1], f"BDAT 0 LAST: {code} {lines}")
    # DATA after BDAT in one transaction is refused.
    r.cmd(f"MAIL FROM:<{args.sender}>", 250)
    r.cmd(f"RCPT TO:<{args.rcpt}>", 250)
    r.send(b"BDAT 3\r\nabc")
    check(r.reply()[0] == 250, "BDAT 3")
    code, lines = r.cmd("DATA")
    check(code == 503, f"DATA after BDAT: {code} {lines}")
    r.cmd("RSET", 250)
    r.cmd("QUIT", 221)


def c_vrfy(args):
    s = connect(args)
    s.ehlo()
    code, text = s.verify(args.rcpt)
    text = text.decode()
    print("VRFY:", code, text)
    if args.expect == "off":
        check(code == 502 and text.startswith("5.5.1"), f"VRFY when disabled: {code} {text}")
        check("VRFY" not in esmtp_features(s), "EHLO still offers VRFY")
    else:
        check(code in (250, 252), f"VRFY: {code} {text}")
        check("VRFY" in esmtp_features(s), "EHLO does not offer VRFY")
        code, text = s.verify("nosuchuser@virt.test")
        print("VRFY unknown:", code, text)
        check(code in (550, 450, 252, 250) , f"VRFY unknown user: {code} {text}")
    s.quit()


def c_etrn(args):
    s = connect(args)
    s.ehlo()
    check(s.has_extn("etrn"), "no ETRN in EHLO")
    code, text = s.docmd("ETRN")
    check(500 <= code < 600, f"ETRN without an argument: {code} {text}")
    code, text = s.docmd("ETRN", "remote.example")
    print("ETRN remote.example:", code, text)
    check(code in (250, 251, 252, 253, 458, 459), f"ETRN remote.example: {code} {text}")
    s.mail(args.sender)
    code, text = s.docmd("ETRN", "remote.example")
    check(code == 503, f"ETRN inside a transaction: {code} {text}")
    s.rset()
    s.quit()


def c_rset_noop(args):
    s = connect(args)
    expect_reply(s.noop(), 250, "NOOP before EHLO")
    s.ehlo()
    expect_reply(s.mail(args.sender), 250, "MAIL")
    expect_reply(s.noop(), 250, "NOOP in a transaction", "2.0.0")
    expect_reply(s.rset(), 250, "RSET", "2.0.0")
    code, text = s.rcpt(args.rcpt)
    check(code == 503, f"RCPT after RSET: {code} {text}")
    code, text = s.docmd("DATA")
    check(code == 503, f"DATA without MAIL: {code} {text}")
    code, text = s.docmd("FROBNICATE")
    # Postfix (Debian's 3.7.11, tried): "500 5.5.2 Error: command not recognized".
    check(code == 500 and text.startswith(b"5.5.2"), f"unknown command: {code} {text}")
    # The transaction after RSET works.
    r = s.sendmail(args.sender, [args.rcpt], message(args, "after-rset " + args.tag).encode())
    check(r == {}, f"refused: {r}")
    code, text = s.docmd("QUIT")
    check(code == 221, f"QUIT: {code} {text}")


def c_too_big(args):
    limit = int(args.limit)
    s = connect(args)
    s.ehlo()
    check(esmtp_features(s).get("SIZE", "").strip() == str(limit), f"SIZE {esmtp_features(s).get('SIZE')!r}")
    # Declared too big at MAIL.
    code, text = s.docmd(f"MAIL FROM:<{args.sender}> SIZE={limit + 1}")
    check(code == 552 and text.decode().startswith("5.3.4"), f"MAIL SIZE too big: {code} {text}")
    # Not declared; too big in DATA.
    expect_reply(s.mail(args.sender), 250, "MAIL")
    expect_reply(s.rcpt(args.rcpt), 250, "RCPT")
    big = message(args, "too-big " + args.tag, body=("x" * 70 + "\r\n") * (limit // 72 + 100))
    code, text = s.data(big.encode())
    check(code == 552 and text.decode().startswith("5.3.4"), f"DATA too big: {code} {text}")
    # The session goes on.
    expect_reply(s.noop(), 250, "NOOP after 552")
    s.quit()


def login(s, args, mech):
    s.user, s.password = args.user, args.password
    if mech == "PLAIN":
        code, text = s.auth("PLAIN", s.auth_plain, initial_response_ok=True)
    else:
        code, text = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
    check(code == 235, f"AUTH {mech}: {code} {text}")


def c_tls_auth_send(args):
    """STARTTLS, AUTH (--mech), send; a bad password is refused first."""
    port = args.submission_port or args.port
    s = connect(args, port)
    s.ehlo()
    check(s.has_extn("starttls"), "no STARTTLS")
    if args.auth_only:
        check(not s.has_extn("auth"), "AUTH offered before STARTTLS")
        code, text = s.docmd("AUTH PLAIN " + base64.b64encode(b"\0u\0p").decode())
        check(code in (503, 530, 538), f"AUTH before STARTTLS: {code} {text}")
    s.starttls(context=tls_context(args))
    s.ehlo()
    check(s.has_extn("auth"), "no AUTH after STARTTLS")
    mechs = esmtp_features(s)["AUTH"].upper().split()
    check("PLAIN" in mechs and "LOGIN" in mechs, f"AUTH {mechs}")
    if args.bad_password:
        s.user, s.password = args.user, "wrong-" + args.password
        try:
            s.auth("PLAIN", s.auth_plain, initial_response_ok=True)
            raise CheckFailed("a wrong password was accepted")
        except smtplib.SMTPAuthenticationError as e:
            check(e.smtp_code == 535, f"wrong password: {e.smtp_code} {e.smtp_error}")
            check(e.smtp_error.decode().startswith("5.7.8"), f"wrong password: {e.smtp_error}")
    login(s, args, args.mech)
    code, text = s.docmd("AUTH PLAIN")
    check(code == 503, f"second AUTH: {code} {text}")
    r = s.sendmail(args.sender, [args.rcpt], message(args, f"auth-{args.mech} {args.tag}").encode())
    check(r == {}, f"refused: {r}")
    s.quit()


def c_submission_noauth(args):
    """Submission: MAIL needs STARTTLS first, then mail without AUTH is refused."""
    s = connect(args, args.submission_port)
    s.ehlo()
    check(s.has_extn("starttls"), "submission without STARTTLS")
    check(not s.has_extn("auth"), "submission offers AUTH in plaintext (smtpd_tls_auth_only)")
    code, text = s.docmd(f"MAIL FROM:<{args.sender}>")
    check(code == 530, f"MAIL before STARTTLS on submission: {code} {text}")
    s.starttls(context=tls_context(args))
    s.ehlo()
    check(s.has_extn("auth"), "no AUTH after STARTTLS on submission")
    code, text = s.mail(args.sender)
    accepted = code == 250
    if accepted:
        code, text = s.rcpt(args.rcpt)
    print("without AUTH:", code, text)
    check(500 <= code < 600 or code in (450, 451, 454), f"mail without AUTH accepted: {code} {text}")
    check(code != 250, "mail without AUTH accepted")
    s.rset()
    s.quit()


def c_implicit_tls(args):
    ctx = tls_context(args)
    s = smtplib.SMTP_SSL(args.host, args.port, local_hostname="client.test", context=ctx, timeout=TIMEOUT)
    s.ehlo()
    check(not s.has_extn("starttls"), "STARTTLS offered inside implicit TLS")
    check(s.has_extn("auth"), "no AUTH on submissions")
    print("TLS:", s.sock.version(), s.sock.cipher())
    login(s, args, args.mech)
    r = s.sendmail(args.sender, [args.rcpt], message(args, f"implicit-tls {args.tag}").encode())
    check(r == {}, f"refused: {r}")
    s.quit()


def c_starttls_inject(args):
    """STARTTLS and RSET in one packet: RSET must not run inside TLS."""
    r = Raw(args)
    r.reply()
    r.cmd("EHLO client.test", 250)
    r.send(b"STARTTLS\r\nRSET\r\n")
    code, lines = r.reply()
    check(code == 220, f"STARTTLS: {code} {lines}")
    # Nothing else in plaintext: a reply to RSET here would already be the bug.
    check(r.buf == b"", f"plaintext after the STARTTLS reply: {r.buf!r}")
    tls = tls_context(args).wrap_socket(r.sock, server_hostname="localhost")
    r.sock = tls
    # The server may have sent nothing yet; anything now would be a stray
    # reply to RSET inside TLS.
    stray = r.pending(1.0)
    check(stray == b"", f"a reply inside TLS before any command: {stray!r}")
    code, lines = r.cmd("EHLO client.test")
    check(code == 250 and lines[0].startswith("250-"), f"the first reply in TLS is not EHLO's: {lines}")
    check(not any("STARTTLS" in l for l in lines), f"STARTTLS offered inside TLS: {lines}")
    # The session is in a fresh state: MAIL works (no "nested MAIL").
    if not args.auth_only:
        r.cmd(f"MAIL FROM:<{args.sender}>", 250)
        r.cmd("RSET", 250)
    r.cmd("QUIT", 221)
    print("ok: no RSET executed inside TLS")


SMUGGLE = {
    "lf": b"\n.\n",
    "cr": b"\r.\n",
    "lf-crlf": b"\n.\r\n",
    "crlf-lf": b"\r\n.\n",
    "cr-cr": b"\r.\r",
    "crlf-cr": b"\r\n.\r",
}


def c_smuggle(args):
    """A message with a second one hidden behind a fake end of data."""
    variant = SMUGGLE[args.variant]
    r = Raw(args)
    r.reply()
    r.cmd("EHLO client.test", 250)
    r.cmd(f"MAIL FROM:<{args.sender}>", 250)
    r.cmd(f"RCPT TO:<{args.rcpt}>", 250)
    r.cmd("DATA", 354)
    hidden = (
        f"MAIL FROM:<smuggler@evil.test>\r\nRCPT TO:<{args.hidden_rcpt}>\r\nDATA\r\n"
        f"From: smuggler@evil.test\r\nSubject: SMUGGLED {args.tag}\r\n\r\nhidden body\r\n"
    ).encode()
    data = (
        f"From: <{args.sender}>\r\nTo: <{args.rcpt}>\r\nSubject: carrier {args.tag}\r\n\r\n"
        "carrier body"
    ).encode()
    r.send(data + variant + hidden + b".\r\n")
    # One reply (queued, or refused); anything more within a second would
    # be a hidden command answered.
    flat = []
    try:
        code, lines = r.reply()
        flat += lines
        extra = r.pending(1.5)
        if extra:
            flat += extra.decode("utf-8", "replace").splitlines()
        if code < 500:
            r.send(b"QUIT\r\n")
            flat += r.reply()[1]
    except (CheckFailed, OSError) as e:
        flat.append(f"(closed: {e})")
    print(json.dumps({"variant": args.variant, "replies": flat}))
    if args.expect == "reject":
        check(flat and flat[0].startswith("550 5.5.2"), f"expected 550 5.5.2 bare <LF>: {flat}")
        check(not any("queued as" in l for l in flat), f"queued under reject: {flat}")
    else:
        check(flat[0].startswith("250") and "queued as" in flat[0], f"first reply: {flat}")
        check(len(flat) == 2 and flat[1].startswith("221"), f"more replies than queued + QUIT: {flat}")


def c_pipeline(args):
    """The whole transaction in one write (PIPELINING)."""
    r = Raw(args)
    r.reply()
    code, lines = r.cmd("EHLO client.test", 250)
    check(any("PIPELINING" in l for l in lines), "no PIPELINING")
    body = message(args, "pipelined " + args.tag).encode()
    r.send(
        f"MAIL FROM:<{args.sender}>\r\nRCPT TO:<{args.rcpt}>\r\nRCPT TO:<{args.hidden_rcpt}>\r\nDATA\r\n".encode()
    )
    codes = [r.reply()[0] for _ in range(4)]
    check(codes == [250, 250, 250, 354], f"pipelined replies {codes}")
    r.send(body + b".\r\n")
    code, lines = r.reply()
    check(code == 250 and "queued as" in lines[-1], f"end of data: {code} {lines}")
    r.cmd("QUIT", 221)
    print("pipelined replies:", codes)


def c_rcpts(args):
    """Tries each --try address as RCPT (a fresh MAIL each); prints
    `RCPT <addr> CODE text` per address; then QUIT."""
    if args.starttls or args.user:
        s = connect(args)
        s.ehlo()
        if args.starttls:
            s.starttls(context=tls_context(args))
            s.ehlo()
        if args.user:
            login(s, args, "PLAIN")
    else:
        s = connect(args)
        s.ehlo()
    for addr in args.try_rcpt:
        code, text = s.mail(args.sender)
        if code != 250:
            print(f"MAIL <{args.sender}> {code} {text.decode('utf-8', 'replace')}")
            s.rset()
            continue
        s.command_encoding = "utf-8"
        code, text = s.docmd(f"RCPT TO:<{addr}>")
        print(f"RCPT <{addr}> {code} {text.decode('utf-8', 'replace')}")
        if code == 250 and args.data:
            code, text = s.data(message(args, "relay " + args.tag).encode())
            print(f"DATA <{addr}> {code} {text.decode('utf-8', 'replace')}")
        else:
            s.rset()
    s.quit()


def c_idle(args):
    """--count sequential sessions (each EHLO, QUIT), then --idle
    connections at once: every one must get its 220 greeting within 20 s."""
    for _ in range(int(args.count)):
        s = connect(args)
        s.ehlo()
        s.quit()
    socks, greeted = [], 0
    sel = selectors.DefaultSelector()
    for _ in range(int(args.idle)):
        c = socket.create_connection((args.host, args.port), timeout=TIMEOUT)
        c.setblocking(False)
        sel.register(c, selectors.EVENT_READ)
        socks.append(c)
    t0 = time.monotonic()
    while greeted < len(socks) and time.monotonic() - t0 < 20:
        for key, _ in sel.select(1):
            data = key.fileobj.recv(512)
            sel.unregister(key.fileobj)
            check(data.startswith(b"220 "), f"not a greeting: {data!r}")
            greeted += 1
    print(f"greeted {greeted} of {len(socks)}")
    check(greeted == len(socks), f"only {greeted} of {len(socks)} idle connections greeted within 20 s")
    for c in socks:
        c.close()


CHECKS = {name[2:].replace("_", "-"): fn for name, fn in globals().items() if name.startswith("c_")}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("check", choices=sorted(CHECKS))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--submission-port", type=int)
    p.add_argument("--ca")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--mech", default="PLAIN")
    p.add_argument("--sender", default="sender@client.test")
    p.add_argument("--rcpt", default="alice@virt.test")
    p.add_argument("--hidden-rcpt", default="bob@virt.test")
    p.add_argument("--tag", default="t")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--starttls", action="store_true")
    p.add_argument("--auth-only", action="store_true")
    p.add_argument("--expect-auth", action="store_true")
    p.add_argument("--expect-size")
    p.add_argument("--expect", default="")
    p.add_argument("--bad-password", action="store_true")
    p.add_argument("--limit", default="0")
    p.add_argument("--variant", choices=sorted(SMUGGLE), default="lf")
    p.add_argument("--try", dest="try_rcpt", action="append", default=[])
    p.add_argument("--data", action="store_true")
    p.add_argument("--count", default="0")
    p.add_argument("--idle", default="0")
    args = p.parse_args()
    try:
        CHECKS[args.check](args)
    except CheckFailed as e:
        print(f"FAILED {args.check}: {e}", file=sys.stderr)
        sys.exit(1)
    except (smtplib.SMTPException, OSError, ssl.SSLError) as e:
        print(f"FAILED {args.check}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
