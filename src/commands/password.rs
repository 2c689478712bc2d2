//! Where the replication password comes from: a file or an environment
//! variable, never argv (argv is world-readable in /proc and ps).

use crate::error::{Code, Error, Result};
use crate::secret::Secret;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub const ENV: &str = "PGREPCTL_REPLICATION_PASSWORD";

/// The password from `--password-file` or [`ENV`]; `None` when neither is
/// given. A file readable by group or others is refused unless the user
/// says `--allow-insecure`, as ssh does for keys.
pub fn load(file: Option<&Path>, allow_insecure: bool) -> Result<Option<Secret>> {
    let env = std::env::var(ENV).ok().filter(|v| !v.is_empty());
    match (file, env) {
        (Some(_), Some(_)) => Err(Error::new(
            Code::ConflictingFlags,
            format!("both --password-file and {ENV} are set"),
        )
        .hint(format!(
            "use one of them: unset {ENV} or drop --password-file"
        ))),
        (None, Some(pw)) => Ok(Some(Secret::new(pw))),
        (None, None) => Ok(None),
        (Some(path), None) => read_file(path, allow_insecure).map(Some),
    }
}

pub fn read_file(path: &Path, allow_insecure: bool) -> Result<Secret> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::new(
            Code::PasswordFileMissing,
            format!("cannot read password file {}: {e}", path.display()),
        )
        .hint("create it with the password on the first line, mode 0600")
    })?;
    if !meta.is_file() {
        return Err(Error::new(
            Code::PasswordFileMissing,
            format!("password file {} is not a regular file", path.display()),
        )
        .hint("give a file whose first line is the password, mode 0600"));
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 && !allow_insecure {
        return Err(Error::new(
            Code::PasswordFileInsecure,
            format!(
                "password file {} is readable by others (mode {:04o})",
                path.display(),
                mode & 0o7777
            ),
        )
        .hint(format!(
            "chmod 600 {} (or pass --allow-insecure)",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(
            Code::PasswordFileMissing,
            format!("cannot read password file {}: {e}", path.display()),
        )
        .hint("make it readable by the user running pgrepctl, mode 0600")
    })?;
    let first = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if first.is_empty() {
        return Err(Error::new(
            Code::PasswordFileEmpty,
            format!("password file {} is empty", path.display()),
        )
        .hint("put the password on its first line"));
    }
    Ok(Secret::new(first))
}
