//! The conformance suite: one set of store tests, written against the
//! service traits (`crate::engine`), run against every engine. A test here
//! takes a fresh, migrated, empty store; each group has a macro that expands
//! to one `#[test]` per test of the group, given an expression that makes a
//! fresh store (`Option<impl Deref<Target = impl Traits>>`; `None` skips, for
//! an engine the environment does not provide):
//!
//! ```ignore
//! entrada_store::venue_conformance!(fresh_store());
//! entrada_store::slot_conformance!(fresh_store());
//! ```
//!
//! SQLite runs it in this crate's unit tests (`conformance::sqlite`),
//! PostgreSQL in `entrada-store-pg`'s. Enabled by the `conformance` feature
//! (tests only; nothing of it is in a binary).

use chrono::{DateTime, TimeZone, Utc};

use crate::domain::{NewSlot, Orq, Slot, Venue};
use crate::StoreError;

pub const ORQ: Orq = Orq(1);

/// 2025-11-25 10:00 UTC: before the December slots used in the tests.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 11, 25, 10, 0, 0).unwrap()
}

fn code_of<T: std::fmt::Debug>(r: Result<T, StoreError>) -> &'static str {
    r.expect_err("expected an error").code()
}

fn date(s: &str) -> chrono::NaiveDate {
    crate::domain::slot::parse_date("date", s).unwrap()
}

fn slot_at(
    s: &(impl crate::SlotStore + ?Sized),
    venue: &Venue,
    day: &str,
    start: &str,
    end: &str,
    capacity: i64,
) -> Slot {
    let new = NewSlot::validate(venue.id.0, day, start, end, Some(capacity)).unwrap();
    s.create_slot(ORQ, &new, now()).unwrap()
}

/// Venues and their gate settings.
pub mod venues {
    use super::*;
    use crate::domain::venue::GateSettingsPatch;
    use crate::domain::VenueId;
    use crate::VenueStore;

    pub fn venues_are_created_read_and_listed_per_org(s: &(impl VenueStore + ?Sized)) {
        let a = s.add_venue(ORQ, " Prado ", "Europe/Madrid", now()).unwrap();
        assert_eq!(a.name, "Prado", "the name is trimmed");
        assert_eq!(a.timezone.name(), "Europe/Madrid");
        assert_eq!(a.orq, ORQ);
        assert_eq!((a.created_at, a.updated_at), (now(), now()));
        assert_eq!(
            (a.gate.early_grace_minutes(), a.gate.late_grace_minutes()),
            (30, 30),
            "the default grace"
        );
        let b = s.add_venue(ORQ, "Garden", "UTC", now()).unwrap();
        s.add_venue(Orq(2), "Elsewhere", "UTC", now()).unwrap();
        assert_eq!(s.get_venue(ORQ, a.id).unwrap(), a);
        assert_eq!(s.list_venues(ORQ).unwrap(), vec![a.clone(), b]);
        // Another org's venue, or none at all, is not found.
        assert_eq!(code_of(s.get_venue(Orq(2), a.id)), "NOT_FOUND");
        assert_eq!(code_of(s.get_venue(ORQ, VenueId(999_999))), "NOT_FOUND");
    }

    pub fn a_venue_needs_a_name_and_a_known_time_zone(s: &(impl VenueStore + ?Sized)) {
        assert_eq!(
            code_of(s.add_venue(ORQ, "  ", "UTC", now())),
            "INVALID_INPUT"
        );
        assert_eq!(
            code_of(s.add_venue(ORQ, "Prado", "Mars/Olympus", now())),
            "INVALID_INPUT"
        );
        assert!(s.list_venues(ORQ).unwrap().is_empty());
    }

    pub fn gate_settings_change_what_the_patch_names(s: &(impl VenueStore + ?Sized)) {
        let v = s.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
        let later = now() + chrono::Duration::minutes(5);
        let patch = GateSettingsPatch {
            early_grace_minutes: Some(10),
            late_grace_minutes: None,
        };
        let changed = s.update_gate_settings(ORQ, v.id, &patch, later).unwrap();
        assert_eq!(
            (
                changed.gate.early_grace_minutes(),
                changed.gate.late_grace_minutes()
            ),
            (10, 30)
        );
        assert_eq!(changed.updated_at, later);
        assert_eq!(s.get_venue(ORQ, v.id).unwrap(), changed);
        // Out of bounds, or naming nothing: refused, nothing changed.
        let wild = GateSettingsPatch {
            early_grace_minutes: None,
            late_grace_minutes: Some(241),
        };
        assert_eq!(
            code_of(s.update_gate_settings(ORQ, v.id, &wild, later)),
            "INVALID_INPUT"
        );
        assert_eq!(
            code_of(s.update_gate_settings(ORQ, v.id, &GateSettingsPatch::default(), later)),
            "INVALID_INPUT"
        );
        assert_eq!(
            code_of(s.update_gate_settings(Orq(2), v.id, &patch, later)),
            "NOT_FOUND"
        );
        assert_eq!(s.get_venue(ORQ, v.id).unwrap(), changed);
    }
}

