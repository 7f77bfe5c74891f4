//! Ticket services: issue, read, activate.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use super::codec::{self, ts, TICKET_COLUMNS};
use super::column::Sql;
use super::{on_constraint, Result, Store};
use crate::domain::{
    customer_actions, Booked, CustomerActions, DomainError, NewTicket, Orq, Reservation, Slot,
    Ticket, TicketCode, TicketUse, Venue, VenueId,
};

pub(crate) fn load_ticket(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
) -> Result<Option<Ticket>> {
    Ok(tx
        .prepare_cached(&format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE ticket_code = ?1 AND orq = ?2"
        ))?
        .query_row(params![Sql(&code), Sql(orq)], codec::ticket)
        .optional()?)
}

pub(crate) fn require_ticket(tx: &Transaction<'_>, orq: Orq, code: &TicketCode) -> Result<Ticket> {
    load_ticket(tx, orq, code)?.ok_or_else(|| DomainError::NotFound { entity: "ticket" }.into())
}

/// A ticket's venue is its reservation's slot's venue (live, cancelled or
/// used: the one reservation row a ticket has), as the gates' feed scopes
/// it. A ticket never reserved belongs to no venue.
pub(crate) const IN_VENUE: &str = "EXISTS (SELECT 1 FROM ticket_reservations r \
     JOIN reservation_slots s ON s.id = r.slot_id \
     WHERE r.ticket_id = tickets.ticket_code AND r.orq = tickets.orq AND s.venue_id = ?v)";

/// `require_ticket` for a caller bound to `venue`: another venue's ticket (or
/// one of no venue) is NOT_FOUND to it, as another org's is.
pub(crate) fn require_ticket_in(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
    venue: Option<VenueId>,
) -> Result<Ticket> {
    let ticket = require_ticket(tx, orq, code)?;
    if let Some(venue) = venue {
        let found: Option<i64> = tx
            .prepare_cached(&format!(
                "SELECT 1 FROM tickets WHERE ticket_code = ?1 AND orq = ?2 AND {}",
                IN_VENUE.replace("?v", "?3")
            ))?
            .query_row(params![Sql(code), Sql(orq), Sql(venue)], |r| r.get(0))
            .optional()?;
        if found.is_none() {
            return Err(DomainError::NotFound { entity: "ticket" }.into());
        }
    }
    Ok(ticket)
}

/// `inactive → active` inside a transaction; on a gate device it also goes to the outbox.
pub(crate) fn activate_in(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
    now: DateTime<Utc>,
) -> Result<Ticket> {
    let ticket = require_ticket(tx, orq, code)?;
    if let Some(status) = ticket.plan_activation(now)? {
        tx.prepare_cached(
            "UPDATE tickets SET activation_status = 'active', activated_at = ?1, status = ?2, \
             updated_at = ?1 WHERE ticket_code = ?3",
        )?
        .execute(params![ts(now), Sql(status), Sql(&code)])?;
        let payload = serde_json::json!({ "ticket_code": code });
        super::sync::record_local_event(
            tx,
            "activate",
            "tickets",
            code.as_str(),
            payload,
            None,
            now,
        )?;
    }
    require_ticket(tx, orq, code)
}

/// Writes a ticket's first entry as `domain::enter` decided it, and its
/// reservation's; `now` is when the rows change. `device`: the server's
/// device whose upload this is (the caller's authenticated device token,
/// never a field of the event), whose name the row then carries to the
/// venue's gates (`verified_gate`); None for an admission made here (the
/// server's desk, or a gate's own or received admission: a gate's devices
/// table is empty, the verdict finds its gate in the outbox or the LAN log).
pub(crate) fn write_use(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
    used: &TicketUse,
    device: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE tickets SET verified_at = ?1, verified_by = ?2, status = ?3, activation_status = ?4, \
         activated_at = ?5, updated_at = ?6, verified_gate = (SELECT name FROM devices WHERE id = ?9 AND orq = ?8) \
         WHERE ticket_code = ?7 AND orq = ?8",
    )?
    .execute(params![
        ts(used.verified_at),
        Sql(used.verified_by),
        Sql(used.status),
        Sql(used.activation_status),
        ts(used.activated_at),
        ts(now),
        Sql(code),
        Sql(orq),
        device
    ])?;
    if let Some((id, status)) = used.reservation {
        tx.prepare_cached(
            "UPDATE ticket_reservations SET status = ?1, updated_at = ?2 WHERE id = ?3 AND orq = ?4",
        )?
        .execute(params![Sql(status), ts(now), Sql(id), Sql(orq)])?;
    }
    Ok(())
}

