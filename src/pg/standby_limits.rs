//! The hot-standby parameter rule, as a switchover's preflight needs it:
//! before the old primary (or a sibling) becomes a standby of the new
//! primary, each of a few settings must be at least the new primary's, or
//! the standby stops. Pure decisions, no server.
//!
//! PostgreSQL (`CheckRequiredParameterValues`, xlog.c) compares them
//! when hot_standby is on, against
//! the values the primary recorded in its control file and in WAL
//! (`XLOG_PARAMETER_CHANGE`, written when a primary, or a standby being
//! promoted, starts with values other than those recorded). After a
//! switchover that record is how the new primary's values reach the old
//! one: it replays the record, finds its own settings too low, and shuts
//! down (before 14) or pauses replay and shuts down once resumed (14+).
//! At start-up a standby below the recorded values refuses to start in
//! every version. `max_wal_senders` counts from 12, when wal senders
//! stopped being part of `max_connections`.

use super::HOT_STANDBY_SETTINGS;
use super::version::Version;

/// [`HOT_STANDBY_SETTINGS`] without `max_wal_senders`: what 10 and 11
/// compare.
const WITHOUT_WAL_SENDERS: [&str; 4] = [
    "max_connections",
    "max_worker_processes",
    "max_prepared_transactions",
    "max_locks_per_transaction",
];

/// The settings a standby of this version (`server_version_num`) compares
/// with its primary's: what the caller reads with `current_setting` on
/// both sides. The standby's version decides, since the standby checks.
pub fn settings(version_num: u32) -> &'static [&'static str] {
    if Version::of(version_num).standby_checks_max_wal_senders() {
        &HOT_STANDBY_SETTINGS
    } else {
        &WITHOUT_WAL_SENDERS
    }
}

/// One line per setting of [`settings`] that is lower on the standby than
/// on the new primary, in that order; empty when the standby can follow.
/// `standby` and `primary` are (name, value) pairs as read; a setting
/// missing from either side is reported too, as not comparable, so a
/// caller's incomplete query cannot pass for "high enough".
/// The settings of [`settings`] that are lower on the standby than on the
/// primary, as (name, standby's, primary's); one missing on either side
/// is left out (check and smoke-test report what they could read).
pub fn lower(
    version_num: u32,
    standby: &[(String, i64)],
    primary: &[(String, i64)],
) -> Vec<(&'static str, i64, i64)> {
    let get =
        |side: &[(String, i64)], name: &str| side.iter().find(|(n, _)| n == name).map(|&(_, v)| v);
    settings(version_num)
        .iter()
        .filter_map(|&name| match (get(standby, name), get(primary, name)) {
            (Some(here), Some(there)) if here < there => Some((name, here, there)),
            _ => None,
        })
        .collect()
}

pub fn too_low(
    version_num: u32,
    standby: &[(String, i64)],
    primary: &[(String, i64)],
) -> Vec<String> {
    let get =
        |side: &[(String, i64)], name: &str| side.iter().find(|(n, _)| n == name).map(|&(_, v)| v);
    let mut out = vec![];
    for &name in settings(version_num) {
        match (get(standby, name), get(primary, name)) {
            (Some(here), Some(there)) if here < there => out.push(format!(
                "{name} is {here} here and {there} on the new primary: a standby needs at least the primary's value"
            )),
            (Some(_), Some(_)) => {}
            (here, _) => out.push(format!(
                "{name} was not read {}: it cannot be compared",
                if here.is_none() { "here" } else { "on the new primary" }
            )),
        }
    }
    out
}

/// What a standby of this version does when a setting is too low, for the
/// sentence after [`too_low`]'s lines.
pub fn consequence(version_num: u32) -> &'static str {
    if Version::of(version_num).pauses_on_insufficient_parameters() {
        "it would refuse to start as a standby, or pause replay when the new primary's values reach it and shut down once resumed"
    } else {
        "it would refuse to start as a standby, or shut down when the new primary's values reach it"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
        pairs.iter().map(|&(n, v)| (n.to_string(), v)).collect()
    }

    /// Every setting of `version`, at `v`.
    fn all(version: u32, v: i64) -> Vec<(String, i64)> {
        settings(version)
            .iter()
            .map(|n| (n.to_string(), v))
            .collect()
    }

    #[test]
    fn which_settings_count() {
        assert_eq!(settings(100023).len(), 4);
        assert_eq!(settings(110022), WITHOUT_WAL_SENDERS);
        assert_eq!(settings(120000), HOT_STANDBY_SETTINGS);
        assert_eq!(settings(180001), HOT_STANDBY_SETTINGS);
        let mut without = HOT_STANDBY_SETTINGS.to_vec();
        without.retain(|n| *n != "max_wal_senders");
        assert_eq!(without, WITHOUT_WAL_SENDERS);
    }

    #[test]
    fn equal_or_higher_is_fine() {
        assert!(too_low(160004, &all(160004, 10), &all(160004, 10)).is_empty());
        assert!(too_low(160004, &all(160004, 500), &all(160004, 10)).is_empty());
    }

    #[test]
    fn each_lower_setting_is_one_line_in_order() {
        let standby = values(&[
            ("max_connections", 100),
            ("max_worker_processes", 8),
            ("max_wal_senders", 5),
            ("max_prepared_transactions", 0),
            ("max_locks_per_transaction", 64),
        ]);
        let primary = values(&[
            ("max_locks_per_transaction", 64),
            ("max_prepared_transactions", 0),
            ("max_wal_senders", 10),
            ("max_worker_processes", 8),
            ("max_connections", 200),
        ]);
        assert_eq!(
            too_low(150000, &standby, &primary),
            [
                "max_connections is 100 here and 200 on the new primary: a standby needs at least the primary's value",
                "max_wal_senders is 5 here and 10 on the new primary: a standby needs at least the primary's value",
            ]
        );
    }

    #[test]
    fn max_wal_senders_counts_from_12() {
        let mut standby = all(110000, 10);
        standby.push(("max_wal_senders".into(), 1));
        let mut primary = all(110000, 10);
        primary.push(("max_wal_senders".into(), 20));
        assert!(too_low(110022, &standby, &primary).is_empty());
        let lines = too_low(120000, &standby, &primary);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with("max_wal_senders is 1 here and 20"));
    }

    #[test]
    fn a_setting_not_read_is_not_taken_for_high_enough() {
        let primary = all(170000, 10);
        let mut standby = all(170000, 10);
        standby.retain(|(n, _)| n != "max_worker_processes");
        assert_eq!(
            too_low(170000, &standby, &primary),
            ["max_worker_processes was not read here: it cannot be compared"]
        );
        assert_eq!(too_low(170000, &primary, &[]).len(), settings(170000).len());
        assert!(
            too_low(170000, &primary, &[])[0]
                .ends_with("not read on the new primary: it cannot be compared")
        );
    }

    #[test]
    fn consequence_by_version() {
        assert!(!consequence(130000).contains("pause"));
        assert!(consequence(140000).contains("pause replay"));
    }
}
