//! One changing pgrepctl run per data directory at a time. Two runs on one
//! directory (a second terminal, an Ansible retry while the first still
//! copies) would interleave their steps: two pg_rewinds of one node, two
//! swaps into one target, a promote during a rejoin.
//!
//! The lock is an abstract Unix socket named for the directory's path:
//! only one process can bind a name, the kernel frees it when that process
//! ends (also on SIGKILL), and nothing is written to disk (a lock file in
//! the data directory would be copied by pg_basebackup; one beside it
//! would outlive a killed run). Abstract names belong to a network
//! namespace, which is a host's here. A dry run changes nothing and takes
//! no lock.

use crate::error::{Code, Error, Result};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};

/// Set by a run for the pgrepctl it starts on the same directory (rejoin's
/// re-clone runs clone-standby): the directory's key, already locked.
pub const HELD_BY_PARENT: &str = "PGREPCTL_DIR_LOCK_HELD";

/// Held for the run; dropping it (or the process ending) frees the name.
#[derive(Debug)]
pub struct DirLock {
    _socket: Option<UnixListener>,
    pub key: String,
}

/// Lock `pgdata` for this run, or say which directory another run is
/// changing. `what` names the command, for the message.
pub fn data_dir(pgdata: &Path, what: &str) -> Result<DirLock> {
    let key = key(pgdata);
    if std::env::var(HELD_BY_PARENT).is_ok_and(|k| k == key) {
        return Ok(DirLock { _socket: None, key });
    }
    let addr = SocketAddr::from_abstract_name(name(&key).as_bytes())
        .map_err(|e| Error::io("cannot name the data directory's lock", e))?;
    match UnixListener::bind_addr(&addr) {
        Ok(s) => Ok(DirLock {
            _socket: Some(s),
            key,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(Error::new(
            Code::Busy,
            format!(
                "another pgrepctl run is changing {} ({what} was not started)",
                pgdata.display()
            ),
        )
        .hint("wait until it ends (it may be copying or waiting for the server), then rerun; nothing was changed by this run")),
        Err(e) => Err(Error::io("cannot take the data directory's lock", e)),
    }
}

/// [`data_dir`], or nothing for a dry run (it changes nothing).
pub fn unless_dry_run(pgdata: &Path, what: &str, dry_run: bool) -> Result<Option<DirLock>> {
    (!dry_run).then(|| data_dir(pgdata, what)).transpose()
}

/// The directory as one path whatever spelling the user gave: resolved
/// when it exists, else its parent resolved and its name appended (a
/// clone-standby target is made by the run).
pub fn key(pgdata: &Path) -> String {
    let resolved = std::fs::canonicalize(pgdata).ok().or_else(|| {
        let parent = std::fs::canonicalize(pgdata.parent()?).ok()?;
        Some(parent.join(pgdata.file_name()?))
    });
    resolved
        .unwrap_or_else(|| PathBuf::from(pgdata))
        .display()
        .to_string()
}

/// The abstract socket name: at most 107 bytes, so a long path is cut to
/// its tail after a hash of the whole (FNV-1a: no collision in practice
/// among one host's data directories).
fn name(key: &str) -> String {
    const PREFIX: &str = "pgrepctl-dir:";
    const MAX: usize = 107;
    if PREFIX.len() + key.len() <= MAX {
        return format!("{PREFIX}{key}");
    }
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let head = format!("{PREFIX}{hash:016x}:");
    let mut start = key.len() - (MAX - head.len());
    while !key.is_char_boundary(start) {
        start += 1;
    }
    format!("{head}{}", &key[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_run_per_directory_and_free_again_after() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let first = data_dir(&data, "init-master").unwrap();
        // Another spelling of the same directory is the same lock.
        let other_spelling = dir.path().join("data/../data");
        let e = data_dir(&other_spelling, "rejoin").unwrap_err();
        assert_eq!(e.code, Code::Busy);
        assert!(e.message.contains("another pgrepctl run"), "{}", e.message);
        // A sibling is not locked, nor a directory not made yet.
        let _sibling = data_dir(&dir.path().join("other"), "clone-standby").unwrap();
        drop(first);
        data_dir(&data, "rejoin").unwrap();
    }

    #[test]
    fn long_paths_get_a_short_distinct_name() {
        let a = format!("/{}/a", "x".repeat(200));
        let b = format!("/{}/b", "x".repeat(200));
        assert!(name(&a).len() <= 107);
        assert_ne!(name(&a), name(&b));
        assert_eq!(
            name("/var/lib/postgresql/15/main"),
            "pgrepctl-dir:/var/lib/postgresql/15/main"
        );
    }
}
