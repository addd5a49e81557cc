//! The login side shared by pop3d and imapd: everything a server
//! does before a user is authenticated, in a process that never touches
//! mail (Dovecot's login process model).
//!
//! - [`conn`]: the client connection, plain or TLS ([`conn::Conn`]), read
//!   a line at a time with a length cap ([`conn::Client`]); STLS/STARTTLS
//!   throws away plaintext pipelined before the handshake.
//! - [`sasl`]: one SASL exchange with the auth service (Dovecot's auth
//!   protocol through [`auth::dovecot::Client`]), and the PLAIN response
//!   that USER/PASS and LOGIN become.
//! - [`relay`]: after login, the cleartext relay between the client (TLS
//!   terminated here) and the mail process, with the idle timeout.
//! - [`handoff`]: how the login process tells its privileged parent who
//!   logged in (a ticket line on a pipe), and how the parent verifies it
//!   with the auth service ([`handoff::verify`], Dovecot's auth-master
//!   REQUEST) before it starts the mail process as that user.
//! - [`anvil`]: the per-client connection count.
//!
//! ```text
//! Client::new(Conn::Plain(tcp)).read_line(limit) -> Line::{Text, TooLong, Eof}
//! client.start_tls(config) ; client.is_tls()
//! client.read_more(&mut buf) ; client.unread(rest)   // raw input (IMAP literals)
//! sasl::authenticate(path, mech, initial, &info, &mut ask) -> Outcome
//! relay::relay(&mut client, mail_socket, idle)
//! handoff::send(&pipe, user) ; handoff::receive(&pipe) -> Option<String>
//! ```

pub mod anvil;
pub mod conn;
pub mod handoff;
pub mod location;
pub mod process;
pub mod relay;
pub mod sasl;
pub mod stub;

/// True for loopback client addresses (127/8, ::1, ::ffff:127/104), where
/// plaintext authentication is allowed without TLS.
pub fn is_loopback(addr: &std::net::IpAddr) -> bool {
    match addr {
        std::net::IpAddr::V4(a) => a.is_loopback(),
        std::net::IpAddr::V6(a) => {
            a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v| v.is_loopback())
        }
    }
}
