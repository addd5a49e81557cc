# shellcheck shell=bash
# The pop3 section of scripts/bench, sourced by it (uses its tmp, here,
# idle, n, rounds, logins, only, results, notes, started, setup_user,
# setup_ours, ours_run, free_port, die, debian_dovecot_installed and
# install_debian_dovecot).
#
# Debian's dovecot-pop3d (a private Dovecot in the temporary directory)
# and our pop3d each serve their own copy of one N-message Maildir (user
# bench) and IDLE one-message Maildirs (users idle1..idleIDLE), all owned
# by benchuser. One untimed warm-up session each (Dovecot builds its index,
# both write dovecot-uidlist), then R rounds alternating the sides, each
# round: LOGINS logins in a row, one session timing STAT, LIST, UIDL and
# RETR of all, then IDLE logged-in idle sessions for the memory figure
# (scripts/bench.d/pop3.py). The table shows the medians.

pop3_password="bench-pw"
dovecot_pid=""
dc_port=""

# pop3_mailboxes BASE: the bench and idle Maildirs under BASE.
pop3_mailboxes() {
    local base=$1 i
    mkdir -p "$base"
    cp -a "$tmp/pop3-template" "$base/bench"
    for i in $(seq 1 "$idle"); do
        cp -a "$tmp/pop3-small" "$base/idle$i"
    done
    chown -R benchuser: "$base"
}

