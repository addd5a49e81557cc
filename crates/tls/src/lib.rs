//! tls - server-side TLS for smtpd, pop3d and imapd, on rustls (and, in
//! [`client`], the certificate verifier pieces that smtp and proxymap share).
//!
//! # Synopsis
//!
//! ```text
//! ServerConfig::load(cert_file, key_file, chain_files) -> Result<Arc<rustls::ServerConfig>, Error>
//! ServerConfig::load_with_policy(cert_file, key_file, chain_files, &Policy) -> Result<...>
//! Policy::from_params("smtpd", mandatory, |name| value) -> Result<Policy, String>  // policy.rs
//! Session::new(config) -> Result<Session, Error>              // sans-I/O, for mio loops
//! start_tls(config, &mut input_buffer) -> Result<StartTls, Error>  // STARTTLS, drains plaintext
//! TlsStream::accept(config, stream) -> Result<TlsStream<S>, Error> // blocking
//! TlsStream::starttls(config, bufreader) -> Result<(TlsStream<S>, discarded), Error>
//! Session::info() / TlsStream::info() -> Option<SessionInfo>
//! ```
//!
//! # Description
//!
//! [`ServerConfig::load`] reads the PEM files named by `smtpd_tls_cert_file`,
//! `smtpd_tls_key_file` and `smtpd_tls_chain_files` and builds a rustls
//! server configuration offering TLS 1.2 and TLS 1.3 with rustls' default
//! cipher suites (ring provider) and no client certificates;
//! [`ServerConfig::load_with_policy`] offers the versions and suites of a
//! [`Policy`] instead, built from `smtpd_tls_protocols`, `smtpd_tls_ciphers`
//! and `smtpd_tls_exclude_ciphers` (or their `mandatory_` forms) by
//! [`policy`]. When
//! `chain_files` is not empty it wins over the cert/key pair, as in Postfix:
//! each chain file holds one private key and its certificate chain (in any
//! order); with several files (say RSA and ECDSA) the first whose key can
//! sign with a scheme the client offers is used.
//!
//! [`Session`] is a sans-I/O wrapper: the caller feeds ciphertext read from
//! the socket in, takes plaintext out, writes plaintext and takes the
//! ciphertext to send. It never touches a file descriptor, so it fits smtpd's
//! non-blocking mio loop as well as pop3d and imapd.
//!
//! [`start_tls`] is the only way to turn a plaintext conversation into a TLS
//! one after a STARTTLS command: it takes the caller's input buffer and
//! empties it, reporting how many pipelined plaintext bytes were thrown away
//! (CVE-2011-0411: text sent before the handshake must never be processed as
//! if it came inside TLS).
//!
//! [`TlsStream`] is a blocking `Read + Write` stream for simple uses
//! (tests, sendmail-like clients of our own servers, port 465 in a
//! one-process-per-connection server).
//!
//! # Security
//!
//! All inputs from the peer go through rustls. Files are read whole, and are
//! bounded to [`MAX_PEM_FILE`] bytes.
//!
//! # Diagnostics
//!
//! [`Error`] names the file and what is wrong with it: missing, unreadable,
//! not PEM, no key, no certificate, key does not match the certificate.
//! Nothing panics.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ProtocolVersion, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub mod client;
pub mod policy;
pub use client::AnyServerCertificate;
pub use policy::Policy;

#[doc(hidden)]
pub use rustls as __rustls;

/// Largest PEM file we read (certificates, keys, chains).
pub const MAX_PEM_FILE: u64 = 1024 * 1024;

