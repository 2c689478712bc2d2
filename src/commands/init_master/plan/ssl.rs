//! `--ssl`, decided: keep and check the server's certificate, or issue
//! pgrepctl's own CA and server certificate (file steps and the ssl
//! settings), and what to tell the user about the CA.

use super::Plan;
use crate::commands::init_master::Settings;
use crate::commands::init_master::inspect::Facts;
use crate::commands::init_master::ssl::{
    CA_CERT, CA_KEY, CertState, CreateFile, Issued, SERVER_CERT, SERVER_KEY, SslFacts, inside,
};
use crate::error::{Code, Error, Result};
use crate::pg::cert_info::{CertInfo, EXPIRY_CRIT_DAYS, EXPIRY_WARN_DAYS};
use crate::plan::file::EditFile;
use std::path::{Path, PathBuf};

/// The ssl settings to reach, and what the run reports about TLS.
#[derive(Debug, Clone, Default)]
pub struct SslPlan {
    /// (setting, value): `ssl` is "on", the file settings a path.
    pub settings: Vec<(&'static str, String)>,
    /// The `ssl` detail of the report.
    pub report: serde_json::Value,
    /// The text after the changes: where the CA is and how to copy it.
    pub epilogue: Option<String>,
    /// New certificate files the server must reload, settings or not.
    pub reload: bool,
}

/// Decide: keep the server's certificate, or issue one (rcgen; the keys
/// are made here, so a dry run shows the same steps with other keys).
/// `--ssl-issue` on pgrepctl's own certificate that no longer suits
/// (expired, expiring within check's warning window, a name added)
/// issues a new one from the same CA.
pub fn plan_ssl(settings: &Settings, facts: &Facts, plan: &mut Plan) -> Result<Option<SslPlan>> {
    let Some(f) = facts.ssl.as_ref().filter(|_| settings.ssl) else {
        return Ok(None);
    };
    let names = &settings.ssl_setup.names;
    let ours = f.cert_file == f.server_dir.join(SERVER_CERT);
    let existing = f.on || !matches!(f.cert, CertState::Missing);
    if existing && !settings.ssl_setup.issue {
        let kept = keep(f, names, ours)?;
        if let Some(w) = expiring_warning(f, ours) {
            plan.warnings.push(w);
        }
        if names.is_empty() {
            plan.warnings.push(format!(
                "no --ssl-name given: the names in {} ({}) were not checked against the ones standbys connect by; give --ssl-name for each",
                f.cert_file.display(),
                kept.report["names"]
                    .as_array()
                    .map(|n| n.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            ));
        }
        return Ok(Some(kept));
    }
    let mut why = None;
    if existing && ours {
        why = reissue_reason(f, names);
        if let (None, Ok(kept)) = (&why, keep(f, names, ours)) {
            return Ok(Some(kept));
        }
    }
    if names.is_empty() {
        return Err(Error::new(
            Code::Usage,
            format!(
                "--ssl needs --ssl-name: pgrepctl issues the server certificate here (ssl_cert_file is {}), and it must hold the names standbys connect by",
                f.cert_file.display()
            ),
        )
        .hint("add one --ssl-name per name or address in the standbys' --primary host=, e.g. --ssl --ssl-name db1.example.org --ssl-name 10.0.0.1"));
    }
    let ca_dir = ca_dir(f, &facts.data_directory)?;
    if let Some(p) = f.present.iter().find(|p| !replaced(f, ours, &ca_dir, p)) {
        return Err(Error::new(
            Code::CertificateUnsuitable,
            format!(
                "{} exists, but the server does not use it (ssl_cert_file is {})",
                p.display(),
                f.cert_file.display()
            ),
        )
        .hint("pgrepctl never overwrites certificate files: move pgrepctl-ca.* and pgrepctl-server.* away (or point ssl_cert_file and ssl_key_file at them yourself) and rerun"));
    }
    if let (Some(why), None) = (why.as_deref().filter(|_| existing && ours), &f.ca) {
        return Err(ca_missing(&f.cert_file, why, &ca_dir));
    }
    let made = crate::commands::init_master::ssl::issue(names, f.ca.as_ref())?;
    let to = Target {
        ca_dir: &ca_dir,
        data_directory: &facts.data_directory,
        names,
        why: why.as_deref(),
    };
    Ok(Some(issue_steps(f, &to, made, plan)))
}

/// pgrepctl's certificate needs reissuing, and its CA is not where it
/// was made: a new CA would break every standby that verifies with the
/// old one, so none is made unasked.
fn ca_missing(cert: &std::path::Path, why: &str, ca_dir: &std::path::Path) -> Error {
    Error::new(
        Code::CertificateUnsuitable,
        format!(
            "{} needs reissuing ({why}), but the CA that issued it ({CA_CERT} and {CA_KEY}) is not in {}: a new CA would break every standby that verifies with the old one",
            cert.display(),
            ca_dir.display()
        ),
    )
    .hint(format!(
        "put the CA's two files back in {} and rerun; or, to start over with a new CA, move {SERVER_CERT} and {SERVER_KEY} away, rerun, and copy the new CA to every standby (clone-standby --sslrootcert); nothing was changed",
        ca_dir.display()
    ))
}

/// Why pgrepctl's own certificate is reissued by `--ssl-issue`: expired,
/// missing a name, or expiring within check's warning window (so that
/// check's `CERT_EXPIRING` never fires on it once this has run). None
/// when it suits (or cannot be read: then nothing to say).
fn reissue_reason(f: &SslFacts, names: &[String]) -> Option<String> {
    let CertState::Parsed(cert) = &f.cert else {
        return None;
    };
    let days = cert.days_left();
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| cert.valid_for(n).is_err())
        .map(String::as_str)
        .collect();
    if days < 0 {
        Some("it has expired".into())
    } else if !missing.is_empty() {
        Some(format!("it lacks {}", missing.join(", ")))
    } else if days < i64::from(EXPIRY_WARN_DAYS) {
        Some(format!(
            "it expires in {days} days, within check's {EXPIRY_WARN_DAYS}-day warning"
        ))
    } else {
        None
    }
}

/// A certificate kept that expires within check's warning window: said,
/// with the way out (pgrepctl's own: `--ssl-issue` reissues it; another:
/// renew it, pgrepctl never replaces it).
fn expiring_warning(f: &SslFacts, ours: bool) -> Option<String> {
    let CertState::Parsed(cert) = &f.cert else {
        return None;
    };
    let days = cert.days_left();
    if !(0..i64::from(EXPIRY_WARN_DAYS)).contains(&days) {
        return None;
    }
    let fix = if ours {
        "rerun with --ssl-issue to have pgrepctl reissue it from its same CA (standbys keep trusting it; pgrepctl-server.crt and .key are overwritten)"
    } else {
        "renew it (same file names, then reload): pgrepctl does not replace a certificate it did not issue"
    };
    Some(format!(
        "the server certificate {} expires in {days} days (check is WARNING within {EXPIRY_WARN_DAYS}, CRITICAL within {EXPIRY_CRIT_DAYS}): {fix}",
        f.cert_file.display()
    ))
}

/// A file of pgrepctl's that this run may take as it is: its CA (reused,
/// both files present) and the server files the server uses now.
fn replaced(f: &SslFacts, ours: bool, ca_dir: &Path, p: &Path) -> bool {
    let ca =
        p.parent() == Some(ca_dir) && p.file_name().is_some_and(|n| n == CA_CERT || n == CA_KEY);
    (ca && f.ca.is_some()) || (ours && (p == f.cert_file || p == f.server_dir.join(SERVER_KEY)))
}

/// The CA's directory: never inside the data directory.
fn ca_dir(f: &SslFacts, data_directory: &Path) -> Result<PathBuf> {
    let Some(dir) = f.ca_dir.clone() else {
        return Err(Error::new(
            Code::Usage,
            format!(
                "--ssl needs --ssl-dir here: postgresql.conf is in the data directory {}, which pg_basebackup copies to every standby, and the CA's private key must not go with it",
                data_directory.display()
            ),
        )
        .hint("add --ssl-dir DIR, a directory outside the data directory that root keeps (e.g. --ssl-dir /etc/pgrepctl)"));
    };
    if inside(&dir, data_directory) {
        return Err(Error::new(
            Code::InvalidValue,
            format!(
                "--ssl-dir {} is inside the data directory, which pg_basebackup copies to every standby",
                dir.display()
            ),
        )
        .hint("give a directory outside the data directory, e.g. --ssl-dir /etc/pgrepctl"));
    }
    Ok(dir)
}

/// An existing certificate: kept when it is valid for every name; the
/// plan only turns ssl on if it is off.
fn keep(f: &SslFacts, names: &[String], ours: bool) -> Result<SslPlan> {
    let cert = match &f.cert {
        CertState::Parsed(c) => c,
        CertState::Missing => {
            return Err(Error::new(
                Code::CertificateUnsuitable,
                format!(
                    "ssl is on, but its certificate file {} does not exist",
                    f.cert_file.display()
                ),
            )
            .hint(
                "fix ssl_cert_file, or rerun with --ssl-issue to have pgrepctl issue a certificate",
            ));
        }
        CertState::Unreadable(e) => {
            return Err(Error::new(
                Code::CertificateUnsuitable,
                format!(
                    "cannot read the server certificate {}: {e}",
                    f.cert_file.display()
                ),
            )
            .hint("run pgrepctl as root or as the server's user, or rerun with --ssl-issue"));
        }
    };
    check_cert(cert, &f.cert_file, names, ours)?;
    if !f.key_exists {
        return Err(Error::new(
            Code::CertificateUnsuitable,
            format!(
                "the server certificate {} has no key: {} does not exist",
                f.cert_file.display(),
                f.key_file.display()
            ),
        )
        .hint("fix ssl_key_file, or rerun with --ssl-issue"));
    }
    let ca = ours
        .then(|| f.ca_dir.clone())
        .flatten()
        .map(|d| d.join(CA_CERT));
    let mut p = SslPlan {
        report: report(
            &f.cert_file,
            cert.names(),
            cert.days_left(),
            ca.as_deref(),
            names,
        ),
        epilogue: ca.as_deref().map(|c| epilogue(c, names)),
        ..Default::default()
    };
    if !f.on {
        p.settings.push(("ssl", "on".into()));
    }
    Ok(p)
}

/// `--ssl-issue` on pgrepctl's own certificate: what it does.
const REISSUE: &str = "rerun with --ssl-issue: pgrepctl reissues its certificate from the same CA (the standbys' copies of the CA stay valid), overwriting pgrepctl-server.crt and pgrepctl-server.key, and reloads";

/// Expired, or missing a name a standby will use: refused, with the
/// names it does hold and the ways out (for pgrepctl's own, `ours`,
/// a reissue from its CA in place).
fn check_cert(cert: &CertInfo, file: &Path, names: &[String], ours: bool) -> Result<()> {
    let days = cert.days_left();
    if days < 0 {
        let hint = if ours {
            REISSUE.to_string()
        } else {
            "renew it (same file names, then reload), or rerun with --ssl-issue to have pgrepctl issue its own CA and certificate (the old files are kept)".to_string()
        };
        return Err(Error::new(
            Code::CertificateUnsuitable,
            format!("the server certificate {} has expired", file.display()),
        )
        .hint(hint));
    }
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| cert.valid_for(n).is_err())
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let holds = cert.names();
    let hint = if ours {
        format!("{REISSUE}, for the --ssl-name values")
    } else {
        "rerun with --ssl-issue to have pgrepctl issue its own CA and a server certificate for the --ssl-name values (the old files are kept; ssl_cert_file and ssl_key_file point at the new ones), or reissue the certificate with these names yourself".to_string()
    };
    Err(Error::new(
        Code::CertificateUnsuitable,
        format!(
            "the server certificate {} is not valid for {}: it holds {}",
            file.display(),
            missing.join(", "),
            if holds.is_empty() {
                "no name".to_string()
            } else {
                holds.join(", ")
            }
        ),
    )
    .hint(hint))
}

