//! Why a replication connection or command failed, as data: the server's
//! ErrorResponse fields (SQLSTATE first) and, when no server answered,
//! a typed cause. Callers decide by these, never by message text.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// The SQLSTATEs pgrepctl acts on (PostgreSQL's errcodes.txt names).
pub mod sqlstate {
    /// Rejected by pg_hba.conf, peer/ident failed, or no such role.
    pub const INVALID_AUTHORIZATION_SPECIFICATION: &str = "28000";
    /// Wrong password (password, md5, scram-sha-256).
    pub const INVALID_PASSWORD: &str = "28P01";
    /// No free connection slot or WAL sender (max_wal_senders).
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    /// Starting up, shutting down, or in recovery without hot standby.
    pub const CANNOT_CONNECT_NOW: &str = "57P03";
    /// A slot (or setting) that does not exist.
    pub const UNDEFINED_OBJECT: &str = "42704";
    /// A slot that already exists.
    pub const DUPLICATE_OBJECT: &str = "42710";
    /// The role lacks the REPLICATION attribute.
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    /// A slot in use by another walsender.
    pub const OBJECT_IN_USE: &str = "55006";
}

/// An ErrorResponse, field by field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerError {
    /// `ERROR`, `FATAL` or `PANIC` (the non-localised `V` field when sent).
    pub severity: String,
    pub sqlstate: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl ServerError {
    /// Read the fields of an ErrorResponse body.
    pub fn from_fields<'a>(fields: impl IntoIterator<Item = (u8, &'a [u8])>) -> ServerError {
        let mut e = ServerError::default();
        let mut localised_severity = String::new();
        for (kind, value) in fields {
            let v = String::from_utf8_lossy(value).into_owned();
            match kind {
                b'V' => e.severity = v,
                b'S' => localised_severity = v,
                b'C' => e.sqlstate = v,
                b'M' => e.message = v,
                b'D' => e.detail = Some(v),
                b'H' => e.hint = Some(v),
                _ => {}
            }
        }
        if e.severity.is_empty() {
            e.severity = localised_severity;
        }
        e
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:  {}", self.severity, self.message)?;
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

/// How far the login had got when the server refused: the same SQLSTATE
/// means different things before and after authentication (28000 before
/// any authentication request is pg_hba.conf or peer; after
/// AuthenticationOk it is a missing role or one that may not log in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// No authentication request received yet.
    BeforeAuth,
    /// The server asked for this method and had not yet said OK.
    Auth(AuthMethod),
    /// Authenticated; the server was setting up the session.
    AfterAuth,
    /// A command on an established connection.
    Command,
}

/// The authentication methods a server may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Cleartext,
    Md5,
    ScramSha256,
    /// GSSAPI, SSPI, Kerberos, SCM credentials, or SASL without
    /// SCRAM-SHA-256: methods pgrepctl does not speak.
    Other,
}

/// Where the server saw us come from, for the pg_hba.conf line that
/// would let us in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A TCP connection from this local address.
    Tcp(IpAddr),
    /// A Unix-domain socket (`local` lines, `[local]` in messages).
    Local,
}

/// Why a replication connection or command failed.
#[derive(Debug)]
pub enum ReplError {
    /// The server answered with an error.
    Server {
        /// Boxed: the error path stays small for the common Ok.
        error: Box<ServerError>,
        stage: Stage,
        origin: Origin,
    },
    /// No server took the connection: refused, unreachable, no such
    /// host, or the connect did not complete within the timeout.
    Unreachable {
        endpoint: String,
        cause: std::io::Error,
    },
    /// Connected, and a request had no answer within `limit`.
    NoAnswer { limit: Duration },
    /// The connection broke in the middle of the conversation.
    Io(std::io::Error),
    /// The server asks for a password and none is known.
    PasswordRequired,
    /// The server asks for an authentication method we do not speak.
    AuthMethodUnsupported(String),
    /// `sslmode=require` (or verify-*), and the server does not accept SSL.
    TlsRequired,
    /// The TLS handshake failed, in libpq's words, with the fix.
    Tls(crate::pg::tls::Failure),
    /// The server sent something the protocol does not allow there.
    Protocol(String),
    /// A name that cannot be sent as a replication-command identifier.
    InvalidName(String),
    /// The command needs a newer server.
    Unsupported(String),
}

impl ReplError {
    /// The server's SQLSTATE, when the server answered with an error.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            ReplError::Server { error, .. } => Some(error.sqlstate.as_str()),
            _ => None,
        }
    }

    /// The server's error, when it answered with one.
    pub fn server(&self) -> Option<&ServerError> {
        match self {
            ReplError::Server { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl fmt::Display for ReplError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplError::Server { error, .. } => write!(f, "{error}"),
            ReplError::Unreachable { endpoint, cause } => {
                write!(f, "cannot connect to {endpoint}: {cause}")
            }
            ReplError::NoAnswer { limit } => {
                write!(f, "no answer within {}s", limit.as_secs_f64())
            }
            ReplError::Io(e) => write!(f, "the connection broke: {e}"),
            ReplError::PasswordRequired => {
                f.write_str("the server asks for a password and none was given")
            }
            ReplError::AuthMethodUnsupported(m) => {
                write!(
                    f,
                    "the server asks for {m} authentication, which pgrepctl does not speak"
                )
            }
            ReplError::TlsRequired => {
                f.write_str("server does not support SSL, but SSL was required")
            }
            ReplError::Tls(m) => write!(f, "{m}"),
            ReplError::Protocol(m) => write!(f, "unexpected answer from the server: {m}"),
            ReplError::InvalidName(n) => write!(f, "invalid name {n:?} for a replication command"),
            ReplError::Unsupported(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ReplError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_prefer_the_unlocalised_severity() {
        let e = ServerError::from_fields([
            (b'S', &b"FATAL"[..]),
            (b'V', b"FATAL"),
            (b'C', b"28P01"),
            (b'M', b"password authentication failed for user \"r\""),
            (b'D', b"Connection matched line 3."),
            (b'R', b"auth_failed"),
        ]);
        assert_eq!(e.severity, "FATAL");
        assert_eq!(e.sqlstate, sqlstate::INVALID_PASSWORD);
        assert_eq!(e.detail.as_deref(), Some("Connection matched line 3."));
        assert_eq!(e.hint, None);
        let shown = e.to_string();
        assert!(
            shown.starts_with("FATAL:  password authentication failed"),
            "{shown}"
        );
        // A server that sends only the localised severity (9.5 and older
        // style) still has one.
        let e = ServerError::from_fields([(b'S', &b"FEHLER"[..]), (b'C', b"42710")]);
        assert_eq!(e.severity, "FEHLER");
        let r = ReplError::Server {
            error: Box::new(e),
            stage: Stage::Command,
            origin: Origin::Local,
        };
        assert_eq!(r.sqlstate(), Some(sqlstate::DUPLICATE_OBJECT));
        assert_eq!(ReplError::PasswordRequired.sqlstate(), None);
    }
}
