//! pgrepctl's own replication-protocol client: a real physical
//! replication connection to the primary, made exactly as the standby's
//! walreceiver will make it (same host, port, user, password, sslmode,
//! and over a local socket the standby's OS user), spoken natively
//! (`wire`) rather than through psql. Failures are typed ([`ReplError`])
//! and classified by SQLSTATE (`classify`), so "the hba file has no line
//! for you" reads as that, with the line that would let us in.

pub mod classify;
pub mod error;
mod wire;

use error::Stage;
pub use error::{ReplError, ServerError, sqlstate};

use crate::child::SecretFile;
use crate::error::{Code, Error, Result};
use crate::pg::tls::TlsSettings;
use crate::pg::transport::{self, Endpoint};
use crate::pg::version::Version;
use crate::secret::Secret;
use crate::tools::RunAs;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::config::Host;

/// What `IDENTIFY_SYSTEM` says: the cluster's identity and WAL position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub system_id: String,
    pub timeline: u32,
    pub lsn: u64,
}

/// "16/B374D848" -> bytes.
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.trim().split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

pub use session::{CreatedSlot, ExportedSlot, ReplConnection, SlotPosition, TimelineHistory};
pub use wire::Streamed;

mod session;

/// How to open replication connections as the standby will, with the
/// password served to pg_basebackup from an in-memory password file
/// (nothing on disk, gone with the process however it ends).
pub struct ReplClient {
    /// Who the standby runs as: the OS identity of a local-socket
    /// connection, and whose `~/.pgpass` applies.
    pub run_as: RunAs,
    /// libpq keywords without the password (host, port, user, …), for
    /// messages and for pg_basebackup.
    pub conninfo: String,
    /// Each host of `conninfo` with where its bytes go, in libpq's order.
    endpoints: Vec<(String, Endpoint)>,
    user: String,
    /// Set for a logical replication connection to this database.
    database: Option<String>,
    application_name: Option<String>,
    options: Option<String>,
    /// sslmode and the certificate files, as the walreceiver's libpq
    /// reads them, and the configuration they make (files read once).
    tls: TlsSettings,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    channel_binding: tokio_postgres::config::ChannelBinding,
    password: Option<Secret>,
    passfile: Option<SecretFile>,
    pub timeout: Duration,
}

