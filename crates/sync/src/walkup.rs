//! A walk-up at a gate (issue 15), device side: online it goes through the
//! server's reservation path (`POST /api/sync/walkup`: a free place of the
//! slot open now, a deferred ticket activated, a ticket this replica never
//! held booked all the same); offline, or when the server has no free place
//! left, from this gate's lease (`Store::book_walkup`). Either way the
//! admission is written to the replica (and queued for upload) before the
//! verdict is returned.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::client::SyncError;
use crate::client::{blocking, read_json, SyncEngine};
use entrada_domain::venue_ops::{WalkupBooking, WalkupRequest};
use entrada_domain::{Gate, OperatorId, Orq, TicketCode, Verdict, VerdictCode};

/// How long the operator waits for the server before the lease is used: a
/// queue at the gate, not a sync round.
pub const ONLINE_WALKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// What the server said to an online walk-up.
#[derive(Debug)]
pub enum Online {
    Booked(WalkupBooking),
    /// The server refused for a reason of the ticket's (its verdict).
    Refused(Verdict),
    /// The server has no free place in a slot open now (its verdict): the
    /// lease may still have one.
    NoPlace(Verdict),
    /// The server refused this gate's token (revoked): its lease was given
    /// back to the slots, so nothing may be booked from it.
    Revoked,
    /// No answer (offline, a timeout): the lease decides.
    UseLease(String),
}

/// The server's refusal as the gate shows it: its error code as a verdict
/// code when it is one (`NO_PLACE_LEFT`, `ALREADY_RESERVED`,
/// `TICKET_CANCELLED`, …), an unknown ticket for NOT_FOUND; `None` for an
/// answer not about the ticket (the lease decides).
pub fn server_refusal(code: &str, message: &str, ticket: &TicketCode) -> Option<Verdict> {
    let verdict = match code {
        "NOT_FOUND" => VerdictCode::UnknownTicket,
        // The reservation rules' refusals of the ticket, as a gate says them.
        "TICKET_NOT_ACTIVE" => VerdictCode::NotActivated,
        "TICKET_EXPIRED" => VerdictCode::Expired,
        "TICKET_REDEEMED" => VerdictCode::AlreadyVerified,
        other => VerdictCode::parse(other)?,
    };
    let mut v = Verdict::refusal(verdict, message);
    v.ticket_code = Some(ticket.to_string());
    Some(v)
}

impl SyncEngine {
    /// The operator's walk-up of the holder of `raw` (see the module doc).
    pub async fn book_walkup(
        &self,
        orq: Orq,
        raw: Vec<u8>,
        operator: OperatorId,
        gate: Gate,
        now: DateTime<Utc>,
    ) -> Result<Verdict, SyncError> {
        let store = self.store.clone();
        let (r, g) = (raw.clone(), gate);
        let candidate = blocking(move || store.walkup_candidate(orq, &r, &g, now)).await?;
        let mut server_full = None;
        if let Some(code) = candidate {
            match self.ask_server(&code, &raw).await {
                Online::Booked(booking) => {
                    return self.admit_booked(orq, booking, operator, gate, now).await;
                }
                Online::Refused(v) => return Ok(v),
                Online::NoPlace(v) => server_full = Some(v),
                Online::Revoked => {
                    return Ok(entrada_domain::venue_ops::no_place_left(
                        &code,
                        "the server refused this gate's token (revoked?): no walk-up here",
                    ));
                }
                Online::UseLease(why) => {
                    tracing::info!(ticket = %code, %why, "walk-up: no answer from the server, the lease decides");
                }
            }
        }
        let store = self.store.clone();
        let leased = blocking(move || store.book_walkup(orq, &raw, operator, &gate, now)).await?;
        // The server had no place and the lease could not book it either
        // (none left, or a ticket this replica does not hold): the server's
        // answer is the one to show.
        Ok(match server_full {
            Some(full) if !leased.admit => full,
            _ => leased,
        })
    }

