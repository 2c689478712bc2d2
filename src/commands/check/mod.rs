//! `check`: replication health as a monitoring system wants it. [`inspect`]
//! reads every node at once (read-only), [`chain`] matches each standby to
//! the wal sender it streams from, [`evaluate`] turns the facts into
//! findings (pure), and `health::render` prints them; the exit status is
//! the Nagios one.

pub mod archive;
pub mod chain;
pub mod evaluate;
pub mod inspect;
pub mod tls;

use crate::cli::flags::{FormatFlag, TimeoutFlag};
use crate::error::Failure;
use crate::error::{Code, Error, Result};
use crate::health::{Report, Role, Thresholds};
use crate::report::Printer;
use std::time::Duration;

/// A lag threshold: a size (16MB) or a time (30s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lag {
    Bytes(u64),
    Time(Duration),
}

/// `16MB`, `1GB`, `100` (bytes) → a size; `30s`, `500ms`, `5min`, `1h` → a time.
pub fn parse_lag(s: &str) -> Result<Lag, String> {
    let t = s.trim();
    let unit = crate::units::number_and_unit(t)
        .map(|(_, unit)| unit)
        .unwrap_or_default();
    if ["ms", "s", "sec", "min", "h"].contains(&unit.as_str()) {
        crate::units::parse_duration(t).map(Lag::Time)
    } else {
        crate::units::parse_bytes(t)
            .map(Lag::Bytes)
            .map_err(|e| format!("{e}; or a time like 30s, 500ms, 5min (m alone means MB)"))
    }
}

/// Check streaming replication: wal senders and slots on the primary, WAL
/// receiver and replay on each standby, lag in bytes and time, and settings
/// that break hot standby. A cascading standby is matched to the wal sender
/// of the standby it streams from, and its lag measured against the
/// primary. When the primary archives WAL (archive_mode on), its archiver:
/// failures, segments waiting to be archived (.ready files), staleness
/// against archive_timeout; and where each standby's WAL comes from
/// (streaming, or restoring from the archive). Each replication link's
/// encryption (pg_stat_ssl: encrypted with its TLS version, or
/// plaintext), and for each node with ssl on its server certificate's
/// days to expiry: from check's own TLS session, else from ssl_cert_file
/// when the role may read it (superuser, or pg_read_server_files and
/// EXECUTE on pg_read_binary_file on 11+), else unknown (shown with -v,
/// not a failure). Exit status 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (Nagios): a
/// node given that refuses connections or does not answer is CRITICAL; one
/// that answers but will not tell (password, pg_hba.conf, privilege) is
/// UNKNOWN, as are usage errors. Thresholds default to 16MB/30s (warning) and
/// 256MB/5min (critical); a lag over either threshold counts. The connecting
/// role needs pg_monitor (or superuser) to see replication details.
#[derive(clap::Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("nodes").required(true).multiple(true).args(["primary", "standby"])))]
pub struct Args {
    /// The primary: a conninfo string ('host=10.0.0.1 user=monitor'), a postgresql:// URI, or a host name
    #[arg(long, value_name = "CONNINFO")]
    pub primary: Option<String>,
    /// A standby, same forms as --primary (repeatable)
    #[arg(long = "standby", value_name = "CONNINFO")]
    pub standby: Vec<String>,
    /// Lag that makes WARNING: a size (16MB) or a time (30s); give it twice for both [default: 16MB and 30s]
    #[arg(long, value_name = "LAG", value_parser = parse_lag)]
    pub warn_lag: Vec<Lag>,
    /// Lag that makes CRITICAL: a size or a time, like --warn-lag [default: 256MB and 5min]
    #[arg(long, value_name = "LAG", value_parser = parse_lag)]
    pub crit_lag: Vec<Lag>,
    /// With --primary: CRITICAL when fewer than N wal senders stream (on the primary and the standbys given)
    #[arg(long, value_name = "N", requires = "primary")]
    pub expect_standbys: Option<u32>,
    #[command(flatten)]
    pub archive: ArchiveArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub timeout: TimeoutFlag,
    #[command(flatten)]
    pub format: FormatFlag,
}