impl ReplClient {
    /// `password` is the explicit one (--password-file); without it, the
    /// run-as user's `~/.pgpass` is read when a server asks, as libpq
    /// would for the walreceiver. `password_line` is the same password as
    /// a password-file line, for pg_basebackup.
    pub fn new(
        run_as: RunAs,
        conninfo: String,
        password: Option<Secret>,
        password_line: Option<&str>,
        timeout: Duration,
    ) -> Result<ReplClient> {
        let config = crate::pg::conninfo::parse(&conninfo)?;
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(s) => s.clone(),
                Host::Unix(p) => p.display().to_string(),
            })
            .collect();
        let endpoints = hosts
            .into_iter()
            .zip(transport::endpoints(&config)?)
            .collect::<Vec<_>>();
        if endpoints.is_empty() {
            return Err(
                Error::new(Code::Usage, format!("{conninfo}: no host to connect to"))
                    .hint("give host=… (an address, a name or a socket directory)"),
            );
        }
        let passfile = match password_line {
            None => None,
            Some(line) => Some(SecretFile::new(line, run_as.ids)?),
        };
        Ok(ReplClient {
            run_as,
            user: config.get_user().unwrap_or("replicator").to_string(),
            database: None,
            application_name: config.get_application_name().map(str::to_string),
            options: config.get_options().map(str::to_string),
            tls_config: config.tls.client_config()?,
            channel_binding: config.get_channel_binding(),
            tls: config.tls.clone(),
            conninfo,
            endpoints,
            password,
            passfile,
            timeout,
        })
    }

    /// Logical replication connections (`replication=database`) to
    /// `dbname`, which may create logical slots and export snapshots.
    pub fn logical(mut self, dbname: &str) -> ReplClient {
        self.database = Some(dbname.to_string());
        self
    }

    /// The password file for another child (pg_basebackup).
    pub fn passfile(&self) -> Option<&SecretFile> {
        self.passfile.as_ref()
    }

    /// The role the connections log in as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// A failure as one of pgrepctl's errors, with the fix.
    pub fn error(&self, e: &ReplError) -> Error {
        classify::classify(&self.conninfo, &self.user, e)
    }

    /// How long a request may go unanswered once connected: as long as
    /// the old psql-based client allowed (the connect timeout, up to
    /// three times, at most [`crate::pg::ANSWER_LIMIT`]); the commands
    /// answer at once on a live server.
    fn answer_limit(&self) -> Duration {
        crate::pg::ANSWER_LIMIT.min(self.timeout * 3)
    }

    /// Log in to the first host that takes the connection. As libpq,
    /// move on to the next host only when this one did not answer; a
    /// server that answered and refused is the final word.
    pub async fn connect(&self) -> std::result::Result<ReplConnection, ReplError> {
        let mut last = None;
        for (host, endpoint) in &self.endpoints {
            let login = wire::Login {
                user: &self.user,
                database: self.database.as_deref(),
                application_name: self.application_name.as_deref(),
                options: self.options.as_deref(),
                ssl_mode: self.tls.mode,
                tls: self.tls_config.clone(),
                tls_name: host,
                channel_binding: self.channel_binding,
                password: self
                    .password
                    .clone()
                    .or_else(|| self.pgpass(host, endpoint)),
                os_user: self.run_as.ids,
                connect_timeout: self.timeout,
                answer_limit: self.answer_limit(),
            };
            match wire::Connection::open(endpoint, &login).await {
                Ok(conn) => return Ok(ReplConnection::new(conn)),
                Err(e @ (ReplError::Unreachable { .. } | ReplError::NoAnswer { .. })) => {
                    last = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one endpoint"))
    }

    /// IDENTIFY_SYSTEM, then `SHOW` each of `names`, in one round trip,
    /// with the connection left open for what comes next on it (a second
    /// sample, the link probe): each login saved is three to five round
    /// trips, which a long-distance link feels.
    pub async fn sample(
        &self,
        names: &[&str],
    ) -> Result<(ReplConnection, (Identity, Vec<String>))> {
        let run = async {
            let mut conn = self.connect().await?;
            match conn.identify_and_show(names).await {
                Ok(answer) => Ok((conn, answer)),
                Err(e) => {
                    conn.close().await;
                    Err(e)
                }
            }
        };
        run.await.map_err(|e: ReplError| self.error(&e))
    }

    /// Create a physical slot that reserves WAL at once, from a caller
    /// that is not async (on a thread of its own).
    pub fn create_physical_slot_blocking(
        &self,
        name: &str,
    ) -> std::result::Result<CreatedSlot, ReplError> {
        blocking(|| async {
            let mut conn = self.connect().await?;
            let r = conn.create_physical_slot(name).await;
            conn.close().await;
            r
        })
    }

    /// Create a physical slot (reserving WAL) unless one of that name
    /// exists: whether this call created it, so that only a slot a run
    /// made is dropped when the run is undone. Another refusal by the
    /// server is `SLOT_CONFLICT`, with the statement that creates it by
    /// hand.
    pub async fn ensure_physical_slot(&self, name: &str) -> Result<bool> {
        let made = async {
            let mut conn = self.connect().await?;
            let r = conn.create_physical_slot(name).await;
            conn.close().await;
            r
        }
        .await;
        self.slot_made(name, made)
    }

    /// [`Self::ensure_physical_slot`] from a caller that is not async.
    pub fn ensure_physical_slot_blocking(&self, name: &str) -> Result<bool> {
        self.slot_made(name, self.create_physical_slot_blocking(name))
    }

    fn slot_made(
        &self,
        name: &str,
        made: std::result::Result<CreatedSlot, ReplError>,
    ) -> Result<bool> {
        match made {
            Ok(_) => Ok(true),
            Err(e) if e.sqlstate() == Some(sqlstate::DUPLICATE_OBJECT) => Ok(false),
            // Not reached, or a login refused: said as any connection is.
            Err(e)
                if !matches!(
                    e,
                    ReplError::Server {
                        stage: Stage::Command,
                        ..
                    }
                ) =>
            {
                Err(self.error(&e))
            }
            Err(e) => {
                let mut err = self.error(&e);
                err.code = Code::SlotConflict;
                err.hint = Some(format!(
                    "create the slot there by hand (SELECT pg_create_physical_replication_slot('{name}', true)) and rerun"
                ));
                Err(err)
            }
        }
    }

    /// Drop a slot, from a caller that is not async.
    pub fn drop_slot_blocking(&self, name: &str) -> std::result::Result<(), ReplError> {
        blocking(|| async {
            let mut conn = self.connect().await?;
            let r = conn.drop_slot(name).await;
            conn.close().await;
            r
        })
    }

    /// The run-as user's `~/.pgpass` entry for this host, read as libpq
    /// reads it for a physical replication connection (database field
    /// `replication`), and ignored, as libpq does, when others may read it.
    fn pgpass(&self, host: &str, endpoint: &Endpoint) -> Option<Secret> {
        use std::os::unix::fs::MetadataExt;
        let path = self.pgpass_path()?;
        let meta = std::fs::metadata(&path).ok()?;
        if !meta.is_file() || meta.mode() & 0o077 != 0 {
            return None;
        }
        let contents = std::fs::read_to_string(&path).ok()?;
        let port = match endpoint {
            Endpoint::Tcp(_, port) => *port,
            Endpoint::Unix(socket) => socket
                .extension()
                .and_then(|p| p.to_str()?.parse().ok())
                .unwrap_or(5432),
        };
        // libpq matches a logical connection's database by its name.
        let db = self.database.as_deref().unwrap_or("replication");
        crate::pg::pgpass::lookup(&contents, host, port, db, &self.user).map(Secret::new)
    }

    fn pgpass_path(&self) -> Option<PathBuf> {
        let home = match self.run_as.ids {
            Some((uid, _)) => nix::unistd::User::from_uid(uid.into()).ok()??.dir,
            None => PathBuf::from(std::env::var_os("HOME")?),
        };
        Some(home.join(".pgpass"))
    }
}

/// Run a future on a runtime of its own, on a thread of its own, so a
/// synchronous caller (inside or outside an async runtime) can wait for
/// it. The caller's thread blocks meanwhile, as it did for psql.
fn blocking<T, F>(make: impl FnOnce() -> F + Send) -> std::result::Result<T, ReplError>
where
    T: Send,
    F: Future<Output = std::result::Result<T, ReplError>>,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(ReplError::Io)?
                .block_on(make())
        })
        .join()
        .unwrap_or_else(|_| {
            Err(ReplError::Protocol(
                "the replication thread panicked".into(),
            ))
        })
    })
}

/// The major-version capability a command needs, or Unsupported.
fn require(version: Version, has: bool, what: &str) -> std::result::Result<(), ReplError> {
    if has {
        Ok(())
    } else {
        Err(ReplError::Unsupported(format!(
            "{what} needs a newer PostgreSQL than {}",
            version.major()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_round_trip() {
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
        assert_eq!(parse_lsn("nonsense"), None);
    }

    #[test]
    fn a_client_needs_a_host_and_takes_libpq_keywords() {
        let c = ReplClient::new(
            RunAs::default(),
            "host=127.0.0.1 port=5433 user=rep application_name=s1 sslmode=disable".into(),
            None,
            None,
            Duration::from_secs(3),
        )
        .unwrap();
        assert_eq!(c.user(), "rep");
        assert_eq!(c.tls.mode, crate::pg::tls::SslMode::Disable);
        assert!(matches!(&c.endpoints[0].1, Endpoint::Tcp(h, 5433) if h == "127.0.0.1"));
        assert!(c.passfile().is_none());
        let e = ReplClient::new(
            RunAs::default(),
            "port=5".into(),
            None,
            None,
            Duration::from_secs(3),
        );
        assert_eq!(e.err().unwrap().code, Code::Usage);
    }
}
