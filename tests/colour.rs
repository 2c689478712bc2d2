//! Colour only at a terminal: a pseudo-terminal (util-linux `script`) gets
//! coloured status words and error prefixes; a pipe or NO_COLOR gets none.

use crate::harness::{Cluster, pgrepctl};
use std::process::Command;

/// Run pgrepctl under a pseudo-terminal; returns what the terminal showed.
fn at_terminal(args: &str, no_color: bool) -> String {
    let mut c = Command::new("script");
    c.args([
        "-qec",
        &format!("{} {args}", env!("CARGO_BIN_EXE_pgrepctl")),
        "/dev/null",
    ]);
    c.env("TERM", "xterm");
    if no_color {
        c.env("NO_COLOR", "1");
    } else {
        c.env_remove("NO_COLOR");
    }
    let out = c.output().expect("util-linux script");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn colour_only_on_a_terminal() {
    let p = Cluster::new();
    // A primary with no standby is CRITICAL.
    let check = format!("check --primary '{}'", p.conninfo());
    let shown = at_terminal(&check, false);
    assert!(shown.contains("\x1b[31mCRITICAL\x1b[0m"), "{shown:?}");
    let plain = at_terminal(&check, true);
    assert!(
        plain.contains("CRITICAL") && !plain.contains('\x1b'),
        "{plain:?}"
    );
    let piped = pgrepctl(["check", "--primary", &p.conninfo()]);
    assert!(piped.stdout().contains("CRITICAL"));
    assert!(!piped.stdout().contains('\x1b') && !piped.stderr().contains('\x1b'));

    let bad = "init-master -D /nonexistent/pgrepctl-colour";
    assert!(at_terminal(bad, false).contains("\x1b[1m\x1b[31merror:\x1b[0m"));
    assert!(!at_terminal(bad, true).contains('\x1b'));
    let piped = pgrepctl(["init-master", "-D", "/nonexistent/pgrepctl-colour"]);
    assert!(piped.stderr().contains("error: ") && !piped.stderr().contains('\x1b'));
}
