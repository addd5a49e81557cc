#!/usr/bin/env python3
"""The file-system floor of one durable delivery (`scripts/bench floor`; not a test).

    floor.py [-n N] [-c C] [--size BYTES] [--dir DIR]

Does, in C processes and N messages in all, only the file operations that
the suite's durability promises need for one message received and
delivered into a Maildir, with no mail software in between, and prints the
kernel CPU they cost per message (and the wall rate). Two profiles:

  ours      what our daemons promise: the queue file written and fsynced,
            its directory fsynced before the 250 (cleanup), moved to
            active/ (qmgr), the Maildir file written in tmp/, fsynced,
            renamed into new/, new/ fsynced (local), the done mark written
            and fdatasynced, the queue file removed (qmgr);
  batched   ours with group commit: --batch messages (in parallel
            sessions) share one sync of incoming/ and one of new/;
  postfix   what Postfix 3.7 does on Linux: the queue file fsynced
            (cleanup), the Maildir file fsynced (local); no directory
            fsync, marks not synced.

The figure is a lower bound of "daemons ms/msg" in `scripts/bench smtp`
for the same profile: no network, no parsing, no process hop, no logging.
The CPU is that of the worker processes (getrusage of the children), so
the kernel's own I/O threads (jbd2, the block layer's workers) are not in
it, as they are not in the bench's daemon figure either. The user CPU is
Python's and is left out.
"""

import argparse
import os
import resource
import socket
import sys
import tempfile
import time

SMTP = [b"EHLO client.example\r\n", b"MAIL FROM:<sender@example.org>\r\n",
        b"RCPT TO:<user@example.org>\r\n", b"DATA\r\n"]


def message(size):
    body = (b"x" * 76 + b"\r\n") * max(1, size // 78)
    return body + b".\r\n"


def client(port, count, size, batch):
    """One SMTP session per message, as smtp-source sends them; `batch`
    sessions at a time, each waiting for its 250 after all have sent
    their message (as parallel sessions do while the server commits
    them together)."""
    body = message(size)
    left = count
    while left > 0:
        n = min(batch, left)
        left -= n
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.recv(512)
            for line in SMTP:
                s.sendall(line)
                s.recv(512)
            s.sendall(body)
            socks.append(s)
        for s in socks:
            s.recv(512)
            s.sendall(b"QUIT\r\n")
            s.recv(512)
            s.close()


def receive(listener, size):
    """The server's side of one session: the message as bytes."""
    conn, _ = listener.accept()
    conn.sendall(b"220 floor ESMTP\r\n")
    for reply in (b"250 floor\r\n", b"250 2.1.0 Ok\r\n", b"250 2.1.5 Ok\r\n"):
        conn.recv(512)
        conn.sendall(reply)
    conn.recv(512)
    conn.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
    data = b""
    while not data.endswith(b"\r\n.\r\n"):
        chunk = conn.recv(65536)
        if not chunk:
            raise OSError("client closed in DATA")
        data += chunk
    return conn, data


def fsync_dir(path):
    dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)


