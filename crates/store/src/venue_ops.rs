//! Venue operations (issue 15): scans in a direction (exits, re-entry), the
//! passages occupancy is counted from, and the uploaded exits and re-entries
//! the server judges. The rules are `domain::venue_ops`'s; here only SQL.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::codec::{ts, Ts};
use crate::column::Sql;
use crate::domain::sync::protocol::{DeviceInfo, Event, EventResult, EventStatus};
use crate::domain::venue_ops::{
    day_start, occupancy_level, passage, Direction, Occupancy, Passage, Presence, Tz, VenueOps, UTC,
};
use crate::domain::{
    DomainError, Gate, OperatorId, Orq, TicketCode, Venue, VenueId, Verdict, VerdictCode,
};
use crate::signing::Screened;
use crate::venues::load_venue;
use crate::{Result, Store};

/// One person through a gate, as a fact to count.
pub(crate) struct PassageFact<'a> {
    pub orq: Orq,
    pub venue: VenueId,
    pub code: &'a TicketCode,
    pub direction: Direction,
    pub reentry: bool,
    pub at: DateTime<Utc>,
    pub device: Option<i64>,
    pub operator: Option<OperatorId>,
    pub event_id: Option<String>,
    pub conflict: Option<&'a str>,
}

pub(crate) fn record_passage(tx: &Transaction<'_>, p: &PassageFact<'_>) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO passages (orq, venue_id, ticket_code, direction, reentry, at, device_id, operator_id, event_id, conflict) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        Sql(p.orq),
        Sql(p.venue),
        Sql(p.code),
        p.direction.as_str(),
        p.reentry,
        ts(p.at),
        p.device,
        p.operator.map(|o| o.0),
        p.event_id,
        p.conflict
    ])?;
    Ok(())
}

/// A ticket's entry and last exit, as this database has them.
fn presence(tx: &Transaction<'_>, orq: Orq, code: &TicketCode) -> Result<Presence> {
    let row: Option<(Option<Ts>, Option<Ts>)> = tx
        .prepare_cached(
            "SELECT verified_at, left_at FROM tickets WHERE ticket_code = ?1 AND orq = ?2",
        )?
        .query_row(params![Sql(code), Sql(orq)], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(
        row.map_or_else(Presence::default, |(entered, left)| Presence {
            entered_at: entered.map(|t| t.0),
            left_at: left.map(|t| t.0),
        }),
    )
}

/// The venue a verdict is about (its slot's), else the gate's; its settings
/// and clock (the defaults and UTC without a venue row).
fn venue_of(
    tx: &Transaction<'_>,
    orq: Orq,
    verdict: &Verdict,
    gate: &Gate,
) -> Result<(Option<VenueId>, VenueOps, Tz)> {
    let id = verdict.venue_id.or(gate.venue_id);
    let venue: Option<Venue> = match id {
        Some(id) => load_venue(tx, orq, id)?,
        None => None,
    };
    Ok(match venue {
        Some(v) => (Some(v.id), v.gate.ops(), v.timezone),
        None => (id, VenueOps::default(), UTC),
    })
}

fn set_left_at(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
    left_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE tickets SET left_at = ?1, updated_at = ?2 WHERE ticket_code = ?3 AND orq = ?4",
    )?
    .execute(params![left_at.map(ts), ts(now), Sql(code), Sql(orq)])?;
    Ok(())
}

/// An exit or a re-entry at this database's gate, in the caller's write
/// transaction: judged by `domain::venue_ops::passage`, written with its
/// outbox event (a gate device) in the same commit.
fn pass_in(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
    operator: OperatorId,
    gate: &Gate,
    direction: Direction,
    now: DateTime<Utc>,
) -> Result<Verdict> {
    let entry = crate::gate::verdict_in(tx, orq, code, gate, now)?;
    let (venue, ops, tz) = venue_of(tx, orq, &entry, gate)?;
    let (verdict, write) = passage(entry, presence(tx, orq, code)?, direction, ops, tz);
    let (kind, left_at) = match write {
        Passage::Exit => ("exit", Some(now)),
        Passage::Reenter => ("reenter", None),
        Passage::Enter | Passage::Refused => return Ok(verdict),
    };
    let Some(venue) = venue else {
        return Ok(verdict);
    };
    set_left_at(tx, orq, code, left_at, now)?;
    record_passage(
        tx,
        &PassageFact {
            orq,
            venue,
            code,
            direction,
            reentry: write == Passage::Reenter,
            at: now,
            device: None,
            operator: Some(operator),
            event_id: None,
            conflict: None,
        },
    )?;
    crate::sync::record_local_event(
        tx,
        kind,
        "tickets",
        code.as_str(),
        serde_json::json!({ "ticket_code": code, "venue_id": venue }),
        Some(operator),
        now,
    )?;
    Ok(verdict)
}

impl Store {
    /// A scan in `direction` (the kiosk's toggle, `entrada gate verify
    /// --direction`): in is [`Store::scan`], and a holder who left comes
    /// back in as the venue allows; out records the exit of a holder inside.
    pub fn pass(
        &self,
        orq: Orq,
        raw: &[u8],
        operator: OperatorId,
        gate: &Gate,
        direction: Direction,
        now: DateTime<Utc>,
    ) -> Result<Verdict> {
        let now = chrono::SubsecRound::trunc_subsecs(now, 3);
        let code = match direction {
            Direction::In => {
                let v = self.scan(orq, raw, operator, gate, now)?;
                if v.verdict != VerdictCode::AlreadyVerified {
                    return Ok(v);
                }
                match v.ticket_code.as_deref().map(TicketCode::parse) {
                    Some(Ok(code)) => code,
                    _ => return Ok(v),
                }
            }
            Direction::Out => match self.screen(orq, raw, now)? {
                Screened::Code(code) => code,
                Screened::NotSynced(v) | Screened::Refused(v) => {
                    let (v, _) =
                        passage(*v, Presence::default(), direction, VenueOps::default(), UTC);
                    return Ok(v);
                }
            },
        };
        self.write(|tx| pass_in(tx, orq, &code, operator, gate, direction, now))
    }

