//! TLS for every connection pgrepctl makes itself (SQL sessions and the
//! replication client), with libpq's keywords and libpq's meanings:
//! `sslmode` (disable, allow, prefer, require, verify-ca, verify-full),
//! `sslrootcert` (a file, or `system` as in libpq 16), `sslcert`/`sslkey`
//! (a client certificate), `sslcrl` (a file of revocation lists), with
//! `PGSSLMODE`, `PGSSLROOTCERT`, … and `~/.postgresql/` as the defaults.
//!
//! tokio-postgres takes only disable/prefer/require and no file keywords,
//! so [`split`] takes the TLS keywords out of a connection string before
//! tokio-postgres parses the rest: this module is the one place that
//! reads them. Certificates are checked by webpki (rustls'
//! `WebPkiServerVerifier`); the host name by libpq's rules
//! ([`name_matches`]), which differ from webpki's in one case: a
//! certificate with no subject alternative name of the host's kind is
//! matched by its common name.
//!
//! The connector for tokio-postgres ([`Connector`]) is a small impl on
//! tokio-rustls rather than the tokio-postgres-rustls crate: that crate
//! builds rustls with its default crypto (aws-lc-rs, a C and cmake build)
//! where pgrepctl uses ring, and the certificate name must be the
//! `host=` one even when the bytes go to `hostaddr=`, which a per-call
//! connector gets for free.

use crate::error::{Code, Error, Result};
use rustls::DigitallySignedStruct;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use rustls::{CertificateError, RootCertStore};
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// libpq's `sslmode`, all six values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    Disable,
    Allow,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether a connection without TLS is out of the question.
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }
}

/// The TLS keywords pgrepctl reads itself (tokio-postgres never sees them).
pub const KEYWORDS: [&str; 5] = ["sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl"];

/// The TLS keywords of one connection string, with libpq's environment
/// variables for those it does not give.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: SslMode,
    /// A file, or `system`; unset means `~/.postgresql/root.crt`.
    pub rootcert: Option<String>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub crl: Option<PathBuf>,
}

/// Take the TLS keywords out of a conninfo string or URI: the rest (for
/// tokio-postgres, untouched when there were none) and the settings.
pub fn split(conninfo: &str) -> Result<(String, TlsSettings)> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    split_with(conninfo, env)
}

