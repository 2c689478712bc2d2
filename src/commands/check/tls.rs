//! The server certificate of each node with `ssl = on`, for its days to
//! expiry. Where it comes from, in order: the certificate the server
//! presented to check's own session when that session is encrypted (no
//! right on the server needed); else the file `ssl_cert_file` names, read
//! with `pg_read_binary_file` when the role may (a relative name is
//! relative to the data directory, where the backend runs); else it is
//! unknown, which is said at -v and is no failure: a monitoring role over
//! a socket is the common case.

use crate::pg::cert_info::CertInfo;
use crate::pg::version::Version;
use serde::Deserialize;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_postgres::{Client, SimpleQueryMessage};

/// Where a certificate was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertSource {
    /// The TLS handshake of check's own session.
    Handshake,
    /// `ssl_cert_file`, read with `pg_read_binary_file`.
    File,
}

impl CertSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CertSource::Handshake => "handshake",
            CertSource::File => "file",
        }
    }
}

/// What check learnt of a node's server certificate.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum CertFacts {
    /// `ssl` is off: the node has no certificate in use.
    #[default]
    Off,
    Known {
        source: CertSource,
        subject: String,
        /// notAfter, seconds since the Unix epoch.
        not_after: i64,
        /// notAfter minus the time it was read (negative: expired).
        seconds_left: i64,
    },
    /// `ssl` is on but the certificate could not be read: why.
    Unknown(String),
}

/// What the facts query tells about the role's right to read
/// `ssl_cert_file` (read by name from its JSON object).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct FileAccess {
    #[serde(default)]
    pub ssl: bool,
    pub ssl_cert_file: Option<String>,
    #[serde(default)]
    pub superuser: bool,
    /// Member of pg_read_server_files (null on 10, where it does not exist).
    pub read_server_files: Option<bool>,
    /// EXECUTE on pg_read_binary_file(text).
    #[serde(default)]
    pub read_binary_file: bool,
}

