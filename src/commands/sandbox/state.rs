//! `sandbox.toml`: what `sandbox up` built, so `status` and `down` act on
//! exactly those servers (by data directory, never by process name).

use crate::error::{Code, Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FILE: &str = "sandbox.toml";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub primary: bool,
    pub port: u16,
    pub data: PathBuf,
    pub socket_dir: PathBuf,
    pub log: PathBuf,
}

impl Node {
    /// The superuser conninfo over the node's private socket.
    pub fn conninfo(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.socket_dir.display(),
            self.port
        )
    }

    pub fn psql(&self) -> String {
        format!(
            "psql -h {} -p {} -U postgres postgres",
            self.socket_dir.display(),
            self.port
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub bindir: PathBuf,
    pub major: u32,
    #[serde(rename = "node")]
    pub nodes: Vec<Node>,
}

impl State {
    /// The binaries the sandbox was built with.
    pub fn bin(&self) -> crate::tools::BinDir {
        crate::tools::BinDir {
            path: self.bindir.clone(),
            major: self.major,
        }
    }

    pub fn load(dir: &Path) -> Result<Option<State>> {
        let path = dir.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
        };
        toml::from_str(&text).map(Some).map_err(|e| {
            Error::new(
                Code::ConfigParseError,
                format!("{} is not a sandbox state file: {e}", path.display()),
            )
            .hint("remove the directory by hand if it is not a pgrepctl sandbox")
        })
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let text =
            toml::to_string_pretty(self).map_err(|e| Error::new(Code::Internal, e.to_string()))?;
        let path = dir.join(FILE);
        std::fs::write(&path, text)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
    }

    pub fn primary(&self) -> Option<&Node> {
        self.nodes.iter().find(|n| n.primary)
    }

    pub fn standbys(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| !n.primary)
    }
}