/// Errors from loading certificates or running a TLS session.
#[derive(Debug)]
pub enum Error {
    /// The file does not exist.
    Missing(PathBuf),
    /// The file exists but could not be read (permissions, a directory, too large...).
    Unreadable(PathBuf, String),
    /// The file holds no PEM object of the wanted kind, or broken PEM.
    NotPem(PathBuf, String),
    /// The file is PEM but the private key could not be used.
    BadKey(PathBuf, String),
    /// The private key does not belong to the certificate.
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// Neither a cert/key pair nor chain files were given.
    NoCertificate,
    /// rustls refused the configuration or the peer (handshake failure, bad record...).
    Tls(rustls::Error),
    /// An I/O error on the underlying stream (blocking [`TlsStream`] only).
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Missing(p) => write!(f, "{}: no such file", p.display()),
            Error::Unreadable(p, why) => write!(f, "{}: cannot read: {why}", p.display()),
            Error::NotPem(p, what) => write!(f, "{}: not PEM: {what}", p.display()),
            Error::BadKey(p, why) => write!(f, "{}: unusable private key: {why}", p.display()),
            Error::KeyMismatch { cert, key } => write!(
                f,
                "{}: private key does not match the certificate in {}",
                key.display(),
                cert.display()
            ),
            Error::NoCertificate => write!(f, "no certificate configured"),
            Error::Tls(e) => write!(f, "TLS: {e}"),
            Error::Io(e) => write!(f, "TLS I/O: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rustls::Error> for Error {
    fn from(e: rustls::Error) -> Self {
        Error::Tls(e)
    }
}

/// Loader for rustls server configurations (the type is only a namespace).
pub struct ServerConfig;

impl ServerConfig {
    /// Builds a server configuration from `smtpd_tls_cert_file`,
    /// `smtpd_tls_key_file` and `smtpd_tls_chain_files`.
    ///
    /// `cert_file` holds the server certificate followed by intermediates;
    /// `key_file` may be the same file. Non-empty `chain_files` replace the
    /// pair. Empty paths count as not given.
    pub fn load<P: AsRef<Path>>(
        cert_file: &Path,
        key_file: &Path,
        chain_files: &[P],
    ) -> Result<Arc<rustls::ServerConfig>, Error> {
        Self::load_with_policy(cert_file, key_file, chain_files, &Policy::default())
    }

    /// [`ServerConfig::load`] offering only `policy`'s protocol versions
    /// and cipher suites.
    pub fn load_with_policy<P: AsRef<Path>>(
        cert_file: &Path,
        key_file: &Path,
        chain_files: &[P],
        policy: &Policy,
    ) -> Result<Arc<rustls::ServerConfig>, Error> {
        let provider = Arc::new(policy.provider());
        let mut keys = Vec::new();
        let chains: Vec<&Path> = chain_files
            .iter()
            .map(|p| p.as_ref())
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if chains.is_empty() {
            if cert_file.as_os_str().is_empty() {
                return Err(Error::NoCertificate);
            }
            let key_file = if key_file.as_os_str().is_empty() {
                cert_file
            } else {
                key_file
            };
            keys.push(load_pair(cert_file, key_file, &provider)?);
        } else {
            for chain in chains {
                keys.push(load_pair(chain, chain, &provider)?);
            }
        }
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&policy.versions)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver { keys }));
        Ok(Arc::new(config))
    }
}

/// Picks the first certified key that can sign with a scheme the client offers.
#[derive(Debug)]
struct Resolver {
    keys: Vec<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let offered = hello.signature_schemes();
        self.keys
            .iter()
            .find(|k| k.key.choose_scheme(offered).is_some())
            .or_else(|| self.keys.first())
            .cloned()
    }
}

/// read_pem_file - reads a bounded PEM file, naming it in errors.
fn read_pem_file(path: &Path) -> Result<Vec<u8>, Error> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::Missing(path.to_path_buf()));
        }
        Err(e) => return Err(Error::Unreadable(path.to_path_buf(), e.to_string())),
    };
    let mut data = Vec::new();
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut data)
        .map_err(|e| Error::Unreadable(path.to_path_buf(), e.to_string()))?;
    if data.len() as u64 > MAX_PEM_FILE {
        return Err(Error::Unreadable(
            path.to_path_buf(),
            format!("larger than {MAX_PEM_FILE} bytes"),
        ));
    }
    Ok(data)
}