/// Time slots (without reservations; those are the reservation group's).
pub mod slots {
    use super::*;
    use crate::domain::{SlotRemoval, SlotStatus};
    use crate::{SlotStore, VenueStore};

    pub fn slot_create_validates_and_refuses_duplicates(
        s: &(impl VenueStore + SlotStore + ?Sized),
    ) {
        let venue = s.add_venue(ORQ, "Prado", "Europe/Madrid", now()).unwrap();
        let slot = slot_at(s, &venue, "2025-12-01", "09:00", "11:00", 200);
        assert_eq!(
            (slot.total_capacity, slot.booked_count, slot.available_count),
            (200, 0, 200)
        );
        assert_eq!(slot.status, SlotStatus::Active);
        assert_eq!((slot.orq, slot.venue_id), (ORQ, venue.id));
        assert_eq!(slot.date, date("2025-12-01"));
        assert_eq!(slot.start_time.to_string(), "09:00:00");
        assert_eq!(slot.end_time.to_string(), "11:00:00");
        assert_eq!(s.get_slot(ORQ, slot.id).unwrap(), slot);

        let dup =
            NewSlot::validate(venue.id.0, "2025-12-01", "09:00:00", "10:00", Some(5)).unwrap();
        assert_eq!(code_of(s.create_slot(ORQ, &dup, now())), "DUPLICATE_SLOT");
        // The same start at another venue is another slot.
        let garden = s.add_venue(ORQ, "Garden", "UTC", now()).unwrap();
        let there = NewSlot::validate(garden.id.0, "2025-12-01", "09:00", "10:00", None).unwrap();
        s.create_slot(ORQ, &there, now()).unwrap();

        // A venue of another org is unknown to this org.
        let other = s.add_venue(Orq(2), "Elsewhere", "UTC", now()).unwrap();
        let foreign = NewSlot::validate(other.id.0, "2025-12-01", "09:00", "10:00", None).unwrap();
        assert_eq!(code_of(s.create_slot(ORQ, &foreign, now())), "NOT_FOUND");
        let missing = NewSlot::validate(999_999, "2025-12-01", "09:00", "10:00", None).unwrap();
        assert_eq!(code_of(s.create_slot(ORQ, &missing, now())), "NOT_FOUND");
        assert_eq!(code_of(s.get_slot(Orq(2), slot.id)), "NOT_FOUND");
    }

    pub fn an_unbooked_slot_is_deleted_for_good(s: &(impl VenueStore + SlotStore + ?Sized)) {
        let venue = s.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
        let empty = slot_at(s, &venue, "2025-12-01", "09:00", "11:00", 10);
        assert_eq!(
            code_of(s.remove_slot(Orq(2), empty.id, now())),
            "NOT_FOUND",
            "another org's slot"
        );
        assert_eq!(
            s.remove_slot(ORQ, empty.id, now()).unwrap(),
            (SlotRemoval::Deleted, None)
        );
        assert_eq!(code_of(s.get_slot(ORQ, empty.id)), "NOT_FOUND");
        assert_eq!(code_of(s.remove_slot(ORQ, empty.id, now())), "NOT_FOUND");
        // Its start is free again.
        slot_at(s, &venue, "2025-12-01", "09:00", "11:00", 10);
    }

