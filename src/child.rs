//! Child processes that cannot outlive pgrepctl, and secrets handed to them
//! without a file on disk. A SIGKILL of pgrepctl runs no destructor, so
//! both must hold by construction: the kernel ends the child
//! (`PR_SET_PDEATHSIG`), a guard process ends the child's own children,
//! and a password lives in anonymous memory (a memfd) that vanishes with
//! the last process holding it.

use crate::error::{Error, Result};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;

/// Have the kernel SIGKILL the child when pgrepctl dies. The signal is tied
/// to the *thread* that spawned the child: pgrepctl spawns only from its
/// main thread (the runtime is single-threaded), which lives as long as
/// the process. Set after the switch to the server's user (a change of
/// credentials clears it); a grandchild such as the postmaster that
/// `pg_ctl start` forks does not inherit it, so servers keep running.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    let parent = nix::unistd::getpid();
    // SAFETY: the hook only makes async-signal-safe system calls.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // pgrepctl may have died before the line above took effect.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other("pgrepctl exited"));
            }
            Ok(())
        });
    }
}

/// A password for a child's libpq, in a memfd: `PGPASSFILE` names
/// `/proc/self/fd/N`, the child's inherited copy of the descriptor, so the
/// secret is never in a file on disk and disappears when pgrepctl and its
/// children end, however they end. libpq opens the password file lazily,
/// at each connection (pg_basebackup's WAL streamer connects late), which
/// rules out a file that is unlinked once the child has opened it.
pub struct SecretFile {
    fd: OwnedFd,
}

impl SecretFile {
    /// `contents` in a 0600 memfd owned by `owner` (the user the child
    /// runs as: the open through /proc checks the file's owner and mode,
    /// and libpq refuses a password file readable by others).
    pub fn new(contents: &str, owner: Option<(u32, u32)>) -> Result<SecretFile> {
        use nix::sys::memfd::{MFdFlags, memfd_create};
        let fd = memfd_create("pgrepctl-pgpass", MFdFlags::MFD_CLOEXEC)
            .map_err(|e| Error::io("cannot create an in-memory password file", e.into()))?;
        let mut f = File::from(fd);
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .and_then(|()| f.write_all(contents.as_bytes()))
            .map_err(|e| Error::io("cannot write the in-memory password file", e))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
                .map_err(|e| Error::io("cannot hand the password file to the server user", e))?;
        }
        Ok(SecretFile { fd: f.into() })
    }

    /// The path a child that inherited the descriptor opens.
    pub fn child_path(&self) -> String {
        format!("/proc/self/fd/{}", self.fd.as_raw_fd())
    }

    /// `expr` with `PGPASSFILE` pointing at this file and the descriptor
    /// inherited by that child only (it is close-on-exec for every other).
    pub fn pass_to(&self, expr: duct::Expression) -> duct::Expression {
        self.inherit(expr.env("PGPASSFILE", self.child_path()))
    }

    /// `expr` with the descriptor inherited by that child only, for a
    /// file the child opens by [`Self::child_path`] (a root certificate).
    pub fn inherit(&self, expr: duct::Expression) -> duct::Expression {
        let raw: RawFd = self.fd.as_raw_fd();
        expr.before_spawn(move |c| {
            // SAFETY: fcntl is async-signal-safe; `raw` stays open in
            // the parent while it spawns, so the child has it too.
            unsafe {
                c.pre_exec(move || {
                    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
                    let fd = std::os::fd::BorrowedFd::borrow_raw(raw);
                    fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))?;
                    Ok(())
                });
            }
            Ok(())
        })
    }
}

/// A small process forked from pgrepctl that SIGKILLs a process group if
/// pgrepctl dies without saying goodbye. pg_basebackup forks a WAL
/// streamer that the kernel's parent-death signal does not reach (it is
/// cleared on fork), and which streams on, holding the slot, after its
/// parent is gone. The guard waits on a pipe whose only writer is
/// pgrepctl: end of file without the all-clear byte means pgrepctl died.
pub struct GroupGuard {
    tx: Option<OwnedFd>,
    pid: Pid,
}

impl GroupGuard {
    pub fn new(group: Pid) -> Result<GroupGuard> {
        use nix::fcntl::OFlag;
        let err = |e: nix::Error| Error::io("cannot start the guard of pg_basebackup", e.into());
        let (rx, tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(err)?;
        // SAFETY: the child runs only async-signal-safe system calls
        // (close, open, dup2, signal, read, kill, _exit): it is a copy of a
        // multi-threaded process and must not allocate or take locks.
        match unsafe { nix::unistd::fork() }.map_err(err)? {
            nix::unistd::ForkResult::Child => guard_main(rx.as_raw_fd(), group),
            nix::unistd::ForkResult::Parent { child } => Ok(GroupGuard {
                tx: Some(tx),
                pid: child,
            }),
        }
    }
}

impl Drop for GroupGuard {
    /// pgrepctl is alive and has dealt with the group itself: the guard
    /// leaves without signalling (the group id may be free for reuse).
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = nix::unistd::write(&tx, b"x");
        }
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

/// The guard's whole life, in the forked child.
fn guard_main(rx: RawFd, group: Pid) -> ! {
    use nix::libc;
    // SAFETY: plain system calls on descriptors and signals of this
    // process; nothing here allocates.
    unsafe {
        // Keep nothing of pgrepctl's open: not the pipe's write end (or
        // no end of file would come), not a password, not pg_basebackup's
        // output pipe.
        for fd in 3..4096 {
            if fd != rx {
                libc::close(fd);
            }
        }
        // Nor pgrepctl's stdout and stderr: whoever reads them (a shell
        // pipe, Ansible) waits for their end, which must come with
        // pgrepctl's, not the guard's.
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            if null > 2 && null != rx {
                libc::close(null);
            }
        }
        // A terminal's Ctrl-C reaches pgrepctl's whole process group; the
        // guard must stay until pgrepctl has handled it.
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            libc::signal(sig, libc::SIG_IGN);
        }
        let mut byte = 0u8;
        let n = loop {
            let n = libc::read(rx, (&mut byte as *mut u8).cast(), 1);
            if n < 0 && nix::errno::Errno::last_raw() == libc::EINTR {
                continue;
            }
            break n;
        };
        if n == 0 {
            libc::kill(-group.as_raw(), libc::SIGKILL);
        }
        libc::_exit(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_file_is_private_memory_readable_by_a_child() {
        let s = SecretFile::new("*:*:*:*:hunter2\n", None).unwrap();
        let path = s.child_path();
        let out = s
            .pass_to(duct::cmd!(
                "sh",
                "-c",
                "stat -L -c %a \"$PGPASSFILE\"; cat \"$PGPASSFILE\""
            ))
            .read()
            .unwrap();
        assert_eq!(out, "600\n*:*:*:*:hunter2");
        // Another child does not inherit it.
        let other = duct::cmd!(
            "sh",
            "-c",
            format!("test -e {path} && echo open || echo closed")
        )
        .read()
        .unwrap();
        assert_eq!(other, "closed");
    }

    #[test]
    fn guard_leaves_a_group_alone_when_dropped() {
        let child = duct::cmd!("sleep", "30")
            .before_spawn(|c| {
                c.process_group(0);
                Ok(())
            })
            .start()
            .unwrap();
        let pid = Pid::from_raw(child.pids()[0] as i32);
        drop(GroupGuard::new(pid).unwrap());
        assert!(child.try_wait().unwrap().is_none(), "still running");
        child.kill().unwrap();
    }
}