/// load_pair - loads certificates from one file and a key from another (or the same).
fn load_pair(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, Error> {
    let cert_pem = read_pem_file(cert_file)?;
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(&cert_pem) {
        let cert =
            item.map_err(|e| Error::NotPem(cert_file.to_path_buf(), format!("certificate: {e}")))?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(Error::NotPem(
            cert_file.to_path_buf(),
            "no CERTIFICATE found".to_string(),
        ));
    }
    let key_pem = if key_file == cert_file {
        cert_pem
    } else {
        read_pem_file(key_file)?
    };
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| Error::NotPem(key_file.to_path_buf(), format!("private key: {e}")))?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| Error::BadKey(key_file.to_path_buf(), e.to_string()))?;
    let certified = CertifiedKey::new(certs, signer);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(Error::KeyMismatch {
                cert: cert_file.to_path_buf(),
                key: key_file.to_path_buf(),
            });
        }
        Err(e) => {
            return Err(Error::NotPem(
                cert_file.to_path_buf(),
                format!("bad certificate: {e}"),
            ));
        }
    }
    Ok(Arc::new(certified))
}

/// What a finished handshake agreed on, for Received headers and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// "TLSv1.3" or "TLSv1.2".
    pub protocol: String,
    /// Cipher suite as OpenSSL (and so Postfix) names it, e.g.
    /// "TLS_AES_256_GCM_SHA384" or "ECDHE-RSA-AES128-GCM-SHA256".
    pub cipher: String,
    /// Symmetric key bits of the cipher (128 or 256).
    pub bits: u16,
    /// Key exchange group, e.g. "X25519", when known.
    pub key_exchange: Option<String>,
    /// The SNI name the client asked for, if any.
    pub server_name: Option<String>,
    /// Whether the client presented a certificate (never, for now).
    pub client_cert: bool,
}

impl SessionInfo {
    /// The text Postfix puts in a Received header:
    /// `using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)`,
    /// followed by ` key-exchange X25519` when the group is known.
    pub fn received_clause(&self) -> String {
        let mut s = format!(
            "using {} with cipher {} ({}/{} bits)",
            self.protocol, self.cipher, self.bits, self.bits
        );
        if let Some(kx) = &self.key_exchange {
            s.push_str(" key-exchange ");
            s.push_str(kx);
        }
        s
    }

    fn from_conn(conn: &ServerConnection) -> Option<SessionInfo> {
        if conn.is_handshaking() {
            return None;
        }
        let protocol = match conn.protocol_version()? {
            ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
            ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
            other => format!("{other:?}"),
        };
        let suite = conn.negotiated_cipher_suite()?;
        let raw = suite
            .suite()
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{:?}", suite.suite()));
        let cipher = match raw.strip_prefix("TLS13_") {
            Some(rest) => format!("TLS_{rest}"),
            None => openssl_tls12_name(&raw),
        };
        let bits = if cipher.contains("AES_128") || cipher.contains("AES128") {
            128
        } else {
            256
        };
        Some(SessionInfo {
            protocol,
            cipher,
            bits,
            key_exchange: conn
                .negotiated_key_exchange_group()
                .map(|g| kx_name(g.name())),
            server_name: conn.server_name().map(str::to_string),
            client_cert: conn.peer_certificates().is_some(),
        })
    }
}

/// openssl_tls12_name - OpenSSL's name for a TLS 1.2 suite, as Postfix logs it:
/// TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 becomes ECDHE-RSA-AES256-GCM-SHA384.
pub(crate) fn openssl_tls12_name(iana: &str) -> String {
    let Some((kx, bulk)) = iana
        .strip_prefix("TLS_")
        .and_then(|r| r.split_once("_WITH_"))
    else {
        return iana.to_string();
    };
    let kx = kx.replace('_', "-");
    let bulk = match bulk {
        "CHACHA20_POLY1305_SHA256" => "CHACHA20-POLY1305".to_string(),
        other => other.replacen("AES_", "AES", 1).replace('_', "-"),
    };
    format!("{kx}-{bulk}")
}

/// kx_name - OpenSSL-style name of a key exchange group.
fn kx_name(group: rustls::NamedGroup) -> String {
    match group {
        rustls::NamedGroup::X25519 => "X25519".to_string(),
        rustls::NamedGroup::secp256r1 => "secp256r1".to_string(),
        rustls::NamedGroup::secp384r1 => "secp384r1".to_string(),
        rustls::NamedGroup::X25519MLKEM768 => "X25519MLKEM768".to_string(),
        other => format!("{other:?}"),
    }
}

