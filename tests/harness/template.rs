//! initdb once per bin directory and arguments, then a copy per cluster.
//! initdb costs about a CPU-second, a copy a tenth of that, and the suite
//! makes hundreds of clusters on two cores. A copy would share its
//! template's database system identifier, which tests tell clusters apart
//! by (clone, rejoin, follow and wal-prune refuse another system), so
//! each copy gets a new one: in pg_control (with its CRC) and in the long
//! header of each WAL segment, the only places PostgreSQL keeps it.
//!
//! Templates live under cargo's `target/tmp` (kept between runs, keyed by
//! the initdb binary and its arguments), never in /tmp.

use super::{as_pg, check, chown_pg, tempdir};
use std::hash::{Hash, Hasher};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Serialises the making of templates within this test process.
static MAKING: Mutex<()> = Mutex::new(());

/// Fill the empty directory `data` with a fresh cluster, as `initdb` with
/// `args` would, under a system identifier of its own.
pub fn init_into(bindir: &Path, args: &[String], data: &Path) {
    let tpl = template(bindir, args);
    let out = Command::new("cp")
        .arg("-a")
        .arg(tpl.join("."))
        .arg(data)
        .output()
        .unwrap();
    check(out, "cp -a (initdb template)");
    set_system_id(data, new_system_id());
}

/// The template for `bindir` and `args`, made now if missing.
fn template(bindir: &Path, args: &[String]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("initdb-templates");
    let key = key(bindir, args);
    let tpl = dir.join(&key);
    let _making = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    if tpl.exists() {
        return tpl;
    }
    std::fs::create_dir_all(&dir).unwrap();
    // initdb runs as postgres in a private temp dir; the result is copied
    // (ownership kept) next to the template and renamed into place, so a
    // template is whole or absent, also for a concurrent test process.
    let tmp = tempdir();
    let fresh = tmp.path().join("data");
    std::fs::create_dir(&fresh).unwrap();
    chown_pg(&fresh);
    let mut c = as_pg(bindir.join("initdb"));
    c.arg("-D").arg(&fresh).args(args);
    check(c.output().unwrap(), "initdb");
    let staged = dir.join(format!("{key}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staged);
    let out = Command::new("cp")
        .arg("-a")
        .arg(&fresh)
        .arg(&staged)
        .output()
        .unwrap();
    check(out, "cp -a (to the initdb template)");
    if std::fs::rename(&staged, &tpl).is_err() {
        // Another process made it first.
        let _ = std::fs::remove_dir_all(&staged);
        assert!(tpl.exists(), "cannot put the initdb template at {tpl:?}");
    }
    tpl
}

/// Names the initdb binary (path, version, modification time) and its
/// arguments: a rebuilt or reinstalled PostgreSQL gets a new template.
fn key(bindir: &Path, args: &[String]) -> String {
    let initdb = bindir.join("initdb");
    let meta = std::fs::metadata(&initdb).expect("initdb");
    let version = Command::new(&initdb).arg("--version").output().unwrap();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        initdb.as_os_str(),
        meta.mtime(),
        meta.size(),
        &version.stdout,
        args,
    )
        .hash(&mut h);
    format!("{:016x}", h.finish())
}

/// As initdb makes one: creation time in the high half, then random bits
/// (initdb uses microseconds and its PID).
fn new_system_id() -> u64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut low = [0u8; 4];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut low))
        .unwrap();
    (secs << 32) | u64::from(u32::from_ne_bytes(low))
}

/// Give the cluster at `data` (stopped) the system identifier `id`.
pub fn set_system_id(data: &Path, id: u64) {
    set_in_control(&data.join("global/pg_control"), id);
    for e in std::fs::read_dir(data.join("pg_wal")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.len() == 24 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            set_in_segment(&p, id);
        }
    }
}

/// pg_control begins with the system identifier and ends (before its
/// zero padding) with a CRC-32C of everything before the CRC. The CRC's
/// offset differs between majors, so it is found: the one place whose
/// four bytes are the CRC of all the bytes before them.
fn set_in_control(path: &Path, id: u64) {
    let mut buf = std::fs::read(path).unwrap();
    let at = (8..1024)
        .step_by(4)
        .find(|&n| crc32c(&buf[..n]).to_ne_bytes() == buf[n..n + 4])
        .expect("pg_control's CRC");
    buf[..8].copy_from_slice(&id.to_ne_bytes());
    let crc = crc32c(&buf[..at]);
    buf[at..at + 4].copy_from_slice(&crc.to_ne_bytes());
    write_at(path, 0, &buf);
}

/// A WAL segment's first page has the long header: magic (2), info (2,
/// XLP_LONG_HEADER is 0x0002), timeline (4), page address (8), remaining
/// length (4, then 4 of padding), then the system identifier (8). Page
/// headers are outside the records' CRCs.
fn set_in_segment(path: &Path, id: u64) {
    let mut head = [0u8; 32];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .unwrap();
    let info = u16::from_ne_bytes([head[2], head[3]]);
    if info & 0x0002 != 0 {
        write_at(path, 24, &id.to_ne_bytes());
    }
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

/// CRC-32C (Castagnoli), as PostgreSQL's `COMP_CRC32C`.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82F6_3B78 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[test]
fn crc32c_matches_the_standard_check_value() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
}
