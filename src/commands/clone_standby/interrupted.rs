//! What a clone-standby killed after it created its slot left on the
//! primary: the slot, inactive, keeping WAL for nobody, named by the
//! marker the run wrote beside the target ([`super::copy::Marker`]). A
//! rerun of the interrupted command finishes what it started: one that
//! does not name a slot streams through that one (as a rerun over a
//! standby in place keeps its slot); a slot the rerun does not use is
//! named in a warning with the statement that drops it. pgrepctl drops
//! none itself: by then another standby may stream through it.

use super::copy::{self, Marker};
use super::settings::Settings;
use super::target::{Target, TargetFacts};
use crate::cli::names::SlotName;

/// Before the preflight: without --slot, at a target a killed run never
/// filled (absent or empty), take the slot it created.
pub fn adopt(settings: &mut Settings, target: &TargetFacts) -> Option<String> {
    if settings.slot.is_some() || !matches!(target.state, Target::Absent | Target::Empty) {
        return None;
    }
    let m = copy::leftovers(target)
        .slots
        .into_iter()
        .find(|m| m.created)?;
    settings.slot = Some(SlotName::parse("primary_slot_name", &m.slot).ok()?);
    Some(format!(
        "reusing replication slot {slot}, which an interrupted clone-standby (pid {pid}) created on {primary} for this standby: unused, it would keep WAL there for nobody. To clone without a slot, drop it on the primary first (SELECT pg_drop_replication_slot('{slot}')) and rerun",
        slot = m.slot,
        pid = m.pid,
        primary = settings.primary_name()
    ))
}

/// After the plan: each slot a killed run created, or may have, that
/// this run will not stream through.
pub fn unused(settings: &Settings, target: &TargetFacts) -> Vec<String> {
    copy::leftovers(target)
        .slots
        .iter()
        .filter(|m| settings.slot.as_deref() != Some(m.slot.as_str()))
        .map(|m| warning(m, &settings.primary_name()))
        .collect()
}

fn warning(m: &Marker, primary: &str) -> String {
    let what = if m.created { "created" } else { "was creating" };
    format!(
        "an interrupted clone-standby (pid {pid}) {what} replication slot {slot} on {primary}, and this run does not use it: unless another standby streams through it, drop it on the primary (SELECT pg_drop_replication_slot('{slot}')), or it keeps WAL there for nobody",
        pid = m.pid,
        slot = m.slot
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_the_slot_and_how_to_drop_it() {
        let m = super::Marker {
            path: "/x".into(),
            pid: 42,
            slot: "vm".into(),
            created: false,
        };
        let w = super::warning(&m, "host=p port=5432");
        assert!(w.contains("(pid 42) was creating replication slot vm on host=p port=5432"));
        assert!(w.contains("SELECT pg_drop_replication_slot('vm')"));
    }
}
