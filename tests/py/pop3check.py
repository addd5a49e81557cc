#!/usr/bin/env python3
"""POP3 client checks run by the Rust system tests (tests/pop3.rs).

    pop3check.py CHECK --port N [--mode plain|stls|ssl] [--ca FILE]
                 [--user U --password P] [--auth user|plain|login] ...

Each CHECK talks to a running pop3d with Python's poplib, asserts what the
protocol must look like, prints a JSON summary (the Rust side compares
messages with the mailbox files), and exits non-zero with a message on the
first failure. TLS clients trust only --ca and check the name localhost.
"""

import argparse
import base64
import json
import re
import poplib
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


def connect(args):
    if args.mode == "ssl":
        ctx = ssl.create_default_context(cafile=args.ca)
        p = poplib.POP3_SSL("localhost", args.port, timeout=TIMEOUT, context=ctx)
    else:
        p = poplib.POP3("127.0.0.1", args.port, timeout=TIMEOUT)
    if args.mode == "stls":
        caps = p.capa()
        check("STLS" in caps, f"no STLS in {caps}")
        ctx = ssl.create_default_context(cafile=args.ca)
        ctx.check_hostname = False
        p.stls(context=ctx)
    return p


def login(p, args):
    if args.auth == "user":
        p.user(args.user)
        return p.pass_(args.password)
    if args.auth == "apop":
        return p.apop(args.user, args.password)
    if args.auth == "plain":
        raw = base64.b64encode(b"\0" + args.user.encode() + b"\0" + args.password.encode()).decode()
        p._putcmd("AUTH PLAIN " + raw)
        return p._getresp()
    # LOGIN: the server asks for the name, then the password.
    p._putcmd("AUTH LOGIN")
    for value in (args.user, args.password):
        line = p._getline()[0]
        check(line.startswith(b"+ "), f"AUTH LOGIN challenge: {line!r}")
        p._putcmd(base64.b64encode(value.encode()).decode())
    return p._getresp()


def summary(p):
    count, size = p.stat()
    lst = [l.decode().split() for l in p.list()[1]]
    uidl = [l.decode().split() for l in p.uidl()[1]]
    msgs = []
    for n, sz in lst:
        resp, lines, octets = p.retr(int(n))
        data = b"".join(l + b"\r\n" for l in lines)
        # poplib un-stuffs; octets counts the stuffed text with CRLFs.
        check(resp.startswith(b"+OK"), f"RETR {n}: {resp!r}")
        check(len(data) <= int(sz) + 2, f"RETR {n}: {len(data)} bytes, LIST said {sz}")
        msgs.append(base64.b64encode(data).decode())
    return {"count": count, "size": size, "list": lst, "uidl": uidl, "messages": msgs}


