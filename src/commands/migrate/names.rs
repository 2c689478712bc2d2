//! The names of what `migrate start` creates, derived from the database
//! name alone, so that status, cutover and abort — separate runs with no
//! state file — find the same publication (source database), subscription
//! (target database) and replication slot (source cluster) again.
//!
//! Slot names are cluster-wide and PostgreSQL allows only `[a-z0-9_]`, at
//! most 63 bytes (NAMEDATALEN - 1). The database name is sanitized into
//! that alphabet; when sanitizing (or shortening) changed it, a short hash
//! of the original name is appended, so "Sales-EU" and "sales_eu" cannot
//! end up with the same slot.

use sha2::{Digest, Sha256};

/// What every migration object's name starts with: an operator seeing a
/// slot on the source knows whose it is.
pub const PREFIX: &str = "pgrepctl_migrate_";

/// PostgreSQL's identifier and slot name limit (NAMEDATALEN - 1).
const MAX: usize = 63;

/// Hex digits of the hash suffix: 32 bits tell apart the few databases
/// one cluster holds.
const HASH_LEN: usize = 8;

/// The three names one migration uses. The subscription creates its slot
/// on the source under its own name, so `slot == subscription`; they are
/// kept apart here because they live on different servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub publication: String,
    pub subscription: String,
    pub slot: String,
}

impl Names {
    pub fn for_database(dbname: &str) -> Names {
        let base = format!("{PREFIX}{}", suffix(dbname));
        Names {
            publication: base.clone(),
            subscription: base.clone(),
            slot: base,
        }
    }
}

/// What the publication's comment starts with; a JSON object follows.
const COMMENT_PREFIX: &str = "pgrepctl migrate: ";

/// The publication's comment: the tables start gave REPLICA IDENTITY
/// FULL (--replica-identity-full), which abort and cutover put back to
/// DEFAULT — only those, never a table the user had set so.
/// With them, the target's system identifier (when start could read it):
/// abort refuses a --target that is another server.
pub fn publication_comment(full: &[super::inspect::Table], target: Option<&str>) -> String {
    let tables: Vec<[&str; 2]> = full
        .iter()
        .map(|t| [t.schema.as_str(), t.name.as_str()])
        .collect();
    let mut v = serde_json::json!({ "replica_identity_full": tables });
    if let Some(t) = target {
        v["target_system_identifier"] = t.into();
    }
    format!("{COMMENT_PREFIX}{v}")
}

/// The target's system identifier a [`publication_comment`] records.
pub fn target_system(comment: Option<&str>) -> Option<String> {
    comment_json(comment)["target_system_identifier"]
        .as_str()
        .map(str::to_string)
}

/// The JSON object of a [`publication_comment`]; null for any other
/// comment (a publication of an older pgrepctl, or edited by hand).
fn comment_json(comment: Option<&str>) -> serde_json::Value {
    comment
        .and_then(|c| c.strip_prefix(COMMENT_PREFIX))
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}

/// The publication's comment once cutover has passed its commit point:
/// the same, with `"cut_over": true`. From then on the target is the
/// database: abort leaves the source read-only and refuses
/// --drop-schema, whatever a killed cutover left of the replication.
pub fn cut_over_comment(comment: Option<&str>) -> String {
    let mut v = comment_json(comment);
    if !v.is_object() {
        v = serde_json::json!({ "replica_identity_full": [] });
    }
    v["cut_over"] = true.into();
    format!("{COMMENT_PREFIX}{v}")
}

/// Whether a [`cut_over_comment`] says the cutover passed its commit point.
pub fn is_cut_over(comment: Option<&str>) -> bool {
    comment_json(comment)["cut_over"] == true
}

/// The tables a [`publication_comment`] names; none for any other
/// comment.
pub fn replica_identity_full(comment: Option<&str>) -> Vec<super::inspect::Table> {
    comment_json(comment)["replica_identity_full"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some(super::inspect::Table {
                schema: t.get(0)?.as_str()?.to_string(),
                name: t.get(1)?.as_str()?.to_string(),
            })
        })
        .collect()
}

