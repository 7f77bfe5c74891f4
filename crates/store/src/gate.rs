//! Gate services: the verdict for a code, and the verification that records it.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction};

use super::reservations::reservation_of_ticket;
use super::slots::load_slot;
use super::tickets::load_ticket;
use super::venues::load_venue;
use super::{Result, Store};
use crate::domain::{
    enter, gate_verdict, DomainError, Entry, Gate, OperatorId, Orq, TicketCode, Verdict,
    VerdictCode, VerdictInput,
};

pub(crate) fn verdict_in(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
    gate: &Gate,
    now: DateTime<Utc>,
) -> Result<Verdict> {
    let ticket = load_ticket(tx, orq, code)?;
    let reservation = match &ticket {
        Some(_) => reservation_of_ticket(tx, orq, code)?,
        None => None,
    };
    let slot = match &reservation {
        Some(r) => load_slot(tx, orq, r.slot_id)?,
        None => None,
    };
    let venue = match &slot {
        Some(s) => load_venue(tx, orq, s.venue_id)?,
        None => None,
    };
    let mut verdict = gate_verdict(
        VerdictInput {
            ticket: ticket.as_ref(),
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
        // The server's record (on a gate: the pulled row) names the device
        // that uploaded the admission; a gate also knows its own outbox and
        // what peers sent over the LAN.
        let recorded: Option<String> = tx
            .prepare_cached(
                "SELECT verified_gate FROM tickets WHERE ticket_code = ?1 AND orq = ?2",
            )?
            .query_row(rusqlite::params![code.as_str(), orq.0], |r| r.get(0))
            .optional()?
            .flatten();
        let known = super::sync::known_admissions(tx, code.as_str())?;
        verdict.verified_gate = crate::domain::sync::lan::admitting_gate(
            verdict.verified_at,
            verdict.verified_by.map(|o| o.0),
            recorded.as_deref(),
            &known,
        )
        .map(str::to_owned);
    }
    Ok(verdict)
}

impl Store {
    /// What the gate would say now to this plain code, typed; changes
    /// nothing. A plain code is refused first if the org takes signed codes
    /// only or the ticket's code was re-issued (`domain::signed::screen_code`).
    pub fn validate_ticket(
        &self,
        orq: Orq,
        code: &TicketCode,
        gate: &Gate,
        now: DateTime<Utc>,
    ) -> Result<Verdict> {
        self.read(|tx| match super::signing::screen_plain(tx, orq, code)? {
            Some(refused) => Ok(refused),
            None => {
                let v = verdict_in(tx, orq, code, gate, now)?;
                Ok(super::venue_ops::no_show_place(tx, orq, v)?.0)
            }
        })
    }

    /// What the ticket rules say about this ticket now, whatever code it
    /// would be shown with (the gate's look-up screen); changes nothing.
    pub fn ticket_verdict(
        &self,
        orq: Orq,
        code: &TicketCode,
        gate: &Gate,
        now: DateTime<Utc>,
    ) -> Result<Verdict> {
        self.read(|tx| {
            let v = verdict_in(tx, orq, code, gate, now)?;
            Ok(super::venue_ops::no_show_place(tx, orq, v)?.0)
        })
    }

    /// Verifies an admissible ticket, shown as a plain code, exactly once
    /// (refused like [`Store::validate_ticket`] first): the verdict is computed and
    /// the verification written in the same write transaction, and the
    /// commit is durable before this returns. A refusal writes nothing and
    /// comes back as `DomainError::Refused` with the verdict's facts.
    pub fn verify_ticket(
        &self,
        orq: Orq,
        code: &TicketCode,
        operator: OperatorId,
        gate: &Gate,
        now: DateTime<Utc>,
    ) -> Result<Verdict> {
        // Stored with millisecond precision; answer with what was stored.
        let now = chrono::SubsecRound::trunc_subsecs(now, 3);
        self.write(|tx| {
            if let Some(refused) = super::signing::screen_plain(tx, orq, code)? {
                return Err(DomainError::Refused(Box::new(refused)).into());
            }
            verify_in(tx, orq, code, operator, gate, now, Admission::ByRules)
        })
    }
}

/// Why a holder is let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The rules say ADMIT.
    ByRules,
    /// The rules say ADMIT, or the operator overrules the amber verdict
    /// they were shown — that one only, not whatever the verdict is by now.
    ByOperatorDecision(VerdictCode),
}

