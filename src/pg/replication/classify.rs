//! A [`ReplError`] to one of pgrepctl's codes, with the fix: decided by
//! the SQLSTATE and by how far the login got, never by the wording of a
//! message (which the server may translate).

use super::error::{Origin, ReplError, Stage, sqlstate};
use crate::error::{Code, Error};

/// `target` names the connection in the message ("host=… port=… user=…");
/// `user` is the role we logged in as, for the pg_hba.conf line to add.
pub fn classify(target: &str, user: &str, e: &ReplError) -> Error {
    let mut err = classify_uncaused(target, user, e);
    err.source = Some(Box::new(crate::error::Source {
        message: e
            .server()
            .map(|s| s.message.clone())
            .unwrap_or_else(|| e.to_string()),
        sqlstate: e.sqlstate().map(str::to_string),
        os_error: match e {
            ReplError::Unreachable { cause, .. } | ReplError::Io(cause) => cause.raw_os_error(),
            _ => None,
        },
        source: None,
    }));
    err
}

fn classify_uncaused(target: &str, user: &str, e: &ReplError) -> Error {
    let failed = format!("replication connection to {target} failed: {e}");
    match e {
        ReplError::Server {
            error,
            stage,
            origin,
        } => {
            let server_hint = error.hint.clone();
            let classified = server_error(&failed, user, &error.sqlstate, *stage, *origin)
                .map(|e| tls_required(e, &error.message, *origin));
            match (classified, server_hint) {
                (Some(err), _) => err,
                (None, hint) if *stage == Stage::Command => {
                    with_hint(Error::new(Code::ConnectionFailed, format!("{target}: {e}")), hint)
                }
                (None, hint) => with_hint(Error::new(Code::ConnectionFailed, failed), hint),
            }
        }
        ReplError::Unreachable { .. } | ReplError::Io(_) => {
            Error::new(Code::ConnectionFailed, failed).hint(
                "check that the primary is running and reachable from this host (host, port, firewall, listen_addresses)",
            )
        }
        ReplError::NoAnswer { .. } => Error::new(Code::Timeout, failed).hint(
            "the server stopped answering: check that it is running and not overloaded, then rerun",
        ),
        ReplError::PasswordRequired => Error::new(Code::PasswordRequired, failed).hint(
            "the primary asks for a password: pass --password-file or set PGREPCTL_REPLICATION_PASSWORD",
        ),
        ReplError::AuthMethodUnsupported(_) => Error::new(Code::AuthenticationFailed, failed).hint(
            "give this standby a scram-sha-256 (or md5) line in the primary's pg_hba.conf: pgrepctl init-master --allow ADDRESS writes one",
        ),
        ReplError::TlsRequired => Error::new(Code::TlsFailed, failed).hint(
            "turn ssl on at the primary (ssl = on, with a certificate), or leave sslmode=require out of --primary",
        ),
        ReplError::Tls(f) => Error::new(Code::TlsFailed, failed).hint(f.hint),
        ReplError::Protocol(_) => Error::new(Code::Internal, failed),
        ReplError::InvalidName(_) => Error::new(Code::InvalidValue, failed)
            .hint("names in replication commands use lower-case letters, digits and underscores"),
        ReplError::Unsupported(_) => Error::new(Code::UnsupportedVersion, failed),
    }
}

/// The SQLSTATEs whose meaning (and fix) we know.
fn server_error(
    failed: &str,
    user: &str,
    state: &str,
    stage: Stage,
    origin: Origin,
) -> Option<Error> {
    let err = |code| Error::new(code, failed.to_string());
    Some(match (state, stage) {
        // Refused before any authentication request: no pg_hba.conf line
        // matched, a `reject` line did, or peer/ident found another user.
        (sqlstate::INVALID_AUTHORIZATION_SPECIFICATION, Stage::BeforeAuth) => {
            err(Code::HbaRejected).hint(hba_hint(user, origin))
        }
        // Authenticated, then refused: no such role, or it may not log in.
        (sqlstate::INVALID_AUTHORIZATION_SPECIFICATION, Stage::AfterAuth) => {
            err(Code::PrimaryNotReady).hint(
                "the primary has no such role, or it may not log in: create it with pgrepctl init-master there (--replication-user NAME), or name an existing replication role with user= in --primary",
            )
        }
        (sqlstate::INVALID_AUTHORIZATION_SPECIFICATION, _) => {
            err(Code::HbaRejected).hint(hba_hint(user, origin))
        }
        (sqlstate::INVALID_PASSWORD, _) => err(Code::AuthenticationFailed).hint(
            "the password does not match the primary's replication role: check --password-file (or PGREPCTL_REPLICATION_PASSWORD), or set it with pgrepctl init-master on the primary",
        ),
        (sqlstate::INSUFFICIENT_PRIVILEGE, Stage::AfterAuth | Stage::BeforeAuth) => {
            err(Code::PrimaryNotReady).hint(
                "the role lacks the REPLICATION attribute: run pgrepctl init-master on the primary (or ALTER ROLE … REPLICATION)",
            )
        }
        (sqlstate::TOO_MANY_CONNECTIONS, _) => err(Code::PrimaryNotReady).hint(
            "the primary has no free WAL sender: raise max_wal_senders there (pgrepctl init-master --max-wal-senders N) and restart it",
        ),
        (sqlstate::CANNOT_CONNECT_NOW, _) => err(Code::PrimaryNotReady)
            .hint("the primary is starting or stopping; try again shortly"),
        _ => return None,
    })
}

