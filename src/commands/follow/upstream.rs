//! Whether `--primary` is the server the standby streams from now, told
//! by what the server is rather than by how it is named: a standby that
//! reaches its primary over the Unix socket and is repointed at
//! 127.0.0.1 (or through a tunnel) still streams from the same server,
//! and the slot its primary_slot_name names there is still its own.
//! Dropping that setting would leave the slot inactive, keeping WAL on
//! the primary for nobody. Read-only.

use super::conninfo::{self, Target};
use super::inspect::Node;
use crate::pg::pidfile::{self, PidFile};
use crate::pg::replication::ReplClient;
use crate::secret::Secret;
use crate::tools::RunAs;
use std::time::Duration;

/// A server as the standby reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub host: String,
    pub port: u16,
}

impl Address {
    fn name(&self) -> String {
        format!("host={} port={}", self.host, self.port)
    }
}

/// The answer, and what it rests on (for the note that says so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub same: bool,
    pub why: String,
}

/// How pgrepctl may reach both servers: the standby's own credentials.
pub struct Reach<'a> {
    /// The standby is on this host (-D): local addresses are its.
    pub local: bool,
    pub run_as: RunAs,
    /// --password-file's password, for the new upstream.
    pub password: Option<&'a Secret>,
    pub timeout: Duration,
}

/// Where the standby streams from now: its WAL receiver's sender while
/// it streams, else the one host of its primary_conninfo.
pub fn old_address(node: &Node) -> Option<Address> {
    if let Some(r) = node.receiver.as_ref().filter(|r| r.status == "streaming") {
        if let (Some(host), Some(port)) = (&r.host, r.port) {
            return Some(Address {
                host: host.clone(),
                port,
            });
        }
    }
    let config = crate::pg::conninfo::parse(&node.current.conninfo).ok()?;
    let host = match config.get_hosts() {
        [tokio_postgres::config::Host::Tcp(h)] => h.clone(),
        [tokio_postgres::config::Host::Unix(p)] => p.display().to_string(),
        _ => return None,
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    Some(Address { host, port })
}

/// Whether `new` (reached with `new_conninfo`) is the standby's current
/// upstream; `None` when pgrepctl cannot tell. The same address is the
/// same server; two addresses served by postmasters on this host are
/// compared by data directory and pid; otherwise both servers are asked
/// their pg_postmaster_start_time() (the system identifier is already
/// the standby's for both) over the standby's credentials, which needs
/// pg_hba.conf to let its role into the postgres database.
pub async fn same_as_old(
    node: &Node,
    new: &Target,
    new_conninfo: &str,
    reach: &Reach<'_>,
) -> Option<Verdict> {
    let old = old_address(node)?;
    let new_address = Address {
        host: new.host.clone(),
        port: new.port,
    };
    if old == new_address {
        return Some(Verdict {
            same: true,
            why: "the same address".into(),
        });
    }
    if reach.local {
        if let (Some(a), Some(b)) = (
            pidfile::serving(&old.host, old.port),
            pidfile::serving(&new_address.host, new_address.port),
        ) {
            return Some(local_verdict(&a, &b));
        }
    } else if crate::net::is_local(&old.host) {
        // The standby's own socket or loopback: another host's from here.
        return None;
    }
    let old_conninfo = at_address(&node.current.conninfo, &old)?;
    let before = started(&old_conninfo, None, reach).await?;
    let now = started(new_conninfo, reach.password, reach).await?;
    Some(Verdict {
        same: before == now,
        why: format!(
            "{} and {} report the same system identifier and postmaster start time ({now})",
            old.name(),
            new_address.name()
        ),
    })
}

fn local_verdict(a: &PidFile, b: &PidFile) -> Verdict {
    let canon = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let same = a.pid == b.pid && canon(&a.data_dir) == canon(&b.data_dir);
    Verdict {
        same,
        why: format!(
            "the postmaster of {} (pid {}) serves both addresses",
            a.data_dir.display(),
            a.pid
        ),
    }
}

/// The standby's conninfo at one address (its user, passfile, TLS stay).
fn at_address(conninfo: &str, at: &Address) -> Option<String> {
    let target = Target {
        host: at.host.clone(),
        port: at.port,
        user: None,
        ssl: vec![],
    };
    conninfo::repoint(conninfo, &target, None, &conninfo::Password::Keep).ok()
}

/// pg_postmaster_start_time() of the server at `conninfo`, over a logical
/// replication connection as the standby's role (a physical one takes no
/// SQL); `None` when it refuses or does not answer.
async fn started(conninfo: &str, explicit: Option<&Secret>, reach: &Reach<'_>) -> Option<String> {
    let password = super::probe::password(explicit, conninfo, reach.local);
    let (client_conninfo, _) = crate::pg::conninfo::for_client(conninfo);
    let client = ReplClient::new(reach.run_as, client_conninfo, password, None, reach.timeout)
        .ok()?
        .logical("postgres");
    let mut conn = client.connect().await.ok()?;
    let answer = conn.postmaster_start_time().await;
    conn.close().await;
    answer.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pf(pid: i32, dir: &str) -> PidFile {
        pidfile::parse(&format!("{pid}\n{dir}\n0\n5432\n/tmp\n*\n")).unwrap()
    }

    #[test]
    fn one_postmaster_is_one_server() {
        assert!(local_verdict(&pf(7, "/d/a"), &pf(7, "/d/a")).same);
        assert!(!local_verdict(&pf(7, "/d/a"), &pf(8, "/d/b")).same);
        // A pid reused by another postmaster is another server.
        assert!(!local_verdict(&pf(7, "/d/a"), &pf(7, "/d/b")).same);
    }

    #[test]
    fn the_old_address_at_the_standby_s_conninfo() {
        let c = at_address(
            "host=/run/pg port=5432 user=rep passfile=/p application_name=s2",
            &Address {
                host: "127.0.0.1".into(),
                port: 5433,
            },
        )
        .unwrap();
        assert_eq!(
            c,
            "host=127.0.0.1 port=5433 user=rep passfile=/p application_name=s2"
        );
    }
}
