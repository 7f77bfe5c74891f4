//! Venue operations (issue 15): the venue's settings for them, the
//! direction a gate scans in, exits and re-entry, and occupancy. Pure: the
//! store loads the facts (a ticket's entry and its last exit), these
//! functions decide, the store writes what they say.

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
pub use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize};

/// The clock of a scan with no venue row to read one from.
pub const UTC: Tz = chrono_tz::UTC;

use super::venue::VenuePatch;
use super::{DomainError, VenueId, Verdict, VerdictCode};

/// The most places a venue may lease to one gate per slot.
pub const MAX_WALKUP_LEASE_PLACES: i64 = 50;
/// The longest no-show release delay: a day.
pub const MAX_NO_SHOW_RELEASE_MINUTES: i64 = 24 * 60;
/// The largest occupancy limit.
pub const MAX_OCCUPANCY_LIMIT: i64 = 1_000_000;

/// A venue's operations settings (kept with its gate settings, on the venue
/// row, synced to its gates).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueOps {
    /// A holder who left may come back in.
    pub reentry_allowed: bool,
    /// Places per gate per open slot leased for offline walk-ups.
    pub walkup_lease_places: i64,
    /// Minutes after a slot starts when unverified reservations become
    /// NO_SHOW; `None`: never.
    pub no_show_release_minutes: Option<i64>,
    /// People inside at once; `None`: no limit.
    pub occupancy_limit: Option<i64>,
    /// Closing time on the venue's clock: from then on the server checks
    /// everyone still inside out ([`closing_due`]); `None`: no closing time.
    #[serde(default, with = "opt_time")]
    pub closing_time: Option<NaiveTime>,
}

/// An optional `HH:MM[:SS]` time as JSON (`null`: none); written `HH:MM:SS`.
pub mod opt_time {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<NaiveTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => crate::slot::hms::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveTime>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|raw| {
                crate::slot::parse_time("closing_time", &raw).map_err(serde::de::Error::custom)
            })
            .transpose()
    }

    /// A patch's field: absent (unchanged), `null` (cleared) or a time.
    pub fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<NaiveTime>>, D::Error> {
        deserialize(d).map(Some)
    }
}

/// The instant of today's closing: `closing` on the venue's clock on the
/// venue's date of `now`. A closing time the clock skips (a spring-forward
/// gap) is the first instant after the gap; one it passes twice (fall-back)
/// is the first of the two.
pub fn closing_instant(closing: NaiveTime, tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    let local = now.with_timezone(&tz).date_naive().and_time(closing);
    // Gaps are whole minutes in every zone (at most a few hours).
    (0..=24 * 60)
        .find_map(|m| {
            tz.from_local_datetime(&(local + chrono::Duration::minutes(m)))
                .earliest()
        })
        .map_or(now, |t| t.with_timezone(&Utc))
}

/// Whether the server checks everyone out of the venue now: once per
/// venue-day, when the venue's clock has passed today's closing time
/// ([`closing_instant`]) and the venue has not been closed since that
/// instant. `last_closed` is the venue's last checkout, the server's or a
/// supervisor's: a supervisor's checkout at or after the closing time is
/// that day's closing, one before it is not (whoever comes in between is
/// still checked out at closing). Once closed, a late re-entry, staff or an
/// event after hours stay in until the next day's closing.
///
/// | closing_time | venue clock          | last closed               | due |
/// |--------------|----------------------|---------------------------|-----|
/// | none         | any                  | any                       | no  |
/// | 18:00        | before 18:00         | any                       | no  |
/// | 18:00        | 18:00 or later       | never                     | yes |
/// | 18:00        | 18:00 or later       | yesterday / today 17:00   | yes |
/// | 18:00        | 18:00 or later       | today 18:00 or later      | no  |
/// | 02:30 (gap)  | 03:00 (after jump)   | never                     | yes |
/// | 00:00        | any, that day        | before today's midnight   | yes (the day's count is 0 then: nobody to check out) |
pub fn closing_due(
    ops: VenueOps,
    tz: Tz,
    now: DateTime<Utc>,
    last_closed: Option<DateTime<Utc>>,
) -> bool {
    ops.closing_time.is_some_and(|closing| {
        let at = closing_instant(closing, tz, now);
        now >= at && last_closed.is_none_or(|last| last < at)
    })
}

fn bounded(field: &'static str, value: i64, min: i64, max: i64) -> Result<i64, DomainError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(DomainError::invalid(
            field,
            format!("must be {min} to {max}"),
        ))
    }
}

impl VenueOps {
    /// The settings if each is within its bounds, else the first field out.
    pub fn checked(self) -> Result<Self, DomainError> {
        bounded(
            "walkup_lease_places",
            self.walkup_lease_places,
            0,
            MAX_WALKUP_LEASE_PLACES,
        )?;
        if let Some(m) = self.no_show_release_minutes {
            bounded("no_show_release_minutes", m, 1, MAX_NO_SHOW_RELEASE_MINUTES)?;
        }
        if let Some(l) = self.occupancy_limit {
            bounded("occupancy_limit", l, 1, MAX_OCCUPANCY_LIMIT)?;
        }
        Ok(self)
    }

    /// These settings with what `patch` names (unchecked: see [`Self::checked`]).
    pub fn patched(self, patch: &VenuePatch) -> Self {
        Self {
            reentry_allowed: patch.reentry_allowed.unwrap_or(self.reentry_allowed),
            walkup_lease_places: patch
                .walkup_lease_places
                .unwrap_or(self.walkup_lease_places),
            no_show_release_minutes: patch
                .no_show_release_minutes
                .unwrap_or(self.no_show_release_minutes),
            occupancy_limit: patch.occupancy_limit.unwrap_or(self.occupancy_limit),
            closing_time: patch.closing_time.unwrap_or(self.closing_time),
        }
    }
}

/// Does `patch` name any venue operations setting?
pub fn names_ops(patch: &VenuePatch) -> bool {
    patch.reentry_allowed.is_some()
        || patch.walkup_lease_places.is_some()
        || patch.no_show_release_minutes.is_some()
        || patch.occupancy_limit.is_some()
        || patch.closing_time.is_some()
}

/// A field that may be absent (unchanged), `null` (cleared) or a value:
/// `Some(None)` for `null`, `None` (via `#[serde(default)]`) when absent.
pub fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Which way a gate scans: people coming in or going out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    In,
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "in" => Ok(Self::In),
            "out" => Ok(Self::Out),
            _ => Err(DomainError::invalid("direction", "must be in or out")),
        }
    }
}

/// What the store writes for a scan in a direction, as [`passage`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passage {
    /// A first entry: the verification as before (`domain::enter`).
    Enter,
    /// The holder comes back in: the ticket is inside again.
    Reenter,
    /// The holder goes out.
    Exit,
    /// Nothing is written.
    Refused,
}

/// A ticket's presence at the venue: its (first) entry and its last exit
/// since then, if any (`None`: inside, or never in).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Presence {
    pub entered_at: Option<DateTime<Utc>>,
    pub left_at: Option<DateTime<Utc>>,
}

