#!/usr/bin/env python3
"""scripts/bench imap: our imapd against Debian's Dovecot (dovecot-imapd)
on the same machine and the same Maildir of N messages (default 10,000).

    scripts/bench imap [-n N] [-r R] [-P CLIENTS] [-T SECS] [-I IDLE]
                       [--only dovecot|ours] [--ours-bin DIR] [--keep]

Each side serves the one Maildir (owned by nobody) on 127.0.0.1: ours as
an instance of our master with imapd, auth (passwd-file) and anvil; Dovecot
through tests/py/imapdovecot.py (a private dovecot.conf, passwd-file). For
each round, alternating which side goes first, each side is measured by a
fresh run of this script's client:

- cold: the side's index and cache files removed (imapd.index/imapd.cache;
  dovecot.index*, dovecot.list.index*; the UID lists stay) and the page
  cache dropped (/proc/sys/vm/drop_caches), then the first SELECT and the
  first FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE);
- logins/s: one client, connect + LOGIN + LOGOUT in a loop for 5 s;
  (the client is a raw socket that reads up to the tagged answer without
  parsing, so that the times are the server's rather than a client
  library's)
- warm SELECT: a new session's first SELECT INBOX (the login not
  timed), the median of 9 sessions; "again in one session": SELECT INBOX
  repeated in one session (the mailbox already selected), median of 7;
- warm FETCH 1:* (FLAGS), FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE):
  the median of 7 repetitions in one session;
- every body: FETCH 1:* BODY.PEEK[] (all octets read), median of 3;
- parallel: P client processes (default 50) each looping login, SELECT,
  FETCH of 10 messages (FLAGS ENVELOPE), STORE +FLAGS \\Seen, LOGOUT for
  T seconds (default 20): cycles/s, all clients together (a failed cycle
  is counted as an error and shown, not as a cycle);
- idle memory: I sessions (default 1,000) logged in with INBOX selected,
  then the PSS (smaps_rollup) of the side's whole process tree (ours: with
  every process of our binaries, as a session's mail process may outlive
  the service process that started it), less the same before they
  connected.

The table shows each side's median over the rounds and ours/Dovecot. Runs
as root; everything is in a temporary directory removed at the end.
"""

import argparse
import json
import multiprocessing
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
USER, PASSWORD = "bench@bench.test", "bench pass"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, secs=20):
    end = time.time() + secs
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


# --- the Maildir ----------------------------------------------------------------

def make_message(i, r):
    """About 3 KB; one in four a multipart with an attachment, one in ten
    a reply with References."""
    subj = f"bench message {i} " + " ".join(r.choice(["alpha", "beta", "gamma", "delta", "report", "lunch"])
                                             for _ in range(3))
    head = (f"From: Sender {i % 97} <sender{i % 97}@example.org>\n"
            f"To: bench@bench.test, Other <other{i % 13}@example.net>\n"
            f"Subject: {subj}\nDate: Mon, {1 + i % 28} Dec 2025 {i % 24:02}:{i % 60:02}:00 +0000\n"
            f"Message-ID: <m{i}@bench.test>\n")
    if i % 10 == 3:
        head += f"In-Reply-To: <m{i - 1}@bench.test>\nReferences: <m{i - 2}@bench.test> <m{i - 1}@bench.test>\n"
    text = "".join(f"line {j} of message {i}: the quick brown fox jumps over the lazy dog\n" for j in range(30))
    if i % 4 == 0:
        att = "".join("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\n"
                      for _ in range(12))
        return (head + "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\n"
                "Content-Type: text/plain; charset=utf-8\n\n" + text + "--b\n"
                "Content-Type: application/octet-stream; name=\"a.bin\"\nContent-Transfer-Encoding: base64\n"
                "Content-Disposition: attachment; filename=\"a.bin\"\n\n" + att + "--b--\n").encode()
    return (head + "Content-Type: text/plain; charset=us-ascii\n\n" + text).encode()


def make_maildir(path, n):
    r = random.Random(10)
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    t0 = 1760000000
    for i in range(n):
        m = make_message(i, r)
        flags = "S" if i % 3 else ""
        name = f"{t0 + i}.M{i}P1.bench,S={len(m)}:2,{flags}"
        with open(os.path.join(path, "cur", name), "wb") as f:
            f.write(m)
        os.utime(os.path.join(path, "cur", name), (t0 + i, t0 + i))
    subprocess.run(["chown", "-R", "65534:65534", path], check=True)


