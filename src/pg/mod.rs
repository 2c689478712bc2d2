//! Server access: how a command finds and connects to a PostgreSQL server,
//! and the few SQL helpers every command shares.

pub mod cert_info;
pub mod cluster;
pub mod conninfo;
pub mod controldata;
pub mod debian;
pub mod pgpass;
pub mod pidfile;
pub mod replication;
pub mod scram;
pub mod sql;
pub mod standby_limits;
pub mod sync_names;
pub mod timeline;
pub mod tls;
pub mod transport;
pub mod version;
pub mod walsender;

/// Settings a hot standby needs at least as high as its primary's, or it
/// refuses to start (before 14) or pauses recovery (14+). clone-standby
/// raises them; check reports them.
pub const HOT_STANDBY_SETTINGS: [&str; 5] = [
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
];

use crate::error::{Code, Error, Result};
use conninfo::ConnConfig;
use std::time::Duration;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, NoTls};

/// A connected session plus what every command asks first.
pub struct Session {
    pub client: Client,
    pub version_num: u32,
    /// Where we connected, for messages ("host=/run/postgresql port=5432").
    pub target: String,
}

/// How long a request may go unanswered before the session fails: long
/// enough for any statement pgrepctl sends (a reload, a role change, a
/// fast checkpoint), short enough that a stopped server cannot hang a
/// command.
pub const ANSWER_LIMIT: Duration = Duration::from_secs(60);

/// Connect (within `timeout`, default 10 s), spawn the connection driver,
/// and read the server version. Every later request is bounded by
/// [`ANSWER_LIMIT`]. Hosts are tried in order, as libpq does.
pub async fn connect(config: &ConnConfig, timeout: Option<Duration>) -> Result<Session> {
    let (client, target) = connect_client(config, timeout).await.map_err(|f| f.error)?;
    let row = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(|e| query_error(&target, &e))?;
    let version_num = row.get::<_, i32>(0) as u32;
    Ok(Session {
        client,
        version_num,
        target,
    })
}

/// Why a connection failed, and whether that means the server is down or
/// unreachable (no answer, refused, timed out, starting or shutting down)
/// rather than up and refusing us (password, hba, database): monitoring
/// calls the first CRITICAL and the second UNKNOWN.
#[derive(Debug, Clone)]
pub struct ConnectFailure {
    pub error: Error,
    pub down: bool,
}

/// Connect and spawn the connection driver, no query: the caller's first
/// query is its only round trip after the start-up (check's speed).
pub async fn connect_client(
    config: &ConnConfig,
    timeout: Option<Duration>,
) -> Result<(Client, String), ConnectFailure> {
    connect_client_with(config, timeout, ANSWER_LIMIT).await
}

/// [`connect_client`] with a chosen bound on each later request.
pub async fn connect_client_with(
    config: &ConnConfig,
    timeout: Option<Duration>,
    answer_limit: Duration,
) -> Result<(Client, String), ConnectFailure> {
    connect_client_seeing(config, timeout, answer_limit, None).await
}

/// The server's certificate as a TLS handshake showed it (DER).
pub type SeenCertificate = std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>>;

/// [`connect_client`], and the certificate the server presented when the
/// session is encrypted (None over plaintext or a socket): check reads
/// its expiry without any right on the server's files.
pub async fn connect_client_with_certificate(
    config: &ConnConfig,
    timeout: Option<Duration>,
) -> Result<(Client, String, Option<Vec<u8>>), ConnectFailure> {
    let seen = SeenCertificate::default();
    let (client, target) =
        connect_client_seeing(config, timeout, ANSWER_LIMIT, Some(seen.clone())).await?;
    let cert = seen.lock().ok().and_then(|mut s| s.take());
    Ok((client, target, cert))
}

