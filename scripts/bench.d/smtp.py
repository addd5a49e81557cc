#!/usr/bin/env python3
"""SMTP load and memory driver for `scripts/bench smtp` (not a test).

    smtp.py load --label L --port P --pidfile F --maildir D -n N -s S
                 [--size BYTES] [--rcpts K] [--stall SECS] [--warmup K] --out FILE
    smtp.py idle --label L --port P --pidfile F -C COUNT --out FILE
    smtp.py table --title TEXT FILE...

`load` runs Postfix's smtp-source (N messages over S parallel sessions, one
message per connection, BYTES of body each, K recipients each: with K > 1
smtp-source names them 1<rcpt> .. K<rcpt>, which the instance's alias_maps
send to one Maildir) against 127.0.0.1:P and polls the Maildir until
N x K files are there:

  accepted msgs/s    N / smtp-source's wall time (every 250 received);
  delivered msgs/s   N / time until the (N x K)-th file is in the Maildir;
  CPU ms/msg         daemons (master and every process below it, as in
                     drive.py) per message, and smtp-source's own CPU;
  PSS MiB            the largest sum, sampled four times a second during the load,
                     of the proportional set size of master and every
                     process below it (all of the instance's processes).

`idle` opens COUNT TCP connections to 127.0.0.1:P, waits until each one has
its 220 greeting (so the server really holds it), then sums VmRSS (and the
proportional set size, Pss, from /proc/PID/smaps_rollup, which counts
shared pages once) of the `smtpd` processes below master, and closes them.
Each connection's greeting latency is timed from its connect() to its 220:
p50, p99, max, how many came later than 2 s and how many never came (no
greeting nor refusal for --stall seconds; the memory is measured anyway).
"""

import argparse
import os
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drive import (  # noqa: E402
    CLK_TCK,
    MaildirWatch,
    clear_maildir,
    count_maildir,
    cpu_by_daemon,
    machine_ticks,
    read_pid,
    tree_procs,
    tree_ticks,
)

SMTP_SOURCE = "/usr/sbin/smtp-source"


def smtp_source(a, n, sessions):
    cmd = [SMTP_SOURCE, "-s", str(sessions), "-m", str(n), "-l", str(a.size),
           "-r", str(a.rcpts), "-f", a.sender, "-t", a.rcpt, f"127.0.0.1:{a.port}"]
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=max(600, n))
    if p.returncode != 0:
        sys.exit(f"bench: {a.label}: smtp-source failed (exit {p.returncode}): "
                 f"{p.stderr.decode('utf-8', 'replace').strip()[:400]}")


def tree_pss_kib(master):
    """Summed Pss of master and every process below it."""
    return sum(kib(f"/proc/{p}/smaps_rollup", "Pss") for p in tree_procs(master))


def wait_maildir(a, n, t0, watch=None):
    last_n, last_change, last_print = -1, time.monotonic(), time.monotonic()
    while True:
        have = watch() if watch is not None else count_maildir(a.maildir)
        now = time.monotonic()
        if have >= n:
            return now
        if have != last_n:
            last_n, last_change = have, now
        elif now - last_change > a.stall:
            sys.exit(f"bench: {a.label}: delivery stalled at {have}/{n} (see the maillog)")
        if now - last_print >= 5:
            print(f"  {a.label}: {have}/{n} delivered after {now - t0:.0f} s", file=sys.stderr)
            last_print = now
        time.sleep(0.02)


