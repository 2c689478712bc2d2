//! The one error type every command returns, with the stable codes that
//! scripts and Ansible match on. Adding a variant here is a contract change:
//! the man page lists every code from [`Code::ALL`] (generated; a test
//! fails when it is stale), so only the README's prose needs a line.

use serde::Serialize;
use std::fmt;

/// Declares [`Code`] and [`Code::ALL`] from one list, so the documented
/// list of codes cannot miss a variant.
macro_rules! codes {
    ($($variant:ident),* $(,)?) => {
        /// Stable, documented error codes. The serialised form
        /// (`SCREAMING_SNAKE_CASE`) is what `--json` prints; never rename one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum Code {
            $($variant),*
        }

        impl Code {
            /// Every code, in declaration order (docs and their test).
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];
        }
    };
}

codes! {
    Usage,
    ConflictingFlags,
    ServerNotRunning,
    ConnectionFailed,
    TlsFailed,
    CertificateUnsuitable,
    AuthenticationFailed,
    NotSuperuser,
    UnsupportedVersion,
    NotADataDirectory,
    DataDirectoryMismatch,
    FileNotWritable,
    FileUnreadable,
    ConfigParseError,
    ConfigRejected,
    SetOnCommandLine,
    InvalidAddress,
    InvalidRoleName,
    InvalidSlotName,
    InvalidValue,
    InsecureRefused,
    PasswordFileMissing,
    PasswordFileEmpty,
    PasswordFileInsecure,
    PasswordRequired,
    SlotConflict,
    RoleNotDedicated,
    SlotNeedsRestart,
    ReloadFailed,
    RestartFailed,
    VerifyFailed,
    ToolNotFound,
    ToolFailed,
    UnknownConninfoKeyword,
    HbaRejected,
    PrimaryNotReady,
    VersionMismatch,
    PgdataNotEmpty,
    PostmasterRunning,
    TargetIsPrimary,
    TargetInUse,
    DiskSpace,
    CopyFailed,
    StandbyNotStreaming,
    StartFailed,
    Timeout,
    NotAStandby,
    NotAPrimary,
    NotResumable,
    UpstreamAlive,
    PromoteFailed,
    RewindNeeded,
    RewindNotPossible,
    RewindFailed,
    Diverged,
    SystemIdMismatch,
    CandidateBehind,
    ArchiveConflict,
    NoKeepPoint,
    PortInUse,
    Interrupted,
    WalLevelNotLogical,
    NoReplicaIdentity,
    TargetNotEmpty,
    ExtensionMissing,
    NoMigration,
    NotSynchronized,
    ServerReadOnly,
    Busy,
    Io,
    Internal,
}

impl Code {
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Usage problems exit 2 (3 for `check`), everything else is a run-time failure.
    pub fn is_usage(self) -> bool {
        matches!(
            self,
            Code::Usage
                | Code::ConflictingFlags
                | Code::InvalidAddress
                | Code::InvalidRoleName
                | Code::InvalidSlotName
                | Code::InvalidValue
                | Code::InsecureRefused
                | Code::UnknownConninfoKeyword
        )
    }
}

/// A failure explained for a human: what is wrong, and what to do next;
/// and, for scripts, what caused it underneath (`source`).
#[derive(Debug, Clone, Serialize)]
pub struct Error {
    pub code: Code,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Box<Source>>,
}

/// The cause under an [`Error`], as data: the server's SQLSTATE, or the
/// operating system's error number, with the cause's own words, and its
/// own cause in turn.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Source {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_error: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Box<Source>>,
}

impl Source {
    pub fn of(e: &(dyn std::error::Error + 'static)) -> Source {
        let io = e.downcast_ref::<std::io::Error>();
        let db = e
            .downcast_ref::<tokio_postgres::error::DbError>()
            .or_else(|| {
                e.downcast_ref::<tokio_postgres::Error>()
                    .and_then(|p| p.as_db_error())
            });
        Source {
            message: match db {
                Some(db) => db.message().to_string(),
                None => e.to_string(),
            },
            sqlstate: db.map(|d| d.code().code().to_string()),
            os_error: io.and_then(|i| i.raw_os_error()),
            source: e
                .source()
                .filter(|_| db.is_none())
                .map(|s| Box::new(Source::of(s))),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Source {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as _)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            hint: None,
            source: None,
        }
    }

    /// Keep what caused this error (its SQLSTATE or errno, its words).
    pub fn caused_by(mut self, cause: &(dyn std::error::Error + 'static)) -> Self {
        self.source = Some(Box::new(Source::of(cause)));
        self
    }

    /// The server's SQLSTATE under this error, if a server refused.
    pub fn sqlstate(&self) -> Option<&str> {
        let mut cur = self.source.as_deref();
        while let Some(s) = cur {
            if let Some(code) = &s.sqlstate {
                return Some(code);
            }
            cur = s.source.as_deref();
        }
        None
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn io(what: impl fmt::Display, err: std::io::Error) -> Self {
        let code = match err.kind() {
            std::io::ErrorKind::PermissionDenied => Code::FileNotWritable,
            _ => Code::Io,
        };
        Error::new(code, format!("{what}: {err}")).caused_by(&err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as _)
    }
}

/// Shorthand for building an [`Error`] with `format!` arguments.
#[macro_export]
macro_rules! fail {
    ($code:ident, $($arg:tt)*) => {
        $crate::error::Error::new($crate::error::Code::$code, format!($($arg)*))
    };
}

/// A failed command: the error, plus warnings gathered before it failed.
#[derive(Debug)]
pub struct Failure {
    pub error: Error,
    pub warnings: Vec<String>,
    /// Something was changed before the failure (a clone in place whose
    /// server then did not stream): reported, so Ansible does not lie.
    pub changed: bool,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            error,
            warnings: vec![],
            changed: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_keep_their_errno_as_source() {
        let e = Error::io(
            "cannot read /x",
            std::io::Error::from_raw_os_error(libc::ENOENT),
        );
        let src = e.source.as_deref().unwrap();
        assert_eq!(src.os_error, Some(libc::ENOENT));
        assert_eq!(e.sqlstate(), None);
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["source"]["os_error"], libc::ENOENT);
        assert!(Error::new(Code::Io, "x").source.is_none());
        assert!(
            serde_json::to_value(Error::new(Code::Io, "x"))
                .unwrap()
                .get("source")
                .is_none()
        );
    }

    #[test]
    fn sqlstate_is_found_down_the_chain() {
        let mut e = Error::new(Code::ToolFailed, "x");
        e.source = Some(Box::new(Source {
            message: "outer".into(),
            sqlstate: None,
            os_error: None,
            source: Some(Box::new(Source {
                message: "inner".into(),
                sqlstate: Some("28P01".into()),
                os_error: None,
                source: None,
            })),
        }));
        assert_eq!(e.sqlstate(), Some("28P01"));
        let chain = std::error::Error::source(&e).unwrap();
        assert_eq!(chain.to_string(), "outer");
        assert_eq!(chain.source().unwrap().to_string(), "inner");
    }
}
