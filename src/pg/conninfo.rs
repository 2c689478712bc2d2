//! From psql-style flags, a conninfo string or URI, and the libpq
//! environment to one `tokio_postgres::Config`. Precedence, lowest first:
//! libpq environment (`PGHOST`, …), `-d` conninfo, explicit `-h/-p/-U`
//! flags; when no host is known anywhere, the running server of `-D`.

use super::{pgpass, pidfile, tls};
use crate::error::{Code, Error, Result};
use std::path::Path;
use tokio_postgres::Config;
use tokio_postgres::config::Host;

/// The psql-style connection flags, shared by every command that connects
/// to a server as a normal (non-replication) client.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConnArgs {
    /// Server host or socket directory [default: from -D's postmaster.pid, else PGHOST]
    #[arg(short = 'h', long = "host", value_name = "HOST")]
    pub host: Option<String>,
    /// Server port [default: from postmaster.pid, else PGPORT, else 5432]
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    pub port: Option<u16>,
    /// Superuser to connect as [default: PGUSER, else the data directory's owner when run as root, else the OS user]
    #[arg(short = 'U', long = "username", value_name = "USER")]
    pub user: Option<String>,
    /// Database name, or a full conninfo string or postgresql:// URI [default: postgres]
    #[arg(short = 'd', long = "dbname", value_name = "DBNAME|CONNINFO")]
    pub dbname: Option<String>,
}

pub fn is_conninfo(s: &str) -> bool {
    s.contains('=') || s.starts_with("postgresql://") || s.starts_with("postgres://")
}

/// A parsed connection string: what tokio-postgres takes, and the TLS
/// keywords it does not (see [`super::tls`]). Derefs to the
/// `tokio_postgres::Config`, so code that only reads hosts and users is
/// unchanged; [`super::connect`] takes this, so no session forgets TLS.
#[derive(Debug, Clone, Default)]
pub struct ConnConfig {
    pub pg: Config,
    pub tls: tls::TlsSettings,
}

impl std::ops::Deref for ConnConfig {
    type Target = Config;
    fn deref(&self) -> &Config {
        &self.pg
    }
}

impl std::ops::DerefMut for ConnConfig {
    fn deref_mut(&mut self) -> &mut Config {
        &mut self.pg
    }
}

/// A config built in code (a local socket, a copy of one host): TLS as
/// its sslmode says, files from libpq's environment and defaults.
impl From<Config> for ConnConfig {
    fn from(pg: Config) -> ConnConfig {
        let mode = match pg.get_ssl_mode() {
            tokio_postgres::config::SslMode::Disable => "disable",
            tokio_postgres::config::SslMode::Require => "require",
            _ => "",
        };
        let given = if mode.is_empty() {
            String::new()
        } else {
            format!("sslmode={mode}")
        };
        let tls = tls::split(&given).map(|(_, t)| t).unwrap_or_default();
        ConnConfig { pg, tls }
    }
}

