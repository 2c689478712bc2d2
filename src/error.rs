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
    Interrupted,
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

/// A failure explained for a human: what is wrong, and what to do next.
#[derive(Debug, Clone, Serialize)]
pub struct Error {
    pub code: Code,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            hint: None,
        }
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
        Error::new(code, format!("{what}: {err}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

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
