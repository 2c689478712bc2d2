//! The byte stream under every SQL session, opened by pgrepctl itself
//! rather than by tokio-postgres, for two reasons:
//!
//! - **Peer authentication as root.** Debian's clusters authenticate local
//!   socket connections by the OS user (`peer`). Run as root against a
//!   server found from `-D`, pgrepctl must appear as the server's own OS
//!   user, as `sudo -u postgres psql` would. The socket is connected from a
//!   short-lived thread whose (per-thread) credentials are switched to the
//!   socket owner's: the server reads the peer's credentials at connect
//!   time, and nothing else in the process changes identity.
//! - **Every wait is bounded.** A server that stops answering (SIGSTOP, a
//!   dead network path) would leave a query waiting forever. [`Watchdog`]
//!   fails the stream when a request has had no answer for the session's
//!   limit; an idle session is never timed out.

use crate::error::{Code, Error, Result};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::{Instant, Sleep};

/// A TCP or Unix-domain connection to a server.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A stream that fails with `TimedOut` when bytes were written and nothing
/// has come back for `limit`: the server stopped answering a request.
pub struct Watchdog<S> {
    inner: S,
    limit: Duration,
    /// Set when a write follows the last read; cleared by any read.
    waiting_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<S> Watchdog<S> {
    pub fn new(inner: S, limit: Duration) -> Self {
        Watchdog {
            inner,
            limit,
            waiting_since: None,
            timer: None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watchdog<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before || r.is_err() {
                    this.waiting_since = None;
                    this.timer = None;
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                let Some(since) = this.waiting_since else {
                    return Poll::Pending;
                };
                let deadline = since + this.limit;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "the server did not answer within {}s",
                            this.limit.as_secs_f64()
                        ),
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watchdog<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) && this.waiting_since.is_none() {
            let since = Instant::now();
            this.waiting_since = Some(since);
            // Armed now, not at the next read: a driver that reads before
            // it writes in each poll (tokio-postgres does) has already
            // found its read pending with no timer, and only this wake-up
            // at the deadline brings it back to read the time-out.
            let mut timer = Box::pin(tokio::time::sleep_until(since + this.limit));
            let _ = timer.as_mut().poll(cx);
            this.timer = Some(timer);
        }
        r
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Where a session's bytes go: a TCP address or a socket file.
#[derive(Debug, Clone)]
pub enum Endpoint {
    Tcp(String, u16),
    Unix(PathBuf),
}

/// The socket file libpq would use for a socket directory and port.
pub fn socket_path(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!(".s.PGSQL.{port}"))
}

/// Whose OS identity a local connection should carry: when pgrepctl runs
/// as root, the owner of the socket file (the server's own user), so that
/// `peer` authentication sees the user `sudo -u postgres` would give.
pub fn peer_identity(socket: &Path) -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let meta = std::fs::metadata(socket).ok()?;
    (meta.uid() != 0).then(|| (meta.uid(), meta.gid()))
}

/// The user name owning a server's socket, for a default `user=` when
/// root connects to a local server (root is rarely a database role).
pub fn socket_owner_name(dir: &Path, port: u16) -> Option<String> {
    let (uid, _) = peer_identity(&socket_path(dir, port))?;
    nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// Open a connection to `endpoint` within `timeout`; a local socket is
/// connected as its owner when we are root ([`peer_identity`]).
pub async fn open(endpoint: &Endpoint, timeout: Duration) -> io::Result<Stream> {
    let ids = match endpoint {
        Endpoint::Unix(path) => peer_identity(path),
        Endpoint::Tcp(..) => None,
    };
    open_as(endpoint, timeout, ids).await
}

/// [`open`], connecting a local socket as the OS user `ids` (uid, gid)
/// rather than the socket's owner: a standby's replication connection
/// must meet `peer` authentication as the walreceiver will, that is as
/// the standby's own OS user. `None` connects as ourselves. TCP
/// connections carry no OS identity and ignore `ids`.
pub async fn open_as(
    endpoint: &Endpoint,
    timeout: Duration,
    ids: Option<(u32, u32)>,
) -> io::Result<Stream> {
    let fut = async {
        match endpoint {
            Endpoint::Tcp(host, port) => {
                let s = TcpStream::connect((host.as_str(), *port)).await?;
                let _ = s.set_nodelay(true);
                Ok(Stream::Tcp(s))
            }
            Endpoint::Unix(path) => match ids {
                Some(ids) => {
                    let path = path.clone();
                    let std = tokio::task::spawn_blocking(move || connect_as(&path, ids))
                        .await
                        .map_err(io::Error::other)??;
                    std.set_nonblocking(true)?;
                    Ok(Stream::Unix(UnixStream::from_std(std)?))
                }
                None => Ok(Stream::Unix(UnixStream::connect(path).await?)),
            },
        }
    };
    tokio::time::timeout(timeout, fut).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer within {}s", timeout.as_secs_f64()),
        )
    })?
}