/// The pg_hba.conf line that would let this standby in, from the address
/// the server saw (our end of the connection).
fn hba_hint(user: &str, origin: Origin) -> String {
    match origin {
        Origin::Tcp(ip) => {
            let cidr = if ip.is_ipv6() {
                format!("{ip}/128")
            } else {
                format!("{ip}/32")
            };
            format!(
                "the primary's pg_hba.conf has no line that lets this standby replicate, or a `reject` line matches it first: add `host replication {user} {cidr} scram-sha-256` before any line that matches first, and reload, or run `pgrepctl init-master --allow {ip} --replication-user {user}` there"
            )
        }
        Origin::Local => format!(
            "the primary's pg_hba.conf does not let this standby's OS user replicate as {user} over the local socket (no `local replication` line, a `reject` line, or peer authentication, which needs the OS user to match): add `local replication {user} scram-sha-256` before any line that matches first, and reload, or connect over TCP instead (host=127.0.0.1 in --primary), which pg_hba.conf lets in by password"
        ),
    }
}

/// A `reject` line that refused an unencrypted TCP connection ("no
/// encryption" from 14, "SSL off" before) is most likely init-master
/// --ssl's `hostnossl … reject`: the way in is TLS, never a plaintext
/// line added before it, which is what the general hint would say.
fn tls_required(e: Error, message: &str, origin: Origin) -> Error {
    let unencrypted = message.contains("no encryption") || message.contains("SSL off");
    if e.code != Code::HbaRejected
        || !matches!(origin, Origin::Tcp(_))
        || !message.contains("rejects")
        || !unencrypted
    {
        return e;
    }
    let general = e.hint.clone().unwrap_or_default();
    e.hint(format!(
        "if the server requires TLS (init-master --ssl writes `hostnossl … reject` so that standbys must use it), connect with TLS, verified by the server's CA (clone-standby --sslrootcert FILE, or sslmode=verify-full sslrootcert=FILE in the connection string), and leave sslmode=disable out; never add a plaintext line before that reject line. If the reject line is not about TLS: {general}"
    ))
}

