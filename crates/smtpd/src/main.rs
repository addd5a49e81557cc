//! smtpd - Postfix SMTP server (not yet serving)
fn main() {
    maillog::fatal!("smtpd: not yet serving");
}
