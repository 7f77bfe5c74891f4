//! No-show release (issue 15): `no_show_release_minutes` after a slot
//! starts (on the venue's clock), a reservation still RESERVED whose ticket
//! was never used becomes a no-show: the server cancels it, marks it
//! `no_show_at`, and its place returns to the slot for walk-ups and late
//! bookings. The store asks [`no_show_check`] for each candidate inside the
//! write transaction that releases it, so a gate's verification committed
//! first wins (the reservation is VERIFIED by then) and a second release of
//! the same reservation finds it CANCELLED: release is idempotent.
//!
//! | venue setting | reservation | ticket used | venue clock vs start + minutes | outcome        |
//! |---------------|-------------|-------------|--------------------------------|----------------|
//! | null (never)  | any         | any         | any                            | `Never`        |
//! | m             | VERIFIED    | any         | any                            | `NotReserved`  |
//! | m             | CANCELLED   | any         | any                            | `NotReserved`  |
//! | m             | RESERVED    | yes         | any                            | `Entered`      |
//! | m             | RESERVED    | no          | before                         | `NotYet{due}`  |
//! | m             | RESERVED    | no          | at or after                    | `Release`      |
//!
//! A no-show who comes to a gate later gets the amber `NO_SHOW_RELEASED`
//! ([`crate::verdict`]): the operator decides.
//!
//! Capacity safety: the released place may have been booked by someone else
//! since, so a no-show the operator lets in late takes a place back in their
//! slot ([`place_back`]): one of the admitting gate's leased places of that
//! slot first (counted as taken already), else a free place of the slot; with
//! neither the verdict is `NO_PLACE_LEFT` (red, no decision to make) at the
//! gate, and an uploaded late admission is a `NO_PLACE_LEFT` conflict on the
//! server (the person counts as inside; the slot never goes over capacity).
//! The server judges so both the operator's decision (`overruled`) and the
//! ADMIT of a gate that had not heard of the release yet.
//!
//! | gate's lease in the slot | slot booked vs capacity | place back from |
//! |--------------------------|-------------------------|-----------------|
//! | ≥ 1                      | any (even full)         | `Lease`         |
//! | 0                        | below                   | `Free`          |
//! | 0                        | full (or over)          | `NoPlace`       |
//!
//! On the server the gate's lease counts only when the uploaded admission
//! says it took a leased place of that slot (`lease_slot_id`,
//! `upload::judge_admission`): otherwise the gate used a free place and its
//! lease is kept whole for the walk-ups it books from it.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

use serde::Serialize;

use crate::{ActivationStatus, Booked, Orq, ReservationId, ReservationStatus, SlotId, Ticket};

/// One reservation the server released as a no-show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Released {
    pub orq: Orq,
    pub reservation_id: ReservationId,
    pub slot_id: SlotId,
    pub released_at: DateTime<Utc>,
}

/// How many candidates one release transaction looks at (the writer lock is
/// held that long; the rest waits for the next round).
pub const RELEASE_BATCH: u32 = 200;

/// What [`no_show_check`] says of one reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoShowCheck {
    /// Release it now: cancel, mark `no_show_at`, free its place.
    Release,
    /// The venue never releases no-shows (`no_show_release_minutes` null).
    Never,
    /// Not a live reservation (verified or cancelled already).
    NotReserved,
    /// The ticket was used (verified or redeemed): the holder came.
    Entered,
    /// Not yet: due at this time on the venue's clock.
    NotYet { due: NaiveDateTime },
}

/// Where a released no-show let in late takes their place back from (see
/// the module's second table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceBack {
    /// One of the admitting gate's leased places of the slot (already
    /// counted in the slot's `booked_count`).
    Lease,
    /// A free place of the slot (`booked_count` goes up by one).
    Free,
    /// None left: refuse (gate) or a conflict (server).
    NoPlace,
}

/// Where a released no-show's place comes back from: `leased` is what the
/// admitting gate holds of `slot` (0 for an admission without a gate lease).
pub fn place_back(leased: i64, slot: &crate::Slot) -> PlaceBack {
    if leased > 0 {
        PlaceBack::Lease
    } else if slot.booked_count < slot.total_capacity {
        PlaceBack::Free
    } else {
        PlaceBack::NoPlace
    }
}