def c_capa(args):
    p = connect(args)
    caps = p.capa()
    for c in ["TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "USER", "SASL", "IMPLEMENTATION"]:
        check(c in caps, f"{c} missing from CAPA {caps}")
    check("PLAIN" in caps["SASL"] and "LOGIN" in caps["SASL"], f"SASL {caps['SASL']}")
    for kv in args.expect:
        k, _, v = kv.partition("=")
        check(caps.get(k) == v.split(), f"CAPA {k}: {caps.get(k)} (want {v})")
    if args.mode == "plain":
        check("STLS" in caps, f"STLS missing: {caps}")
    else:
        check("STLS" not in caps, f"STLS offered under TLS: {caps}")
    resp = login(p, args)
    check(resp.startswith(b"+OK"), f"login: {resp!r}")
    caps2 = p.capa()
    check("USER" not in caps2 and "STLS" not in caps2, f"after login: {caps2}")
    p.quit()
    stamp = re.search(rb"<[^>]*>", p.welcome) is not None
    print(json.dumps({"capa": {k: v for k, v in caps.items()}, "apop_timestamp": stamp}))


def c_session(args):
    p = connect(args)
    resp = login(p, args)
    check(resp.startswith(b"+OK"), f"login: {resp!r}")
    out = summary(p)
    # Commands that change nothing.
    check(p.noop().startswith(b"+OK"), "NOOP")
    if out["count"] > 0:
        one = p.list(1).decode().split()
        check(one[:2] == ["+OK", "1"], f"LIST 1: {one}")
        u = p.uidl(1).decode().split()
        check(u[2] == out["uidl"][0][1], f"UIDL 1: {u}")
        top = p.top(1, 0)[1]
        check(b"" in top, f"TOP 1 0 has no blank line: {top}")
        check(b"" == top[-1], f"TOP 1 0 sends body lines: {top[-3:]}")
        try:
            p.retr(out["count"] + 1)
            raise CheckFailed("RETR past the end accepted")
        except poplib.error_proto as e:
            check("-ERR" in str(e), str(e))
        # DELE then RSET keeps the message.
        check(p.dele(1).startswith(b"+OK"), "DELE 1")
        try:
            p.retr(1)
            raise CheckFailed("RETR of a deleted message accepted")
        except poplib.error_proto:
            pass
        c2, _ = p.stat()
        check(c2 == out["count"] - 1, f"STAT after DELE: {c2}")
        check(p.rset().startswith(b"+OK"), "RSET")
        c3, _ = p.stat()
        check(c3 == out["count"], f"STAT after RSET: {c3}")
    for n in args.dele:
        check(p.dele(int(n)).startswith(b"+OK"), f"DELE {n}")
    if args.end == "quit":
        q = p.quit()
        check(q.startswith(b"+OK"), f"QUIT: {q!r}")
    elif args.end == "drop":
        p.sock.close()
    elif args.end in ("hold", "holdquit"):
        # Stay logged in until stdin closes (the Rust side acts meanwhile);
        # holdquit then sends QUIT.
        print(json.dumps(out), flush=True)
        sys.stdin.read()
        if args.end == "holdquit":
            q = p.quit()
            check(q.startswith(b"+OK"), f"QUIT: {q!r}")
        return
    print(json.dumps(out))


def c_apop(args):
    """APOP (RFC 1939) with the greeting's timestamp; a wrong secret and a
    malformed digest fail with [AUTH] / -ERR; then PIPELINING: a batch of
    commands in one write, answered in order."""
    p = connect(args)
    stamp = re.search(rb"<[^>]*>", p.welcome)
    check(stamp is not None and b"@" in stamp.group(0), f"no timestamp in {p.welcome!r}")
    resp = p.apop(args.user, args.password)
    check(resp.startswith(b"+OK"), f"APOP: {resp!r}")
    count, _ = p.stat()
    p._putcmd("STAT\r\nLIST\r\nUIDL 1\r\nNOOP")
    check(p._getresp().startswith(b"+OK " + str(count).encode()), "pipelined STAT")
    _, lines, _ = p._getlongresp()
    check(len(lines) == count, f"pipelined LIST: {lines}")
    check(p._getresp().startswith(b"+OK 1 "), "pipelined UIDL 1")
    check(p._getresp().startswith(b"+OK"), "pipelined NOOP")
    p.quit()
    p = connect(args)
    try:
        p.apop(args.user, "not the secret")
        raise CheckFailed("APOP with a wrong secret accepted")
    except poplib.error_proto as e:
        check("[AUTH]" in str(e), f"no [AUTH] code: {e}")
    p._putcmd(f"APOP {args.user} xyz")
    check(p._getline()[0].startswith(b"-ERR"), "APOP with a malformed digest")
    p.quit()
    print(json.dumps({"apop": "ok", "count": count}))


def c_badlogin(args):
    p = connect(args)
    try:
        login(p, args)
        raise CheckFailed("wrong password accepted")
    except poplib.error_proto as e:
        check("[AUTH]" in str(e), f"no [AUTH] code: {e}")
    print("refused")


def c_inuse(args):
    a = None
    if not args.held:
        a = connect(args)
        check(login(a, args).startswith(b"+OK"), "first login")
    b = connect(args)
    try:
        login(b, args)
        raise CheckFailed("second session accepted")
    except poplib.error_proto as e:
        check("[IN-USE]" in str(e), f"no [IN-USE]: {e}")
    if a:
        a.quit()
    print("in-use")


def c_limit(args):
    s = socket.create_connection(("127.0.0.1", args.port), timeout=TIMEOUT)
    f = s.makefile("rb")
    check(f.readline().startswith(b"+OK"), "greeting")
    replies = []
    for i in range(int(args.count)):
        try:
            s.sendall(b"NOOP\r\n")
            line = f.readline()
        except OSError:
            line = b""
        replies.append(line.decode(errors="replace").strip())
        if not line:
            break
    print(json.dumps(replies))


def c_bigretr(args):
    """RETR message --count streaming (no whole copy in memory), print the
    octets received and LIST's size, then wait for stdin to close before QUIT."""
    p = connect(args)
    check(login(p, args).startswith(b"+OK"), "login")
    n = int(args.count)
    size = int(p.list(n).split()[2])
    p._putcmd(f"RETR {n}")
    first = p.file.readline()
    check(first.startswith(b"+OK"), f"RETR: {first!r}")
    octets = 0
    while True:
        line = p.file.readline()
        check(line, "EOF inside RETR")
        if line == b".\r\n":
            break
        if line.startswith(b".."):
            line = line[1:]
        octets += len(line)
    print(json.dumps({"octets": octets, "size": size}), flush=True)
    sys.stdin.read()
    p.quit()


def c_toomany(args):
    """The greeting must be a refusal naming too many connections."""
    try:
        p = poplib.POP3("127.0.0.1", args.port, timeout=TIMEOUT)
        raise CheckFailed(f"connection accepted: {p.getwelcome()!r}")
    except poplib.error_proto as e:
        check("Too many connections" in str(e), f"refusal: {e}")
    print("too-many")


def c_idle(args):
    """Logged in, silent for --count seconds: the server closes."""
    p = connect(args)
    check(login(p, args).startswith(b"+OK"), "login")
    time.sleep(float(args.count))
    try:
        r = p.noop()
        raise CheckFailed(f"NOOP answered after the idle time: {r!r}")
    except (poplib.error_proto, OSError) as e:
        print(f"closed: {e}")


def c_timing(args):
    """Times one session's STAT, LIST, UIDL and RETR of every message, and
    --count logins (login + QUIT) in a row; prints JSON, times in ms."""
    out = {}
    t = time.monotonic()
    for _ in range(int(args.count)):
        p = connect(args)
        login(p, args)
        p.quit()
    out["logins_per_s"] = round(int(args.count) / (time.monotonic() - t), 1)
    p = connect(args)
    login(p, args)
    for name, call in [("stat", p.stat), ("list", p.list), ("uidl", p.uidl)]:
        t = time.monotonic()
        r = call()
        out[name] = round((time.monotonic() - t) * 1000, 1)
    n = r and len(r[1])
    t = time.monotonic()
    total = 0
    for i in range(1, n + 1):
        p._putcmd(f"RETR {i}")
        p.file.readline()
        while True:
            line = p.file.readline()
            if line == b".\r\n" or not line:
                break
            total += len(line)
    out["retr_all"] = round((time.monotonic() - t) * 1000, 1)
    out["messages"] = n
    out["bytes"] = total
    p.quit()
    print(json.dumps(out))


def c_send(args):
    s = smtplib.SMTP("127.0.0.1", args.smtp_port, local_hostname="client.test", timeout=TIMEOUT)
    for i in range(int(args.count)):
        body = f"line one\r\n.starts with a dot\r\n..two dots\r\nmessage {i}\r\n"
        msg = (f"From: <sender@client.test>\r\nTo: <{args.user}>\r\nSubject: pop {args.tag} {i}\r\n"
               f"Message-ID: <{args.tag}.{i}@client.test>\r\n\r\n{body}")
        s.sendmail("sender@client.test", [args.user], msg.encode())
    s.quit()
    print("sent")


CHECKS = {"capa": c_capa, "apop": c_apop, "session": c_session, "badlogin": c_badlogin, "inuse": c_inuse,
          "limit": c_limit, "send": c_send, "bigretr": c_bigretr,
          "toomany": c_toomany, "idle": c_idle,
          "timing": c_timing}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("check", choices=sorted(CHECKS))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--smtp-port", type=int)
    p.add_argument("--mode", choices=["plain", "stls", "ssl"], default="plain")
    p.add_argument("--ca")
    p.add_argument("--user", default="alice@virt.test")
    p.add_argument("--password", default="s3cret pass")
    p.add_argument("--auth", choices=["user", "plain", "login", "apop"], default="user")
    p.add_argument("--dele", action="append", default=[])
    p.add_argument("--end", choices=["quit", "drop", "hold", "holdquit"], default="quit")
    p.add_argument("--expect", action="append", default=[])
    p.add_argument("--count", default="1")
    p.add_argument("--tag", default="t")
    p.add_argument("--held", action="store_true", help="inuse: another session holds the mailbox already")
    args = p.parse_args()
    try:
        CHECKS[args.check](args)
    except (CheckFailed, poplib.error_proto, OSError) as e:
        print(f"FAILED: {args.check}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
