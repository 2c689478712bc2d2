//! One sandbox server: initdb, its own port and socket directory, start
//! and stop by data directory — as the postgres user when run as root.

use crate::cli::flags::BindirFlag;
use crate::conf::pgconf;
use crate::error::{Code, Error, Result};
use crate::pg::cluster::{Ctl, LocalCluster, SERVER_LOG};
use crate::tools::{self, BinDir, RunAs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `--bindir`, else the newest installed major (Debian layout, then
/// pg_config, then PATH). An explicit directory must hold a pg_ctl that
/// runs (the sandbox needs the server programs, so TOOL_NOT_FOUND).
pub fn choose_bindir(flag: &BindirFlag) -> Result<BinDir> {
    if let Some(d) = flag.bindir.as_deref() {
        let major = tools::major_of(d).ok_or_else(|| {
            Error::new(Code::ToolNotFound, format!("no working pg_ctl in {}", d.display()))
                .hint("pass the bin directory of a PostgreSQL installation, e.g. /usr/lib/postgresql/15/bin")
        })?;
        return Ok(BinDir {
            path: d.to_path_buf(),
            major,
        });
    }
    let mut found: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    found.sort_unstable();
    for major in found.into_iter().rev().filter(|m| (10..=18).contains(m)) {
        if let Ok(b) = tools::find(major, None) {
            if b.tool("initdb").exists() {
                return Ok(b);
            }
        }
    }
    for major in (10..=18).rev() {
        if let Ok(b) = tools::find(major, None) {
            if b.tool("initdb").exists() {
                return Ok(b);
            }
        }
    }
    Err(Error::new(Code::ToolNotFound, "no PostgreSQL server binaries (initdb, pg_ctl) found")
        .hint("install PostgreSQL (scripts/install-deps, or apt-get install postgresql-15), or pass --bindir"))
}

/// Make a directory the postgres user owns (when we are root).
pub fn make_owned_dir(path: &Path, owner: RunAs) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path)
        .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io(format!("cannot chmod {}", path.display()), e))?;
    if let Some((uid, gid)) = owner.ids {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(|e| Error::io(format!("cannot chown {}", path.display()), e))?;
    }
    Ok(())
}

/// initdb, then port, socket directory, loopback-only listening and
/// wal_log_hints set in postgresql.conf with pgrepctl's own editor.
pub fn initdb(bin: &BinDir, data: &Path, socket_dir: &Path, port: u16, owner: RunAs) -> Result<()> {
    let args: Vec<std::ffi::OsString> = vec![
        "-D".into(),
        data.into(),
        "-U".into(),
        "postgres".into(),
        "--auth-local=trust".into(),
        "--auth-host=scram-sha-256".into(),
        "-E".into(),
        "UTF8".into(),
        "--locale=C".into(),
        "--no-sync".into(),
    ];
    tools::run(owner.cmd(bin.tool("initdb"), args).stdin_null(), "initdb")?;
    let conf = data.join("postgresql.conf");
    let text = crate::fsutil::read_to_string(&conf)?;
    let mut file =
        pgconf::parse(&text).map_err(|e| Error::new(Code::ConfigParseError, e.to_string()))?;
    file.append_managed("port", &port.to_string());
    file.append_managed(
        "unix_socket_directories",
        &pgconf::quote_value(&socket_dir.display().to_string()),
    );
    file.append_managed("listen_addresses", "'127.0.0.1'");
    // What pg_rewind needs (checksums are on by default only from 18), so
    // that `sandbox failover` can rejoin a killed primary with a rewind.
    file.append_managed("wal_log_hints", "on");
    crate::fsutil::atomic_write(&conf, file.render().as_bytes())
}

/// A sandbox node as a [`LocalCluster`]: never Debian's, run as its data
/// directory's owner, logging to the data directory's pgrepctl-server.log.
pub fn cluster(bin: &BinDir, data: &Path) -> LocalCluster {
    LocalCluster::with_debian(data, bin.clone(), RunAs::owner_of(data), None)
}

pub fn start(bin: &BinDir, data: &Path) -> Result<()> {
    cluster(bin, data).ctl(Ctl::Start, CTL_TIMEOUT).map(|_| ())
}

/// Stop the postmaster of `data` if one runs; true when it did.
pub fn stop(bin: &BinDir, data: &Path) -> Result<bool> {
    cluster(bin, data).stop_if_running(CTL_TIMEOUT)
}

const CTL_TIMEOUT: Duration = Duration::from_secs(60);

/// `n` distinct loopback ports nothing listens on: all are held open
/// until every one is chosen, so the kernel cannot hand out one twice.
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind(("127.0.0.1", 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::io("cannot find a free port", e))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::io("cannot find a free port", e))
}

pub fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A random password for the sandbox's replication role (never printed).
pub fn random_password() -> Result<String> {
    use base64::Engine;
    use std::io::Read;
    let mut buf = [0u8; 18];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| Error::io("cannot read /dev/urandom", e))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

/// (data, socket directory, server log, node directory). One socket
/// directory serves every node (each socket is named by its port): a
/// standby is a copy of the primary's configuration, socket directory
/// included. Every node logs where pgrepctl starts any server with pg_ctl.
pub fn node_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let base = dir.join(name);
    let data = base.join("data");
    let log = data.join(SERVER_LOG);
    (data, dir.join("sock"), log, base)
}

pub const PRIMARY: &str = "primary";
