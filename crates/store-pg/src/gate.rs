//! The door: the verdict for a plain code (validate), the verification that
//! records it exactly once across instances (verify), and whether a ticket
//! may reserve.

use crate::conn::Tx;
use chrono::{DateTime, SubsecRound, Utc};

use crate::domain::signed::{self, Presented, Screening};
use crate::domain::{
    enter, gate_verdict, DomainError, Entry, Gate, OperatorId, Orq, Reservation, Ticket,
    TicketCode, TicketUse, Verdict, VerdictCode, VerdictInput,
};
use crate::reservations::reservation_of_ticket;
use crate::slots::load_slot;
use crate::tickets::{load_ticket, ticket, TICKET_COLUMNS};
use crate::venues::load_venue;
use crate::{corrupt, db, ts, PgStore};
use entrada_store::{GateStore, OrgSettings, Result};

pub(crate) fn verdict_in(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    gate: &Gate,
    now: DateTime<Utc>,
) -> Result<Verdict> {
    let ticket = load_ticket(tx, orq, code, false)?;
    Ok(verdict_on(tx, orq, code, ticket.as_ref(), gate, now)?.0)
}

/// `verdict_in` on a ticket already read; with the reservation it read.
fn verdict_on(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    ticket: Option<&Ticket>,
    gate: &Gate,
    now: DateTime<Utc>,
) -> Result<(Verdict, Option<Reservation>)> {
    let reservation = match ticket {
        Some(_) => reservation_of_ticket(tx, orq, code)?,
        None => None,
    };
    let slot = match &reservation {
        Some(r) => load_slot(tx, orq, r.slot_id, false)?,
        None => None,
    };
    let venue = match &slot {
        Some(s) => load_venue(tx, orq, s.venue_id)?,
        None => None,
    };
    let mut verdict = gate_verdict(
        VerdictInput {
            ticket,
            reservation: reservation.as_ref(),
            slot: slot.as_ref(),
            venue: venue.as_ref(),
        },
        now,
        gate,
    );
    if verdict.ticket_code.is_none() {
        verdict.ticket_code = Some(code.to_string());
    }
    // Another venue's gate names are not a venue-bound caller's to read
    // (ALREADY_VERIFIED comes before WRONG_VENUE).
    if verdict.verdict == VerdictCode::AlreadyVerified && gate.sees_gates_of(verdict.venue_id) {
        // The device that uploaded the admission, as its token named it
        // (SQLite's `verdict_in`; the server has no outbox or LAN log).
        let recorded: Option<String> = tx
            .query_opt(
                "SELECT verified_gate FROM tickets WHERE ticket_code = $1 AND orq = $2",
                &[&code.as_str(), &orq.0],
            )
            .map_err(db)?
            .and_then(|r| r.get(0));
        verdict.verified_gate = crate::domain::sync::lan::admitting_gate(
            verdict.verified_at,
            verdict.verified_by.map(|o| o.0),
            recorded.as_deref(),
            &[],
        )
        .map(str::to_owned);
    }
    Ok((verdict, reservation))
}

/// A released no-show's verdict on the server, as SQLite's `no_show_place`
/// says it (the server holds no lease): amber `NO_SHOW_RELEASED` while the
/// slot has a free place to take back, else a red `NO_PLACE_LEFT`
/// (`domain::no_show::place_back`, `without_place`). Other verdicts pass.
pub(crate) fn no_show_place(tx: &mut Tx<'_>, orq: Orq, verdict: Verdict) -> Result<Verdict> {
    if verdict.verdict != VerdictCode::NoShowReleased {
        return Ok(verdict);
    }
    let (Some(slot_id), Some(_)) = (verdict.slot_id, verdict.reservation_id) else {
        return Ok(verdict);
    };
    let Some(slot) = load_slot(tx, orq, slot_id, false)? else {
        return Ok(verdict);
    };
    let place = crate::domain::no_show::place_back(0, &slot);
    Ok(crate::domain::no_show::without_place(verdict, place))
}

/// The org's settings (the defaults until an admin sets one).
pub(crate) fn org_settings_in(tx: &mut Tx<'_>, orq: Orq) -> Result<OrgSettings> {
    let row = tx
        .query_opt(
            "SELECT signed_codes_only, updated_at FROM org_settings WHERE orq = $1",
            &[&orq.0],
        )
        .map_err(db)?;
    Ok(OrgSettings {
        orq,
        signed_codes_only: row.as_ref().is_some_and(|r| r.get(0)),
        updated_at: row.map(|r| r.get(1)),
    })
}

/// A plain code's screening (`domain::signed::screen_code`): the refusal to
/// show if the org takes signed codes only or the code was re-issued.
fn screen_plain(tx: &mut Tx<'_>, orq: Orq, code: &TicketCode) -> Result<Option<Verdict>> {
    let serial = tx
        .query_opt(
            "SELECT code_serial FROM tickets WHERE ticket_code = $1 AND orq = $2",
            &[&code.as_str(), &orq.0],
        )
        .map_err(db)?
        .map(|r| code_serial(r.get(0)))
        .transpose()?;
    screen_serial(tx, orq, code, serial)
}

fn code_serial(serial: i64) -> Result<u32> {
    u32::try_from(serial).map_err(|e| corrupt("code serial", e))
}

/// `screen_plain` with the code's serial already read (`None`: no such
/// ticket).
fn screen_serial(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    serial: Option<u32>,
) -> Result<Option<Verdict>> {
    let policy = org_settings_in(tx, orq)?.policy();
    Ok(
        match signed::screen_code(Presented::Plain(code), serial, policy) {
            Screening::Refuse(v) => Some(*v),
            Screening::Judge | Screening::NotSynced => None,
        },
    )
}