def one_worker(base, first, count, size, profile, smtp, batch):
    """`count` messages through the profile's calls; "batched" takes
    `batch` messages through each step together, with one sync of each
    directory for all of them (group commit), the others one at a time."""
    body = message(size)
    b = batch if profile == "batched" else 1
    listener = None
    if smtp:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(max(64, b))
        if os.fork() == 0:
            code = 0
            try:
                client(listener.getsockname()[1], count, size, b)
            except OSError as e:
                print(f"floor client: {e}", file=sys.stderr)
                code = 1
            os._exit(code)
    dirs = {d: os.path.join(base, d) for d in ("incoming", "active", "tmp", "new")}
    synced = profile != "postfix"
    for start in range(first, first + count, b):
        group = range(start, min(start + b, first + count))
        conns = []
        # cleanup: the queue file, durable before the 250.
        for i in group:
            if listener is not None:
                conn, body = receive(listener, size)
                conns.append(conn)
            fd = os.open(os.path.join(dirs["incoming"], f"M{i:08d}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.write(fd, body)
            os.fsync(fd)
            os.close(fd)
        if synced:
            fsync_dir(dirs["incoming"])
        for conn in conns:
            conn.sendall(b"250 2.0.0 Ok: queued\r\n")
            conn.recv(512)
            conn.sendall(b"221 2.0.0 Bye\r\n")
            conn.close()
        # qmgr moves it to active/; local writes the Maildir file.
        for i in group:
            q_act = os.path.join(dirs["active"], f"M{i:08d}")
            os.rename(os.path.join(dirs["incoming"], f"M{i:08d}"), q_act)
            fd = os.open(q_act, os.O_RDONLY)
            data = os.read(fd, size + 4096)
            os.close(fd)
            tmp = os.path.join(dirs["tmp"], f"{i}.{os.getpid()}.host")
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            os.rename(tmp, os.path.join(dirs["new"], f"{i}.{os.getpid()}.host"))
        if synced:
            fsync_dir(dirs["new"])
        # The done mark, durable; the queue file removed.
        for i in group:
            q_act = os.path.join(dirs["active"], f"M{i:08d}")
            if synced:
                fd = os.open(q_act, os.O_WRONLY)
                os.pwrite(fd, b"D", 0)
                os.fdatasync(fd)
                os.close(fd)
            os.unlink(q_act)


def run(args, profile):
    base = tempfile.mkdtemp(prefix="floor.", dir=args.dir)
    for d in ("incoming", "active", "tmp", "new"):
        os.mkdir(os.path.join(base, d))
    per = args.n // args.c
    # Each worker reports its own kernel CPU (RUSAGE_SELF, its client
    # process left out) on this pipe as it ends.
    rd, wr = os.pipe()
    start = time.monotonic()
    pids = []
    for w in range(args.c):
        pid = os.fork()
        if pid == 0:
            os.close(rd)
            code = 0
            try:
                one_worker(base, w * per, per, args.size, profile, not args.no_smtp, args.batch)
            except OSError as e:
                print(f"floor: {e}", file=sys.stderr)
                code = 1
            stime = resource.getrusage(resource.RUSAGE_SELF).ru_stime
            os.write(wr, f"{stime}\n".encode())
            try:
                while True:
                    _, status = os.wait()
                    code |= status != 0
            except ChildProcessError:
                pass
            os._exit(code)
        pids.append(pid)
    os.close(wr)
    failed = 0
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        failed += status != 0
    wall = time.monotonic() - start
    with os.fdopen(rd) as f:
        stime = sum(float(line) for line in f)
    done = len(os.listdir(os.path.join(base, "new")))
    for d in ("new", "tmp", "active", "incoming"):
        p = os.path.join(base, d)
        for f in os.listdir(p):
            os.unlink(os.path.join(p, f))
        os.rmdir(p)
    os.rmdir(base)
    if failed or done != per * args.c:
        sys.exit(f"floor: {failed} worker(s) failed, {done} of {per * args.c} messages done")
    sys_ms = stime * 1000 / done
    return done / wall, sys_ms


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=4000, help="messages in all (default 4000)")
    ap.add_argument("-c", type=int, default=20, help="processes in parallel (default 20)")
    ap.add_argument("-r", type=int, default=3, help="rounds, alternating the profiles (default 3)")
    ap.add_argument("--size", type=int, default=2048, help="message bytes (default 2048)")
    ap.add_argument("--batch", type=int, default=20, help="messages a group commit in the batched profile (default 20)")
    ap.add_argument("--no-smtp", action="store_true", help="file operations only, no SMTP receive")
    ap.add_argument("--dir", default="/tmp", help="where (default /tmp, where scripts/bench runs)")
    args = ap.parse_args()
    rows = {"ours": [], "batched": [], "postfix": []}
    for _ in range(args.r):
        for profile in ("postfix", "ours", "batched"):
            rows[profile].append(run(args, profile))
    what = "files" if args.no_smtp else "SMTP receive and files"
    print(f"floor ({what}): {args.n} messages of {args.size} bytes, {args.c} processes, {args.r} round(s), in {args.dir}")
    print(f"  {'profile':<10} {'msgs/s':>10} {'kernel ms/msg':>15}   (median; range)")
    for profile, runs in rows.items():
        rates = sorted(r for r, _ in runs)
        cpus = sorted(c for _, c in runs)
        mid = len(runs) // 2
        print(
            f"  {profile:<10} {rates[mid]:>10.0f} {cpus[mid]:>15.3f}"
            f"   ({rates[0]:.0f}-{rates[-1]:.0f}; {cpus[0]:.3f}-{cpus[-1]:.3f})"
        )


if __name__ == "__main__":
    main()
