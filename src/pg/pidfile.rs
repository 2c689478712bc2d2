//! `postmaster.pid`: how a command finds the running server of a data
//! directory without being told a host or port, and how it knows a
//! postmaster is live before touching that directory.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct PidFile {
    pub pid: i32,
    pub data_dir: PathBuf,
    pub port: u16,
    /// First of `unix_socket_directories`; empty when sockets are off.
    pub socket_dir: String,
    /// First of `listen_addresses` ("*" or an address), for the TCP fallback.
    pub listen_addr: String,
}

/// Lines: pid, datadir, start time, port, socket dir, listen addr, shmem key, status.
pub fn parse(text: &str) -> Option<PidFile> {
    let lines: Vec<&str> = text.lines().collect();
    Some(PidFile {
        pid: lines.first()?.trim().parse().ok()?,
        data_dir: PathBuf::from(lines.get(1)?.trim()),
        port: lines.get(3)?.trim().parse().ok()?,
        socket_dir: lines
            .get(4)
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        listen_addr: lines
            .get(5)
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    })
}

/// The postmaster of `data_dir`, only when its process is alive: a stale
/// pid file after a crash must not be mistaken for a running server.
pub fn running(data_dir: &Path) -> Option<PidFile> {
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let pf = parse(&text)?;
    if pid_alive(pf.pid) { Some(pf) } else { None }
}

impl PidFile {
    /// Whether a connection to `host` and `port` reaches this postmaster:
    /// its socket directory (a socket file is one server's), or an address
    /// of this host it listens on, at its port. Two servers of one host
    /// cannot listen at the same socket or address and port.
    pub fn serves(&self, host: &str, port: u16) -> bool {
        if port != self.port {
            return false;
        }
        if host.starts_with('/') {
            let canon = |p: &str| std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p));
            return !self.socket_dir.is_empty() && canon(host) == canon(&self.socket_dir);
        }
        match self.listen_addr.as_str() {
            "" => false,
            "*" | "0.0.0.0" | "::" => crate::net::is_local(host),
            "localhost" => crate::net::is_loopback(host),
            addr => {
                host == addr
                    || (crate::net::is_loopback(host) && crate::net::is_loopback(addr))
                    || resolves_to(host, addr)
            }
        }
    }
}

/// Whether `host` (a name or an address) resolves to the address `addr`.
fn resolves_to(host: &str, addr: &str) -> bool {
    let Ok(want) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    std::net::ToSocketAddrs::to_socket_addrs(&(host, 0))
        .map(|mut it| it.any(|a| a.ip() == want))
        .unwrap_or(false)
}

/// The data directory of every running postmaster this process can see:
/// a process working in a directory whose postmaster.pid names it.
pub fn running_data_dirs() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<i32>().ok()?;
            let cwd = std::fs::read_link(e.path().join("cwd")).ok()?;
            let text = std::fs::read_to_string(cwd.join("postmaster.pid")).ok()?;
            (parse(&text)?.pid == pid).then_some(cwd)
        })
        .collect()
}

/// The live postmaster on this host that a connection to `host` and
/// `port` reaches, if any: for a socket directory, the lock file beside
/// the socket names it (whichever of its socket directories this is);
/// for an address, the running postmaster that listens there, in this
/// network namespace (a server in another one has addresses of its own).
pub fn serving(host: &str, port: u16) -> Option<PidFile> {
    if host.starts_with('/') {
        let lock = format!(
            "{}.lock",
            crate::pg::transport::socket_path(Path::new(host), port).display()
        );
        let text = std::fs::read_to_string(lock).ok()?;
        let pf = parse(&text)?;
        let same = running(&pf.data_dir).is_some_and(|p| p.pid == pf.pid);
        return same.then_some(pf);
    }
    if !crate::net::is_local(host) {
        return None;
    }
    let here = std::fs::read_link("/proc/self/ns/net").ok();
    running_data_dirs()
        .iter()
        .filter_map(|d| running(d))
        .filter(|pf| std::fs::read_link(format!("/proc/{}/ns/net", pf.pid)).ok() == here)
        .find(|pf| pf.serves(host, port))
}

/// Whether a pid file exists at all (stale or not).
pub fn exists(data_dir: &Path) -> bool {
    data_dir.join("postmaster.pid").exists()
}

pub fn pid_alive(pid: i32) -> bool {
    use nix::errno::Errno;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    if pid <= 0 {
        return false;
    }
    match kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => !zombie(pid),
        Err(_) => false,
    }
}

/// A process that died and was not reaped yet still answers `kill -0`: a
/// postmaster killed a moment ago (or forever, under an init that does not
/// reap orphans) is dead for every purpose here.
fn zombie(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) state …": comm may hold spaces and parentheses.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "Z" || state == "X")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_dead_unreaped_process_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        // Not reaped yet: a zombie once it exits.
        let start = std::time::Instant::now();
        while !super::zombie(pid) {
            assert!(start.elapsed() < std::time::Duration::from_secs(5));
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert!(!super::pid_alive(pid));
        child.wait().unwrap();
        assert!(super::pid_alive(std::process::id() as i32));
    }

    use super::*;

    #[test]
    fn parses_the_postmaster_format() {
        let t = "4242\n/var/lib/postgresql/15/main\n1700000000\n5433\n/var/run/postgresql\n*\n  5433001     32768\nready   \n";
        let p = parse(t).unwrap();
        assert_eq!((p.pid, p.port), (4242, 5433));
        assert_eq!(p.socket_dir, "/var/run/postgresql");
        assert_eq!(p.listen_addr, "*");
        assert!(parse("garbage").is_none());
    }

    #[test]
    fn serves_its_socket_and_addresses_at_its_port() {
        let t = "4242\n/d\n1700000000\n5433\n/tmp\n*\n";
        let p = parse(t).unwrap();
        assert!(p.serves("/tmp", 5433));
        assert!(p.serves("127.0.0.1", 5433));
        assert!(p.serves("localhost", 5433));
        assert!(!p.serves("127.0.0.1", 5432));
        assert!(!p.serves("/var/empty", 5433));
        assert!(!p.serves("192.0.2.1", 5433));
        let only = parse("4242\n/d\n1700000000\n5433\n/tmp\n192.0.2.7\n").unwrap();
        assert!(
            !only.serves("127.0.0.1", 5433),
            "another server may listen on loopback"
        );
        assert!(only.serves("192.0.2.7", 5433));
        let no_tcp = parse("4242\n/d\n1700000000\n5433\n/tmp\n\n").unwrap();
        assert!(!no_tcp.serves("127.0.0.1", 5433));
    }
}