def cmd_load(a):
    master = read_pid(a.pidfile)
    if a.warmup:
        smtp_source(a, a.warmup, 1)
        wait_maildir(a, a.warmup * a.rcpts, time.monotonic())
        time.sleep(0.5)
        clear_maildir(a.maildir)
    watch = MaildirWatch(a.maildir)
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    d0, m0 = tree_ticks(master), machine_ticks()
    p0 = tree_procs(master)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    pss, stop = [0], threading.Event()
    sampler = threading.Thread(target=sample_pss, args=(pss, master, stop), daemon=True)
    sampler.start()
    smtp_source(a, a.n, a.s)
    t_acc = time.monotonic()
    t_del = wait_maildir(a, a.n * a.rcpts, t0, watch)
    stop.set()
    sampler.join()
    d1, m1 = tree_ticks(master), machine_ticks()
    by = cpu_by_daemon(p0, tree_procs(master))
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    time.sleep(0.5)
    extra = count_maildir(a.maildir) - a.n * a.rcpts
    ms = 1000.0 / CLK_TCK
    res = {
        "kind": "load",
        "label": a.label,
        "n": a.n,
        "s": a.s,
        "rcpts": a.rcpts,
        "size": a.size,
        "pss_kib": pss[0],
        "accept_s": f"{t_acc - t0:.3f}",
        "deliver_s": f"{t_del - t0:.3f}",
        "daemons_cpu_ms": f"{(d1 - d0) * ms:.0f}",
        "client_cpu_ms": f"{((r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)) * 1000:.0f}",
        "machine_cpu_ms": f"{(m1 - m0) * ms:.0f}",
        "extra": extra,
        # ms per message by process name (`ended`: processes that exited).
        "by_daemon": " ".join(
            f"{k}={v * 1000.0 / CLK_TCK / a.n:.3f}" for k, v in sorted(by.items(), key=lambda kv: -kv[1]) if v > 0
        ),
        "load": load,
    }
    write(a.out, res)
    print(f"bench: {a.label}: CPU ms/msg by daemon: {res['by_daemon']}", file=sys.stderr)
    if extra > 0:
        print(f"bench: {a.label}: warning: {extra} more files than messages (duplicates?)", file=sys.stderr)


def sample_pss(pss, master, stop):
    """While the load runs: the largest summed PSS, four times a second."""
    while True:
        pss[0] = max(pss[0], tree_pss_kib(master))
        if stop.wait(0.25):
            return


def write(path, res):
    with open(path, "w") as f:
        for k, v in res.items():
            f.write(f"{k}={v}\n")


