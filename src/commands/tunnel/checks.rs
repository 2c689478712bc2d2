//! What must hold before a tunnel starts or its unit is written: ssh would
//! otherwise fail on every restart, forever, with the reason only in a
//! journal. A busy local port and an unusable key are refused; a host
//! missing from known_hosts is a warning (the file may be filled in
//! before the unit is enabled).

use super::ssh::Tunnel;
use crate::error::{Code, Error, Result};
use nix::unistd::User;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Every check; the warnings to report. `port` is false when the port may
/// be held by this very tunnel (its unit already forwards it). `user` is
/// who ssh will run as (`tunnel unit --user`); `None` is this user.
pub fn all(t: &Tunnel, port: bool, user: Option<&User>) -> Result<Vec<String>> {
    if port {
        local_port_free(t.local_port)?;
    }
    if let Some(i) = &t.identity {
        identity(i)?;
        if let Some(u) = user {
            owned_by(i, u)?;
        }
    }
    Ok(known_host(t, user).into_iter().collect())
}

/// `--user`: an account of this host, so that systemd can start ssh as it.
pub fn os_user(name: &str) -> Result<User> {
    match User::from_name(name) {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(Error::new(
            Code::InvalidValue,
            format!("--user {name}: no such user on this host"),
        )
        .hint("name an existing account (getent passwd NAME), e.g. --user postgres")),
        Err(e) => Err(Error::new(
            Code::InvalidValue,
            format!("--user {name}: cannot look the user up: {e}"),
        )
        .hint("check /etc/nsswitch.conf and the user database")),
    }
}

/// ssh running as `user` reads the key only if it is that user's (a key
/// others may read is ignored, so it cannot be shared through a group).
fn owned_by(p: &Path, user: &User) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(p)
        .map_err(|e| Error::io(format!("cannot read identity file {}", p.display()), e))?;
    if meta.uid() == user.uid.as_raw() {
        return Ok(());
    }
    Err(Error::new(
        Code::FileUnreadable,
        format!(
            "identity file {} is not {}'s: ssh running as {} cannot read it",
            p.display(),
            user.name,
            user.name
        ),
    )
    .hint(format!(
        "give the key to that user: chown {}: {} (mode 600 stays)",
        user.name,
        p.display()
    )))
}

/// The forward listens on 127.0.0.1:PORT; if something else does, ssh
/// exits at once (ExitOnForwardFailure) on every try.
fn local_port_free(port: u16) -> Result<()> {
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(Error::new(
            Code::PortInUse,
            format!("127.0.0.1:{port} is already in use on this host"),
        )
        .hint(format!(
            "choose another --local-port, or see what listens there: ss -ltnp 'sport = :{port}'"
        ))),
        Err(e) => Err(Error::io(format!("cannot check 127.0.0.1:{port}"), e)),
    }
}

/// The private key exists, can be read, and is private (ssh ignores a key
/// others may read).
fn identity(p: &Path) -> Result<()> {
    let hint = || {
        format!(
            "make a key with: ssh-keygen -t ed25519 -N '' -f {0}, and add {0}.pub to the server user's ~/.ssh/authorized_keys",
            p.display()
        )
    };
    let meta = std::fs::metadata(p).map_err(|e| {
        Error::new(
            Code::FileUnreadable,
            format!("identity file {}: {e}", p.display()),
        )
        .hint(hint())
        .caused_by(&e)
    })?;
    if !meta.is_file() {
        return Err(Error::new(
            Code::FileUnreadable,
            format!("identity file {} is not a file", p.display()),
        )
        .hint(hint()));
    }
    std::fs::File::open(p).map_err(|e| {
        Error::new(
            Code::FileUnreadable,
            format!("cannot read identity file {}: {e}", p.display()),
        )
        .hint("run as the user who owns the key")
        .caused_by(&e)
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::new(
            Code::FileUnreadable,
            format!(
                "identity file {} may be read by others: ssh ignores such a key",
                p.display()
            ),
        )
        .hint(format!("chmod 600 {}", p.display())));
    }
    Ok(())
}

