//! Man pages and shell completions, generated from the clap definitions so
//! they cannot drift from the real flags. `pgrepctl generate-docs DIR`
//! writes them; a test fails when the committed copies in `man/` and
//! `completions/` are stale.

use crate::cli::Cli;
use crate::error::Code;
use clap::CommandFactory;
use roff::{Roff, bold, roman};
use std::io::Write;
use std::path::{Path, PathBuf};

/// (name, text) sections the generator cannot derive from clap.
fn extra_sections(sub: Option<&str>) -> Vec<(&'static str, Vec<String>)> {
    let mut s = vec![];
    let check_like = matches!(sub, Some("check") | Some("smoke-test"));
    let wal_like = matches!(sub, Some("wal-push") | Some("wal-fetch"));
    let mut exit = vec![];
    if sub.is_none() || !(check_like || wal_like) {
        exit.push("Mutating commands (init-master, clone-standby, sandbox): 0 done, or nothing to do; 1 failed at run time (nothing was left half-changed: a failed run undoes what it did); 2 bad usage (invalid flag or value; nothing was changed).".to_string());
    }
    if sub.is_none() || check_like || sub == Some("migrate") {
        exit.push("check, smoke-test and migrate status use the monitoring (Nagios) convention: 0 OK, 1 WARNING, 2 CRITICAL (also a node given that is down: it refuses connections, is starting or shutting down, or does not answer within --timeout), 3 UNKNOWN (a node that answers but will not tell: wrong password, pg_hba.conf, missing privilege; or bad usage).".to_string());
    }
    if sub.is_none() || wal_like {
        exit.push("wal-push and wal-fetch (archive_command and restore_command): 0 done; 1 failed, with one line on stderr (wal-fetch also exits 1, quietly, when NAME is not in the archive: how archive recovery ends); 2 not a WAL file name, or bad usage. Never above 125, so the server counts every failure (126, 127 and deaths by a signal it does not).".to_string());
    }
    s.push(("EXIT STATUS", exit));
    s.push((
        "ENVIRONMENT",
        vec![
            "PGHOST, PGPORT, PGUSER, PGDATABASE: connection defaults, as in libpq; -d conninfo and -h/-p/-U override them.".into(),
            "PGPASSFILE, PGPASSWORD: where the connecting user's password comes from (default ~/.pgpass). Passwords are never taken from the command line.".into(),
            "PGREPCTL_REPLICATION_PASSWORD: the replication role's password, instead of --password-file.".into(),
            "PGDATA: default for -D.".into(),
            "NO_COLOR: no colour in text output.".into(),
        ],
    ));
    s.push((
        "FILES",
        vec![
            "postgresql.conf and pg_hba.conf: located with SHOW config_file and SHOW hba_file (Debian keeps them in /etc/postgresql/VERSION/CLUSTER).".into(),
            "FILE.pgrepctl.orig: the original of each file, saved beside it the first time pgrepctl changes it; it appears complete or not at all.".into(),
            ".FILE.pgrepctl-tmp.PID: a file being written (renamed over FILE when complete); one left by a killed run is removed by the next run.".into(),
            "postgresql.auto.conf: settings PostgreSQL's ALTER SYSTEM owns; pgrepctl changes values there with ALTER SYSTEM. On a standby (12+), clone-standby writes primary_conninfo, primary_slot_name, hot_standby, port and raised hot-standby limits there.".into(),
            "standby.signal (12+) or recovery.conf (10-11): written by clone-standby in the standby's data directory.".into(),
            "PGDATA/pgrepctl.pgpass: the standby's 0600 password file named by passfile= in primary_conninfo (clone-standby --passfile chooses another place).".into(),
            "PGDATA/pgrepctl-server.log: the server log whenever pgrepctl starts or restarts a server with pg_ctl (clone-standby, init-master --restart, sandbox); Debian clusters log where pg_ctlcluster says.".into(),
            ".NAME.pgrepctl-clone.PID: clone-standby's temporary copy beside the target, renamed into place when complete; removed on failure, or by the next run if pgrepctl was killed.".into(),
            ".NAME.pgrepctl-wal.PID.N: a file wal-push or wal-fetch is copying (in the archive directory, or beside %p), linked or renamed to NAME when complete and fsynced; one a killed copy left is removed by a later one once it is a minute old.".into(),
            "sandbox.toml: in the sandbox directory, the nodes sandbox up built (sandbox status and down act on exactly those).".into(),
        ],
    ));
    s.push(("EXAMPLES", examples(sub)));
    if matches!(sub, None | Some("check") | Some("smoke-test")) {
        s.push((
            "FINDING CODES",
            crate::health::finding::ALL
                .iter()
                .map(|(code, meaning)| format!("{code}: {meaning}."))
                .collect(),
        ));
    }
    if sub.is_none() {
        s.push((
            "ERROR CODES",
            vec![format!(
                "With --json a failure prints {{\"ok\":false,\"error\":{{\"code\":…,\"message\":…,\"hint\":…,\"source\":…}}}}; source, when present, is the cause underneath: {{\"message\":…,\"sqlstate\":… (the server's SQLSTATE),\"os_error\":… (errno),\"source\":…}}. The codes are stable: {}.",
                Code::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
            )],
        ));
    }
    s
}