def drop_indexes(path):
    for root, _, files in os.walk(path):
        for f in files:
            if f.startswith(("imapd.index", "imapd.cache", "dovecot.index", "dovecot.list.index")):
                os.unlink(os.path.join(root, f))
    subprocess.run(["sync"])
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


# --- the servers ------------------------------------------------------------------

class Ours:
    name = "ours"

    def __init__(self, tmp, bindir, maildir_base):
        self.dir = os.path.join(tmp, "ours")
        self.cfg = os.path.join(self.dir, "etc")
        self.bindir = bindir
        os.makedirs(os.path.join(self.dir, "spool", "pid"), exist_ok=True)
        os.makedirs(self.cfg, exist_ok=True)
        self.port = free_port()
        with open(os.path.join(self.dir, "vmailbox"), "w") as f:
            f.write(f"{USER} bench/\n")
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            f.write(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        with open(os.path.join(self.cfg, "main.cf"), "w") as f:
            f.write(f"queue_directory = {self.dir}/spool\ndaemon_directory = {bindir}\n"
                    f"command_directory = {bindir}\nmaillog_file = {self.dir}/maillog\n"
                    f"inet_interfaces = loopback-only\nmyhostname = bench.test\n"
                    f"virtual_mailbox_domains = bench.test\nvirtual_mailbox_base = {maildir_base}\n"
                    f"virtual_mailbox_maps = texthash:{self.dir}/vmailbox\n"
                    f"virtual_uid_maps = static:65534\nvirtual_gid_maps = static:65534\n"
                    f"virtual_minimum_uid = 1\nauth_passdb = passwd-file:{self.dir}/passwd\n"
                    f"imapd_login_failure_delay = 0\nimapd_disable_plaintext_auth = no\n"
                    f"imapd_client_connection_count_limit = 0\ndefault_process_limit = 2000\n")
        with open(os.path.join(self.cfg, "master.cf"), "w") as f:
            f.write(f"127.0.0.1:{self.port} inet n n n - 2000 imapd\n"
                    "auth unix - n n - 1 auth\nanvil unix - - n - 1 anvil\n")

    def start(self):
        p = subprocess.run([os.path.join(self.bindir, "postfix"), "-c", self.cfg, "start"], capture_output=True)
        if p.returncode or not wait_port(self.port):
            sys.exit(f"bench imap: our instance did not start: {p.stderr!r}\n{self.log()}")

    def stop(self):
        subprocess.run([os.path.join(self.bindir, "postfix"), "-c", self.cfg, "stop"], capture_output=True)

    def log(self):
        try:
            return open(os.path.join(self.dir, "maillog"), errors="replace").read()[-3000:]
        except OSError:
            return ""

    def root_pid(self):
        with open(os.path.join(self.dir, "spool", "pid", "master.pid")) as f:
            return int(f.read().strip())

    def processes(self):
        """master's tree and every process of our binaries: a session's mail
        process outlives the service process that started it (it is not
        waited for) and is then init's child."""
        pids = set(descendants(self.root_pid()))
        for e in os.listdir("/proc"):
            if e.isdigit():
                try:
                    if os.path.dirname(os.readlink(f"/proc/{e}/exe")) == self.bindir:
                        pids.add(int(e))
                except OSError:
                    pass
        return sorted(pids)


class Dovecot:
    name = "dovecot"

    def __init__(self, tmp, maildir):
        self.dir = os.path.join(tmp, "dovecot")
        self.maildir = maildir
        self.port = free_port()
        self.child = None

    def start(self):
        self.child = subprocess.Popen(
            [sys.executable, os.path.join(TOP, "tests", "py", "imapdovecot.py"), "--dir", self.dir, "--maildir",
             self.maildir, "--port", str(self.port), "--user", USER, "--password", PASSWORD,
             "--process-limit", "2000"], stdin=subprocess.DEVNULL)
        if not wait_port(self.port):
            sys.exit("bench imap: Dovecot did not start")

    def stop(self):
        if self.child:
            self.child.send_signal(signal.SIGTERM)
            try:
                self.child.wait(10)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()

    def root_pid(self):
        return self.child.pid

    def processes(self):
        return descendants(self.root_pid())


def descendants(pid):
    kids = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                stat = open(f"/proc/{e}/stat").read()
                ppid = int(stat[stat.rindex(")") + 2:].split()[1])
                kids.setdefault(ppid, []).append(int(e))
            except (OSError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def pss_kb(pids):
    total = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


# --- the client ---------------------------------------------------------------------
# A raw client: it sends a command and reads until its tagged answer without
# parsing the data, so that the figures are the server's, not imaplib's.


class Raw:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=300)
        self.n = 0
        self.buf = b""
        self.until(b"\r\n")
        # Every answer is searched for "\n" + tag: the buffer always
        # starts at a line's beginning, marked with a "\n".
        self.buf = b"\n" + self.buf
        ok, text = self.cmd(f'LOGIN "{USER}" "{PASSWORD}"')
        if not ok:
            raise RuntimeError(f"LOGIN: {text[-200:]!r}")

    def until(self, pat):
        # Only the new bytes are searched (a FETCH of every body is tens of
        # MB: searching the whole buffer at each read made the client, not
        # the server, the figure); the buffer grows in a bytearray.
        buf = bytearray(self.buf)
        at = 0
        while (i := buf.find(pat, at)) < 0:
            at = max(0, len(buf) - len(pat) + 1)
            data = self.s.recv(1 << 20)
            if not data:
                raise RuntimeError("connection closed")
            buf += data
        self.buf = bytes(buf)
        i += len(pat)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def cmd(self, text):
        """(tagged OK?, everything up to and including the tagged line)."""
        self.n += 1
        tag = b"Zq%d" % self.n
        self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        # The tagged line starts a line; literals are not scanned for it
        # (the tags are unusual enough not to occur in message text).
        out = self.until(b"\n" + tag + b" ")
        out += self.until(b"\r\n")
        self.buf = b"\n" + self.buf
        return out.split(b"\n" + tag + b" ")[-1].startswith(b"OK"), out

    def close(self):
        try:
            self.cmd("LOGOUT")
        except Exception:
            pass
        self.s.close()


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def must(ok_text, what):
    ok, text = ok_text
    if not ok:
        raise RuntimeError(f"{what}: {text[-300:]!r}")
    return text


def parallel_worker(args):
    port, secs, n, seed = args
    r = random.Random(seed)
    end = time.time() + secs
    cycles, errors, first = 0, 0, ""
    while time.time() < end:
        try:
            m = Raw(port)
            must(m.cmd("SELECT INBOX"), "SELECT")
            a = r.randint(1, n - 10)
            must(m.cmd(f"FETCH {a}:{a + 9} (FLAGS ENVELOPE)"), "FETCH")
            must(m.cmd(f"STORE {a} +FLAGS (\\Seen)"), "STORE")
            m.close()
            cycles += 1
        except Exception as e:
            errors += 1
            first = first or str(e)[:300]
            time.sleep(0.05)
    return cycles, errors, first


def measure(side, n, clients, secs, idle, can_drop):
    out = {}
    dropped = drop_indexes(side_maildir) and can_drop
    m = Raw(side.port)
    out["cold_select_ms"] = timed(lambda: must(m.cmd("SELECT INBOX"), "SELECT")) * 1000
    out["cold_fetch_fenvbs_ms"] = timed(
        lambda: must(m.cmd("FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)"), "FETCH")) * 1000
    out["cold_cache_dropped"] = dropped
    m.close()
    count, end = 0, time.time() + 5
    t = time.perf_counter()
    while time.time() < end:
        Raw(side.port).close()
        count += 1
    out["logins_per_s"] = count / (time.perf_counter() - t)
    # A new session's first SELECT (the login outside the timing), as
    # each of the parallel clients makes it: the median of 9 sessions.
    firsts = []
    for _ in range(9):
        s = Raw(side.port)
        firsts.append(timed(lambda: must(s.cmd("SELECT INBOX"), "SELECT")))
        s.close()
    out["select_ms"] = statistics.median(firsts) * 1000
    m = Raw(side.port)
    must(m.cmd("SELECT INBOX"), "SELECT")
    out["reselect_ms"] = statistics.median(timed(lambda: must(m.cmd("SELECT INBOX"), "SELECT"))
                                           for _ in range(7)) * 1000
    out["fetch_flags_ms"] = statistics.median(timed(lambda: must(m.cmd("FETCH 1:* (FLAGS)"), "FETCH"))
                                              for _ in range(7)) * 1000
    out["fetch_fenvbs_ms"] = statistics.median(
        timed(lambda: must(m.cmd("FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)"), "FETCH")) for _ in range(7)) * 1000
    sizes = []
    out["fetch_bodies_ms"] = statistics.median(
        timed(lambda: sizes.append(len(must(m.cmd("FETCH 1:* BODY.PEEK[]"), "FETCH")))) for _ in range(3)) * 1000
    out["bodies_mb"] = sizes[-1] / 1e6
    m.close()
    with multiprocessing.Pool(clients) as pool:
        t = time.perf_counter()
        res = pool.map(parallel_worker, [(side.port, secs, n, i) for i in range(clients)])
        out["parallel_cycles_per_s"] = sum(c for c, _, _ in res) / (time.perf_counter() - t)
        out["parallel_errors"] = sum(e for _, e, _ in res)
        firsts = [f for _, _, f in res if f]
        if firsts:
            out["parallel_first_error"] = firsts[0]
    if idle:
        time.sleep(1)
        before = pss_kb(side.processes())
        held = []
        for _ in range(idle):
            s = Raw(side.port)
            must(s.cmd("SELECT INBOX"), "SELECT")
            held.append(s)
        time.sleep(2)
        pids = side.processes()
        after = pss_kb(pids)
        out["idle_pss_mb"] = (after - before) / 1024
        out["idle_processes"] = len(pids)
        for s in held:
            s.close()
    return out


ROWS = [("logins_per_s", "logins/s", True), ("select_ms", "SELECT ms (warm)", False),
        ("reselect_ms", "SELECT ms (warm, again in one session)", False),
        ("fetch_flags_ms", "FETCH 1:* FLAGS ms (warm)", False),
        ("fetch_fenvbs_ms", "FETCH 1:* FLAGS ENVELOPE BODYSTRUCTURE ms (warm)", False),
        ("cold_select_ms", "SELECT ms (cold)", False),
        ("cold_fetch_fenvbs_ms", "FETCH 1:* FLAGS ENVELOPE BODYSTRUCTURE ms (cold)", False),
        ("fetch_bodies_ms", "FETCH 1:* BODY.PEEK[] ms (every body)", False),
        ("parallel_cycles_per_s", "parallel cycles/s", True), ("idle_pss_mb", "PSS MB of the idle sessions", False)]


def table(results, n, clients, idle):
    print(f"\nimap: {n} messages, {clients} parallel clients, {idle} idle sessions; "
          f"median of {max(len(v) for v in results.values())} run(s) each")
    print(f"{'':52} {'dovecot':>10} {'ours':>10} {'ours/dovecot':>13}")
    for key, label, higher in ROWS:
        med = {}
        for side in ("dovecot", "ours"):
            vals = [r[key] for r in results.get(side, []) if key in r]
            med[side] = statistics.median(vals) if vals else None
        ratio = ""
        if med["dovecot"] and med["ours"]:
            ratio = f"{med['ours'] / med['dovecot']:.2f}"
        fmt = lambda v: "-" if v is None else (f"{v:.1f}" if v < 1000 else f"{v:.0f}")
        print(f"{label:52} {fmt(med['dovecot']):>10} {fmt(med['ours']):>10} {ratio:>13}"
              f"  ({'higher' if higher else 'lower'} is better)")
    for side, runs in results.items():
        print(f"{side} runs: {json.dumps(runs)}")


side_maildir = ""


def main():
    global side_maildir
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("-P", type=int, default=50)
    ap.add_argument("-T", type=float, default=20)
    ap.add_argument("-I", type=int, default=1000)
    ap.add_argument("--only", choices=["dovecot", "ours"])
    ap.add_argument("--ours-bin", default=os.path.join(TOP, "target", "release"))
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench imap: must run as root (Dovecot and our instance run as root)")
    if not os.path.exists("/usr/lib/dovecot/imap"):
        sys.exit("bench imap: Debian's dovecot-imapd is missing (scripts/install-deps installs it)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * a.I + 1024)), hard))
    tmp = tempfile.mkdtemp(prefix="bench-imap-")
    os.chmod(tmp, 0o755)
    sides = []
    try:
        base = os.path.join(tmp, "vmail")
        side_maildir = os.path.join(base, "bench")
        print(f"bench imap: writing {a.n} messages into {side_maildir}", flush=True)
        make_maildir(side_maildir, a.n)
        subprocess.run(["chown", "65534:65534", base], check=True)
        ours = Ours(tmp, os.path.abspath(a.ours_bin), base)
        dove = Dovecot(tmp, side_maildir)
        sides = [s for s in (dove, ours) if a.only in (None, s.name)]
        results = {s.name: [] for s in sides}
        for rnd in range(a.r):
            order = sides if rnd % 2 == 0 else sides[::-1]
            for s in order:
                s.start()
                print(f"bench imap: round {rnd + 1}, {s.name}", flush=True)
                res = measure(s, a.n, a.P, a.T, a.I, True)
                print(f"  {json.dumps(res)}", flush=True)
                results[s.name].append(res)
                s.stop()
                time.sleep(1)
        table(results, a.n, a.P, a.I)
    finally:
        for s in sides:
            s.stop()
        if a.keep:
            print(f"bench imap: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