async fn connect_client_seeing(
    config: &ConnConfig,
    timeout: Option<Duration>,
    answer_limit: Duration,
    seen: Option<SeenCertificate>,
) -> Result<(Client, String), ConnectFailure> {
    let timeout = timeout
        .or(config.get_connect_timeout().copied())
        .unwrap_or(Duration::from_secs(10));
    let target = describe(config);
    let endpoints =
        transport::endpoints(config).map_err(|error| ConnectFailure { error, down: false })?;
    if endpoints.is_empty() {
        return Err(ConnectFailure {
            error: Error::new(Code::Usage, format!("{target}: no host to connect to"))
                .hint("give host=… (an address, a name or a socket directory)"),
            down: false,
        });
    }
    // The certificate files are read once, before any host is tried.
    let tls = config
        .tls
        .client_config()
        .map_err(|error| ConnectFailure { error, down: false })?;
    let mut last = None;
    for (i, endpoint) in endpoints.iter().enumerate() {
        let name = match config.get_hosts().get(i) {
            Some(Host::Tcp(h)) => h.as_str(),
            _ => "",
        };
        let attempt = Attempt {
            config,
            endpoint,
            tls: tls.as_ref().map(|c| (c.clone(), name)),
            timeout,
            answer_limit,
            target: &target,
            seen: seen.clone(),
        };
        match attempt.connect().await {
            Ok(client) => return Ok((client, target)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one endpoint"))
}

/// One host, tried as libpq's sslmode says: `allow` plain first and with
/// TLS when the server refused that; `prefer` TLS first and plain when
/// the handshake failed; the others once. Never TLS over a local socket.
struct Attempt<'a> {
    config: &'a ConnConfig,
    endpoint: &'a transport::Endpoint,
    tls: Option<(std::sync::Arc<rustls::ClientConfig>, &'a str)>,
    timeout: Duration,
    answer_limit: Duration,
    target: &'a str,
    /// Where to keep the server's certificate from the handshake.
    seen: Option<SeenCertificate>,
}

impl Attempt<'_> {
    async fn connect(&self) -> Result<Client, ConnectFailure> {
        use tls::SslMode as M;
        let mode = match self.endpoint {
            transport::Endpoint::Unix(_) => M::Disable,
            transport::Endpoint::Tcp(..) => self.config.tls.mode,
        };
        match mode {
            M::Disable => self.once(SslMode::Disable).await.map_err(|(f, _)| f),
            M::Allow => match self.once(SslMode::Disable).await {
                Err((_, Retry::Server)) => self.once(SslMode::Require).await.map_err(|(f, _)| f),
                other => other.map_err(|(f, _)| f),
            },
            M::Prefer => match self.once(SslMode::Prefer).await {
                Err((_, Retry::Tls)) => self.once(SslMode::Disable).await.map_err(|(f, _)| f),
                other => other.map_err(|(f, _)| f),
            },
            M::Require | M::VerifyCa | M::VerifyFull => {
                self.once(SslMode::Require).await.map_err(|(f, _)| f)
            }
        }
    }

    async fn once(&self, mode: SslMode) -> Result<Client, (ConnectFailure, Retry)> {
        // A certificate is only that of the attempt that logged in.
        if let Some(Ok(mut slot)) = self.seen.as_ref().map(|s| s.lock()) {
            *slot = None;
        }
        let mut pg = self.config.pg.clone();
        pg.ssl_mode(mode);
        match (&self.tls, mode) {
            (Some((config, name)), SslMode::Prefer | SslMode::Require) => {
                let name = tls::server_name(name).map_err(|m| {
                    let error = Error::new(Code::TlsFailed, format!("{}: {m}", self.target))
                        .hint("give host= as a DNS name or an IP address");
                    (ConnectFailure { error, down: false }, Retry::No)
                })?;
                let connector = tls::Connector {
                    config: config.clone(),
                    name,
                };
                match &self.seen {
                    Some(seen) => {
                        let recording = tls::Recording {
                            inner: connector,
                            seen: seen.clone(),
                        };
                        connect_one(&pg, recording, self).await
                    }
                    None => connect_one(&pg, connector, self).await,
                }
            }
            _ => connect_one(&pg, NoTls, self).await,
        }
    }
}

/// Whether a failed attempt is one libpq tries again another way.
enum Retry {
    No,
    /// The server answered with an error (allow then tries TLS).
    Server,
    /// The TLS handshake failed (prefer then tries without).
    Tls,
}

/// One connection and login with `config`'s (tokio-postgres) sslmode.
async fn connect_one<T>(
    config: &Config,
    tls: T,
    at: &Attempt<'_>,
) -> Result<Client, (ConnectFailure, Retry)>
where
    T: tokio_postgres::tls::TlsConnect<transport::Watchdog<transport::Stream>>,
    T::Stream: Send + 'static,
{
    let (endpoint, target) = (at.endpoint, at.target);
    let (timeout, answer_limit) = (at.timeout, at.answer_limit);
    let timed_out = || ConnectFailure {
        error: Error::new(
            Code::Timeout,
            format!("{target}: no answer within {}s", timeout.as_secs_f64()),
        )
        .hint("check that the server is running and reachable, or raise the timeout"),
        down: true,
    };
    let no = |f| (f, Retry::No);
    let stream = transport::open(endpoint, timeout).await.map_err(|e| {
        no(if e.kind() == std::io::ErrorKind::TimedOut {
            timed_out()
        } else {
            ConnectFailure {
                error: Error::new(
                    Code::ConnectionFailed,
                    format!("cannot connect to {target}: {e}"),
                )
                .hint("check that the server is running and that host and port are right"),
                down: true,
            }
        })
    })?;
    // Startup is bounded by `timeout` below; every later request by the
    // answer limit.
    let stream = transport::Watchdog::new(stream, answer_limit);
    let (client, connection) = tokio::time::timeout(timeout, config.connect_raw(stream, tls))
        .await
        .map_err(|_| no(timed_out()))?
        .map_err(|e| {
            if password_missing(config, &e) {
                return no(ConnectFailure {
                    error: no_password(target),
                    down: false,
                });
            }
            let retry = if e.as_db_error().is_some() {
                Retry::Server
            } else if tls::failure(&e).is_some() {
                Retry::Tls
            } else {
                Retry::No
            };
            let failure = ConnectFailure {
                error: connect_error(target, &e),
                down: is_down(&e) && tls::failure(&e).is_none(),
            };
            (failure, retry)
        })?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// No server answered (refused, unreachable, timed out), or it answered
/// that it is starting up or shutting down (57P03).
fn is_down(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        Some(db) => db.code().code() == replication::sqlstate::CANNOT_CONNECT_NOW,
        None => true,
    }
}

/// The server asked for a password and the config has none. tokio-postgres
/// reports that as a configuration error, the only one its login raises
/// without a password (authentication errors need one), but exposes no
/// kind: it is the failure that is neither the server's error, nor an I/O
/// error, nor a closed connection, while carrying a cause.
fn password_missing(config: &Config, e: &tokio_postgres::Error) -> bool {
    use std::error::Error as _;
    config.get_password().is_none()
        && e.as_db_error().is_none()
        && !e.is_closed()
        && e.source()
            .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_none())
}

fn no_password(target: &str) -> Error {
    Error::new(
        Code::AuthenticationFailed,
        format!("{target}: the server asks for a password and none was given"),
    )
    .hint("put it in ~/.pgpass (mode 0600) or PGPASSFILE, or set PGPASSWORD")
}

/// "host=/tmp port=5432 user=postgres" — never includes the password.
pub fn describe(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(s) => s.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(|p| p.to_string()).collect();
    let mut s = format!(
        "host={} port={}",
        hosts.join(","),
        if ports.is_empty() {
            "5432".into()
        } else {
            ports.join(",")
        }
    );
    if let Some(u) = config.get_user() {
        s.push_str(&format!(" user={u}"));
    }
    s
}

/// The server's own words where there are some, classified so the caller
/// can tell "wrong password" from "not listening".
pub fn connect_error(target: &str, e: &tokio_postgres::Error) -> Error {
    connect_error_uncaused(target, e).caused_by(e)
}

fn connect_error_uncaused(target: &str, e: &tokio_postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        let msg = format!("{target}: {}", db.message());
        return match db.code().code() {
            "28P01" => Error::new(Code::AuthenticationFailed, msg)
                .hint("check the password in the password file, ~/.pgpass or PGPASSWORD"),
            "28000" => Error::new(Code::HbaRejected, msg)
                .hint("add a matching line to pg_hba.conf on the server (pgrepctl init-master does this for replication) and reload"),
            // The flag that names the database is the command's own
            // (-d, --dbname, a conninfo's dbname): the caller may say it.
            "3D000" => Error::new(Code::ConnectionFailed, msg)
                .hint("name a database that exists on that server (psql -l lists them)"),
            "57P03" => Error::new(Code::ServerNotRunning, msg).hint("the server is starting up or shutting down; try again shortly"),
            _ => Error::new(Code::ConnectionFailed, msg),
        };
    }
    if let Some(f) = tls::failure(e) {
        return Error::new(Code::TlsFailed, format!("{target}: {}", f.message)).hint(f.hint);
    }
    let text = error_chain(e);
    if text.contains("server does not support TLS") {
        return Error::new(
            Code::TlsFailed,
            format!("{target}: server does not support SSL, but SSL was required"),
        )
        .hint("turn ssl on at the server (ssl = on, with ssl_cert_file and ssl_key_file), or use sslmode=prefer where the network is trusted");
    }
    Error::new(
        Code::ConnectionFailed,
        format!("cannot connect to {target}: {text}"),
    )
    .hint("check that the server is running and that host and port are right")
}