/// A sans-I/O server-side TLS session.
///
/// The caller moves bytes between the socket and the session:
/// [`feed_ciphertext`](Session::feed_ciphertext) what was read from the
/// socket, [`read_plaintext`](Session::read_plaintext) what the client said,
/// [`write_plaintext`](Session::write_plaintext) the replies, and
/// [`take_ciphertext`](Session::take_ciphertext) what must be sent while
/// [`wants_write`](Session::wants_write) is true.
pub struct Session {
    conn: ServerConnection,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("handshaking", &self.conn.is_handshaking())
            .finish()
    }
}

/// Result of [`Session::read_plaintext`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plaintext {
    /// This many bytes were copied into the buffer.
    Data(usize),
    /// Nothing available now; feed more ciphertext.
    WouldBlock,
    /// The client sent close_notify: a clean end of the stream.
    Closed,
}

impl Session {
    /// A new session for implicit TLS (port 465, 993, 995), before any
    /// plaintext. After a STARTTLS command use [`start_tls`] instead, which
    /// also throws away pipelined plaintext.
    pub fn new(config: Arc<rustls::ServerConfig>) -> Result<Session, Error> {
        Ok(Session {
            conn: ServerConnection::new(config)?,
        })
    }

    /// Feeds ciphertext read from the socket; returns how many bytes were
    /// consumed. Unconsumed bytes (when plaintext is waiting to be read) must
    /// be fed again later. On `Err` the session is dead, but an alert may be
    /// waiting: send [`take_ciphertext`](Session::take_ciphertext) then close.
    pub fn feed_ciphertext(&mut self, data: &[u8]) -> Result<usize, Error> {
        let mut rest = data;
        while !rest.is_empty() {
            match self.conn.read_tls(&mut rest) {
                Ok(0) => break,
                Ok(_) => {
                    self.conn.process_new_packets()?;
                }
                // Plaintext buffer full: the caller must read plaintext first.
                Err(_) => break,
            }
        }
        Ok(data.len() - rest.len())
    }