/// The verification itself, in the caller's write transaction.
pub(crate) fn verify_in(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
    operator: OperatorId,
    gate: &Gate,
    now: DateTime<Utc>,
    admission: Admission,
) -> Result<Verdict> {
    let verdict = verdict_in(tx, orq, code, gate, now)?;
    // A released no-show needs a place back to be let in (capacity).
    let (verdict, no_show) = super::venue_ops::no_show_place(tx, orq, verdict)?;
    let mut verdict = match (verdict.admit, admission) {
        (true, _) => verdict,
        (false, Admission::ByOperatorDecision(shown)) if verdict.verdict == shown => {
            verdict.overrule().map_err(DomainError::Refused)?
        }
        (false, _) => return Err(DomainError::Refused(Box::new(verdict)).into()),
    };
    // The operator let a released no-show in: the place comes back to the
    // reservation (this gate's lease, or a free place), which is live again.
    let mut leased_slot = None;
    if let Some(p) = no_show.filter(|_| verdict.overruled == Some(VerdictCode::NoShowReleased)) {
        super::venue_ops::take_place_back(tx, orq, p.device, &p.slot, p.reservation, p.place, now)?;
        if p.place == crate::domain::no_show::PlaceBack::Lease {
            leased_slot = Some(p.slot.id);
        }
    }
    let ticket = super::tickets::require_ticket(tx, orq, code)?;
    let reservation = reservation_of_ticket(tx, orq, code)?;
    match enter(&ticket, reservation.as_ref(), now, operator) {
        Entry::First(used) => {
            super::tickets::write_use(tx, orq, code, &used, None, now)?;
            if let Some(venue) = verdict.venue_id.or(gate.venue_id) {
                super::venue_ops::record_passage(
                    tx,
                    &super::venue_ops::PassageFact {
                        orq,
                        venue,
                        code,
                        direction: crate::domain::venue_ops::Direction::In,
                        reentry: false,
                        at: now,
                        device: None,
                        operator: Some(operator),
                        event_id: None,
                        conflict: None,
                    },
                )?;
            }
        }
        // An admitted ticket is unused: only a verdict computed on other rows says otherwise.
        Entry::Again(_) => return Err(DomainError::TicketRedeemed.into()),
    }
    verdict.verified_at = Some(now);
    verdict.verified_by = Some(operator);
    // On a gate device the verification is queued for the server in
    // this same transaction: committed together or not at all.
    let mut payload = verify_event(code, gate, &verdict);
    // A leased place taken: the lease refresh keeps it for this upload.
    if let Some(slot) = leased_slot {
        payload["lease_slot_id"] = serde_json::json!(slot);
    }
    super::sync::record_local_event(
        tx,
        "verify",
        "tickets",
        code.as_str(),
        payload,
        Some(operator),
        now,
    )?;
    Ok(verdict)
}

/// The outbox payload of a verification (the server records it as a fact).
pub(crate) fn verify_event(code: &TicketCode, gate: &Gate, verdict: &Verdict) -> serde_json::Value {
    let mut payload = serde_json::json!({ "ticket_code": code, "venue_id": gate.venue_id });
    if let Some(overruled) = verdict.overruled {
        payload["overruled"] = overruled.code().into();
    }
    payload
}

impl Store {
    /// May this ticket make a reservation now? (`POST /api/tickets/validate`)
    pub fn reservation_eligibility(
        &self,
        orq: Orq,
        code: &TicketCode,
        now: DateTime<Utc>,
    ) -> Result<Verdict> {
        self.read(|tx| {
            let ticket = load_ticket(tx, orq, code)?;
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
