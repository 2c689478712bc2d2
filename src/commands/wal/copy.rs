//! Durable file copies for the archive: the bytes go to a temp file in the
//! destination's directory (so the final step is a same-filesystem link or
//! rename), are fsynced, get their final name, and the directory is
//! fsynced. A reader never sees a partial file under a final name, and a
//! copy killed at any moment leaves at most a temp file of pgrepctl's own
//! pattern, which the next copy into that directory removes once it is
//! older than a minute (long enough that a live copy — whose writes keep
//! its mtime fresh — is never taken for a dead one, also on an NFS archive
//! shared by several hosts, where a pid means nothing).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

/// What marks pgrepctl's temp files: `.<final name>.pgrepctl-wal.<pid>.<n>`.
/// Hidden (a leading dot), so neither PostgreSQL nor pg_archivecleanup
/// takes one for a WAL file.
const TEMP_MARK: &str = ".pgrepctl-wal.";

/// How old a temp file must be before a later copy removes it.
pub const STALE_AFTER: Duration = Duration::from_secs(60);

const CHUNK: usize = 1 << 20;

/// How the final name is given to the complete temp file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// Never replace an existing file: a hard link, which fails when the
    /// name exists (atomic, also on NFS); a rename only where the
    /// filesystem has no hard links, after checking the name is free.
    NoReplace,
    /// Replace whatever is there (restoring into pg_wal).
    Replace,
}

/// The result of [`copy_durably`] with [`Publish::NoReplace`].
#[derive(Debug, PartialEq, Eq)]
pub enum Placed {
    Written,
    /// The final name already existed; nothing was replaced.
    Exists,
}

/// Copy `src` to `dest` durably. `mode` is the new file's mode (before
/// the umask). Callers clear old temp files first ([`remove_stale_temps`]).
pub fn copy_durably(
    src: &mut File,
    dest: &Path,
    mode: u32,
    publish: Publish,
) -> io::Result<Placed> {
    let dir = parent(dest);
    let tmp = temp_path(dest);
    let result = write_temp(src, &tmp, mode).and_then(|()| match publish {
        Publish::Replace => fs::rename(&tmp, dest).map(|()| Placed::Written),
        Publish::NoReplace => place_no_replace(&tmp, dest),
    });
    let _ = fs::remove_file(&tmp);
    let placed = result?;
    File::open(dir)?.sync_all()?;
    Ok(placed)
}

/// Link `tmp` to `dest` unless `dest` exists. The temp file is removed
/// by the caller either way.
fn place_no_replace(tmp: &Path, dest: &Path) -> io::Result<Placed> {
    match fs::hard_link(tmp, dest) {
        Ok(()) => Ok(Placed::Written),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Placed::Exists),
        Err(e) if no_hard_links(&e) => {
            if fs::symlink_metadata(dest).is_ok() {
                return Ok(Placed::Exists);
            }
            fs::rename(tmp, dest).map(|()| Placed::Written)
        }
        Err(e) => Err(e),
    }
}

/// Errors of a filesystem without hard links (some FUSE and SMB mounts).
fn no_hard_links(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPERM | libc::EOPNOTSUPP | libc::EMLINK | libc::ENOSYS)
    )
}

/// Create `tmp` (it must not exist), fill it from `src`, fsync it.
fn write_temp(src: &mut File, tmp: &Path, mode: u32) -> io::Result<()> {
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
        pause_for_tests();
    }
    out.sync_all()
}

/// Debug builds only: `PGREPCTL_WAL_COPY_DELAY_MS` slows each chunk, so
/// a test can SIGKILL a copy while its temp file exists.
fn pause_for_tests() {
    if cfg!(debug_assertions) {
        if let Some(ms) = std::env::var("PGREPCTL_WAL_COPY_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            std::thread::sleep(Duration::from_millis(ms));
        }
    }
}

