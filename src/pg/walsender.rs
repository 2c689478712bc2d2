//! Which walsender serves which standby. pg_stat_replication shows each
//! walsender's application_name and client address, and
//! pg_replication_slots (`active_pid`) its slot; a standby's WAL receiver
//! knows its own name and slot. Names repeat in practice: a standby's
//! default name is its host's, the same for two standbys of one host. So
//! the name decides when it is unique, the address and the slot narrow
//! it down when it is not, and what is still more than one is said to be
//! ambiguous, never guessed: switchover drops the slot of the walsender
//! it finds, check reports the link as this standby's, and clone-standby
//! tells its own walsender from another standby's of the same name. Pure.

use std::net::IpAddr;

/// A walsender, as far as telling standbys apart goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen<'a> {
    pub application_name: &'a str,
    /// `client_addr`: None over a Unix socket, or when hidden from the role.
    pub addr: Option<IpAddr>,
    /// The slot it streams through (pg_replication_slots.active_pid).
    pub slot: Option<&'a str>,
}

/// What a standby's own side says about its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlotUse<'a> {
    /// Not known (no WAL receiver, or its details hidden from the role).
    #[default]
    Unknown,
    /// It streams without a slot: its walsender holds none.
    NoSlot,
    Named(&'a str),
}

impl<'a> SlotUse<'a> {
    /// The slot of a WAL receiver whose details are visible: its
    /// `slot_name`, null meaning that it uses none.
    pub fn of(slot_name: Option<&'a str>) -> SlotUse<'a> {
        match slot_name {
            Some(s) => SlotUse::Named(s),
            None => SlotUse::NoSlot,
        }
    }

    /// Whether a walsender holding `slot` may be this standby's.
    pub fn fits(self, slot: Option<&str>) -> bool {
        match self {
            SlotUse::Unknown => true,
            SlotUse::NoSlot => slot.is_none(),
            SlotUse::Named(s) => slot == Some(s),
        }
    }
}

/// A standby, as its own side (and the way we reached it) shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Standby<'a> {
    /// The application_name its WAL receiver announces (None: not known).
    pub application_name: Option<&'a str>,
    /// Addresses its walsender's client_addr may show (its own address as
    /// seen from here, the address it was given by); empty: not known.
    pub addrs: Vec<IpAddr>,
    pub slot: SlotUse<'a>,
}

/// Which of the walsenders serves the standby (indexes into them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    One(usize),
    NotFound,
    /// These walsenders (two or more) fit equally: the same name, no
    /// address and no slot that tells them apart.
    Ambiguous(Vec<usize>),
}

/// The walsender among `senders` that serves `standby`: the only one
/// under its application_name; else, of those under it, the only one
/// from one of its addresses (when known) with its slot (when known: a
/// standby without a slot has a walsender without one). Without a name,
/// only an address or a slot may pick one.
pub fn find(senders: &[Seen], standby: &Standby) -> Found {
    let name = standby.application_name;
    let named: Vec<usize> = (0..senders.len())
        .filter(|&i| name.is_none_or(|n| senders[i].application_name == n))
        .collect();
    if let (Some(_), [one]) = (name, named.as_slice()) {
        return Found::One(*one);
    }
    if name.is_none() && standby.addrs.is_empty() && standby.slot == SlotUse::Unknown {
        return Found::NotFound;
    }
    let fits: Vec<usize> = named
        .into_iter()
        .filter(|&i| {
            standby.addrs.is_empty() || senders[i].addr.is_some_and(|a| standby.addrs.contains(&a))
        })
        .filter(|&i| standby.slot.fits(senders[i].slot))
        .collect();
    match fits.as_slice() {
        [] => Found::NotFound,
        [one] => Found::One(*one),
        _ => Found::Ambiguous(fits),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen<'a>(app: &'a str, addr: &str, slot: Option<&'a str>) -> Seen<'a> {
        Seen {
            application_name: app,
            addr: addr.parse().ok(),
            slot,
        }
    }

    fn standby<'a>(app: Option<&'a str>, addr: &str, slot: SlotUse<'a>) -> Standby<'a> {
        Standby {
            application_name: app,
            addrs: addr.parse().into_iter().collect(),
            slot,
        }
    }

    #[test]
    fn a_unique_name_decides() {
        let s = [seen("a", "10.0.0.2", None), seen("b", "10.0.0.3", None)];
        let a = standby(Some("a"), "", SlotUse::Unknown);
        assert_eq!(find(&s, &a), Found::One(0));
        // The name alone decides: an address seen otherwise is no veto
        // (NAT, a tunnel).
        let a = standby(Some("a"), "192.168.1.1", SlotUse::Unknown);
        assert_eq!(find(&s, &a), Found::One(0));
        let c = standby(Some("c"), "", SlotUse::Unknown);
        assert_eq!(find(&s, &c), Found::NotFound);
    }

    #[test]
    fn a_shared_name_is_narrowed_by_address_then_slot() {
        // Two standbys of one host under its name, each with a slot; one
        // more from another host; one of the first host without a slot.
        let s = [
            seen("vm", "127.0.0.1", Some("xa")),
            seen("vm", "127.0.0.1", Some("xc")),
            seen("vm", "10.0.0.4", None),
            seen("vm", "127.0.0.1", None),
        ];
        let local = |slot| standby(Some("vm"), "127.0.0.1", slot);
        assert_eq!(find(&s, &local(SlotUse::Named("xc"))), Found::One(1));
        assert_eq!(find(&s, &local(SlotUse::NoSlot)), Found::One(3));
        assert_eq!(
            find(&s, &local(SlotUse::Unknown)),
            Found::Ambiguous(vec![0, 1, 3])
        );
        assert_eq!(find(&s, &local(SlotUse::Named("gone"))), Found::NotFound);
        let other = standby(Some("vm"), "10.0.0.4", SlotUse::Unknown);
        assert_eq!(find(&s, &other), Found::One(2));
        // No address known (Unix sockets): the slot alone.
        let any = |slot| standby(Some("vm"), "", slot);
        assert_eq!(find(&s, &any(SlotUse::Named("xa"))), Found::One(0));
        assert_eq!(
            find(&s, &any(SlotUse::NoSlot)),
            Found::Ambiguous(vec![2, 3])
        );
    }

    #[test]
    fn without_a_name_only_an_address_or_a_slot_picks() {
        let s = [
            seen("a", "10.0.0.2", None),
            seen("b", "10.0.0.3", Some("sb")),
        ];
        let nothing = standby(None, "", SlotUse::Unknown);
        assert_eq!(find(&s[..1], &nothing), Found::NotFound);
        assert_eq!(
            find(&s, &standby(None, "10.0.0.3", SlotUse::Unknown)),
            Found::One(1)
        );
        assert_eq!(
            find(&s, &standby(None, "", SlotUse::Named("sb"))),
            Found::One(1)
        );
    }
}
