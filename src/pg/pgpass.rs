//! libpq's password file (`PGPASSFILE`, else `~/.pgpass`), which
//! tokio-postgres does not read. Same matching rules as libpq so a DBA's
//! existing file just works.

use std::path::PathBuf;

pub fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PGPASSFILE") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass"))
}

/// The replication password a standby's passfile holds for this
/// host/port/user (database field `replication`, as its walreceiver asks),
/// if the file can be read and a line matches.
pub fn replication_password(
    passfile: &std::path::Path,
    host: &str,
    port: u16,
    user: &str,
) -> Option<String> {
    let text = std::fs::read_to_string(passfile).ok()?;
    lookup(&text, host, port, "replication", user)
}

/// The password for host/port/db/user, if a line matches. `host` is a
/// socket directory for unix connections, which libpq matches as
/// `localhost` (and as the path itself).
pub fn lookup(contents: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    let host_alts: Vec<&str> = if host.starts_with('/') {
        vec![host, "localhost"]
    } else {
        vec![host]
    };
    for line in contents.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split(line);
        if fields.len() < 5 {
            continue;
        }
        let m = |f: &str, v: &str| f == "*" || f == v;
        if host_alts.iter().any(|h| m(&fields[0], h))
            && m(&fields[1], &port)
            && m(&fields[2], db)
            && m(&fields[3], user)
        {
            return Some(fields[4..].join(":"));
        }
    }
    None
}

/// Split on unescaped ':' and undo `\:` and `\\`.
fn split(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut().unwrap().push(n);
                }
            }
            ':' if out.len() < 5 => out.push(String::new()),
            _ => out.last_mut().unwrap().push(c),
        }
    }
    out
}

/// One line for a password file, escaped so any password round-trips.
pub fn line(host: &str, port: u16, db: &str, user: &str, password: &str) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
    format!(
        "{}:{}:{}:{}:{}\n",
        esc(host),
        port,
        esc(db),
        esc(user),
        esc(password)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_libpq() {
        let f = "# comment\ndb1:5432:*:bob:secret\n*:*:replication:rep:a\\:b\\\\c\n";
        assert_eq!(
            lookup(f, "db1", 5432, "x", "bob").as_deref(),
            Some("secret")
        );
        assert_eq!(lookup(f, "db1", 5433, "x", "bob"), None);
        assert_eq!(
            lookup(f, "/tmp", 1, "replication", "rep").as_deref(),
            Some("a:b\\c")
        );
        let l = line("h", 1, "replication", "u:x", "p:w\\");
        assert_eq!(
            lookup(&l, "h", 1, "replication", "u:x").as_deref(),
            Some("p:w\\")
        );
    }
}
