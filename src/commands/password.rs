//! Where the replication password comes from: a file or an environment
//! variable, never argv (argv is world-readable in /proc and ps).

use crate::error::{Code, Error, Result};
use crate::secret::Secret;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::OnceLock;

pub const ENV: &str = "PGREPCTL_REPLICATION_PASSWORD";

/// The variable's value, taken out of pgrepctl's environment by
/// [`take_env`]; read from the environment when that was not called
/// (library use).
static FROM_ENV: OnceLock<Option<OsString>> = OnceLock::new();

/// Move [`ENV`] from the process environment into memory, so that no
/// child process (psql, pg_basebackup, pg_ctl, initdb) inherits the
/// password. Called first thing in `main`, while pgrepctl has one thread.
pub fn take_env() {
    let value = std::env::var_os(ENV);
    let _ = FROM_ENV.set(value);
    // SAFETY: no other thread exists yet to read the environment.
    unsafe { std::env::remove_var(ENV) };
}

fn from_env() -> Result<Option<Secret>> {
    let value = FROM_ENV.get_or_init(|| std::env::var_os(ENV)).clone();
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => match v.into_string() {
            Ok(s) => Ok(Some(Secret::new(s))),
            Err(_) => Err(Error::new(
                Code::InvalidValue,
                format!("{ENV} is not valid UTF-8"),
            )
            .hint(format!(
                "set {ENV} to the password in UTF-8, or put it in a 0600 file and pass --password-file"
            ))),
        },
    }
}

/// The password from `--password-file` or [`ENV`]; `None` when neither is
/// given. A file readable by group or others is refused unless the user
/// says `--allow-insecure`, as ssh does for keys.
pub fn load(file: Option<&Path>, allow_insecure: bool) -> Result<Option<Secret>> {
    let env = from_env()?;
    match (file, env) {
        (Some(_), Some(_)) => Err(Error::new(
            Code::ConflictingFlags,
            format!("both --password-file and {ENV} are set"),
        )
        .hint(format!(
            "use one of them: unset {ENV} or drop --password-file"
        ))),
        (None, Some(pw)) => Ok(Some(pw)),
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
        .hint("pass the path of a file (mode 0600) whose first line is the password"));
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
    let bytes = std::fs::read(path).map_err(|e| {
        Error::new(
            Code::PasswordFileMissing,
            format!("cannot read password file {}: {e}", path.display()),
        )
        .hint("make it readable by the user running pgrepctl (mode 0600)")
    })?;
    let text = check_text(path, &bytes)?;
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

/// The file's text, refused when a password cannot come from it intact:
/// PostgreSQL and libpq would cut a password at a NUL byte, and a password
/// in another encoding than UTF-8 would not match the one the server has.
fn check_text<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str> {
    let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    if first.contains(&0) {
        return Err(Error::new(
            Code::InvalidValue,
            format!("password file {} contains a NUL byte in its first line", path.display()),
        )
        .hint("write the password as text on the first line (a NUL byte cannot be part of a PostgreSQL password)"));
    }
    std::str::from_utf8(bytes).map_err(|_| {
        Error::new(
            Code::InvalidValue,
            format!("password file {} is not valid UTF-8", path.display()),
        )
        .hint("save the file in UTF-8 with the password on its first line")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        (dir, p)
    }

    #[test]
    fn refuses_nul_non_utf8_and_directories_with_a_hint() {
        for (bytes, code, says) in [
            (&b"sec\0ret\n"[..], Code::InvalidValue, "NUL byte"),
            (&b"\xffsecret\n"[..], Code::InvalidValue, "UTF-8"),
        ] {
            let (_d, p) = file_with(bytes);
            let e = read_file(&p, false).unwrap_err();
            assert_eq!(e.code, code);
            assert!(e.message.contains(says), "{}", e.message);
            assert!(e.hint.is_some());
        }
        let dir = tempfile::tempdir().unwrap();
        let e = read_file(dir.path(), false).unwrap_err();
        assert_eq!(e.code, Code::PasswordFileMissing);
        assert!(e.message.contains("not a regular file"), "{}", e.message);
        assert!(e.hint.is_some());
    }

    #[test]
    fn takes_the_first_line() {
        let (_d, p) = file_with(b"s3cret\r\nignored\0\n");
        assert_eq!(read_file(&p, false).unwrap().expose(), "s3cret");
    }
}