fn with_hint(e: Error, hint: Option<String>) -> Error {
    match hint {
        Some(h) => e.hint(h),
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::super::error::{AuthMethod, ServerError};
    use super::*;

    fn server(state: &str, stage: Stage, origin: Origin) -> ReplError {
        ReplError::Server {
            error: Box::new(ServerError {
                severity: "FATAL".into(),
                sqlstate: state.into(),
                message: "(wording does not matter)".into(),
                detail: None,
                hint: None,
            }),
            stage,
            origin,
        }
    }

    const TCP: Origin = Origin::Tcp(std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)));

    #[test]
    fn an_unencrypted_connection_a_reject_line_refused_is_told_to_use_tls() {
        let refused = |message: &str, origin: Origin| {
            let mut e = server("28000", Stage::BeforeAuth, origin);
            if let ReplError::Server { error, .. } = &mut e {
                error.message = message.into();
            }
            classify("host=db1", "replicator", &e).hint.unwrap()
        };
        for message in [
            "pg_hba.conf rejects replication connection for host \"10.0.0.2\", user \"replicator\", no encryption",
            "pg_hba.conf rejects replication connection for host \"10.0.0.2\", user \"replicator\", SSL off",
        ] {
            let hint = refused(message, TCP);
            assert!(hint.contains("--sslrootcert"), "{message}");
            // A reject line that is not about TLS: the general way in too.
            assert!(
                hint.contains("host replication replicator 10.0.0.2/32"),
                "{hint}"
            );
        }
        let encrypted = "pg_hba.conf rejects replication connection for host \"10.0.0.2\", user \"replicator\", SSL encryption";
        assert!(refused(encrypted, TCP).contains("host replication replicator 10.0.0.2/32"));
        let no_line = "no pg_hba.conf entry for replication connection from host \"10.0.0.2\", user \"replicator\", no encryption";
        assert!(refused(no_line, TCP).contains("host replication replicator 10.0.0.2/32"));
        let local = "pg_hba.conf rejects replication connection for host \"[local]\", user \"replicator\", no encryption";
        assert!(!refused(local, Origin::Local).contains("--sslrootcert"));
    }

    #[test]
    fn refused_before_authentication_is_hba_with_the_line_to_add() {
        let e = classify(
            "host=10.0.0.1",
            "replicator",
            &server("28000", Stage::BeforeAuth, TCP),
        );
        assert_eq!(e.code, Code::HbaRejected);
        let hint = e.hint.unwrap();
        assert!(
            hint.contains("reject")
                && hint.contains("host replication replicator 10.0.0.2/32 scram-sha-256"),
            "{hint}"
        );
        assert!(hint.contains("--allow 10.0.0.2"), "{hint}");
        let v6 = Origin::Tcp("::1".parse().unwrap());
        let e = classify("h", "r", &server("28000", Stage::BeforeAuth, v6));
        assert!(e.hint.unwrap().contains("host replication r ::1/128"));
        // A local socket: no `local` line, or peer found another OS user.
        let e = classify(
            "h",
            "replicator",
            &server("28000", Stage::BeforeAuth, Origin::Local),
        );
        assert_eq!(e.code, Code::HbaRejected);
        let hint = e.hint.unwrap();
        assert!(
            hint.contains("local replication replicator scram-sha-256"),
            "{hint}"
        );
        assert!(hint.contains("host=127.0.0.1"), "{hint}");
    }

    #[test]
    fn refused_after_authentication_is_a_primary_not_ready() {
        let e = classify("h", "r", &server("28000", Stage::AfterAuth, TCP));
        assert_eq!(e.code, Code::PrimaryNotReady);
        assert!(e.hint.unwrap().contains("init-master"));
        let e = classify("h", "r", &server("42501", Stage::AfterAuth, TCP));
        assert_eq!(e.code, Code::PrimaryNotReady);
        assert!(e.hint.unwrap().contains("REPLICATION"));
        let e = classify("h", "r", &server("53300", Stage::AfterAuth, TCP));
        assert!(e.hint.unwrap().contains("max_wal_senders"));
        let e = classify("h", "r", &server("57P03", Stage::BeforeAuth, TCP));
        assert_eq!(e.code, Code::PrimaryNotReady);
    }

    #[test]
    fn passwords() {
        let wrong = server("28P01", Stage::Auth(AuthMethod::ScramSha256), TCP);
        let e = classify("h", "r", &wrong);
        assert_eq!(e.code, Code::AuthenticationFailed);
        assert!(e.hint.unwrap().contains("password"));
        assert!(
            e.message
                .starts_with("replication connection to h failed: FATAL:")
        );
        let e = classify("h", "r", &ReplError::PasswordRequired);
        assert_eq!(e.code, Code::PasswordRequired);
        let e = classify(
            "h",
            "r",
            &ReplError::AuthMethodUnsupported("GSSAPI/SSPI".into()),
        );
        assert_eq!(e.code, Code::AuthenticationFailed);
    }

    #[test]
    fn no_server_answered() {
        let refused = ReplError::Unreachable {
            endpoint: "127.0.0.1:1".into(),
            cause: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(classify("h", "r", &refused).code, Code::ConnectionFailed);
        let silent = ReplError::NoAnswer {
            limit: std::time::Duration::from_secs(3),
        };
        assert_eq!(classify("h", "r", &silent).code, Code::Timeout);
        assert_eq!(
            classify("h", "r", &ReplError::TlsRequired).code,
            Code::TlsFailed
        );
    }

    #[test]
    fn an_unknown_command_error_keeps_the_servers_hint() {
        let mut e = server("XX000", Stage::Command, TCP);
        if let ReplError::Server { error, .. } = &mut e {
            error.hint = Some("do this".into());
        }
        let err = classify("h", "r", &e);
        assert_eq!(err.code, Code::ConnectionFailed);
        assert_eq!(err.hint.as_deref(), Some("do this"));
    }
}
