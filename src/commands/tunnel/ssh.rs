//! The ssh command line of a tunnel, decided in one place: the systemd
//! unit's `ExecStart=` and what `tunnel run` supervises are both
//! [`argv`], so the unit cannot drift from what the tests run.

use crate::error::{Code, Error, Result};
use std::path::{Path, PathBuf};

/// How often ssh asks the server whether it is still there, and how many
/// unanswered asks end the connection: a dead link is noticed within
/// 15 seconds, and ssh exits so that its supervisor starts it again.
pub const ALIVE_INTERVAL_S: u32 = 5;
pub const ALIVE_COUNT_MAX: u32 = 3;
/// A connection attempt that hangs (a silent firewall) is given up after
/// this, rather than the kernel's minutes.
pub const CONNECT_TIMEOUT_S: u32 = 10;

/// A validated tunnel: everything ssh is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    /// `[USER@]HOST`, checked to be no ssh option.
    pub destination: String,
    pub ssh_port: Option<u16>,
    pub local_port: u16,
    pub remote_port: u16,
    pub identity: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
}

impl Tunnel {
    /// The host part of the destination (what known_hosts lists).
    pub fn host(&self) -> &str {
        self.destination
            .rsplit_once('@')
            .map_or(self.destination.as_str(), |(_, h)| h)
    }

    /// The `-L` forward: loopback on both ends, so the forwarded port is
    /// never open to the network on this host, and the server side reaches
    /// PostgreSQL over its own loopback.
    pub fn forward(&self) -> String {
        format!(
            "127.0.0.1:{}:127.0.0.1:{}",
            self.local_port, self.remote_port
        )
    }

    /// How the host appears in known_hosts: `[host]:port` off port 22.
    pub fn known_hosts_name(&self) -> String {
        match self.ssh_port {
            Some(p) if p != 22 => format!("[{}]:{p}", self.host()),
            _ => self.host().to_string(),
        }
    }
}

/// Check `--ssh`: `[USER@]HOST`, nothing ssh would read as an option or
/// that would split into two words.
pub fn destination(s: &str) -> Result<String> {
    let bad = |why: &str| {
        Error::new(Code::InvalidValue, format!("--ssh {s:?} {why}"))
            .hint("give USER@HOST, e.g. --ssh postgres@db1.example.org")
    };
    if s.starts_with('-') {
        return Err(bad("starts with '-' (ssh would read an option)"));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains a space or a control character"));
    }
    let (user, host) = s.rsplit_once('@').map_or((None, s), |(u, h)| (Some(u), h));
    if host.is_empty() || user.is_some_and(str::is_empty) {
        return Err(bad("has an empty user or host"));
    }
    Ok(s.to_string())
}

/// The ssh arguments (after the program): `-N`, the forward, and the
/// options that make ssh safe to supervise — fail instead of running
/// without the forward, notice a dead link, never prompt, never accept
/// an unknown host key.
pub fn argv(t: &Tunnel) -> Vec<String> {
    let mut a: Vec<String> = vec!["-N".into(), "-L".into(), t.forward()];
    for o in [
        "ExitOnForwardFailure=yes".to_string(),
        format!("ServerAliveInterval={ALIVE_INTERVAL_S}"),
        format!("ServerAliveCountMax={ALIVE_COUNT_MAX}"),
        format!("ConnectTimeout={CONNECT_TIMEOUT_S}"),
        "BatchMode=yes".to_string(),
        "StrictHostKeyChecking=yes".to_string(),
    ] {
        a.push("-o".into());
        a.push(o);
    }
    if let Some(k) = &t.known_hosts {
        a.push("-o".into());
        a.push(format!("UserKnownHostsFile={}", k.display()));
    }
    if let Some(i) = &t.identity {
        // Only this key: an agent's many keys would be offered first and
        // can use up the server's MaxAuthTries.
        a.extend(["-i".into(), i.display().to_string()]);
        a.extend(["-o".into(), "IdentitiesOnly=yes".into()]);
    }
    if let Some(p) = t.ssh_port {
        a.extend(["-p".into(), p.to_string()]);
    }
    // The destination last, after "--": never read as an option.
    a.extend(["--".into(), t.destination.clone()]);
    a
}

/// The ssh program: the first `ssh` on PATH, as an absolute path (a
/// systemd unit needs one). Its directory is resolved (`/bin` is a link
/// to `/usr/bin` on merged systems), so that a caller with another PATH
/// order writes the same unit.
pub fn program() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .map(|d| d.join("ssh"))
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            Error::new(Code::ToolNotFound, "ssh (OpenSSH's client) is not on PATH")
                .hint("install it (apt-get install openssh-client) and rerun")
        })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tunnel() -> Tunnel {
        Tunnel {
            destination: "postgres@db1.example.org".into(),
            ssh_port: None,
            local_port: 15432,
            remote_port: 5432,
            identity: None,
            known_hosts: None,
        }
    }

    #[test]
    fn argv_is_the_issues_command_line() {
        assert_eq!(
            argv(&tunnel()).join(" "),
            "-N -L 127.0.0.1:15432:127.0.0.1:5432 -o ExitOnForwardFailure=yes \
             -o ServerAliveInterval=5 -o ServerAliveCountMax=3 -o ConnectTimeout=10 \
             -o BatchMode=yes -o StrictHostKeyChecking=yes -- postgres@db1.example.org"
        );
    }

    #[test]
    fn argv_with_identity_known_hosts_and_port() {
        let t = Tunnel {
            identity: Some("/root/.ssh/tunnel key".into()),
            known_hosts: Some("/etc/pgrepctl/known_hosts".into()),
            ssh_port: Some(2222),
            remote_port: 5433,
            ..tunnel()
        };
        let a = argv(&t);
        let tail = &a[a.len() - 9..];
        assert_eq!(
            tail,
            [
                "UserKnownHostsFile=/etc/pgrepctl/known_hosts",
                "-i",
                "/root/.ssh/tunnel key",
                "-o",
                "IdentitiesOnly=yes",
                "-p",
                "2222",
                "--",
                "postgres@db1.example.org"
            ]
        );
        assert_eq!(a[2], "127.0.0.1:15432:127.0.0.1:5433");
        assert_eq!(t.known_hosts_name(), "[db1.example.org]:2222");
    }

    #[test]
    fn destinations() {
        assert!(destination("postgres@db1").is_ok());
        assert!(destination("db1.example.org").is_ok());
        for bad in ["-oProxyCommand=x", "a b@c", "@host", "user@", ""] {
            let e = destination(bad).unwrap_err();
            assert_eq!(e.code, Code::InvalidValue, "{bad}");
        }
        let t = Tunnel {
            destination: "db1".into(),
            ..tunnel()
        };
        assert_eq!(t.host(), "db1");
        assert_eq!(tunnel().host(), "db1.example.org");
        assert_eq!(tunnel().known_hosts_name(), "db1.example.org");
    }
}
