#!/usr/bin/env python3
"""Load driver and report printer for scripts/bench (not a test; never timed in CI).

    drive.py local --maildir DIR --pidfile FILE -n N -c C --stall SECS
                   --out FILE --label NAME -- SENDMAIL [OPTIONS]
    drive.py table --title TEXT FILE...

`local` submits N small (~2 KB) messages through the given sendmail command
line, C at a time, and waits until N files are in the Maildir (new/ + cur/);
with --sent-log MAILLOG instead (the outbound section) until the maillog has
N more smtp `status=sent` lines (read incrementally).
It measures:

  wall      seconds from the first submission until the N-th file appears;
  daemons   CPU (user+sys) of the mail system's daemons: master and every
            process below it, read from /proc/PID/stat (utime+stime of the
            live processes plus cutime+cstime, which holds the time of the
            children they have already reaped), snapshot before and after;
  submit    CPU of the submitters (sendmail and the postdrop it runs), from
            getrusage(RUSAGE_CHILDREN) of this process;
  machine   busy CPU of the whole machine from /proc/stat (includes this
            driver's own polling and anything else running);
  driver    this driver's own CPU (RUSAGE_SELF), so that the table can show
            "other" = machine - daemons - submit - driver.

It writes key=value lines to --out. Bounded: each submission has a 60 s
limit, and the wait fails when no new message arrives for --stall seconds
(or after an overall cap of max(600, N/2) seconds).

`table` prints the result files side by side.
"""

import argparse
import os
import resource
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
SUBMIT_TIMEOUT = 60
POLL_SECONDS = 0.02

WORDS = (
    "the quarterly report is attached below please review the figures before "
    "friday meeting we discussed budget server migration schedule mailbox "
    "quota backup window network maintenance customer feedback release notes "
    "invoice delivery status thanks regards team project update agenda"
).split()


def message(i, sender, rcpt):
    """A plain, realistic message of about 2 KB (headers + wrapped text)."""
    lines = []
    k = i * 7919
    for n in range(22):
        words = [WORDS[(k + n * 13 + w * 7) % len(WORDS)] for w in range(11)]
        lines.append(" ".join(words).capitalize() + ".")
    body = "\n".join(lines)
    return (
        f"From: Bench Sender <{sender}>\n"
        f"To: Bench User <{rcpt}>\n"
        f"Subject: benchmark message {i}\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\n"
        f"Message-ID: <bench.{os.getpid()}.{i}@bench.test>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        f"Hello,\n\n{body}\n\n-- \nbench {i}\n"
    ).encode("ascii")