/// Connect a Unix socket from a fresh thread that first takes on `ids`.
/// The raw syscalls change only that thread's credentials (glibc's
/// wrappers would change every thread's), and the thread ends right after.
fn connect_as(path: &Path, (uid, gid): (u32, u32)) -> io::Result<std::os::unix::net::UnixStream> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        // SAFETY: plain syscalls on this thread's own credentials; the
        // thread does nothing but connect and exits.
        unsafe {
            if libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
                || libc::syscall(libc::SYS_setresgid, gid, gid, gid) != 0
                || libc::syscall(libc::SYS_setresuid, uid, uid, uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        std::os::unix::net::UnixStream::connect(&path)
    })
    .join()
    .map_err(|_| io::Error::other("the connecting thread panicked"))?
}

/// The endpoints of a config, in libpq's order: each host with its port
/// (one port for all, or one each).
pub fn endpoints(config: &tokio_postgres::Config) -> Result<Vec<Endpoint>> {
    use tokio_postgres::config::Host;
    let hosts = config.get_hosts();
    let ports = config.get_ports();
    if ports.len() > 1 && ports.len() != hosts.len() {
        return Err(Error::new(
            Code::InvalidValue,
            format!(
                "{} hosts but {} ports in the connection string",
                hosts.len(),
                ports.len()
            ),
        )
        .hint("give one port for all hosts, or one for each"));
    }
    let hostaddrs = config.get_hostaddrs();
    Ok(hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match h {
                // hostaddr= names the address to use for host= (libpq).
                Host::Tcp(_) if hostaddrs.get(i).is_some() => {
                    Endpoint::Tcp(hostaddrs[i].to_string(), port)
                }
                Host::Tcp(name) => Endpoint::Tcp(name.clone(), port),
                Host::Unix(dir) => Endpoint::Unix(socket_path(dir, port)),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn an_unanswered_request_times_out_but_idle_does_not() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut w = Watchdog::new(a, Duration::from_millis(50));
        let mut buf = [0u8; 4];
        // Idle: nothing written, so a read may wait as long as it likes.
        assert!(
            tokio::time::timeout(Duration::from_millis(150), w.read(&mut buf))
                .await
                .is_err()
        );
        // A request answered in time is fine.
        w.write_all(b"ping").await.unwrap();
        b.write_all(b"pong").await.unwrap();
        assert_eq!(w.read(&mut buf).await.unwrap(), 4);
        // A request never answered fails.
        w.write_all(b"ping").await.unwrap();
        let e = w.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    /// Polls a read before its write on every poll, as tokio-postgres's
    /// connection does, and only reads afterwards.
    struct ReadThenWrite {
        w: Watchdog<UnixStream>,
        wrote: bool,
    }

    impl std::future::Future for ReadThenWrite {
        type Output = io::Result<()>;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let mut buf = [0u8; 4];
            let mut rb = ReadBuf::new(&mut buf);
            if let Poll::Ready(r) = Pin::new(&mut this.w).poll_read(cx, &mut rb) {
                return Poll::Ready(r);
            }
            if !this.wrote {
                match Pin::new(&mut this.w).poll_write(cx, b"ping") {
                    Poll::Ready(Ok(_)) => this.wrote = true,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_request_written_after_a_pending_read_still_times_out() {
        let (a, _b) = UnixStream::pair().unwrap();
        // A task of its own: only the Watchdog's own timer can wake it
        // (waiting on its handle polls nothing).
        let task = tokio::spawn(ReadThenWrite {
            w: Watchdog::new(a, Duration::from_millis(50)),
            wrote: false,
        });
        let r = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("woken at the deadline")
            .unwrap();
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn endpoints_pair_hosts_and_ports() {
        let c: tokio_postgres::Config = "host=/run/pg,db2 port=5433,5434".parse().unwrap();
        let e = endpoints(&c).unwrap();
        assert!(matches!(&e[0], Endpoint::Unix(p) if p == Path::new("/run/pg/.s.PGSQL.5433")));
        assert!(matches!(&e[1], Endpoint::Tcp(h, 5434) if h == "db2"));
        let c: tokio_postgres::Config = "host=db.example hostaddr=127.0.0.1 port=5433"
            .parse()
            .unwrap();
        assert!(matches!(&endpoints(&c).unwrap()[0], Endpoint::Tcp(h, 5433) if h == "127.0.0.1"));
        let bad: tokio_postgres::Config = "host=a,b,c port=1,2".parse().unwrap();
        assert!(endpoints(&bad).is_err());
    }
}