impl Args {
    /// These nodes with every threshold and format at its default: the
    /// check other commands run to verify what they did.
    pub fn of(primary: Option<String>, standby: Vec<String>) -> Args {
        Args {
            primary,
            standby,
            warn_lag: vec![],
            crit_lag: vec![],
            expect_standbys: None,
            archive: Default::default(),
            tls: Default::default(),
            timeout: TimeoutFlag::default(),
            format: FormatFlag::default(),
        }
    }
}

/// The archiver's flags (a group, so that commands that run check for
/// their own proof take the defaults with `Default::default()`).
#[derive(clap::Args, Debug, Clone)]
pub struct ArchiveArgs {
    /// WAL segments waiting to be archived (.ready files on the primary) that make WARNING
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub archive_ready_warn: u32,
    /// WAL segments waiting to be archived that make CRITICAL
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub archive_ready_crit: u32,
    /// How long the primary's archiver may keep failing before it is CRITICAL (WARNING until then)
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::flags::duration, default_value = "5min")]
    pub archive_crit: Duration,
    /// With --primary: switch WAL (pg_switch_wal(), needs a superuser) and wait, within --timeout, until the archiver has archived that segment; CRITICAL if not
    #[arg(long, requires = "primary")]
    pub archive_probe: bool,
}

/// Encryption's flags (a group with defaults, like [`ArchiveArgs`]).
#[derive(clap::Args, Debug, Clone)]
pub struct TlsArgs {
    /// WARNING for each replication link from another host that is not encrypted (pg_stat_ssl); without it plaintext is only reported. A client on the upstream's own host (a Unix socket, or a loopback address: a local standby, an SSH tunnel's far end) is not counted
    #[arg(long)]
    pub require_ssl: bool,
    /// Days before a node's server certificate expires that make WARNING
    #[arg(long, value_name = "DAYS", default_value_t = crate::pg::cert_info::EXPIRY_WARN_DAYS)]
    pub cert_warn_days: u32,
    /// Days before it expires that make CRITICAL (an expired one always is)
    #[arg(long, value_name = "DAYS", default_value_t = crate::pg::cert_info::EXPIRY_CRIT_DAYS)]
    pub cert_crit_days: u32,
}

impl Default for TlsArgs {
    /// The flags' defaults.
    fn default() -> Self {
        let l = evaluate::TlsLimits::default();
        TlsArgs {
            require_ssl: l.require_ssl,
            cert_warn_days: l.cert_warn_days,
            cert_crit_days: l.cert_crit_days,
        }
    }
}

/// The encryption limits from the flags.
pub fn tls_limits(args: &TlsArgs) -> Result<evaluate::TlsLimits> {
    if args.cert_warn_days < args.cert_crit_days {
        return Err(Error::new(
            Code::InvalidValue,
            format!(
                "--cert-warn-days {} is less than --cert-crit-days {}",
                args.cert_warn_days, args.cert_crit_days
            ),
        )
        .hint("the warning comes first: give --cert-warn-days at least --cert-crit-days"));
    }
    Ok(evaluate::TlsLimits {
        require_ssl: args.require_ssl,
        cert_warn_days: args.cert_warn_days,
        cert_crit_days: args.cert_crit_days,
    })
}

impl Default for ArchiveArgs {
    /// The flags' defaults.
    fn default() -> Self {
        let l = evaluate::ArchiveLimits::default();
        ArchiveArgs {
            archive_ready_warn: l.ready_warn,
            archive_ready_crit: l.ready_crit,
            archive_crit: Duration::from_secs_f64(l.crit_after_seconds),
            archive_probe: false,
        }
    }
}

