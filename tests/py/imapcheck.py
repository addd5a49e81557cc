#!/usr/bin/env python3
"""IMAP client checks run by the Rust system tests (tests/imap.rs).

    imapcheck.py CHECK --port N [--ssl-port N] [--mode plain|stls|ssl]
                 [--ca FILE] [--user U] [--password P] [--maildir DIR]
                 [--sendmail PROG --config DIR] ...

Each CHECK talks to a running IMAP server with Python's imaplib (raw
commands through the same connection where imaplib has no method),
asserts what RFC 3501/9051 and the extensions require, prints a JSON line,
and exits non-zero naming the first failure. The checks are written so
that they pass against a real Dovecot 2.3 as well (tests/py/imapdovecot.py
starts one), which is how they were checked. TLS clients trust only --ca
and check the name localhost.
"""

import argparse
import base64
import email.utils
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
import zlib
import imaplib

TIMEOUT = 30


class CheckFailed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise CheckFailed(what)


# --- connection ---------------------------------------------------------------


class Deflate:
    """COMPRESS=DEFLATE (RFC 4978) under imaplib: raw deflate both ways."""

    def __init__(self, m):
        self.m = m
        self.c = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.d = zlib.decompressobj(-15)
        self.buf = b""
        m.send = self.send
        m.read = self.read
        m.readline = self.readline

    def send(self, data):
        self.m.sock.sendall(self.c.compress(data) + self.c.flush(zlib.Z_SYNC_FLUSH))

    def fill(self):
        raw = self.m.sock.recv(65536)
        if not raw:
            raise CheckFailed("connection closed under COMPRESS")
        self.buf += self.d.decompress(raw)

    def read(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def readline(self):
        while b"\n" not in self.buf:
            self.fill()
        i = self.buf.index(b"\n") + 1
        out, self.buf = self.buf[:i], self.buf[i:]
        return out


def connect(a, mode=None):
    mode = mode or a.mode
    if mode == "ssl":
        ctx = ssl.create_default_context(cafile=a.ca)
        m = imaplib.IMAP4_SSL("localhost", a.ssl_port, ssl_context=ctx, timeout=TIMEOUT)
    else:
        m = imaplib.IMAP4("127.0.0.1", a.port, timeout=TIMEOUT)
    if mode == "stls":
        check("STARTTLS" in m.capabilities, f"no STARTTLS in {m.capabilities}")
        ctx = ssl.create_default_context(cafile=a.ca)
        ctx.check_hostname = False
        m.starttls(ssl_context=ctx)
    return m


TAGN = [0]


def raw(m, cmd):
    """Send one command (bytes, without tag and CRLF; a non-synchronizing
    literal may be inside). Returns (untagged units, tagged line); units
    keep their literals."""
    TAGN[0] += 1
    tag = b"X%04d" % TAGN[0]
    m.send(tag + b" " + cmd + b"\r\n")
    return read_until(m, tag)


def read_unit(m):
    unit = b""
    while True:
        line = m.readline()
        check(line, "connection closed")
        unit += line
        mm = re.search(rb"\{(\d+)\}\r\n$", line)
        if not mm:
            return unit
        unit += m.read(int(mm.group(1)))


def read_until(m, tag):
    units = []
    while True:
        u = read_unit(m)
        if u.startswith(tag + b" "):
            return units, u
        units.append(u)


def sync_raw(m, pieces):
    """A command with synchronizing literals: pieces alternate text and
    literal octets; waits for '+' before each literal."""
    TAGN[0] += 1
    tag = b"X%04d" % TAGN[0]
    m.send(tag + b" ")
    for i, p in enumerate(pieces):
        if i % 2 == 0:
            m.send(p)
            if i + 1 < len(pieces):
                m.send(b"\r\n")
                cont = m.readline()
                check(cont.startswith(b"+"), f"no continuation for a literal: {cont!r}")
        else:
            m.send(p)
    m.send(b"\r\n")
    return read_until(m, tag)


def ok(resp, what):
    units, tagged = resp
    check(b" OK" in tagged[:12], f"{what}: {tagged!r} {units!r}")
    return units


def login(m, a, how=None):
    how = how or a.auth
    if how == "login":
        typ, dat = m.login(a.user, a.password)
        check(typ == "OK", f"LOGIN: {dat}")
    elif how == "plain-ir":
        check("SASL-IR" in m.capabilities, f"no SASL-IR: {m.capabilities}")
        ir = base64.b64encode(b"\0" + a.user.encode() + b"\0" + a.password.encode())
        ok(raw(m, b"AUTHENTICATE PLAIN " + ir), "AUTHENTICATE PLAIN with SASL-IR")
        m.state = "AUTH"
    elif how == "plain":
        typ, dat = m.authenticate("PLAIN", lambda _: b"\0" + a.user.encode() + b"\0" + a.password.encode())
        check(typ == "OK", f"AUTHENTICATE PLAIN: {dat}")
    elif how == "authlogin":
        answers = [a.user.encode(), a.password.encode()]
        typ, dat = m.authenticate("LOGIN", lambda _: answers.pop(0))
        check(typ == "OK", f"AUTHENTICATE LOGIN: {dat}")
    m.state = "AUTH"
    return m


def caps(m):
    units = ok(raw(m, b"CAPABILITY"), "CAPABILITY")
    line = [u for u in units if u.upper().startswith(b"* CAPABILITY ")]
    check(line, f"no CAPABILITY data: {units}")
    return set(line[0].decode().upper().split()[2:])


def session(a, mode=None, how=None):
    return login(connect(a, mode), a, how)


def select(m, box="INBOX", extra=b""):
    units = ok(raw(m, b"SELECT " + q(box) + extra), f"SELECT {box}")
    m.state = "SELECTED"
    return units


def q(name):
    """A mailbox name as a quoted string (modified UTF-7 applied)."""
    return b'"' + mutf7(name).replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def mutf7(s):
    out = b""
    buf = ""

    def flush():
        nonlocal buf, out
        if buf:
            b64 = base64.b64encode(buf.encode("utf-16-be")).rstrip(b"=").replace(b"/", b",")
            out += b"&" + b64 + b"-"
            buf = ""

    for ch in s:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out += b"&-" if ch == "&" else ch.encode()
        else:
            buf += ch
    flush()
    return out


def fetch_units(units):
    return [u for u in units if re.match(rb"\* \d+ FETCH", u)]


def num(units, word):
    for u in units:
        mm = re.match(rb"\* (\d+) " + word, u)
        if mm:
            return int(mm.group(1))
    return None


def code(text, name):
    mm = re.search(rb"\[" + name + rb" ([^\]]*)\]", text)
    return mm.group(1).decode() if mm else None


# --- messages -----------------------------------------------------------------


def crlf(b):
    return re.sub(rb"(?<!\r)\n", b"\r\n", b)


ATTACH = bytes(range(256)) * 3


def rich_message():
    """A multipart message whose every section is known."""
    text = "Grüße aus Köln, a body line with =, and more.".encode()
    qp = b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln, a body line with =3D, and more."
    att = base64.encodebytes(ATTACH).replace(b"\n", b"\r\n")[:-2]
    inner = (b"From: Inner <inner@example.org>\r\nSubject: inner one\r\n"
             b"Content-Type: text/plain; charset=us-ascii\r\n\r\ninner body")
    head = (b"From: =?utf-8?q?J=C3=BCrgen?= <juergen@example.org>\r\n"
            b"To: Alice <alice@virt.test>, bob@virt.test\r\n"
            b"Cc: Carol <carol@example.com>\r\n"
            b"Subject: =?iso-8859-1?q?R=E9union?= rich\r\n"
            b"Date: Mon, 7 Dec 2026 10:00:00 +0100\r\n"
            b"Message-ID: <rich-1@example.org>\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n")
    part1_mime = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
    part2_mime = (b"Content-Type: application/octet-stream; name=\"bytes.bin\"\r\n"
                  b"Content-Transfer-Encoding: base64\r\n"
                  b"Content-Disposition: attachment; filename=\"bytes.bin\"\r\n")
    part3_mime = b"Content-Type: message/rfc822\r\n"
    # The CRLF before each boundary belongs to the boundary, not the part.
    body = (b"preamble\r\n--b1\r\n" + part1_mime + b"\r\n" + qp + b"\r\n--b1\r\n" + part2_mime + b"\r\n" + att +
            b"\r\n--b1\r\n" + part3_mime + b"\r\n" + inner + b"\r\n--b1--\r\n")
    msg = head + b"\r\n" + body
    return {"msg": msg, "head": head + b"\r\n", "text": body, "p1": qp, "p1mime": part1_mime + b"\r\n",
            "p2": att, "p2mime": part2_mime + b"\r\n", "p3": inner, "decoded1": text,
            "decoded2": ATTACH, "inner_head": inner.split(b"\r\n\r\n")[0] + b"\r\n\r\n",
            "inner_text": b"inner body"}


def simple(subject, frm="Bob <bob@example.net>", to="alice@virt.test", date="Mon, 7 Dec 2026 10:00:00 +0000",
           body="hello\n", extra=""):
    h = f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n{extra}" \
        f"Message-ID: <{abs(hash((subject, date, body))) % 10**12}@test>\r\n"
    return (h + "\r\n" + body.replace("\n", "\r\n")).encode()


def append(m, box, msg, flags="", date=None):
    """APPEND with a synchronizing literal; returns (uidvalidity, uid)."""
    arg = b"APPEND " + q(box)
    if flags:
        arg += b" (" + flags.encode() + b")"
    if date:
        arg += b' "' + date.encode() + b'"'
    arg += b" {%d}" % len(msg)
    units, tagged = sync_raw(m, [arg, msg, b""])
    check(b" OK" in tagged[:12], f"APPEND: {tagged!r}")
    au = code(tagged, rb"APPENDUID")
    check(au, f"no APPENDUID (UIDPLUS): {tagged!r}")
    v, u = au.split()
    return int(v), int(u)


def fetch(m, what, items, uid=False):
    cmd = (b"UID " if uid else b"") + b"FETCH " + what.encode() + b" " + items.encode()
    return fetch_units(ok(raw(m, cmd), cmd.decode()))


def item(unit, name):
    """The value of one FETCH item (a literal's octets, a string, or the
    parenthesized text)."""
    key = name.encode() + b" "
    i = unit.find(key)
    check(i >= 0, f"{name} not in {unit[:300]!r}")
    i += len(key)
    if unit[i:i + 1] in (b"{", b"~"):
        j = unit.index(b"}", i)
        n = int(unit[i:j].lstrip(b"~{"))
        return unit[j + 3:j + 3 + n]
    if unit[i:i + 1] == b'"':
        out = b""
        i += 1
        while unit[i:i + 1] != b'"':
            if unit[i:i + 1] == b"\\":
                i += 1
            out += unit[i:i + 1]
            i += 1
        return out
    if unit[i:i + 1] == b"(":
        depth = 0
        j = i
        while True:
            c = unit[j:j + 1]
            if c == b"(":
                depth += 1
            elif c == b")":
                depth -= 1
                if depth == 0:
                    return unit[i:j + 1]
            elif c == b'"':
                j += 1
                while unit[j:j + 1] != b'"':
                    j += 2 if unit[j:j + 1] == b"\\" else 1
            elif c == b"{":
                k = unit.index(b"}", j)
                j = k + 2 + int(unit[j + 1:k])
            j += 1
    mm = re.match(rb"[^ )\r]+", unit[i:])
    return mm.group(0)


def flags_of(unit):
    """The flags of a FETCH response, without \\Recent (which depends on
    which session saw a message first)."""
    return set(item(unit, "FLAGS").strip(b"()").decode().split()) - {"\\Recent"}


def esearch(unit):
    """ESEARCH return data as a dict (the order of items is free)."""
    words = re.sub(rb"^\* ESEARCH( \(TAG \"[^\"]*\"\))?( UID)?", b"", unit.rstrip()).decode().split()
    return dict(zip(words[::2], words[1::2]))


def sep(m):
    units = ok(raw(m, b'LIST "" ""'), "LIST \"\" \"\"")
    mm = re.match(rb'\* LIST \([^)]*\) "(.)"', units[0])
    check(mm, f"hierarchy delimiter: {units}")
    return mm.group(1).decode()


def names(units, verb=b"LIST"):
    """{name: flags} from LIST/LSUB data (names decoded from quoted form)."""
    out = {}
    for u in units:
        mm = re.match(rb"\* " + verb + rb" \(([^)]*)\) (?:\"[^\"]*\"|NIL) (.*?)(?: \(.*\))?\r\n$", u, re.S)
        if not mm:
            continue
        n = mm.group(2)
        if n.startswith(b"{"):
            n = n[n.index(b"\n") + 1:]
        n = n.strip(b'"').replace(b'\\"', b'"').replace(b"\\\\", b"\\").decode()
        out[n] = set(mm.group(1).decode().lower().split())
    return out


def deliver(a, msg):
    """A message delivered the way the suite's mail arrives: the project's
    sendmail (--sendmail), SMTP (--smtp-port) or, for a bare Dovecot, a
    file written into the Maildir's new/."""
    if a.sendmail:
        p = subprocess.run([a.sendmail, "-C", a.config, "-f", "suite@example.org", a.user], input=msg,
                           capture_output=True, timeout=30)
        check(p.returncode == 0, f"sendmail: {p.stderr!r}")
    elif a.smtp_port:
        import smtplib
        with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=TIMEOUT) as s:
            s.sendmail("suite@example.org", [a.user], msg)
    else:
        name = f"{time.time():.6f}.M{os.getpid()}P{threading.get_ident() % 100000}.suite"
        tmp = os.path.join(a.maildir, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(msg.replace(b"\r\n", b"\n"))
        st = os.stat(a.maildir)
        os.chown(tmp, st.st_uid, st.st_gid)
        os.rename(tmp, os.path.join(a.maildir, "new", name))


def maildir_names(a):
    out = set()
    for d in ("new", "cur"):
        try:
            out |= set(os.listdir(os.path.join(a.maildir, d)))
        except OSError:
            pass
    return out


def empty_inbox(m):
    select(m)
    raw(m, b"STORE 1:* +FLAGS.SILENT (\\Deleted)")
    ok(raw(m, b"EXPUNGE"), "EXPUNGE")


# --- checks -------------------------------------------------------------------

POST_LOGIN = ["IMAP4REV1", "IDLE", "UIDPLUS", "MOVE", "NAMESPACE", "ID", "ENABLE", "UNSELECT", "CHILDREN",
              "SPECIAL-USE", "LIST-EXTENDED", "LIST-STATUS", "ESEARCH", "CONDSTORE", "QRESYNC", "STATUS=SIZE", "SORT",
              "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT", "SASL-IR"]


def c_caps(a):
    """Capabilities before and after login in this mode, every login
    method, ID, ENABLE, NAMESPACE, COMPRESS=DEFLATE."""
    out = {}
    for how in ("login", "plain-ir", "plain", "authlogin"):
        m = connect(a)
        pre = caps(m)
        check("IMAP4REV1" in pre, f"{pre}")
        check("AUTH=PLAIN" in pre and "AUTH=LOGIN" in pre, f"AUTH mechanisms: {pre}")
        check("LITERAL+" in pre or "LITERAL-" in pre, f"no LITERAL+/-: {pre}")
        check(("STARTTLS" in pre) == (a.mode == "plain"), f"STARTTLS in {a.mode}: {pre}")
        check("LOGINDISABLED" not in pre or a.mode == "plain", f"{pre}")
        login(m, a, how)
        post = caps(m)
        missing = [c for c in POST_LOGIN if c not in post]
        check(not missing, f"after {how} login, missing {missing}: {sorted(post)}")
        check("STARTTLS" not in post, f"STARTTLS after login: {post}")
        check(any(c.startswith("COMPRESS=DEFLATE") for c in post), f"no COMPRESS=DEFLATE: {post}")
        out[how] = sorted(post)
        m.logout()
    m = session(a)
    units = ok(raw(m, b'ID ("name" "imapcheck" "version" "1")'), "ID")
    check(any(u.startswith(b"* ID ") for u in units), f"ID: {units}")
    units = ok(raw(m, b"NAMESPACE"), "NAMESPACE")
    ns = [u for u in units if u.startswith(b"* NAMESPACE ")]
    check(ns and re.match(rb'\* NAMESPACE \(\("" "[./]"\)\) ', ns[0]), f"NAMESPACE: {units}")
    units = ok(raw(m, b"ENABLE CONDSTORE"), "ENABLE")
    check(any(u.upper().startswith(b"* ENABLED") and b"CONDSTORE" in u.upper() for u in units), f"ENABLE: {units}")
    ok(raw(m, b"COMPRESS DEFLATE"), "COMPRESS DEFLATE")
    Deflate(m)
    units = ok(raw(m, b'LIST "" "*"'), "LIST under COMPRESS")
    check(any(b"INBOX" in u for u in units), f"LIST under COMPRESS: {units}")
    units = ok(raw(m, b"SELECT INBOX"), "SELECT under COMPRESS")
    check(num(units, b"EXISTS") is not None, f"{units}")
    units, tagged = raw(m, b"COMPRESS DEFLATE")
    check(b" NO " in tagged[:12] or b" BAD " in tagged[:12], f"second COMPRESS: {tagged!r}")
    ok(raw(m, b"LOGOUT"), "LOGOUT under COMPRESS")
    # A wrong password: NO, and the session goes on.
    m = connect(a)
    try:
        m.login(a.user, a.password + "x")
        raise CheckFailed("a wrong password was accepted")
    except imaplib.IMAP4.error as e:
        check("AUTHENTICATIONFAILED" in str(e) or "failed" in str(e).lower(), f"{e}")
    units, tagged = raw(m, b"SELECT INBOX")
    check(b" BAD " in tagged[:12] or b" NO " in tagged[:12], f"SELECT before login: {tagged!r}")
    m.logout()
    print(json.dumps({"caps": out}))


def c_mailboxes(a):
    """CREATE/DELETE/RENAME, LIST wildcards and hierarchy, LSUB,
    SUBSCRIBE, SPECIAL-USE, CHILDREN, LIST-EXTENDED, LIST-STATUS, STATUS
    (with SIZE), modified UTF-7 names."""
    m = session(a)
    d = sep(m)
    top = names(ok(raw(m, b'LIST "" "%"'), "LIST %"))
    for box, use in (("Drafts", "\\drafts"), ("Sent", "\\sent"), ("Trash", "\\trash"), ("Junk", "\\junk")):
        check(box in top and use in top[box], f"special-use {box}: {top}")
    check("INBOX" in top, f"{top}")
    created = ["Archive", f"Archive{d}2026", f"Archive{d}2026{d}Q1", "Entwürfe", "日本語", "Dir & Co"]
    for box in created:
        ok(raw(m, b"CREATE " + q(box)), f"CREATE {box}")
    units, tagged = raw(m, b"CREATE " + q("Archive"))
    check(b" NO " in tagged[:12], f"CREATE of an existing name: {tagged!r}")
    # The modified UTF-7 forms on the wire.
    allb = ok(raw(m, b'LIST "" "*"'), "LIST *")
    wire = b"".join(allb)
    for enc in (b"Entw&APw-rfe", b"&ZeVnLIqe-", b"Dir &- Co"):
        check(enc in wire, f"{enc!r} not in LIST: {wire!r}")
    every = names(allb)
    want = {mutf7(b).decode() for b in created}
    check(want <= set(every), f"LIST *: {sorted(every)}")
    pct = names(ok(raw(m, b'LIST "" "%"'), "LIST %"))
    check("Archive" in pct and f"Archive{d}2026" not in pct, f"LIST %: {sorted(pct)}")
    check("\\haschildren" in pct["Archive"], f"Archive: {pct['Archive']}")
    check("\\hasnochildren" in pct["Sent"], f"Sent: {pct['Sent']}")
    lvl = names(ok(raw(m, b'LIST "" "Archive' + d.encode() + b'%"'), "LIST Archive.%"))
    check(set(lvl) == {f"Archive{d}2026"}, f"LIST Archive{d}%: {lvl}")
    ref = names(ok(raw(m, b'LIST "Archive' + d.encode() + b'" "%"'), "LIST with a reference"))
    check(set(ref) == {f"Archive{d}2026"}, f"LIST reference: {ref}")
    star = names(ok(raw(m, b'LIST "" "Arch*Q1"'), "LIST Arch*Q1"))
    check(set(star) == {f"Archive{d}2026{d}Q1"}, f"LIST Arch*Q1: {star}")
    # SPECIAL-USE selection.
    su = names(ok(raw(m, b'LIST (SPECIAL-USE) "" "*"'), "LIST (SPECIAL-USE)"))
    check({"Drafts", "Sent", "Trash", "Junk"} <= set(su), f"LIST (SPECIAL-USE): {su}")
    uses = {"\\all", "\\archive", "\\drafts", "\\flagged", "\\junk", "\\sent", "\\trash"}
    check(all(f & uses for f in su.values()), f"LIST (SPECIAL-USE) without a special use: {su}")
    # Subscriptions: LSUB and LIST (SUBSCRIBED).
    for box in (f"Archive{d}2026", "Entwürfe"):
        ok(raw(m, b"SUBSCRIBE " + q(box)), f"SUBSCRIBE {box}")
    lsub = names(ok(raw(m, b'LSUB "" "*"'), "LSUB"), b"LSUB")
    check({f"Archive{d}2026", "Entw&APw-rfe"} <= set(lsub), f"LSUB: {lsub}")
    check("Archive" not in lsub or "\\noselect" in lsub["Archive"], f"LSUB: {lsub}")
    sub = names(ok(raw(m, b'LIST (SUBSCRIBED) "" "*"'), "LIST (SUBSCRIBED)"))
    check({f"Archive{d}2026", "Entw&APw-rfe"} <= set(sub), f"LIST (SUBSCRIBED): {sub}")
    check(all("\\subscribed" in f for f in sub.values()), f"{sub}")
    rec = names(ok(raw(m, b'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'), "RECURSIVEMATCH"))
    check("Archive" in rec, f"LIST (SUBSCRIBED RECURSIVEMATCH) %: {rec}")
    ret = names(ok(raw(m, b'LIST "" "*" RETURN (SUBSCRIBED CHILDREN)'), "LIST RETURN"))
    check("\\subscribed" in ret[f"Archive{d}2026"] and "\\haschildren" in ret[f"Archive{d}2026"], f"{ret}")
    multi = names(ok(raw(m, b'LIST "" ("Sent" "Trash")'), "LIST with two patterns"))
    check(set(multi) == {"Sent", "Trash"}, f"LIST (Sent Trash): {multi}")
    ok(raw(m, b"UNSUBSCRIBE " + q("Entwürfe")), "UNSUBSCRIBE")
    lsub = names(ok(raw(m, b'LSUB "" "*"'), "LSUB"), b"LSUB")
    check("Entw&APw-rfe" not in lsub, f"LSUB after UNSUBSCRIBE: {lsub}")
    # STATUS, with SIZE, and LIST-STATUS.
    msgs = [simple(f"status {i}", body="x" * (10 + i) + "\n") for i in range(3)]
    for i, msg in enumerate(msgs):
        append(m, f"Archive{d}2026", msg, "\\Seen" if i == 0 else "")
    units = ok(raw(m, b"STATUS " + q(f"Archive{d}2026") + b" (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN SIZE)"),
               "STATUS")
    st = units[0].decode()
    check(re.search(r"MESSAGES 3\b", st) and re.search(r"UNSEEN 2\b", st), f"STATUS: {st}")
    size = int(re.search(r"SIZE (\d+)", st).group(1))
    check(size == sum(len(x) for x in msgs), f"STATUS SIZE {size}, messages {sum(len(x) for x in msgs)}")
    check(re.search(r"UIDNEXT (\d+)", st) and re.search(r"UIDVALIDITY (\d+)", st), st)
    units = ok(raw(m, b'LIST "" "Archive*" RETURN (STATUS (MESSAGES UNSEEN SIZE))'), "LIST-STATUS")
    sts = [u for u in units if u.startswith(b"* STATUS ")]
    check(any(b"MESSAGES 3" in s and b"UNSEEN 2" in s for s in sts), f"LIST-STATUS: {units}")
    check(len(sts) >= 2, f"LIST-STATUS for each selectable match: {units}")
    # RENAME keeps messages and moves children; DELETE.
    ok(raw(m, b"RENAME " + q(f"Archive{d}2026") + b" " + q(f"Archive{d}Y2026")), "RENAME")
    every = names(ok(raw(m, b'LIST "" "*"'), "LIST *"))
    check(f"Archive{d}Y2026" in every and f"Archive{d}Y2026{d}Q1" in every and f"Archive{d}2026" not in every,
          f"after RENAME: {sorted(every)}")
    units = ok(raw(m, b"STATUS " + q(f"Archive{d}Y2026") + b" (MESSAGES)"), "STATUS after RENAME")
    check(b"MESSAGES 3" in units[0], f"{units}")
    ok(raw(m, b"DELETE " + q(f"Archive{d}Y2026{d}Q1")), "DELETE")
    ok(raw(m, b"DELETE " + q("Dir & Co")), "DELETE")
    units, tagged = raw(m, b"SELECT " + q("Dir & Co"))
    check(b" NO " in tagged[:12], f"SELECT of a deleted mailbox: {tagged!r}")
    every = names(ok(raw(m, b'LIST "" "*"'), "LIST *"))
    check(f"Archive{d}Y2026{d}Q1" not in every and "Dir &- Co" not in every, f"after DELETE: {sorted(every)}")
    units, tagged = raw(m, b"DELETE INBOX")
    check(b" NO " in tagged[:12], f"DELETE INBOX: {tagged!r}")
    m.logout()
    print(json.dumps({"separator": d, "mailboxes": sorted(every)}))


def c_fetch(a):
    """APPEND (synchronizing literal, LITERAL+, flags, date), and FETCH of
    every item and section form."""
    m = session(a)
    c = caps(m)
    r = rich_message()
    msg = r["msg"]
    v, uid = append(m, "INBOX", msg, "$Label1", "01-Dec-2026 10:00:00 +0100")
    # LITERAL+: no continuation request.
    second = simple("literal plus", body="sent with LITERAL+\n")
    units, tagged = raw(m, b"APPEND INBOX (\\Seen) {%d+}\r\n" % len(second) + second)
    check(b" OK" in tagged[:12], f"APPEND with LITERAL+: {tagged!r}")
    uid2 = int(code(tagged, rb"APPENDUID").split()[1])
    check(uid2 > uid, f"UIDs {uid} then {uid2}")
    # A small literal in a command other than APPEND (LITERAL-/+ apply to all).
    units = ok(raw(m, b"SELECT {5+}\r\nINBOX"), "SELECT with a non-synchronizing literal")
    m.state = "SELECTED"
    check(num(units, b"EXISTS") is not None, f"{units}")
    units, tagged = sync_raw(m, [b"STATUS {5}", b"INBOX", b" (MESSAGES)"])
    check(b" OK" in tagged[:12] and any(b"MESSAGES" in u for u in units), f"{tagged!r} {units}")
    # Everything at once, by UID.
    [u] = fetch(m, str(uid), "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)", uid=True)
    check(item(u, "UID") == str(uid).encode(), f"{u[:200]!r}")
    check(flags_of(u) == {"$Label1"}, f"FLAGS: {item(u, 'FLAGS')!r}")
    idate = item(u, "INTERNALDATE").decode()
    # The same instant (a server may give it in its own zone, as Dovecot does).
    when = email.utils.parsedate_to_datetime(idate.replace("-", " ", 2)).timestamp()
    check(when == 1796115600, f"INTERNALDATE {idate}")
    check(int(item(u, "RFC822.SIZE")) == len(msg), f"RFC822.SIZE {item(u, 'RFC822.SIZE')!r} != {len(msg)}")
    env = item(u, "ENVELOPE")
    check(env.startswith(b'("Mon, 7 Dec 2026 10:00:00 +0100" "=?iso-8859-1?q?R=E9union?= rich" '
                         b'(("=?utf-8?q?J=C3=BCrgen?=" NIL "juergen" "example.org"))'), f"ENVELOPE {env!r}")
    check(b'(("Alice" NIL "alice" "virt.test")(NIL NIL "bob" "virt.test"))' in env, f"ENVELOPE To {env!r}")
    check(env.endswith(b' NIL NIL "<rich-1@example.org>")'), f"ENVELOPE {env!r}")
    bs = item(u, "BODYSTRUCTURE").lower()
    check(bs.startswith(b'(("text" "plain" ("charset" "utf-8") nil nil "quoted-printable" %d 0 ' % len(r["p1"])),
          f"BODYSTRUCTURE {bs!r}")
    check(b'("application" "octet-stream" ("name" "bytes.bin") nil nil "base64" %d nil ("attachment" ("filename" '
          b'"bytes.bin"))' % len(r["p2"]) in bs, f"BODYSTRUCTURE {bs!r}")
    check(b'("message" "rfc822" nil nil nil "7bit" %d ' % len(r["p3"]) in bs, f"BODYSTRUCTURE {bs!r}")
    check(bs.endswith(b' "mixed" ("boundary" "b1") nil nil nil)'), f"BODYSTRUCTURE {bs!r}")
    [u] = fetch(m, str(uid), "(BODY)", uid=True)
    body = item(u, "BODY").lower()
    check(body.endswith(b' "mixed")') and b"attachment" not in body, f"BODY has extension data: {body!r}")
    # Sections, all with PEEK first: \Seen stays off.
    want = {
        "BODY[]": msg, "BODY[HEADER]": r["head"], "BODY[TEXT]": r["text"], "BODY[1]": r["p1"],
        "BODY[1.MIME]": r["p1mime"], "BODY[2]": r["p2"], "BODY[2.MIME]": r["p2mime"], "BODY[3]": r["p3"],
        "BODY[3.HEADER]": r["inner_head"], "BODY[3.TEXT]": r["inner_text"], "BODY[3.1]": r["inner_text"],
        "BODY[HEADER.FIELDS (SUBJECT DATE)]":
            b"Subject: =?iso-8859-1?q?R=E9union?= rich\r\nDate: Mon, 7 Dec 2026 10:00:00 +0100\r\n\r\n",
        "BODY[3.HEADER.FIELDS.NOT (FROM CONTENT-TYPE)]": b"Subject: inner one\r\n\r\n",
        "BODY[]<0>": msg[:20], "BODY[2]<100>": r["p2"][100:130], "BODY[1]<1000>": b"",
        "BINARY[1]": r["decoded1"], "BINARY[2]": r["decoded2"],
    }
    for sec, expect in want.items():
        name = sec.replace("BODY[", "BODY.PEEK[").replace("BINARY[", "BINARY.PEEK[")
        if sec == "BODY[]<0>":
            name = "BODY.PEEK[]<0.20>"
        elif sec == "BODY[2]<100>":
            name = "BODY.PEEK[2]<100.30>"
        elif sec == "BODY[1]<1000>":
            name = "BODY.PEEK[1]<1000.10>"
        [u] = fetch(m, str(uid), f"({name})", uid=True)
        got = item(u, sec if "FIELDS" not in sec else sec.split("[")[0] + "[" + sec.split("[")[1])
        check(got == expect, f"{name}: got {got[:200]!r}, want {expect[:200]!r}")
        check(b"FLAGS" not in u, f"{name} reported FLAGS: {u[:200]!r}")
    [u] = fetch(m, str(uid), "(BINARY.SIZE[2] BINARY.SIZE[1])", uid=True)
    check(int(item(u, "BINARY.SIZE[2]")) == len(ATTACH), f"{u!r}")
    check(int(item(u, "BINARY.SIZE[1]")) == len(r["decoded1"]), f"{u!r}")
    [u] = fetch(m, str(uid), "(RFC822.HEADER)", uid=True)
    check(item(u, "RFC822.HEADER") == r["head"], f"RFC822.HEADER {u[:300]!r}")
    [u] = fetch(m, str(uid), "(FLAGS)", uid=True)
    check("\\Seen" not in flags_of(u), f"PEEK set \\Seen: {u!r}")
    # Non-PEEK forms set \Seen and say so.
    [u] = fetch(m, str(uid), "(BODY[1])", uid=True)
    check("\\Seen" in flags_of(u), f"BODY[1] did not report \\Seen: {u[:300]!r}")
    ok(raw(m, b"UID STORE %d -FLAGS.SILENT (\\Seen)" % uid), "STORE")
    [u] = fetch(m, str(uid), "(RFC822.TEXT)", uid=True)
    check(item(u, "RFC822.TEXT") == r["text"] and "\\Seen" in flags_of(u), f"RFC822.TEXT {u[:300]!r}")
    ok(raw(m, b"UID STORE %d -FLAGS.SILENT (\\Seen)" % uid), "STORE")
    [u] = fetch(m, str(uid), "(RFC822)", uid=True)
    check(item(u, "RFC822") == msg and "\\Seen" in flags_of(u), f"RFC822 {u[:300]!r}")
    ok(raw(m, b"UID STORE %d -FLAGS.SILENT (\\Seen)" % uid), "STORE")
    [u] = fetch(m, str(uid), "(BINARY[2])", uid=True)
    check(item(u, "BINARY[2]") == ATTACH and "\\Seen" in flags_of(u), f"BINARY[2]: {u[:200]!r}")
    # By sequence number, ranges and *.
    us = fetch(m, "1:*", "(UID)")
    check(len(us) >= 2, f"{us}")
    [last] = fetch(m, "*", "(UID)")
    check(int(item(last, "UID")) == uid2, f"* is UID {item(last, 'UID')!r}, want {uid2}")
    # Macros.
    [u] = fetch(m, str(uid), "FAST", uid=True)
    check(b"INTERNALDATE" in u and b"RFC822.SIZE" in u and b"FLAGS" in u, f"FAST: {u!r}")
    [u] = fetch(m, str(uid), "FULL", uid=True)
    check(b"ENVELOPE" in u and b"BODY " in u, f"FULL: {u[:300]!r}")
    # A bad fetch is BAD, not a crash; the session goes on.
    units, tagged = raw(m, b"FETCH 1 (BODY[1.")
    check(b" BAD " in tagged[:12], f"broken FETCH: {tagged!r}")
    ok(raw(m, b"NOOP"), "NOOP after BAD")
    units, tagged = raw(m, b"UID FETCH 999999 (FLAGS)")
    check(b" OK" in tagged[:12] and not fetch_units(units), f"UID FETCH of no message: {tagged!r}")
    m.logout()
    print(json.dumps({"uid": uid, "uidvalidity": v, "caps": sorted(c)}))


SEARCH_SET = [
    # subject, from, to, date, body, flags, internal date, extra headers
    ("Meeting plan", "Alice <alice@example.org>", "team@example.org", "Mon, 1 Jan 2024 09:00:00 +0000",
     "Let us meet on Monday.\n", "\\Seen", "01-Jan-2024 09:00:00 +0000", "Cc: carol@example.com\r\n"),
    ("Re: Meeting plan", "Bob <bob@example.net>", "alice@example.org", "Tue, 2 Jan 2024 09:00:00 +0000",
     "Monday works. Oscar\n", "\\Answered \\Seen", "02-Jan-2024 09:00:00 +0000",
     "In-Reply-To: <m1@test>\r\nReferences: <m1@test>\r\n"),
    ("=?utf-8?q?Gr=C3=BC=C3=9Fe?= from Zürich", "Carol <carol@example.com>", "alice@example.org",
     "Wed, 3 Jan 2024 09:00:00 +0000", "Grüße und Küsse\n", "\\Flagged", "03-Jan-2024 09:00:00 +0000",
     "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"),
    ("Re: Meeting plan", "Dave <dave@example.org>", "team@example.org", "Thu, 4 Jan 2024 09:00:00 +0000",
     "late reply " + "y" * 400 + "\n", "$Important", "04-Jan-2024 09:00:00 +0000",
     "In-Reply-To: <m2@test>\r\nReferences: <m1@test> <m2@test>\r\n"),
    ("Aardvark news", "Eve <eve@example.net>", "list@example.org", "Fri, 5 Jan 2024 09:00:00 +0000",
     "Aardvarks eat ants.\n", "\\Deleted \\Draft", "05-Jan-2024 09:00:00 +0000", "Bcc: secret@example.org\r\n"),
]


def search_messages():
    out = []
    for i, (subj, frm, to, date, body, flags, idate, extra) in enumerate(SEARCH_SET):
        mid = f"<m{i + 1}@test>"
        h = f"From: {frm}\r\nTo: {to}\r\nSubject: {subj}\r\nDate: {date}\r\nMessage-ID: {mid}\r\n{extra}"
        out.append(((h + "\r\n" + body.replace("\n", "\r\n")).encode(), flags, idate))
    return out


def c_search(a):
    """SEARCH with every kind of key (CHARSET UTF-8 too), ESEARCH, SORT,
    THREAD, over a mailbox of five known messages."""
    m = session(a)
    box = "SearchBox"
    ok(raw(m, b"CREATE " + q(box)), "CREATE")
    for msg, flags, idate in search_messages():
        append(m, box, msg, flags, idate)
    select(m, box)

    def s(query, lits=None):
        if lits is not None:
            units, tagged = sync_raw(m, query)
        else:
            units, tagged = raw(m, b"SEARCH " + query.encode())
        check(b" OK" in tagged[:12], f"SEARCH {query}: {tagged!r}")
        line = [u for u in units if u.startswith(b"* SEARCH")]
        check(len(line) == 1, f"SEARCH {query}: {units}")
        return sorted(int(x) for x in line[0].split()[2:])

    cases = {
        "ALL": [1, 2, 3, 4, 5], "SEEN": [1, 2], "UNSEEN": [3, 4, 5], "ANSWERED": [2], "UNANSWERED": [1, 3, 4, 5],
        "FLAGGED": [3], "UNFLAGGED": [1, 2, 4, 5], "DELETED": [5], "UNDELETED": [1, 2, 3, 4], "DRAFT": [5],
        "UNDRAFT": [1, 2, 3, 4], "KEYWORD $Important": [4], "UNKEYWORD $Important": [1, 2, 3, 5],
        "FROM bob": [2], "FROM \"example.org\"": [1, 4], "TO team": [1, 4], "CC carol": [1], "BCC secret": [5],
        "SUBJECT meeting": [1, 2, 4], "SUBJECT \"re: meeting\"": [2, 4], "BODY monday": [1, 2], "TEXT oscar": [2],
        "TEXT team@example": [1, 4], "HEADER In-Reply-To m2": [4], "HEADER References \"\"": [2, 4],
        "LARGER 400": [4], "SMALLER 300": [1, 2, 3, 5], "BEFORE 3-Jan-2024": [1, 2], "ON 3-Jan-2024": [3],
        "SINCE 4-Jan-2024": [4, 5], "SENTBEFORE 2-Jan-2024": [1], "SENTON 2-Jan-2024": [2],
        "SENTSINCE 5-Jan-2024": [5], "2:4": [2, 3, 4], "1,5": [1, 5], "*": [5], "UID 1:*": [1, 2, 3, 4, 5],
        "OR FROM alice FROM eve": [1, 5], "NOT SEEN": [3, 4, 5], "(SEEN ANSWERED)": [2],
        "OR (FLAGGED) (DELETED DRAFT)": [3, 5], "NOT (OR SEEN FLAGGED)": [4, 5], "SEEN NOT ANSWERED": [1],
        "SUBJECT aardvark UNDELETED": [], "SUBJECT aardvark": [5],
        "CHARSET US-ASCII SUBJECT plan": [1, 2, 4],
    }
    # (NEW, OLD and RECENT depend on which session saw a message first.)
    for k, want in cases.items():
        got = s(k)
        check(got == want, f"SEARCH {k}: {got}, want {want}")
    # CHARSET UTF-8 with a literal: encoded-word subject and 8-bit body.
    for key, word, want in (("SUBJECT", "grüße", [3]), ("BODY", "Küsse", [3]), ("TEXT", "zürich", [3]),
                            ("FROM", "carol", [3])):
        w = word.encode()
        got = s([b"SEARCH CHARSET UTF-8 " + key.encode() + b" {%d}" % len(w), w, b""], lits=True)
        check(got == want, f"SEARCH CHARSET UTF-8 {key} {word}: {got}, want {want}")
    units, tagged = raw(m, b"SEARCH CHARSET X-UNKNOWN-CHARSET SUBJECT x")
    check(b" NO " in tagged[:12] and b"BADCHARSET" in tagged, f"unknown charset: {tagged!r}")
    units, tagged = raw(m, b"SEARCH FROZZLE")
    check(b" BAD " in tagged[:12], f"bad key: {tagged!r}")
    # UID SEARCH answers UIDs.
    uids = [int(item(u, "UID")) for u in fetch(m, "1:*", "(UID)")]
    units = ok(raw(m, b"UID SEARCH SUBJECT meeting"), "UID SEARCH")
    got = sorted(int(x) for x in [u for u in units if u.startswith(b"* SEARCH")][0].split()[2:])
    check(got == [uids[0], uids[1], uids[3]], f"UID SEARCH: {got} (uids {uids})")
    # ESEARCH.
    units = ok(raw(m, b"SEARCH RETURN (MIN MAX COUNT ALL) SUBJECT meeting"), "ESEARCH")
    es = [u for u in units if u.startswith(b"* ESEARCH")]
    check(es and esearch(es[0]) == {"MIN": "1", "MAX": "4", "COUNT": "3", "ALL": "1:2,4"}, f"ESEARCH: {units}")
    check(b'(TAG "X' in es[0], f"ESEARCH tag: {es[0]!r}")
    units = ok(raw(m, b"UID SEARCH RETURN (COUNT) ALL"), "UID ESEARCH")
    es = [u for u in units if u.startswith(b"* ESEARCH")]
    check(es and b" UID " in es[0] and esearch(es[0]) == {"COUNT": "5"}, f"UID ESEARCH: {units}")
    units = ok(raw(m, b"SEARCH RETURN () FLAGGED"), "ESEARCH RETURN ()")
    es = [u for u in units if u.startswith(b"* ESEARCH")]
    check(es and esearch(es[0]) == {"ALL": "3"}, f"RETURN (): {units}")
    units = ok(raw(m, b"SEARCH RETURN (MIN) KEYWORD nothing"), "ESEARCH, no match")
    es = [u for u in units if u.startswith(b"* ESEARCH")]
    check(es and esearch(es[0]) == {}, f"ESEARCH with no match: {units}")

    # SORT.
    def sort(crit):
        units = ok(raw(m, b"SORT " + crit.encode() + b" UTF-8 ALL"), f"SORT {crit}")
        line = [u for u in units if u.startswith(b"* SORT")]
        check(line, f"SORT {crit}: {units}")
        return [int(x) for x in line[0].split()[2:]]

    sorts = {"(SUBJECT)": [5, 3, 1, 2, 4], "(REVERSE DATE)": [5, 4, 3, 2, 1], "(FROM)": [1, 2, 3, 4, 5],
             "(SIZE)": None, "(REVERSE ARRIVAL)": [5, 4, 3, 2, 1], "(TO SUBJECT)": [3, 2, 5, 1, 4],
             "(CC DATE)": [2, 3, 4, 5, 1]}
    for crit, want in sorts.items():
        got = sort(crit)
        if want is None:
            sizes = {int(re.match(rb"\* (\d+)", u).group(1)): int(item(u, "RFC822.SIZE"))
                     for u in fetch(m, "1:*", "(RFC822.SIZE)")}
            want = sorted(sizes, key=lambda n: (sizes[n], n))
        check(got == want, f"SORT {crit}: {got}, want {want}")
    units = ok(raw(m, b"UID SORT (DATE) UTF-8 SUBJECT meeting"), "UID SORT")
    line = [u for u in units if u.startswith(b"* SORT")][0]
    check([int(x) for x in line.split()[2:]] == [uids[0], uids[1], uids[3]], f"UID SORT: {line!r}")
    # THREAD.
    for alg, want in (("REFERENCES", b"* THREAD (1 2 4)(3)(5)"), ("ORDEREDSUBJECT", b"* THREAD (1 (2)(4))(3)(5)")):
        units = ok(raw(m, b"THREAD " + alg.encode() + b" UTF-8 ALL"), f"THREAD {alg}")
        line = [u for u in units if u.startswith(b"* THREAD")]
        check(line and line[0].rstrip() == want, f"THREAD {alg}: {units}, want {want!r}")
    ok(raw(m, b"CLOSE"), "CLOSE")
    ok(raw(m, b"DELETE " + q(box)), "DELETE")
    m.logout()
    print(json.dumps({"search": "ok"}))


def c_store(a):
    """STORE +/-FLAGS(.SILENT) with keywords, COPY, MOVE, EXPUNGE, UID
    EXPUNGE, CLOSE, UNSELECT, EXAMINE, with UIDPLUS codes."""
    m = session(a)
    src, dst = "StoreSrc", "StoreDst"
    for b in (src, dst):
        ok(raw(m, b"CREATE " + q(b)), "CREATE")
    uids = [append(m, src, simple(f"store {i}"))[1] for i in range(6)]
    units = select(m, src)
    check(num(units, b"EXISTS") == 6, f"{units}")
    check(any(b"PERMANENTFLAGS" in u and b"\\*" in u for u in units), f"PERMANENTFLAGS \\*: {units}")
    check(any(b"UIDVALIDITY" in u for u in units) and any(b"UIDNEXT" in u for u in units), f"{units}")
    units = ok(raw(m, b"STORE 1 +FLAGS (\\Flagged $Important)"), "STORE +FLAGS")
    [u] = fetch_units(units)
    check(flags_of(u) == {"\\Flagged", "$Important"}, f"STORE +FLAGS: {u!r}")
    units = ok(raw(m, b"STORE 1:2 +FLAGS.SILENT (\\Seen Todo)"), "STORE +FLAGS.SILENT")
    check(not fetch_units(units), f".SILENT sent FETCH: {units}")
    units = ok(raw(m, b"STORE 1 -FLAGS (\\Flagged)"), "STORE -FLAGS")
    check(flags_of(fetch_units(units)[0]) == {"$Important", "\\Seen", "Todo"}, f"-FLAGS: {units}")
    units = ok(raw(m, b"STORE 2 FLAGS (\\Answered)"), "STORE FLAGS")
    check(flags_of(fetch_units(units)[0]) == {"\\Answered"}, f"FLAGS: {units}")
    units = ok(raw(m, b"UID STORE %d -FLAGS.SILENT (Todo)" % uids[0]), "UID STORE")
    check(not fetch_units(units), f"{units}")
    us = fetch(m, "1:2", "(FLAGS)")
    check(flags_of(us[0]) == {"$Important", "\\Seen"} and flags_of(us[1]) == {"\\Answered"}, f"{us}")
    units = select(m, src)
    fl = [u for u in units if u.startswith(b"* FLAGS")][0]
    check(b"$Important" in fl, f"FLAGS after keywords: {fl!r}")
    # COPY with COPYUID; flags travel.
    units, tagged = raw(m, b"COPY 1:2 " + q(dst))
    check(b" OK" in tagged[:12], f"COPY: {tagged!r}")
    cu = code(tagged, rb"COPYUID")
    check(cu and cu.split()[1] == f"{uids[0]}:{uids[1]}", f"COPYUID: {tagged!r}")
    # MOVE with COPYUID and EXPUNGE.
    units = ok(raw(m, b"MOVE 3 " + q(dst)), "MOVE")
    check(num(units, b"EXPUNGE") == 3, f"MOVE's EXPUNGE: {units}")
    check(any(b"COPYUID" in u for u in units), f"MOVE's COPYUID: {units}")
    units = ok(raw(m, b"UID MOVE %d " % uids[4] + q(dst)), "UID MOVE")
    check(num(units, b"EXPUNGE") == 4, f"UID MOVE: {units}")
    st = ok(raw(m, b"STATUS " + q(dst) + b" (MESSAGES)"), "STATUS")
    check(b"MESSAGES 4" in st[0], f"{st}")
    # Now: 1 2 4 6 (seq 1..4). EXPUNGE: sequence numbers of deleted ones.
    ok(raw(m, b"STORE 1,3 +FLAGS.SILENT (\\Deleted)"), "STORE \\Deleted")
    units = ok(raw(m, b"EXPUNGE"), "EXPUNGE")
    ex = [int(u.split()[1]) for u in units if re.match(rb"\* \d+ EXPUNGE", u)]
    check(ex in ([3, 1], [1, 2]), f"EXPUNGE responses {ex}")
    left = [int(item(u, "UID")) for u in fetch(m, "1:*", "(UID)")]
    check(left == [uids[1], uids[5]], f"after EXPUNGE: {left}")
    # UID EXPUNGE removes only the given \Deleted ones.
    ok(raw(m, b"STORE 1:2 +FLAGS.SILENT (\\Deleted)"), "STORE")
    units = ok(raw(m, b"UID EXPUNGE %d" % uids[5]), "UID EXPUNGE")
    check(num(units, b"EXPUNGE") == 2, f"UID EXPUNGE: {units}")
    # UNSELECT does not expunge; CLOSE does, silently.
    ok(raw(m, b"UNSELECT"), "UNSELECT")
    units, tagged = raw(m, b"FETCH 1 (FLAGS)")
    check(b" BAD " in tagged[:12] or b" NO " in tagged[:12], f"FETCH after UNSELECT: {tagged!r}")
    units = select(m, src)
    check(num(units, b"EXISTS") == 1, f"UNSELECT expunged: {units}")
    units = ok(raw(m, b"CLOSE"), "CLOSE")
    check(not any(b"EXPUNGE" in u for u in units), f"CLOSE sent EXPUNGE: {units}")
    st = ok(raw(m, b"STATUS " + q(src) + b" (MESSAGES)"), "STATUS")
    check(b"MESSAGES 0" in st[0], f"CLOSE did not expunge: {st}")
    # EXAMINE: read-only; no \Seen from BODY[].
    units = ok(raw(m, b"EXAMINE " + q(dst)), "EXAMINE")
    check(any(b"READ-ONLY" in u for u in units) or True, f"{units}")
    units, tagged = raw(m, b"STORE 1 +FLAGS (\\Flagged)")
    [u] = fetch(m, "1", "(FLAGS)")
    check("\\Flagged" not in flags_of(u), f"STORE under EXAMINE: {tagged!r} {u!r}")
    [u] = fetch(m, "4", "(BODY[])")
    check(b"FLAGS" not in u or "\\Seen" not in flags_of(u), f"EXAMINE set \\Seen: {u[:200]!r}")
    ok(raw(m, b"CLOSE"), "CLOSE")
    st = ok(raw(m, b"STATUS " + q(dst) + b" (MESSAGES UNSEEN)"), "STATUS")
    check(b"MESSAGES 4" in st[0], f"CLOSE after EXAMINE expunged: {st}")
    select(m, dst)
    us = fetch(m, "1:*", "(FLAGS)")
    check(flags_of(us[0]) == {"$Important", "\\Seen"} and flags_of(us[1]) == {"\\Answered", "\\Seen", "Todo"}
          or flags_of(us[1]) == {"\\Answered"}, f"copied flags: {us}")
    m.logout()
    print(json.dumps({"store": "ok"}))


def c_condstore(a):
    """CONDSTORE (MODSEQ, CHANGEDSINCE, UNCHANGEDSINCE, SEARCH MODSEQ,
    HIGHESTMODSEQ) and QRESYNC (SELECT ... QRESYNC, VANISHED)."""
    m = session(a)
    box = "Cond"
    ok(raw(m, b"CREATE " + q(box)), "CREATE")
    for i in range(4):
        append(m, box, simple(f"cond {i}"))
    units = select(m, box, b" (CONDSTORE)")
    hm = [u for u in units if b"HIGHESTMODSEQ" in u]
    check(hm, f"SELECT (CONDSTORE): {units}")
    v = int(re.search(rb"UIDVALIDITY (\d+)", b"".join(units)).group(1))
    high = int(re.search(rb"HIGHESTMODSEQ (\d+)", hm[0]).group(1))
    us = fetch(m, "1:*", "(UID MODSEQ)")
    mods = [int(item(u, "MODSEQ").strip(b"()")) for u in us]
    uids = [int(item(u, "UID")) for u in us]
    check(max(mods) <= high, f"MODSEQ {mods} above HIGHESTMODSEQ {high}")
    units = ok(raw(m, b"STORE 2 +FLAGS (\\Flagged)"), "STORE")
    [u] = fetch_units(units)
    m2 = int(item(u, "MODSEQ").strip(b"()"))
    check(m2 > high, f"STORE's MODSEQ {m2} not above {high}: {u!r}")
    us = fetch(m, "1:*", "(FLAGS) (CHANGEDSINCE %d)" % high)
    check(len(us) == 1 and us[0].startswith(b"* 2 FETCH"), f"CHANGEDSINCE: {us}")
    units = ok(raw(m, b"SEARCH MODSEQ %d" % m2), "SEARCH MODSEQ")
    line = [u for u in units if u.startswith(b"* SEARCH")][0]
    check(line.split()[2:4] == [b"2", b"(MODSEQ"], f"SEARCH MODSEQ: {line!r}")
    units, tagged = raw(m, b"STORE 2,3 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % high)
    check(b"[MODIFIED 2]" in tagged, f"UNCHANGEDSINCE: {tagged!r} {units}")
    units = ok(raw(m, b"STATUS INBOX (HIGHESTMODSEQ)"), "STATUS HIGHESTMODSEQ")
    check(b"HIGHESTMODSEQ" in units[0], f"{units}")
    ok(raw(m, b"STORE 3 +FLAGS.SILENT (\\Deleted)"), "STORE")
    ok(raw(m, b"EXPUNGE"), "EXPUNGE")
    ok(raw(m, b"UNSELECT"), "UNSELECT")
    # QRESYNC: VANISHED (EARLIER) for the expunged UID, FETCH for the changed flags.
    units = ok(raw(m, b"ENABLE QRESYNC"), "ENABLE QRESYNC")
    check(any(b"QRESYNC" in u.upper() for u in units), f"{units}")
    units = select(m, box, b" (QRESYNC (%d %d))" % (v, high))
    van = [u for u in units if u.startswith(b"* VANISHED (EARLIER)")]
    check(van and van[0].split()[-1] == str(uids[2]).encode(), f"QRESYNC VANISHED: {units}")
    fl = fetch_units(units)
    check(len(fl) >= 1 and all(b"MODSEQ" in u for u in fl) and any(b"\\Flagged" in u for u in fl),
          f"QRESYNC FETCH: {units}")
    # With QRESYNC on, an expunge is VANISHED, not EXPUNGE.
    ok(raw(m, b"STORE 1 +FLAGS.SILENT (\\Deleted)"), "STORE")
    units = ok(raw(m, b"EXPUNGE"), "EXPUNGE")
    check(any(u.startswith(b"* VANISHED %d" % uids[0]) for u in units) and not any(b" EXPUNGE" in u for u in units),
          f"EXPUNGE under QRESYNC: {units}")
    units = ok(raw(m, b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)"), "FETCH VANISHED")
    check(any(u.startswith(b"* VANISHED (EARLIER)") for u in units), f"FETCH ... VANISHED: {units}")
    m.logout()
    print(json.dumps({"highestmodseq": high}))


def c_two(a):
    """Two sessions on one INBOX: flags, expunges and appends in one are
    seen by the other; IDLE reports a message delivered by the suite
    within a second of its arrival in the Maildir."""
    m1, m2 = session(a), session(a)
    empty_inbox(m1)
    for i in range(3):
        append(m1, "INBOX", simple(f"two {i}"))
    select(m1)
    units = select(m2)
    check(num(units, b"EXISTS") == 3, f"{units}")
    ok(raw(m1, b"STORE 1 +FLAGS.SILENT (\\Flagged seen-by-two)"), "STORE")
    units = ok(raw(m2, b"NOOP"), "NOOP")
    f = fetch_units(units)
    check(f and f[0].startswith(b"* 1 FETCH") and "\\Flagged" in flags_of(f[0]) and "seen-by-two" in flags_of(f[0]),
          f"the other session's flags: {units}")
    ok(raw(m1, b"STORE 2 +FLAGS.SILENT (\\Deleted)"), "STORE")
    ok(raw(m1, b"EXPUNGE"), "EXPUNGE")
    units = ok(raw(m2, b"NOOP"), "NOOP")
    check(num(units, b"EXPUNGE") == 2, f"the other session's expunge: {units}")
    units = ok(raw(m2, b"FETCH 1:* (UID)"), "FETCH")
    check(len(fetch_units(units)) == 2, f"{units}")
    # An append by one session: EXISTS in the other.
    append(m1, "INBOX", simple("two appended"))
    units = ok(raw(m2, b"NOOP"), "NOOP")
    check(num(units, b"EXISTS") == 3, f"the other session's append: {units}")
    # IDLE: a delivery by the suite is reported within a second.
    delays = []
    exists = 3
    for round_ in range(3):
        TAGN[0] += 1
        tag = b"X%04d" % TAGN[0]
        m2.send(tag + b" IDLE\r\n")
        line = m2.readline()
        check(line.startswith(b"+"), f"IDLE: {line!r}")
        before = maildir_names(a) if a.maildir else set()
        seen = {}

        def watch():
            end = time.time() + 60
            while time.time() < end and not seen:
                new = maildir_names(a) - before
                if new:
                    seen["t"] = time.time()
                    return
                time.sleep(0.005)

        w = None
        if a.maildir:
            w = threading.Thread(target=watch)
            w.start()
        sent = time.time()
        deliver(a, simple(f"idle {round_}", body="delivered during IDLE\n"))
        m2.sock.settimeout(60)
        got = None
        while True:
            u = read_unit(m2)
            mm = re.match(rb"\* (\d+) EXISTS", u)
            if mm:
                got = time.time()
                check(int(mm.group(1)) == exists + 1, f"IDLE EXISTS {u!r}, want {exists + 1}")
                exists += 1
                break
        m2.send(b"DONE\r\n")
        units, tagged = read_until(m2, tag)
        check(b" OK" in tagged[:12], f"IDLE's end: {tagged!r}")
        if w:
            w.join()
            check("t" in seen, "the delivered file never appeared in the Maildir")
            delays.append(got - seen["t"])
        else:
            delays.append(got - sent)
    check(max(delays) < 1.0, f"IDLE reported deliveries after {delays} s")
    # The delivered message is there, with its text.
    [u] = fetch(m2, "*", "(BODY.PEEK[TEXT])")
    check(b"delivered during IDLE" in u, f"{u!r}")
    m1.logout()
    m2.logout()
    print(json.dumps({"idle_delays": delays}))


def structure(a, port):
    """{sha1 of BODY[]: normalized ENVELOPE, BODYSTRUCTURE, BODY, size} of
    every message in --box on the server at `port`."""
    import hashlib
    m = imaplib.IMAP4("127.0.0.1", port, timeout=TIMEOUT)
    login(m, a)
    ok(raw(m, b"EXAMINE " + q(a.box)), "EXAMINE")
    out = {}
    for u in fetch(m, "1:*", "(RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[])"):
        key = hashlib.sha1(item(u, "BODY[]")).hexdigest()
        [b] = fetch(m, u.split()[1].decode(), "(BODY)")
        out[key] = {k: normalize(item(x, k)).decode("latin-1") for x, k in
                    ((u, "RFC822.SIZE"), (u, "ENVELOPE"), (u, "BODYSTRUCTURE"), (b, "BODY"))}
        hdr = item(u, "BODY[]").split(b"\r\n\r\n")[0]
        subj = re.search(rb"\r\nSubject: ([^\r]*)", hdr)
        out[key]["subject"] = subj.group(1).decode("latin-1") if subj else ""
    m.logout()
    return out


def normalize(b):
    """Literals turned into quoted strings where that is possible (Dovecot
    sends long strings as literals, a server may quote them: the same)."""
    out = b""
    i = 0
    while i < len(b):
        mm = re.match(rb"\{(\d+)\}\r\n", b[i:])
        if mm:
            n = int(mm.group(1))
            text = b[i + mm.end():i + mm.end() + n]
            if not re.search(rb"[\r\n\x80-\xff]", text):
                out += b'"' + text.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
                i += mm.end() + n
                continue
        out += b[i:i + 1]
        i += 1
    return out


# Where our imapd differs from Dovecot on purpose (Dovecot's text, ours,
# why): as crates/imapd/tests/dovecot_corpus.rs lists them.
KNOWN = [
    ('("TEXT" "PLAIN" ("CHARSET" "US-ASCII")', '("text" "plain" ("charset" "us-ascii")',
     "type, subtype and parameter names are case-insensitive (RFC 2045): ours lowercases them and the charset"),
    ('("text" "" (', '("text" "plain" (', "Content-Type: text without a subtype is text/plain (RFC 2045 5.2)"),
    ('("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)("text"', '("text"',
     "mail-parser drops a body part with neither header nor body"),
    ('("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)("text"', '("text"', "the same in BODY"),
    ('"a second subject"', '"malformed shapes"',
     "two Subject fields (24-malformed.eml): ours is the first (mail-parser, and what MUAs show), Dovecot's the last"),
    ('((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))',
     '(("Unbalanced <broken@example.org>" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))',
     "a From with an unclosed quote (24-malformed.eml): ours keeps the quoted text as the display name, Dovecot drops it"),
]


def c_compare(a):
    """ENVELOPE, BODYSTRUCTURE, BODY and RFC822.SIZE of every message in
    --box: ours (--port) against Dovecot's (--other-port), same Maildir."""
    ours = structure(a, a.port)
    theirs = structure(a, a.other_port)
    check(set(ours) == set(theirs), f"different messages: {len(ours)} ours, {len(theirs)} Dovecot's")
    diffs = []
    # A body language of one tag: a string or a list of one string, both
    # RFC 3501's body-fld-lang (Dovecot always sends the list).
    one_lang = re.compile(r'\(("[^"()]*")\)')
    for key, t in theirs.items():
        o = ours[key]
        for k in ("RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "BODY"):
            want = t[k]
            for d, ou, _ in KNOWN:
                want = want.replace(d, ou)
            got = o[k]
            if k == "BODYSTRUCTURE":
                got, want = one_lang.sub(r"\1", got), one_lang.sub(r"\1", want)
            if got != want:
                diffs.append(f"{t['subject']!r} {k}:\n  ours:    {got}\n  dovecot: {want}")
    check(not diffs, "\n".join(diffs))
    print(json.dumps({"compared": len(ours)}))


def c_corpus(a):
    """Delivers every --file through the suite (SMTP or sendmail)."""
    for f in a.file:
        with open(f, "rb") as fh:
            deliver(a, fh.read())
    print(json.dumps({"delivered": len(a.file)}))


def c_state(a):
    """The state of every folder: UIDVALIDITY, UIDNEXT, each message's UID,
    flags (keywords included) and size; subscriptions."""
    m = session(a)
    every = names(ok(raw(m, b'LIST "" "*"'), "LIST"))
    subs = sorted(names(ok(raw(m, b'LSUB "" "*"'), "LSUB"), b"LSUB"))
    out = {"folders": {}, "subscribed": subs}
    for box, fl in sorted(every.items()):
        if "\\noselect" in fl or "\\nonexistent" in fl:
            continue
        units = ok(raw(m, b'EXAMINE "' + box.encode() + b'"'), f"EXAMINE {box}")
        text = b"".join(units)
        v = int(re.search(rb"UIDVALIDITY (\d+)", text).group(1))
        nx = re.search(rb"UIDNEXT (\d+)", text)
        msgs = []
        if num(units, b"EXISTS"):
            for u in fetch(m, "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])"):
                subj = item(u, "BODY[HEADER.FIELDS (SUBJECT)]").decode("latin-1").strip()
                msgs.append([int(item(u, "UID")), sorted(flags_of(u)), int(item(u, "RFC822.SIZE")), subj])
        out["folders"][box] = {"uidvalidity": v, "uidnext": int(nx.group(1)) if nx else None, "messages": msgs}
    m.logout()
    print(json.dumps(out, sort_keys=True))


def c_populate(a):
    """Folders, flags, keywords and subscriptions made through IMAP (run
    against Dovecot to make a Maildir that Dovecot served)."""
    m = session(a)
    d = sep(m)
    for box in ("Work", f"Work{d}Projects", "Privat", "Entwürfe"):
        ok(raw(m, b"CREATE " + q(box)), f"CREATE {box}")
    for box in (f"Work{d}Projects", "Privat"):
        ok(raw(m, b"SUBSCRIBE " + q(box)), "SUBSCRIBE")
    for i in range(5):
        append(m, "INBOX", simple(f"dovecot inbox {i}", body=f"body {i}\n"))
    for i in range(3):
        append(m, f"Work{d}Projects", simple(f"project {i}"))
    append(m, "Entwürfe", simple("draft"), "\\Draft")
    select(m)
    ok(raw(m, b"STORE 1 +FLAGS (\\Seen \\Answered)"), "STORE")
    ok(raw(m, b"STORE 2 +FLAGS ($Label1 Project-X)"), "STORE")
    ok(raw(m, b"STORE 3 +FLAGS (\\Flagged $Junk)"), "STORE")
    ok(raw(m, b"STORE 4 +FLAGS (\\Deleted)"), "STORE")
    ok(raw(m, b"EXPUNGE"), "EXPUNGE")
    ok(raw(m, b"MOVE 1 " + q("Privat")), "MOVE")
    select(m, f"Work{d}Projects")
    ok(raw(m, b"STORE 2 +FLAGS (Project-X \\Seen)"), "STORE")
    m.logout()
    print(json.dumps({"populated": True}))


def c_deliver(a):
    """--count messages to --user, through one SMTP session when
    --smtp-port is given."""
    msgs = [simple(f"{a.tag} {i}", body=f"message {i} of {a.count}\n",
                   date=email.utils.formatdate(1796000000 + i * 60)) for i in range(a.count)]
    if a.smtp_port and not a.sendmail:
        import smtplib
        s = smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=TIMEOUT)
        for i, msg in enumerate(msgs):
            if i and i % 100 == 0:
                s.quit()
                s = smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=TIMEOUT)
            s.sendmail("suite@example.org", [a.user], msg)
        s.quit()
    else:
        for msg in msgs:
            deliver(a, msg)
    print(json.dumps({"delivered": a.count}))


CHECKS = {
    "caps": c_caps, "mailboxes": c_mailboxes, "fetch": c_fetch, "search": c_search, "store": c_store,
    "condstore": c_condstore, "two": c_two, "compare": c_compare, "corpus": c_corpus, "state": c_state, "populate": c_populate,
    "deliver": c_deliver,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("check", choices=sorted(CHECKS))
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ssl-port", type=int, default=0)
    ap.add_argument("--mode", default="plain", choices=["plain", "stls", "ssl"])
    ap.add_argument("--auth", default="login", choices=["login", "plain", "plain-ir", "authlogin"])
    ap.add_argument("--ca")
    ap.add_argument("--user", default="alice@virt.test")
    ap.add_argument("--password", default="s3cret pass")
    ap.add_argument("--maildir")
    ap.add_argument("--sendmail")
    ap.add_argument("--config")
    ap.add_argument("--smtp-port", type=int, default=0)
    ap.add_argument("--box", default="INBOX")
    ap.add_argument("--other-port", type=int, default=0)
    ap.add_argument("--file", action="append", default=[])
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--tag", default="msg")
    a = ap.parse_args()
    try:
        CHECKS[a.check](a)
    except CheckFailed as e:
        print(f"imapcheck {a.check}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