/// Where the issued files go, for which names, and why pgrepctl's own
/// certificate is reissued (None: first issued).
struct Target<'a> {
    ca_dir: &'a Path,
    data_directory: &'a Path,
    names: &'a [String],
    why: Option<&'a str>,
}

/// The files, then ssl on with the new file settings.
fn issue_steps(f: &SslFacts, to: &Target, made: Issued, plan: &mut Plan) -> SslPlan {
    let (names, data_directory) = (to.names, to.data_directory);
    let ca = to.ca_dir.join(CA_CERT);
    let server_cert = f.server_dir.join(SERVER_CERT);
    file_steps(f, to, made, plan);
    // In the data directory: by name, so a standby's copy finds its own.
    let value = |name: &str| {
        if f.server_dir == data_directory {
            name.to_string()
        } else {
            f.server_dir.join(name).display().to_string()
        }
    };
    SslPlan {
        settings: vec![
            ("ssl", "on".into()),
            ("ssl_cert_file", value(SERVER_CERT)),
            ("ssl_key_file", value(SERVER_KEY)),
        ],
        report: report(
            &server_cert,
            names.to_vec(),
            crate::commands::init_master::ssl::SERVER_DAYS as i64,
            Some(&ca),
            names,
        ),
        epilogue: Some(epilogue(&ca, names)),
        reload: true,
    }
}