fn hm(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%H:%M").to_string()
}

/// The verdict for a scan in `direction`, from the entry verdict the rules
/// give the ticket (`gate_verdict`: what an entry scan would say now), the
/// ticket's presence and the venue's settings; and what to write.
///
/// - In: a ticket used and since left is let in again (`ADMIT` marked
///   re-entry) if the venue allows re-entry, else `REENTRY_NOT_ALLOWED`
///   saying when the holder left; anything else is the entry verdict.
/// - Out: a ticket inside (used, not left since) is `EXIT`; a used ticket
///   that left is `NOT_INSIDE` saying when; a known ticket never used is
///   `NOT_INSIDE` ("never entered"); an unknown, unreadable or forged code
///   keeps its own refusal.
pub fn passage(
    entry: Verdict,
    presence: Presence,
    direction: Direction,
    ops: VenueOps,
    tz: Tz,
    here: Option<VenueId>,
) -> (Verdict, Passage) {
    use VerdictCode as V;
    let used = entry.verdict == V::AlreadyVerified;
    let mut v = entry;
    // A ticket used at another venue is that venue's business: a gate here
    // may neither check its holder out nor let them back in (a stolen gate
    // token would otherwise empty another venue's count or re-admit there).
    if used && matches!((v.venue_id, here), (Some(theirs), Some(ours)) if theirs != ours) {
        v.verdict = V::WrongVenue;
        v.admit = false;
        v.message = "Reserved for another venue".into();
        return (v, Passage::Refused);
    }
    match direction {
        Direction::In => match (used, presence.left_at) {
            (true, Some(left)) if ops.reentry_allowed => {
                v.verdict = V::Admit;
                v.admit = true;
                v.reentry = true;
                v.left_at = Some(left);
                v.message = format!("Re-entry: left at {}", hm(left, tz));
                (v, Passage::Reenter)
            }
            (true, Some(left)) => {
                v.verdict = V::ReentryNotAllowed;
                v.admit = false;
                v.left_at = Some(left);
                v.message = format!("Left at {}: re-entry not allowed", hm(left, tz));
                (v, Passage::Refused)
            }
            _ if v.admit => (v, Passage::Enter),
            _ => (v, Passage::Refused),
        },
        Direction::Out => {
            if matches!(
                v.verdict,
                V::UnknownTicket | V::Unreadable | V::Forged | V::Revoked | V::SignedCodeRequired
            ) {
                return (v, Passage::Refused);
            }
            match (used, presence.left_at) {
                (true, None) => {
                    v.verdict = V::Exit;
                    v.admit = true;
                    v.message = "Exit".into();
                    (v, Passage::Exit)
                }
                (true, Some(left)) => {
                    v.verdict = V::NotInside;
                    v.admit = false;
                    v.left_at = Some(left);
                    v.message = format!("Not inside: left at {}", hm(left, tz));
                    (v, Passage::Refused)
                }
                (false, _) => {
                    v.verdict = V::NotInside;
                    v.admit = false;
                    v.message = "Not inside: never entered".into();
                    (v, Passage::Refused)
                }
            }
        }
    }
}

/// The start of the venue's day that `now` falls in, as a UTC instant:
/// occupancy counts the passages since then (a new day starts empty).
pub fn day_start(tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    let date = now.with_timezone(&tz).date_naive();
    let midnight = date.and_time(NaiveTime::MIN);
    tz.from_local_datetime(&midnight)
        .earliest()
        // A zone whose midnight does not exist that day: its first hour.
        .or_else(|| {
            tz.from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                .earliest()
        })
        .map_or(now, |t| t.with_timezone(&Utc))
}

/// How full the venue is against its limit, for the kiosk's warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OccupancyLevel {
    /// No limit, or below 90 % of it.
    Normal,
    /// 90 % of the limit or more.
    Near,
    /// At the limit or over it.
    Full,
}

/// The warning level for `inside` people against `limit`.
pub fn occupancy_level(inside: i64, limit: Option<i64>) -> OccupancyLevel {
    match limit {
        Some(limit) if limit > 0 && inside >= limit => OccupancyLevel::Full,
        // inside / limit >= 0.9, in integers.
        Some(limit) if limit > 0 && inside * 10 >= limit * 9 => OccupancyLevel::Near,
        _ => OccupancyLevel::Normal,
    }
}

/// How many places of a slot a gate holds after a lease refresh (during its
/// sync): up to `per_gate` (the venue's `walkup_lease_places`) of what the
/// slot has free besides what this gate held (`held`, counted in `booked`),
/// and never fewer than the walk-ups the gate booked from its lease and has
/// not uploaded yet (`pending`, at most `held`: they will arrive and take
/// them). A slot whose entry window has closed (`open == false`) keeps only
/// those. The slot never goes over capacity: `booked - held + result <=
/// capacity` whenever `booked <= capacity`.
pub fn lease_grant(
    per_gate: i64,
    capacity: i64,
    booked: i64,
    held: i64,
    pending: i64,
    open: bool,
) -> i64 {
    let owed = pending.clamp(0, held.max(0));
    if !open {
        return owed;
    }
    let free_besides_ours = capacity - (booked - held);
    per_gate.min(free_besides_ours).max(owed).max(0)
}

/// Whether a walk-up may be booked into `slot` now: the slot takes
/// bookings (not CLOSED) and its entry window is open on the venue's clock
/// (from `early_grace` before it starts until it ends).
pub fn walkup_open(slot: &super::Slot, venue: &super::Venue, now: DateTime<Utc>) -> bool {
    if slot.status == super::SlotStatus::Closed {
        return false;
    }
    let local = now.with_timezone(&venue.timezone).naive_local();
    let opens = slot.date.and_time(slot.start_time)
        - chrono::Duration::minutes(venue.gate.early_grace_minutes());
    let closes = slot.date.and_time(slot.end_time);
    (opens..closes).contains(&local)
}

/// What becomes of a gate's walk-up lease of a slot when the server takes
/// leases back ([`lease_take_back`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeBack {
    /// The places go back on the slot now.
    Return,
    /// Recalled: still counted until the gate's next lease refresh, which
    /// keeps only what its walk-ups on their way need (an offline gate may
    /// have booked from it and shown ADMIT: every one is honoured).
    Recall,
    /// Left as it is.
    Keep,
}