def tree_procs(root_pid):
    """{pid: (comm, own ticks, reaped children's ticks)} of root_pid and
    all its descendants: for a CPU breakdown by daemon."""
    children, info = {}, {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read().decode("latin-1")
            rest = data[data.rfind(")") + 2 :].split()
            pid, ppid = int(name), int(rest[1])
            comm = data[data.find("(") + 1 : data.rfind(")")]
            own = int(rest[11]) + int(rest[12])
            reaped = int(rest[13]) + int(rest[14])
        except (OSError, IndexError, ValueError):
            continue
        info[pid] = (comm, own, reaped)
        children.setdefault(ppid, []).append(pid)
    out, stack = {}, [root_pid]
    while stack and len(out) < 100000:
        p = stack.pop()
        if p in out or p not in info:
            continue
        out[p] = info[p]
        stack.extend(children.get(p, []))
    return out


def cpu_by_daemon(before, after):
    """Ticks between two tree_procs() snapshots by process name; what
    processes that ended meanwhile used is counted under `ended` (their
    parent reaped it: re-executed daemons)."""
    by = {}
    for pid, (comm, own, reaped) in after.items():
        b = before.get(pid)
        same = b is not None and b[0] == comm
        by[comm] = by.get(comm, 0) + own - (b[1] if same else 0)
        r = reaped - (b[2] if b is not None else 0)
        if r > 0:
            by["ended"] = by.get("ended", 0) + r
    return by


def tree_ticks(root_pid):
    """CPU ticks of root_pid and all its descendants (own + reaped children)."""
    children = {}
    ticks = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read().decode("latin-1")
        except OSError:
            continue
        rest = data[data.rfind(")") + 2 :].split()
        # rest[0] is field 3 (state): ppid is field 4, utime..cstime 14..17.
        try:
            pid, ppid = int(name), int(rest[1])
            ticks[pid] = sum(int(x) for x in rest[11:15])
        except (IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(pid)
    total, count, stack, seen = 0, 0, [root_pid], set()
    while stack and count < 100000:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        count += 1
        total += ticks.get(p, 0)
        stack.extend(children.get(p, []))
    return total


def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)


def count_maildir(maildir):
    n = 0
    for sub in ("new", "cur"):
        try:
            with os.scandir(os.path.join(maildir, sub)) as it:
                n += sum(1 for _ in it)
        except FileNotFoundError:
            pass
    return n


class MaildirWatch:
    """Counts the files in a Maildir's new/ and cur/ as they arrive, from
    the inotify events (IN_CREATE, IN_MOVED_TO, and their opposites) read
    at each poll. Listing the two directories 50 times a second, as this
    driver did, cost it about half a millisecond of CPU a delivered
    message once they held thousands of files: CPU that both suites then
    lacked on a two-core machine. After an event queue overflow (or where
    a directory cannot be watched) it counts by listing again."""

    IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
    IN_Q_OVERFLOW = 0x4000

    def __init__(self, maildir):
        import ctypes

        self.maildir = maildir
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        mask = self.IN_CREATE | self.IN_MOVED_TO | self.IN_DELETE | self.IN_MOVED_FROM
        self.exact = self.fd >= 0
        for sub in ("new", "cur"):
            path = os.path.join(maildir, sub).encode()
            if self.exact and libc.inotify_add_watch(self.fd, path, mask) < 0:
                self.exact = False
        self.drain()
        self.count = count_maildir(maildir)

    def drain(self):
        """Reads the pending events; returns the change in file count, or
        None after an overflow."""
        change = 0
        while self.fd >= 0:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            at = 0
            while at + 16 <= len(data):
                mask = int.from_bytes(data[at + 4 : at + 8], "little")
                size = int.from_bytes(data[at + 12 : at + 16], "little")
                at += 16 + size
                if mask & self.IN_Q_OVERFLOW:
                    change = None
                elif change is not None and mask & (self.IN_CREATE | self.IN_MOVED_TO):
                    change += 1
                elif change is not None and mask & (self.IN_DELETE | self.IN_MOVED_FROM):
                    change -= 1
        return change

    def __call__(self):
        change = self.drain() if self.exact else None
        if change is None:
            self.count = count_maildir(self.maildir)
        else:
            self.count += change
        return self.count


class SentLog:
    """Counts smtp `status=sent` lines of a growing maillog, reading only
    what was added since the last call."""

    def __init__(self, path):
        self.path, self.offset, self.count, self.rest = path, 0, 0, b""

    def __call__(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.count
        self.offset += len(data)
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        self.count += sum(1 for l in lines if b"/smtp[" in l and b" status=sent " in l)
        return self.count


def delivered(a):
    """Messages delivered so far: Maildir files, or sent lines in the log."""
    if a.sent_log:
        return a.sent_counter()
    if a.maildir_watch is not None:
        return a.maildir_watch()
    return count_maildir(a.maildir)


def recipients(a):
    """The envelope recipients of every message: --rcpt, or with --rcpts K
    above 1, K different ones named as smtp-source names them (1<rcpt> ..
    K<rcpt>), which the bench's alias_maps send to the one Maildir."""
    if a.rcpts <= 1:
        return [a.rcpt]
    return [f"{k}{a.rcpt}" for k in range(1, a.rcpts + 1)]


def read_pid(pidfile):
    with open(pidfile) as f:
        return int(f.read().split()[0])


class Submitters:
    """Keeps up to C submissions running, from one thread and as cheaply as
    Python can: each message is written to a file beforehand (in /dev/shm
    when there is one) that becomes the submitter's stdin, posix_spawn
    starts it (stdout to /dev/null, stderr to a file read only on
    failure), and one epoll over pidfds learns of the exits. Twenty threads each running
    subprocess.run, each making its message, cost this driver about 0.9 ms
    of CPU a message: CPU that both suites' figures lacked on a two-core
    machine (docs/BENCH.md, "The bench driver's own CPU")."""

    def __init__(self, c):
        import atexit
        import select
        import shutil
        import tempfile

        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.dir = tempfile.mkdtemp(prefix="bench-drive.", dir=base)
        atexit.register(shutil.rmtree, self.dir, True)
        self.epoll = select.epoll()
        self.running = {}  # pidfd -> (pid, slot, started, message file)
        self.env = dict(os.environ)  # os.environ is converted slowly at each spawn
        self.free = list(range(c))
        self.failures = []

    def prepare(self, messages):
        """Writes the messages to files before the measured run, so that
        making them costs the run nothing (22 lines of generated text are
        0.4 ms of Python each)."""
        for i, data in enumerate(messages):
            with open(f"{self.dir}/msg.{i}", "wb") as f:
                f.write(data)

    def start(self, argv, i):
        """Starts argv with prepared message i on stdin, in a free slot
        (there must be one)."""
        slot = self.free.pop()
        msg, err = f"{self.dir}/msg.{i}", f"{self.dir}/err.{slot}"
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, msg, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        ]
        try:
            pid = os.posix_spawnp(argv[0], argv, self.env, file_actions=actions)
        except OSError as e:
            self.failures.append(f"{argv[0]}: {e}")
            self.free.append(slot)
            return
        fd = os.pidfd_open(pid)
        self.running[fd] = (pid, slot, time.monotonic(), msg)
        self.epoll.register(fd)

    def reap(self, timeout):
        """Waits up to timeout for exits and collects them (a non-zero exit
        is a failure, with the start of its stderr); kills a submission
        older than SUBMIT_TIMEOUT."""
        for fd, _ in self.epoll.poll(timeout):
            pid, slot, _, msg = self.running.pop(fd)
            self.epoll.unregister(fd)
            os.close(fd)
            os.unlink(msg)
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            if code != 0:
                with open(f"{self.dir}/err.{slot}", "rb") as f:
                    text = f.read(4000).decode("utf-8", "replace").strip()[:400]
                self.failures.append(f"exit {code}: {text}")
            self.free.append(slot)
        now = time.monotonic()
        for fd, (pid, slot, started, msg) in list(self.running.items()):
            if now - started > SUBMIT_TIMEOUT:
                self.failures.append(f"a submission took more than {SUBMIT_TIMEOUT} s")
                os.kill(pid, 9)
                # Reaped when it has gone; not reported again meanwhile.
                self.running[fd] = (pid, slot, float("inf"), msg)


def warm_up(a):
    """Delivers a few messages first so that every daemon is running and
    the binaries are in the page cache; then empties the Maildir again."""
    for i in range(a.warmup):
        p = subprocess.run(
            a.sendmail + recipients(a),
            input=message(1000000 + i, a.sender, a.rcpt),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=SUBMIT_TIMEOUT,
        )
        if p.returncode != 0:
            err = p.stderr.decode("utf-8", "replace").strip()[:400]
            sys.exit(f"bench: {a.label}: warm-up submission failed: exit {p.returncode}: {err}")
    t0 = time.monotonic()
    while delivered(a) < a.warmup * a.rcpts:
        if time.monotonic() - t0 > a.stall:
            sys.exit(
                f"bench: {a.label}: warm-up: {delivered(a)}/{a.warmup} "
                f"delivered after {a.stall:.0f} s (see the maillog)"
            )
        time.sleep(POLL_SECONDS)
    time.sleep(0.5)
    if not a.sent_log:
        clear_maildir(a.maildir)


def clear_maildir(maildir):
    """Moves the warm-up messages beside the Maildir (not removed: freeing
    inodes makes the next allocations in their group slower on an ext4
    without a journal; the bench removes its directory at the end)."""
    aside = maildir.rstrip("/") + ".warm-up"
    os.makedirs(aside, exist_ok=True)
    for sub in ("new", "cur"):
        d = os.path.join(maildir, sub)
        if os.path.isdir(d):
            for name in os.listdir(d):
                os.rename(os.path.join(d, name), os.path.join(aside, f"{sub}.{name}"))


def cmd_local(a):
    master = read_pid(a.pidfile)
    a.sent_counter = SentLog(a.sent_log) if a.sent_log else None
    a.maildir_watch = None
    if not a.sent_log and count_maildir(a.maildir):
        sys.exit(f"bench: {a.maildir} is not empty ({count_maildir(a.maildir)} files)")
    if a.warmup > 0:
        warm_up(a)
    if not a.sent_log:
        a.maildir_watch = MaildirWatch(a.maildir)
    # Deliveries before the measured run (the warm-up's) do not count.
    base = delivered(a)

    subs = Submitters(a.c)
    subs.prepare(message(i, a.sender, a.rcpt) for i in range(a.n))
    argv = a.sendmail + recipients(a)

    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    d0, m0, p0 = tree_ticks(master), machine_ticks(), tree_procs(master)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    s0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    started = 0

    cap = max(600.0, a.n / 2.0)
    last_n, last_change, last_print = 0, t0, t0
    submit_done = None
    while True:
        while subs.free and started < a.n and not subs.failures:
            subs.start(argv, started)
            started += 1
        subs.reap(POLL_SECONDS if subs.running else 0)
        now = time.monotonic()
        n = delivered(a) - base
        if submit_done is None and not subs.running:
            submit_done = now
        if subs.failures and not subs.running:
            sys.exit(f"bench: {a.label}: {len(subs.failures)} submission(s) failed; first: {subs.failures[0]}")
        if n >= a.n * a.rcpts:
            break
        if n != last_n:
            last_n, last_change = n, now
        elif not os.path.exists(f"/proc/{master}"):
            sys.exit(f"bench: {a.label}: master (pid {master}) is gone after {n}/{a.n} (see the maillog)")
        if now - last_change > a.stall:
            sys.exit(
                f"bench: {a.label}: delivery stalled: {n}/{a.n} messages "
                f"delivered and none new for {a.stall:.0f} s (see the maillog)"
            )
        if now - t0 > cap:
            sys.exit(f"bench: {a.label}: gave up after {cap:.0f} s with {n}/{a.n} delivered")
        if now - last_print >= 5:
            print(f"  {a.label}: {n}/{a.n} delivered after {now - t0:.0f} s", file=sys.stderr)
            last_print = now
        if not subs.running:
            time.sleep(POLL_SECONDS)
    t1 = time.monotonic()
    d1, m1 = tree_ticks(master), machine_ticks()
    by = cpu_by_daemon(p0, tree_procs(master))
    while subs.running:
        subs.reap(1.0)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    submit_cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    s1 = resource.getrusage(resource.RUSAGE_SELF)
    driver_cpu = (s1.ru_utime + s1.ru_stime) - (s0.ru_utime + s0.ru_stime)
    # Extra deliveries arriving shortly afterwards would be duplicates.
    time.sleep(0.5)
    extra = delivered(a) - base - a.n * a.rcpts

    ms = 1000.0 / CLK_TCK
    res = {
        "label": a.label,
        "n": a.n,
        "c": a.c,
        "wall_s": f"{t1 - t0:.3f}",
        "submit_s": f"{(submit_done or t1) - t0:.3f}",
        "daemons_cpu_ms": f"{(d1 - d0) * ms:.0f}",
        "submit_cpu_ms": f"{submit_cpu * 1000:.0f}",
        "machine_cpu_ms": f"{(m1 - m0) * ms:.0f}",
        "driver_cpu_ms": f"{driver_cpu * 1000:.0f}",
        "extra": extra,
        # ms per message by process name (`ended`: processes that exited).
        "by_daemon": " ".join(
            f"{k}={v * ms / a.n:.3f}" for k, v in sorted(by.items(), key=lambda kv: -kv[1]) if v > 0
        ),
        "load": load,
    }
    with open(a.out, "w") as f:
        for k, v in res.items():
            f.write(f"{k}={v}\n")
    print(f"bench: {a.label}: CPU ms/msg by daemon: {res['by_daemon']}", file=sys.stderr)
    if extra > 0:
        print(f"bench: {a.label}: warning: {extra} more files than messages (duplicates?)", file=sys.stderr)


def read_result(path):
    r = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            r[k] = v
    return r


def cmd_table(a):
    """One line per side; with several rounds, the median run of that side
    (by msgs/s) and the range of msgs/s over the rounds."""
    sides = {}
    for path in a.files:
        r = read_result(path)
        n = int(r["n"])
        wall = float(r["wall_s"])
        d = float(r["daemons_cpu_ms"]) / n
        s = float(r["submit_cpu_ms"]) / n
        m = float(r["machine_cpu_ms"]) / n
        o = m - d - s - float(r.get("driver_cpu_ms", 0)) / n
        run = (n / wall, d + s, d, s, o, wall, r.get("load", "?"))
        sides.setdefault(r["label"], []).append(run)
    rows = []
    for label, runs in sides.items():
        runs.sort()
        rows.append((label, runs[(len(runs) - 1) // 2], runs))
    many = any(len(runs) > 1 for _, _, runs in rows)
    w = max([len(a.title)] + [len(r[0]) + 2 for r in rows])
    head = f"{a.title:<{w}}  {'msgs/s':>7}  {'CPU ms/msg':>10}   {'daemons':>7} {'submit':>7} {'other':>7}  {'wall s':>7}"
    print(head + ("  runs (msgs/s)" if many else ""))
    for label, (rate, cpu, d, s, o, wall, _), runs in rows:
        line = f"  {label:<{w - 2}}  {rate:>7.0f}  {cpu:>10.2f}   {d:>7.2f} {s:>7.2f} {o:>7.2f}  {wall:>7.2f}"
        if many:
            line += f"  {len(runs)} ({runs[0][0]:.0f}-{runs[-1][0]:.0f})"
        print(line)
    for note in a.note:
        print(f"  {note}")
    if len(rows) == 2:
        (l0, m0, _), (l1, m1, _) = rows
        print(f"{l1} / {l0}: throughput {m1[0] / m0[0]:.2f}x, CPU per message {m1[1] / m0[1]:.2f}x")
    busy = [label for label, m, _ in rows if m[4] > 0.25 * m[1]]
    if busy:
        print(
            f"warning: other programs were busy during the run of {', '.join(busy)} "
            "(column other): msgs/s is unreliable; CPU ms/msg less so"
        )
    loads = " ".join(run[6] for _, _, runs in rows for run in runs)
    print(f"{os.cpu_count()} CPUs; load average (1 min) before each run: {loads}")
    print(
        "CPU ms/msg = daemons (master and its children) + submit (sendmail, postdrop);\n"
        "other = the rest of the machine's busy time (/proc/stat) during the run, less the\n"
        "driver's own: kernel threads (journal commits of the fsyncs) and other programs."
    )
    if many:
        print("Each line is the median run of that side by msgs/s.")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    lo = sub.add_parser("local")
    lo.add_argument("--maildir")
    lo.add_argument("--sent-log", help="count smtp status=sent lines of this maillog instead")
    lo.add_argument("--pidfile", required=True)
    lo.add_argument("--sender", default="bench@bench.test")
    lo.add_argument("--rcpt", default="benchuser@bench.test")
    lo.add_argument("--rcpts", type=int, default=1, help="recipients per message (files per message in the Maildir)")
    lo.add_argument("-n", type=int, default=2000)
    lo.add_argument("-c", type=int, default=20)
    lo.add_argument("--stall", type=float, default=120)
    lo.add_argument("--warmup", type=int, default=20)
    lo.add_argument("--out", required=True)
    lo.add_argument("--label", required=True)
    lo.add_argument("sendmail", nargs=argparse.REMAINDER, help="-- sendmail command and options")
    ta = sub.add_parser("table")
    ta.add_argument("--title", required=True)
    ta.add_argument("--note", action="append", default=[])
    ta.add_argument("files", nargs="+")
    a = ap.parse_args()
    try:
        if a.cmd == "local":
            a.sendmail = [x for x in a.sendmail[:1] if x != "--"] + a.sendmail[1:]
            if not a.sendmail:
                ap.error("local: no sendmail command after --")
            if not a.maildir and not a.sent_log:
                ap.error("local: --maildir or --sent-log is needed")
            cmd_local(a)
        else:
            cmd_table(a)
    except KeyboardInterrupt:
        os._exit(130)


if __name__ == "__main__":
    main()
