//! The standby's own configuration, written by pgrepctl rather than by
//! `pg_basebackup -R`: a newer pg_basebackup writes conninfo keywords
//! (`channel_binding`, `sslnegotiation`, …) that an older server's
//! walreceiver rejects, and the standby then never streams. Everything here
//! is pure text, decided by the server's `server_version_num`.

use super::ParseError;
use super::pgconf;

/// The keywords of `primary_conninfo`: only ones every supported server
/// (10+) knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryConninfo {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Absolute path of a 0600 password file, when a password is needed.
    pub passfile: Option<String>,
    /// The password itself, only when the user asked for it in the conninfo.
    pub password: Option<String>,
    pub application_name: String,
    /// `sslmode` when the user chose one other than libpq's default.
    pub sslmode: Option<String>,
    /// The certificate keywords given with it (sslrootcert, sslcert,
    /// sslkey, sslcrl), as the walreceiver's libpq takes them.
    pub ssl_files: Vec<(&'static str, String)>,
}

impl PrimaryConninfo {
    pub fn render(&self) -> String {
        let mut parts = vec![
            format!("host={}", quote_conninfo(&self.host)),
            format!("port={}", self.port),
            format!("user={}", quote_conninfo(&self.user)),
        ];
        if let Some(p) = &self.passfile {
            parts.push(format!("passfile={}", quote_conninfo(p)));
        }
        if let Some(p) = &self.password {
            parts.push(format!("password={}", quote_conninfo(p)));
        }
        parts.push(format!(
            "application_name={}",
            quote_conninfo(&self.application_name)
        ));
        if let Some(m) = &self.sslmode {
            parts.push(format!("sslmode={}", quote_conninfo(m)));
        }
        for (k, v) in &self.ssl_files {
            parts.push(format!("{k}={}", quote_conninfo(v)));
        }
        parts.join(" ")
    }

    /// The same, with the password replaced, for reports and logs.
    pub fn redacted(&self) -> String {
        let mut c = self.clone();
        if c.password.is_some() {
            c.password = Some("********".into());
        }
        c.render()
    }
}