/// The thresholds from the flags: each value given replaces the default
/// of its kind (size or time); the other kind keeps its default.
pub fn thresholds(warn: &[Lag], crit: &[Lag]) -> Result<Thresholds> {
    let mut t = Thresholds::default();
    for l in warn {
        match l {
            Lag::Bytes(b) => t.warn_bytes = *b,
            Lag::Time(d) => t.warn_seconds = d.as_secs_f64(),
        }
    }
    for l in crit {
        match l {
            Lag::Bytes(b) => t.crit_bytes = *b,
            Lag::Time(d) => t.crit_seconds = d.as_secs_f64(),
        }
    }
    // When only one side of a kind was given, the default of the other
    // side follows it; both given the wrong way round is an error.
    let given = |v: &[Lag], bytes: bool| v.iter().any(|l| matches!(l, Lag::Bytes(_)) == bytes);
    if t.warn_bytes > t.crit_bytes {
        match (given(warn, true), given(crit, true)) {
            (true, true) => {
                return Err(Error::new(
                    Code::InvalidValue,
                    format!(
                        "--warn-lag {} is more than --crit-lag {}",
                        crate::units::format_bytes(t.warn_bytes),
                        crate::units::format_bytes(t.crit_bytes)
                    ),
                )
                .hint("the warning threshold must not be above the critical one"));
            }
            (false, _) => t.warn_bytes = t.crit_bytes,
            (true, false) => t.crit_bytes = t.warn_bytes,
        }
    }
    if t.warn_seconds > t.crit_seconds {
        match (given(warn, false), given(crit, false)) {
            (true, true) => {
                return Err(Error::new(
                    Code::InvalidValue,
                    format!(
                        "--warn-lag {}s is more than --crit-lag {}s",
                        t.warn_seconds, t.crit_seconds
                    ),
                )
                .hint("the warning threshold must not be above the critical one"));
            }
            (false, _) => t.warn_seconds = t.crit_seconds,
            (true, false) => t.crit_seconds = t.warn_seconds,
        }
    }
    Ok(t)
}

/// Every node as given, in order: the primary first.
pub fn node_configs(primary: Option<&str>, standbys: &[String]) -> Result<Vec<inspect::Given>> {
    let given = |role: Role, s: &str| -> Result<inspect::Given> {
        Ok(inspect::Given {
            role,
            config: crate::pg::conninfo::resolve_node(s)?,
            name: given_app_name(s),
        })
    };
    let mut out = vec![];
    if let Some(p) = primary {
        out.push(given(Role::Primary, p)?);
    }
    for s in standbys {
        out.push(given(Role::Standby, s)?);
    }
    Ok(out)
}