fn split_with(
    conninfo: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(String, TlsSettings)> {
    let is_tls = |k: &str| KEYWORDS.contains(&k);
    let (rest, given) = if let Some((base, query)) = uri_query(conninfo) {
        let (tls, kept): (Vec<&str>, Vec<&str>) = query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .partition(|kv| is_tls(kv.split('=').next().unwrap_or("")));
        let given: Vec<(String, String)> = tls
            .iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_string(), percent_decode(v))
            })
            .collect();
        let rest = match (given.is_empty(), kept.is_empty()) {
            (true, _) => conninfo.to_string(),
            (false, true) => base.to_string(),
            (false, false) => format!("{base}?{}", kept.join("&")),
        };
        (rest, given)
    } else {
        let pairs = super::conninfo::pairs(conninfo);
        let (given, kept): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|(k, _)| is_tls(k));
        let rest = if given.is_empty() {
            conninfo.to_string()
        } else {
            kept.iter()
                .map(|(k, v)| format!("{k}={}", crate::conf::standby::quote_conninfo(v)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        (rest, given)
    };
    let value = |k: &str, var: &str| {
        given
            .iter()
            .rev()
            .find(|(gk, _)| gk == k)
            .map(|(_, v)| v.clone())
            .or_else(|| env(var))
    };
    let rootcert = value("sslrootcert", "PGSSLROOTCERT");
    let mode = match value("sslmode", "PGSSLMODE") {
        Some(m) => SslMode::parse(&m).ok_or_else(|| {
            Error::new(
                Code::InvalidValue,
                format!("invalid sslmode value: \"{m}\""),
            )
            .hint("sslmode takes disable, allow, prefer, require, verify-ca or verify-full")
        })?,
        // libpq 16: sslrootcert=system makes verify-full the default.
        None if rootcert.as_deref() == Some("system") => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    if rootcert.as_deref() == Some("system") && mode != SslMode::VerifyFull {
        return Err(Error::new(
            Code::InvalidValue,
            format!(
                "weak sslmode \"{}\" may not be used with sslrootcert=system (use \"verify-full\")",
                mode.as_str()
            ),
        )
        .hint(
            "the system's roots vouch for names, not for a private CA: use sslmode=verify-full",
        ));
    }
    let settings = TlsSettings {
        mode,
        rootcert,
        cert: value("sslcert", "PGSSLCERT").map(PathBuf::from),
        key: value("sslkey", "PGSSLKEY").map(PathBuf::from),
        crl: value("sslcrl", "PGSSLCRL").map(PathBuf::from),
    };
    Ok((rest, settings))
}

/// A URI's part before `?` and its query, if it is a URI with a query.
fn uri_query(s: &str) -> Option<(&str, &str)> {
    (s.starts_with("postgresql://") || s.starts_with("postgres://"))
        .then(|| s.split_once('?'))
        .flatten()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied(), b.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `~/.postgresql/NAME`, libpq's default for the certificate files.
fn default_file(name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map(|u| u.dir)
        })?;
    Some(home.join(".postgresql").join(name))
}

/// The trust bundle `sslrootcert=system` means: OpenSSL's default file.
fn system_roots() -> PathBuf {
    if let Some(f) = std::env::var_os("SSL_CERT_FILE") {
        return PathBuf::from(f);
    }
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"))
}

fn tls_error(message: String, hint: &str) -> Error {
    Error::new(Code::TlsFailed, message).hint(hint)
}

impl TlsSettings {
    /// The keywords as a conninfo for libpq would carry them (a standby's
    /// `primary_conninfo`): sslmode when not libpq's default, and each
    /// file named, made absolute (the walreceiver runs in the data
    /// directory, not here). Nothing is lost or weakened on the way.
    pub fn keywords(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![];
        if self.mode != SslMode::Prefer {
            out.push(("sslmode", self.mode.as_str().to_string()));
        }
        let absolute = |p: &Path| {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.to_path_buf())
                .display()
                .to_string()
        };
        let path = |p: &Option<PathBuf>| p.as_deref().map(absolute);
        let root = match self.rootcert.as_deref() {
            Some("system") => Some("system".to_string()),
            Some(f) => Some(absolute(Path::new(f))),
            None => None,
        };
        for (k, v) in [
            ("sslrootcert", root),
            ("sslcert", path(&self.cert)),
            ("sslkey", path(&self.key)),
            ("sslcrl", path(&self.crl)),
        ] {
            if let Some(v) = v {
                out.push((k, v));
            }
        }
        out
    }

    /// The rustls configuration these settings make, reading the files
    /// now: a missing root file for verify-*, a client certificate without
    /// its key, a key others can read, or a file that is not PEM fails
    /// before any connection is tried. `None` for `disable`.
    pub fn client_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>> {
        if self.mode == SslMode::Disable {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = self.roots()?;
        let verifier: Arc<dyn ServerCertVerifier> = match roots {
            // libpq: a root file that exists is used whatever the mode, so
            // require (and prefer, allow) with one behave as verify-ca.
            Some(roots) => Arc::new(Verifier {
                webpki: self.webpki(roots, provider.clone())?,
                check_name: self.mode == SslMode::VerifyFull,
            }),
            None => Arc::new(AnyCertificate(provider.clone())),
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::new(Code::Internal, format!("TLS set-up: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match self.client_certificate()? {
            Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
                tls_error(
                    format!("client certificate and key do not go together: {e}"),
                    "give the sslkey that belongs to sslcert",
                )
            })?,
            None => builder.with_no_client_auth(),
        };
        Ok(Some(Arc::new(config)))
    }

    /// Whether the server's certificate will be checked (verify-*, or a
    /// root file present), for messages.
    pub fn root_file(&self) -> Option<PathBuf> {
        match self.rootcert.as_deref() {
            Some("system") => Some(system_roots()),
            Some(f) => Some(PathBuf::from(f)),
            None => default_file("root.crt"),
        }
    }

    fn roots(&self) -> Result<Option<RootCertStore>> {
        let verify = matches!(self.mode, SslMode::VerifyCa | SslMode::VerifyFull);
        let file = self.root_file().filter(|f| f.exists());
        let Some(file) = file else {
            if !verify {
                return Ok(None);
            }
            let shown = self
                .root_file()
                .map(|f| f.display().to_string())
                .unwrap_or_else(|| "~/.postgresql/root.crt".into());
            return Err(tls_error(
                format!("root certificate file \"{shown}\" does not exist"),
                "either provide the file (sslrootcert=FILE, the CA certificate that signed the server's), use the system's trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification",
            ));
        };
        let certs = pem_certs(&file)?;
        let mut store = RootCertStore::empty();
        let (added, _) = store.add_parsable_certificates(certs);
        if added == 0 {
            return Err(tls_error(
                format!(
                    "could not read root certificate file \"{}\": no certificate in it",
                    file.display()
                ),
                "sslrootcert must name a PEM file with the CA certificate (-----BEGIN CERTIFICATE-----)",
            ));
        }
        Ok(Some(store))
    }

    fn webpki(
        &self,
        roots: RootCertStore,
        provider: Arc<CryptoProvider>,
    ) -> Result<Arc<WebPkiServerVerifier>> {
        let mut builder = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider);
        // libpq ignores a CRL file that is not there, and checks every
        // certificate of the chain when there is one (CRL_CHECK_ALL).
        let crl = self
            .crl
            .clone()
            .or_else(|| default_file("root.crl"))
            .filter(|f| f.exists());
        if let Some(crl) = crl {
            let crls = CertificateRevocationListDer::pem_file_iter(&crl)
                .and_then(|i| i.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| {
                    tls_error(
                        format!("could not read certificate revocation list file \"{}\": {e}", crl.display()),
                        "sslcrl must name a PEM file of revocation lists (-----BEGIN X509 CRL-----)",
                    )
                })?;
            builder = builder.with_crls(crls);
        }
        builder.build().map_err(|e| {
            tls_error(
                format!("cannot check server certificates: {e}"),
                "check the files sslrootcert and sslcrl name",
            )
        })
    }

    /// sslcert (default ~/.postgresql/postgresql.crt) when it exists, with
    /// its key; libpq skips a certificate file that is not there.
    fn client_certificate(
        &self,
    ) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>> {
        let Some(cert) = self
            .cert
            .clone()
            .or_else(|| default_file("postgresql.crt"))
            .filter(|f| f.exists())
        else {
            return Ok(None);
        };
        let key = self
            .key
            .clone()
            .or_else(|| default_file("postgresql.key"))
            .unwrap_or_default();
        if !key.exists() {
            return Err(tls_error(
                format!(
                    "certificate present, but not private key file \"{}\"",
                    key.display()
                ),
                "give sslkey=FILE with the client certificate's key, or leave sslcert out",
            ));
        }
        key_permissions(&key)?;
        let chain = pem_certs(&cert)?;
        let key_der = PrivateKeyDer::from_pem_file(&key).map_err(|e| {
            tls_error(
                format!("could not load private key file \"{}\": {e}", key.display()),
                "sslkey must name a PEM private key (PKCS#8, PKCS#1 or SEC1)",
            )
        })?;
        Ok(Some((chain, key_der)))
    }
}