/// Whether two files hold the same bytes, read in chunks (segments are
/// 16MB or more: never whole into memory).
pub fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Read until `buf` is full or the file ends.
fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// A fresh temp name beside `dest`: pid plus a per-process counter, and
/// `create_new` refuses a name that exists all the same.
fn temp_path(dest: &Path) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    parent(dest).join(format!(
        ".{name}{TEMP_MARK}{}.{nanos:x}{n}",
        std::process::id()
    ))
}

/// Whether `name` is one of pgrepctl's archive temp files.
pub fn is_temp(name: &str) -> bool {
    name.starts_with('.') && name.contains(TEMP_MARK)
}

/// Remove pgrepctl's temp files in `dir` last modified more than
/// [`STALE_AFTER`] ago: left by a copy that was killed. Best effort; a
/// file that cannot be removed is left for the next run.
pub fn remove_stale_temps(dir: &Path) -> Vec<PathBuf> {
    let now = SystemTime::now();
    let mut removed = vec![];
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        if !is_temp(&e.file_name().to_string_lossy()) {
            continue;
        }
        let Ok(meta) = e.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > STALE_AFTER);
        if meta.is_file() && old && fs::remove_file(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    removed
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(dir: &Path, name: &str, bytes: &[u8]) -> File {
        let p = dir.join(name);
        fs::write(&p, bytes).unwrap();
        File::open(p).unwrap()
    }

    #[test]
    fn no_replace_never_touches_an_existing_file() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("000000010000000000000001");
        let placed = copy_durably(
            &mut src(t.path(), "a", b"one"),
            &dest,
            0o600,
            Publish::NoReplace,
        );
        assert_eq!(placed.unwrap(), Placed::Written);
        let placed = copy_durably(
            &mut src(t.path(), "b", b"two"),
            &dest,
            0o600,
            Publish::NoReplace,
        );
        assert_eq!(placed.unwrap(), Placed::Exists);
        assert_eq!(fs::read(&dest).unwrap(), b"one");
        let names: Vec<_> = fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| is_temp(n))
            .collect();
        assert!(names.is_empty(), "temp files left: {names:?}");
    }

    #[test]
    fn replace_overwrites() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("RECOVERYXLOG");
        fs::write(&dest, b"old").unwrap();
        copy_durably(
            &mut src(t.path(), "a", b"new"),
            &dest,
            0o600,
            Publish::Replace,
        )
        .unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
    }

    #[test]
    fn compares_by_content_across_chunks() {
        let t = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..(CHUNK * 2 + 17)).map(|i| (i % 251) as u8).collect();
        let mut other = big.clone();
        *other.last_mut().unwrap() ^= 1;
        let (a, b, c) = (t.path().join("a"), t.path().join("b"), t.path().join("c"));
        fs::write(&a, &big).unwrap();
        fs::write(&b, &big).unwrap();
        fs::write(&c, &other).unwrap();
        assert!(same_content(&a, &b).unwrap());
        assert!(!same_content(&a, &c).unwrap());
        fs::write(&c, &big[..10]).unwrap();
        assert!(!same_content(&a, &c).unwrap());
    }

    #[test]
    fn only_old_temp_files_of_our_pattern_are_removed() {
        let t = tempfile::tempdir().unwrap();
        let old = t.path().join(".000000010000000000000001.pgrepctl-wal.1.2");
        let fresh = t.path().join(".000000010000000000000002.pgrepctl-wal.1.3");
        let other = t.path().join(".something-else");
        for p in [&old, &fresh, &other] {
            fs::write(p, b"x").unwrap();
        }
        let past = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(past)
            .unwrap();
        File::options()
            .write(true)
            .open(&other)
            .unwrap()
            .set_modified(past)
            .unwrap();
        let removed = remove_stale_temps(t.path());
        assert_eq!(removed, vec![old.clone()]);
        assert!(fresh.exists() && other.exists() && !old.exists());
    }
}
