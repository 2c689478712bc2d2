//! The data directory a `--force` run replaces is moved aside (renamed
//! beside the target, or into a hidden directory inside a mount point)
//! until the new standby runs. If pgrepctl is killed in between, the next
//! run must never delete it: it puts it back when the target is missing
//! (the kill came between "move aside" and "move the copy in"), and
//! otherwise leaves it and names it.

use crate::error::{Error, Result};
use crate::report::Printer;
use std::path::{Path, PathBuf};

/// The name of the replaced directory kept aside by this process.
pub fn name_for(target: &Path, mount_point: bool) -> PathBuf {
    let pid = std::process::id();
    if mount_point {
        return target.join(format!(".pgrepctl-old.{pid}"));
    }
    target.with_file_name(format!(".{}.pgrepctl-old.{pid}", file_name(target)))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Directories kept aside by runs whose process is gone, beside the
/// target and inside it (a mount point).
pub fn stale(target: &Path) -> Vec<PathBuf> {
    let beside = format!(".{}.pgrepctl-old.", file_name(target));
    let mut found = vec![];
    let dirs = [
        (target.parent().map(Path::to_path_buf), beside.as_str()),
        (Some(target.to_path_buf()), ".pgrepctl-old."),
    ];
    for (dir, prefix) in dirs {
        let Some(dir) = dir else { continue };
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let dead = n
                .strip_prefix(prefix)
                .and_then(|p| p.parse::<i32>().ok())
                .is_some_and(|pid| !crate::pg::pidfile::pid_alive(pid));
            if dead {
                found.push(e.path());
            }
        }
    }
    found.sort();
    found
}

/// Before the target is inspected: put back a replaced directory that an
/// interrupted run left aside with nothing in its place, and warn about
/// any other (never removed: it may be the only copy of a cluster). A dry
/// run only says what the real run will do.
pub fn recover(target: &Path, dry_run: bool, printer: &Printer) -> Result<Vec<String>> {
    let mut warnings = vec![];
    let mut stale = stale(target);
    if !target.exists() && stale.len() == 1 && stale[0].parent() != Some(target) {
        let old = stale.remove(0);
        if dry_run {
            warnings.push(format!(
                "{} holds the directory an interrupted run replaced; a real run first puts it back at {}",
                old.display(),
                target.display()
            ));
        } else {
            std::fs::rename(&old, target).map_err(|e| {
                Error::io(
                    format!(
                        "cannot put {} (replaced by an interrupted run) back at {}",
                        old.display(),
                        target.display()
                    ),
                    e,
                )
            })?;
            printer.info(format!(
                "put {} back at {}: an interrupted run had moved it aside",
                old.display(),
                target.display()
            ));
        }
    }
    for old in stale {
        warnings.push(format!(
            "{} holds a data directory an interrupted clone-standby run replaced; it is kept: remove it once you no longer need it",
            old.display()
        ));
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No process has this PID (above Linux's pid_max).
    const DEAD: &str = "2147483647";

    fn printer() -> Printer {
        Printer {
            quiet: true,
            ..Printer::default()
        }
    }

    #[test]
    fn a_replaced_directory_with_nothing_in_its_place_is_put_back() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("data");
        let old = t.path().join(format!(".data.pgrepctl-old.{DEAD}"));
        std::fs::create_dir(&old).unwrap();
        std::fs::write(old.join("marker"), "the DBA's data").unwrap();
        // A dry run says so and changes nothing.
        let w = recover(&target, true, &printer()).unwrap();
        assert!(w[0].contains("puts it back"), "{w:?}");
        assert!(old.exists() && !target.exists());
        let w = recover(&target, false, &printer()).unwrap();
        assert_eq!(w, Vec::<String>::new());
        assert_eq!(
            std::fs::read_to_string(target.join("marker")).unwrap(),
            "the DBA's data"
        );
        assert!(!old.exists());
    }

    #[test]
    fn a_replaced_directory_beside_an_existing_target_is_kept_and_named() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("data");
        std::fs::create_dir(&target).unwrap();
        let beside = t.path().join(format!(".data.pgrepctl-old.{DEAD}"));
        let inside = target.join(format!(".pgrepctl-old.{DEAD}"));
        std::fs::create_dir(&beside).unwrap();
        std::fs::create_dir(&inside).unwrap();
        let w = recover(&target, false, &printer()).unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w.iter().all(|m| m.contains("it is kept")), "{w:?}");
        assert!(beside.exists() && inside.exists());
    }

    #[test]
    fn a_live_run_is_not_taken_for_an_interrupted_one() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("data");
        std::fs::create_dir(name_for(&target, false)).unwrap();
        assert_eq!(stale(&target), Vec::<PathBuf>::new());
    }
}
