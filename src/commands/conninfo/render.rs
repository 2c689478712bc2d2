//! The connection strings themselves, pure: a list of endpoints and the
//! shared user/dbname become a libpq keyword string, a URI or a JDBC URL
//! with the attributes that route a session to the primary (write) or to a
//! standby (read). Kept apart from the connecting so that every quoting
//! rule is unit-tested without a server.

use serde::Serialize;

/// One node as an application reaches it: a host name, an IP address
/// (IPv6 without brackets) or a unix socket directory (starts with `/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn is_socket(&self) -> bool {
        self.host.starts_with('/')
    }
}

/// What the string is for: which server libpq (or pgjdbc) must settle on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// The primary, wherever it is now: `read-write` (libpq 10+).
    Write,
    /// A standby if one answers, else the primary, spread at random
    /// (libpq 14+ for prefer-standby, 16+ for load_balance_hosts).
    Read,
    /// The same for libpq 10–13: the first host that answers, standbys
    /// listed first, so a standby is taken while one is up.
    ReadOlderClients,
}

/// The endpoints (in the order a client should try them) and the keywords
/// every node agreed on.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub hosts: Vec<Endpoint>,
    pub user: Option<String>,
    pub dbname: Option<String>,
}

fn libpq_attrs(intent: Intent) -> &'static [(&'static str, &'static str)] {
    match intent {
        Intent::Write => &[("target_session_attrs", "read-write")],
        Intent::Read => &[
            ("target_session_attrs", "prefer-standby"),
            ("load_balance_hosts", "random"),
        ],
        Intent::ReadOlderClients => &[("target_session_attrs", "any")],
    }
}

/// pgjdbc's names for the same routing (targetServerType, loadBalanceHosts).
fn jdbc_attrs(intent: Intent) -> &'static [(&'static str, &'static str)] {
    match intent {
        Intent::Write => &[("targetServerType", "primary")],
        Intent::Read => &[
            ("targetServerType", "preferSecondary"),
            ("loadBalanceHosts", "true"),
        ],
        Intent::ReadOlderClients => &[("targetServerType", "any")],
    }
}