/// libpq refuses a key others may read: 0600 or less for the owner's
/// own file, 0640 or less for one owned by root.
fn key_permissions(key: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(key).map_err(|e| {
        tls_error(
            format!("could not read private key file \"{}\": {e}", key.display()),
            "check the sslkey path and its permissions",
        )
    })?;
    let limit = if meta.uid() == 0 { 0o640 } else { 0o600 };
    if meta.mode() & 0o777 & !limit != 0 {
        return Err(tls_error(
            format!(
                "private key file \"{}\" has group or world access; file must have permissions u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or less if owned by root",
                key.display()
            ),
            &format!("chmod 0600 {}", key.display()),
        ));
    }
    Ok(())
}

fn pem_certs(file: &Path) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(file)
        .and_then(|i| i.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            tls_error(
                format!(
                    "could not read certificate file \"{}\": {e}",
                    file.display()
                ),
                "give a PEM file (-----BEGIN CERTIFICATE-----) readable by this user",
            )
        })
}

/// The name sent for SNI and checked against the certificate: an address
/// as an address, else a DNS name.
pub fn server_name(host: &str) -> std::result::Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))
}

/// Whether `cert` is valid for `host` by libpq's rules: the subject
/// alternative names of the host's kind (dNSName for a name, with a
/// leading `*.` wildcard for one label; iPAddress for an address, as
/// bytes); the common name only when there is no SAN of that kind.
/// The error is libpq's message: the first name examined (SANs before
/// the common name), and how many others.
pub fn name_matches(cert: &[u8], host: &str) -> std::result::Result<(), String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| format!("could not parse the server certificate: {e}"))?;
    let ip: Option<IpAddr> = host.parse().ok();
    let mut names = vec![];
    let mut of_kind = false;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match (n, ip) {
                (GeneralName::DNSName(d), None) => {
                    of_kind = true;
                    if wildcard_match(d, host) {
                        return Ok(());
                    }
                    names.push(d.to_string());
                }
                (GeneralName::IPAddress(b), Some(ip)) => {
                    of_kind = true;
                    let presented = crate::pg::cert_info::ip_of(b);
                    if presented == Some(ip) {
                        return Ok(());
                    }
                    names.push(presented.map(|a| a.to_string()).unwrap_or_default());
                }
                (GeneralName::DNSName(d), Some(_)) => names.push(d.to_string()),
                (GeneralName::IPAddress(b), None) => names.push(
                    crate::pg::cert_info::ip_of(b)
                        .map(|a| a.to_string())
                        .unwrap_or_default(),
                ),
                _ => {}
            }
        }
    }
    if !of_kind {
        for cn in cert.subject().iter_common_name() {
            if let Ok(cn) = cn.as_str() {
                if wildcard_match(cn, host) {
                    return Ok(());
                }
                names.push(cn.to_string());
            }
        }
    }
    Err(match names.len() {
        0 => "could not get server's host name from server certificate".to_string(),
        1 => format!(
            "server certificate for \"{}\" does not match host name \"{host}\"",
            names[0]
        ),
        n => format!(
            "server certificate for \"{}\" (and {} other name{}) does not match host name \"{host}\"",
            names[0],
            n - 1,
            if n == 2 { "" } else { "s" }
        ),
    })
}

