//! `tunnel unit`: the systemd unit, from `templates/tunnel.service`, written
//! through the engine (one file edit: a rerun changes nothing, --dry-run
//! shows the diff). pgrepctl does not run systemctl: it prints the two
//! commands that enable the unit.

use super::ssh::{self, Tunnel};
use crate::error::{Code, Error, Result};
use crate::plan::file::EditFile;
use crate::plan::{Action, Applied, Cx};
use crate::report::Change;
use futures_util::future::LocalBoxFuture;
use std::path::{Path, PathBuf};

const TEMPLATE: &str = include_str!("../../../templates/tunnel.service");

/// The unit's text: the template with `ExecStart=` from [`ssh::argv`], and
/// `User=` when ssh is to run as someone other than root.
pub fn render(program: &Path, t: &Tunnel, user: Option<&str>) -> String {
    let mut words = vec![program.display().to_string()];
    words.extend(ssh::argv(t));
    let exec: Vec<String> = words.iter().map(|w| quote(w)).collect();
    TEMPLATE
        .replace("{exec_start}", &exec.join(" "))
        .replace(
            "{user_line}",
            &user.map_or(String::new(), |u| {
                format!("User={}\n", u.replace('%', "%%"))
            }),
        )
        .replace("{local_port}", &t.local_port.to_string())
        .replace("{remote_port}", &t.remote_port.to_string())
        .replace("{host}", &t.host().replace('%', "%%"))
}

/// One word of `ExecStart=` as systemd reads it: `%` (specifiers) and `$`
/// (variables) doubled; quoted when it holds a space, a quote or a
/// backslash.
fn quote(w: &str) -> String {
    let w = w.replace('%', "%%").replace('$', "$$");
    if w.is_empty() || w.chars().any(|c| c.is_whitespace() || "\"'\\;".contains(c)) {
        format!("\"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        w
    }
}

/// `--name`: a unit name (without `.service`, which is added).
pub fn name(given: Option<&str>, t: &Tunnel) -> Result<String> {
    let n = match given {
        Some(g) => g.strip_suffix(".service").unwrap_or(g).to_string(),
        None => format!("pgrepctl-tunnel-{}", t.local_port),
    };
    let ok = !n.is_empty()
        && !n.starts_with('.')
        && n.len() <= 200
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || ":_.-".contains(c));
    if !ok {
        return Err(Error::new(
            Code::InvalidValue,
            format!("--name {n:?} is not a unit name"),
        )
        .hint("use letters, digits and : _ . - only, e.g. --name pgrepctl-tunnel-db1"));
    }
    Ok(n)
}

/// The one step: the unit file, created or changed.
pub fn step(path: PathBuf, old: Option<String>, new: String) -> Option<UnitFile> {
    if old.as_deref() == Some(new.as_str()) {
        return None;
    }
    let summary = if old.is_some() {
        "tunnel unit updated"
    } else {
        "tunnel unit created"
    };
    Some(UnitFile(EditFile::new(path, old, new, summary.into())))
}

/// Whether the existing unit already forwards this local port: then the
/// port is busy with this very tunnel, and a rerun must not be refused.
pub fn holds_port(old: Option<&str>, t: &Tunnel) -> bool {
    old.is_some_and(|o| {
        o.lines()
            .any(|l| l.starts_with("ExecStart=") && l.contains(&format!(" {} ", t.forward())))
    })
}

/// The unit file: an [`EditFile`] whose new file is made world-readable
/// (0644, as systemd expects of units) rather than the engine's 0600.
pub struct UnitFile(pub EditFile);

impl<E: 'static> Action<E> for UnitFile {
    fn describe(&self) -> Option<Change> {
        Some(self.0.change())
    }

    fn preflight(&self) -> Result<()> {
        <EditFile as Action<E>>::preflight(&self.0)
    }

    fn label(&self) -> String {
        <EditFile as Action<E>>::label(&self.0)
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<E>) -> LocalBoxFuture<'s, Result<Applied<E>>> {
        let r = self.0.write(cx).and_then(|a| {
            if self.0.old.is_none() {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&self.0.path, std::fs::Permissions::from_mode(0o644))
                    .map_err(|e| {
                        Error::io(format!("cannot make {} readable", self.0.path.display()), e)
                    })?;
            }
            Ok(a)
        });
        Box::pin(async move { r })
    }
}

/// What the user runs next, printed after the changes.
pub fn enable_commands(name: &str) -> Vec<String> {
    vec![
        "systemctl daemon-reload".into(),
        format!("systemctl enable --now {name}.service"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tunnel() -> Tunnel {
        Tunnel {
            destination: "postgres@db1.example.org".into(),
            ssh_port: None,
            local_port: 15432,
            remote_port: 5432,
            identity: Some("/etc/pgrepctl/tunnel key".into()),
            known_hosts: None,
        }
    }

    #[test]
    fn unit_runs_the_one_argv() {
        let t = tunnel();
        let text = render(Path::new("/usr/bin/ssh"), &t, None);
        assert!(!text.contains("User="), "{text}");
        let as_pg = render(Path::new("/usr/bin/ssh"), &t, Some("postgres"));
        assert!(as_pg.lines().any(|l| l == "User=postgres"), "{as_pg}");
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap();
        let mut want = vec!["/usr/bin/ssh".to_string()];
        want.extend(ssh::argv(&t).iter().map(|w| quote(w)));
        assert_eq!(exec, want.join(" "));
        assert!(exec.contains(" \"/etc/pgrepctl/tunnel key\" "), "{exec}");
        for line in ["Restart=always", "RestartSec=1", "StartLimitIntervalSec=0"] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(!text.contains('{'), "every placeholder filled:\n{text}");
        assert!(holds_port(Some(&text), &t));
        let other = Tunnel {
            local_port: 15433,
            ..t
        };
        assert!(!holds_port(Some(&text), &other));
    }

    #[test]
    fn systemd_quoting() {
        assert_eq!(quote("-N"), "-N");
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote("50%"), "50%%");
        assert_eq!(quote("$HOME"), "$$HOME");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn unit_names() {
        assert_eq!(name(None, &tunnel()).unwrap(), "pgrepctl-tunnel-15432");
        assert_eq!(name(Some("db1.service"), &tunnel()).unwrap(), "db1");
        for bad in ["a/b", "", "x y", "../z", ".."] {
            assert!(name(Some(bad), &tunnel()).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_step_when_the_file_is_current() {
        let p = PathBuf::from("/etc/systemd/system/x.service");
        assert!(step(p.clone(), Some("a".into()), "a".into()).is_none());
        assert!(step(p, None, "a".into()).is_some());
    }
}