    /// People inside `venue` now, from every passage this database holds
    /// since the venue's day began (the server: its own verifications and
    /// every gate's uploaded entries and exits).
    pub fn occupancy(&self, orq: Orq, venue: VenueId, now: DateTime<Utc>) -> Result<Occupancy> {
        self.read(|tx| {
            let v = crate::venues::require_venue(tx, orq, venue)?;
            let inside: i64 = tx
                .prepare_cached(
                    "SELECT COALESCE(SUM(CASE direction WHEN 'in' THEN 1 ELSE -1 END), 0) FROM passages \
                     WHERE orq = ?1 AND venue_id = ?2 AND at >= ?3",
                )?
                .query_row(
                    params![Sql(orq), Sql(venue), ts(day_start(v.timezone, now))],
                    |r| r.get(0),
                )?;
            let limit = v.gate.ops().occupancy_limit;
            Ok(Occupancy {
                venue_id: venue,
                inside,
                limit,
                level: occupancy_level(inside, limit),
                as_of: Some(now),
            })
        })
    }

    /// A gate's best knowledge of the people inside its venue: the tickets
    /// of the venue's slots used today and not left since, as its replica
    /// has them (every gate's, as of its last sync, and its own since);
    /// `as_of` is that last sync.
    pub fn gate_occupancy(
        &self,
        orq: Orq,
        venue: VenueId,
        now: DateTime<Utc>,
    ) -> Result<Occupancy> {
        self.read(|tx| {
            let v = crate::venues::require_venue(tx, orq, venue)?;
            let inside: i64 = tx
                .prepare_cached(
                    "SELECT count(*) FROM tickets t \
                     JOIN ticket_reservations r ON r.ticket_id = t.ticket_code \
                     JOIN reservation_slots s ON s.id = r.slot_id \
                     WHERE t.orq = ?1 AND s.venue_id = ?2 AND t.verified_at >= ?3 AND t.left_at IS NULL",
                )?
                .query_row(
                    params![Sql(orq), Sql(venue), ts(day_start(v.timezone, now))],
                    |r| r.get(0),
                )?;
            let as_of: Option<Ts> = tx
                .query_row("SELECT last_sync_at FROM device_identity", [], |r| r.get(0))
                .optional()?
                .flatten();
            let limit = v.gate.ops().occupancy_limit;
            Ok(Occupancy {
                venue_id: venue,
                inside,
                limit,
                level: occupancy_level(inside, limit),
                as_of: as_of.map(|t| t.0),
            })
        })
    }
}

/// An uploaded exit or re-entry on the server, judged by the same rule the
/// gate used (`domain::venue_ops::passage`) against the server's rows at the
/// event's time. The passage is a fact and always counts (the person went
/// through); where the server's rows disagree (an exit of a ticket the
/// server has not seen enter, a re-entry the venue no longer allows) the
/// ticket is left as it is and the answer is a conflict with the reason.
pub(crate) fn apply_passage_event(
    tx: &Transaction<'_>,
    device: &DeviceInfo,
    event: &Event,
    direction: Direction,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<std::result::Result<EventResult, DomainError>> {
    let orq = Orq(device.orq);
    let code = match event
        .payload
        .get("ticket_code")
        .and_then(|v| v.as_str())
        .ok_or_else(|| DomainError::invalid("ticket_code", "missing in event payload"))
        .and_then(TicketCode::parse)
    {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    let Some(operator) = event.operator_id.map(OperatorId) else {
        return Ok(Err(DomainError::invalid(
            "operator_id",
            "a passage names its operator",
        )));
    };
    if crate::tickets::load_ticket(tx, orq, &code)?.is_none() {
        return Ok(Err(DomainError::NotFound { entity: "ticket" }));
    }
    let gate = Gate {
        venue_id: Some(VenueId(device.venue_id)),
        ..Default::default()
    };
    let entry = crate::gate::verdict_in(tx, orq, &code, &gate, at)?;
    let (_, ops, tz) = venue_of(tx, orq, &entry, &gate)?;
    let (verdict, write) = passage(entry, presence(tx, orq, &code)?, direction, ops, tz);
    let expected = match direction {
        Direction::Out => Passage::Exit,
        Direction::In => Passage::Reenter,
    };
    let conflict = (write != expected).then(|| verdict.verdict.code());
    if conflict.is_none() {
        set_left_at(
            tx,
            orq,
            &code,
            (direction == Direction::Out).then_some(at),
            now,
        )?;
    }
    // Counted at the gate's venue: that is the door the person went through.
    record_passage(
        tx,
        &PassageFact {
            orq,
            venue: VenueId(device.venue_id),
            code: &code,
            direction,
            reentry: direction == Direction::In,
            at,
            device: Some(device.device_id),
            operator: Some(operator),
            event_id: Some(event.event_id.to_string()),
            conflict,
        },
    )?;
    Ok(Ok(EventResult {
        event_id: event.event_id,
        status: if conflict.is_some() {
            EventStatus::Conflict
        } else {
            EventStatus::Applied
        },
        reason: conflict.map(str::to_owned),
        facts: conflict.map(|_| serde_json::json!({ "kind": verdict.verdict.code(), "ticket_code": code, "server": verdict })),
        received_at: now,
    }))
}