/// The ports as libpq takes them: one when all agree, else one per host.
fn ports(hosts: &[Endpoint]) -> String {
    let first = hosts.first().map(|e| e.port);
    if hosts.iter().all(|e| Some(e.port) == first) {
        first.map(|p| p.to_string()).unwrap_or_default()
    } else {
        hosts
            .iter()
            .map(|e| e.port.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `host=a,b port=5432,5433 user=… dbname=… target_session_attrs=…`;
/// values quoted as libpq reads them.
pub fn libpq(t: &Target, intent: Intent) -> String {
    use crate::conf::standby::quote_conninfo as q;
    let hosts: Vec<&str> = t.hosts.iter().map(|e| e.host.as_str()).collect();
    let mut parts = vec![
        format!("host={}", q(&hosts.join(","))),
        format!("port={}", ports(&t.hosts)),
    ];
    if let Some(u) = &t.user {
        parts.push(format!("user={}", q(u)));
    }
    if let Some(d) = &t.dbname {
        parts.push(format!("dbname={}", q(d)));
    }
    parts.extend(libpq_attrs(intent).iter().map(|(k, v)| format!("{k}={v}")));
    parts.join(" ")
}

/// Percent-encode all but RFC 3986's unreserved characters (and `keep`).
fn encode(s: &str, keep: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        let c = b as char;
        if c.is_ascii_alphanumeric() || "-._~".contains(c) || keep.contains(c) {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A host in a URI's authority: IPv6 literals in brackets, a socket
/// directory percent-encoded (`%2Frun%2Fpostgresql`, as libpq documents).
fn uri_host(e: &Endpoint) -> String {
    if e.host.contains(':') {
        format!("[{}]", encode(&e.host, ":"))
    } else {
        encode(&e.host, "")
    }
}

fn authority(hosts: &[Endpoint]) -> String {
    hosts
        .iter()
        .map(|e| format!("{}:{}", uri_host(e), e.port))
        .collect::<Vec<_>>()
        .join(",")
}

/// `postgresql://user@a:5432,b:5433/db?target_session_attrs=…`.
pub fn uri(t: &Target, intent: Intent) -> String {
    let user = t
        .user
        .as_deref()
        .map(|u| format!("{}@", encode(u, "")))
        .unwrap_or_default();
    let db = t
        .dbname
        .as_deref()
        .map(|d| encode(d, ""))
        .unwrap_or_default();
    let query: Vec<String> = libpq_attrs(intent)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "postgresql://{user}{}/{db}?{}",
        authority(&t.hosts),
        query.join("&")
    )
}

/// `jdbc:postgresql://a:5432,b:5433/db?user=…&targetServerType=…`; None
/// when a node is a unix socket directory, which pgjdbc cannot name in
/// its host list.
pub fn jdbc(t: &Target, intent: Intent) -> Option<String> {
    if t.hosts.iter().any(Endpoint::is_socket) {
        return None;
    }
    let db = t
        .dbname
        .as_deref()
        .map(|d| encode(d, ""))
        .unwrap_or_default();
    let mut query = vec![];
    if let Some(u) = &t.user {
        query.push(format!("user={}", encode(u, "")));
    }
    query.extend(jdbc_attrs(intent).iter().map(|(k, v)| format!("{k}={v}")));
    Some(format!(
        "jdbc:postgresql://{}/{db}?{}",
        authority(&t.hosts),
        query.join("&")
    ))
}

/// One string in every format, as the JSON output carries it.
#[derive(Debug, Clone, Serialize)]
pub struct Strings {
    pub libpq: String,
    pub uri: String,
    pub jdbc: Option<String>,
}

pub fn all(t: &Target, intent: Intent) -> Strings {
    Strings {
        libpq: libpq(t, intent),
        uri: uri(t, intent),
        jdbc: jdbc(t, intent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(host: &str, port: u16) -> Endpoint {
        Endpoint {
            host: host.into(),
            port,
        }
    }

    fn target(hosts: Vec<Endpoint>) -> Target {
        Target {
            hosts,
            user: Some("app".into()),
            dbname: Some("shop".into()),
        }
    }

    #[test]
    fn libpq_lists_hosts_and_ports_in_order() {
        let t = target(vec![ep("a", 5432), ep("b", 5433), ep("c", 5432)]);
        assert_eq!(
            libpq(&t, Intent::Write),
            "host=a,b,c port=5432,5433,5432 user=app dbname=shop target_session_attrs=read-write"
        );
        assert_eq!(
            libpq(&t, Intent::Read),
            "host=a,b,c port=5432,5433,5432 user=app dbname=shop target_session_attrs=prefer-standby load_balance_hosts=random"
        );
        let same = target(vec![ep("a", 6000), ep("b", 6000)]);
        assert_eq!(
            libpq(&same, Intent::ReadOlderClients),
            "host=a,b port=6000 user=app dbname=shop target_session_attrs=any"
        );
    }

    #[test]
    fn libpq_quotes_what_needs_it() {
        let t = Target {
            hosts: vec![ep("/run/my sockets", 5432), ep("::1", 5433)],
            user: Some("o'brien".into()),
            dbname: Some(r"a\b".into()),
        };
        let s = libpq(&t, Intent::Write);
        assert_eq!(
            s,
            r"host='/run/my sockets,::1' port=5432,5433 user='o\'brien' dbname='a\\b' target_session_attrs=read-write"
        );
        // libpq's reading of it, as pgrepctl's own parser does it.
        let back = crate::pg::conninfo::pairs(&s);
        assert_eq!(back[0], ("host".into(), "/run/my sockets,::1".into()));
        assert_eq!(back[2], ("user".into(), "o'brien".into()));
        assert_eq!(back[3], ("dbname".into(), r"a\b".into()));
    }

    #[test]
    fn uri_brackets_ipv6_and_encodes_sockets() {
        let t = Target {
            hosts: vec![
                ep("db1.example", 5432),
                ep("2001:db8::7", 5433),
                ep("/var/run/postgresql", 5434),
            ],
            user: Some("app user".into()),
            dbname: Some("shop/eu".into()),
        };
        assert_eq!(
            uri(&t, Intent::Write),
            "postgresql://app%20user@db1.example:5432,[2001:db8::7]:5433,%2Fvar%2Frun%2Fpostgresql:5434/shop%2Feu?target_session_attrs=read-write"
        );
        assert!(
            uri(&t, Intent::Read)
                .ends_with("?target_session_attrs=prefer-standby&load_balance_hosts=random")
        );
        let bare = Target {
            hosts: vec![ep("fe80::1%eth0", 5432)],
            ..Default::default()
        };
        assert_eq!(
            uri(&bare, Intent::Write),
            "postgresql://[fe80::1%25eth0]:5432/?target_session_attrs=read-write"
        );
        // tokio-postgres (a libpq-compatible parser) reads it back.
        let c: tokio_postgres::Config = uri(&t, Intent::Write).parse().unwrap();
        assert_eq!(c.get_ports(), [5432, 5433, 5434]);
        assert_eq!(c.get_user(), Some("app user"));
        assert_eq!(c.get_dbname(), Some("shop/eu"));
    }

    #[test]
    fn jdbc_uses_pgjdbc_names_and_refuses_sockets() {
        let t = target(vec![ep("a", 5432), ep("::1", 5433)]);
        assert_eq!(
            jdbc(&t, Intent::Write).unwrap(),
            "jdbc:postgresql://a:5432,[::1]:5433/shop?user=app&targetServerType=primary"
        );
        assert_eq!(
            jdbc(&t, Intent::Read).unwrap(),
            "jdbc:postgresql://a:5432,[::1]:5433/shop?user=app&targetServerType=preferSecondary&loadBalanceHosts=true"
        );
        let s = target(vec![ep("a", 5432), ep("/tmp", 5433)]);
        assert_eq!(jdbc(&s, Intent::Write), None);
        assert!(all(&s, Intent::Write).libpq.contains("host=a,/tmp"));
    }
}