impl Store {
    /// Issues tickets, all or none: a duplicate code anywhere in the batch
    /// (or already in the database, in any org) refuses the whole batch.
    pub fn insert_tickets(
        &self,
        orq: Orq,
        tickets: &[NewTicket],
        now: DateTime<Utc>,
    ) -> Result<Vec<Ticket>> {
        self.write(|tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO tickets (ticket_code, orq, order_id, product_id, user_id, status, entitlements, \
                 expires_at, created_at, updated_at, activation_status, activated_at, activation_mode, purchase_email) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13)",
            )?;
            for t in tickets {
                let (status, activation, activated_at) = t.initial_state(now);
                let entitlements = t.entitlements.clone().unwrap_or_else(|| serde_json::json!({}));
                insert
                    .execute(params![
                        Sql(&t.ticket_code),
                        Sql(orq),
                        t.order_id,
                        t.product_id,
                        t.user_id,
                        Sql(status),
                        entitlements.to_string(),
                        t.expires_at.map(ts),
                        ts(now),
                        Sql(activation),
                        activated_at.map(ts),
                        Sql(t.activation_mode),
                        t.purchase_email
                            .as_deref()
                            .map(crate::domain::reservation::validate_email)
                            .transpose()?,
                    ])
                    .map_err(|e| {
                        on_constraint(e, DomainError::DuplicateTicket {
                            ticket_code: t.ticket_code.to_string(),
                        })
                    })?;
            }
            tickets
                .iter()
                .map(|t| require_ticket(tx, orq, &t.ticket_code))
                .collect()
        })
    }

    pub fn get_ticket(&self, orq: Orq, code: &TicketCode) -> Result<Ticket> {
        self.read(|tx| require_ticket(tx, orq, code))
    }

    /// Which of `codes` the org already holds, in `codes`' order (the CSV
    /// import's check of a part: one read for all its rows). Another org's
    /// codes are not named, so the answer tells a caller nothing about other
    /// orgs; such a code is refused by the import itself (codes are global).
    pub fn existing_ticket_codes(&self, orq: Orq, codes: &[TicketCode]) -> Result<Vec<TicketCode>> {
        self.read(|tx| {
            // One cached statement per code inside one read transaction: no
            // round trips on SQLite, and each look-up is a primary-key seek.
            let mut exists =
                tx.prepare_cached("SELECT 1 FROM tickets WHERE ticket_code = ?1 AND orq = ?2")?;
            let mut found = Vec::new();
            for code in codes {
                if exists.exists(params![Sql(code), Sql(orq)])? {
                    found.push(code.clone());
                }
            }
            Ok(found)
        })
    }

    /// `get_ticket` for a caller bound to `venue` (the console's venue-bound
    /// supervisors and admins): another venue's ticket is NOT_FOUND.
    pub fn get_ticket_in(
        &self,
        orq: Orq,
        code: &TicketCode,
        venue: Option<VenueId>,
    ) -> Result<Ticket> {
        self.read(|tx| require_ticket_in(tx, orq, code, venue))
    }

    /// `inactive → active`; activating an active ticket returns it unchanged.
    /// A caller bound to `venue` activates that venue's tickets only: another
    /// venue's, or one never reserved, is NOT_FOUND and nothing is written.
    /// Decided in the write transaction (the writer lock), so a reservation
    /// moved to another venue just before is seen.
    pub fn activate_ticket(
        &self,
        orq: Orq,
        code: &TicketCode,
        venue: Option<VenueId>,
        now: DateTime<Utc>,
    ) -> Result<Ticket> {
        self.write(|tx| {
            require_ticket_in(tx, orq, code, venue)?;
            activate_in(tx, orq, code, now)
        })
    }
}

impl Store {
    /// Cancels a ticket (refund, re-issue). Its live reservation is cancelled
    /// too, freeing the place; a ticket already used at the gate stays used.
    /// A caller bound to `venue` cancels that venue's tickets only (checked
    /// in the write transaction, so a reservation moved meanwhile is seen).
    pub fn cancel_ticket(
        &self,
        orq: Orq,
        code: &TicketCode,
        venue: Option<VenueId>,
        now: DateTime<Utc>,
    ) -> Result<Ticket> {
        self.write(|tx| {
            let ticket = require_ticket_in(tx, orq, code, venue)?;
            let reservation = super::reservations::reservation_of_ticket(tx, orq, code)?;
            let cancel = ticket.plan_cancel(reservation.as_ref())?;
            if ticket.status == cancel.status
                && ticket.activation_status == cancel.activation_status
                && cancel.frees.is_none()
            {
                // Already cancelled: nothing to write (no change for the feed).
                return Ok(ticket);
            }
            if let (Some(id), Some(r)) = (cancel.frees, &reservation) {
                let slot = super::slots::require_slot(tx, orq, r.slot_id)?;
                super::slots::change_booking(tx, &slot, -1, now)?;
                tx.execute(
                    "UPDATE ticket_reservations SET status = 'CANCELLED', updated_at = ?1 WHERE id = ?2",
                    params![ts(now), Sql(id)],
                )?;
            }
            tx.execute(
                "UPDATE tickets SET status = ?1, activation_status = ?2, updated_at = ?3 \
                 WHERE ticket_code = ?4",
                params![Sql(cancel.status), Sql(cancel.activation_status), ts(now), Sql(code)],
            )?;
            require_ticket(tx, orq, code)
        })
    }
}

