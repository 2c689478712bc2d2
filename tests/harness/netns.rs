//! Separate "hosts" for tests that need real addresses (pg_hba.conf address
//! rules, a dropped link): a pair of network namespaces joined by a veth
//! pair on a private /30 out of 10.200.0.0/16. While any exist, the host
//! namespace routes that range to `unreachable`, so nothing can leak out,
//! and tests never connect from the host namespace to a namespace address.

use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

pub const RANGE: &str = "10.200.0.0/16";

static LIVE: Mutex<usize> = Mutex::new(0);
static NEXT: AtomicU32 = AtomicU32::new(1);

/// Two namespaces: `server` (address `server_ip`) and `client` (`client_ip`).
pub struct Pair {
    pub server: String,
    pub client: String,
    pub server_ip: String,
    pub client_ip: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Whether namespaces can be made here (root with iproute2).
pub fn available() -> bool {
    crate::harness::is_root()
        && Command::new("ip")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
}

impl Pair {
    pub fn new() -> Pair {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let tag = format!("pgrt{}x{n}", std::process::id() % 100000);
        let (a, b) = (n / 60 % 250, (n % 60) * 4);
        let pair = Pair {
            server: format!("{tag}s"),
            client: format!("{tag}c"),
            server_ip: format!("10.200.{a}.{}", b + 1),
            client_ip: format!("10.200.{a}.{}", b + 2),
        };
        {
            let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
            if *live == 0 {
                // May exist from an earlier run that was killed: fine.
                let _ = ip(&["route", "add", "unreachable", RANGE]);
            }
            *live += 1;
        }
        let (vs, vc) = (format!("{tag}vs"), format!("{tag}vc"));
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), pair.server.clone()],
            vec!["netns".into(), "add".into(), pair.client.clone()],
            vec![
                "link".into(),
                "add".into(),
                vs.clone(),
                "netns".into(),
                pair.server.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                vc.clone(),
                "netns".into(),
                pair.client.clone(),
            ],
            vec![
                "-n".into(),
                pair.server.clone(),
                "addr".into(),
                "add".into(),
                format!("{}/30", pair.server_ip),
                "dev".into(),
                vs.clone(),
            ],
            vec![
                "-n".into(),
                pair.client.clone(),
                "addr".into(),
                "add".into(),
                format!("{}/30", pair.client_ip),
                "dev".into(),
                vc.clone(),
            ],
            vec![
                "-n".into(),
                pair.server.clone(),
                "link".into(),
                "set".into(),
                vs,
                "up".into(),
            ],
            vec![
                "-n".into(),
                pair.client.clone(),
                "link".into(),
                "set".into(),
                vc,
                "up".into(),
            ],
            vec![
                "-n".into(),
                pair.server.clone(),
                "link".into(),
                "set".into(),
                "lo".into(),
                "up".into(),
            ],
            vec![
                "-n".into(),
                pair.client.clone(),
                "link".into(),
                "set".into(),
                "lo".into(),
                "up".into(),
            ],
        ];
        for s in steps {
            let args: Vec<&str> = s.iter().map(String::as_str).collect();
            ip(&args).unwrap_or_else(|e| panic!("{e}"));
        }
        pair
    }

    /// `ip netns exec <ns> …` as a Command (runs as root; wrap the program
    /// in `runuser -u postgres --` for PostgreSQL itself).
    /// `program` on host `ns`, which also has a host name of its own (the
    /// namespace's name, in a UTS namespace of the command's own), as
    /// separate machines do: pgrepctl derives application names from it.
    pub fn exec(ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, "unshare", "--uts", "--", "sh", "-c"])
            .arg("hostname \"$0\" && exec \"$@\"")
            .args([ns, program]);
        c
    }

    /// Cut the link between the two hosts (a dropped network).
    pub fn cut(&self) {
        let _ = ip(&[
            "-n",
            &self.server,
            "link",
            "set",
            "dev",
            &format!("{}vs", self.server.trim_end_matches('s')),
            "down",
        ]);
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.server]);
        let _ = ip(&["netns", "del", &self.client]);
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        *live -= 1;
        if *live == 0 {
            let _ = ip(&["route", "del", "unreachable", RANGE]);
        }
    }
}
