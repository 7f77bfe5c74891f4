//! Ingest: judging and applying a device's uploaded events on the server, exactly once, and its conflicts.

use chrono::{DateTime, SubsecRound, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::codec::{ts, Ts};
use crate::column::Sql;
use crate::domain::sync::protocol::{DeviceInfo, Event, EventResult, EventStatus};
use crate::domain::{
    enter,
    slot::SlotChange,
    upload::{
        event_time, judge_admission, judge_slot_change, Actor, AdmissionOutcome, Rejection,
        UploadedAdmission,
    },
    DomainError, DoubleEntry, Entry, Operator, OperatorId, Orq, SlotId, SlotStatus, TicketCode,
    VenueId, VerdictCode, VerdictInput,
};
use crate::reservations::reservation_of_ticket;
use crate::slots::load_slot;
use crate::tickets::{activate_in, load_ticket, write_use};
use crate::venues::load_venue;
use crate::{Result, Store, StoreError};

fn event_result(
    event: &Event,
    status: EventStatus,
    reason: Option<String>,
    facts: Option<serde_json::Value>,
    received_at: DateTime<Utc>,
) -> EventResult {
    EventResult {
        event_id: event.event_id,
        status,
        reason,
        facts,
        received_at,
    }
}

/// Loads the operator an event names (in the device's org only).
fn event_operator(tx: &Transaction<'_>, orq: Orq, event: &Event) -> Result<Option<Operator>> {
    match event.operator_id {
        Some(id) => match crate::venues::require_operator(tx, orq, OperatorId(id)) {
            Ok(op) => Ok(Some(op)),
            Err(StoreError::Domain(DomainError::NotFound { .. })) => Ok(None),
            Err(e) => Err(e),
        },
        None => Ok(None),
    }
}

/// One device event on the server, judged by `domain::upload` against the
/// server's rows at `at` (the event's time on the server's clock). Rule
/// violations are `Rejected` results, refused admissions `Conflict`s, not
/// errors: only database failures abort the batch.
fn apply_event(
    tx: &Transaction<'_>,
    device: &DeviceInfo,
    event: &Event,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<EventResult> {
    let orq = Orq(device.orq);
    let venue = VenueId(device.venue_id);
    let reject = |r: &Rejection| {
        event_result(
            event,
            EventStatus::Rejected,
            Some(r.code().to_string()),
            Some(r.details()),
            now,
        )
    };
    let str_field = |name: &'static str| -> std::result::Result<String, DomainError> {
        event
            .payload
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| DomainError::invalid(name, "missing in event payload"))
    };
    let operator = event_operator(tx, orq, event)?;
    let actor = Actor {
        claimed: event.operator_id.map(OperatorId),
        found: operator.as_ref(),
    };
    match event.kind.as_str() {
        "verify" => {
            let code = match str_field("ticket_code").and_then(|c| TicketCode::parse(&c)) {
                Ok(c) => c,
                Err(e) => return Ok(reject(&e.into())),
            };
            let ticket = load_ticket(tx, orq, &code)?;
            let reservation = match &ticket {
                Some(_) => reservation_of_ticket(tx, orq, &code)?,
                None => None,
            };
            let slot = match &reservation {
                Some(r) => load_slot(tx, orq, r.slot_id)?,
                None => None,
            };
            let slot_venue = match &slot {
                Some(s) => load_venue(tx, orq, s.venue_id)?,
                None => None,
            };
            let overruled = event
                .payload
                .get("overruled")
                .and_then(|v| v.as_str())
                .and_then(VerdictCode::parse);
            let leased = match &slot {
                Some(s) => crate::venue_ops::leased_places(tx, device.device_id, s.id)?,
                None => 0,
            };
            let upload = UploadedAdmission {
                actor,
                rows: VerdictInput {
                    ticket: ticket.as_ref(),
                    reservation: reservation.as_ref(),
                    slot: slot.as_ref(),
                    venue: slot_venue.as_ref(),
                },
                overruled,
                leased,
                lease_slot: crate::domain::upload::lease_slot_of(&event.payload),
            };
            let outcome = judge_admission(&upload, at, venue);
            let (Some(ticket), Some(operator)) = (ticket.as_ref(), operator.as_ref()) else {
                return Ok(match outcome {
                    AdmissionOutcome::Rejected(r) => reject(&r),
                    _ => reject(&Rejection::Domain(DomainError::NotFound {
                        entity: "ticket",
                    })),
                });
            };
            let admission = Admission {
                device,
                event,
                operator: operator.id,
                at,
                now,
            };
            // Every admission a gate showed let someone walk in: occupancy
            // counts it even when the server judges it a double entry or a
            // conflict (undercounting people inside is the unsafe direction).
            let walked_in = |conflict: Option<&str>| {
                crate::venue_ops::record_passage(
                    tx,
                    &crate::venue_ops::PassageFact {
                        orq,
                        venue,
                        code: &code,
                        direction: crate::domain::venue_ops::Direction::In,
                        reentry: false,
                        at,
                        device: Some(device.device_id),
                        operator: Some(operator.id),
                        event_id: Some(event.event_id.to_string()),
                        conflict,
                    },
                )
            };
            // A released no-show let in late takes its place back first
            // (`domain::no_show::place_back`): its reservation is live again.
            let mut reservation = reservation;
            if let (
                AdmissionOutcome::Applied {
                    place: Some(place), ..
                },
                Some(slot),
                Some(r),
            ) = (&outcome, &slot, reservation.as_mut())
            {
                crate::venue_ops::take_place_back(
                    tx,
                    orq,
                    Some(device.device_id),
                    slot,
                    r.id,
                    *place,
                    now,
                )?;
                r.status = crate::domain::ReservationStatus::Reserved;
                r.no_show_at = None;
            }
            match outcome {
                AdmissionOutcome::Rejected(r) => Ok(reject(&r)),
                // The gate's transition (`domain::enter`), at the event's time:
                // used now, or a double entry where the earliest wins.
                AdmissionOutcome::Applied { overruled, .. }
                | AdmissionOutcome::DoubleEntry { overruled } => {
                    admission.record(tx, &code, overruled, None)?;
                    match enter(ticket, reservation.as_ref(), at, operator.id) {
                        Entry::First(used) => {
                            write_use(tx, orq, &code, &used, Some(device.device_id), now)?;
                            walked_in(None)?;
                            Ok(event_result(event, EventStatus::Applied, None, None, now))
                        }
                        Entry::Again(again) => {
                            walked_in(Some("DOUBLE_ENTRY"))?;
                            admission.double_entry(tx, &code, again)
                        }
                    }
                }
                AdmissionOutcome::Conflict(verdict) => {
                    let reason = verdict.verdict.code();
                    walked_in(Some(reason))?;
                    admission.record(
                        tx,
                        &code,
                        overruled.filter(|c| c.needs_operator_decision()),
                        Some(reason),
                    )?;
                    admission.refused(tx, &code, ticket, reservation.as_ref(), &verdict)
                }
            }
        }
        "slot_change" => {
            let parsed = (|| -> std::result::Result<(SlotId, SlotChange), DomainError> {
                let id: SlotId = str_field("slot_id")?.parse()?;
                let total_capacity = event.payload.get("total_capacity").and_then(|v| v.as_i64());
                let status = match event.payload.get("status").and_then(|v| v.as_str()) {
                    Some(s) => Some(SlotStatus::parse(s)?),
                    None => None,
                };
                Ok((
                    id,
                    SlotChange {
                        total_capacity,
                        status,
                    },
                ))
            })();
            let (id, change) = match parsed {
                Ok(p) => p,
                Err(e) => return Ok(reject(&e.into())),
            };
            let slot = load_slot(tx, orq, id)?;
            if let Err(r) = judge_slot_change(actor, slot.as_ref(), venue) {
                return Ok(reject(&r));
            }
            match crate::slots::update_slot_in(tx, orq, id, change, now, actor.claimed) {
                Ok(_) => Ok(event_result(event, EventStatus::Applied, None, None, now)),
                Err(StoreError::Domain(e)) => Ok(reject(&e.into())),
                Err(e) => Err(e),
            }
        }
        "activate" => {
            if let Err(r) = actor.check_optional() {
                return Ok(reject(&r));
            }
            let code = match str_field("ticket_code").and_then(|c| TicketCode::parse(&c)) {
                Ok(c) => c,
                Err(e) => return Ok(reject(&e.into())),
            };
            match activate_in(tx, orq, &code, at) {
                Ok(_) => Ok(event_result(event, EventStatus::Applied, None, None, now)),
                Err(StoreError::Domain(e)) => Ok(reject(&e.into())),
                Err(e) => Err(e),
            }
        }
        "undo" => {
            if let Err(r) = actor.check_optional() {
                return Ok(reject(&r));
            }
            match crate::venue_ops::apply_undo_event(tx, device, event, at, now)? {
                Ok(result) => Ok(result),
                Err(e) => Ok(reject(&e.into())),
            }
        }
        "walkup" => {
            if let Err(r) = actor.check_optional() {
                return Ok(reject(&r));
            }
            match crate::venue_ops::apply_walkup_event(tx, device, event, at, now)? {
                Ok(result) => Ok(result),
                Err(e) => Ok(reject(&e.into())),
            }
        }
        kind @ ("exit" | "reenter") => {
            let direction = if kind == "exit" {
                crate::domain::venue_ops::Direction::Out
            } else {
                crate::domain::venue_ops::Direction::In
            };
            if let Err(r) = actor.check_optional() {
                return Ok(reject(&r));
            }
            match crate::venue_ops::apply_passage_event(tx, device, event, direction, at, now)? {
                Ok(result) => Ok(result),
                Err(e) => Ok(reject(&e.into())),
            }
        }
        _ => Ok(reject(
            &DomainError::invalid("kind", "unknown event kind").into(),
        )),
    }
}