/// Filters for listing tickets (admin lists, a customer's own tickets).
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Option<crate::domain::TicketStatus>,
    pub activation_status: Option<crate::domain::ActivationStatus>,
    pub user_id: Option<i64>,
    /// Only tickets of this venue (a venue-bound caller's): see `IN_VENUE`.
    pub venue_id: Option<VenueId>,
}

impl Store {
    /// One page of tickets in code order, after the code `after` (keyset
    /// paging: stable and fast on 100,000 tickets, unlike OFFSET).
    ///
    /// The page is a seek in the primary key: `ticket_code > ?` always (the
    /// first page after `''`, below every code), never `(? IS NULL OR …)`,
    /// which SQLite cannot seek with; each page is one range of
    /// `idx_tickets_orq_code` (migration 0023; EXPLAIN QUERY PLAN: SEARCH …
    /// idx_tickets_orq_code (orq=? AND ticket_code>?), no TEMP B-TREE),
    /// whatever other orgs hold.
    pub fn list_tickets(
        &self,
        orq: Orq,
        filter: &TicketFilter,
        after: Option<&TicketCode>,
        limit: u32,
    ) -> Result<Vec<Ticket>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {TICKET_COLUMNS} FROM tickets WHERE orq = ?1 \
                 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR activation_status = ?3) \
                 AND (?4 IS NULL OR user_id = ?4) AND ticket_code > ?5 \
                 AND (?7 IS NULL OR {}) ORDER BY ticket_code LIMIT ?6",
                IN_VENUE.replace("?v", "?7")
            ))?;
            let rows = stmt.query_map(
                params![
                    Sql(orq),
                    Sql(filter.status),
                    Sql(filter.activation_status),
                    filter.user_id,
                    after.map_or("", |c| c.as_str()),
                    limit,
                    Sql(filter.venue_id)
                ],
                codec::ticket,
            )?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}

/// The tickets a customer may see. A session opened with a ticket code and
/// e-mail sees that one ticket; a customer token issued for a user sees that
/// user's tickets. There is no "every ticket": a scope always names its rows,
/// so a missing id can never turn into an absent filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerScope {
    Ticket(TicketCode),
    User(i64),
}

impl CustomerScope {
    pub fn covers(&self, ticket: &Ticket) -> bool {
        match self {
            Self::Ticket(code) => *code == ticket.ticket_code,
            Self::User(id) => ticket.user_id == Some(*id),
        }
    }
}

/// Whose tickets a reader sees: staff every ticket of their org, a customer
/// only those of their scope (none, for a customer token that names no
/// ticket). A ticket the reader may not see is as unknown as a made-up code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketReader {
    Staff,
    Customer(Option<CustomerScope>),
}

impl TicketReader {
    pub fn sees(&self, ticket: &Ticket) -> bool {
        match self {
            Self::Staff => true,
            Self::Customer(scope) => scope.as_ref().is_some_and(|s| s.covers(ticket)),
        }
    }
}

/// A ticket's state as its holder or the desk sees it, all read in one
/// snapshot: the reservation, its slot (even if closed since) and the slot's
/// venue belong together, and `actions` is decided on them.
#[derive(Debug, Clone)]
pub struct TicketState {
    pub ticket: Ticket,
    pub reservation: Option<Reservation>,
    pub slot: Option<Slot>,
    pub venue: Option<Venue>,
    /// The signed code to show at the gate.
    pub signed_code: String,
    /// What the customer may do now, decided by `domain::customer_actions`
    /// on the venue's clock.
    pub actions: CustomerActions,
}

