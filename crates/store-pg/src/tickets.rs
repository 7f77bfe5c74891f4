//! Tickets: issue, read, list, activate, a customer's own.

use crate::conn::Columns;
use crate::conn::Tx;
use chrono::{DateTime, Utc};

use crate::domain::{
    ActivationMode, ActivationStatus, DomainError, NewTicket, OperatorId, Orq, Ticket, TicketCode,
    TicketStatus, VenueId,
};
use crate::{corrupt, db, on_constraint, ts, PgStore};
use entrada_store::{CustomerScope, Result, TicketFilter, TicketStore};

pub(crate) const TICKET_COLUMNS: &str = "ticket_code, orq, order_id, product_id, user_id, status, \
     entitlements, expires_at, created_at, updated_at, customer_email, customer_phone, \
     reserved_at, verified_at, verified_by, activation_status, activated_at, activation_mode, purchase_email";

pub(crate) fn ticket(row: &impl Columns) -> Result<Ticket> {
    Ok(Ticket {
        ticket_code: TicketCode::parse(row.get("ticket_code"))
            .map_err(|e| corrupt("ticket code", e))?,
        orq: Orq(row.get("orq")),
        order_id: row.get("order_id"),
        product_id: row.get("product_id"),
        user_id: row.get("user_id"),
        status: TicketStatus::parse(row.get("status")).map_err(|e| corrupt("ticket status", e))?,
        entitlements: row.get("entitlements"),
        expires_at: row.get("expires_at"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        customer_email: row.get("customer_email"),
        customer_phone: row.get("customer_phone"),
        reserved_at: row.get("reserved_at"),
        verified_at: row.get("verified_at"),
        verified_by: row.get::<_, Option<i64>>("verified_by").map(OperatorId),
        activation_status: ActivationStatus::parse(row.get("activation_status"))
            .map_err(|e| corrupt("activation status", e))?,
        activated_at: row.get("activated_at"),
        activation_mode: ActivationMode::parse(row.get("activation_mode"))
            .map_err(|e| corrupt("activation mode", e))?,
        purchase_email: row.get("purchase_email"),
    })
}

/// The ticket, locked for the rest of the transaction when `lock`. Lock
/// order, everywhere: the ticket, then slots (in id order), so two writers
/// never wait on each other in a circle.
pub(crate) fn load_ticket(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    lock: bool,
) -> Result<Option<Ticket>> {
    let sql = format!(
        "SELECT {TICKET_COLUMNS} FROM tickets WHERE ticket_code = $1 AND orq = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    tx.query_opt(&sql, &[&code.as_str(), &orq.0])
        .map_err(db)?
        .as_ref()
        .map(ticket)
        .transpose()
}

pub(crate) fn require_ticket(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    lock: bool,
) -> Result<Ticket> {
    load_ticket(tx, orq, code, lock)?
        .ok_or_else(|| DomainError::NotFound { entity: "ticket" }.into())
}

/// A ticket's venue is its reservation's slot's venue (live, cancelled or
/// used: the one reservation row a ticket has), as the gates' feed scopes
/// it; a ticket never reserved belongs to no venue. `$v` is the venue.
pub(crate) const IN_VENUE: &str = "EXISTS (SELECT 1 FROM ticket_reservations r \
     JOIN reservation_slots s ON s.id = r.slot_id \
     WHERE r.ticket_id = tickets.ticket_code AND r.orq = tickets.orq AND s.venue_id = $v)";

/// `require_ticket` for a caller bound to `venue`: another venue's ticket (or
/// one of no venue) is NOT_FOUND to it, as another org's is. With `lock`,
/// the ticket is locked first, so its reservation cannot move meanwhile
/// (a reschedule locks the ticket too).
pub(crate) fn require_ticket_in(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    venue: Option<VenueId>,
    lock: bool,
) -> Result<Ticket> {
    let ticket = require_ticket(tx, orq, code, lock)?;
    if let Some(venue) = venue {
        let found = tx
            .query_opt(
                &format!(
                    "SELECT 1 FROM tickets WHERE ticket_code = $1 AND orq = $2 AND {}",
                    IN_VENUE.replace("$v", "$3")
                ),
                &[&code.as_str(), &orq.0, &venue.0],
            )
            .map_err(db)?;
        if found.is_none() {
            return Err(DomainError::NotFound { entity: "ticket" }.into());
        }
    }
    Ok(ticket)
}

/// `inactive → active` in the caller's write transaction (the ticket locked);
/// an active ticket comes back unchanged.
pub(crate) fn activate_in(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    now: DateTime<Utc>,
) -> Result<Ticket> {
    let current = require_ticket(tx, orq, code, true)?;
    let Some(status) = current.plan_activation(now)? else {
        return Ok(current);
    };
    let row = tx
        .query_one(
            &format!(
                "UPDATE tickets SET activation_status = 'active', activated_at = $1, status = $2, \
                 updated_at = $1 WHERE ticket_code = $3 RETURNING {TICKET_COLUMNS}"
            ),
            &[&ts(now), &status.as_str(), &code.as_str()],
        )
        .map_err(db)?;
    ticket(&row)
}

impl TicketStore for PgStore {
    /// All or none: a duplicate code anywhere in the batch (or already in
    /// the database, in any org) refuses the whole batch.
    fn insert_tickets(
        &self,
        orq: Orq,
        tickets: &[NewTicket],
        now: DateTime<Utc>,
    ) -> Result<Vec<Ticket>> {
        // Validated before anything is written, as on SQLite.
        let emails = tickets
            .iter()
            .map(|t| {
                t.purchase_email
                    .as_deref()
                    .map(crate::domain::reservation::validate_email)
                    .transpose()
            })
            .collect::<Result<Vec<_>, DomainError>>()?;
        self.write(|tx| {
            let insert = tx
                .prepare(&format!(
                    "INSERT INTO tickets (ticket_code, orq, order_id, product_id, user_id, status, entitlements, \
                     expires_at, created_at, updated_at, activation_status, activated_at, activation_mode, purchase_email) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11, $12, $13) RETURNING {TICKET_COLUMNS}"
                ))
                .map_err(db)?;
            let mut out = Vec::with_capacity(tickets.len());
            for (t, email) in tickets.iter().zip(&emails) {
                let (status, activation, activated_at) = t.initial_state(now);
                let entitlements = t.entitlements.clone().unwrap_or_else(|| serde_json::json!({}));
                let row = tx
                    .query_one(
                        &insert,
                        &[
                            &t.ticket_code.as_str(),
                            &orq.0,
                            &t.order_id,
                            &t.product_id,
                            &t.user_id,
                            &status.as_str(),
                            &entitlements,
                            &t.expires_at.map(ts),
                            &ts(now),
                            &activation.as_str(),
                            &activated_at.map(ts),
                            &t.activation_mode.as_str(),
                            email,
                        ],
                    )
                    .map_err(|e| {
                        on_constraint(e, DomainError::DuplicateTicket {
                            ticket_code: t.ticket_code.to_string(),
                        })
                    })?;
                out.push(ticket(&row)?);
            }
            Ok(out)
        })
    }

    fn get_ticket(&self, orq: Orq, code: &TicketCode) -> Result<Ticket> {
        self.read(|tx| require_ticket(tx, orq, code, false))
    }

    /// One round trip for the whole list (`= ANY($2)`), in `codes`' order.
    /// The caller's org only, as on SQLite.
    fn existing_ticket_codes(&self, orq: Orq, codes: &[TicketCode]) -> Result<Vec<TicketCode>> {
        let wanted: Vec<&str> = codes.iter().map(TicketCode::as_str).collect();
        let rows = self.read(|tx| {
            tx.query(
                "SELECT ticket_code FROM tickets WHERE orq = $1 AND ticket_code = ANY($2)",
                &[&orq.0, &wanted],
            )
            .map_err(db)
        })?;
        let found: std::collections::HashSet<String> =
            rows.iter().map(|r| r.get::<_, String>(0)).collect();
        Ok(codes
            .iter()
            .filter(|c| found.contains(c.as_str()))
            .cloned()
            .collect())
    }

    fn get_ticket_in(&self, orq: Orq, code: &TicketCode, venue: Option<VenueId>) -> Result<Ticket> {
        self.read(|tx| require_ticket_in(tx, orq, code, venue, false))
    }

    /// Keyset paging in code order, after `after`: `ticket_code > $5`
    /// always (`''` for the first page, below every code in the column's
    /// "C" collation), so a page without a status or activation filter is
    /// an index range scan, not a filter over the org's tickets. With one
    /// (no index covers either since 0021: a verification writes both), the
    /// org's rows are filtered in code order until a page is full, or the
    /// planner scans the table for a status few tickets have (~40 ms for
    /// none of 120,000 tickets, at fillfactor 80).
    fn list_tickets(
        &self,
        orq: Orq,
        filter: &TicketFilter,
        after: Option<&TicketCode>,
        limit: u32,
    ) -> Result<Vec<Ticket>> {
        self.read(|tx| {
            tx.query(
                &format!(
                    "SELECT {TICKET_COLUMNS} FROM tickets WHERE orq = $1 \
                     AND ($2::TEXT IS NULL OR status = $2) AND ($3::TEXT IS NULL OR activation_status = $3) \
                     AND ($4::BIGINT IS NULL OR user_id = $4) AND ticket_code > $5 \
                     AND ($7::BIGINT IS NULL OR {}) ORDER BY ticket_code LIMIT $6",
                    IN_VENUE.replace("$v", "$7")
                ),
                &[
                    &orq.0,
                    &filter.status.map(|s| s.as_str()),
                    &filter.activation_status.map(|s| s.as_str()),
                    &filter.user_id,
                    &after.map_or("", |c| c.as_str()),
                    &i64::from(limit),
                    &filter.venue_id.map(|v| v.0),
                ],
            )
            .map_err(db)?
            .iter()
            .map(ticket)
            .collect()
        })
    }

    /// `inactive → active`; activating an active ticket returns it unchanged.
    /// A caller bound to `venue` activates that venue's tickets only, decided
    /// under the ticket's lock (a reschedule or a reservation takes it too),
    /// so a reservation moved to another venue meanwhile is seen: NOT_FOUND,
    /// nothing written.
    fn activate_ticket(
        &self,
        orq: Orq,
        code: &TicketCode,
        venue: Option<VenueId>,
        now: DateTime<Utc>,
    ) -> Result<Ticket> {
        self.write(|tx| {
            require_ticket_in(tx, orq, code, venue, true)?;
            activate_in(tx, orq, code, now)
        })
    }

    fn search_tickets(
        &self,
        orq: Orq,
        query: &entrada_store::TicketQuery,
        filter: &TicketFilter,
        after: Option<&TicketCode>,
        limit: u32,
    ) -> Result<Vec<Ticket>> {
        self.search_tickets_in(orq, query, filter, after, limit)
    }

    fn cancel_ticket(
        &self,
        orq: Orq,
        code: &TicketCode,
        venue: Option<VenueId>,
        now: DateTime<Utc>,
    ) -> Result<Ticket> {
        self.cancel_ticket_in(orq, code, venue, now)
    }

    fn reissue_ticket_code(
        &self,
        orq: Orq,
        code: &TicketCode,
        venue: Option<VenueId>,
        now: DateTime<Utc>,
    ) -> Result<String> {
        self.reissue_code_in(orq, code, venue, now)
    }

    fn ticket_story(
        &self,
        orq: Orq,
        code: &TicketCode,
        venue: Option<VenueId>,
    ) -> Result<Vec<crate::domain::ticket_story::StoryEvent>> {
        self.ticket_story_in(orq, code, venue)
    }

    fn customer_tickets(&self, orq: Orq, scope: &CustomerScope, limit: u32) -> Result<Vec<Ticket>> {
        match scope {
            CustomerScope::Ticket(code) => Ok(self
                .read(|tx| load_ticket(tx, orq, code, false))?
                .into_iter()
                .collect()),
            CustomerScope::User(id) => self.read(|tx| {
                tx.query(
                    &format!(
                        "SELECT {TICKET_COLUMNS} FROM tickets WHERE orq = $1 AND user_id = $2 \
                         ORDER BY ticket_code LIMIT $3"
                    ),
                    &[&orq.0, id, &i64::from(limit)],
                )
                .map_err(db)?
                .iter()
                .map(ticket)
                .collect()
            }),
        }
    }
}
