//! `tunnel run`: ssh in the foreground, started again whenever it exits,
//! for hosts without systemd (and for the tests). ssh runs in its own
//! process group and dies with pgrepctl (parent-death signal, and the
//! group guard of [`crate::runner::LongChild`]); SIGTERM or SIGINT ends
//! ssh and then pgrepctl, with exit status 0.

use super::ssh::{self, Tunnel};
use crate::error::Result;
use crate::plan::Interrupt;
use crate::report::{Outcome, Printer};
use crate::runner::{LongChild, Next};
use std::path::Path;
use std::time::{Duration, Instant};

/// The first wait before a restart: a killed ssh is back at once.
const FIRST: Duration = Duration::from_millis(200);
/// The longest wait: a server that refuses is asked every few seconds.
const CAP: Duration = Duration::from_secs(5);
/// A run this long was a working tunnel: the next failure starts the
/// waits from [`FIRST`] again.
const STABLE: Duration = Duration::from_secs(60);

/// Waits between restarts: doubling from [`FIRST`] up to [`CAP`], back to
/// [`FIRST`] after a run of at least [`STABLE`].
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff { next: FIRST }
    }

    /// The wait after a run that lasted `ran`.
    pub fn after(&mut self, ran: Duration) -> Duration {
        if ran >= STABLE {
            self.next = FIRST;
        }
        let d = self.next;
        self.next = (self.next * 2).min(CAP);
        d
    }
}

/// Run ssh until SIGTERM or SIGINT; each exit of ssh is reported and
/// followed by a restart after the backoff.
pub async fn run(program: &Path, t: &Tunnel, printer: &Printer) -> Result<Outcome> {
    let argv = ssh::argv(t);
    // Watch the signals before the first ssh starts: none is missed.
    let mut interrupt = Interrupt::new()?;
    let mut backoff = Backoff::new();
    let mut restarts: u64 = 0;
    loop {
        let started = Instant::now();
        let mut child = LongChild::spawn("ssh", crate::tools::cmd(program, &argv))?;
        printer.info(format!(
            "tunnel: ssh started (pid {}): 127.0.0.1:{} to {} port {}",
            child.pid().map_or("?".into(), |p| p.to_string()),
            t.local_port,
            t.host(),
            t.remote_port
        ));
        let why = loop {
            match child.next(&mut interrupt).await {
                Next::Line(l) => printer.info(format!("ssh: {l}")),
                Next::Interrupted => return Ok(stopped(restarts, printer)),
                Next::Done => break "ssh exited".to_string(),
                Next::Failed(m) => break m,
            }
        };
        drop(child);
        let wait = backoff.after(started.elapsed());
        printer.warn(format!(
            "{why}; starting it again in {} ms",
            wait.as_millis()
        ));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = interrupt.recv() => return Ok(stopped(restarts, printer)),
        }
        restarts += 1;
    }
}

/// The outcome of a run ended by a signal: nothing changed, ssh is gone.
fn stopped(restarts: u64, printer: &Printer) -> Outcome {
    printer.info("tunnel: stopped; ssh ended");
    let mut o = Outcome::new("tunnel run", false);
    o.detail("restarts", restarts);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets_after_a_stable_run() {
        let mut b = Backoff::new();
        let quick = Duration::from_secs(1);
        let waits: Vec<u128> = (0..7).map(|_| b.after(quick).as_millis()).collect();
        assert_eq!(waits, [200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(b.after(Duration::from_secs(61)).as_millis(), 200);
        assert_eq!(b.after(quick).as_millis(), 400);
    }
}