    /// Copies decrypted plaintext into `buf`. A TCP close without
    /// close_notify shows up as `Err(Error::Io(UnexpectedEof))` once the
    /// caller has fed everything and read all plaintext (truncation attack).
    pub fn read_plaintext(&mut self, buf: &mut [u8]) -> Result<Plaintext, Error> {
        if buf.is_empty() {
            return Ok(Plaintext::Data(0));
        }
        match self.conn.reader().read(buf) {
            Ok(0) => Ok(Plaintext::Closed),
            Ok(n) => Ok(Plaintext::Data(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Plaintext::WouldBlock),
            Err(e) => Err(Error::Io(e)),
        }
    }

    /// Queues plaintext to be encrypted (buffered until the handshake is done).
    pub fn write_plaintext(&mut self, data: &[u8]) -> Result<usize, Error> {
        self.conn.writer().write(data).map_err(Error::Io)
    }

    /// True when the session can take more ciphertext (false while
    /// decrypted plaintext waits to be read, or after close_notify):
    /// register read interest in the event loop only then.
    pub fn wants_read(&self) -> bool {
        self.conn.wants_read()
    }

    /// True when ciphertext is waiting to be sent.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Appends all pending ciphertext to `out`; returns how many bytes.
    pub fn take_ciphertext(&mut self, out: &mut Vec<u8>) -> usize {
        let before = out.len();
        while self.conn.wants_write() {
            match self.conn.write_tls(out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        out.len() - before
    }

    /// True until the handshake has completed.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Queues a close_notify alert (send it with `take_ciphertext`).
    pub fn send_close_notify(&mut self) {
        self.conn.send_close_notify();
    }

    /// Protocol and cipher, once the handshake is done.
    pub fn info(&self) -> Option<SessionInfo> {
        SessionInfo::from_conn(&self.conn)
    }
}

/// A session started by STARTTLS, with the count of plaintext bytes that
/// were pipelined after the STARTTLS line and thrown away.
#[derive(Debug)]
#[must_use = "the session must be used, and discarded bytes should be logged"]
pub struct StartTls {
    /// The new session; the client's ClientHello comes next.
    pub session: Session,
    /// Plaintext bytes discarded from the input buffer (0 for a well-behaved client).
    pub discarded: usize,
}

/// Starts TLS after a STARTTLS command has been answered with 220.
///
/// `input` is the connection's plaintext input buffer, holding whatever was
/// read after the STARTTLS command line. It is emptied here: bytes pipelined
/// before the handshake are never to be processed inside TLS
/// (CVE-2011-0411). Call this after the STARTTLS line has been taken out
/// of the buffer; the count of discarded bytes is returned for logging.
pub fn start_tls(
    config: Arc<rustls::ServerConfig>,
    input: &mut Vec<u8>,
) -> Result<StartTls, Error> {
    let discarded = input.len();
    input.clear();
    Ok(StartTls {
        session: Session::new(config)?,
        discarded,
    })
}

/// A blocking TLS stream over any `Read + Write` transport.
pub struct TlsStream<S: Read + Write> {
    inner: rustls::StreamOwned<ServerConnection, S>,
}

impl<S: Read + Write> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream").finish_non_exhaustive()
    }
}

impl<S: Read + Write> TlsStream<S> {
    /// Runs the server handshake to completion on `sock`.
    pub fn accept(config: Arc<rustls::ServerConfig>, mut sock: S) -> Result<TlsStream<S>, Error> {
        let mut conn = ServerConnection::new(config)?;
        while conn.is_handshaking() {
            match conn.complete_io(&mut sock) {
                Ok((0, 0)) if conn.is_handshaking() => {
                    return Err(Error::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed during TLS handshake",
                    )));
                }
                Ok(_) => {}
                Err(e) => {
                    // rustls wraps its own errors in io::Error; unwrap them for callers.
                    let is_tls = e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>());
                    if is_tls {
                        if let Some(inner) = e.into_inner()
                            && let Ok(tls) = inner.downcast::<rustls::Error>()
                        {
                            return Err(Error::Tls(*tls));
                        }
                        return Err(Error::Tls(rustls::Error::General(
                            "handshake failed".to_string(),
                        )));
                    }
                    return Err(Error::Io(e));
                }
            }
        }
        Ok(TlsStream {
            inner: rustls::StreamOwned::new(conn, sock),
        })
    }

    /// STARTTLS for a blocking server that reads commands through a
    /// `BufReader`: consumes the reader, discards whatever plaintext it had
    /// buffered after the STARTTLS line (CVE-2011-0411), then runs the
    /// handshake. Returns the stream and the count of discarded bytes.
    pub fn starttls(
        config: Arc<rustls::ServerConfig>,
        reader: io::BufReader<S>,
    ) -> Result<(TlsStream<S>, usize), Error> {
        let discarded = reader.buffer().len();
        let sock = reader.into_inner();
        Ok((TlsStream::accept(config, sock)?, discarded))
    }

    /// Protocol and cipher of this connection.
    pub fn info(&self) -> Option<SessionInfo> {
        SessionInfo::from_conn(&self.inner.conn)
    }

    /// The underlying transport.
    pub fn get_ref(&self) -> &S {
        &self.inner.sock
    }

    /// Sends close_notify and flushes it.
    pub fn close(&mut self) -> io::Result<()> {
        self.inner.conn.send_close_notify();
        while self.inner.conn.wants_write() {
            self.inner.conn.write_tls(&mut self.inner.sock)?;
        }
        self.inner.sock.flush()
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use std::net::{TcpListener, TcpStream};
    use std::thread;

    /// A test CA and a localhost certificate it signed, written to a temp dir.
    struct Pki {
        dir: tempfile::TempDir,
        ca_der: CertificateDer<'static>,
        cert: PathBuf,
        key: PathBuf,
    }

    fn pki() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, leaf.pem() + &ca_cert.pem()).unwrap();
        std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
        Pki {
            ca_der: ca_cert.der().clone(),
            dir,
            cert,
            key,
        }
    }

    fn client_config(
        pki: &Pki,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca_der.clone()).unwrap();
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        Arc::new(cfg)
    }

    fn client(
        cfg: Arc<rustls::ClientConfig>,
        sock: TcpStream,
    ) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
        let conn = rustls::ClientConnection::new(cfg, "localhost".try_into().unwrap()).unwrap();
        rustls::StreamOwned::new(conn, sock)
    }

    fn read_line<R: Read>(r: &mut R) -> String {
        let mut out = Vec::new();
        let mut b = [0u8; 1];
        while r.read(&mut b).unwrap() == 1 {
            out.push(b[0]);
            if b[0] == b'\n' {
                break;
            }
        }
        String::from_utf8(out).unwrap()
    }

    fn blocking_roundtrip(versions: &[&'static rustls::SupportedProtocolVersion]) -> SessionInfo {
        let pki = pki();
        let config = ServerConfig::load(&pki.cert, &pki.key, &[] as &[PathBuf]).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (sock, _) = listener.accept().unwrap();
            let mut tls = TlsStream::accept(config, sock).unwrap();
            let line = read_line(&mut tls);
            assert_eq!(line, "EHLO client\r\n");
            tls.write_all(b"250 ok\r\n").unwrap();
            tls.flush().unwrap();
            let info = tls.info().unwrap();
            tls.close().unwrap();
            info
        });
        let mut c = client(
            client_config(&pki, versions),
            TcpStream::connect(addr).unwrap(),
        );
        c.write_all(b"EHLO client\r\n").unwrap();
        assert_eq!(read_line(&mut c), "250 ok\r\n");
        server.join().unwrap()
    }

    #[test]
    fn blocking_handshake_tls13() {
        let info = blocking_roundtrip(&[&rustls::version::TLS13]);
        assert_eq!(info.protocol, "TLSv1.3");
        assert!(info.cipher.starts_with("TLS_"), "{}", info.cipher);
        assert!(!info.client_cert);
        assert_eq!(info.server_name.as_deref(), Some("localhost"));
        assert!(
            info.received_clause()
                .starts_with("using TLSv1.3 with cipher TLS_")
        );
        assert!(info.key_exchange.is_some());
        println!("{}", info.received_clause());
    }

    #[test]
    fn blocking_handshake_tls12() {
        let info = blocking_roundtrip(&[&rustls::version::TLS12]);
        assert_eq!(info.protocol, "TLSv1.2");
        println!("{}", info.received_clause());
        assert!(info.cipher.starts_with("ECDHE-ECDSA-"), "{}", info.cipher);
    }

    /// pump - moves bytes from the socket through a sans-I/O session until
    /// a full line of plaintext is available.
    fn session_read_line(s: &mut Session, sock: &mut TcpStream, pending: &mut Vec<u8>) -> String {
        let mut line = Vec::new();
        loop {
            let mut out = Vec::new();
            s.take_ciphertext(&mut out);
            sock.write_all(&out).unwrap();
            let mut b = [0u8; 1];
            loop {
                match s.read_plaintext(&mut b).unwrap() {
                    Plaintext::Data(_) => {
                        line.push(b[0]);
                        if b[0] == b'\n' {
                            return String::from_utf8(line).unwrap();
                        }
                    }
                    Plaintext::WouldBlock => break,
                    Plaintext::Closed => return String::from_utf8(line).unwrap(),
                }
            }
            if pending.is_empty() {
                let mut buf = [0u8; 4096];
                let n = sock.read(&mut buf).unwrap();
                assert!(n > 0, "peer closed");
                pending.extend_from_slice(&buf[..n]);
            }
            let used = s.feed_ciphertext(pending).unwrap();
            pending.drain(..used);
        }
    }

    fn session_write(s: &mut Session, sock: &mut TcpStream, data: &[u8]) {
        s.write_plaintext(data).unwrap();
        let mut out = Vec::new();
        s.take_ciphertext(&mut out);
        sock.write_all(&out).unwrap();
    }

    #[test]
    fn sans_io_session_over_tcp() {
        let pki = pki();
        let config = ServerConfig::load(&pki.cert, &pki.key, &[] as &[PathBuf]).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let mut s = Session::new(config).unwrap();
            assert!(s.is_handshaking());
            assert!(s.info().is_none());
            let mut pending = Vec::new();
            let line = session_read_line(&mut s, &mut sock, &mut pending);
            assert_eq!(line, "HELLO\r\n");
            session_write(&mut s, &mut sock, b"WORLD\r\n");
            s.info().unwrap()
        });
        let mut c = client(
            client_config(&pki, &[&rustls::version::TLS13, &rustls::version::TLS12]),
            TcpStream::connect(addr).unwrap(),
        );
        c.write_all(b"HELLO\r\n").unwrap();
        assert_eq!(read_line(&mut c), "WORLD\r\n");
        let info = server.join().unwrap();
        assert_eq!(info.protocol, "TLSv1.3");
    }

    #[test]
    fn starttls_discards_pipelined_plaintext() {
        let pki = pki();
        let config = ServerConfig::load(&pki.cert, &pki.key, &[] as &[PathBuf]).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            // Plaintext phase: read until the STARTTLS line is complete.
            let mut input = Vec::new();
            let mut buf = [0u8; 4096];
            while !input.windows(2).any(|w| w == b"\r\n") {
                let n = sock.read(&mut buf).unwrap();
                input.extend_from_slice(&buf[..n]);
            }
            let eol = input.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
            let cmd: Vec<u8> = input.drain(..eol).collect();
            assert_eq!(cmd, b"STARTTLS\r\n");
            sock.write_all(b"220 2.0.0 Ready to start TLS\r\n").unwrap();
            let started = start_tls(config, &mut input).unwrap();
            assert!(input.is_empty());
            let discarded = started.discarded;
            let mut s = started.session;
            let mut pending = Vec::new();
            let first = session_read_line(&mut s, &mut sock, &mut pending);
            session_write(&mut s, &mut sock, b"250 ok\r\n");
            (discarded, first)
        });
        let mut sock = TcpStream::connect(addr).unwrap();
        // The attack: a command pipelined in the same packet as STARTTLS.
        sock.write_all(b"STARTTLS\r\nRSET\r\n").unwrap();
        let mut reply = Vec::new();
        let mut b = [0u8; 1];
        while !reply.ends_with(b"\r\n") {
            sock.read_exact(&mut b).unwrap();
            reply.push(b[0]);
        }
        assert!(reply.starts_with(b"220 "));
        let mut c = client(client_config(&pki, &[&rustls::version::TLS13]), sock);
        c.write_all(b"NOOP\r\n").unwrap();
        assert_eq!(read_line(&mut c), "250 ok\r\n");
        let (discarded, first) = server.join().unwrap();
        assert_eq!(discarded, b"RSET\r\n".len());
        assert_eq!(first, "NOOP\r\n", "RSET must not be processed inside TLS");
    }

    #[test]
    fn blocking_starttls_discards_bufreader_contents() {
        use std::io::BufRead;
        let pki = pki();
        let config = ServerConfig::load(&pki.cert, &pki.key, &[] as &[PathBuf]).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (sock, _) = listener.accept().unwrap();
            let mut reader = io::BufReader::new(sock);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, "STARTTLS\r\n");
            reader.get_mut().write_all(b"220 go ahead\r\n").unwrap();
            let (mut tls, discarded) = TlsStream::starttls(config, reader).unwrap();
            let first = read_line(&mut tls);
            tls.write_all(b"250 ok\r\n").unwrap();
            tls.flush().unwrap();
            (discarded, first)
        });
        let mut sock = TcpStream::connect(addr).unwrap();
        sock.write_all(b"STARTTLS\r\nMAIL FROM:<evil@example.com>\r\n")
            .unwrap();
        let mut reply = Vec::new();
        let mut b = [0u8; 1];
        while !reply.ends_with(b"\r\n") {
            sock.read_exact(&mut b).unwrap();
            reply.push(b[0]);
        }
        let mut c = client(client_config(&pki, &[&rustls::version::TLS13]), sock);
        c.write_all(b"EHLO x\r\n").unwrap();
        assert_eq!(read_line(&mut c), "250 ok\r\n");
        let (discarded, first) = server.join().unwrap();
        assert_eq!(discarded, b"MAIL FROM:<evil@example.com>\r\n".len());
        assert_eq!(first, "EHLO x\r\n");
    }

    #[test]
    fn chain_file_with_key_and_certs() {
        let pki = pki();
        let chain = pki.dir.path().join("chain.pem");
        let mut data = std::fs::read(&pki.key).unwrap();
        data.extend(std::fs::read(&pki.cert).unwrap());
        std::fs::write(&chain, data).unwrap();
        // The cert/key pair is ignored (missing here) when chain files are given.
        let missing = pki.dir.path().join("nope.pem");
        ServerConfig::load(&missing, &missing, &[&chain]).unwrap();
    }

    #[test]
    fn load_errors_name_the_file() {
        let pki = pki();
        let d = pki.dir.path();
        let none: &[PathBuf] = &[];

        let missing = d.join("missing.pem");
        match ServerConfig::load(&missing, &pki.key, none) {
            Err(e @ Error::Missing(_)) => assert!(e.to_string().contains("missing.pem")),
            other => panic!("{other:?}"),
        }
        match ServerConfig::load(&pki.cert, &missing, none) {
            Err(Error::Missing(p)) => assert_eq!(p, missing),
            other => panic!("{other:?}"),
        }
        // A directory cannot be read (even by root).
        match ServerConfig::load(d, &pki.key, none) {
            Err(Error::Unreadable(p, _)) => assert_eq!(p, d),
            other => panic!("{other:?}"),
        }
        let garbage = d.join("garbage.pem");
        std::fs::write(&garbage, b"this is not a certificate\n").unwrap();
        match ServerConfig::load(&garbage, &pki.key, none) {
            Err(e @ Error::NotPem(..)) => assert!(e.to_string().contains("garbage.pem")),
            other => panic!("{other:?}"),
        }
        match ServerConfig::load(&pki.cert, &garbage, none) {
            Err(Error::NotPem(p, _)) => assert_eq!(p, garbage),
            other => panic!("{other:?}"),
        }
        let broken = d.join("broken.pem");
        std::fs::write(
            &broken,
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(matches!(
            ServerConfig::load(&broken, &pki.key, none),
            Err(Error::NotPem(..))
        ));
        let other_key = d.join("other-key.pem");
        std::fs::write(&other_key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
        match ServerConfig::load(&pki.cert, &other_key, none) {
            Err(e @ Error::KeyMismatch { .. }) => {
                assert!(e.to_string().contains("does not match"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ServerConfig::load(Path::new(""), Path::new(""), none),
            Err(Error::NoCertificate)
        ));
    }

    #[test]
    fn untrusted_client_fails_handshake() {
        let pki = pki();
        let other = self::pki(); // a different CA
        let config = ServerConfig::load(&pki.cert, &pki.key, &[] as &[PathBuf]).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (sock, _) = listener.accept().unwrap();
            TlsStream::accept(config, sock).map(|_| ())
        });
        let mut c = client(
            client_config(&other, &[&rustls::version::TLS13]),
            TcpStream::connect(addr).unwrap(),
        );
        assert!(
            c.write_all(b"x").and_then(|()| c.flush()).is_err() || c.read(&mut [0u8; 1]).is_err()
        );
        drop(c);
        assert!(server.join().unwrap().is_err());
    }

    #[test]
    fn openssl_names() {
        assert_eq!(
            openssl_tls12_name("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
            "ECDHE-RSA-AES256-GCM-SHA384"
        );
        assert_eq!(
            openssl_tls12_name("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
            "ECDHE-ECDSA-AES128-GCM-SHA256"
        );
        assert_eq!(
            openssl_tls12_name("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
            "ECDHE-RSA-CHACHA20-POLY1305"
        );
        assert_eq!(openssl_tls12_name("odd"), "odd");
    }

    #[test]
    fn handshake_garbage_is_an_error() {
        let pki = pki();
        let config = ServerConfig::load(&pki.cert, &pki.key, &[] as &[PathBuf]).unwrap();
        let mut s = Session::new(config).unwrap();
        let r = s.feed_ciphertext(b"EHLO not tls at all\r\n\r\n\r\n");
        assert!(matches!(r, Err(Error::Tls(_))), "{r:?}");
        let mut out = Vec::new();
        s.take_ciphertext(&mut out); // an alert may be queued; must not panic
    }
}