/// The CA's two files unless it is reused; the server's two, created,
/// or in place of pgrepctl's own (edits: the old contents come back on
/// a failure; never diffed).
fn file_steps(f: &SslFacts, to: &Target, made: Issued, plan: &mut Plan) {
    let (ca_dir, names) = (to.ca_dir, to.names);
    let create = |path: PathBuf, contents: String, mode, owner, summary: &str, secret| CreateFile {
        path,
        contents,
        mode,
        owner,
        summary: summary.to_string(),
        secret,
    };
    let owner = f.server_owner;
    if f.ca.is_none() {
        let what = "pgrepctl's CA certificate (copy it to each standby)";
        plan.edit_step(create(
            ca_dir.join(CA_CERT),
            made.ca_cert,
            0o644,
            None,
            what,
            false,
        ));
        let what = "pgrepctl's CA private key (stays on this host)";
        plan.edit_step(create(
            ca_dir.join(CA_KEY),
            made.ca_key,
            0o600,
            None,
            what,
            true,
        ));
    }
    let summary = format!("server certificate for {}", names.join(", "));
    let (cert, key) = (
        f.server_dir.join(SERVER_CERT),
        f.server_dir.join(SERVER_KEY),
    );
    let Some((old_cert, old_key)) = &f.server else {
        plan.edit_step(create(
            cert,
            made.server_cert,
            0o644,
            owner,
            &summary,
            false,
        ));
        plan.edit_step(create(
            key,
            made.server_key,
            0o600,
            owner,
            "server private key",
            true,
        ));
        return;
    };
    let reissued = match to.why {
        Some(why) => format!("{summary} (reissued by the same CA: {why})"),
        None => format!("{summary} (reissued by the same CA)"),
    };
    for (path, old, new, what) in [
        (cert, old_cert, made.server_cert, reissued),
        (
            key,
            old_key,
            made.server_key,
            "server private key (new)".into(),
        ),
    ] {
        let mut e = EditFile::new(path, Some(old.clone()), new, what);
        e.secret = true;
        plan.edit_step(e);
    }
}

