//! A real replication connection to the primary, exactly as the standby's
//! walreceiver will make it (same host, port, user, password file), through
//! psql with `replication=true`: tokio-postgres does not speak the
//! replication protocol. Failures are classified, so "the hba file has no
//! line for you" reads as that, with the line that would let us in.

use crate::child::SecretFile;
use crate::error::{Code, Error, Result};
use crate::tools::RunAs;
use std::path::PathBuf;
use std::time::Duration;

/// What `IDENTIFY_SYSTEM` says: the cluster's identity and WAL position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub system_id: String,
    pub timeline: u32,
    pub lsn: u64,
}

/// "16/B374D848" -> bytes.
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.trim().split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

/// A psql that can open replication connections as `run_as`, with an
/// optional password served from an in-memory password file (nothing on
/// disk, gone with the process however it ends).
pub struct ReplClient {
    pub psql: PathBuf,
    pub run_as: RunAs,
    /// libpq keywords without the password (host, port, user, …).
    pub conninfo: String,
    passfile: Option<SecretFile>,
    pub timeout: Duration,
}

impl ReplClient {
    pub fn new(
        psql: PathBuf,
        run_as: RunAs,
        conninfo: String,
        password_line: Option<&str>,
        timeout: Duration,
    ) -> Result<ReplClient> {
        let passfile = match password_line {
            None => None,
            Some(line) => Some(SecretFile::new(line, run_as.ids)?),
        };
        Ok(ReplClient {
            psql,
            run_as,
            conninfo,
            passfile,
            timeout,
        })
    }

    /// The password file for another child (pg_basebackup).
    pub fn passfile(&self) -> Option<&SecretFile> {
        self.passfile.as_ref()
    }

