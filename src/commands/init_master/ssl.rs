//! `--ssl`: TLS for the standbys' connections. A server that has no
//! certificate gets a small private CA and a server certificate for the
//! `--ssl-name` values (rcgen); one that has a certificate keeps it, and
//! it is checked (expiry, names), never replaced silently.
//!
//! Where the files go: pg_basebackup copies the data directory to every
//! standby, so the CA's private key never goes there (the configuration
//! directory when it is outside the data directory, as Debian's
//! /etc/postgresql/V/C, or `--ssl-dir`). The server's certificate and key
//! go beside the configuration that names them: in the data directory
//! when postgresql.conf is there (a standby's copy then starts with the
//! same ssl settings and finds their files), else in the configuration
//! directory.

use super::inspect::Facts;
use crate::error::{Code, Error, Result};
use crate::pg::cert_info::CertInfo;
use crate::plan::{Action, Applied, Cx, SyncUndo};
use crate::report::{Change, Kind};
use futures_util::future::LocalBoxFuture;
use std::path::{Path, PathBuf};

pub const CA_CERT: &str = "pgrepctl-ca.crt";
pub const CA_KEY: &str = "pgrepctl-ca.key";
pub const SERVER_CERT: &str = "pgrepctl-server.crt";
pub const SERVER_KEY: &str = "pgrepctl-server.key";

/// The certificates pgrepctl issues are valid this long (the server's is
/// reissued by the same CA with `--ssl-issue` once it expires within
/// check's warning window, see [`crate::pg::cert_info::EXPIRY_WARN_DAYS`]).
const CA_DAYS: u64 = 3650;
pub const SERVER_DAYS: u64 = 1825;

/// `--ssl-name`, `--ssl-dir`, `--ssl-issue`, checked.
#[derive(Debug, Clone, Default)]
pub struct SslSetup {
    pub names: Vec<String>,
    pub dir: Option<PathBuf>,
    pub issue: bool,
}

impl SslSetup {
    pub fn from_flags(names: Vec<String>, dir: Option<PathBuf>, issue: bool) -> Result<SslSetup> {
        for n in &names {
            check_name(n)?;
        }
        let dir = dir.map(|d| crate::fsutil::absolute(&d)).transpose()?;
        Ok(SslSetup { names, dir, issue })
    }
}

/// A DNS name (letters, digits, hyphens, dots; a leading `*.` wildcard)
/// or an IP address: what a certificate's subject alternative names hold.
fn check_name(n: &str) -> Result<()> {
    if n.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let body = n.strip_prefix("*.").unwrap_or(n);
    let ok = !body.is_empty()
        && body.len() <= 253
        && body.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            Code::InvalidValue,
            format!("--ssl-name {n:?} is neither a DNS name nor an IP address"),
        )
        .hint("give the name or address standbys put in host= of --primary, e.g. --ssl-name db1.example.org --ssl-name 10.0.0.1"))
    }
}

/// What the server's current certificate file holds.
#[derive(Debug, Clone)]
pub enum CertState {
    Missing,
    Unreadable(String),
    Parsed(Box<CertInfo>),
}

/// The server's TLS files and where pgrepctl's would go.
#[derive(Debug, Clone)]
pub struct SslFacts {
    /// `ssl` is on now.
    pub on: bool,
    /// ssl_cert_file and ssl_key_file, resolved against the data directory.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub cert: CertState,
    pub key_exists: bool,
    /// The server's OS user (the data directory's owner), for its files.
    pub server_owner: Option<(u32, u32)>,
    /// Where pgrepctl's server certificate and key go.
    pub server_dir: PathBuf,
    /// Where pgrepctl's CA goes; None when no place outside the data
    /// directory is known (then --ssl-dir is needed to issue).
    pub ca_dir: Option<PathBuf>,
    /// Which of pgrepctl's four files exist already.
    pub present: Vec<PathBuf>,
    /// pgrepctl's CA from an earlier run (certificate, key), reused so
    /// that standbys keep trusting it.
    pub ca: Option<(String, String)>,
    /// pgrepctl's server certificate and key as they are now.
    pub server: Option<(String, String)>,
}

/// Read the files the server's ssl settings name, and decide where
/// pgrepctl's own would go. Read-only.
pub fn inspect(setup: &SslSetup, facts: &Facts) -> SslFacts {
    let live = |n: &str| {
        facts
            .live
            .get(n)
            .map(|l| l.setting.clone())
            .unwrap_or_default()
    };
    let resolve = |v: String, default: &str| {
        let v = if v.is_empty() { default.to_string() } else { v };
        facts.data_directory.join(v)
    };
    let cert_file = resolve(live("ssl_cert_file"), "server.crt");
    let key_file = resolve(live("ssl_key_file"), "server.key");
    let cert = match std::fs::read(&cert_file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => CertState::Missing,
        Err(e) => CertState::Unreadable(e.to_string()),
        Ok(bytes) => match CertInfo::parse(&bytes) {
            Ok(c) => CertState::Parsed(Box::new(c)),
            Err(e) => CertState::Unreadable(e.message),
        },
    };
    let config_dir = facts.config_file.parent().map(Path::to_path_buf);
    let outside = config_dir
        .clone()
        .filter(|d| !inside(d, &facts.data_directory));
    let server_dir = outside
        .clone()
        .unwrap_or_else(|| facts.data_directory.clone());
    let ca_dir = setup.dir.clone().or(outside);
    let mut present = vec![];
    for p in [server_dir.join(SERVER_CERT), server_dir.join(SERVER_KEY)]
        .into_iter()
        .chain(
            ca_dir
                .iter()
                .flat_map(|d| [d.join(CA_CERT), d.join(CA_KEY)]),
        )
    {
        if p.exists() {
            present.push(p);
        }
    }
    let pair = |c: PathBuf, k: PathBuf| {
        Some((
            std::fs::read_to_string(c).ok()?,
            std::fs::read_to_string(k).ok()?,
        ))
    };
    SslFacts {
        ca: ca_dir
            .as_ref()
            .and_then(|d| pair(d.join(CA_CERT), d.join(CA_KEY))),
        server: pair(server_dir.join(SERVER_CERT), server_dir.join(SERVER_KEY)),
        on: matches!(live("ssl").as_str(), "on" | "true" | "yes" | "1"),
        key_exists: key_file.exists(),
        cert_file,
        key_file,
        cert,
        server_owner: crate::tools::RunAs::owner_of(&facts.data_directory).ids,
        server_dir,
        ca_dir,
        present,
    }
}