/// An uploaded admission being written: who, where, when.
struct Admission<'a> {
    device: &'a DeviceInfo,
    event: &'a Event,
    operator: OperatorId,
    /// The event's time on the server's clock.
    at: DateTime<Utc>,
    now: DateTime<Utc>,
}

impl Admission<'_> {
    /// The fact: this person was let in here (always recorded).
    fn record(
        &self,
        tx: &Transaction<'_>,
        code: &TicketCode,
        overruled: Option<VerdictCode>,
        refused: Option<&str>,
    ) -> Result<()> {
        tx.execute(
            "INSERT INTO verifications (orq, ticket_code, event_id, device_id, operator_id, verified_at, received_at, overruled, refused) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                self.device.orq,
                Sql(&code),
                self.event.event_id.to_string(),
                self.device.device_id,
                Sql(self.operator),
                ts(self.at),
                ts(self.now),
                overruled.map(VerdictCode::code),
                refused
            ],
        )?;
        Ok(())
    }

    /// The ticket was used already: a DOUBLE_ENTRY conflict, and the ticket
    /// records the earliest entry (`DoubleEntry::replaces_record`).
    fn double_entry(
        &self,
        tx: &Transaction<'_>,
        code: &TicketCode,
        again: DoubleEntry,
    ) -> Result<EventResult> {
        let first_at = again.recorded_at;
        let event = self.event;
        let first_device: Option<i64> = tx
            .query_row(
                "SELECT device_id FROM verifications WHERE ticket_code = ?1 AND verified_at = ?2 AND event_id IS NOT ?3 \
                 AND refused IS NULL ORDER BY id LIMIT 1",
                params![Sql(&code), ts(first_at), event.event_id.to_string()],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let mut first = (first_at, first_device, again.recorded_by.map(|o| o.0));
        let mut second = (self.at, Some(self.device.device_id), Some(self.operator.0));
        if again.replaces_record {
            tx.execute(
                // The earlier admission is this upload's: its device (the
                // token's, as in `write_use`) is the gate the row names now.
                "UPDATE tickets SET verified_at = ?1, verified_by = ?2, updated_at = ?3, \
                 verified_gate = (SELECT name FROM devices WHERE id = ?5 AND orq = ?6) WHERE ticket_code = ?4",
                params![ts(self.at), Sql(self.operator), ts(self.now), Sql(&code), self.device.device_id, self.device.orq],
            )?;
            std::mem::swap(&mut first, &mut second);
        }
        let facts = serde_json::json!({
            "kind": "DOUBLE_ENTRY", "ticket_code": code,
            "first_at": first.0, "first_device_id": first.1, "first_operator_id": first.2,
            "second_at": second.0, "second_device_id": second.1, "second_operator_id": second.2,
        });
        tx.execute(
            "INSERT INTO sync_conflicts (orq, kind, ticket_code, first_device_id, first_operator_id, first_at, second_device_id, \
             second_operator_id, second_at, second_event_id, detected_at, venue_id, facts) \
             VALUES (?1, 'DOUBLE_ENTRY', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![self.device.orq, Sql(&code), first.1, first.2, ts(first.0), second.1, second.2, ts(second.0),
                event.event_id.to_string(), ts(self.now), self.device.venue_id, facts.to_string()],
        )?;
        Ok(event_result(
            event,
            EventStatus::Conflict,
            Some("DOUBLE_ENTRY".into()),
            Some(facts),
            self.now,
        ))
    }

    /// An admission the server would have refused: a conflict with the
    /// refusal as its reason and both sides' facts. The ticket and its
    /// reservation stay as the server had them ("first": the server's state,
    /// as of its last change; "second": the gate's admission).
    fn refused(
        &self,
        tx: &Transaction<'_>,
        code: &TicketCode,
        ticket: &crate::domain::Ticket,
        reservation: Option<&crate::domain::Reservation>,
        verdict: &crate::domain::Verdict,
    ) -> Result<EventResult> {
        let event = self.event;
        let reason = verdict.verdict.code();
        let server_since =
            reservation.map_or(ticket.updated_at, |r| r.updated_at.max(ticket.updated_at));
        let facts = serde_json::json!({
            "kind": reason,
            "ticket_code": code,
            "gate": {
                "device_id": self.device.device_id,
                "venue_id": self.device.venue_id,
                "operator_id": self.operator,
                "at": self.at,
                "device_time": event.device_time,
                "claimed_venue_id": event.payload.get("venue_id"),
                "overruled": event.payload.get("overruled"),
            },
            "server": {
                "verdict": verdict,
                "ticket_status": ticket.status.as_str(),
                "activation_status": ticket.activation_status.as_str(),
                "reservation_status": reservation.map(|r| r.status.as_str()),
                "since": server_since,
            },
        });
        tx.execute(
            "INSERT INTO sync_conflicts (orq, kind, ticket_code, first_device_id, first_operator_id, first_at, second_device_id, \
             second_operator_id, second_at, second_event_id, detected_at, venue_id, facts) \
             VALUES (?1, ?2, ?3, NULL, NULL, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![self.device.orq, reason, Sql(&code), ts(server_since), self.device.device_id, Sql(self.operator), ts(self.at),
                event.event_id.to_string(), ts(self.now), self.device.venue_id, facts.to_string()],
        )?;
        Ok(event_result(
            event,
            EventStatus::Conflict,
            Some(reason.into()),
            Some(facts),
            self.now,
        ))
    }
}