/// Writes a ticket's first entry as `domain::enter` decided it, and its
/// reservation's. `device`: the device whose upload this is (the caller's
/// authenticated device token, never a field of the event), whose name the
/// row then carries to the venue's gates (`verified_gate`); None for an
/// admission made at the server itself.
pub(crate) fn write_use(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    used: &TicketUse,
    device: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.execute(
        "UPDATE tickets SET verified_at = $1, verified_by = $2, status = $3, activation_status = $4, \
         activated_at = $5, updated_at = $6, \
         verified_gate = (SELECT name FROM devices WHERE id = $9 AND orq = $8) \
         WHERE ticket_code = $7 AND orq = $8",
        &[
            &ts(used.verified_at),
            &used.verified_by.0,
            &used.status.as_str(),
            &used.activation_status.as_str(),
            &ts(used.activated_at),
            &ts(now),
            &code.as_str(),
            &orq.0,
            &device,
        ],
    )
    .map_err(db)?;
    if let Some((id, status)) = used.reservation {
        tx.execute(
            "UPDATE ticket_reservations SET status = $1, updated_at = $2 WHERE id = $3 AND orq = $4",
            &[&status.as_str(), &ts(now), &id.0, &orq.0],
        )
        .map_err(db)?;
    }
    Ok(())
}

/// The verification itself, in the caller's write transaction (the ticket
/// row locked first): the rules' verdict, and an ADMIT written exactly once.
pub(crate) fn verify_in(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    operator: OperatorId,
    gate: &Gate,
    now: DateTime<Utc>,
) -> Result<Verdict> {
    let ticket = load_ticket(tx, orq, code, true)?;
    verify_locked(tx, orq, code, ticket, operator, gate, now)
}

/// `verify_in` once this transaction holds the ticket's lock and has read
/// it (`ticket`): the verdict and the entry are decided on the same rows,
/// each read once (the ticket's lock keeps them: every writer of a
/// ticket's reservation locks the ticket first).
fn verify_locked(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    ticket: Option<Ticket>,
    operator: OperatorId,
    gate: &Gate,
    now: DateTime<Utc>,
) -> Result<Verdict> {
    let (verdict, reservation) = verdict_on(tx, orq, code, ticket.as_ref(), gate, now)?;
    let mut verdict = no_show_place(tx, orq, verdict)?;
    if !verdict.admit {
        return Err(DomainError::Refused(Box::new(verdict)).into());
    }
    let ticket = ticket.ok_or(DomainError::NotFound { entity: "ticket" })?;
    match enter(&ticket, reservation.as_ref(), now, operator) {
        Entry::First(used) => {
            write_use(tx, orq, code, &used, None, now)?;
            if let Some(venue) = verdict.venue_id.or(gate.venue_id) {
                crate::venue_ops::record_entry(tx, orq, venue, code, operator, now)?;
            }
        }
        // An admitted ticket is unused: only a verdict computed on other rows says otherwise.
        Entry::Again(_) => return Err(DomainError::TicketRedeemed.into()),
    }
    verdict.verified_at = Some(now);
    verdict.verified_by = Some(operator);
    Ok(verdict)
}

impl GateStore for PgStore {
    /// What the gate would say now to this plain code; changes nothing.
    fn validate_ticket(
        &self,
        orq: Orq,
        code: &TicketCode,
        gate: &Gate,
        now: DateTime<Utc>,
    ) -> Result<Verdict> {
        self.read(|tx| match screen_plain(tx, orq, code)? {
            Some(refused) => Ok(refused),
            None => {
                let v = verdict_in(tx, orq, code, gate, now)?;
                no_show_place(tx, orq, v)
            }
        })
    }

    /// Verifies an admissible ticket exactly once: the ticket row is locked
    /// first, so two instances verifying it at once queue, and the second
    /// sees the first's entry (ALREADY_VERIFIED). A refusal writes nothing.
    fn verify_ticket(
        &self,
        orq: Orq,
        code: &TicketCode,
        operator: OperatorId,
        gate: &Gate,
        now: DateTime<Utc>,
    ) -> Result<Verdict> {
        // Stored with millisecond precision; answer with what was stored.
        let now = now.trunc_subsecs(3);
        self.write(|tx| {
            // The ticket first: its lock is what queues two instances. Read
            // with its code's serial, for the screening (one statement).
            let row = tx
                .query_opt(
                    &format!(
                        "SELECT {TICKET_COLUMNS}, code_serial FROM tickets \
                         WHERE ticket_code = $1 AND orq = $2 FOR UPDATE"
                    ),
                    &[&code.as_str(), &orq.0],
                )
                .map_err(db)?;
            let serial = row
                .as_ref()
                .map(|r| code_serial(r.get("code_serial")))
                .transpose()?;
            if let Some(refused) = screen_serial(tx, orq, code, serial)? {
                return Err(DomainError::Refused(Box::new(refused)).into());
            }
            let ticket = row.as_ref().map(ticket).transpose()?;
            verify_locked(tx, orq, code, ticket, operator, gate, now)
        })
    }

    /// May this ticket make a reservation now?
    fn reservation_eligibility(
        &self,
        orq: Orq,
        code: &TicketCode,
        now: DateTime<Utc>,
    ) -> Result<Verdict> {
        self.read(|tx| {
            let ticket = load_ticket(tx, orq, code, false)?;
            let reservation = match &ticket {
                Some(_) => reservation_of_ticket(tx, orq, code)?,
                None => None,
            };
            let mut v =
                crate::domain::reservation_verdict(ticket.as_ref(), reservation.as_ref(), now);
            v.ticket_code.get_or_insert_with(|| code.to_string());
            Ok(v)
        })
    }
}
