//! Debian's clusters (postgresql-common): each has a configuration
//! directory `/etc/postgresql/<version>/<cluster>` whose `postgresql.conf`
//! names its data directory. This is the one place that reads that
//! mapping, in both directions; the root (`/etc/postgresql` in real runs)
//! is a parameter so tests can use a directory of their own.

use crate::conf::pgconf;
use std::path::{Path, PathBuf};

/// Where Debian keeps cluster configuration.
pub const ETC_ROOT: &str = "/etc/postgresql";

/// One Debian cluster: `pg_ctlcluster <version> <cluster> …` manages it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianCluster {
    pub version: String,
    pub cluster: String,
    /// `/etc/postgresql/<version>/<cluster>`: postgresql.conf, pg_hba.conf.
    pub config_dir: PathBuf,
    /// The `data_directory` its postgresql.conf sets.
    pub data_dir: PathBuf,
}

impl DebianCluster {
    /// Where pg_ctlcluster logs the server's output (its default; a
    /// `log_directory` in the cluster's configuration may add others).
    pub fn log_file(&self) -> PathBuf {
        PathBuf::from(format!(
            "/var/log/postgresql/postgresql-{}-{}.log",
            self.version, self.cluster
        ))
    }

    /// The bin directory pg_ctlcluster runs this cluster's server from.
    pub fn bindir(&self) -> PathBuf {
        PathBuf::from(format!("/usr/lib/postgresql/{}/bin", self.version))
    }
}

/// Every cluster under `root` (`<root>/<version>/<cluster>/postgresql.conf`
/// that sets `data_directory`), sorted by version then name.
pub fn clusters(root: &Path) -> Vec<DebianCluster> {
    let mut out = vec![];
    for version in read_dir_sorted(root) {
        for config_dir in read_dir_sorted(&version) {
            let data_dir = std::fs::read_to_string(config_dir.join("postgresql.conf"))
                .ok()
                .and_then(|t| data_directory_setting(&t))
                .map(PathBuf::from);
            let (Some(data_dir), Some(v), Some(c)) =
                (data_dir, file_name(&version), file_name(&config_dir))
            else {
                continue;
            };
            out.push(DebianCluster {
                version: v,
                cluster: c,
                config_dir,
                data_dir,
            });
        }
    }
    out
}

/// The cluster under `root` whose data directory is `data_dir` (which
/// may not exist yet: a standby about to be cloned into a Debian
/// cluster's place). Paths that exist are compared after resolving
/// symbolic links.
pub fn by_data_dir(root: &Path, data_dir: &Path) -> Option<DebianCluster> {
    let want = canonical(data_dir);
    clusters(root)
        .into_iter()
        .find(|c| c.data_dir == data_dir || canonical(&c.data_dir) == want)
}

/// `data_directory` as a postgresql.conf sets it (its last active line).
pub fn data_directory_setting(text: &str) -> Option<String> {
    let conf = pgconf::parse(text).ok()?;
    conf.last_active("data_directory")
        .and_then(|l| conf.setting_at(l))
        .map(|(_, v)| v.to_string())
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

fn file_name(p: &Path) -> Option<String> {
    Some(p.file_name()?.to_string_lossy().into_owned())
}

fn read_dir_sorted(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster_conf(root: &Path, version: &str, name: &str, conf: &str) -> PathBuf {
        let dir = root.join(version).join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("postgresql.conf"), conf).unwrap();
        dir
    }

    #[test]
    fn maps_config_dirs_to_data_dirs_and_back() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("etc/postgresql");
        let data = t.path().join("var/15/main");
        std::fs::create_dir_all(&data).unwrap();
        let main = cluster_conf(
            &root,
            "15",
            "main",
            &format!(
                "# comment\ndata_directory = '/elsewhere'\ndata_directory = '{}'\t# the live one\nport = 5432\n",
                data.display()
            ),
        );
        cluster_conf(
            &root,
            "17",
            "other",
            "data_directory = '/var/lib/postgresql/17/other'\n",
        );
        // No data_directory: not a cluster pgrepctl can map.
        cluster_conf(&root, "16", "broken", "#data_directory = '/x'\n");
        std::fs::write(root.join("README"), "not a version").unwrap();

        let all = clusters(&root);
        assert_eq!(all.len(), 2, "{all:?}");
        let found = by_data_dir(&root, &data).unwrap();
        assert_eq!(
            found,
            DebianCluster {
                version: "15".into(),
                cluster: "main".into(),
                config_dir: main,
                data_dir: data.clone(),
            }
        );
        assert_eq!(found.bindir(), Path::new("/usr/lib/postgresql/15/bin"));
        assert_eq!(
            found.log_file(),
            Path::new("/var/log/postgresql/postgresql-15-main.log")
        );
        // Absent data directories match by their literal path.
        let other = by_data_dir(&root, Path::new("/var/lib/postgresql/17/other")).unwrap();
        assert_eq!(
            (other.version.as_str(), other.cluster.as_str()),
            ("17", "other")
        );
        assert!(by_data_dir(&root, Path::new("/var/lib/postgresql/17/nope")).is_none());
        assert!(clusters(&t.path().join("absent")).is_empty());
    }

    #[test]
    fn a_symlinked_data_dir_is_the_same_cluster() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("etc");
        let real = t.path().join("real");
        std::fs::create_dir_all(&real).unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        cluster_conf(
            &root,
            "15",
            "main",
            &format!("data_directory = '{}'\n", link.display()),
        );
        assert_eq!(by_data_dir(&root, &real).unwrap().cluster, "main");
    }
}