/// libpq's wildcard rule: `*.` as the first label matches one label (no
/// dot) of the host; otherwise equal, ignoring case.
fn wildcard_match(pattern: &str, host: &str) -> bool {
    if let Some(suffix) = pattern.strip_prefix('*') {
        if suffix.starts_with('.') && host.len() > suffix.len() {
            let (first, rest) = host.split_at(host.len() - suffix.len());
            return rest.eq_ignore_ascii_case(suffix) && !first.contains('.');
        }
    }
    pattern.eq_ignore_ascii_case(host)
}

/// Checks the chain with webpki; the name by [`name_matches`] for
/// verify-full, not at all for verify-ca (webpki's name error is the
/// last check it makes, so ignoring it leaves the chain checked).
#[derive(Debug)]
struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Ok(v) if !self.check_name => Ok(v),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            Ok(_)
            | Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => {
                let host = match server_name {
                    ServerName::DnsName(d) => d.as_ref().to_string(),
                    ServerName::IpAddress(a) => IpAddr::from(*a).to_string(),
                    _ => String::new(),
                };
                name_matches(end_entity, &host)
                    .map(|()| ServerCertVerified::assertion())
                    .map_err(|m| {
                        rustls::Error::Other(rustls::OtherError(Arc::new(NameMismatch(m))))
                    })
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// libpq's words for a certificate that does not name the host.
#[derive(Debug)]
struct NameMismatch(String);

impl std::fmt::Display for NameMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NameMismatch {}

/// Accepts any certificate, and checks the handshake signatures with it:
/// libpq's prefer/require without a root file (encrypted, not
/// authenticated).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A failed handshake in libpq-like words, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub hint: &'static str,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The rustls error somewhere in `e`'s chain (tokio-rustls wraps it in
/// an I/O error), told as libpq would tell it.
pub fn failure(e: &(dyn std::error::Error + 'static)) -> Option<Failure> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        let found = c.downcast_ref::<rustls::Error>().or_else(|| {
            c.downcast_ref::<io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|i| i.downcast_ref::<rustls::Error>())
        });
        if let Some(r) = found {
            return Some(describe(r));
        }
        cur = c.source();
    }
    None
}

const HINT_CA: &str = "give sslrootcert=FILE with the CA certificate that signed the server's certificate (libpq's default is ~/.postgresql/root.crt)";
const HINT_NAME: &str = "connect by a name or address the certificate holds (its subject alternative names), or reissue the server certificate for this one; sslmode=verify-ca checks the chain without the name";