/// libpq conninfo value quoting: bare when safe, else single quotes with
/// `\` and `'` backslash-escaped.
pub fn quote_conninfo(v: &str) -> String {
    let bare = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:,@".contains(c));
    if bare {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// Whether the server reads `recovery.conf` (10–11) or `standby.signal`
/// plus ordinary settings (12+).
pub fn uses_recovery_conf(version_num: u32) -> bool {
    crate::pg::version::Version::of(version_num).recovery_conf()
}

/// `recovery.conf` for 10–11, from `templates/recovery.conf`.
pub fn recovery_conf(version_num: u32, conninfo: &PrimaryConninfo, slot: Option<&str>) -> String {
    recovery_conf_with(version_num, conninfo, slot, &[])
}

/// The archive's settings on a standby: what fetches archived WAL, and
/// what cleans the archive up.
pub const ARCHIVE_SETTINGS: [&str; 2] = ["restore_command", "archive_cleanup_command"];

/// [`recovery_conf`] with the archive's settings (`restore_command`,
/// `archive_cleanup_command`) as well.
pub fn recovery_conf_with(
    version_num: u32,
    conninfo: &PrimaryConninfo,
    slot: Option<&str>,
    archive: &[(String, String)],
) -> String {
    let archive_lines: String = archive
        .iter()
        .map(|(k, v)| format!("{k} = '{}'\n", v.replace('\\', "\\\\").replace('\'', "''")))
        .collect();
    let slot_line = slot
        .map(|s| format!("primary_slot_name = {}\n", pgconf::quote_value(s)))
        .unwrap_or_default();
    include_str!("../../templates/recovery.conf")
        .replace(
            "{major}",
            &crate::pg::version::Version::of(version_num)
                .major()
                .to_string(),
        )
        .replace(
            "{primary_conninfo}",
            &format!("'{}'", conninfo.render().replace('\'', "''")),
        )
        .replace("{primary_slot_name}", &slot_line)
        .replace("{archive}", &archive_lines)
}

/// The archive's settings a recovery.conf holds, in order, so a rewrite
/// (follow, rejoin, switchover) keeps them.
pub fn archive_settings_of(recovery_conf: &str) -> Vec<(String, String)> {
    let Ok(file) = pgconf::parse(recovery_conf) else {
        return vec![];
    };
    ARCHIVE_SETTINGS
        .iter()
        .filter_map(|n| {
            let line = file.last_active(n)?;
            file.setting_at(line).map(|(_, v)| (n.to_string(), v))
        })
        .collect()
}

/// The settings that belong in `postgresql.auto.conf` of the standby, in
/// order: on 12+ the replication settings themselves, on every version
/// the server settings pgrepctl decided (`hot_standby`, port, …).
pub fn auto_conf_settings(
    version_num: u32,
    conninfo: &PrimaryConninfo,
    slot: Option<&str>,
    server: &[(String, String)],
) -> Vec<(String, String)> {
    let mut out = vec![];
    if !uses_recovery_conf(version_num) {
        out.push(("primary_conninfo".to_string(), conninfo.render()));
        if let Some(s) = slot {
            out.push(("primary_slot_name".to_string(), s.to_string()));
        }
    }
    out.extend(server.iter().cloned());
    out
}

/// Set each `(name, value)` in `postgresql.auto.conf` text: in place where
/// the file already sets it, else appended as a plain line (ALTER SYSTEM
/// rewrites this file and would drop a marked block's comments anyway).
/// `primary_slot_name` is removed when no slot is wanted on 12+, so a slot
/// inherited from a cloned standby's upstream does not linger.
pub fn edit_auto_conf(text: &str, settings: &[(String, String)]) -> Result<String, ParseError> {
    let mut file = pgconf::parse(text)?;
    let mut appended = String::new();
    for (name, value) in settings {
        let quoted = format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"));
        match file.last_active(name) {
            Some(line) => {
                if file.setting_at(line).map(|(_, v)| v) != Some(value.clone()) {
                    file.set_at(line, &quoted)
                        .map_err(|message| ParseError { line, message })?;
                }
            }
            None => appended.push_str(&format!("{name} = {quoted}\n")),
        }
    }
    let mut out = file.render();
    if !appended.is_empty() {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&appended);
    }
    Ok(out)
}

/// The names this module may write, so a setting inherited from the
/// upstream server's auto.conf can be dropped when we no longer want it.
pub fn drop_settings(text: &str, names: &[&str]) -> Result<String, ParseError> {
    let file = pgconf::parse(text)?;
    let doomed: Vec<usize> = file
        .entries()
        .into_iter()
        .filter_map(|e| match e {
            pgconf::Entry::Setting { line, name, .. }
                if names.iter().any(|n| n.eq_ignore_ascii_case(&name)) =>
            {
                Some(line)
            }
            _ => None,
        })
        .collect();
    Ok(text
        .split_inclusive('\n')
        .enumerate()
        .filter(|(i, _)| !doomed.contains(&(i + 1)))
        .map(|(_, l)| l)
        .collect())
}

/// One line of a libpq password file that matches any host, port and
/// database for `user`: the file serves exactly one connection.
pub fn passfile_line(user: &str, password: &str) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
    format!("*:*:*:{}:{}\n", esc(user), esc(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ci() -> PrimaryConninfo {
        PrimaryConninfo {
            host: "10.0.0.1".into(),
            port: 5432,
            user: "repl user".into(),
            passfile: Some("/var/lib/postgresql/15/main/pgrepctl.pgpass".into()),
            password: None,
            application_name: "db2".into(),
            sslmode: None,
            ssl_files: vec![],
        }
    }

    #[test]
    fn tls_keywords_follow_sslmode() {
        let mut c = ci();
        c.sslmode = Some("verify-full".into());
        c.ssl_files = vec![("sslrootcert", "/etc/pgrepctl/root ca.crt".into())];
        assert!(
            c.render()
                .ends_with("sslmode=verify-full sslrootcert='/etc/pgrepctl/root ca.crt'"),
            "{}",
            c.render()
        );
    }

    #[test]
    fn conninfo_has_only_old_keywords_and_quotes() {
        let s = ci().render();
        assert_eq!(
            s,
            "host=10.0.0.1 port=5432 user='repl user' passfile=/var/lib/postgresql/15/main/pgrepctl.pgpass application_name=db2"
        );
        assert_eq!(quote_conninfo("it's\\"), "'it\\'s\\\\'");
        for kw in ["channel_binding", "sslnegotiation", "gssencmode"] {
            assert!(!s.contains(kw));
        }
    }

    #[test]
    fn redacts_password() {
        let mut c = ci();
        c.password = Some("s3cret".into());
        assert!(c.render().contains("s3cret"));
        assert!(!c.redacted().contains("s3cret"));
    }

    #[test]
    fn recovery_conf_for_11() {
        let t = recovery_conf(110005, &ci(), Some("standby1"));
        assert!(t.contains("standby_mode = 'on'\n"));
        assert!(
            t.contains("primary_conninfo = 'host=10.0.0.1 port=5432 user=''repl user'' passfile")
        );
        assert!(t.contains("primary_slot_name = standby1\n"));
        assert!(t.contains("PostgreSQL 11 reads"));
        assert!(!recovery_conf(110005, &ci(), None).contains("primary_slot_name"));
        let archive = vec![
            (
                "restore_command".to_string(),
                "/usr/bin/pgrepctl wal-fetch %f %p '/mnt/it''s'".to_string(),
            ),
            (
                "archive_cleanup_command".to_string(),
                "pg_archivecleanup /mnt %r".to_string(),
            ),
        ];
        let t = recovery_conf_with(110005, &ci(), None, &archive);
        assert!(
            t.contains("restore_command = '/usr/bin/pgrepctl wal-fetch %f %p ''/mnt/it''''s'''\n"),
            "{t}"
        );
        assert_eq!(archive_settings_of(&t), archive, "read back as written");
        assert!(archive_settings_of(&recovery_conf(110005, &ci(), None)).is_empty());
        let parsed = pgconf::parse(&t).unwrap();
        assert!(parsed.last_active("primary_conninfo").is_some());
    }

    #[test]
    fn auto_conf_by_version() {
        let server = vec![("hot_standby".to_string(), "on".to_string())];
        let v11 = auto_conf_settings(110000, &ci(), Some("s"), &server);
        assert_eq!(v11, server);
        let v12 = auto_conf_settings(120000, &ci(), Some("s"), &server);
        assert_eq!(v12[0].0, "primary_conninfo");
        assert_eq!(v12[1], ("primary_slot_name".into(), "s".into()));
    }

    #[test]
    fn edits_auto_conf_in_place_and_is_idempotent() {
        let text = "# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\nmax_connections = '50'\nwork_mem = '8MB'\n";
        let want = vec![
            ("max_connections".to_string(), "100".to_string()),
            ("port".to_string(), "5433".to_string()),
        ];
        let once = edit_auto_conf(text, &want).unwrap();
        assert_eq!(
            once,
            "# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\nmax_connections = '100'\nwork_mem = '8MB'\nport = '5433'\n"
        );
        assert_eq!(edit_auto_conf(&once, &want).unwrap(), once);
        let ci_text = edit_auto_conf(
            "",
            &[("primary_conninfo".into(), "host='/tmp/a b' user=x".into())],
        )
        .unwrap();
        assert_eq!(ci_text, "primary_conninfo = 'host=''/tmp/a b'' user=x'\n");
        let f = pgconf::parse(&ci_text).unwrap();
        assert_eq!(
            f.setting_at(1).unwrap().1,
            "host='/tmp/a b' user=x",
            "PostgreSQL reads the value back unchanged"
        );
    }

    #[test]
    fn drops_inherited_settings() {
        let t = "a = 1\nprimary_slot_name = 'x'\nb = 2\n";
        assert_eq!(
            drop_settings(t, &["primary_slot_name"]).unwrap(),
            "a = 1\nb = 2\n"
        );
    }

    #[test]
    fn passfile_escapes() {
        assert_eq!(passfile_line("u:x", "p\\w:1"), "*:*:*:u\\:x:p\\\\w\\:1\n");
        // A double quote needs nothing in a passfile, and conninfo quotes
        // it like any other non-bare value.
        let l = passfile_line("rep\"l", "pw");
        assert_eq!(
            crate::pg::pgpass::lookup(&l, "h", 5432, "replication", "rep\"l").as_deref(),
            Some("pw")
        );
        assert_eq!(quote_conninfo("rep\"l"), "'rep\"l'");
    }
}