/// With StrictHostKeyChecking=yes ssh refuses a host whose key it does not
/// know: say so now, with the file to fill in.
fn known_host(t: &Tunnel, user: Option<&User>) -> Option<String> {
    let files: Vec<PathBuf> = match &t.known_hosts {
        Some(f) => vec![f.clone()],
        None => default_files(user),
    };
    let name = t.known_hosts_name();
    let mut unreadable = vec![];
    for f in &files {
        match listed(&name, f) {
            Some(true) => return None,
            Some(false) => {}
            None => unreadable.push(f.display().to_string()),
        }
    }
    let shown = files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(" or ");
    let target = files
        .first()
        .map_or("~/.ssh/known_hosts".into(), |f| f.display().to_string());
    let keyscan_port = t.ssh_port.map_or(String::new(), |p| format!("-p {p} "));
    Some(format!(
        "{name} is not in {shown}{}: ssh (StrictHostKeyChecking=yes) will refuse it until its key is added, e.g. ssh-keyscan {keyscan_port}{} >> {target}, after comparing the fingerprint with the server's own (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub there)",
        if unreadable.is_empty() {
            String::new()
        } else {
            format!(" ({} cannot be read)", unreadable.join(", "))
        },
        t.host(),
    ))
}

/// The known_hosts of the user ssh runs as (from the password database,
/// as ssh finds it) and the system-wide one.
fn default_files(user: Option<&User>) -> Vec<PathBuf> {
    let home = user
        .map(|u| u.dir.clone())
        .or_else(|| {
            User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map(|u| u.dir)
        })
        .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/root"));
    vec![
        home.join(".ssh/known_hosts"),
        PathBuf::from("/etc/ssh/ssh_known_hosts"),
    ]
}

/// Whether `file` lists `name` (hashed entries included: ssh-keygen -F
/// reads them); `None` when the file cannot be read or checked.
fn listed(name: &str, file: &Path) -> Option<bool> {
    if !file.exists() {
        return Some(false);
    }
    std::fs::File::open(file).ok()?;
    let args: [std::ffi::OsString; 4] = ["-F".into(), name.into(), "-f".into(), file.into()];
    let out = crate::tools::cmd("ssh-keygen", args)
        .stdin_null()
        .stdout_capture()
        .stderr_null()
        .unchecked()
        .run()
        .ok()?;
    Some(out.status.success() && !out.stdout.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tunnel(known_hosts: &Path) -> Tunnel {
        Tunnel {
            destination: "postgres@10.9.8.7".into(),
            ssh_port: None,
            local_port: 1,
            remote_port: 5432,
            identity: None,
            known_hosts: Some(known_hosts.into()),
        }
    }

    #[test]
    fn a_busy_port_is_refused() {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(local_port_free(port).unwrap_err().code, Code::PortInUse);
        drop(l);
        local_port_free(port).unwrap();
    }

    #[test]
    fn identity_must_exist_and_be_private() {
        let d = tempfile::tempdir().unwrap();
        let k = d.path().join("key");
        assert_eq!(identity(&k).unwrap_err().code, Code::FileUnreadable);
        std::fs::write(&k, "x").unwrap();
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = identity(&k).unwrap_err();
        assert!(e.message.contains("read by others"), "{}", e.message);
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).unwrap();
        identity(&k).unwrap();
    }

    #[test]
    fn a_key_for_another_user_must_be_theirs() {
        let d = tempfile::tempdir().unwrap();
        let k = d.path().join("key");
        std::fs::write(&k, "x").unwrap();
        let me = User::from_uid(nix::unistd::geteuid()).unwrap().unwrap();
        owned_by(&k, &me).unwrap();
        let mut other = me.clone();
        other.uid = nix::unistd::Uid::from_raw(me.uid.as_raw() + 4242);
        other.name = "someone".into();
        let e = owned_by(&k, &other).unwrap_err();
        assert!(e.message.contains("is not someone's"), "{}", e.message);
        assert!(os_user("no-such-user-pgrepctl").is_err());
        assert_eq!(os_user(&me.name).unwrap().uid, me.uid);
    }

    #[test]
    fn an_unknown_host_is_a_warning() {
        let d = tempfile::tempdir().unwrap();
        let kh = d.path().join("known_hosts");
        let w = known_host(&tunnel(&kh), None).unwrap();
        assert!(w.starts_with("10.9.8.7 is not in "), "{w}");
        if std::process::Command::new("ssh-keygen")
            .arg("-?")
            .output()
            .is_err()
        {
            return;
        }
        std::fs::write(
            &kh,
            "10.9.8.7 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake\n",
        )
        .unwrap();
        assert_eq!(known_host(&tunnel(&kh), None), None);
    }
}
