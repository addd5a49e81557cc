#!/usr/bin/env python3
"""POP3 driver for `scripts/bench pop3` (not a test).

    pop3.py mkmaildir --dir D -n N [--seed S]
    pop3.py timing --label L --port P --user U --password PW --logins K --out FILE
    pop3.py idle --label L --port P --user-prefix PRE [--user-suffix SUF] --password PW -C N
                 --root-pid PID --out FILE
    pop3.py table --title TEXT FILE...

`mkmaildir` writes a Maildir of N messages (sizes 1 to 12 KB, a fixed
pseudo-random mix, some lines starting with a dot) named as Dovecot's and
our local delivery name them (`,S=<size>,W=<CRLF size>` in cur/).

`timing` does K logins in a row (USER/PASS, QUIT: logins/s), then one
session timing STAT, LIST, UIDL and RETR of every message (one command at
a time; the client reads in 64 KiB chunks and only looks for the end
marker, so it stays cheap beside the server). Nothing is deleted.

`idle` sums the proportional set size (Pss, /proc/PID/smaps_rollup: shared
pages counted once) of every process below ROOT-PID, opens N sessions
logged in as PRE1 .. PREN (each its own mailbox), sums again, and reports
(after - before) / N as the memory per session, then closes them.

`table` prints the median of each figure per side and the ratio.
"""

import argparse
import os
import random
import socket
import statistics
import sys
import time

TIMEOUT = 120


def cmd_mkmaildir(a):
    rnd = random.Random(a.seed)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(a.dir, sub), exist_ok=True)
    t = 1700000000
    words = ["alpha", "beta", "gamma", "delta", "mail", "server", "queue", "postfix", "dovecot", "."]
    for i in range(a.n):
        size = rnd.randint(1000, 12000)
        head = (f"Return-Path: <sender{i % 97}@example.org>\n"
                f"Delivered-To: bench@bench.test\n"
                f"Received: from client.example.org (client.example.org [192.0.2.{i % 250 + 1}])\n"
                f"\tby bench.test (Postfix) with ESMTP id {i:010X}\n"
                f"\tfor <bench@bench.test>; Mon, 7 Dec 2026 06:00:00 +0000\n"
                f"From: Sender {i % 97} <sender{i % 97}@example.org>\n"
                f"To: bench@bench.test\n"
                f"Subject: message {i}\n"
                f"Message-ID: <{i}.bench@example.org>\n"
                f"Date: Mon, 7 Dec 2026 06:00:00 +0000\n\n")
        body = []
        length = len(head)
        while length < size:
            n = rnd.randint(3, 14)
            line = " ".join(rnd.choice(words) for _ in range(n))
            body.append(line)
            length += len(line) + 1
        data = (head + "\n".join(body) + "\n").encode()
        crlf = len(data) + data.count(b"\n")
        name = f"{t + i}.M{i}P4242.bench.test,S={len(data)},W={crlf}:2,S"
        with open(os.path.join(a.dir, "cur", name), "wb") as f:
            f.write(data)
    print(f"{a.n} messages in {a.dir}")