/// The server taking a lease of `slot` back at `now`, by the periodic
/// task or a supervisor (`by_supervisor`), from a gate that may be revoked
/// (`gate_revoked`). Only a slot whose entry window has ended on the venue's
/// clock cannot take walk-ups any more (a gate checks the window before
/// booking): its places are returned. Before that, an offline gate may be
/// booking from the lease (the slot's CLOSED status may not have reached
/// it): the periodic task keeps the lease, a supervisor recalls it. A
/// revoked gate's lease is returned at once: none of its uploads can arrive
/// any more (its token is refused), so there is no ADMIT of it to honour,
/// and a recall would never settle (it never refreshes again).
///
/// | gate     | entry window (venue clock) | by           | outcome  |
/// |----------|----------------------------|--------------|----------|
/// | revoked  | any                        | any          | `Return` |
/// | live     | ended                      | task         | `Return` |
/// | live     | ended                      | supervisor   | `Return` |
/// | live     | not ended (any status)     | task         | `Keep`   |
/// | live     | not ended (any status)     | supervisor   | `Recall` |
pub fn lease_take_back(
    slot: &super::Slot,
    venue: &super::Venue,
    now: DateTime<Utc>,
    by_supervisor: bool,
    gate_revoked: bool,
) -> TakeBack {
    let local = now.with_timezone(&venue.timezone).naive_local();
    let ended = local >= slot.date.and_time(slot.end_time);
    match (gate_revoked || ended, by_supervisor) {
        (true, _) => TakeBack::Return,
        (false, true) => TakeBack::Recall,
        (false, false) => TakeBack::Keep,
    }
}

/// The places a gate keeps of a recalled lease at its refresh: what its
/// walk-ups on their way need (`pending`), at most what it held.
pub fn recalled_grant(held: i64, pending: i64) -> i64 {
    pending.clamp(0, held.max(0))
}

/// What a walk-up does first, from the entry verdict the rules give the
/// ticket now ([`walkup_step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkupStep {
    /// A valid, active ticket with no live reservation: book it.
    Book,
    /// A ticket not activated yet (a deferred ticket bought ahead): the
    /// walk-up activates it first, under the activation rules (an unpaid
    /// order is refused there), then books it.
    ActivateThenBook,
    /// Anything else keeps its own verdict (already reserved for now,
    /// used, cancelled, expired, unknown).
    No,
}

/// The walk-up's first step for `entry`.
///
/// | entry verdict           | step               |
/// |-------------------------|--------------------|
/// | NOT_RESERVED            | `Book`             |
/// | RESERVATION_CANCELLED   | `Book`             |
/// | NOT_ACTIVATED           | `ActivateThenBook` |
/// | any other               | `No`               |
pub fn walkup_step(entry: &Verdict) -> WalkupStep {
    match entry.verdict {
        VerdictCode::NotReserved | VerdictCode::ReservationCancelled => WalkupStep::Book,
        VerdictCode::NotActivated => WalkupStep::ActivateThenBook,
        _ => WalkupStep::No,
    }
}

/// Whether an uploaded `walkup` event reports a booking the server made
/// online (`POST /api/sync/walkup`) rather than one from the gate's lease:
/// only the JSON value `true` says so.
pub fn walkup_was_online(payload: &serde_json::Value) -> bool {
    payload.get("online") == Some(&serde_json::Value::Bool(true))
}

/// The NO_PLACE_LEFT refusal of a walk-up of `code`, saying why.
pub fn no_place_left(code: &super::TicketCode, why: &str) -> Verdict {
    let mut v = Verdict::refusal(VerdictCode::NoPlaceLeft, format!("No place left: {why}"));
    v.ticket_code = Some(code.to_string());
    v
}

/// A deferred ticket the walk-up could not activate (`why`: the activation
/// rules' refusal, e.g. an unpaid order): NOT_ACTIVATED saying so.
pub fn not_activated(code: &super::TicketCode, why: &DomainError) -> Verdict {
    let mut v = Verdict::refusal(VerdictCode::NotActivated, format!("Not activated: {why}"));
    v.ticket_code = Some(code.to_string());
    v
}

/// The refusal a walk-up the rules do not allow answers with: the entry
/// verdict itself, except that a ticket whose own reservation lets it in
/// now (the gate asking had not pulled it yet) is ALREADY_RESERVED, so
/// that a refusal never reads ADMIT.
///
/// | entry verdict    | refusal                          |
/// |------------------|----------------------------------|
/// | ADMIT            | ALREADY_RESERVED (slot kept)     |
/// | any other        | itself                           |
pub fn walkup_refusal(entry: Verdict) -> Verdict {
    if !entry.admit {
        return entry;
    }
    let mut v = Verdict::refusal(
        VerdictCode::AlreadyReserved,
        "Already reserved for a slot open now: no walk-up needed, scan the ticket again",
    );
    v.ticket_code = entry.ticket_code;
    v.slot_id = entry.slot_id;
    v.slot_date = entry.slot_date;
    v.slot_start_time = entry.slot_start_time;
    v.slot_end_time = entry.slot_end_time;
    v.venue_name = entry.venue_name;
    v
}

/// Whether the verdict lets an operator offer the holder a walk-up (the
/// kiosk's "Book walk-up" button): [`walkup_step`] is not `No`, or the code
/// is authentic and signed but the gate's replica does not hold its ticket
/// yet (AUTHENTIC_NOT_SYNCED: a ticket never reserved at this venue), which
/// only the server can book, online.
pub fn walkup_bookable(entry: &Verdict) -> bool {
    walkup_step(entry) != WalkupStep::No || entry.verdict == VerdictCode::AuthenticNotSynced
}

/// Where the place of an undone walk-up goes back to (its reservation is
/// cancelled): the admitting gate's lease of the slot while it has one, if
/// the place came from it (the gate may book it again), else the slot (an
/// online walk-up took a free place of the slot).
///
/// | booked from          | gate's lease row of the slot | place back to |
/// |----------------------|------------------------------|---------------|
/// | the lease            | present                      | `Lease`       |
/// | the lease            | gone (recalled, returned)    | `Slot`        |
/// | the server (online)  | any                          | `Slot`        |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoPlace {
    Lease,
    Slot,
}

pub fn undo_place(from_lease: bool, lease_held: bool) -> UndoPlace {
    if from_lease && lease_held {
        UndoPlace::Lease
    } else {
        UndoPlace::Slot
    }
}

/// What an applied passage does to the holder's "left at" mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftMark {
    /// Left at this time.
    Set(DateTime<Utc>),
    /// Inside (a re-entry).
    Clear,
    /// Unchanged: an exit uploaded after a later entry of the holder (gates
    /// upload in any order): the person came back in since, and is inside.
    Keep,
}

/// The mark an applied passage at `at` leaves, given whether the server
/// already has an entry of the ticket later than `at` (another gate's
/// re-entry uploaded first).
///
/// | direction | a later entry on record | mark       |
/// |-----------|-------------------------|------------|
/// | out       | no                      | `Set(at)`  |
/// | out       | yes                     | `Keep`     |
/// | in        | any                     | `Clear`    |
pub fn left_mark(direction: Direction, at: DateTime<Utc>, later_entry: bool) -> LeftMark {
    match (direction, later_entry) {
        (Direction::Out, false) => LeftMark::Set(at),
        (Direction::Out, true) => LeftMark::Keep,
        (Direction::In, _) => LeftMark::Clear,
    }
}

/// How long an operator may undo their own admission.
pub const UNDO_WINDOW_SECS: i64 = 60;

