//! An OpenSSH server inside a test "host" (network namespace), key-only:
//! a host key, a client key and a known_hosts file made by the test, no
//! password or keyboard-interactive login, forwarding to one loopback
//! port only. Stopped (by its PID) on drop.

use super::netns::Pair;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

/// Whether OpenSSH's server and client are installed (scripts/install-deps).
pub fn available() -> bool {
    Path::new(SSHD).exists() && Command::new("ssh-keygen").arg("-?").output().is_ok()
}

pub struct Sshd {
    child: Child,
    /// The client's private key (0600) and known_hosts (the server's key).
    pub identity: PathBuf,
    pub known_hosts: PathBuf,
    pub log: PathBuf,
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "pgrepctl-test", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen: {out:?}");
}

fn public(path: &Path) -> String {
    let p = format!("{}.pub", path.display());
    let text = std::fs::read_to_string(p).unwrap();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

impl Sshd {
    /// sshd on `ip`:22 in namespace `ns`, letting `user` in with a fresh
    /// key that may only forward to 127.0.0.1:`port`. Files go under `dir`.
    pub fn start(ns: &str, ip: &str, user: &str, port: u16, dir: &Path) -> Sshd {
        let d = dir.join("ssh");
        std::fs::create_dir_all(&d).unwrap();
        let (host_key, identity) = (d.join("host_key"), d.join("id_ed25519"));
        keygen(&host_key);
        keygen(&identity);
        let keys = d.join("authorized_keys");
        std::fs::write(
            &keys,
            format!(
                "restrict,port-forwarding,permitopen=\"127.0.0.1:{port}\" {}\n",
                public(&identity)
            ),
        )
        .unwrap();
        let known_hosts = d.join("known_hosts");
        std::fs::write(&known_hosts, format!("{ip} {}\n", public(&host_key))).unwrap();
        let config = d.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port 22\nListenAddress {ip}\nHostKey {}\nPidFile {}\n\
                 AuthorizedKeysFile {}\nStrictModes no\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
                 AllowUsers {user}\nAllowTcpForwarding local\nX11Forwarding no\n\
                 ClientAliveInterval 5\n",
                host_key.display(),
                d.join("sshd.pid").display(),
                keys.display()
            ),
        )
        .unwrap();
        // The privilege-separation directory the package's service makes.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let log = d.join("sshd.log");
        let child = Pair::exec(ns, SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let s = Sshd {
            child,
            identity,
            known_hosts,
            log,
        };
        let t = Instant::now();
        while !listening(ns, 22) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "sshd does not listen:\n{}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// Whether something listens on TCP `port` in namespace `ns`.
pub fn listening(ns: &str, port: u16) -> bool {
    Pair::exec(ns, "ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty())
}
