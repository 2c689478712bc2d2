//! A long-running PostgreSQL tool (pg_basebackup today; pg_rewind and
//! others next): its own process group that dies with pgrepctl or on any
//! ending but success, its output as lines (progress redraws with `\r`
//! count as lines), an interrupt that stops it at once, and the last
//! lines of its output kept to frame a failure.

use crate::child::GroupGuard;
use crate::error::{Code, Error, Result};
use crate::plan::Interrupt;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

/// What the tool did next.
pub enum Next {
    /// A line of its output (stdout and stderr together).
    Line(String),
    /// It exited successfully; its group has been let go.
    Done,
    /// It failed: how, with its last lines of output.
    Failed(String),
    /// SIGINT or SIGTERM arrived; the tool has been stopped.
    Interrupted,
}

enum Event {
    Line(String),
    Done(std::io::Result<bool>),
}

/// A running tool. Dropping it stops the whole group.
pub struct LongChild {
    name: String,
    handle: Arc<duct::ReaderHandle>,
    group: ProcessGroup,
    rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
    tick: tokio::time::Interval,
    tail: Vec<String>,
}

/// How many lines of output a failure quotes.
const TAIL: usize = 8;

impl LongChild {
    /// Start `expr` (already built with its program, arguments and user)
    /// in a process group of its own, stdin closed, stderr into stdout.
    pub fn spawn(name: &str, expr: duct::Expression) -> Result<LongChild> {
        let expr = expr
            .stdin_null()
            .stderr_to_stdout()
            .unchecked()
            // Its own process group: pg_basebackup forks a WAL-streaming
            // child that outlives a killed parent and would hold the pipe
            // open; the whole group is stopped together. It also keeps a
            // terminal's Ctrl-C for us to handle.
            .before_spawn(|c| {
                use std::os::unix::process::CommandExt;
                c.process_group(0);
                Ok(())
            });
        let handle =
            Arc::new(expr.reader().map_err(|e| {
                Error::new(Code::ToolNotFound, format!("cannot start {name}: {e}"))
            })?);
        let leader = handle
            .pids()
            .first()
            .map(|p| nix::unistd::Pid::from_raw(*p as i32));
        let mut group = ProcessGroup {
            leader,
            guard: None,
        };
        if let Some(g) = leader {
            group.guard = Some(GroupGuard::new(g)?);
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let reader = handle.clone();
        std::thread::spawn(move || read_lines(&reader, &tx));
        Ok(LongChild {
            name: name.to_string(),
            handle,
            group,
            rx,
            tick: tokio::time::interval(Duration::from_millis(250)),
            tail: vec![],
        })
    }

    /// Wait for the next line or the end; an interrupt stops the tool.
    pub async fn next(&mut self, interrupt: &mut Interrupt) -> Next {
        loop {
            tokio::select! {
                _ = self.tick.tick() => {
                    // A forked child keeps the pipe open after its parent
                    // is gone; stop the group so the reader sees the end.
                    if matches!(self.handle.try_wait(), Ok(Some(_)) | Err(_)) {
                        self.group.kill();
                    }
                }
                ev = self.rx.recv() => return match ev {
                    Some(Event::Line(l)) => {
                        self.tail.push(l.clone());
                        if self.tail.len() > TAIL {
                            self.tail.remove(0);
                        }
                        Next::Line(l)
                    }
                    Some(Event::Done(Ok(true))) => {
                        self.group.disarm();
                        Next::Done
                    }
                    None => {
                        self.kill();
                        Next::Failed(format!("{}: its output reader stopped without an exit status", self.name))
                    }
                    Some(Event::Done(res)) => {
                        self.kill();
                        let status = match res {
                            Ok(_) => format!("{} failed", self.name),
                            Err(e) => format!("{} failed: {e}", self.name),
                        };
                        Next::Failed(match self.tail.join(" | ") {
                            t if t.is_empty() => format!("{status}: no message (was it killed?)"),
                            t => format!("{status}: {t}"),
                        })
                    }
                },
                _ = interrupt.recv() => {
                    self.kill();
                    return Next::Interrupted;
                }
            }
        }
    }

    /// The tool's process id (its group's leader), for a message.
    pub fn pid(&self) -> Option<u32> {
        self.handle.pids().first().copied()
    }

    /// The last lines of output, for a message.
    pub fn tail(&self) -> &[String] {
        &self.tail
    }

    /// Stop the tool and its group now, and wait (a few seconds at most)
    /// until every member is gone: a caller removes the files the tool was
    /// writing next, and a member still dying could write one more.
    pub fn kill(&mut self) {
        self.group.kill();
        let _ = self.handle.kill();
        self.group.wait_gone(Duration::from_secs(5));
    }
}

/// Split the output into lines at `\r` or `\n` and send them, then the
/// exit status.
fn read_lines(mut reader: &duct::ReaderHandle, tx: &tokio::sync::mpsc::UnboundedSender<Event>) {
    let mut buf = [0u8; 8192];
    let mut line: Vec<u8> = vec![];
    let send_line = |line: &mut Vec<u8>| {
        let s = String::from_utf8_lossy(line).trim().to_string();
        line.clear();
        if !s.is_empty() {
            let _ = tx.send(Event::Line(s));
        }
    };
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                for &b in &buf[..n] {
                    if b == b'\r' || b == b'\n' {
                        send_line(&mut line);
                    } else {
                        line.push(b);
                    }
                }
            }
            Err(e) => {
                let _ = tx.send(Event::Done(Err(e)));
                return;
            }
        }
    }
    send_line(&mut line);
    let ok = reader
        .try_wait()
        .map(|o| o.is_some_and(|o| o.status.success()));
    let _ = tx.send(Event::Done(ok));
}