/// May `operator` undo the admission of a ticket used at `verified_at` by
/// `verified_by`, now, for `reason`? Only their own, within
/// [`UNDO_WINDOW_SECS`], with a reason of 3 to 200 characters, and not once
/// the holder left. Returns the reason, trimmed.
pub fn check_undo(
    verified_at: Option<DateTime<Utc>>,
    verified_by: Option<super::OperatorId>,
    left_at: Option<DateTime<Utc>>,
    operator: super::OperatorId,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<String, DomainError> {
    let reason = reason.trim();
    if !(3..=200).contains(&reason.chars().count()) || reason.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "reason",
            "say why in 3 to 200 characters",
        ));
    }
    let Some(at) = verified_at else {
        return Err(DomainError::invalid(
            "ticket_code",
            "this ticket was not let in",
        ));
    };
    if verified_by != Some(operator) {
        return Err(DomainError::invalid(
            "operator",
            "only the operator who let the holder in may undo it",
        ));
    }
    if left_at.is_some() {
        return Err(DomainError::invalid(
            "ticket_code",
            "the holder has left since",
        ));
    }
    let age = now - at;
    if age < chrono::Duration::zero() || age > chrono::Duration::seconds(UNDO_WINDOW_SECS) {
        return Err(DomainError::invalid(
            "verified_at",
            format!("an admission can be undone within {UNDO_WINDOW_SECS} s"),
        ));
    }
    Ok(reason.to_owned())
}

/// Places of one slot (a lease, or walk-ups pending upload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SlotPlaces {
    pub slot_id: super::SlotId,
    pub places: i64,
}

/// A gate's lease refresh (`POST /api/sync/leases`, each sync round): the
/// walk-ups it booked from its lease and has not uploaded yet, per slot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    #[serde(default)]
    pub pending: Vec<SlotPlaces>,
}

/// The places the gate holds now, per slot (those not named: none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeaseGrant {
    pub leases: Vec<SlotPlaces>,
}

/// A gate asking the server to book a walk-up while it is online
/// (`POST /api/sync/walkup`): the server's own reservation path, from the
/// slot's free places, not from the gate's lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WalkupRequest {
    /// What the gate's scanner read: a plain ticket code, or the signed QR
    /// payload (`ENT1.…`), screened again by the server (key, signature,
    /// the ticket's current code: a superseded QR code books nothing).
    pub code: String,
}

/// The reservation the server made for an online walk-up, for the gate to
/// write into its replica as it will later pull it, then admit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WalkupBooking {
    pub ticket_code: super::TicketCode,
    pub reservation_id: super::ReservationId,
    pub slot_id: super::SlotId,
    /// When the server booked it (the reservation's `reserved_at`).
    pub reserved_at: DateTime<Utc>,
    /// The walk-up activated the ticket first (a deferred ticket): when.
    pub activated_at: Option<DateTime<Utc>>,
}

/// The slot an online walk-up goes into: of `slots` (the venue's, today's
/// and tomorrow's: a slot just after midnight is in its early grace before
/// it), the earliest one open for entry now ([`walkup_open`])
/// with a free place. Its place is taken under the slot's lock afterwards;
/// a slot filled in between is refused there and the next one is tried.
///
/// | slots (start, open now, booked/capacity)       | chosen |
/// |------------------------------------------------|--------|
/// | 11:00 open 10/10, 12:00 open 3/10              | 12:00  |
/// | 11:00 open 2/10, 12:00 open 3/10               | 11:00  |
/// | 11:00 not open (ended) 0/10                    | none   |
/// | 11:00 open 10/10                               | none   |
pub fn walkup_slots<'a>(
    slots: &'a [super::Slot],
    venue: &super::Venue,
    now: DateTime<Utc>,
) -> Vec<&'a super::Slot> {
    let mut open: Vec<&super::Slot> = slots
        .iter()
        .filter(|s| s.venue_id == venue.id)
        .filter(|s| s.booked_count < s.total_capacity && walkup_open(s, venue, now))
        .collect();
    open.sort_by_key(|s| (s.date, s.start_time, s.id));
    open
}

/// People inside a venue now, as one party knows it: the server from every
/// passage it has received, a gate from its replica (`as_of`: its last sync).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Occupancy {
    pub venue_id: super::VenueId,
    /// Entries minus exits since the venue's day began.
    pub inside: i64,
    /// The venue's occupancy limit (`null`: none).
    pub limit: Option<i64>,
    pub level: OccupancyLevel,
    /// When the count was true: now on the server, the last sync on a gate
    /// (`null`: a gate that never synced).
    pub as_of: Option<DateTime<Utc>>,
}

