//! A writer for bench/switchover.sh: inserts sequential ids through a
//! multi-host write conninfo every few milliseconds and logs each id whose
//! commit the server acknowledged, so that a switchover's write pause and
//! any lost acknowledged write can be measured from the outside.
//!
//!     cargo run --release --example switchover_writer -- \
//!         'host=127.0.0.1,127.0.0.1 port=5432,5433 user=app dbname=postgres
//!          target_session_attrs=read-write connect_timeout=2' \
//!         [--password-file F] [--table switchover_ids] [--interval-ms 2]
//!         [--retry-ms 10] [--start-id N] [--out FILE]
//!
//! Output (FILE or stdout), one line per acknowledged id, in id order:
//!
//!     ID EPOCH_SECONDS
//!
//! (`EPOCH_SECONDS` with microseconds, taken right after the commit
//! returned, comparable with bash's `$EPOCHREALTIME`.) Failures go to
//! stderr as `error EPOCH_SECONDS what`. SIGTERM or SIGINT ends it after
//! the statement in flight, with the output flushed and a summary on stderr.
//!
//! An id is logged only after its INSERT (autocommit) returned OK, and only
//! once. An id whose INSERT failed is retried, with the same id, on a new
//! connection: the failure may have been ambiguous (the commit happened but
//! the connection died before the answer), so the INSERT says `ON CONFLICT
//! DO NOTHING`, and the retry acknowledges a row that is already there. The
//! acknowledged ids are therefore a dense sequence from the first id on.
//!
//! Any error ends the connection; the writer connects again every
//! `--retry-ms` until a host accepts writes (tokio-postgres tries the hosts
//! in order and, with `target_session_attrs=read-write`, skips servers whose
//! `transaction_read_only` is on: standbys, and a primary being drained).

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_postgres::{Client, Config, NoTls, Statement};

/// A statement or connection attempt that takes longer than this is given
/// up as failed (ambiguous for an INSERT): a switchover that stalls a
/// session must show up as a pause, not hang the writer.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Parser)]
#[command(about = "Insert sequential ids through a write conninfo and log each acknowledged one")]
struct Args {
    /// libpq conninfo (several hosts and target_session_attrs=read-write
    /// make it follow the primary).
    conninfo: String,
    /// File whose first line is the password (kept off the command line).
    #[arg(long)]
    password_file: Option<std::path::PathBuf>,
    /// Table to insert into; created if missing (id bigint primary key).
    #[arg(long, default_value = "switchover_ids")]
    table: String,
    /// Pause between an acknowledged INSERT and the next one.
    #[arg(long, default_value_t = 2)]
    interval_ms: u64,
    /// Pause after a failure before connecting again.
    #[arg(long, default_value_t = 10)]
    retry_ms: u64,
    /// First id; default: one more than the table's largest.
    #[arg(long)]
    start_id: Option<i64>,
    /// Where to log the acknowledged ids; default stdout.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

/// What the run counted, for the summary line.
#[derive(Default)]
struct Tally {
    acked: u64,
    first: Option<i64>,
    last: Option<i64>,
    failed_inserts: u64,
    failed_connects: u64,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime");
    match rt.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchover_writer: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

fn epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The error and its causes: tokio-postgres's own text for a failed
/// connection ("error connecting to server") leaves out why.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

fn note(what: &str) {
    eprintln!("error {:.6} {what}", epoch());
}

/// The parsed conninfo with the password from the file, and the table name
/// checked (it goes into SQL unquoted).
fn config(args: &Args) -> Result<Config, String> {
    let mut config: Config = args
        .conninfo
        .parse()
        .map_err(|e| format!("the conninfo does not parse: {e}"))?;
    if let Some(path) = &args.password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the password file {}: {e}", path.display()))?;
        config.password(text.lines().next().unwrap_or("").as_bytes());
    }
    let t = &args.table;
    let ok = t.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && t.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(format!(
            "--table {t}: use a plain lower-case name ([a-z_][a-z0-9_]*)"
        ));
    }
    Ok(config)
}