    pub fn capacity_and_status_change_as_the_domain_plans(
        s: &(impl VenueStore + SlotStore + ?Sized),
    ) {
        use crate::domain::SlotChange;
        let venue = s.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
        let slot = slot_at(s, &venue, "2025-12-01", "09:00", "11:00", 10);
        let later = now() + chrono::Duration::minutes(1);
        let change = |total_capacity, status| SlotChange {
            total_capacity,
            status,
        };
        let smaller = s
            .update_slot(ORQ, slot.id, change(Some(4), None), later)
            .unwrap();
        assert_eq!(
            (
                smaller.total_capacity,
                smaller.available_count,
                smaller.status
            ),
            (4, 4, SlotStatus::Active)
        );
        assert_eq!(smaller.updated_at, later);
        let closed = s
            .update_slot(ORQ, slot.id, change(None, Some(SlotStatus::Closed)), later)
            .unwrap();
        assert_eq!(
            (closed.status, closed.total_capacity),
            (SlotStatus::Closed, 4)
        );
        let reopened = s
            .update_slot(
                ORQ,
                slot.id,
                change(Some(6), Some(SlotStatus::Active)),
                later,
            )
            .unwrap();
        assert_eq!(
            (reopened.status, reopened.total_capacity),
            (SlotStatus::Active, 6)
        );
        // Refused: FULL is not set by hand, capacity must be positive.
        assert_eq!(
            code_of(s.update_slot(ORQ, slot.id, change(None, Some(SlotStatus::Full)), later)),
            "INVALID_STATUS_CHANGE"
        );
        assert_eq!(
            code_of(s.update_slot(ORQ, slot.id, change(Some(0), None), later)),
            "INVALID_INPUT"
        );
        assert_eq!(
            code_of(s.update_slot(Orq(2), slot.id, change(Some(5), None), later)),
            "NOT_FOUND"
        );
        assert_eq!(s.get_slot(ORQ, slot.id).unwrap(), reopened);
    }

    pub fn list_by_venue_and_date_range(s: &(impl VenueStore + SlotStore + ?Sized)) {
        let venue = s.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
        let second = s.add_venue(ORQ, "Garden", "Europe/Madrid", now()).unwrap();
        let nov = slot_at(s, &venue, "2025-11-30", "09:00", "11:00", 1);
        let a = slot_at(s, &venue, "2025-12-01", "09:00", "11:00", 1);
        let a2 = slot_at(s, &venue, "2025-12-01", "08:00", "09:00", 1);
        let b = slot_at(s, &venue, "2025-12-31", "09:00", "11:00", 1);
        let c = slot_at(s, &second, "2025-12-15", "09:00", "10:00", 1);
        let other = s.add_venue(Orq(2), "Other org", "UTC", now()).unwrap();
        let new = NewSlot::validate(other.id.0, "2025-12-01", "09:00", "10:00", None).unwrap();
        s.create_slot(Orq(2), &new, now()).unwrap();

        let ids = |v: Vec<Slot>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(
            ids(s
                .list_slots(
                    ORQ,
                    Some(venue.id),
                    Some(date("2025-12-01")),
                    Some(date("2025-12-31"))
                )
                .unwrap()),
            vec![a2.id, a.id, b.id],
            "by date, then start"
        );
        assert_eq!(
            ids(s.list_slots(ORQ, None, None, None).unwrap()),
            vec![nov.id, a2.id, a.id, c.id, b.id]
        );
        assert_eq!(
            ids(s
                .list_slots(ORQ, None, Some(date("2025-12-02")), None)
                .unwrap()),
            vec![c.id, b.id]
        );
        assert_eq!(
            ids(s
                .list_slots(ORQ, None, None, Some(date("2025-11-30")))
                .unwrap()),
            vec![nov.id]
        );
        assert_eq!(
            code_of(s.list_slots(
                ORQ,
                None,
                Some(date("2025-12-31")),
                Some(date("2025-12-01"))
            )),
            "INVALID_INPUT"
        );
    }
}

/// Expands to the venue group's tests; see the module's doc.
#[macro_export]
macro_rules! venue_conformance {
    ($fresh:expr) => {
        $crate::conformance_tests!($fresh; venues;
            venues_are_created_read_and_listed_per_org,
            a_venue_needs_a_name_and_a_known_time_zone,
            gate_settings_change_what_the_patch_names,
        );
    };
}

/// Expands to the slot group's tests; see the module's doc.
#[macro_export]
macro_rules! slot_conformance {
    ($fresh:expr) => {
        $crate::conformance_tests!($fresh; slots;
            slot_create_validates_and_refuses_duplicates,
            an_unbooked_slot_is_deleted_for_good,
            capacity_and_status_change_as_the_domain_plans,
            list_by_venue_and_date_range,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:expr; $group:ident; $($test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                let Some(store) = $fresh else { return };
                $crate::conformance::$group::$test(&*store);
            }
        )*
    };
}

/// The suite on SQLite: a fresh database file per test.
#[cfg(test)]
mod sqlite {
    use crate::Store;

    struct Fresh {
        store: Store,
        _dir: tempfile::TempDir,
    }

    impl std::ops::Deref for Fresh {
        type Target = Store;
        fn deref(&self) -> &Store {
            &self.store
        }
    }

    fn fresh() -> Option<Fresh> {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("conformance.db")).unwrap();
        Some(Fresh { store, _dir: dir })
    }

    crate::venue_conformance!(fresh());
    crate::slot_conformance!(fresh());
}