class Pop:
    """A minimal POP3 client: single-line and multi-line answers."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""
        self.greeting = self.line()
        if not self.greeting.startswith(b"+OK"):
            raise RuntimeError(f"greeting: {self.greeting!r}")

    def fill(self):
        data = self.s.recv(65536)
        if not data:
            raise RuntimeError("connection closed")
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def cmd(self, text):
        self.s.sendall(text.encode() + b"\r\n")
        r = self.line()
        if not r.startswith(b"+OK"):
            raise RuntimeError(f"{text.split()[0]}: {r!r}")
        return r

    def multi(self, text):
        """A multi-line answer; returns its size in bytes."""
        self.cmd(text)
        # The end marker: a line holding only "." (byte-stuffing keeps it
        # out of the body); the answer may be empty.
        pos = 0
        while True:
            if self.buf.startswith(b".\r\n"):
                end = 0
                break
            end = self.buf.find(b"\r\n.\r\n", pos)
            if end >= 0:
                end += 2
                break
            pos = max(0, len(self.buf) - 4)
            self.fill()
        size = end
        self.buf = self.buf[end + 3:]
        return size

    def login(self, user, password):
        self.cmd(f"USER {user}")
        self.cmd(f"PASS {password}")

    def quit(self):
        try:
            self.s.sendall(b"QUIT\r\n")
            self.line()
        finally:
            self.s.close()


def cmd_timing(a):
    t = time.monotonic()
    for _ in range(a.logins):
        p = Pop(a.port)
        p.login(a.user, a.password)
        p.quit()
    logins_s = a.logins / (time.monotonic() - t)
    p = Pop(a.port)
    p.login(a.user, a.password)
    res = {"kind": "timing", "label": a.label, "logins_per_s": f"{logins_s:.1f}"}
    t = time.monotonic()
    count = int(p.cmd("STAT").split()[1])
    res["stat_ms"] = f"{(time.monotonic() - t) * 1000:.1f}"
    for name in ("LIST", "UIDL"):
        t = time.monotonic()
        p.multi(name)
        res[name.lower() + "_ms"] = f"{(time.monotonic() - t) * 1000:.1f}"
    t = time.monotonic()
    total = 0
    for i in range(1, count + 1):
        total += p.multi(f"RETR {i}")
    res["retr_all_ms"] = f"{(time.monotonic() - t) * 1000:.1f}"
    res["messages"] = str(count)
    res["retr_bytes"] = str(total)
    p.quit()
    with open("/proc/loadavg") as f:
        res["loadavg"] = f.read().split()[0]
    write(a.out, res)


def tree(root):
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read().decode("latin-1")
        except OSError:
            continue
        rest = data[data.rfind(")") + 2:].split()
        kids.setdefault(int(rest[1]), []).append(int(name))
    out, stack = [], [root]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(kids.get(p, []))
    return out


def pss(root):
    total, n = 0, 0
    for p in tree(root):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        n += 1
                        break
        except OSError:
            pass
    return total, n


def cmd_idle(a):
    time.sleep(1)
    before, procs_before = pss(a.root_pid)
    sessions = []
    for i in range(1, a.C + 1):
        p = Pop(a.port)
        p.login(f"{a.user_prefix}{i}{a.user_suffix}", a.password)
        p.cmd("STAT")
        sessions.append(p)
    time.sleep(2)
    after, procs_after = pss(a.root_pid)
    for p in sessions:
        p.quit()
    write(a.out, {
        "kind": "idle",
        "label": a.label,
        "sessions": a.C,
        "pss_before_kib": before,
        "pss_after_kib": after,
        "pss_per_session_kib": f"{(after - before) / a.C:.0f}",
        "procs_per_session": f"{(procs_after - procs_before) / a.C:.1f}",
    })


def write(path, res):
    with open(path, "w") as f:
        for k, v in res.items():
            f.write(f"{k}={v}\n")


def read_result(path):
    r = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            r[k] = v
    return r


FIGURES = [
    ("logins_per_s", "logins/s", True),
    ("stat_ms", "STAT ms", False),
    ("list_ms", "LIST ms", False),
    ("uidl_ms", "UIDL ms", False),
    ("retr_all_ms", "RETR all ms", False),
    ("pss_per_session_kib", "PSS/session KiB", False),
    ("procs_per_session", "procs/session", False),
]


def cmd_table(a):
    runs = [read_result(p) for p in a.files]
    labels = []
    for r in runs:
        if r["label"] not in labels:
            labels.append(r["label"])
    med = {}
    for label in labels:
        for key, _, _ in FIGURES:
            vals = [float(r[key]) for r in runs if r["label"] == label and key in r]
            if vals:
                med[(label, key)] = (statistics.median(vals), len(vals))
    w = max(len(x) for x in labels + ["figure"]) + 2
    print(a.title)
    print(f"{'':<18}" + "".join(f"{lab:>{w + 6}}" for lab in labels)
          + ("      ratio (ours/theirs)" if len(labels) == 2 else ""))
    for key, name, higher_better in FIGURES:
        cells = [med.get((lab, key)) for lab in labels]
        if all(c is None for c in cells):
            continue
        line = f"{name:<18}"
        for c in cells:
            line += f"{(f'{c[0]:.1f} (n={c[1]})' if c else '-'):>{w + 6}}"
        if len(labels) == 2 and all(cells) and cells[0][0]:
            ratio = cells[1][0] / cells[0][0]
            better = (ratio >= 1) if higher_better else (ratio <= 1)
            line += f"      {ratio:.2f}x {'(better)' if better else '(worse)'}"
        print(line)
    loads = [r["loadavg"] for r in runs if "loadavg" in r]
    if loads:
        print(f"load average (1 min) at the timed runs: {', '.join(loads)}")
    for n in a.note:
        print(n)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mkmaildir")
    m.add_argument("--dir", required=True)
    m.add_argument("-n", type=int, default=10000)
    m.add_argument("--seed", type=int, default=9)
    t = sub.add_parser("timing")
    t.add_argument("--label", required=True)
    t.add_argument("--port", type=int, required=True)
    t.add_argument("--user", required=True)
    t.add_argument("--password", required=True)
    t.add_argument("--logins", type=int, default=200)
    t.add_argument("--out", required=True)
    i = sub.add_parser("idle")
    i.add_argument("--label", required=True)
    i.add_argument("--port", type=int, required=True)
    i.add_argument("--user-prefix", required=True)
    i.add_argument("--user-suffix", default="")
    i.add_argument("--password", required=True)
    i.add_argument("-C", type=int, default=50)
    i.add_argument("--root-pid", type=int, required=True)
    i.add_argument("--out", required=True)
    tb = sub.add_parser("table")
    tb.add_argument("--title", required=True)
    tb.add_argument("--note", action="append", default=[])
    tb.add_argument("files", nargs="+")
    a = ap.parse_args()
    try:
        {"mkmaildir": cmd_mkmaildir, "timing": cmd_timing, "idle": cmd_idle,
         "table": cmd_table}[a.cmd](a)
    except (RuntimeError, OSError) as e:
        sys.exit(f"bench: {getattr(a, 'label', a.cmd)}: {e}")


if __name__ == "__main__":
    main()
