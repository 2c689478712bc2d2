//! The standby's new `primary_conninfo`: where to connect comes from
//! `--primary`; everything else the standby already had (its
//! application_name, which synchronous_standby_names may name; its user
//! and passfile; keepalives) stays, so repointing changes exactly the
//! upstream and nothing a DBA tuned. Pure text.

use crate::conf::standby::quote_conninfo;
use crate::error::{Code, Error, Result};
use tokio_postgres::config::Host;

/// The new upstream named by `--primary`: one host, no password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// Only when `--primary` names one; else the standby's own stays.
    pub user: Option<String>,
    /// The TLS keywords `--primary` gives (sslmode when not libpq's
    /// default, sslrootcert, …): they replace the standby's own.
    pub ssl: Vec<(&'static str, String)>,
}

impl Target {
    pub fn parse(primary: &str) -> Result<Target> {
        let config = crate::pg::conninfo::parse(primary)?;
        if config.get_password().is_some() {
            return Err(Error::new(
                Code::InsecureRefused,
                "--primary contains a password; command lines are visible to every user in ps",
            )
            .hint("put the password in a 0600 file and pass --password-file, or keep the standby's own passfile"));
        }
        let host = match config.get_hosts() {
            [] => {
                return Err(Error::new(Code::Usage, "--primary names no host")
                    .hint("give host=ADDRESS (or a postgresql://HOST URI)"));
            }
            [_, _, ..] => {
                return Err(Error::new(Code::Usage, "--primary names several hosts")
                    .hint("a standby streams from one upstream server: give exactly one host"));
            }
            [Host::Tcp(h)] => h.clone(),
            [Host::Unix(p)] => p.display().to_string(),
        };
        let ssl = config.tls.keywords();
        Ok(Target {
            host,
            port: config.get_ports().first().copied().unwrap_or(5432),
            user: config.get_user().map(str::to_string),
            ssl,
        })
    }

    /// "host=10.0.0.1 port=5432", for messages.
    pub fn name(&self) -> String {
        format!("host={} port={}", self.host, self.port)
    }
}

/// How the password reaches the new primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// Whatever the standby's conninfo already says (its passfile, a
    /// password keyword, or the server user's ~/.pgpass).
    Keep,
    /// `--password-file`: this passfile (pgrepctl writes it), and no
    /// password keyword.
    Passfile(String),
}

/// The standby's conninfo repointed at `target`. The user is `--primary`'s,
/// else the standby's own, else `default_user` (libpq's default: the OS
/// user the server runs as); `None` when none is known.
pub fn repoint(
    old: &str,
    target: &Target,
    default_user: Option<&str>,
    password: &Password,
) -> Result<String> {
    let old = crate::pg::conninfo::pairs(old);
    let old_user = old
        .iter()
        .find(|(k, _)| k == "user")
        .map(|(_, v)| v.clone());
    let user = target
        .user
        .clone()
        .or(old_user)
        .or_else(|| default_user.map(str::to_string))
        .ok_or_else(|| {
            Error::new(
                Code::Usage,
                "neither --primary nor the standby's primary_conninfo names a user",
            )
            .hint("give the replication user in --primary, e.g. 'host=db2 user=replicator'")
        })?;
    let mut out: Vec<(String, String)> = vec![
        ("host".into(), target.host.clone()),
        ("port".into(), target.port.to_string()),
        ("user".into(), user),
    ];
    for (k, v) in old {
        let replaced = match k.as_str() {
            // Where to connect: --primary's alone (hostaddr would win over host).
            "host" | "hostaddr" | "port" | "user" => true,
            k if crate::pg::tls::KEYWORDS.contains(&k) => !target.ssl.is_empty(),
            "passfile" | "password" => matches!(password, Password::Passfile(_)),
            _ => false,
        };
        if !replaced {
            out.push((k, v));
        }
    }
    if let Password::Passfile(p) = password {
        out.push(("passfile".into(), p.clone()));
    }
    for (k, v) in &target.ssl {
        out.push((k.to_string(), v.clone()));
    }
    Ok(render(&out))
}