impl Store {
    /// `code`'s state for `reader`: ticket, reservation, slot, venue, signed
    /// code and the customer's actions, from one read transaction, so a
    /// reschedule or a slot change never lands between two of them.
    pub fn ticket_state(
        &self,
        orq: Orq,
        code: &TicketCode,
        reader: &TicketReader,
        now: DateTime<Utc>,
    ) -> Result<TicketState> {
        // The org's first signed code creates its key: a write of its own,
        // before the snapshot (the key is no part of the ticket's state).
        let key = self.signing_key(orq, now)?;
        self.read(|tx| {
            let ticket = require_ticket(tx, orq, code)?;
            if !reader.sees(&ticket) {
                return Err(DomainError::NotFound { entity: "ticket" }.into());
            }
            let reservation = super::reservations::reservation_of_ticket(tx, orq, code)?;
            let place = match &reservation {
                Some(r) => {
                    let slot = super::slots::require_slot(tx, orq, r.slot_id)?;
                    let venue = super::venues::require_venue(tx, orq, slot.venue_id)?;
                    Some((slot, venue))
                }
                None => None,
            };
            let booked =
                reservation
                    .as_ref()
                    .zip(place.as_ref())
                    .map(|(reservation, (slot, venue))| Booked {
                        reservation,
                        slot,
                        venue,
                    });
            let actions = customer_actions(&ticket, booked, now);
            let signed_code = super::signing::sign_ticket(tx, orq, &ticket, &key)?;
            let (slot, venue) = place.unzip();
            Ok(TicketState {
                ticket,
                reservation,
                slot,
                venue,
                signed_code,
                actions,
            })
        })
    }
}

impl Store {
    /// The tickets of `scope` in `orq`, in code order (at most `limit`).
    pub fn customer_tickets(
        &self,
        orq: Orq,
        scope: &CustomerScope,
        limit: u32,
    ) -> Result<Vec<Ticket>> {
        match scope {
            CustomerScope::Ticket(code) => Ok(self
                .read(|tx| load_ticket(tx, orq, code))?
                .into_iter()
                .collect()),
            CustomerScope::User(id) => self.read(|tx| {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT {TICKET_COLUMNS} FROM tickets WHERE orq = ?1 AND user_id = ?2 \
                     ORDER BY ticket_code LIMIT ?3"
                ))?;
                let rows = stmt.query_map(params![Sql(orq), id, limit], codec::ticket)?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            }),
        }
    }
}

/// A ticket with its reservation and slot: what the desk needs to see.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TicketView {
    pub ticket: Ticket,
    pub reservation: Option<crate::domain::Reservation>,
    pub slot: Option<crate::domain::Slot>,
}