wait_port() {
    local i
    for i in $(seq 1 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# setup_dovecot: the private Dovecot's configuration; sets dc_port.
setup_dovecot() {
    if ! debian_dovecot_installed; then
        APT_LOG=$tmp/apt.log install_debian_dovecot ||
            die "could not install Debian's dovecot-pop3d (use --only ours)"
    fi
    local d=$tmp/dovecot uid gid
    mkdir -p "$d/run" "$d/state"
    chmod 0755 "$d"
    pop3_mailboxes "$d/vmail"
    dc_port=$(free_port)
    uid=$(id -u benchuser)
    gid=$(id -g benchuser)
    cat >"$d/dovecot.conf" <<DOVECOT
# Throw-away Dovecot written by scripts/bench.
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = no
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
disable_plaintext_auth = no
auth_mechanisms = plain
pop3_uidl_format = %08Xu%08Xv
first_valid_uid = 1
mail_max_userip_connections = 100000
default_process_limit = $((idle + 100))
default_client_limit = $((2 * idle + 1000))
mail_location = maildir:~
passdb {
  driver = static
  args = password=$pop3_password
}
userdb {
  driver = static
  args = uid=$uid gid=$gid home=$d/vmail/%n
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $dc_port
  }
  inet_listener pop3s {
    port = 0
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
DOVECOT
}

start_dovecot() {
    echo "bench: dovecot: starting ($tmp/dovecot)"
    /usr/sbin/dovecot -F -c "$tmp/dovecot/dovecot.conf" >"$tmp/dovecot/stderr" 2>&1 &
    dovecot_pid=$!
    if ! wait_port "$dc_port"; then
        cat "$tmp/dovecot/stderr" "$tmp/dovecot/dovecot.log" >&2 2>/dev/null || true
        die "dovecot did not start"
    fi
}

stop_dovecot() {
    [ -n "$dovecot_pid" ] || return 0
    kill "$dovecot_pid" 2>/dev/null || true
    wait "$dovecot_pid" 2>/dev/null || true
    dovecot_pid=""
}

# setup_ours_pop3: setup_ours's instance plus pop3d, auth and the users.
setup_ours_pop3() {
    setup_ours
    [ ${#ours_run[@]} -gt 0 ] || return 0
    local d=$tmp/ours i
    pop3_mailboxes "$d/vmail"
    ours_port=$(free_port)
    {
        echo "bench@bench.test bench/"
        for i in $(seq 1 "$idle"); do echo "idle$i@bench.test idle$i/"; done
    } >"$d/etc/vmailbox"
    {
        echo "bench@bench.test:{PLAIN}$pop3_password::::::"
        for i in $(seq 1 "$idle"); do echo "idle$i@bench.test:{PLAIN}$pop3_password::::::"; done
    } >"$d/etc/passwd"
    chmod 0600 "$d/etc/passwd"
    cat >>"$d/etc/main.cf" <<MAINCF
virtual_mailbox_base = $d/vmail
virtual_mailbox_maps = texthash:$d/etc/vmailbox
virtual_uid_maps = static:$(id -u benchuser)
virtual_gid_maps = static:$(id -g benchuser)
auth_passdb = passwd-file:$d/etc/passwd
pop3d_login_failure_delay = 0
pop3d_client_connection_count_limit = 0
MAINCF
    # Only what pop3 needs (setup_ours wrote the delivery services).
    cat >"$d/etc/master.cf" <<MASTERCF
127.0.0.1:$ours_port inet n n n - $((idle + 20)) pop3d
auth      unix  - n n - 1 auth
MASTERCF
}

# run_pop3 TAG LABEL PORT ROOT_PIDFILE USER_SUFFIX: one round of one side.
run_pop3() {
    local tag=$1 label=$2 port=$3 pidfile=$4 suffix=$5
    echo "bench: $label: $logins logins, then STAT, LIST, UIDL, RETR of $n"
    python3 "$here/pop3.py" timing --label "$label" --port "$port" --user "bench$suffix" \
        --password "$pop3_password" --logins "$logins" --out "$tmp/result.$tag.timing" ||
        die "$label: the timed session failed"
    results+=("$tmp/result.$tag.timing")
    if [ "$idle" -gt 0 ]; then
        echo "bench: $label: $idle idle sessions"
        python3 "$here/pop3.py" idle --label "$label" --port "$port" --user-prefix idle \
            --user-suffix "$suffix" --password "$pop3_password" -C "$idle" \
            --root-pid "$(tr -dc '0-9' <"$pidfile")" --out "$tmp/result.$tag.idle" ||
            die "$label: the idle sessions failed"
        results+=("$tmp/result.$tag.idle")
    fi
}

bench_pop3() {
    ulimit -n $((4 * idle + 4096)) 2>/dev/null || true
    setup_user
    echo "bench: writing the $n-message Maildir"
    python3 "$here/pop3.py" mkmaildir --dir "$tmp/pop3-template" -n "$n" >/dev/null
    python3 "$here/pop3.py" mkmaildir --dir "$tmp/pop3-small" -n 1 --seed 1 >/dev/null
    local dv=() ours=()
    if [ "$only" != ours ]; then
        setup_dovecot
        start_dovecot
        dv=(dovecot "$dc_port" "$tmp/dovecot/run/master.pid" "")
    fi
    if [ "$only" != postfix ]; then
        setup_ours_pop3
        if [ ${#ours_run[@]} -gt 0 ]; then
            local ctl=${ours_run[1]} cfg=${ours_run[2]} queue=${ours_run[3]}
            started+=("$ctl|$cfg|$queue")
            if ! timeout 60 "$ctl" -c "$cfg" start >"$tmp/start.log" 2>&1; then
                cat "$tmp/start.log" >&2
                die "ours: could not start the instance"
            fi
            wait_port "$ours_port" || die "ours: pop3d is not listening"
            ours=(ours "$ours_port" "$queue/pid/master.pid" "@bench.test")
        fi
    fi
    # Untimed warm-up: Dovecot builds its index, both write dovecot-uidlist.
    [ ${#dv[@]} -eq 0 ] || python3 "$here/pop3.py" timing --label dovecot --port "${dv[1]}" \
        --user bench --password "$pop3_password" --logins 5 --out "$tmp/warmup.dovecot" ||
        die "dovecot: the warm-up session failed"
    [ ${#ours[@]} -eq 0 ] || python3 "$here/pop3.py" timing --label ours --port "${ours[1]}" \
        --user bench@bench.test --password "$pop3_password" --logins 5 --out "$tmp/warmup.ours" ||
        die "ours: the warm-up session failed"
    local r x note_args=() ver
    for r in $(seq 1 "$rounds"); do
        [ ${#dv[@]} -eq 0 ] || run_pop3 "dovecot.$r" "${dv[@]}"
        [ ${#ours[@]} -eq 0 ] || run_pop3 "ours.$r" "${ours[@]}"
    done
    stop_dovecot
    echo
    if [ ${#results[@]} -eq 0 ]; then
        printf '%s\n' "${notes[@]}"
        exit 1
    fi
    ver=$(dpkg-query -W -f '${Version}' dovecot-pop3d 2>/dev/null || echo "?")
    note_args+=(--note "dovecot: Debian's dovecot-pop3d $ver, default services (a pop3-login and a pop3 process per connection)")
    [ ${#ours[@]} -eq 0 ] || note_args+=(--note "ours: pop3d_client_connection_count_limit = 0 (Dovecot's mail_max_userip_connections raised likewise): no per-client count to hold, so a logged-in session is its mail process alone")
    for x in "${notes[@]}"; do note_args+=(--note "$x"); done
    python3 "$here/pop3.py" table \
        --title "pop3, $n-message Maildir, $logins logins, $idle idle sessions, medians of $rounds rounds" \
        "${note_args[@]}" "${results[@]}"
}