fn describe(e: &rustls::Error) -> Failure {
    use CertificateError as C;
    let (message, hint): (String, &'static str) = match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => ("certificate signed by an unknown authority".into(), HINT_CA),
            C::BadSignature => ("certificate verify failed: bad signature".into(), HINT_CA),
            C::Expired | C::ExpiredContext { .. } => (
                "server certificate has expired".into(),
                "renew the server's certificate (ssl_cert_file) and reload it",
            ),
            C::NotValidYet | C::NotValidYetContext { .. } => (
                "server certificate is not yet valid".into(),
                "check the clocks of both hosts, or the certificate's dates",
            ),
            C::Revoked => (
                "server certificate has been revoked".into(),
                "the CRL in sslcrl revokes it: issue the server a new certificate",
            ),
            C::UnknownRevocationStatus => (
                "unable to get certificate CRL: sslcrl has no revocation list from the certificate's issuer".into(),
                "add the issuing CA's current CRL to the sslcrl file",
            ),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                ("server certificate does not match host name".into(), HINT_NAME)
            }
            other => (format!("certificate verify failed: {other:?}"), HINT_CA),
        },
        rustls::Error::Other(o) if o.0.downcast_ref::<NameMismatch>().is_some() => {
            (o.0.to_string(), HINT_NAME)
        }
        rustls::Error::AlertReceived(a) => (
            format!("SSL error: the server sent alert {a:?}"),
            "the server refused the handshake: if it asks for a client certificate (clientcert in pg_hba.conf, ssl_ca_file), give sslcert and sslkey; else see its log",
        ),
        other => (
            format!("SSL error: {other}"),
            "check the server's ssl settings and its log",
        ),
    };
    Failure { message, hint }
}

/// tokio-postgres's TLS hook for one connection: the configuration and
/// the name to check (`host=`, also when the bytes go to `hostaddr=`).
pub struct Connector {
    pub config: Arc<rustls::ClientConfig>,
    pub name: ServerName<'static>,
}

impl<S> tokio_postgres::tls::TlsConnect<S> for Connector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let s = tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await?;
            Ok(Stream(s))
        })
    }
}

/// An encrypted session stream. It gives tokio-postgres the
/// `tls-server-end-point` channel binding data (RFC 5929), so SCRAM runs
/// as SCRAM-SHA-256-PLUS when the server offers it (PostgreSQL 11+) and
/// `channel_binding=require` works as in libpq 13+.
pub struct Stream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl<S> Stream<S> {
    /// The server's own certificate (DER) as it presented it in the
    /// handshake: `check` reports its expiry from it, with no right to
    /// read the server's files needed.
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        let (_, session) = self.0.get_ref();
        session
            .peer_certificates()?
            .first()
            .map(|c| c.as_ref().to_vec())
    }
}

/// A [`Connector`] that keeps the server's certificate from the handshake
/// in `seen`: the stream itself goes into tokio-postgres's connection,
/// out of the caller's reach.
pub struct Recording {
    pub inner: Connector,
    pub seen: Arc<std::sync::Mutex<Option<Vec<u8>>>>,
}

impl<S> tokio_postgres::tls::TlsConnect<S> for Recording
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let seen = self.seen;
        let inner = self.inner.connect(stream);
        Box::pin(async move {
            let s = inner.await?;
            if let Ok(mut slot) = seen.lock() {
                *slot = s.peer_certificate();
            }
            Ok(s)
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for Stream<S> {
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        match self
            .0
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
        {
            Some(cert) => match server_end_point(cert) {
                Some(hash) => tokio_postgres::tls::ChannelBinding::tls_server_end_point(hash),
                None => tokio_postgres::tls::ChannelBinding::none(),
            },
            None => tokio_postgres::tls::ChannelBinding::none(),
        }
    }
}

/// RFC 5929's `tls-server-end-point` data, what the server hashes for
/// SCRAM-SHA-256-PLUS (be_tls_get_certificate_hash): the certificate's
/// DER under its signature's hash, SHA-256 for MD5 and SHA-1 (and for
/// any other algorithm; PostgreSQL's own certificates, and pgrepctl's,
/// are signed with SHA-256, SHA-384 or SHA-512). None for a certificate
/// that does not parse.
pub fn server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let oid = parsed.signature_algorithm.algorithm.to_id_string();
    Some(match oid.as_str() {
        // sha384WithRSAEncryption, ecdsa-with-SHA384
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => sha2::Sha384::digest(cert).to_vec(),
        // sha512WithRSAEncryption, ecdsa-with-SHA512
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => sha2::Sha512::digest(cert).to_vec(),
        _ => sha2::Sha256::digest(cert).to_vec(),
    })
}

#[cfg(test)]
mod tests;
