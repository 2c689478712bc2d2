//! Encryption on the wire: whether each replication link is encrypted
//! (`--require-ssl` makes a plaintext one a finding), and how long each
//! node's server certificate has left.

use super::super::tls::CertFacts;
use super::Chain;
use super::codes::*;
use crate::health::{Certificate, Pair, Report, Status};

/// `--require-ssl`, `--cert-warn-days`, `--cert-crit-days`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TlsLimits {
    pub require_ssl: bool,
    pub cert_warn_days: u32,
    pub cert_crit_days: u32,
}

impl Default for TlsLimits {
    fn default() -> Self {
        TlsLimits {
            require_ssl: false,
            cert_warn_days: crate::pg::cert_info::EXPIRY_WARN_DAYS,
            cert_crit_days: crate::pg::cert_info::EXPIRY_CRIT_DAYS,
        }
    }
}

const DAY: i64 = 86_400;

/// With `--require-ssl`, each link over the network that is not
/// encrypted: a WARNING on its pair. A link whose client is the
/// upstream's own host is not counted: over a Unix socket (no client
/// address) it cannot be encrypted, and from a loopback address it is
/// either a standby on the same host or the far end of an SSH tunnel
/// (`pgrepctl tunnel`), which ssh encrypts. Neither hop crosses a
/// network, and check cannot see past it.
pub(super) fn links(r: &mut Report, pairs: &mut [Pair], l: &TlsLimits) {
    if !l.require_ssl {
        return;
    }
    for p in pairs.iter_mut() {
        let Some(addr) = p
            .client_addr
            .as_deref()
            .filter(|a| p.ssl == Some(false) && !crate::net::is_loopback(a))
        else {
            continue;
        };
        let app = p
            .application_name
            .as_deref()
            .filter(|a| !a.is_empty() && *a != p.standby)
            .map(|a| format!(" as {a}"))
            .unwrap_or_default();
        let from = p
            .upstream
            .as_deref()
            .map(|u| format!(" from {u}"))
            .unwrap_or_default();
        r.problem(
            Status::Warning,
            &p.standby,
            REPLICATION_PLAINTEXT,
            format!("replicates{from} in plaintext (client {addr}{app}): WAL crosses the network unencrypted"),
            Some("put sslmode=require, or better verify-full with sslrootcert, in the standby's primary_conninfo (pgrepctl clone-standby --sslrootcert does), and refuse plaintext on the upstream with a hostnossl … reject line (pgrepctl init-master --ssl), or carry it through an SSH tunnel (pgrepctl tunnel)".into()),
        );
        p.status = p.status.worst(Status::Warning);
    }
}

/// The status of a certificate with `seconds_left` before notAfter.
pub fn expiry_status(seconds_left: i64, l: &TlsLimits) -> Status {
    if seconds_left <= 0 || seconds_left < i64::from(l.cert_crit_days) * DAY {
        Status::Critical
    } else if seconds_left < i64::from(l.cert_warn_days) * DAY {
        Status::Warning
    } else {
        Status::Ok
    }
}

/// Each node with `ssl = on`: its certificate, judged; a finding (and
/// the node's status) when it expires soon or has expired. An unknown
/// certificate is reported as such, never as a failure.
pub(super) fn certificates(r: &mut Report, chain: &Chain, l: &TlsLimits) -> Vec<Certificate> {
    let mut out = vec![];
    for (i, f) in chain.facts.iter().enumerate() {
        let Ok(d) = &f.data else { continue };
        let node = chain.names[i].clone();
        let mut c = Certificate {
            node,
            source: None,
            subject: None,
            not_after: None,
            expires_in_seconds: None,
            days_left: None,
            unknown: None,
            warn_days: l.cert_warn_days,
            crit_days: l.cert_crit_days,
            status: Status::Ok,
        };
        match &d.certificate {
            CertFacts::Off => continue,
            CertFacts::Unknown(why) => c.unknown = Some(why.clone()),
            CertFacts::Known {
                source,
                subject,
                not_after,
                seconds_left,
            } => {
                c.source = Some(source.as_str().into());
                c.subject = Some(subject.clone());
                c.not_after = Some(rfc3339(*not_after));
                c.expires_in_seconds = Some(*seconds_left);
                c.days_left = Some(seconds_left.div_euclid(DAY));
                c.status = expiry_status(*seconds_left, l);
                expiry_finding(r, &c, *seconds_left);
            }
        }
        r.nodes[i].status = r.nodes[i].status.worst(c.status);
        out.push(c);
    }
    out
}

/// CERT_EXPIRING for a certificate that is not OK.
fn expiry_finding(r: &mut Report, c: &Certificate, seconds_left: i64) {
    if c.status == Status::Ok {
        return;
    }
    let when = c.not_after.clone().unwrap_or_default();
    let subject = c
        .subject
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    let message = if seconds_left <= 0 {
        format!(
            "the server certificate{subject} expired {} ago, at {when}: clients that verify it (verify-ca, verify-full) refuse to connect",
            span(-seconds_left)
        )
    } else {
        let limit = if c.status == Status::Critical {
            c.crit_days
        } else {
            c.warn_days
        };
        format!(
            "the server certificate{subject} expires in {}, at {when} (threshold {limit} days)",
            span(seconds_left)
        )
    };
    r.problem(
        c.status,
        &c.node,
        CERT_EXPIRING,
        message,
        Some("put a renewed certificate and key where ssl_cert_file and ssl_key_file point and reload the server (SELECT pg_reload_conf()); standbys that verify it need the issuing CA in their sslrootcert".into()),
    );
}

/// `20 days`, `1 day`, `5 hours`, `1 hour`.
fn span(seconds: i64) -> String {
    let (n, unit) = if seconds >= DAY {
        (seconds / DAY, "day")
    } else {
        ((seconds / 3600).max(1), "hour")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Seconds since the Unix epoch as `2027-01-31T12:00:00Z`.
pub fn rfc3339(epoch: i64) -> String {
    let [y, m, d, h, mi, sec] = crate::units::utc(epoch);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{sec:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_893_456_000), "2030-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400 + 3661), "2000-02-29T01:01:01Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn expiry_thresholds() {
        let l = TlsLimits::default();
        assert_eq!(expiry_status(31 * DAY, &l), Status::Ok);
        assert_eq!(expiry_status(30 * DAY, &l), Status::Ok);
        assert_eq!(expiry_status(30 * DAY - 1, &l), Status::Warning);
        assert_eq!(expiry_status(20 * DAY, &l), Status::Warning);
        assert_eq!(expiry_status(7 * DAY, &l), Status::Warning);
        assert_eq!(expiry_status(3 * DAY, &l), Status::Critical);
        assert_eq!(expiry_status(0, &l), Status::Critical);
        assert_eq!(expiry_status(-DAY, &l), Status::Critical);
        let none = TlsLimits {
            cert_warn_days: 0,
            cert_crit_days: 0,
            ..l
        };
        assert_eq!(expiry_status(1, &none), Status::Ok);
        assert_eq!(expiry_status(0, &none), Status::Critical);
        assert_eq!(span(DAY), "1 day");
        assert_eq!(span(20 * DAY + 5), "20 days");
        assert_eq!(span(100), "1 hour");
        assert_eq!(span(5 * 3600), "5 hours");
    }
}