/// People inside from each ticket's entries − exits today: each ticket
/// counts its own surplus of entries (a double entry walked in twice: 2),
/// never below 0, so an exit without an entry (a conflict, its passage kept
/// for audit) takes nobody else out of the count.
///
/// | a ticket's entries − exits | counts |
/// |----------------------------|--------|
/// | 2                          | 2      |
/// | 1                          | 1      |
/// | 0                          | 0      |
/// | −1 (exit without entry)    | 0      |
pub fn inside_from(net_per_ticket: impl IntoIterator<Item = i64>) -> i64 {
    net_per_ticket.into_iter().filter(|n| *n > 0).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Verdict;

    #[test]
    fn inside_counts_each_tickets_surplus_never_below_zero() {
        // (nets per ticket) → inside
        let cases: &[(&[i64], i64)] = &[
            (&[], 0),
            (&[1], 1),
            (&[2], 2),
            (&[0], 0),
            (&[-1], 0),
            (&[1, 1, -1], 2),
            (&[2, -3, 1, 0], 3),
        ];
        for (nets, want) in cases {
            assert_eq!(inside_from(nets.iter().copied()), *want, "{nets:?}");
        }
    }

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, h, m, 0).unwrap()
    }

    #[test]
    fn settings_bounds() {
        let ok = VenueOps::default();
        // (name, settings) → Ok or the refused field
        let cases: [(&str, VenueOps, Result<(), &str>); 9] = [
            ("defaults", ok, Ok(())),
            (
                "lease 50",
                VenueOps {
                    walkup_lease_places: 50,
                    ..ok
                },
                Ok(()),
            ),
            (
                "lease 51",
                VenueOps {
                    walkup_lease_places: 51,
                    ..ok
                },
                Err("walkup_lease_places"),
            ),
            (
                "lease -1",
                VenueOps {
                    walkup_lease_places: -1,
                    ..ok
                },
                Err("walkup_lease_places"),
            ),
            (
                "no-show 1",
                VenueOps {
                    no_show_release_minutes: Some(1),
                    ..ok
                },
                Ok(()),
            ),
            (
                "no-show 0",
                VenueOps {
                    no_show_release_minutes: Some(0),
                    ..ok
                },
                Err("no_show_release_minutes"),
            ),
            (
                "no-show 1441",
                VenueOps {
                    no_show_release_minutes: Some(1441),
                    ..ok
                },
                Err("no_show_release_minutes"),
            ),
            (
                "limit 0",
                VenueOps {
                    occupancy_limit: Some(0),
                    ..ok
                },
                Err("occupancy_limit"),
            ),
            (
                "limit 1",
                VenueOps {
                    occupancy_limit: Some(1),
                    ..ok
                },
                Ok(()),
            ),
        ];
        for (name, ops, want) in cases {
            let got = ops.checked().map(|_| ()).map_err(|e| match e {
                DomainError::InvalidInput { field, .. } => field,
                other => panic!("{other:?}"),
            });
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn patches_name_set_or_clear() {
        let before = VenueOps {
            reentry_allowed: true,
            walkup_lease_places: 2,
            no_show_release_minutes: Some(30),
            occupancy_limit: Some(100),
            closing_time: None,
        };
        // (name, patch JSON) → after
        let cases = [
            ("nothing named", r#"{}"#, before, false),
            (
                "re-entry off",
                r#"{"reentry_allowed": false}"#,
                VenueOps {
                    reentry_allowed: false,
                    ..before
                },
                true,
            ),
            (
                "lease 0",
                r#"{"walkup_lease_places": 0}"#,
                VenueOps {
                    walkup_lease_places: 0,
                    ..before
                },
                true,
            ),
            (
                "no-show cleared",
                r#"{"no_show_release_minutes": null}"#,
                VenueOps {
                    no_show_release_minutes: None,
                    ..before
                },
                true,
            ),
            (
                "limit set",
                r#"{"occupancy_limit": 250}"#,
                VenueOps {
                    occupancy_limit: Some(250),
                    ..before
                },
                true,
            ),
            (
                "limit cleared",
                r#"{"occupancy_limit": null}"#,
                VenueOps {
                    occupancy_limit: None,
                    ..before
                },
                true,
            ),
        ];
        for (name, json, after, named) in cases {
            let patch: VenuePatch = serde_json::from_str(json).unwrap();
            assert_eq!(before.patched(&patch), after, "{name}");
            assert_eq!(names_ops(&patch), named, "{name}");
        }
        assert!(serde_json::from_str::<VenuePatch>(r#"{"reentry_allowed": "yes"}"#).is_err());
        assert!(serde_json::from_str::<VenuePatch>(r#"{"occupancy": 5}"#).is_err());
    }

    fn entry(code: VerdictCode) -> Verdict {
        let mut v = Verdict::refusal(code, "rules");
        v.ticket_code = Some("T-1".into());
        if code == VerdictCode::AlreadyVerified {
            v.verified_at = Some(at(9, 0));
        }
        v
    }

    /// A used ticket of another venue is refused both ways; the venue of the
    /// gate decides only where the ticket's own venue is known.
    #[test]
    fn a_ticket_of_another_venue_neither_leaves_nor_comes_back_here() {
        use Direction::{In, Out};
        use VerdictCode as V;
        let inside = Presence {
            entered_at: Some(at(9, 0)),
            left_at: None,
        };
        let left = Presence {
            entered_at: Some(at(9, 0)),
            left_at: Some(at(10, 0)),
        };
        let allow = VenueOps {
            reentry_allowed: true,
            ..VenueOps::default()
        };
        let cases = [
            ("exit here", Some(1), Some(1), inside, Out, V::Exit),
            (
                "exit at another venue",
                Some(2),
                Some(1),
                inside,
                Out,
                V::WrongVenue,
            ),
            ("re-entry here", Some(1), Some(1), left, In, V::Admit),
            (
                "re-entry at another venue",
                Some(2),
                Some(1),
                left,
                In,
                V::WrongVenue,
            ),
            ("a gate with no venue", Some(2), None, inside, Out, V::Exit),
        ];
        for (name, theirs, ours, presence, direction, want) in cases {
            let mut e = entry(V::AlreadyVerified);
            e.venue_id = theirs.map(VenueId);
            let (v, p) = passage(
                e,
                presence,
                direction,
                allow,
                chrono_tz::UTC,
                ours.map(VenueId),
            );
            assert_eq!(v.verdict, want, "{name}");
            assert_eq!(p == Passage::Refused, want == V::WrongVenue, "{name}");
        }
    }

    #[test]
    fn directions_reentry_and_exits() {
        use Direction::{In, Out};
        use VerdictCode as V;
        let inside = Presence {
            entered_at: Some(at(9, 0)),
            left_at: None,
        };
        let left = Presence {
            entered_at: Some(at(9, 0)),
            left_at: Some(at(10, 15)),
        };
        let never = Presence::default();
        let allow = VenueOps {
            reentry_allowed: true,
            ..Default::default()
        };
        let deny = VenueOps::default();
        // (name, entry verdict, presence, direction, settings) → (verdict, write, re-entry, message contains)
        let cases = [
            (
                "first entry",
                V::Admit,
                never,
                In,
                deny,
                V::Admit,
                Passage::Enter,
                false,
                "rules",
            ),
            (
                "used, inside, in again",
                V::AlreadyVerified,
                inside,
                In,
                allow,
                V::AlreadyVerified,
                Passage::Refused,
                false,
                "rules",
            ),
            (
                "left, re-entry allowed",
                V::AlreadyVerified,
                left,
                In,
                allow,
                V::Admit,
                Passage::Reenter,
                true,
                "left at 10:15",
            ),
            (
                "left, re-entry refused",
                V::AlreadyVerified,
                left,
                In,
                deny,
                V::ReentryNotAllowed,
                Passage::Refused,
                false,
                "Left at 10:15",
            ),
            (
                "entry refusal stays",
                V::WrongDate,
                never,
                In,
                allow,
                V::WrongDate,
                Passage::Refused,
                false,
                "rules",
            ),
            (
                "amber stays amber",
                V::OutsideSlotWindow,
                never,
                In,
                allow,
                V::OutsideSlotWindow,
                Passage::Refused,
                false,
                "rules",
            ),
            (
                "inside goes out",
                V::AlreadyVerified,
                inside,
                Out,
                deny,
                V::Exit,
                Passage::Exit,
                false,
                "Exit",
            ),
            (
                "left, out again",
                V::AlreadyVerified,
                left,
                Out,
                allow,
                V::NotInside,
                Passage::Refused,
                false,
                "left at 10:15",
            ),
            (
                "never entered, out",
                V::Admit,
                never,
                Out,
                deny,
                V::NotInside,
                Passage::Refused,
                false,
                "never entered",
            ),
            (
                "not reserved, out",
                V::NotReserved,
                never,
                Out,
                deny,
                V::NotInside,
                Passage::Refused,
                false,
                "never entered",
            ),
            (
                "unknown, out",
                V::UnknownTicket,
                never,
                Out,
                deny,
                V::UnknownTicket,
                Passage::Refused,
                false,
                "rules",
            ),
            (
                "forged, out",
                V::Forged,
                never,
                Out,
                deny,
                V::Forged,
                Passage::Refused,
                false,
                "rules",
            ),
        ];
        for (name, code, presence, direction, ops, want, write, reentry, says) in cases {
            let (v, p) = passage(entry(code), presence, direction, ops, chrono_tz::UTC, None);
            assert_eq!((v.verdict, p, v.reentry), (want, write, reentry), "{name}");
            assert!(v.message.contains(says), "{name}: {}", v.message);
            assert_eq!(v.admit, matches!(want, V::Admit | V::Exit), "{name}");
            assert_eq!(v.ticket_code.as_deref(), Some("T-1"), "{name}");
        }
        // The time the holder left is told on the venue's clock.
        let (v, _) = passage(
            entry(V::AlreadyVerified),
            left,
            In,
            deny,
            chrono_tz::Europe::Madrid,
            None,
        );
        assert!(v.message.contains("12:15"), "{}", v.message);
        assert_eq!(v.left_at, Some(at(10, 15)));
    }

    #[test]
    fn directions_parse() {
        assert_eq!(Direction::parse("in").unwrap(), Direction::In);
        assert_eq!(Direction::parse("out").unwrap(), Direction::Out);
        assert!(Direction::parse("OUT").is_err());
        assert_eq!(Direction::default(), Direction::In);
    }

    #[test]
    fn the_day_starts_at_the_venues_midnight() {
        // (zone, now) → the day's start in UTC
        let cases = [
            (chrono_tz::UTC, at(10, 0), at(0, 0)),
            // 01:30 in Madrid (UTC+2 in June) is 23:30 UTC the day before.
            (chrono_tz::Europe::Madrid, at(23, 30), at(22, 0)),
            (
                chrono_tz::Europe::Madrid,
                at(21, 59),
                Utc.with_ymd_and_hms(2026, 5, 31, 22, 0, 0).unwrap(),
            ),
            (
                chrono_tz::America::New_York,
                at(3, 0),
                Utc.with_ymd_and_hms(2026, 5, 31, 4, 0, 0).unwrap(),
            ),
        ];
        for (tz, now, want) in cases {
            assert_eq!(day_start(tz, now), want, "{tz} {now}");
        }
    }

    #[test]
    fn lease_grants() {
        // (name, per gate, capacity, booked (incl. held), held, pending, open) → places held after
        let cases = [
            ("fresh lease", 2, 10, 7, 0, 0, true, 2),
            ("only 1 free", 2, 10, 9, 0, 0, true, 1),
            ("full slot", 2, 10, 10, 0, 0, true, 0),
            ("topped up", 2, 10, 8, 1, 0, true, 2),
            ("kept when full", 2, 10, 10, 2, 0, true, 2),
            ("setting lowered", 1, 10, 5, 2, 0, true, 1),
            ("lowered, 2 pending", 1, 10, 5, 2, 2, true, 2),
            ("no walk-ups at all", 0, 10, 2, 0, 0, true, 0),
            ("window closed: given back", 2, 10, 5, 2, 0, false, 0),
            ("window closed, 1 pending", 2, 10, 5, 2, 1, false, 1),
            ("pending beyond held is not owed", 2, 3, 3, 1, 5, false, 1),
            ("capacity cut below booked", 2, 4, 6, 2, 0, true, 0),
        ];
        for (name, per, cap, booked, held, pending, open, want) in cases {
            assert_eq!(
                lease_grant(per, cap, booked, held, pending, open),
                want,
                "{name}"
            );
        }
        // Exhaustively on small numbers: never over capacity (from a slot
        // within it), never below what is pending, never negative.
        for per in 0..4 {
            for cap in 0..6 {
                for booked in 0..=cap {
                    for held in 0..=booked {
                        for pending in 0..=held {
                            for open in [true, false] {
                                let g = lease_grant(per, cap, booked, held, pending, open);
                                assert!(
                                    booked - held + g <= cap,
                                    "{per} {cap} {booked} {held} {pending}"
                                );
                                assert!(g >= pending && g >= 0);
                                assert!(g <= per.max(pending));
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn closing_is_due_once_per_venue_day_from_the_closing_time_on_its_clock() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let at = |d, h, m| Utc.with_ymd_and_hms(2025, 12, d, h, m, 0).unwrap();
        let ops = |t: Option<(u32, u32)>| VenueOps {
            closing_time: t.map(|(h, m)| NaiveTime::from_hms_opt(h, m, 0).unwrap()),
            ..VenueOps::default()
        };
        // (closing time, now UTC, last closed) → due; Paris is UTC+1 in December.
        let cases = [
            (None, at(1, 23, 0), None, false),
            (Some((18, 0)), at(1, 16, 59), None, false),
            (Some((18, 0)), at(1, 17, 0), None, true),
            (Some((18, 0)), at(1, 22, 0), None, true),
            // 18:00 UTC would be past: the venue's clock counts.
            (Some((18, 30)), at(1, 17, 0), None, false),
            // Closed at 18:00 today: not again until tomorrow's 18:00 (a
            // late re-entry at 21:00 stays in).
            (Some((18, 0)), at(1, 20, 0), Some(at(1, 17, 0)), false),
            (Some((18, 0)), at(1, 22, 59), Some(at(1, 17, 0)), false),
            // After the venue's midnight, before closing: not due.
            (Some((18, 0)), at(1, 23, 30), Some(at(1, 17, 0)), false),
            (Some((18, 0)), at(2, 17, 0), Some(at(1, 17, 0)), true),
            // A supervisor's checkout before closing is not the closing.
            (Some((18, 0)), at(1, 17, 1), Some(at(1, 15, 0)), true),
            // One after it is.
            (Some((18, 0)), at(1, 17, 30), Some(at(1, 17, 10)), false),
            // Midnight closing: due once at the start of each venue day.
            (Some((0, 0)), at(1, 23, 0), Some(at(1, 0, 0)), true),
            (Some((0, 0)), at(1, 23, 1), Some(at(1, 23, 0)), false),
            (Some((0, 0)), at(1, 22, 59), Some(at(1, 0, 0)), false),
        ];
        for (i, (closing, now, last, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                closing_due(ops(closing), paris, now, last),
                want,
                "case {i}"
            );
        }
        // Another zone: New York is UTC−5 in December.
        let ny: Tz = "America/New_York".parse().unwrap();
        assert!(!closing_due(ops(Some((18, 0))), ny, at(1, 22, 59), None));
        assert!(closing_due(ops(Some((18, 0))), ny, at(1, 23, 0), None));
        // DST, Paris: 2025-03-30 02:00 → 03:00 (01:00 UTC); 2025-10-26
        // 03:00 → 02:00 (01:00 UTC).
        let t = |mo, d, h, m| Utc.with_ymd_and_hms(2025, mo, d, h, m, 0).unwrap();
        let hm = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        // 02:30 does not exist that day: closing is at the jump (03:00 CEST).
        assert_eq!(
            closing_instant(hm(2, 30), paris, t(3, 30, 12, 0)),
            t(3, 30, 1, 0)
        );
        assert!(!closing_due(
            ops(Some((2, 30))),
            paris,
            t(3, 30, 0, 59),
            None
        ));
        assert!(closing_due(ops(Some((2, 30))), paris, t(3, 30, 1, 0), None));
        // 02:30 happens twice: the first (CEST, 00:30 UTC) closes, once.
        assert_eq!(
            closing_instant(hm(2, 30), paris, t(10, 26, 12, 0)),
            t(10, 26, 0, 30)
        );
        assert!(closing_due(
            ops(Some((2, 30))),
            paris,
            t(10, 26, 0, 30),
            None
        ));
        assert!(!closing_due(
            ops(Some((2, 30))),
            paris,
            t(10, 26, 1, 30),
            Some(t(10, 26, 0, 30))
        ));
        // 18:00 on both DST days is an ordinary instant (UTC+2, then UTC+1).
        assert_eq!(
            closing_instant(hm(18, 0), paris, t(3, 30, 20, 0)),
            t(3, 30, 16, 0)
        );
        assert_eq!(
            closing_instant(hm(18, 0), paris, t(10, 26, 20, 0)),
            t(10, 26, 17, 0)
        );
        // The setting travels as HH:MM:SS, is read from HH:MM too, null clears.
        let patch: VenuePatch = serde_json::from_str(r#"{"closing_time": "18:30"}"#).unwrap();
        assert_eq!(patch.closing_time, Some(NaiveTime::from_hms_opt(18, 30, 0)));
        assert!(names_ops(&patch));
        let cleared: VenuePatch = serde_json::from_str(r#"{"closing_time": null}"#).unwrap();
        assert_eq!(cleared.closing_time, Some(None));
        assert!(serde_json::from_str::<VenuePatch>(r#"{"closing_time": "25:00"}"#).is_err());
        let json = serde_json::to_value(ops(Some((18, 30)))).unwrap();
        assert_eq!(json["closing_time"], "18:30:00");
    }

    #[test]
    fn an_undone_walkups_place_goes_back_where_it_came_from() {
        assert_eq!(undo_place(true, true), UndoPlace::Lease);
        assert_eq!(undo_place(true, false), UndoPlace::Slot);
        assert_eq!(undo_place(false, true), UndoPlace::Slot);
        assert_eq!(undo_place(false, false), UndoPlace::Slot);
    }

    #[test]
    fn an_exit_uploaded_after_a_later_entry_leaves_the_holder_inside() {
        let t = Utc.with_ymd_and_hms(2025, 12, 1, 10, 0, 0).unwrap();
        let cases = [
            (Direction::Out, false, LeftMark::Set(t)),
            (Direction::Out, true, LeftMark::Keep),
            (Direction::In, false, LeftMark::Clear),
            (Direction::In, true, LeftMark::Clear),
        ];
        for (i, (dir, later, want)) in cases.into_iter().enumerate() {
            assert_eq!(left_mark(dir, t, later), want, "case {i}");
        }
    }

    #[test]
    fn lease_take_back_case_table() {
        use crate::slot::tests::slot;
        use crate::SlotStatus;
        let venue = crate::Venue {
            id: VenueId(1),
            orq: crate::Orq(1),
            name: "Zoo".into(),
            timezone: "Europe/Paris".parse().unwrap(),
            gate: Default::default(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        // The slot: 2025-12-01 09:00-12:00 Paris (UTC+1): ends 11:00 UTC.
        let utc = |h, m| Utc.with_ymd_and_hms(2025, 12, 1, h, m, 0).unwrap();
        // (status, now, by supervisor, gate revoked) → outcome
        let cases = [
            (
                SlotStatus::Active,
                utc(10, 59),
                false,
                false,
                TakeBack::Keep,
            ),
            (
                SlotStatus::Active,
                utc(10, 59),
                true,
                false,
                TakeBack::Recall,
            ),
            (SlotStatus::Active, utc(6, 0), true, false, TakeBack::Recall),
            (SlotStatus::Closed, utc(10, 0), false, false, TakeBack::Keep),
            (
                SlotStatus::Closed,
                utc(10, 0),
                true,
                false,
                TakeBack::Recall,
            ),
            (
                SlotStatus::Active,
                utc(11, 0),
                false,
                false,
                TakeBack::Return,
            ),
            (
                SlotStatus::Active,
                utc(11, 0),
                true,
                false,
                TakeBack::Return,
            ),
            (
                SlotStatus::Closed,
                utc(12, 0),
                false,
                false,
                TakeBack::Return,
            ),
            // A revoked gate's lease comes back at once, whoever takes it.
            (
                SlotStatus::Active,
                utc(10, 59),
                true,
                true,
                TakeBack::Return,
            ),
            (
                SlotStatus::Active,
                utc(10, 59),
                false,
                true,
                TakeBack::Return,
            ),
            (SlotStatus::Active, utc(6, 0), true, true, TakeBack::Return),
            (
                SlotStatus::Active,
                utc(11, 0),
                false,
                true,
                TakeBack::Return,
            ),
        ];
        for (i, (status, now, sup, revoked, want)) in cases.into_iter().enumerate() {
            let s = slot(10, 2, status);
            assert_eq!(
                lease_take_back(&s, &venue, now, sup, revoked),
                want,
                "case {i}"
            );
        }
        // A recalled lease keeps only what the walk-ups on their way need.
        for (held, pending, want) in [(2, 0, 0), (2, 1, 1), (2, 3, 2), (0, 1, 0), (2, -1, 0)] {
            assert_eq!(recalled_grant(held, pending), want, "{held} {pending}");
        }
    }

    #[test]
    fn walkups_need_an_open_window_and_no_live_reservation() {
        use crate::{NewSlot, SlotStatus, Venue, VenueId};
        let venue = Venue {
            id: VenueId(1),
            orq: crate::Orq(1),
            name: "Zoo".into(),
            timezone: chrono_tz::UTC,
            gate: Default::default(),
            created_at: at(0, 0),
            updated_at: at(0, 0),
        };
        let new = NewSlot::validate(1, "2026-06-01", "11:00", "12:00", Some(10)).unwrap();
        let slot = |status| crate::Slot {
            id: crate::SlotId(uuid::Uuid::nil()),
            venue_id: VenueId(1),
            date: new.date,
            start_time: new.start_time,
            end_time: new.end_time,
            total_capacity: 10,
            booked_count: 0,
            available_count: 10,
            status,
            orq: crate::Orq(1),
            created_at: at(0, 0),
            updated_at: at(0, 0),
        };
        // (name, now, status) → bookable (30 min early grace by default)
        let cases = [
            (
                "before the early grace",
                at(10, 29),
                SlotStatus::Active,
                false,
            ),
            ("early grace", at(10, 30), SlotStatus::Active, true),
            ("during", at(11, 59), SlotStatus::Active, true),
            (
                "full is still leased from",
                at(11, 30),
                SlotStatus::Full,
                true,
            ),
            ("ended", at(12, 0), SlotStatus::Active, false),
            ("closed", at(11, 30), SlotStatus::Closed, false),
        ];
        for (name, now, status, want) in cases {
            assert_eq!(walkup_open(&slot(status), &venue, now), want, "{name}");
        }
        for (code, want) in [
            (VerdictCode::NotReserved, WalkupStep::Book),
            (VerdictCode::ReservationCancelled, WalkupStep::Book),
            (VerdictCode::NotActivated, WalkupStep::ActivateThenBook),
            (VerdictCode::Admit, WalkupStep::No),
            (VerdictCode::AlreadyVerified, WalkupStep::No),
            (VerdictCode::AlreadyReserved, WalkupStep::No),
            (VerdictCode::TicketCancelled, WalkupStep::No),
            (VerdictCode::Expired, WalkupStep::No),
            (VerdictCode::UnknownTicket, WalkupStep::No),
        ] {
            assert_eq!(walkup_step(&entry(code)), want, "{code:?}");
            assert_eq!(
                walkup_bookable(&entry(code)),
                want != WalkupStep::No,
                "{code:?}"
            );
        }
        assert_eq!(
            walkup_step(&entry(VerdictCode::AuthenticNotSynced)),
            WalkupStep::No
        );
        assert!(
            walkup_bookable(&entry(VerdictCode::AuthenticNotSynced)),
            "offered: the server books it online"
        );
        let mut admitted = entry(VerdictCode::Admit);
        admitted.ticket_code = Some("T-1".into());
        let r = walkup_refusal(admitted);
        assert_eq!(
            (r.verdict, r.admit, r.ticket_code.as_deref()),
            (VerdictCode::AlreadyReserved, false, Some("T-1"))
        );
        let cancelled = entry(VerdictCode::TicketCancelled);
        assert_eq!(walkup_refusal(cancelled.clone()), cancelled);
    }

    #[test]
    fn an_online_walkup_takes_the_earliest_open_slot_with_a_free_place() {
        use crate::{NewSlot, SlotStatus, Venue, VenueId};
        let venue = Venue {
            id: VenueId(1),
            orq: crate::Orq(1),
            name: "Zoo".into(),
            timezone: chrono_tz::UTC,
            gate: Default::default(),
            created_at: at(0, 0),
            updated_at: at(0, 0),
        };
        let slot = |n: u128, start: &str, end: &str, booked: i64, venue: i64| {
            let new = NewSlot::validate(venue, "2026-06-01", start, end, Some(10)).unwrap();
            crate::Slot {
                id: crate::SlotId(uuid::Uuid::from_u128(n)),
                venue_id: VenueId(venue),
                date: new.date,
                start_time: new.start_time,
                end_time: new.end_time,
                total_capacity: 10,
                booked_count: booked,
                available_count: 10 - booked,
                status: if booked >= 10 {
                    SlotStatus::Full
                } else {
                    SlotStatus::Active
                },
                orq: crate::Orq(1),
                created_at: at(0, 0),
                updated_at: at(0, 0),
            }
        };
        let starts = |v: Vec<&crate::Slot>| {
            v.iter()
                .map(|s| s.start_time.format("%H:%M").to_string())
                .collect::<Vec<_>>()
        };
        // (name, slots, now) → the slots tried, in order
        type Case = (
            &'static str,
            Vec<crate::Slot>,
            DateTime<Utc>,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "a full slot is passed over",
                vec![
                    slot(1, "11:00", "12:00", 10, 1),
                    slot(2, "11:30", "12:30", 3, 1),
                ],
                at(11, 45),
                vec!["11:30"],
            ),
            (
                "the earliest first",
                vec![
                    slot(2, "11:30", "12:30", 3, 1),
                    slot(1, "11:00", "12:00", 2, 1),
                ],
                at(11, 45),
                vec!["11:00", "11:30"],
            ),
            (
                "an ended slot is not open",
                vec![slot(1, "10:00", "11:00", 0, 1)],
                at(11, 45),
                vec![],
            ),
            (
                "not yet in its early grace",
                vec![slot(1, "14:00", "15:00", 0, 1)],
                at(11, 45),
                vec![],
            ),
            (
                "another venue's slot is not this gate's",
                vec![slot(1, "11:00", "12:00", 0, 2)],
                at(11, 45),
                vec![],
            ),
        ];
        for (name, slots, now, want) in cases {
            assert_eq!(starts(walkup_slots(&slots, &venue, now)), want, "{name}");
        }
    }

    #[test]
    fn undo_is_the_operators_own_within_60_s_with_a_reason() {
        use crate::OperatorId;
        let me = OperatorId(1);
        let t0 = at(10, 0);
        let secs = |n| t0 + chrono::Duration::seconds(n);
        // (name, verified_at, verified_by, left_at, reason, now) → Ok or the refused field
        type Case<'a> = (
            &'a str,
            Option<DateTime<Utc>>,
            Option<OperatorId>,
            Option<DateTime<Utc>>,
            &'a str,
            DateTime<Utc>,
            Result<&'a str, &'a str>,
        );
        let long = "x".repeat(201);
        let cases: [Case<'_>; 9] = [
            (
                "own, 10 s",
                Some(t0),
                Some(me),
                None,
                "wrong phone",
                secs(10),
                Ok("wrong phone"),
            ),
            (
                "own, 60 s",
                Some(t0),
                Some(me),
                None,
                " wrong phone ",
                secs(60),
                Ok("wrong phone"),
            ),
            (
                "own, 61 s",
                Some(t0),
                Some(me),
                None,
                "wrong phone",
                secs(61),
                Err("verified_at"),
            ),
            (
                "clock before",
                Some(t0),
                Some(me),
                None,
                "wrong phone",
                secs(-5),
                Err("verified_at"),
            ),
            (
                "someone else's",
                Some(t0),
                Some(OperatorId(2)),
                None,
                "wrong phone",
                secs(5),
                Err("operator"),
            ),
            (
                "never let in",
                None,
                None,
                None,
                "wrong phone",
                secs(5),
                Err("ticket_code"),
            ),
            (
                "left since",
                Some(t0),
                Some(me),
                Some(secs(3)),
                "wrong phone",
                secs(5),
                Err("ticket_code"),
            ),
            (
                "no reason",
                Some(t0),
                Some(me),
                None,
                "  ",
                secs(5),
                Err("reason"),
            ),
            (
                "reason too long",
                Some(t0),
                Some(me),
                None,
                &long,
                secs(5),
                Err("reason"),
            ),
        ];
        for (name, verified_at, by, left, reason, now, want) in cases {
            let got = check_undo(verified_at, by, left, me, reason, now).map_err(|e| match e {
                DomainError::InvalidInput { field, .. } => field,
                other => panic!("{other:?}"),
            });
            assert_eq!(got.as_deref().map_err(|f| *f), want, "{name}");
        }
    }

    #[test]
    fn occupancy_warns_at_90_and_100_percent() {
        use OccupancyLevel::*;
        // (inside, limit) → level
        let cases = [
            (0, None, Normal),
            (5000, None, Normal),
            (89, Some(100), Normal),
            (90, Some(100), Near),
            (99, Some(100), Near),
            (100, Some(100), Full),
            (120, Some(100), Full),
            (8, Some(9), Normal),
            (9, Some(10), Near),
            (8, Some(10), Normal),
            (-3, Some(10), Normal),
        ];
        for (inside, limit, want) in cases {
            assert_eq!(occupancy_level(inside, limit), want, "{inside}/{limit:?}");
        }
    }
}