/// Parse a conninfo string or URI: the TLS keywords by [`tls::split`],
/// the rest with tokio-postgres' own parser, mapping its errors to ours
/// (an unknown keyword is the common mistake).
pub fn parse(s: &str) -> Result<ConnConfig> {
    let (rest, tls) = tls::split(s)?;
    let mut pg = parse_rest(&rest)?;
    pg.ssl_mode(match tls.mode {
        tls::SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        tls::SslMode::Allow | tls::SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    Ok(ConnConfig { pg, tls })
}

fn parse_rest(s: &str) -> Result<Config> {
    s.parse::<Config>().map_err(|e| {
        let mut text = e.to_string();
        if let Some(src) = std::error::Error::source(&e) {
            text = format!("{text}: {src}");
        }
        let code = if keywords(s)
            .iter()
            .any(|k| !KEYWORDS.contains(&k.as_str()) && !tls::KEYWORDS.contains(&k.as_str()))
        {
            Code::UnknownConninfoKeyword
        } else {
            Code::InvalidValue
        };
        // tokio-postgres already says "invalid connection string: …".
        let text = if text.starts_with("invalid connection string") {
            text
        } else {
            format!("invalid connection string: {text}")
        };
        Error::new(code, text)
            .hint("use libpq keywords (host, port, user, dbname, sslmode, sslrootcert, application_name, connect_timeout) or a postgresql:// URI")
    })
}

/// The keywords tokio-postgres's parser takes (its `Config::param`), but
/// `sslmode`, which [`tls::split`] takes first with the other TLS ones. Its
/// error type does not say which mistake it found, so an unknown keyword
/// is told apart from a bad value by the keywords themselves.
const KEYWORDS: &[&str] = &[
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "sslnegotiation",
    "host",
    "hostaddr",
    "port",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

/// The keywords of a conninfo string or of a URI's query.
fn keywords(s: &str) -> Vec<String> {
    if s.starts_with("postgresql://") || s.starts_with("postgres://") {
        return s
            .split_once('?')
            .map(|(_, q)| {
                q.split('&')
                    .map(|kv| kv.split('=').next().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
    }
    pairs(s).into_iter().map(|(k, _)| k).collect()
}

/// The `key = value` pairs of a conninfo string, values unquoted (bare,
/// or single-quoted with backslash escapes), as libpq reads them.
pub fn pairs(s: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        if key.is_empty() {
            break;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next_if_eq(&'=').is_none() {
            out.push((key, String::new()));
            break;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let quoted = chars.next_if_eq(&'\'').is_some();
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.extend(chars.next()),
                '\'' if quoted => break,
                c if c.is_whitespace() && !quoted => break,
                c => value.push(c),
            }
        }
        out.push((key, value));
    }
    out
}

/// A standby's `primary_conninfo` as pgrepctl's own clients take it: the
/// keywords they know (libpq's others, such as those `pg_basebackup -R`
/// writes, are dropped), and the `passfile` it names, if any.
pub fn for_client(primary_conninfo: &str) -> (String, Option<std::path::PathBuf>) {
    let mut passfile = None;
    let mut kept = vec![];
    for (k, v) in pairs(primary_conninfo) {
        if k == "passfile" {
            passfile = Some(std::path::PathBuf::from(v));
        } else if KEYWORDS.contains(&k.as_str()) || tls::KEYWORDS.contains(&k.as_str()) {
            kept.push(format!("{k}={}", crate::conf::standby::quote_conninfo(&v)));
        }
    }
    (kept.join(" "), passfile)
}

pub fn resolve(args: &ConnArgs, data_dir: Option<&Path>) -> Result<ConnConfig> {
    let parsed = match &args.dbname {
        Some(d) if is_conninfo(d) => parse(d)?,
        _ => parse("")?,
    };
    let tls = parsed.tls;
    let pg = resolve_rest(parsed.pg, args, data_dir)?;
    Ok(ConnConfig { pg, tls })
}

fn resolve_rest(mut config: Config, args: &ConnArgs, data_dir: Option<&Path>) -> Result<Config> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(d) = &args.dbname {
        if !is_conninfo(d) {
            config.dbname(d);
        }
    }
    if let Some(h) = &args.host {
        config = with_hosts(config, h);
    }
    if let Some(p) = args.port {
        config = with_port(config, p);
    }
    if let Some(u) = &args.user {
        config.user(u);
    }

    if config.get_hosts().is_empty() {
        if let Some(h) = env("PGHOST") {
            config = with_hosts(config, &h);
        } else if let Some(dir) = data_dir {
            let pf = pidfile::running(dir).ok_or_else(|| {
                Error::new(
                    Code::ServerNotRunning,
                    format!("no PostgreSQL server is running on {}", dir.display()),
                )
                .hint(format!(
                    "start it first (pg_ctl -D {} start), or give -h/-p",
                    dir.display()
                ))
            })?;
            let host = if !pf.socket_dir.is_empty() {
                pf.socket_dir.clone()
            } else if pf.listen_addr.is_empty() || pf.listen_addr == "*" {
                "127.0.0.1".into()
            } else {
                pf.listen_addr.clone()
            };
            config = with_hosts(config, &host);
            if config.get_ports().is_empty() && args.port.is_none() {
                config = with_port(config, pf.port);
            }
        } else {
            let dir = if Path::new("/var/run/postgresql").is_dir() {
                "/var/run/postgresql"
            } else {
                "/tmp"
            };
            config = with_hosts(config, dir);
        }
    }
    if config.get_ports().is_empty() {
        let port = env("PGPORT").and_then(|p| p.parse().ok()).unwrap_or(5432);
        config = with_port(config, port);
    }
    if config.get_user().is_none() {
        let user = env("PGUSER").unwrap_or_else(|| default_user(&config, data_dir));
        config.user(&user);
    }
    if config.get_dbname().is_none() {
        config.dbname(env("PGDATABASE").unwrap_or_else(|| "postgres".into()));
    }
    if config.get_application_name().is_none() {
        config.application_name("pgrepctl");
    }
    if config.get_password().is_none() {
        if let Some(pw) = password_for(&config) {
            config.password(pw);
        }
    }
    Ok(config)
}

/// A node given as `--primary`/`--standby`: a conninfo string or URI, or
/// just a host name or address; defaults, password file and PGPASSWORD
/// filled in as for `-d`.
pub fn resolve_node(s: &str) -> Result<ConnConfig> {
    let s = s.trim();
    if s.is_empty() {
        return Err(Error::new(Code::InvalidValue, "empty connection string")
            .hint("give a conninfo string like 'host=10.0.0.2 user=monitor', a postgresql:// URI, or a host name"));
    }
    let args = if is_conninfo(s) {
        ConnArgs {
            dbname: Some(s.to_string()),
            ..Default::default()
        }
    } else {
        ConnArgs {
            host: Some(s.to_string()),
            ..Default::default()
        }
    };
    resolve(&args, None)
}

fn with_hosts(mut config: Config, hosts: &str) -> Config {
    // Config has no "clear hosts"; rebuild from the parts we keep.
    if !config.get_hosts().is_empty() {
        let mut fresh = Config::new();
        copy_except_hosts(&config, &mut fresh);
        config = fresh;
    }
    for h in hosts.split(',') {
        config.host(h.trim());
    }
    config
}

fn with_port(mut config: Config, port: u16) -> Config {
    if !config.get_ports().is_empty() {
        let mut fresh = Config::new();
        copy_except_hosts(&config, &mut fresh);
        for h in config.get_hosts() {
            match h {
                Host::Tcp(s) => fresh.host(s),
                Host::Unix(p) => fresh.host_path(p),
            };
        }
        config = fresh;
    }
    config.port(port);
    config
}

fn copy_except_hosts(from: &Config, to: &mut Config) {
    if let Some(u) = from.get_user() {
        to.user(u);
    }
    if let Some(p) = from.get_password() {
        to.password(p);
    }
    if let Some(d) = from.get_dbname() {
        to.dbname(d);
    }
    if let Some(o) = from.get_options() {
        to.options(o);
    }
    if let Some(a) = from.get_application_name() {
        to.application_name(a);
    }
    if let Some(t) = from.get_connect_timeout() {
        to.connect_timeout(*t);
    }
    to.ssl_mode(from.get_ssl_mode());
}

/// When run as root against a data directory, the natural superuser is the
/// directory's owner (usually `postgres`), as with `sudo -u postgres psql`.
/// Likewise for a local socket: its owner is the server's OS user.
fn default_user(config: &Config, data_dir: Option<&Path>) -> String {
    use std::os::unix::fs::MetadataExt;
    if let (Some(Host::Unix(dir)), Some(port)) =
        (config.get_hosts().first(), config.get_ports().first())
    {
        if let Some(owner) = super::transport::socket_owner_name(dir, *port) {
            return owner;
        }
    }
    if nix::unistd::geteuid().is_root() {
        if let Some(meta) = data_dir.and_then(|d| std::fs::metadata(d).ok()) {
            if let Ok(Some(u)) = nix::unistd::User::from_uid(meta.uid().into()) {
                return u.name;
            }
        }
    }
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "postgres".into())
}

/// PGPASSWORD, else the password file, as libpq would.
fn password_for(config: &Config) -> Option<String> {
    if let Ok(pw) = std::env::var("PGPASSWORD") {
        return Some(pw);
    }
    let path = pgpass::default_path()?;
    let contents = std::fs::read_to_string(path).ok()?;
    let host = match config.get_hosts().first()? {
        Host::Tcp(s) => s.clone(),
        Host::Unix(p) => p.display().to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    pgpass::lookup(
        &contents,
        &host,
        port,
        config.get_dbname().unwrap_or("postgres"),
        config.get_user()?,
    )
}

/// The first host and port, as the strings libpq keywords would carry.
pub fn first_host_port(config: &Config) -> (String, u16) {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(s)) => s.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    (host, config.get_ports().first().copied().unwrap_or(5432))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keywords_are_told_from_bad_values() {
        let samples = [
            ("user", "u"),
            ("password", "'p w'"),
            ("dbname", "d"),
            ("options", "'-c x=1'"),
            ("application_name", "a"),
            ("sslnegotiation", "postgres"),
            ("host", "h"),
            ("hostaddr", "127.0.0.1"),
            ("port", "5432"),
            ("connect_timeout", "3"),
            ("tcp_user_timeout", "3"),
            ("keepalives", "1"),
            ("keepalives_idle", "3"),
            ("keepalives_interval", "3"),
            ("keepalives_retries", "3"),
            ("target_session_attrs", "any"),
            ("channel_binding", "prefer"),
            ("load_balance_hosts", "disable"),
        ];
        assert_eq!(samples.len(), KEYWORDS.len());
        for (k, v) in samples {
            assert!(KEYWORDS.contains(&k));
            assert!(
                parse(&format!("{k}={v}")).is_ok(),
                "tokio-postgres takes {k}"
            );
        }
        let code = |s: &str| parse(s).unwrap_err().code;
        assert_eq!(code("host=db1 bogus=1"), Code::UnknownConninfoKeyword);
        assert_eq!(code("host='a b' port=abc"), Code::InvalidValue);
        assert_eq!(
            code("postgresql://h/d?nope=1"),
            Code::UnknownConninfoKeyword
        );
        assert_eq!(code("postgresql://h/d?port=x"), Code::InvalidValue);
        assert_eq!(
            keywords(r"host = 'x\' y' port=1 options='-c a=b'"),
            ["host", "port", "options"]
        );
    }

    #[test]
    fn flags_override_conninfo() {
        let args = ConnArgs {
            host: Some("/tmp/sock".into()),
            port: Some(6000),
            user: Some("admin".into()),
            dbname: Some("host=db1 port=5432 user=x dbname=app".into()),
        };
        let c = resolve(&args, None).unwrap();
        assert_eq!(first_host_port(&c), ("/tmp/sock".into(), 6000));
        assert_eq!(c.get_user(), Some("admin"));
        assert_eq!(c.get_dbname(), Some("app"));
    }

    #[test]
    fn uri_and_unknown_keyword() {
        let args = ConnArgs {
            dbname: Some("postgresql://u@h:5544/d".into()),
            ..Default::default()
        };
        let c = resolve(&args, None).unwrap();
        assert_eq!(first_host_port(&c), ("h".into(), 5544));
        let bad = ConnArgs {
            dbname: Some("host=h bogus=1".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve(&bad, None).unwrap_err().code,
            Code::UnknownConninfoKeyword
        );
        let c = parse("host=h sslmode=verify-full sslrootcert=/ca.crt port=1").unwrap();
        assert_eq!(c.tls.mode, tls::SslMode::VerifyFull);
        assert_eq!(c.tls.rootcert.as_deref(), Some("/ca.crt"));
        assert_eq!(first_host_port(&c), ("h".into(), 1));
        let e = parse("host=h sslmode=verify-fully").unwrap_err();
        assert_eq!(e.code, Code::InvalidValue);
        assert!(e.message.contains("invalid sslmode value"), "{}", e.message);
    }

    #[test]
    fn node_given_as_host_or_conninfo() {
        let c = resolve_node("db2.example").unwrap();
        assert_eq!(first_host_port(&c).0, "db2.example");
        let c = resolve_node("host=h port=6543 user=monitor").unwrap();
        assert_eq!(first_host_port(&c), ("h".into(), 6543));
        assert_eq!(c.get_user(), Some("monitor"));
        assert_eq!(
            resolve_node("host=h nope=1").unwrap_err().code,
            Code::UnknownConninfoKeyword
        );
        assert_eq!(resolve_node(" ").unwrap_err().code, Code::InvalidValue);
    }
}