/// The row an event changes, as the change log names it.
fn event_entity(event: &Event) -> Option<(&'static str, String)> {
    let field = |name: &str| {
        event
            .payload
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    match event.kind.as_str() {
        "verify" | "activate" | "exit" | "reenter" | "walkup" | "undo" => {
            Some(("tickets", field("ticket_code")?))
        }
        "slot_change" => Some(("reservation_slots", field("slot_id")?)),
        _ => None,
    }
}

/// Moves a row's change-log entry to the end of the sequence, so every device
/// pulls the row again (it is unchanged on the server).
fn resend(tx: &Transaction<'_>, entity: &str, entity_id: &str) -> Result<()> {
    tx.prepare_cached(
        "UPDATE change_log SET seq = (SELECT max(seq) + 1 FROM change_log) WHERE entity = ?1 AND entity_id = ?2",
    )?
    .execute(params![entity, entity_id])?;
    Ok(())
}

/// Sends a ticket's reservation row again (see [`resend`]).
fn resend_reservation_of(tx: &Transaction<'_>, ticket_code: &str) -> Result<()> {
    tx.prepare_cached(
        "UPDATE change_log SET seq = (SELECT max(seq) + 1 FROM change_log) \
         WHERE entity = 'ticket_reservations' AND entity_id = (SELECT id FROM ticket_reservations WHERE ticket_id = ?1)",
    )?
    .execute([ticket_code])?;
    Ok(())
}

impl Store {
    /// Applies a device's events, each exactly once: a replayed event id
    /// answers `duplicate` with the first answer's facts.
    pub fn apply_events(
        &self,
        device: &DeviceInfo,
        events: &[Event],
        sent_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<EventResult>> {
        let now = now.trunc_subsecs(3);
        // The device's clock against the server's, measured on this batch.
        let offset = sent_at - now;
        self.write(|tx| {
            tx.execute(
                "UPDATE devices SET last_seen_at = ?1, clock_offset_ms = ?2 WHERE id = ?3",
                params![ts(now), offset.num_milliseconds(), device.device_id],
            )?;
            let mut results = Vec::with_capacity(events.len());
            for event in events {
                let earlier: Option<(String, Ts)> = tx
                    .prepare_cached("SELECT result, received_at FROM sync_events WHERE event_id = ?1")?
                    .query_row([event.event_id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some((result, received_at)) = earlier {
                    let first: Option<EventResult> = serde_json::from_str(&result).ok();
                    results.push(EventResult {
                        event_id: event.event_id,
                        status: EventStatus::Duplicate,
                        reason: Some("ALREADY_APPLIED".into()),
                        facts: first.and_then(|f| serde_json::to_value(f).ok()),
                        received_at: received_at.0,
                    });
                    continue;
                }
                let at = event_time(event.device_time, offset, now).trunc_subsecs(3);
                let result = apply_event(tx, device, event, at, now)?;
                if matches!(result.status, EventStatus::Conflict | EventStatus::Rejected) {
                    // The device kept its own version of this row while the
                    // event was pending (and skipped the server's in pulls):
                    // send the server's row again so the replica converges.
                    if let Some((entity, id)) = event_entity(event) {
                        resend(tx, entity, &id)?;
                        if entity == "tickets" {
                            // Its admission also marked the reservation.
                            resend_reservation_of(tx, &id)?;
                        }
                    }
                }
                tx.prepare_cached(
                    "INSERT INTO sync_events (event_id, device_id, orq, kind, payload, device_time, received_at, result) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    event.event_id.to_string(),
                    device.device_id,
                    device.orq,
                    event.kind,
                    event.payload.to_string(),
                    ts(event.device_time),
                    ts(now),
                    serde_json::to_string(&result).unwrap_or_else(|_| "{}".into()),
                ])?;
                results.push(result);
            }
            Ok(results)
        })
    }
}