fn examples(sub: Option<&str>) -> Vec<String> {
    let init = "pgrepctl init-master -D /var/lib/postgresql/15/main --allow 10.0.0.2 --password-file /root/replicator.pass";
    let clone = "pgrepctl clone-standby --primary 'host=10.0.0.1 user=replicator' -D /var/lib/postgresql/15/main --password-file /root/replicator.pass";
    let check = "pgrepctl check --primary 'host=10.0.0.1 user=monitor' --standby 'host=10.0.0.2 user=monitor' --format nagios";
    let smoke = "pgrepctl smoke-test --primary 'host=10.0.0.1 user=postgres' --standby 'host=10.0.0.2 user=postgres'";
    match sub {
        Some("init-master") => vec![init.into(), format!("{init} --dry-run --json")],
        Some("clone-standby") => vec![clone.into()],
        Some("check") => vec![check.into()],
        Some("smoke-test") => vec![smoke.into()],
        Some("wal-push") => vec!["archive_command = '/usr/bin/pgrepctl wal-push %p /mnt/wal'".into()],
        Some("wal-fetch") => vec!["restore_command = '/usr/bin/pgrepctl wal-fetch %f %p /mnt/wal'".into()],
        Some("wal-prune") => vec![
            "pgrepctl wal-prune /mnt/wal --primary 'host=10.0.0.1 user=postgres' --standby 'host=10.0.0.2 user=postgres' --dry-run".into(),
            "pgrepctl wal-prune /mnt/wal --keep-from 000000010000000000000042".into(),
        ],
        _ => vec![init.into(), clone.into(), check.into(), smoke.into()],
    }
}

fn render_page(cmd: clap::Command, sub: Option<&str>) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd)
        .date("")
        .source(format!("pgrepctl {}", env!("CARGO_PKG_VERSION")));
    let mut out = vec![];
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    if sub.is_none() {
        man.render_subcommands_section(&mut out)?;
    }
    let mut roff = Roff::new();
    for (title, paras) in extra_sections(sub) {
        roff.control("SH", [title]);
        for p in paras {
            if title == "EXAMPLES" {
                roff.control("PP", []).text([bold(p)]);
            } else {
                roff.control("PP", []).text([roman(p)]);
            }
        }
    }
    roff.to_writer(&mut out)?;
    if sub.is_none() {
        man.render_version_section(&mut out)?;
    }
    Ok(out)
}

/// Every generated file: (relative path, contents).
pub fn generate() -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = vec![];
    let mut cmd = Cli::command();
    cmd.build();
    files.push((
        PathBuf::from("man/pgrepctl.1"),
        render_page(cmd.clone(), None)?,
    ));
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let name = sub.get_name().to_string();
        let page = sub.clone().name(format!("pgrepctl-{name}"));
        files.push((
            PathBuf::from(format!("man/pgrepctl-{name}.1")),
            render_page(page, Some(&name))?,
        ));
    }
    use clap_complete::Shell;
    for (shell, file) in [
        (Shell::Bash, "pgrepctl.bash"),
        (Shell::Zsh, "_pgrepctl"),
        (Shell::Fish, "pgrepctl.fish"),
    ] {
        let mut buf = vec![];
        clap_complete::generate(shell, &mut Cli::command(), "pgrepctl", &mut buf);
        files.push((PathBuf::from(format!("completions/{file}")), buf));
    }
    Ok(files)
}

/// Writes the pages and completions that differ; returns those written.
pub fn write_all(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = vec![];
    for (rel, bytes) in generate()? {
        let path = root.join(&rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        // Current files are left alone: an idempotent run reports no change.
        if std::fs::read(&path).is_ok_and(|old| old == bytes) {
            continue;
        }
        std::fs::File::create(&path)?.write_all(&bytes)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    /// The committed man pages and completions must match the clap definitions.
    #[test]
    fn committed_docs_are_current() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for (rel, bytes) in super::generate().unwrap() {
            let on_disk = std::fs::read(root.join(&rel)).unwrap_or_default();
            assert!(
                on_disk == bytes,
                "{} is stale: run `cargo run -- generate-docs .` and commit the result",
                rel.display()
            );
        }
    }
}
