#!/usr/bin/env python3
"""Capture Dovecot's answers that the imapd tests compare against.

Needs Debian's dovecot-imapd (/usr/lib/dovecot/imap) and root (the imap
process runs as nobody over a throwaway Maildir in /tmp). Writes, beside
each tests/corpus/*.eml, its .dovecot (RFC822.SIZE ENVELOPE BODYSTRUCTURE
BODY) and .sections (one FETCH per section item), and in tests/threads
expected.dovecot (THREAD, SORT) and search.dovecot (SEARCH).

    python3 crates/imapd/tests/capture-dovecot.py
"""
import glob, os, re, shutil, subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = "/tmp/imapd-capture"
ITEMS = ["BODY.PEEK[]", "BODY.PEEK[HEADER]", "BODY.PEEK[TEXT]", "BODY.PEEK[1]", "BODY.PEEK[1.MIME]", "BODY.PEEK[2]",
         "BODY.PEEK[2.MIME]", "BODY.PEEK[2.HEADER]", "BODY.PEEK[2.TEXT]", "BODY.PEEK[2.1]", "BODY.PEEK[3]", "BODY.PEEK[3.1]",
         "BODY.PEEK[3.1.MIME]", "BODY.PEEK[1.1]", "BODY.PEEK[HEADER.FIELDS (From Subject)]",
         "BODY.PEEK[HEADER.FIELDS.NOT (From Subject)]", "BODY.PEEK[]<10.20>", "BODY.PEEK[1]<2.3>", "BINARY.PEEK[1]",
         "BINARY.PEEK[2]", "BINARY.SIZE[1]", "BINARY.PEEK[1.1]", "RFC822.HEADER", "RFC822.TEXT", "BODY.PEEK[4]",
         "BODY.PEEK[3.2]"]
THREADS = [b"THREAD REFERENCES UTF-8 ALL", b"THREAD ORDEREDSUBJECT UTF-8 ALL", b"SORT (SUBJECT) UTF-8 ALL",
           b"SORT (FROM) UTF-8 ALL", b"SORT (REVERSE DATE) UTF-8 ALL", b"SORT (TO SIZE) UTF-8 ALL"]
SEARCHES = [b'SEARCH FROM bob', b'SEARCH SUBJECT meeting', b'SEARCH SUBJECT "re: meeting"', b'SEARCH HEADER References a1',
            b'SEARCH HEADER Message-ID ""', b'SEARCH SENTBEFORE 2-Jan-2024', b'SEARCH SENTSINCE 2-Jan-2024',
            b'SEARCH SENTON 1-Jan-2024', b'SEARCH TEXT oscar', b'SEARCH BODY body', b'SEARCH BODY meeting',
            b'SEARCH OR FROM alice TO list', b'SEARCH NOT SUBJECT re', b'SEARCH LARGER 150',
            b'SEARCH SMALLER 150 NOT LARGER 100', b'SEARCH 2:4,10:* UNSEEN', b'SEARCH FROM "Oscar"', b'SEARCH TO LIST@X',
            b'SEARCH CC nobody', b'SEARCH SUBJECT ""']


def session(files, commands):
    """Run one dovecot imap session over a Maildir holding `files`."""
    shutil.rmtree(WORK, ignore_errors=True)
    for d in ("cur", "new", "tmp"):
        os.makedirs(f"{WORK}/Maildir/{d}")
    for i, f in enumerate(files):
        shutil.copy(f, f"{WORK}/Maildir/cur/{i + 1}.x.host:2,S")
    with open(f"{WORK}/dovecot.conf", "w") as c:
        c.write(f"mail_location = maildir:{WORK}/Maildir\nlog_path = /dev/stderr\nssl = no\nprotocols = imap\n")
    subprocess.run(["chown", "-R", "nobody:nogroup", WORK], check=True)
    env = dict(os.environ, USER="nobody", HOME=WORK)
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/lib/dovecot/imap",
                           "-c", f"{WORK}/dovecot.conf"], input=commands, capture_output=True, env=env, check=True).stdout


def units(out):
    """Response lines with their literals."""
    pos = 0
    while pos < len(out):
        start = pos
        while True:
            nl = out.index(b"\r\n", pos)
            m = re.search(rb"~?\{(\d+)\}$", out[pos:nl])
            pos = nl + 2 + (int(m.group(1)) if m else 0)
            if not m:
                break
        yield out[start:pos]


def corpus():
    for f in sorted(glob.glob(f"{HERE}/corpus/*.eml")):
        out = session([f], b"a SELECT INBOX\r\nf FETCH 1 (RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY)\r\nz LOGOUT\r\n")
        start = out.index(b"* 1 FETCH (") + len(b"* 1 FETCH (")
        open(f[:-4] + ".dovecot", "wb").write(out[start:out.index(b"\r\nf OK") - 1])
        cmds = b"a SELECT INBOX\r\n" + b"".join(b"f%d FETCH 1 (%s)\r\n" % (i, it.encode()) for i, it in enumerate(ITEMS))
        us = list(units(session([f], cmds + b"z LOGOUT\r\n")))
        fetches = [u for u in us if u.startswith(b"* 1 FETCH")]
        tagged = {int(m.group(1)): m.group(2) for u in us for m in [re.match(rb"f(\d+) (\w+)", u)] if m}
        oks = [i for i in range(len(ITEMS)) if tagged.get(i) == b"OK"]
        assert len(fetches) == len(oks), f
        with open(f[:-4] + ".sections", "wb") as o:
            for i, u in zip(oks, fetches):
                o.write(ITEMS[i].encode() + b"\t" + str(len(u)).encode() + b"\n" + u)


def threads():
    files = sorted(glob.glob(f"{HERE}/threads/*.eml"))
    # APPEND in order so that sequence numbers follow the file names.
    cmds = b"".join(b"p APPEND INBOX {%d+}\r\n" % len(open(f, "rb").read()) + open(f, "rb").read() + b"\r\n" for f in files)
    for name, queries, prefix in (("expected.dovecot", THREADS, (b"* THREAD", b"* SORT")), ("search.dovecot", SEARCHES, (b"* SEARCH",))):
        q = cmds + b"a SELECT INBOX\r\n" + b"".join(b"q%d %s\r\n" % (i, s) for i, s in enumerate(queries)) + b"z LOGOUT\r\n"
        res = [l.decode() for l in session([], q).split(b"\r\n") if l.startswith(prefix)]
        assert len(res) == len(queries)
        open(f"{HERE}/threads/{name}", "w").write("".join(f"{s.decode()}\t{r}\n" for s, r in zip(queries, res)))


if __name__ == "__main__":
    corpus()
    threads()
