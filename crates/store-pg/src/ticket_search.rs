//! The console's ticket search and cancel (issue 16), as the SQLite store
//! does them: see `entrada_store::TicketQuery`.

use chrono::{DateTime, Utc};

use crate::domain::{Orq, Ticket, TicketCode};
use crate::reservations::{change_booking, reservation_of_ticket};
use crate::slots::require_slot;
use crate::tickets::{require_ticket, ticket, TICKET_COLUMNS};
use crate::{db, ts, PgStore};
use entrada_store::{Result, TicketQuery};

impl PgStore {
    /// Tickets of `orq` matching `query`, in code order after `after`. Every
    /// term is indexed (PostgreSQL answers with a BitmapOr).
    pub(crate) fn search_tickets_in(
        &self,
        orq: Orq,
        query: &TicketQuery,
        after: Option<&TicketCode>,
        limit: u32,
    ) -> Result<Vec<Ticket>> {
        self.read(|tx| {
            tx.query(
                &format!(
                    "SELECT {TICKET_COLUMNS} FROM tickets WHERE orq = $1 AND ( \
                     ticket_code = $2 OR order_id = $3 \
                     OR lower(customer_email) = lower($2) OR lower(purchase_email) = lower($2) \
                     OR customer_phone = $4) \
                     AND ($5::TEXT IS NULL OR ticket_code > $5) ORDER BY ticket_code LIMIT $6"
                ),
                &[
                    &orq.0,
                    &query.text,
                    &query.order_id,
                    &query.phone,
                    &after.map(|c| c.as_str()),
                    &i64::from(limit),
                ],
            )
            .map_err(db)?
            .iter()
            .map(ticket)
            .collect()
        })
    }

    /// Cancels a ticket (refund): its live reservation is cancelled too and
    /// its place freed; a ticket used at a gate stays used (domain
    /// `Ticket::plan_cancel`). Cancelling again changes nothing.
    pub(crate) fn cancel_ticket_in(
        &self,
        orq: Orq,
        code: &TicketCode,
        now: DateTime<Utc>,
    ) -> Result<Ticket> {
        self.write(|tx| {
            // Lock order: the ticket, then its slot.
            let current = require_ticket(tx, orq, code, true)?;
            let reservation = reservation_of_ticket(tx, orq, code)?;
            let cancel = current.plan_cancel(reservation.as_ref())?;
            if current.status == cancel.status
                && current.activation_status == cancel.activation_status
                && cancel.frees.is_none()
            {
                return Ok(current);
            }
            if let (Some(id), Some(r)) = (cancel.frees, &reservation) {
                let slot = require_slot(tx, orq, r.slot_id, true)?;
                change_booking(tx, &slot, -1, now)?;
                tx.execute(
                    "UPDATE ticket_reservations SET status = 'CANCELLED', updated_at = $1 WHERE id = $2",
                    &[&ts(now), &id.0],
                )
                .map_err(db)?;
            }
            let row = tx
                .query_one(
                    &format!(
                        "UPDATE tickets SET status = $1, activation_status = $2, updated_at = $3 \
                         WHERE ticket_code = $4 AND orq = $5 RETURNING {TICKET_COLUMNS}"
                    ),
                    &[
                        &cancel.status.as_str(),
                        &cancel.activation_status.as_str(),
                        &ts(now),
                        &code.as_str(),
                        &orq.0,
                    ],
                )
                .map_err(db)?;
            ticket(&row)
        })
    }
}
