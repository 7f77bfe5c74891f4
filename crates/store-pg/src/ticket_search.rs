//! The console's ticket search and cancel (issue 16), as the SQLite store
//! does them: see `entrada_store::TicketQuery`.

use chrono::{DateTime, Utc};

use crate::domain::ticket_story::{self, Admission, ConflictFact, StoryEvent};
use crate::domain::{Orq, Ticket, TicketCode, VenueId};
use crate::reservations::{change_booking, reservation_of_ticket};
use crate::slots::require_slot;
use crate::tickets::{require_ticket_in, ticket, IN_VENUE, TICKET_COLUMNS};
use crate::{db, ts, PgStore};
use entrada_store::{Result, TicketFilter, TicketQuery};

impl PgStore {
    /// Tickets of `orq` matching `query`, in code order after `after`. Every
    /// term is indexed (PostgreSQL answers with a BitmapOr).
    pub(crate) fn search_tickets_in(
        &self,
        orq: Orq,
        query: &TicketQuery,
        filter: &TicketFilter,
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
                     AND ($7::TEXT IS NULL OR status = $7) AND ($8::TEXT IS NULL OR activation_status = $8) \
                     AND ($9::BIGINT IS NULL OR user_id = $9) AND ($10::BIGINT IS NULL OR {}) \
                     AND ticket_code > $5 ORDER BY ticket_code LIMIT $6",
                    IN_VENUE.replace("$v", "$10")
                ),
                &[
                    &orq.0,
                    &query.text,
                    &query.order_id,
                    &query.phone,
                    &after.map_or("", |c| c.as_str()),
                    &i64::from(limit),
                    &filter.status.map(|s| s.as_str()),
                    &filter.activation_status.map(|s| s.as_str()),
                    &filter.user_id,
                    &filter.venue_id.map(|v| v.0),
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
        venue: Option<VenueId>,
        now: DateTime<Utc>,
    ) -> Result<Ticket> {
        self.write(|tx| {
            // Lock order: the ticket, then its slot. A caller bound to
            // `venue` cancels that venue's tickets only.
            let current = require_ticket_in(tx, orq, code, venue, true)?;
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

    /// A ticket's story, as the SQLite store tells it.
    pub(crate) fn ticket_story_in(
        &self,
        orq: Orq,
        code: &TicketCode,
        venue: Option<VenueId>,
    ) -> Result<Vec<StoryEvent>> {
        self.read(|tx| {
            let ticket = require_ticket_in(tx, orq, code, venue, false)?;
            let reservation = reservation_of_ticket(tx, orq, code)?;
            let admissions = tx
                .query(
                    "SELECT device_id, operator_id, verified_at, received_at, refused, overruled \
                     FROM verifications WHERE ticket_code = $1 AND orq = $2 ORDER BY verified_at, id",
                    &[&code.as_str(), &orq.0],
                )
                .map_err(db)?
                .iter()
                .map(|r| Admission {
                    device_id: r.get("device_id"),
                    operator_id: r.get("operator_id"),
                    verified_at: r.get("verified_at"),
                    received_at: r.get("received_at"),
                    refused: r.get("refused"),
                    overruled: r.get("overruled"),
                })
                .collect::<Vec<_>>();
            let conflicts = tx
                .query(
                    "SELECT kind, first_device_id, second_device_id, second_operator_id, second_at \
                     FROM sync_conflicts WHERE ticket_code = $1 AND orq = $2 ORDER BY second_at, id",
                    &[&code.as_str(), &orq.0],
                )
                .map_err(db)?
                .iter()
                .map(|r| ConflictFact {
                    kind: r.get("kind"),
                    first_device_id: r.get("first_device_id"),
                    second_device_id: r.get("second_device_id"),
                    second_operator_id: r.get("second_operator_id"),
                    second_at: r.get("second_at"),
                })
                .collect::<Vec<_>>();
            Ok(ticket_story::story(
                &ticket,
                reservation.as_ref(),
                &admissions,
                &conflicts,
            ))
        })
    }
}
