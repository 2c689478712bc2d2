//! The WAL archive's commands as PostgreSQL runs them: the server replaces
//! `%p`, `%f`, `%r` (and `%%`) in the value, then hands the result to
//! `sh -c`. So a path written into one must survive both: shell-quoted,
//! and every `%` doubled. Pure text; the settings that hold these are
//! planned by init-master and clone-standby.

use std::path::Path;

/// One word for `sh -c`: bare when it has only characters no shell
/// treats specially, else single-quoted (a `'` inside becomes `'\''`).
pub fn shell_quote(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,@=".contains(c));
    if bare {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A path as one word of an archive, restore or cleanup command: quoted
/// for the shell, then `%` doubled so PostgreSQL leaves it alone.
pub fn word(p: &Path) -> String {
    shell_quote(&p.display().to_string()).replace('%', "%%")
}

/// archive_command: pgrepctl's own durable copy (`wal-push`).
pub fn push_command(pgrepctl: &Path, dir: &Path) -> String {
    format!("{} wal-push %p {}", word(pgrepctl), word(dir))
}

/// restore_command: pgrepctl's own fetch (`wal-fetch`), which never
/// leaves a partial file and fails quietly for a missing one.
pub fn fetch_command(pgrepctl: &Path, dir: &Path) -> String {
    format!("{} wal-fetch %f %p {}", word(pgrepctl), word(dir))
}

/// archive_cleanup_command: the server's own pg_archivecleanup, by
/// absolute path (the server's PATH may not have it).
pub fn cleanup_command(pg_archivecleanup: &Path, dir: &Path) -> String {
    format!("{} {} %r", word(pg_archivecleanup), word(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_the_shell_and_for_percent() {
        assert_eq!(shell_quote("/mnt/wal"), "/mnt/wal");
        assert_eq!(shell_quote("/mnt/my wal"), "'/mnt/my wal'");
        assert_eq!(shell_quote("/mnt/it's"), "'/mnt/it'\\''s'");
        assert_eq!(shell_quote("/a/$HOME;x"), "'/a/$HOME;x'");
        assert_eq!(word(Path::new("/mnt/100%p")), "'/mnt/100%%p'");
        assert_eq!(
            push_command(Path::new("/usr/bin/pgrepctl"), Path::new("/mnt/wal")),
            "/usr/bin/pgrepctl wal-push %p /mnt/wal"
        );
        assert_eq!(
            fetch_command(Path::new("/usr/bin/pgrepctl"), Path::new("/mnt/w al")),
            "/usr/bin/pgrepctl wal-fetch %f %p '/mnt/w al'"
        );
        assert_eq!(
            cleanup_command(
                Path::new("/usr/lib/postgresql/15/bin/pg_archivecleanup"),
                Path::new("/mnt/wal")
            ),
            "/usr/lib/postgresql/15/bin/pg_archivecleanup /mnt/wal %r"
        );
    }

    #[test]
    fn the_shell_reads_the_word_back() {
        for p in ["/tmp/a b", "/tmp/it's", "/tmp/$x`y`", "/tmp/plain"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(p)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), p);
        }
    }

    #[test]
    fn absolute_dirs() {
        assert_eq!(
            crate::fsutil::absolute(Path::new("/mnt/./wal/")).unwrap(),
            Path::new("/mnt/wal")
        );
        assert!(
            crate::fsutil::absolute(Path::new("wal"))
                .unwrap()
                .is_absolute()
        );
    }
}