fn render(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", quote_conninfo(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A conninfo's value for `key`, as libpq reads it.
pub fn value(conninfo: &str, key: &str) -> Option<String> {
    crate::pg::conninfo::pairs(conninfo)
        .into_iter()
        .rfind(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// The same conninfo with any password replaced, for reports.
pub fn redacted(conninfo: &str) -> String {
    let pairs: Vec<(String, String)> = crate::pg::conninfo::pairs(conninfo)
        .into_iter()
        .map(|(k, v)| {
            if k == "password" {
                (k, crate::secret::REDACTED.to_string())
            } else {
                (k, v)
            }
        })
        .collect();
    render(&pairs)
}

/// Whether two conninfo strings say the same thing, keyword by keyword.
pub fn same(a: &str, b: &str) -> bool {
    crate::pg::conninfo::pairs(a) == crate::pg::conninfo::pairs(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    #[test]
    fn keeps_the_standbys_own_settings() {
        let old = "user=repl passfile=/var/lib/pg/pgrepctl.pgpass host=10.0.0.1 port=5432 application_name=db3 keepalives_idle=5 hostaddr=10.0.0.1";
        let new = repoint(old, &target("host=10.0.0.2"), None, &Password::Keep).unwrap();
        assert_eq!(
            new,
            "host=10.0.0.2 port=5432 user=repl passfile=/var/lib/pg/pgrepctl.pgpass application_name=db3 keepalives_idle=5"
        );
        // Repointing again changes nothing.
        assert_eq!(
            repoint(&new, &target("host=10.0.0.2"), None, &Password::Keep).unwrap(),
            new
        );
        assert!(same(&new, &format!("{new} ")));
    }

    #[test]
    fn primary_tls_keywords_replace_the_standbys_own() {
        let old = "host=a user=r sslmode=require sslcrl=/old.crl application_name=x";
        let new = repoint(
            old,
            &target("host=b sslmode=verify-full sslrootcert=/ca.crt"),
            None,
            &Password::Keep,
        )
        .unwrap();
        assert_eq!(
            new,
            "host=b port=5432 user=r application_name=x sslmode=verify-full sslrootcert=/ca.crt"
        );
        let kept = repoint(old, &target("host=b"), None, &Password::Keep).unwrap();
        assert!(kept.contains("sslmode=require sslcrl=/old.crl"), "{kept}");
    }

    #[test]
    fn primary_user_and_sslmode_win_and_a_passfile_replaces_the_password() {
        let old = "host=a user=old password='s e' sslmode=prefer application_name=x";
        let new = repoint(
            old,
            &target("host=/run/pg port=6000 user=rep sslmode=require"),
            None,
            &Password::Passfile("/d/pgrepctl.pgpass".into()),
        )
        .unwrap();
        assert_eq!(
            new,
            "host=/run/pg port=6000 user=rep application_name=x passfile=/d/pgrepctl.pgpass sslmode=require"
        );
        let kept = repoint(old, &target("host=b"), None, &Password::Keep).unwrap();
        assert_eq!(value(&kept, "password").as_deref(), Some("s e"));
        assert!(!redacted(&kept).contains("s e"), "{}", redacted(&kept));
    }

    #[test]
    fn user_falls_back_to_the_default_or_is_asked_for() {
        let new = repoint(
            "host=a",
            &target("host=b"),
            Some("postgres"),
            &Password::Keep,
        )
        .unwrap();
        assert_eq!(value(&new, "user").as_deref(), Some("postgres"));
        let e = repoint("host=a", &target("host=b"), None, &Password::Keep).unwrap_err();
        assert_eq!(e.code, Code::Usage);
    }

    #[test]
    fn primary_is_checked() {
        let code = |s: &str| Target::parse(s).unwrap_err().code;
        assert_eq!(code("host=a password=x"), Code::InsecureRefused);
        assert_eq!(code("host=a,b"), Code::Usage);
        assert_eq!(code("user=x"), Code::Usage);
        assert_eq!(target("postgresql://h:6/d").name(), "host=h port=6");
    }
}