    /// Run replication commands in one connection; one output line each
    /// (fields separated by `|`).
    pub fn run(&self, commands: &[&str]) -> Result<Vec<String>> {
        let mut args: Vec<String> = vec![
            "-X".into(),
            "-A".into(),
            "-t".into(),
            "-q".into(),
            "-v".into(),
            "ON_ERROR_STOP=1".into(),
            "-d".into(),
            format!("{} replication=true", self.conninfo),
        ];
        for c in commands {
            args.push("-c".into());
            args.push((*c).into());
        }
        let mut expr = self
            .run_as
            .cmd(&self.psql, args)
            .env(
                "PGCONNECT_TIMEOUT",
                self.timeout.as_secs().max(1).to_string(),
            )
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE")
            .stdin_null()
            .stdout_capture()
            .stderr_capture()
            .unchecked();
        expr = match &self.passfile {
            Some(p) => p.pass_to(expr),
            None => expr.env_remove("PGPASSFILE"),
        };
        let handle = expr.start().map_err(|e| {
            Error::new(
                Code::ToolNotFound,
                format!("cannot run {}: {e}", self.psql.display()),
            )
        })?;
        // Bounded: the connect timeout covers the login, and the commands
        // (IDENTIFY_SYSTEM, SHOW, slot commands) answer at once on a live
        // server; one that stops answering must not hang the command.
        let limit = self.timeout + crate::pg::ANSWER_LIMIT.min(self.timeout * 3);
        match handle.wait_timeout(limit) {
            Ok(Some(_)) => {}
            Ok(None) => {
                let _ = handle.kill();
                return Err(Error::new(
                    Code::Timeout,
                    format!("{}: no answer within {}s", self.conninfo, limit.as_secs()),
                )
                .hint("the server stopped answering: check that it is running and not overloaded, then rerun"));
            }
            Err(e) => {
                return Err(Error::new(
                    Code::ToolFailed,
                    format!("{} failed: {e}", self.psql.display()),
                ));
            }
        }
        let out = handle.into_output().map_err(|e| {
            Error::new(
                Code::ToolFailed,
                format!("{} failed: {e}", self.psql.display()),
            )
        })?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(classify(&self.conninfo, &stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect())
    }

    pub fn identify(&self) -> Result<Identity> {
        let lines = self.run(&["IDENTIFY_SYSTEM"])?;
        parse_identity(lines.first().map(String::as_str).unwrap_or(""))
    }
}

pub fn parse_identity(line: &str) -> Result<Identity> {
    let f: Vec<&str> = line.split('|').collect();
    let bad = || {
        Error::new(
            Code::Internal,
            format!("unexpected IDENTIFY_SYSTEM answer: {line:?}"),
        )
    };
    Ok(Identity {
        system_id: f.first().ok_or_else(bad)?.trim().to_string(),
        timeline: f
            .get(1)
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(bad)?,
        lsn: f.get(2).and_then(|l| parse_lsn(l)).ok_or_else(bad)?,
    })
}

/// psql's words to one of our codes, with the fix.
pub fn classify(target: &str, stderr: &str) -> Error {
    let line = stderr
        .lines()
        .map(|l| l.trim())
        .find(|l| l.contains("FATAL") || l.contains("error") || l.contains("ERROR"))
        .or_else(|| stderr.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("psql failed without a message")
        .trim_start_matches("psql: ")
        .trim_start_matches("error: ")
        .to_string();
    let msg = format!("replication connection to {target} failed: {line}");
    let rejected = stderr.contains("pg_hba.conf rejects replication connection");
    if let Some(rest) = stderr
        .split("no pg_hba.conf entry for replication connection from host \"")
        .nth(1)
        .or_else(|| {
            stderr
                .split("pg_hba.conf rejects replication connection for host \"")
                .nth(1)
        })
    {
        let host = rest.split('"').next().unwrap_or("");
        let user = rest
            .split("user \"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("replicator");
        let (line, allow) = if host == "[local]" {
            (
                format!("local replication {user} scram-sha-256"),
                String::new(),
            )
        } else {
            let cidr = if host.contains(':') {
                format!("{host}/128")
            } else {
                format!("{host}/32")
            };
            (
                format!("host replication {user} {cidr} scram-sha-256"),
                format!(
                    ", or run `pgrepctl init-master --allow {host} --replication-user {user}` there"
                ),
            )
        };
        let why = if rejected {
            "a `reject` line in the primary's pg_hba.conf matches this standby"
        } else {
            "the primary's pg_hba.conf does not let this standby replicate"
        };
        return Error::new(Code::HbaRejected, msg).hint(format!(
            "{why}: add `{line}` before any line that matches first, and reload{allow}"
        ));
    }
    if stderr.contains("Peer authentication failed") {
        return Error::new(Code::HbaRejected, msg).hint(
            "the primary authenticates local connections by OS user (peer): connect over TCP instead (host=127.0.0.1 in --primary), which pg_hba.conf lets in by password",
        );
    }
    if stderr.contains("password authentication failed")
        || stderr.contains("SASL authentication failed")
    {
        return Error::new(Code::AuthenticationFailed, msg).hint(
            "the password does not match the primary's replication role: check --password-file (or PGREPCTL_REPLICATION_PASSWORD), or set it with pgrepctl init-master on the primary",
        );
    }
    if stderr.contains("FATAL:  role \"") && stderr.contains("\" does not exist") {
        // Reached and answered (trust or peer auth), but there is no such
        // role: the primary is not prepared yet, not unreachable.
        return Error::new(Code::PrimaryNotReady, msg).hint(
            "the primary has no such role: create it with pgrepctl init-master there (--replication-user NAME), or name an existing replication role with user= in --primary",
        );
    }
    if stderr.contains("no password supplied") || stderr.contains("password is required") {
        return Error::new(Code::PasswordRequired, msg)
            .hint("the primary asks for a password: pass --password-file or set PGREPCTL_REPLICATION_PASSWORD");
    }
    if stderr.contains("must be superuser or replication role")
        || stderr.contains("permission denied to start WAL sender")
    {
        return Error::new(Code::PrimaryNotReady, msg).hint(
            "the role lacks the REPLICATION attribute: run pgrepctl init-master on the primary (or ALTER ROLE … REPLICATION)",
        );
    }
    if stderr.contains("exceeds max_wal_senders")
        || stderr.contains("max_wal_senders")
        || stderr.contains("too many clients")
    {
        return Error::new(Code::PrimaryNotReady, msg).hint(
            "the primary has no free WAL sender: raise max_wal_senders there (pgrepctl init-master --max-wal-senders N) and restart it",
        );
    }
    if stderr.contains("invalid connection option") || stderr.contains("invalid URI") {
        return Error::new(Code::UnknownConninfoKeyword, msg)
            .hint("use libpq keywords (host, port, user, sslmode, …) in --primary");
    }
    if stderr.contains("is not currently accepting connections") || stderr.contains("starting up") {
        return Error::new(Code::PrimaryNotReady, msg)
            .hint("the primary is starting or stopping; try again shortly");
    }
    Error::new(Code::ConnectionFailed, msg)
        .hint("check that the primary is running and reachable from this host (host, port, firewall, listen_addresses)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_round_trip() {
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
        assert_eq!(parse_lsn("nonsense"), None);
    }

    #[test]
    fn identity() {
        let id = parse_identity("7301234567890123456|1|0/3000148|").unwrap();
        assert_eq!(id.system_id, "7301234567890123456");
        assert_eq!(id.timeline, 1);
        assert_eq!(id.lsn, 0x3000148);
        assert!(parse_identity("").is_err());
    }

    #[test]
    fn a_reject_line_and_peer_are_hba_problems_with_the_fix() {
        let e = classify(
            "host=10.0.0.1",
            "psql: error: connection to server at \"10.0.0.1\", port 5432 failed: FATAL:  pg_hba.conf rejects replication connection for host \"10.0.0.2\", user \"replicator\", no encryption\n",
        );
        assert_eq!(e.code, Code::HbaRejected);
        let hint = e.hint.unwrap();
        assert!(
            hint.contains("reject") && hint.contains("host replication replicator 10.0.0.2/32"),
            "{hint}"
        );
        let e = classify(
            "host=/var/run/postgresql",
            "psql: error: connection to server on socket \"/var/run/postgresql/.s.PGSQL.5432\" failed: FATAL:  Peer authentication failed for user \"replicator\"\n",
        );
        assert_eq!(e.code, Code::HbaRejected);
        assert!(e.hint.unwrap().contains("host=127.0.0.1"));
    }

    #[test]
    fn classifies_hba_and_password() {
        let e = classify(
            "host=10.0.0.1",
            "psql: error: connection to server at \"10.0.0.1\", port 5432 failed: FATAL:  no pg_hba.conf entry for replication connection from host \"10.0.0.2\", user \"replicator\", no encryption\n",
        );
        assert_eq!(e.code, Code::HbaRejected);
        assert!(
            e.hint
                .unwrap()
                .contains("host replication replicator 10.0.0.2/32 scram-sha-256")
        );
        let e = classify(
            "h",
            "FATAL:  password authentication failed for user \"replicator\"",
        );
        assert_eq!(e.code, Code::AuthenticationFailed);
        let e = classify(
            "h",
            "psql: error: connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  role \"replicator\" does not exist\n",
        );
        assert_eq!(e.code, Code::PrimaryNotReady);
        assert!(e.hint.unwrap().contains("init-master"));
        let e = classify("h", "could not connect to server: Connection refused");
        assert_eq!(e.code, Code::ConnectionFailed);
    }
}