/// The tool's process group, killed when it ends any way but success —
/// including when the future holding it is dropped — so no forked child
/// is left behind. If pgrepctl itself is killed outright, the tool dies
/// with it (parent-death signal) and the guard process kills the rest of
/// the group.
struct ProcessGroup {
    leader: Option<nix::unistd::Pid>,
    guard: Option<GroupGuard>,
}

impl ProcessGroup {
    /// SIGKILL every member. A group seen empty (not even a zombie left)
    /// is forgotten first: its id is free, and the kernel may already have
    /// given it to an unrelated process that leads a group of its own.
    fn kill(&mut self) {
        let Some(g) = self.leader else { return };
        if !group_exists(g.as_raw()) {
            self.disarm();
            return;
        }
        let _ = nix::sys::signal::killpg(g, nix::sys::signal::Signal::SIGKILL);
    }

    /// Poll until no live process of the group is left. Zombies do not
    /// count: they write nothing, and whether anyone reaps an orphan
    /// depends on the host's init.
    fn wait_gone(&self, limit: Duration) {
        let Some(g) = self.leader else { return };
        let start = std::time::Instant::now();
        while live_members(g.as_raw()) && start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// After success every member has exited; forget the group so its id,
    /// free for reuse, is never signalled (by us or the guard).
    fn disarm(&mut self) {
        self.leader = None;
        self.guard = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether a process in group `pgid` is alive (not a zombie).
fn live_members(pgid: i32) -> bool {
    group_states(pgid).any(|state| state != "Z" && state != "X")
}

/// Whether any process, a zombie included, is in group `pgid`: while one
/// is, the kernel does not hand the id to another process.
fn group_exists(pgid: i32) -> bool {
    group_states(pgid).next().is_some()
}

/// The states of the processes in group `pgid`, from /proc/PID/stat:
/// "pid (comm) state ppid pgrp …", comm may hold spaces.
fn group_states(pgid: i32) -> impl Iterator<Item = String> {
    let dir = std::fs::read_dir("/proc").ok();
    dir.into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(move |stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            let f: Vec<&str> = rest.split_whitespace().collect();
            (f.len() > 2 && f[2].parse() == Ok(pgid)).then(|| f[0].to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn a_killed_group_is_seen_gone_once_its_members_die() {
        // A leader with a forked child, in its own group.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        let start = std::time::Instant::now();
        while !live_members(pgid) {
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut group = ProcessGroup {
            leader: Some(nix::unistd::Pid::from_raw(pgid)),
            guard: None,
        };
        group.kill();
        // The leader stays a zombie until it is reaped: not "live".
        group.wait_gone(Duration::from_secs(5));
        assert!(!live_members(pgid), "members still alive after SIGKILL");
        let _ = child.wait();
    }

    #[test]
    fn an_emptied_group_is_forgotten_not_signalled() {
        let mut child = std::process::Command::new("true")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        // Reaped: the group is empty and its id free for reuse.
        child.wait().unwrap();
        assert!(!group_exists(pgid));
        let mut group = ProcessGroup {
            leader: Some(nix::unistd::Pid::from_raw(pgid)),
            guard: None,
        };
        group.kill();
        assert!(group.leader.is_none(), "an empty group's id is kept");
    }

    #[test]
    fn a_zombie_leader_keeps_its_group() {
        let mut child = std::process::Command::new("true")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        // Not reaped yet: a zombie, which still holds the group's id.
        let start = std::time::Instant::now();
        while live_members(pgid) {
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(group_exists(pgid));
        let mut group = ProcessGroup {
            leader: Some(nix::unistd::Pid::from_raw(pgid)),
            guard: None,
        };
        group.kill();
        assert!(group.leader.is_some());
        child.wait().unwrap();
        group.disarm();
    }
}