    /// Admits the holder of a ticket the server booked: into the replica
    /// as it is; a ticket (or slot) the replica does not hold yet is pulled
    /// first by a sync round (within [`ONLINE_WALKUP_TIMEOUT`]), which also
    /// brings the server's reservation.
    async fn admit_booked(
        &self,
        orq: Orq,
        booking: WalkupBooking,
        operator: OperatorId,
        gate: Gate,
        now: DateTime<Utc>,
    ) -> Result<Verdict, SyncError> {
        let apply = |booking: WalkupBooking, gate: Gate| {
            let store = self.store.clone();
            blocking(move || store.apply_online_walkup(orq, &booking, operator, &gate, now))
        };
        if let Some(v) = apply(booking.clone(), gate).await? {
            return Ok(v);
        }
        match tokio::time::timeout(ONLINE_WALKUP_TIMEOUT, self.round(|_, _| {})).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "walk-up: the pull after the booking failed"),
            Err(_) => tracing::warn!("walk-up: the pull after the booking took too long"),
        }
        let code = booking.ticket_code.clone();
        Ok(apply(booking, gate).await?.unwrap_or_else(|| {
            let mut v = Verdict::refusal(
                VerdictCode::AuthenticNotSynced,
                "Booked on the server, but this gate has not received the ticket yet: sync, then scan again",
            );
            v.ticket_code = Some(code.to_string());
            v
        }))
    }

    /// `POST /api/sync/walkup` for the scan `raw` (of `code`), within
    /// [`ONLINE_WALKUP_TIMEOUT`].
    async fn ask_server(&self, code: &TicketCode, raw: &[u8]) -> Online {
        let store = self.store.clone();
        let pairing = match blocking(move || store.pairing()).await {
            Ok(Some(p)) => p,
            Ok(None) => return Online::UseLease("not paired".into()),
            Err(e) => return Online::UseLease(e.to_string()),
        };
        let (base, http) = match self.http_for(&pairing.server_url) {
            Ok(x) => x,
            Err(e) => return Online::UseLease(e.to_string()),
        };
        let sent = http
            .post(format!("{base}/api/sync/walkup"))
            .bearer_auth(&pairing.token)
            .timeout(ONLINE_WALKUP_TIMEOUT)
            .json(&WalkupRequest {
                code: String::from_utf8_lossy(raw).into_owned(),
            })
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Online::UseLease(format!("server not reached: {e}")),
        };
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Online::Revoked;
        }
        if status.is_client_error() {
            // The server's JSON error: { "error": { "code", "message" } }.
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let field = |k: &str| body["error"][k].as_str().unwrap_or_default().to_owned();
            let (c, m) = (field("code"), field("message"));
            return match server_refusal(&c, &m, code) {
                Some(v) if v.verdict == VerdictCode::NoPlaceLeft => Online::NoPlace(v),
                Some(v) => Online::Refused(v),
                None => Online::UseLease(format!("server answered {status} {c}: {m}")),
            };
        }
        match read_json::<WalkupBooking>(response).await {
            Ok(b) if &b.ticket_code == code => Online::Booked(b),
            Ok(b) => Online::UseLease(format!(
                "the server booked another ticket ({})",
                b.ticket_code
            )),
            Err(e) => Online::UseLease(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_refusals_as_the_gate_shows_them() {
        let t = TicketCode::parse("T-1").unwrap();
        // (server code) → verdict shown, or None: the lease decides
        let cases: &[(&str, Option<VerdictCode>)] = &[
            ("NO_PLACE_LEFT", Some(VerdictCode::NoPlaceLeft)),
            ("NOT_FOUND", Some(VerdictCode::UnknownTicket)),
            ("ALREADY_RESERVED", Some(VerdictCode::AlreadyReserved)),
            ("TICKET_CANCELLED", Some(VerdictCode::TicketCancelled)),
            ("NOT_ACTIVATED", Some(VerdictCode::NotActivated)),
            ("TICKET_NOT_ACTIVE", Some(VerdictCode::NotActivated)),
            ("TICKET_EXPIRED", Some(VerdictCode::Expired)),
            ("TICKET_REDEEMED", Some(VerdictCode::AlreadyVerified)),
            ("REVOKED", Some(VerdictCode::Revoked)),
            ("INVALID_INPUT", None),
            ("RATE_LIMITED", None),
        ];
        for (code, want) in cases {
            let got = server_refusal(code, "why", &t);
            assert_eq!(got.as_ref().map(|v| v.verdict), *want, "{code}");
            if let Some(v) = got {
                assert_eq!(
                    (v.admit, v.message.as_str(), v.ticket_code.as_deref()),
                    (false, "why", Some("T-1"))
                );
            }
        }
    }
}
