#!/usr/bin/env python3
"""A private Dovecot IMAP server (Debian's dovecot-core and dovecot-imapd)
that the imapd tests and scripts/bench compare ours with.

    imapdovecot.py --dir DIR --maildir PATH --port N [--ssl-port N
                   --cert FILE --key FILE] [--uid N] [--password PW]

Writes DIR/dovecot.conf (everything under DIR: base_dir, state, log) and
execs `dovecot -F`, so the caller's child is Dovecot itself and a SIGTERM
to it stops everything. The --user names (alice@virt.test, bob@virt.test and alice by
default) log in with the one password and
gets PATH as a Maildir++ INBOX, with the special-use folders Drafts, Sent,
Trash and Junk created on first login (as our imapd does), COMPRESS
(imap_zlib) and CONDSTORE/QRESYNC on. Listens on 127.0.0.1 only. Needs
root (the mail process runs as --uid).
"""

import argparse
import os


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--maildir", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ssl-port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--uid", type=int, default=65534)
    ap.add_argument("--password", default="s3cret pass")
    ap.add_argument("--user", action="append", default=[])
    ap.add_argument("--process-limit", type=int, default=2000)
    a = ap.parse_args()
    d = os.path.abspath(a.dir)
    os.makedirs(d, exist_ok=True)
    # imap-login runs as dovenull and must reach its socket under base_dir.
    os.chmod(d, 0o755)
    m = os.path.abspath(a.maildir)
    if a.cert:
        ssl = f"ssl = yes\nssl_cert = <{a.cert}\nssl_key = <{a.key}\n"
    else:
        ssl = "ssl = no\n"
    users = a.user or ["alice@virt.test", "bob@virt.test", "alice"]
    with open(f"{d}/passwd", "w") as f:
        for u in users:
            f.write(f"{u}:{{PLAIN}}{a.password}::::::\n")
    conf = f"""base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}default_internal_user = root
default_internal_group = root
default_login_user = dovenull
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{m}
mail_plugins = $mail_plugins
protocol imap {{
  mail_plugins = $mail_plugins imap_zlib
  mail_max_userip_connections = 5000
}}
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = static
  args = uid={a.uid} gid={a.uid} home={m}
}}
namespace inbox {{
  inbox = yes
  mailbox Drafts {{
    special_use = \\Drafts
    auto = create
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = create
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = create
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {a.port}
  }}
  inet_listener imaps {{
    port = {a.ssl_port}
    ssl = yes
  }}
  process_limit = {a.process_limit}
  client_limit = 1000
}}
service imap {{
  process_limit = {a.process_limit}
}}
default_client_limit = 4000
default_vsz_limit = 1G
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
    with open(f"{d}/dovecot.conf", "w") as f:
        f.write(conf)
    os.execv("/usr/sbin/dovecot", ["dovecot", "-F", "-c", f"{d}/dovecot.conf"])


if __name__ == "__main__":
    main()