fn copy_command(ca: &Path, names: &[String]) -> String {
    let host = names.first().map(String::as_str).unwrap_or("THIS_HOST");
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    format!("scp {host}:{} /etc/pgrepctl/{CA_CERT}", ca.display())
}

fn report(
    cert: &Path,
    holds: Vec<String>,
    days_left: i64,
    ca: Option<&Path>,
    names: &[String],
) -> serde_json::Value {
    serde_json::json!({
        "server_certificate": cert.display().to_string(),
        "names": holds,
        "days_left": days_left,
        "ca_certificate": ca.map(|c| c.display().to_string()),
        "copy_ca_command": ca.map(|c| copy_command(c, names)),
    })
}

fn epilogue(ca: &Path, names: &[String]) -> String {
    format!(
        "The CA certificate standbys need is {}. On each standby:\n  mkdir -p /etc/pgrepctl && {}\n  pgrepctl clone-standby --primary 'host={} …' --sslrootcert /etc/pgrepctl/{CA_CERT} …\n",
        ca.display(),
        copy_command(ca, names),
        names.first().map(String::as_str).unwrap_or("THIS_HOST"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate for `names` that expires in `days` days (and 1 hour).
    fn cert(names: &[&str], days: i64) -> CertInfo {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        params.not_before = epoch + now - std::time::Duration::from_secs(86_400);
        let left = days * 86_400 + 3600;
        params.not_after = if left >= 0 {
            epoch + now + std::time::Duration::from_secs(left as u64)
        } else {
            epoch + now - std::time::Duration::from_secs((-left) as u64)
        };
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        CertInfo::parse(pem.as_bytes()).unwrap()
    }

    /// The server's facts with this certificate, pgrepctl's (`ours`) or not.
    fn facts(c: CertInfo, ours: bool) -> SslFacts {
        let dir = PathBuf::from("/var/lib/pg/data");
        let file = if ours { SERVER_CERT } else { "server.crt" };
        SslFacts {
            on: true,
            cert_file: dir.join(file),
            key_file: dir.join("server.key"),
            cert: CertState::Parsed(Box::new(c)),
            key_exists: true,
            server_owner: None,
            server_dir: dir,
            ca_dir: Some("/etc/pgrepctl".into()),
            present: vec![],
            ca: None,
            server: None,
        }
    }

    #[test]
    fn pgrepctls_own_certificate_is_reissued_within_checks_warning() {
        let names = ["db1".to_string()];
        let warn = i64::from(EXPIRY_WARN_DAYS);
        let reason = |days, n: &[&str]| reissue_reason(&facts(cert(n, days), true), &names);
        assert_eq!(reason(warn + 5, &["db1"]), None);
        let soon = reason(warn - 1, &["db1"]).unwrap();
        assert!(
            soon.contains(&format!("expires in {} days", warn - 1)),
            "{soon}"
        );
        assert_eq!(reason(-1, &["db1"]).as_deref(), Some("it has expired"));
        assert_eq!(reason(warn + 5, &["db2"]).as_deref(), Some("it lacks db1"));
    }

    #[test]
    fn an_expiring_certificate_is_said_with_its_way_out() {
        let warn = i64::from(EXPIRY_WARN_DAYS);
        assert_eq!(
            expiring_warning(&facts(cert(&["db1"], warn), true), true),
            None
        );
        let w = expiring_warning(&facts(cert(&["db1"], 10), true), true).unwrap();
        assert!(
            w.contains("expires in 10 days") && w.contains("--ssl-issue"),
            "{w}"
        );
        // Not pgrepctl's: never replaced, renew it.
        let w = expiring_warning(&facts(cert(&["db1"], 10), false), false).unwrap();
        assert!(w.contains("renew it") && !w.contains("--ssl-issue"), "{w}");
        assert!(w.contains("did not issue"), "{w}");
    }

    #[test]
    fn the_hint_for_pgrepctls_own_says_it_is_reissued_in_place() {
        let names = ["db1".to_string()];
        for (c, file) in [
            (cert(&["db1"], -2), "expired"),
            (cert(&["db2"], 90), "names"),
        ] {
            let ours = check_cert(&c, Path::new("/d/pgrepctl-server.crt"), &names, true)
                .unwrap_err()
                .hint
                .unwrap();
            assert!(
                ours.contains("same CA") && ours.contains("overwriting"),
                "{file}: {ours}"
            );
            assert!(
                !ours.contains("its own CA") && !ours.contains("kept"),
                "{file}: {ours}"
            );
            let theirs = check_cert(&c, Path::new("/d/server.crt"), &names, false)
                .unwrap_err()
                .hint
                .unwrap();
            assert!(theirs.contains("old files are kept"), "{file}: {theirs}");
        }
    }
}