/// A connection to a host that takes writes, with the INSERT prepared.
async fn connect(config: &Config, table: &str) -> Result<(Client, Statement), String> {
    let attempt = async {
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let insert = client
            .prepare(&format!(
                "INSERT INTO {table} (id) VALUES ($1) ON CONFLICT (id) DO NOTHING"
            ))
            .await?;
        Ok::<_, tokio_postgres::Error>((client, insert))
    };
    match tokio::time::timeout(STATEMENT_TIMEOUT, attempt).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("connect: {}", chain(&e))),
        Err(_) => Err(format!("connect: no answer within {STATEMENT_TIMEOUT:?}")),
    }
}

/// Creates the table if it is missing and returns the first id: `start`,
/// else one more than the table's largest id, so that successive runs on
/// the same table never reuse one. Done once, before the first INSERT.
async fn prepare_table(config: &Config, table: &str, start: Option<i64>) -> Result<i64, String> {
    let attempt = async {
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {table} \
                 (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())"
            ))
            .await?;
        let q = format!("SELECT coalesce(max(id), 0) + 1 FROM {table}");
        let row = client.query_one(q.as_str(), &[]).await?;
        Ok::<_, tokio_postgres::Error>(start.unwrap_or_else(|| row.get(0)))
    };
    match tokio::time::timeout(STATEMENT_TIMEOUT, attempt).await {
        Ok(Ok(id)) => Ok(id),
        Ok(Err(e)) => Err(format!(
            "the table {table} (create, largest id): {}",
            chain(&e)
        )),
        Err(_) => Err(format!(
            "the table {table}: no answer within {STATEMENT_TIMEOUT:?}"
        )),
    }
}

/// The signals that end the run.
struct Stop {
    term: Signal,
    int: Signal,
}

impl Stop {
    fn new() -> Result<Self, String> {
        let term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?;
        let int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT handler: {e}"))?;
        Ok(Self { term, int })
    }

    /// Sleeps `d`; true when a signal came first (or had already come: the
    /// streams keep one that arrived during a statement).
    async fn sleep(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = self.term.recv() => true,
            _ = self.int.recv() => true,
            _ = tokio::time::sleep(d) => false,
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let config = config(&args)?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(
            std::fs::File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut stop = Stop::new()?;
    let interval = Duration::from_millis(args.interval_ms);
    let retry = Duration::from_millis(args.retry_ms);
    // The table must be there before the clock starts: a failure here is
    // the caller's to fix, not a switchover to ride out.
    let mut id = prepare_table(&config, &args.table, args.start_id).await?;
    let mut tally = Tally::default();
    let mut session: Option<(Client, Statement)> = None;
    loop {
        let pause = match &session {
            None => match connect(&config, &args.table).await {
                Ok(s) => {
                    session = Some(s);
                    continue;
                }
                Err(e) => {
                    tally.failed_connects += 1;
                    note(&e);
                    retry
                }
            },
            Some((client, insert)) => {
                match tokio::time::timeout(STATEMENT_TIMEOUT, client.execute(insert, &[&id])).await
                {
                    Ok(Ok(_)) => {
                        let at = epoch();
                        writeln!(out, "{id} {at:.6}")
                            .and_then(|()| out.flush())
                            .map_err(|e| format!("cannot write the log: {e}"))?;
                        tally.acked += 1;
                        tally.first.get_or_insert(id);
                        tally.last = Some(id);
                        id += 1;
                        interval
                    }
                    failed => {
                        tally.failed_inserts += 1;
                        note(&match failed {
                            Ok(Err(e)) => format!("insert {id}: {}", chain(&e)),
                            _ => format!("insert {id}: no answer within {STATEMENT_TIMEOUT:?}"),
                        });
                        session = None;
                        retry
                    }
                }
            }
        };
        if stop.sleep(pause).await {
            break;
        }
    }
    out.flush()
        .map_err(|e| format!("cannot write the log: {e}"))?;
    eprintln!(
        "switchover_writer: {} ids acknowledged ({}..{}), {} failed inserts (retried with the same id), {} failed connects",
        tally.acked,
        tally.first.map_or("-".into(), |i| i.to_string()),
        tally.last.map_or("-".into(), |i| i.to_string()),
        tally.failed_inserts,
        tally.failed_connects,
    );
    Ok(())
}