/// The facts query's part for [`FileAccess`]: every expression is open
/// to any role (`ssl` and `ssl_cert_file` are not superuser-only).
pub const ACCESS_SQL: &str = "'ssl', current_setting('ssl') = 'on',
  'ssl_cert_file', current_setting('ssl_cert_file'),
  'superuser', (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
  'read_server_files', (SELECT pg_has_role(oid, 'USAGE') FROM pg_roles WHERE rolname = 'pg_read_server_files'),
  'read_binary_file', has_function_privilege('pg_catalog.pg_read_binary_file(text)', 'EXECUTE'),";

/// Whether the role may read `ssl_cert_file` with pg_read_binary_file,
/// or why not: asked before the query so that a monitoring role does not
/// leave an ERROR in the server's log at every check. `data_directory`
/// is the server's, when the role may see it.
pub fn file_readable(
    version_num: u32,
    a: &FileAccess,
    data_directory: Option<&str>,
) -> Result<(), String> {
    let Some(file) = a.ssl_cert_file.as_deref().filter(|f| !f.is_empty()) else {
        return Err("ssl_cert_file is not set".into());
    };
    let in_data_dir = !file.starts_with('/')
        || data_directory.is_some_and(|d| {
            !d.is_empty() && file.starts_with(&format!("{}/", d.trim_end_matches('/')))
        });
    if Version::of(version_num).reads_any_server_file() {
        if !a.superuser && !a.read_binary_file {
            return Err("the role may not call pg_read_binary_file: connect over TLS (sslmode=require) so the server shows its certificate, or GRANT EXECUTE ON FUNCTION pg_read_binary_file(text) and pg_read_server_files to it".into());
        }
        if !a.superuser && a.read_server_files != Some(true) && !in_data_dir {
            return Err(format!(
                "{file} is outside the data directory and the role is not a member of pg_read_server_files: connect over TLS (sslmode=require) so the server shows its certificate"
            ));
        }
    } else {
        if !a.superuser {
            return Err("on PostgreSQL 10 only a superuser may read files: connect over TLS (sslmode=require) so the server shows its certificate".into());
        }
        if !in_data_dir {
            return Err(format!(
                "PostgreSQL 10 reads no file outside the data directory ({file}): connect over TLS (sslmode=require) so the server shows its certificate"
            ));
        }
    }
    Ok(())
}

/// The node's certificate facts: from `handshake` (check's own session
/// was encrypted), else from the file when readable, else unknown.
pub async fn certificate(
    c: &Client,
    version_num: u32,
    access: &FileAccess,
    data_directory: Option<&str>,
    handshake: Option<Vec<u8>>,
) -> CertFacts {
    if !access.ssl {
        return CertFacts::Off;
    }
    let (der, source) = match handshake {
        Some(der) => (der, CertSource::Handshake),
        None => {
            if let Err(why) = file_readable(version_num, access, data_directory) {
                return CertFacts::Unknown(why);
            }
            match read_file(c).await {
                Ok(bytes) => (bytes, CertSource::File),
                Err(why) => return CertFacts::Unknown(why),
            }
        }
    };
    known(&der, source, SystemTime::now())
}

/// The facts of certificate bytes (PEM or DER) read at `now`.
pub fn known(bytes: &[u8], source: CertSource, now: SystemTime) -> CertFacts {
    match CertInfo::parse(bytes) {
        Ok(info) => {
            let now = now
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            CertFacts::Known {
                source,
                subject: info.subject,
                not_after: info.not_after,
                seconds_left: info.not_after - now,
            }
        }
        Err(e) => CertFacts::Unknown(format!("{} ({})", e.message, source.as_str())),
    }
}

/// `ssl_cert_file`'s bytes (hex over the simple protocol, so a DER file
/// survives the text encoding).
async fn read_file(c: &Client) -> Result<Vec<u8>, String> {
    let q = "SELECT encode(pg_read_binary_file(current_setting('ssl_cert_file')), 'hex')";
    let msgs = c.simple_query(q).await.map_err(|e| {
        e.as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| e.to_string())
    })?;
    let hex = msgs
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .ok_or("ssl_cert_file could not be read")?;
    from_hex(hex.trim()).ok_or_else(|| "ssl_cert_file came back garbled".into())
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(superuser: bool, exec: bool, files: Option<bool>, file: &str) -> FileAccess {
        FileAccess {
            ssl: true,
            ssl_cert_file: Some(file.into()),
            superuser,
            read_server_files: files,
            read_binary_file: exec,
        }
    }

    #[test]
    fn who_may_read_the_certificate_file() {
        let data = Some("/var/lib/pg/data");
        let ok = |v, a: &FileAccess| file_readable(v, a, data).is_ok();
        // 11+: a superuser reads anything.
        assert!(ok(
            150000,
            &access(true, true, Some(true), "/etc/ssl/s.pem")
        ));
        // EXECUTE alone: files in the data directory only.
        assert!(ok(150000, &access(false, true, Some(false), "server.crt")));
        assert!(ok(
            150000,
            &access(false, true, Some(false), "/var/lib/pg/data/server.crt")
        ));
        assert!(!ok(
            150000,
            &access(false, true, Some(false), "/etc/ssl/s.pem")
        ));
        assert!(ok(
            150000,
            &access(false, true, Some(true), "/etc/ssl/s.pem")
        ));
        // pg_read_server_files without EXECUTE: no.
        let e = file_readable(
            150000,
            &access(false, false, Some(true), "server.crt"),
            data,
        );
        assert!(e.unwrap_err().contains("pg_read_binary_file"));
        // 10: a superuser, and only under the data directory.
        assert!(ok(100000, &access(true, true, None, "server.crt")));
        assert!(!ok(100000, &access(true, true, None, "/etc/ssl/s.pem")));
        assert!(!ok(100000, &access(false, true, None, "server.crt")));
        // The data directory hidden: an absolute name is not known to be in it.
        assert!(
            file_readable(
                150000,
                &access(false, true, Some(false), "/var/lib/pg/data/x"),
                None
            )
            .is_err()
        );
        assert!(file_readable(150000, &access(true, true, None, ""), data).is_err());
    }

    #[test]
    fn hex_and_expiry() {
        assert_eq!(from_hex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["db1".to_string()]).unwrap();
        p.not_after = rcgen::date_time_ymd(2030, 1, 1);
        let pem = p.self_signed(&key).unwrap().pem();
        let now = UNIX_EPOCH + std::time::Duration::from_secs(1_893_456_000 - 86_400);
        match known(pem.as_bytes(), CertSource::File, now) {
            CertFacts::Known {
                seconds_left,
                not_after,
                ..
            } => assert_eq!((seconds_left, not_after), (86_400, 1_893_456_000)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            known(b"junk", CertSource::Handshake, now),
            CertFacts::Unknown(_)
        ));
    }
}