/// `dbname` in `[a-z0-9_]`, plus a hash of the original when that changed
/// it, all within what is left of 63 bytes after [`PREFIX`].
fn suffix(dbname: &str) -> String {
    let room = MAX - PREFIX.len();
    let clean: String = dbname
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .collect();
    if clean == dbname && clean.len() <= room && !clean.is_empty() {
        return clean;
    }
    let hash = Sha256::digest(dbname.as_bytes());
    let hex: String = hash
        .iter()
        .take(HASH_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect();
    // Every char of `clean` is ASCII: truncating by bytes is safe.
    let keep = room - HASH_LEN - 1;
    let head = &clean[..clean.len().min(keep)];
    format!("{head}_{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_comment_gives_back_its_tables() {
        let t = super::super::inspect::Table {
            schema: "my schema".into(),
            name: "log\"s".into(),
        };
        let c = publication_comment(std::slice::from_ref(&t), None);
        assert!(c.starts_with("pgrepctl migrate: {"), "{c}");
        assert_eq!(replica_identity_full(Some(&c)), vec![t]);
        assert!(replica_identity_full(Some("mine")).is_empty());
        assert!(replica_identity_full(None).is_empty());
    }

    #[test]
    fn the_cut_over_mark_keeps_the_tables() {
        let t = super::super::inspect::Table {
            schema: "public".into(),
            name: "log".into(),
        };
        let c = publication_comment(std::slice::from_ref(&t), Some("7311"));
        assert!(!is_cut_over(Some(&c)));
        assert_eq!(target_system(Some(&c)).as_deref(), Some("7311"));
        let cut = cut_over_comment(Some(&c));
        assert!(is_cut_over(Some(&cut)), "{cut}");
        assert_eq!(replica_identity_full(Some(&cut)), vec![t]);
        assert_eq!(target_system(Some(&cut)).as_deref(), Some("7311"));
        assert_eq!(target_system(Some("mine")), None);
        // A comment of someone else's, or none: marked all the same.
        for other in [None, Some("mine")] {
            let cut = cut_over_comment(other);
            assert!(is_cut_over(Some(&cut)), "{cut}");
            assert!(replica_identity_full(Some(&cut)).is_empty());
        }
        assert!(!is_cut_over(Some("mine")));
    }

    fn valid(n: &str) -> bool {
        n.len() <= MAX
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }

    #[test]
    fn plain_names_are_kept() {
        let n = Names::for_database("shop");
        assert_eq!(n.slot, "pgrepctl_migrate_shop");
        assert_eq!(n.publication, n.slot);
        assert_eq!(n.subscription, n.slot);
    }

    #[test]
    fn changed_names_get_a_hash_and_stay_apart() {
        let a = Names::for_database("Sales-EU").slot;
        let b = Names::for_database("sales_eu").slot;
        assert_ne!(a, b);
        assert!(a.starts_with("pgrepctl_migrate_sales_eu_"), "{a}");
        assert_eq!(b, "pgrepctl_migrate_sales_eu");
        assert!(valid(&a));
    }

    #[test]
    fn long_and_odd_names_fit() {
        for db in [
            &"x".repeat(63)[..],
            &"é".repeat(40)[..],
            "a b\"c'd",
            "",
            "ÄÖÜ-データ",
        ] {
            let n = Names::for_database(db).slot;
            assert!(valid(&n), "{db:?} -> {n}");
        }
        let long_a = Names::for_database(&"a".repeat(63)).slot;
        let long_b = Names::for_database(&"a".repeat(62)).slot;
        assert_ne!(long_a, long_b);
    }

    #[test]
    fn stable() {
        // status, cutover and abort of a later pgrepctl version must find
        // what an earlier one created: this value must never change.
        assert_eq!(
            Names::for_database("Sales-EU").slot,
            "pgrepctl_migrate_sales_eu_1608d1a4"
        );
    }
}