impl Store {
    /// Finds tickets by exact code, or by the e-mail or phone given at
    /// purchase or reservation (case-insensitive e-mail), at most `limit`.
    pub fn lookup_tickets(&self, orq: Orq, query: &str, limit: u32) -> Result<Vec<TicketView>> {
        let query = query.trim();
        if query.is_empty() || query.len() > 254 {
            return Err(DomainError::invalid(
                "query",
                "give a ticket code, an e-mail or a phone number",
            )
            .into());
        }
        // Phone numbers are compared in the form they are stored (E.164).
        let phone =
            crate::domain::reservation::validate_e164(query).unwrap_or_else(|_| query.to_string());
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {TICKET_COLUMNS} FROM tickets WHERE orq = ?1 AND (ticket_code = ?2 \
                 OR customer_email = ?2 COLLATE NOCASE OR purchase_email = ?2 COLLATE NOCASE OR customer_phone = ?3) \
                 ORDER BY ticket_code LIMIT ?4"
            ))?;
            let tickets: Vec<Ticket> = stmt
                .query_map(params![Sql(orq), query, phone, limit], codec::ticket)?
                .collect::<rusqlite::Result<_>>()?;
            tickets
                .into_iter()
                .map(|ticket| {
                    let reservation = super::reservations::reservation_of_ticket(tx, orq, &ticket.ticket_code)?;
                    let slot = match &reservation {
                        Some(r) => super::slots::load_slot(tx, orq, r.slot_id)?,
                        None => None,
                    };
                    Ok(TicketView { ticket, reservation, slot })
                })
                .collect()
        })
    }

    /// How many holders of the slot have entered (verified reservations).
    pub fn admitted_count(&self, orq: Orq, slot: crate::domain::SlotId) -> Result<i64> {
        self.read(|tx| {
            Ok(tx
                .prepare_cached("SELECT count(*) FROM ticket_reservations WHERE orq = ?1 AND slot_id = ?2 AND status = 'VERIFIED'")?
                .query_row(params![Sql(orq), Sql(slot)], |r| r.get(0))?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ActivationMode, ChangedBy, Contact, NewSlot, SlotId, VenueId};
    use crate::ReserveRequest;
    use chrono::{Duration, NaiveTime};

    const ORQ: Orq = Orq(1);

    fn slot(store: &Store, venue: VenueId, days: i64, now: DateTime<Utc>) -> SlotId {
        let hm = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
        store
            .create_slot(
                ORQ,
                &NewSlot {
                    venue_id: venue,
                    date: (now + Duration::days(days)).date_naive(),
                    start_time: hm(9),
                    end_time: hm(12),
                    total_capacity: 10,
                },
                now,
            )
            .unwrap()
            .id
    }

    /// The reservation, its slot and the slot's venue in a state belong together.
    fn assert_consistent(state: &TicketState, slot_id: Option<SlotId>) {
        let reservation = state.reservation.as_ref().map(|r| r.slot_id);
        assert_eq!(reservation, slot_id, "{state:?}");
        assert_eq!(state.slot.as_ref().map(|s| s.id), slot_id, "{state:?}");
        assert_eq!(
            state.venue.as_ref().map(|v| v.id),
            state.slot.as_ref().map(|s| s.venue_id),
            "{state:?}"
        );
    }

    #[test]
    fn ticket_state_reads_reservation_slot_venue_and_actions_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("t.db")).unwrap();
        let now = Utc::now();
        let madrid = store.add_venue(ORQ, "Prado", "Europe/Madrid", now).unwrap();
        let tokyo = store.add_venue(ORQ, "Mori", "Asia/Tokyo", now).unwrap();
        let a = slot(&store, madrid.id, 20, now);
        let b = slot(&store, tokyo.id, 21, now);
        let code = TicketCode::parse("TKT-STATE-1").unwrap();
        store
            .insert_tickets(
                ORQ,
                &[NewTicket {
                    ticket_code: code.clone(),
                    order_id: None,
                    product_id: None,
                    user_id: Some(7),
                    activation_mode: ActivationMode::Immediate,
                    expires_at: None,
                    entitlements: None,
                    purchase_email: None,
                }],
                now,
            )
            .unwrap();
        let staff = TicketReader::Staff;

        // Not reserved yet: nothing to change or cancel, a place to take.
        let state = store.ticket_state(ORQ, &code, &staff, now).unwrap();
        assert_consistent(&state, None);
        assert!(state.actions.reserve.allowed, "{state:?}");
        assert!(!state.actions.change.allowed && !state.actions.cancel.allowed);
        assert_eq!(
            state.signed_code,
            store.signed_code(ORQ, &code, now).unwrap()
        );

        let reservation = store
            .reserve_slot(
                ORQ,
                &ReserveRequest {
                    ticket: code.clone(),
                    slot_id: a,
                    contact: Contact::validate("ana@example.com", "+34600000000").unwrap(),
                },
                now,
            )
            .unwrap();
        let state = store.ticket_state(ORQ, &code, &staff, now).unwrap();
        assert_consistent(&state, Some(a));
        assert_eq!(
            state.venue.as_ref().unwrap().timezone.name(),
            "Europe/Madrid"
        );
        assert_eq!(
            state.actions.reserve.reason.as_deref(),
            Some("ALREADY_RESERVED")
        );
        assert!(state.actions.change.allowed && state.actions.cancel.allowed);

        // The customer sees their own ticket, and no one else's.
        let mine = TicketReader::Customer(Some(CustomerScope::User(7)));
        assert_consistent(
            &store.ticket_state(ORQ, &code, &mine, now).unwrap(),
            Some(a),
        );
        for other in [
            TicketReader::Customer(Some(CustomerScope::User(8))),
            TicketReader::Customer(Some(CustomerScope::Ticket(
                TicketCode::parse("TKT-OTHER").unwrap(),
            ))),
            TicketReader::Customer(None),
        ] {
            let err = store.ticket_state(ORQ, &code, &other, now).unwrap_err();
            assert_eq!(err.code(), "NOT_FOUND", "{other:?}");
        }

        // Reschedules between two venues while the state is read: every
        // state shows one slot with its own venue, never a mix.
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..100 {
                    let to = if i % 2 == 0 { b } else { a };
                    store
                        .reschedule_reservation(ORQ, reservation.id, to, ChangedBy::Customer, now)
                        .unwrap();
                }
            });
            for _ in 0..100 {
                let state = store.ticket_state(ORQ, &code, &staff, now).unwrap();
                let at = state.reservation.as_ref().map(|r| r.slot_id);
                assert!(at == Some(a) || at == Some(b), "{state:?}");
                assert_consistent(&state, at);
            }
        });
        let state = store.ticket_state(ORQ, &code, &staff, now).unwrap();
        assert_consistent(&state, Some(a));
        assert_eq!(state.venue.unwrap().id, madrid.id);
    }
}