/// Whether `p` is `dir` or below it (both absolute, as the server gives them).
pub fn inside(p: &Path, dir: &Path) -> bool {
    let canon = |x: &Path| std::fs::canonicalize(x).unwrap_or_else(|_| x.to_path_buf());
    canon(p).starts_with(canon(dir))
}

/// A file that does not exist yet, created with its mode and owner; the
/// undo removes it. Keys are never shown in a diff.
#[derive(Debug, Clone)]
pub struct CreateFile {
    pub path: PathBuf,
    pub contents: String,
    pub mode: u32,
    pub owner: Option<(u32, u32)>,
    pub summary: String,
    pub secret: bool,
}

impl<E: 'static> Action<E> for CreateFile {
    fn describe(&self) -> Option<Change> {
        Some(Change {
            kind: Kind::File,
            path: Some(self.path.clone()),
            summary: self.summary.clone(),
            diff: None,
        })
    }

    fn preflight(&self) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(Error::new(
                Code::FileNotWritable,
                format!("directory {} does not exist", dir.display()),
            )
            .hint("create it (mode 0700, owned by root) or give another --ssl-dir"));
        }
        if nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_err() {
            return Err(Error::new(
                Code::FileNotWritable,
                format!("directory {} is not writable by this user", dir.display()),
            )
            .hint("run pgrepctl as root or as the directory's owner"));
        }
        Ok(())
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<E>) -> LocalBoxFuture<'s, Result<Applied<E>>> {
        let r = self.create(cx);
        Box::pin(async move { r })
    }
}

impl CreateFile {
    fn create<E: 'static>(&self, cx: &mut Cx<E>) -> Result<Applied<E>> {
        if self.path.exists() {
            return Err(Error::new(
                Code::Io,
                format!(
                    "{} appeared while pgrepctl was running",
                    self.path.display()
                ),
            )
            .hint("rerun pgrepctl"));
        }
        crate::fsutil::create_owned(&self.path, self.contents.as_bytes(), self.mode, self.owner)?;
        cx.printer.info(format!("wrote {}", self.path.display()));
        let path = self.path.clone();
        Ok(Applied::changed().undo(SyncUndo(move |_: &mut Cx<E>| {
            std::fs::remove_file(&path)
                .map_err(|e| Error::io(format!("cannot remove {}", path.display()), e))
        })))
    }
}

/// A new CA and a server certificate it signed, in PEM.
pub struct Issued {
    pub ca_cert: String,
    pub ca_key: String,
    pub server_cert: String,
    pub server_key: String,
}

/// Issue a CA ("pgrepctl CA for NAME"), or take `ca` (certificate and
/// key, PEM) from an earlier run, and a server certificate it signs whose
/// subject alternative names are `names` (ECDSA P-256, SHA-256).
pub fn issue(names: &[String], ca: Option<&(String, String)>) -> Result<Issued> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let err =
        |e: rcgen::Error| Error::new(Code::Internal, format!("cannot issue a certificate: {e}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let from = epoch + now - std::time::Duration::from_secs(3600);
    let days = |d: u64| epoch + now + std::time::Duration::from_secs(d * 86_400);
    let first = names.first().cloned().unwrap_or_default();

    let (ca_cert, ca_key, issuer) = match ca {
        Some((cert, key)) => {
            let k = KeyPair::from_pem(key).map_err(err)?;
            let issuer = Issuer::from_ca_cert_pem(cert, k).map_err(err)?;
            (cert.clone(), key.clone(), issuer)
        }
        None => {
            let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
            ca.distinguished_name
                .push(DnType::CommonName, format!("pgrepctl CA for {first}"));
            ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            ca.not_before = from;
            ca.not_after = days(CA_DAYS);
            let ca_key = KeyPair::generate().map_err(err)?;
            let pem = ca.self_signed(&ca_key).map_err(err)?.pem();
            let key = ca_key.serialize_pem();
            (pem, key, Issuer::new(ca, ca_key))
        }
    };

    let mut server = CertificateParams::new(names.to_vec()).map_err(err)?;
    server.distinguished_name.push(DnType::CommonName, first);
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.not_before = from;
    server.not_after = days(SERVER_DAYS);
    let server_key = KeyPair::generate().map_err(err)?;
    let server_cert = server.signed_by(&server_key, &issuer).map_err(err)?;
    Ok(Issued {
        ca_cert,
        ca_key,
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
    })
}
