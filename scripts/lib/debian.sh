# shellcheck shell=bash
# Shared by scripts/install-deps and scripts/bench (sourced, not run):
# robust apt installs and Debian's postfix package installed so that it
# never takes over the machine's mail.
#
#   apt_install PKG...        install what is missing (update, then retry)
#   debian_postfix_installed  true when the postfix package is installed
#   install_debian_postfix    install it unconfigured and not started;
#                             returns 1 (with a message) when it cannot
#   debian_postfix_restore_policy
#                             put /usr/sbin/policy-rc.d back (call it from
#                             an EXIT trap: an interrupted install leaves
#                             the temporary one in place otherwise)
#   debian_dovecot_installed  true when dovecot-core, dovecot-lmtpd and dovecot-pop3d are installed
#   install_debian_dovecot    install dovecot-core, dovecot-lmtpd and dovecot-pop3d for the tests that run
#                             a private Dovecot; its system service is
#                             neither started nor enabled

# pkg_installed PKG: the package is installed (dpkg's view, quick).
pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# apt_install PKG...: installs the packages not yet installed. Tries the
# install first (the lists may be fresh enough), then apt-get update and
# once more, each bounded in time. Needs root. Output goes to
# ${APT_LOG:-/dev/null}; the tail is shown on failure.
apt_install() {
    local want=() p
    for p in "$@"; do pkg_installed "$p" || want+=("$p"); done
    [ ${#want[@]} -eq 0 ] && return 0
    local log=${APT_LOG:-$(mktemp /tmp/apt.XXXXXX)}
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${want[@]}")
    if timeout 600 "${apt[@]}" >>"$log" 2>&1; then return 0; fi
    timeout 300 apt-get update -q >>"$log" 2>&1 || true
    if timeout 600 "${apt[@]}" >>"$log" 2>&1; then return 0; fi
    tail -20 "$log" >&2
    echo "apt-get install ${want[*]} failed (log: $log)" >&2
    return 1
}

debian_postfix_installed() { pkg_installed postfix; }

_policy_saved=""
_policy_touched=0

debian_postfix_restore_policy() {
    [ "$_policy_touched" = 1 ] || return 0
    if [ -n "$_policy_saved" ]; then
        mv -f "$_policy_saved" /usr/sbin/policy-rc.d
    else
        rm -f /usr/sbin/policy-rc.d
    fi
    _policy_touched=0
    _policy_saved=""
}

# Installs Debian's postfix package without letting it take over the
# machine's mail: debconf "No configuration" (no /etc/postfix/main.cf, so
# the system instance has nothing to run), and a policy-rc.d that forbids
# starting services during the install. Nothing here starts it. Note that
# the package provides /usr/sbin/sendmail; our tests and bench never call
# that path (they run the suite's binaries from target/).
install_debian_postfix() {
    debian_postfix_installed && return 0
    [ "$(id -u)" = 0 ] || { echo "installing Debian's postfix needs root" >&2; return 1; }
    # dpkg would silently overwrite files that no package owns, such as the
    # suite installed by scripts/install.
    local f
    for f in /usr/sbin/postfix /usr/sbin/sendmail /usr/sbin/postdrop; do
        [ -e "$f" ] || continue
        if ! dpkg -S "$f" >/dev/null 2>&1; then
            echo "$f exists and is no package's (scripts/install?): not installing Debian's postfix over it" >&2
            return 1
        fi
    done
    echo "installing Debian's postfix package (not configured, not started)" >&2
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    local rc=0
    apt_install_no_start postfix || rc=1
    [ "$rc" = 0 ] && debian_postfix_installed
}

# apt_install_no_start PKG...: apt_install with a policy-rc.d that forbids
# starting services during the install (put back afterwards).
apt_install_no_start() {
    if [ -e /usr/sbin/policy-rc.d ]; then
        _policy_saved=$(mktemp /usr/sbin/.policy-rc.d.saved.XXXXXX)
        cp -p /usr/sbin/policy-rc.d "$_policy_saved"
    fi
    _policy_touched=1
    printf '#!/bin/sh\n# scripts/lib/debian.sh: no service starts during the install\nexit 101\n' \
        >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    local rc=0
    apt_install "$@" || rc=1
    debian_postfix_restore_policy
    return "$rc"
}

debian_dovecot_installed() {
    pkg_installed dovecot-core && pkg_installed dovecot-lmtpd && pkg_installed dovecot-pop3d &&
        pkg_installed dovecot-imapd
}

# Installs Debian's dovecot-core (the dovecot and doveadm binaries),
# dovecot-lmtpd (its LMTP server) and dovecot-pop3d (a private Dovecot
# POP3 whose UIDLs pop3d must give for the same Maildir) and dovecot-imapd
# (a Dovecot IMAP session over a Maildir imapd then serves); the tests start
# their own Dovecot with a private configuration. The system's Dovecot
# (IMAP/POP3 on 143/110) is not started
# during the install and is disabled afterwards, so no test depends on or
# collides with it. Returns 1 (with a message) when it cannot.
install_debian_dovecot() {
    debian_dovecot_installed && return 0
    [ "$(id -u)" = 0 ] || { echo "installing Debian's dovecot-core needs root" >&2; return 1; }
    echo "installing Debian's dovecot-core, dovecot-lmtpd and dovecot-pop3d packages (system service not started)" >&2
    local rc=0
    apt_install_no_start dovecot-core dovecot-lmtpd dovecot-pop3d dovecot-imapd || rc=1
    if [ "$rc" = 0 ]; then
        # Should the package have started it anyway, stop and disable it.
        if [ -d /run/systemd/system ]; then
            systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
        else
            [ -x /etc/init.d/dovecot ] && /etc/init.d/dovecot stop >/dev/null 2>&1 || true
            update-rc.d dovecot disable >/dev/null 2>&1 || true
        fi
    fi
    [ "$rc" = 0 ] && debian_dovecot_installed
}