/// The `application_name` a node's conninfo string or URI names (not the
/// default pgrepctl fills in), when not empty: that node's name in every
/// report, whether it answers or not.
pub fn given_app_name(s: &str) -> Option<String> {
    let s = s.trim();
    if !crate::pg::conninfo::is_conninfo(s) {
        return None;
    }
    let config = crate::pg::conninfo::parse(s).ok()?;
    config
        .get_application_name()
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

/// The archiver's thresholds from the flags.
pub fn archive_limits(args: &ArchiveArgs) -> Result<evaluate::ArchiveLimits> {
    if args.archive_ready_warn > args.archive_ready_crit {
        return Err(Error::new(
            Code::InvalidValue,
            format!(
                "--archive-ready-warn {} is more than --archive-ready-crit {}",
                args.archive_ready_warn, args.archive_ready_crit
            ),
        )
        .hint("the warning threshold must not be above the critical one"));
    }
    Ok(evaluate::ArchiveLimits {
        ready_warn: args.archive_ready_warn,
        ready_crit: args.archive_ready_crit,
        crit_after_seconds: args.archive_crit.as_secs_f64(),
    })
}

pub async fn run(args: Args, printer: &Printer) -> Result<Report, Failure> {
    let t = thresholds(&args.warn_lag, &args.crit_lag)?;
    let archive = archive_limits(&args.archive)?;
    let tls = tls_limits(&args.tls)?;
    let nodes = node_configs(args.primary.as_deref(), &args.standby)?;
    let primary = nodes
        .first()
        .filter(|g| g.role == Role::Primary)
        .map(|g| g.config.clone());
    let timeout = args.timeout.timeout;
    let mut facts = inspect::inspect_all(nodes, timeout, printer).await;
    if let Some(e) = evaluate::same_server(&facts) {
        return Err(e.into());
    }
    if let (true, Some(config)) = (args.archive.archive_probe, primary) {
        probe_archive(&mut facts[0], &config, timeout, printer).await;
    }
    let options = evaluate::Options {
        thresholds: t,
        expect_standbys: args.expect_standbys,
        archive,
        tls,
    };
    let report = evaluate::evaluate(&facts, &options);
    explain_tls(&report, printer);
    Ok(report)
}

/// -v: each encrypted link's cipher, and why a certificate is unknown.
fn explain_tls(r: &crate::health::Report, printer: &Printer) {
    for p in r.pairs.iter().flatten() {
        if let (Some(true), Some(v)) = (p.ssl, &p.ssl_version) {
            let cipher = p.ssl_cipher.as_deref().unwrap_or("?");
            let bits = p
                .ssl_bits
                .map(|b| format!(" ({b} bits)"))
                .unwrap_or_default();
            printer.debug(format!(
                "{}: replication over {v}, cipher {cipher}{bits}",
                p.standby
            ));
        }
    }
    for c in r.certificates.iter().flatten() {
        if let Some(why) = &c.unknown {
            printer.debug(format!(
                "{}: server certificate expiry unknown: {why}",
                c.node
            ));
        }
    }
}

/// `--archive-probe` on the primary, when it answered as one: switch WAL
/// only when it archives (else the probe's empty result says so).
async fn probe_archive(
    f: &mut inspect::NodeFacts,
    config: &crate::pg::conninfo::ConnConfig,
    timeout: Duration,
    printer: &Printer,
) {
    let Ok(d) = f.data.as_mut() else { return };
    if d.in_recovery {
        return;
    }
    d.archive_probe = Some(if d.archiver.is_some() {
        printer.debug(format!("{}: archive probe", f.target));
        archive::probe(config, timeout).await
    } else {
        archive::ProbeFacts::not_run()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_values() {
        assert_eq!(parse_lag("16MB").unwrap(), Lag::Bytes(16 << 20));
        assert_eq!(parse_lag("0B").unwrap(), Lag::Bytes(0));
        assert_eq!(parse_lag("100").unwrap(), Lag::Bytes(100));
        assert_eq!(
            parse_lag("30s").unwrap(),
            Lag::Time(Duration::from_secs(30))
        );
        assert_eq!(
            parse_lag("5min").unwrap(),
            Lag::Time(Duration::from_secs(300))
        );
        assert_eq!(parse_lag("5m").unwrap(), Lag::Bytes(5 << 20));
        assert!(parse_lag("fast").is_err());
        assert!(crate::cli::flags::duration("0s").is_err());
    }

    #[test]
    fn threshold_defaults_and_overrides() {
        let t = thresholds(&[], &[]).unwrap();
        assert_eq!(t, Thresholds::default());
        let t = thresholds(&[Lag::Bytes(1 << 30)], &[]).unwrap();
        assert_eq!(
            (t.warn_bytes, t.crit_bytes, t.warn_seconds),
            (1 << 30, 1 << 30, 30.0)
        );
        let t = thresholds(&[Lag::Time(Duration::from_secs(5))], &[Lag::Bytes(1 << 20)]).unwrap();
        assert_eq!(
            (t.warn_bytes, t.crit_bytes, t.warn_seconds, t.crit_seconds),
            (1 << 20, 1 << 20, 5.0, 300.0)
        );
        assert!(thresholds(&[Lag::Bytes(2 << 20)], &[Lag::Bytes(1 << 20)]).is_err());
    }

    #[test]
    fn the_name_a_conninfo_gives() {
        let named = "host=/var/run/postgresql port=6403 user=postgres application_name=xstb2";
        assert_eq!(given_app_name(named).as_deref(), Some("xstb2"));
        assert_eq!(
            given_app_name("postgresql://db2:5432/postgres?application_name=s1").as_deref(),
            Some("s1")
        );
        assert_eq!(given_app_name("host=db2 application_name=''"), None);
        assert_eq!(given_app_name("host=db2 user=monitor"), None);
        assert_eq!(given_app_name("db2.example.org"), None);
    }
}