/// `pg_control_system()`'s identifier as IDENTIFY_SYSTEM and pg_controldata
/// print it: unsigned. SQL's int8 turns it negative once its high bit is
/// set (identifiers made from 2038 on), and the two must compare equal.
pub fn unsigned_system_id(sql_text: String) -> String {
    match sql_text.parse::<i64>() {
        Ok(v) if v < 0 => (v as u64).to_string(),
        _ => sql_text,
    }
}

pub fn query_error(target: &str, e: &tokio_postgres::Error) -> Error {
    query_error_uncaused(target, e).caused_by(e)
}

fn query_error_uncaused(target: &str, e: &tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => {
            let mut err = Error::new(Code::Internal, format!("{target}: {}", db.message()));
            if let Some(h) = db.hint() {
                err = err.hint(h.to_string());
            }
            err.code = match db.code().code() {
                "42501" => Code::NotSuperuser,
                "25006" => Code::ServerReadOnly,
                _ => Code::ToolFailed,
            };
            if err.code == Code::ServerReadOnly && err.hint.is_none() {
                err = err.hint("the server refuses writes: it is a standby (pg_is_in_recovery()) or read-only (default_transaction_read_only, which migrate cutover leaves on a source); run this against the primary, or turn that setting off first");
            }
            err
        }
        None => {
            let text = error_chain(e);
            if timed_out(e) {
                Error::new(Code::Timeout, format!("{target}: {text}")).hint(
                    "the server stopped answering: check that it is running and not overloaded, then rerun",
                )
            } else {
                Error::new(Code::ConnectionFailed, format!("{target}: {text}"))
            }
        }
    }
}

/// The [`transport::Watchdog`] gave up on an unanswered request: an I/O
/// error of kind `TimedOut` somewhere in the chain.
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cur = c.source();
    }
    false
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    s
}

/// "15.4" style, for messages.
pub fn version_string(num: u32) -> String {
    format!("{}", num / 10000)
}

pub fn check_supported(version_num: u32) -> Result<()> {
    version::Version::new(version_num).map(|_| ())
}

#[cfg(test)]
mod system_id_tests {
    #[test]
    fn a_negative_int8_is_the_unsigned_identifier() {
        let id = super::unsigned_system_id;
        assert_eq!(id("-1".into()), "18446744073709551615");
        assert_eq!(id("7403926472918836511".into()), "7403926472918836511");
    }
}