def smtpd_pids(master):
    kids, comm = {}, {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read().decode("latin-1")
        except OSError:
            continue
        comm[int(name)] = data[data.find("(") + 1 : data.rfind(")")]
        rest = data[data.rfind(")") + 2 :].split()
        kids.setdefault(int(rest[1]), []).append(int(name))
    out, stack = [], [master]
    while stack:
        p = stack.pop()
        stack.extend(kids.get(p, []))
        if comm.get(p) == "smtpd":
            out.append(p)
    return out


def kib(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmd_idle(a):
    master = read_pid(a.pidfile)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.C + 100
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
        except (ValueError, OSError) as e:
            sys.exit(f"bench: {a.label}: cannot raise the open files limit to {want}: {e} (ulimit -n)")
    base_rss = sum(kib(f"/proc/{p}/status", "VmRSS") for p in smtpd_pids(master))
    sel = selectors.DefaultSelector()
    socks, lat, failed = [], [], [0]
    t0 = time.monotonic()
    for i in range(a.C):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", a.port))
        # the time of the connect, for this connection's greeting latency
        sel.register(s, selectors.EVENT_READ, time.monotonic())
        socks.append(s)
        # Read greetings as they come, so the kernel's queues stay short.
        for key, _ in sel.select(0):
            take(sel, key, lat, failed)
    last_print = last_change = time.monotonic()
    gave_up = ""
    while len(lat) + failed[0] < a.C:
        if time.monotonic() - t0 > a.timeout or time.monotonic() - last_change > a.stall:
            waiting = [k.fileobj for k in sel.get_map().values()]
            unconnected = sum(1 for w in waiting if not connected(w))
            gave_up = (f"{a.label}: {len(waiting)} of {a.C} never greeted "
                       f"(gave up after {time.monotonic() - t0:.0f} s): "
                       f"{unconnected} not even connected (SYN unanswered), "
                       f"{len(waiting) - unconnected} connected without a greeting")
            print(f"bench: {gave_up}", file=sys.stderr)
            break
        for key, _ in sel.select(1):
            take(sel, key, lat, failed)
            last_change = time.monotonic()
        if time.monotonic() - last_print >= 5:
            print(f"  {a.label}: {len(lat)}/{a.C} connections greeted", file=sys.stderr)
            last_print = time.monotonic()
    t1 = time.monotonic()
    never = len(sel.get_map())
    if failed[0]:
        print(f"bench: {a.label}: {failed[0]} of {a.C} connections were refused or closed", file=sys.stderr)
    time.sleep(1)
    pids = smtpd_pids(master)
    rss = sum(kib(f"/proc/{p}/status", "VmRSS") for p in pids)
    pss = sum(kib(f"/proc/{p}/smaps_rollup", "Pss") for p in pids)
    still = sum(1 for s in socks if alive(s))
    for s in socks:
        s.close()
    lat.sort()

    def q(f):
        return lat[min(len(lat) - 1, int(f * len(lat)))] if lat else 0.0
    write(a.out, {
        "kind": "idle",
        "label": a.label,
        "conns": a.C,
        "open_at_measure": still,
        "procs": len(pids),
        "rss_kib": rss,
        "pss_kib": pss,
        "rss_before_kib": base_rss,
        "setup_s": f"{t1 - t0:.1f}",
        "greeted": len(lat),
        "failed": failed[0],
        "never": never,
        "late_2s": sum(1 for x in lat if x > 2.0),
        "greet_p50_ms": f"{q(0.50) * 1000:.0f}",
        "greet_p99_ms": f"{q(0.99) * 1000:.0f}",
        "greet_max_ms": f"{(lat[-1] if lat else 0.0) * 1000:.0f}",
    })
    if never or failed[0]:
        sys.exit(1)


def take(sel, key, lat, failed):
    """Reads a greeting: its latency (from the connect) goes to `lat`, a
    refusal or anything but 220 counts in `failed[0]`."""
    s = key.fileobj
    try:
        data = s.recv(4096)
    except BlockingIOError:
        return
    except OSError:
        data = b""
    sel.unregister(s)
    if data.startswith(b"220"):
        lat.append(time.monotonic() - key.data)
    else:
        failed[0] += 1


def connected(s):
    try:
        s.getpeername()
        return True
    except OSError:
        return False


def alive(s):
    try:
        return s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def read_result(path):
    r = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            r[k] = v
    return r


def median_range(values, fmt):
    v = sorted(values)
    mid = v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
    return f"{mid:{fmt}} ({v[0]:{fmt}}-{v[-1]:{fmt}})" if len(v) > 1 else f"{mid:{fmt}}", mid


def load_table(title, loads):
    """Every run, then each side's medians with their ranges, and the
    ratio of the medians (the last side over the first)."""
    w = max([len(title)] + [len(r["label"]) + 2 for r in loads])
    print(f"{title:<{w}}  {'accepted/s':>10}  {'delivered/s':>11}  {'daemons ms/msg':>14}  "
          f"{'client ms/msg':>13}  {'PSS MiB':>8}")
    by_label = {}
    for r in loads:
        n = int(r["n"])
        acc, dl = n / float(r["accept_s"]), n / float(r["deliver_s"])
        d, c = float(r["daemons_cpu_ms"]) / n, float(r["client_cpu_ms"]) / n
        pss = int(r.get("pss_kib", 0)) / 1024
        by_label.setdefault(r["label"], []).append((acc, dl, d, pss))
        print(f"  {r['label']:<{w - 2}}  {acc:>10.0f}  {dl:>11.0f}  {d:>14.2f}  {c:>13.2f}  {pss:>8.1f}")
        if int(r.get("extra", 0)) > 0:
            print(f"    warning: {r['extra']} more files than expected (duplicates?)")
    print("medians (range):")
    medians = []
    for label, rows in by_label.items():
        cols = list(zip(*rows))
        texts, mids = zip(*(median_range(col, f) for col, f in zip(cols, (".0f", ".0f", ".2f", ".1f"))))
        medians.append((label, mids))
        print(f"  {label:<{w - 2}}  accepted/s {texts[0]}, delivered/s {texts[1]}, "
              f"daemons ms/msg {texts[2]}, PSS MiB {texts[3]}")
    if len(medians) == 2:
        (l0, m0), (l1, m1) = medians
        ratio = [f"{m1[i] / m0[i]:.2f}x" if m0[i] > 0 else "-" for i in range(4)]
        print(f"{l1} / {l0}: accepted {ratio[0]}, delivered {ratio[1]}, "
              f"daemon CPU per message {ratio[2]}, PSS {ratio[3]}")


def cmd_table(a):
    loads = [read_result(p) for p in a.files if read_result(p).get("kind") == "load"]
    idles = [read_result(p) for p in a.files if read_result(p).get("kind") == "idle"]
    if loads:
        load_table(a.title, loads)
    if idles:
        print()
        print(f"{'idle connections':<28}  {'conns':>6}  {'smtpd procs':>11}  {'RSS MiB':>8}  {'PSS MiB':>8}  {'KiB/conn (PSS)':>14}")
        for r in idles:
            conns = int(r["conns"])
            rss, pss = int(r["rss_kib"]), int(r["pss_kib"])
            print(f"  {r['label']:<26}  {conns:>6}  {r['procs']:>11}  {rss / 1024:>8.1f}  {pss / 1024:>8.1f}  {pss / conns:>14.1f}")
            if "greet_p99_ms" in r:
                print(f"    greeting latency p50 {r['greet_p50_ms']} ms, p99 {r['greet_p99_ms']} ms, "
                      f"max {r['greet_max_ms']} ms; {r['late_2s']} later than 2 s, "
                      f"{r['never']} never greeted, {r['failed']} refused or closed; "
                      f"all connected and answered in {r['setup_s']} s")
            if int(r["open_at_measure"]) < conns:
                print(f"    note: only {r['open_at_measure']} connections were still open when measured")
    for note in a.note:
        print(f"  {note}")
    print(f"{os.cpu_count()} CPUs. daemons = CPU of master and every process below it; client = smtp-source.")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    lo = sub.add_parser("load")
    idle = sub.add_parser("idle")
    for p in (lo, idle):
        p.add_argument("--label", required=True)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--pidfile", required=True)
        p.add_argument("--out", required=True)
    lo.add_argument("--maildir", required=True)
    lo.add_argument("--sender", default="bench@bench.test")
    lo.add_argument("--rcpt", default="benchuser@bench.test")
    lo.add_argument("-n", type=int, default=5000)
    lo.add_argument("-s", type=int, default=100)
    lo.add_argument("--size", type=int, default=2000)
    lo.add_argument("--rcpts", type=int, default=1)
    lo.add_argument("--stall", type=float, default=120)
    lo.add_argument("--warmup", type=int, default=20)
    idle.add_argument("-C", type=int, default=5000)
    idle.add_argument("--timeout", type=float, default=900)
    idle.add_argument("--stall", type=float, default=60,
                      help="give up when no connection is greeted or refused for this long")
    ta = sub.add_parser("table")
    ta.add_argument("--title", required=True)
    ta.add_argument("--note", action="append", default=[])
    ta.add_argument("files", nargs="+")
    a = ap.parse_args()
    try:
        {"load": cmd_load, "idle": cmd_idle, "table": cmd_table}[a.cmd](a)
    except KeyboardInterrupt:
        os._exit(130)


if __name__ == "__main__":
    main()
