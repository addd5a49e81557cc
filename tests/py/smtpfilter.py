#!/usr/bin/env python3
"""A small after-queue content filter for the content_filter test (issue 15).

Listens for SMTP on --port, adds an X-Content-Filter header to each
message, and re-injects it with the same envelope through smtplib to
--reinject (a second smtpd with -o content_filter=). It answers the final
dot with the re-injection's reply, as a proxy filter does. Every message
seen is appended to --log (one line: sender and recipients)."""

import argparse
import smtplib
import socket
import threading


def serve(conn, args):
    f = conn.makefile("rb")

    def reply(line):
        conn.sendall((line + "\r\n").encode())

    reply("220 filter.test ESMTP content filter")
    sender, rcpts = None, []
    while True:
        line = f.readline()
        if not line:
            return
        cmd = line.decode("utf-8", "replace").rstrip("\r\n")
        verb = cmd[:4].upper()
        if verb in ("EHLO", "HELO"):
            reply("250 filter.test")
        elif verb == "MAIL":
            sender = cmd.split(":", 1)[1].strip().split()[0].strip("<>")
            rcpts = []
            reply("250 2.1.0 Ok")
        elif verb == "RCPT":
            rcpts.append(cmd.split(":", 1)[1].strip().split()[0].strip("<>"))
            reply("250 2.1.5 Ok")
        elif verb == "DATA":
            reply("354 End data with <CR><LF>.<CR><LF>")
            lines = []
            while True:
                l = f.readline()
                if not l or l in (b".\r\n", b".\n"):
                    break
                if l.startswith(b".."):
                    l = l[1:]
                lines.append(l)
            msg = b"X-Content-Filter: passed\r\n" + b"".join(lines)
            with open(args.log, "a") as log:
                log.write("%s %s\n" % (sender, ",".join(rcpts)))
            try:
                with smtplib.SMTP("127.0.0.1", args.reinject, timeout=60) as s:
                    s.sendmail(sender, rcpts, msg)
                reply("250 2.0.0 Ok: filtered and re-injected")
            except smtplib.SMTPException as e:
                reply("451 4.3.0 re-injection failed: %s" % str(e).replace("\r\n", " "))
        elif verb == "RSET":
            sender, rcpts = None, []
            reply("250 2.0.0 Ok")
        elif verb == "QUIT":
            reply("221 2.0.0 Bye")
            return
        else:
            reply("250 2.0.0 Ok")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--reinject", type=int, required=True)
    p.add_argument("--log", required=True)
    args = p.parse_args()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(16)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c, args), daemon=True).start()


if __name__ == "__main__":
    main()