/// The gate's verdict for a released no-show with no place to take back:
/// the amber `NO_SHOW_RELEASED` becomes a red `NO_PLACE_LEFT` (nothing for
/// the operator to decide). Any other verdict, or a place found, is kept.
pub fn without_place(mut verdict: crate::Verdict, place: PlaceBack) -> crate::Verdict {
    if verdict.verdict == crate::VerdictCode::NoShowReleased && place == PlaceBack::NoPlace {
        verdict.verdict = crate::VerdictCode::NoPlaceLeft;
        verdict.admit = false;
        verdict.message =
            "No-show: the reservation's place was given back and none is left in the slot".into();
    }
    verdict
}

/// When a slot's unverified reservations become no-shows, on the venue's
/// clock; `None` when the venue never releases them.
pub fn release_due(booked: Booked<'_>) -> Option<NaiveDateTime> {
    let minutes = booked.venue.gate.ops().no_show_release_minutes?;
    Some(NaiveDateTime::new(booked.slot.date, booked.slot.start_time) + Duration::minutes(minutes))
}

/// Is this reservation a no-show at `now`? See the module's table.
pub fn no_show_check(ticket: &Ticket, booked: Booked<'_>, now: DateTime<Utc>) -> NoShowCheck {
    let Some(due) = release_due(booked) else {
        return NoShowCheck::Never;
    };
    if booked.reservation.status != ReservationStatus::Reserved {
        return NoShowCheck::NotReserved;
    }
    if ticket.verified_at.is_some() || ticket.activation_status == ActivationStatus::Redeemed {
        return NoShowCheck::Entered;
    }
    if now.with_timezone(&booked.venue.timezone).naive_local() < due {
        return NoShowCheck::NotYet { due };
    }
    NoShowCheck::Release
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venue::GateSettings;
    use crate::venue_ops::VenueOps;
    use crate::{Orq, Reservation, ReservationId, Slot, SlotId, SlotStatus, TicketCode, Venue};
    use chrono::{NaiveDate, NaiveTime, TimeZone};

    fn venue(minutes: Option<i64>) -> Venue {
        let gate = GateSettings::new(15, 15)
            .unwrap()
            .with_ops(VenueOps {
                no_show_release_minutes: minutes,
                ..GateSettings::default().ops()
            })
            .unwrap();
        Venue {
            id: crate::VenueId(1),
            orq: Orq(1),
            name: "Zoo".into(),
            timezone: "Europe/Paris".parse().unwrap(),
            gate,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    fn slot() -> Slot {
        // 10:00-11:00 Paris time on 2026-07-01 (08:00 UTC).
        let mut s = crate::slot::tests::slot(10, 3, SlotStatus::Active);
        s.date = NaiveDate::from_ymd_opt(2026, 7, 1).unwrap();
        s.start_time = NaiveTime::from_hms_opt(10, 0, 0).unwrap();
        s.end_time = NaiveTime::from_hms_opt(11, 0, 0).unwrap();
        s
    }

    fn reservation(status: ReservationStatus) -> Reservation {
        Reservation {
            id: ReservationId(uuid::Uuid::from_u128(7)),
            ticket_id: TicketCode::parse("T-1").unwrap(),
            slot_id: SlotId(uuid::Uuid::from_u128(8)),
            customer_email: "a@example.com".into(),
            customer_phone: "+15551234567".into(),
            reserved_at: DateTime::<Utc>::UNIX_EPOCH,
            status,
            orq: Orq(1),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            no_show_at: None,
        }
    }

    fn utc(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 7, 1, h, m, 0).unwrap()
    }

    #[test]
    fn case_table() {
        use NoShowCheck as N;
        use ReservationStatus as R;
        let due = NaiveDate::from_ymd_opt(2026, 7, 1)
            .unwrap()
            .and_hms_opt(10, 20, 0)
            .unwrap();
        // (minutes, reservation, ticket used, now UTC) → outcome. The venue
        // is in Paris (UTC+2 in July): 08:20 UTC is 10:20 local.
        type Case = (Option<i64>, R, bool, DateTime<Utc>, NoShowCheck);
        let cases: &[Case] = &[
            (None, R::Reserved, false, utc(20, 0), N::Never),
            (Some(20), R::Verified, false, utc(9, 0), N::NotReserved),
            (Some(20), R::Cancelled, false, utc(9, 0), N::NotReserved),
            (Some(20), R::Reserved, true, utc(9, 0), N::Entered),
            (Some(20), R::Reserved, false, utc(8, 19), N::NotYet { due }),
            // 10:20 UTC would be long past: the venue's clock counts, not UTC.
            (Some(20), R::Reserved, false, utc(8, 0), N::NotYet { due }),
            (Some(20), R::Reserved, false, utc(8, 20), N::Release),
            (Some(20), R::Reserved, false, utc(15, 0), N::Release),
            (
                Some(1440),
                R::Reserved,
                false,
                utc(15, 0),
                N::NotYet {
                    due: due + Duration::minutes(1420),
                },
            ),
        ];
        let slot = slot();
        for (i, (minutes, status, used, now, want)) in cases.iter().enumerate() {
            let venue = venue(*minutes);
            let reservation = reservation(*status);
            let mut ticket = crate::ticket::tests::ticket(
                ActivationStatus::Active,
                crate::TicketStatus::Reserved,
            );
            if *used {
                ticket.verified_at = Some(utc(8, 5));
            }
            let booked = Booked {
                reservation: &reservation,
                slot: &slot,
                venue: &venue,
            };
            assert_eq!(no_show_check(&ticket, booked, *now), *want, "case {i}");
        }
    }

    #[test]
    fn place_back_case_table() {
        use PlaceBack as P;
        // (gate's lease in the slot, booked, capacity) → from
        let cases: &[(i64, i64, i64, PlaceBack)] = &[
            (1, 10, 10, P::Lease),
            (2, 3, 10, P::Lease),
            (0, 9, 10, P::Free),
            (0, 0, 1, P::Free),
            (0, 10, 10, P::NoPlace),
            (0, 11, 10, P::NoPlace),
            (-1, 10, 10, P::NoPlace),
        ];
        for (i, (leased, booked, capacity, want)) in cases.iter().enumerate() {
            let mut s = slot();
            s.booked_count = *booked;
            s.total_capacity = *capacity;
            assert_eq!(place_back(*leased, &s), *want, "case {i}");
        }
    }

    #[test]
    fn a_no_show_without_a_place_is_refused_not_amber() {
        use crate::{Verdict, VerdictCode as V};
        // (verdict, place) → verdict shown, admit
        let cases: &[(V, PlaceBack, V)] = &[
            (V::NoShowReleased, PlaceBack::NoPlace, V::NoPlaceLeft),
            (V::NoShowReleased, PlaceBack::Free, V::NoShowReleased),
            (V::NoShowReleased, PlaceBack::Lease, V::NoShowReleased),
            (V::Admit, PlaceBack::NoPlace, V::Admit),
            (
                V::OutsideSlotWindow,
                PlaceBack::NoPlace,
                V::OutsideSlotWindow,
            ),
        ];
        for (i, (code, place, want)) in cases.iter().enumerate() {
            let v = without_place(Verdict::refusal(*code, "x"), *place);
            assert_eq!(v.verdict, *want, "case {i}");
            if *want == V::NoPlaceLeft {
                assert!(!v.admit && !v.verdict.needs_operator_decision(), "case {i}");
            }
        }
    }

    #[test]
    fn redeemed_ticket_is_not_a_no_show() {
        let (venue, slot, reservation) = (
            venue(Some(5)),
            slot(),
            reservation(ReservationStatus::Reserved),
        );
        let mut ticket =
            crate::ticket::tests::ticket(ActivationStatus::Active, crate::TicketStatus::Reserved);
        ticket.activation_status = ActivationStatus::Redeemed;
        let booked = Booked {
            reservation: &reservation,
            slot: &slot,
            venue: &venue,
        };
        assert_eq!(
            no_show_check(&ticket, booked, utc(12, 0)),
            NoShowCheck::Entered
        );
    }
}
