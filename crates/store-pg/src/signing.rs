//! Signing keys, signed codes, the org's code policy, the scan service and a
//! ticket's state as its holder sees it: SQLite's `signing.rs` and
//! `ticket_state` on PostgreSQL. The org's first key is made under a
//! transaction-scoped advisory lock per org, so two instances signing the
//! first code at once make one key, not two.

use crate::conn::Tx;
use base64::Engine;
use chrono::{DateTime, SubsecRound, Utc};
use ed25519_dalek::SigningKey;

use crate::domain::signed::{
    self, AdmittedHere, CodeRefusal, KnownKey, Presented, Scanned, Screening, TicketClaims,
};
use crate::domain::{
    customer_actions, Booked, DomainError, Gate, OperatorId, Orq, Ticket, TicketCode, Verdict,
};
use crate::gate::{org_settings_in, verify_in};
use crate::reservations::reservation_of_ticket;
use crate::slots::require_slot;
use crate::tickets::require_ticket;
use crate::venues::require_venue;
use crate::{corrupt, db, ts, PgStore};
use entrada_store::{
    OrgSettings, Result, SigningKeyInfo, SigningStore, StoreError, TicketReader, TicketState,
};

/// Advisory-lock class of "the org's key is being made" (the org is the key).
const KEY_LOCK: i32 = 0x656b_6579; // 'ekey'

fn active_private_key(tx: &mut Tx<'_>, orq: Orq) -> Result<Option<(u32, SigningKey)>> {
    let row = tx
        .query_opt(
            "SELECT kid, private_key FROM signing_keys WHERE orq = $1 AND retired_at IS NULL \
             AND private_key IS NOT NULL ORDER BY kid DESC LIMIT 1",
            &[&orq.0],
        )
        .map_err(db)?;
    row.map(|r| {
        let kid = u32::try_from(r.get::<_, i64>(0)).map_err(|e| corrupt("key id", e))?;
        let bytes: [u8; 32] = r
            .get::<_, Vec<u8>>(1)
            .try_into()
            .map_err(|_| corrupt("private key", "not 32 bytes"))?;
        Ok((kid, SigningKey::from_bytes(&bytes)))
    })
    .transpose()
}

fn new_key(tx: &mut Tx<'_>, orq: Orq, now: DateTime<Utc>) -> Result<(u32, SigningKey)> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| StoreError::Randomness(e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    let kid: i64 = tx
        .query_one(
            "INSERT INTO signing_keys (orq, public_key, private_key, created_at) VALUES ($1, $2, $3, $4) RETURNING kid",
            &[&orq.0, &key.verifying_key().to_bytes().to_vec(), &seed.to_vec(), &ts(now)],
        )
        .map_err(db)?
        .get(0);
    Ok((u32::try_from(kid).map_err(|e| corrupt("key id", e))?, key))
}

fn check_key(
    tx: &mut Tx<'_>,
    orq: Orq,
    claims: &TicketClaims,
    message: &[u8],
    signature: &[u8; 64],
) -> Result<std::result::Result<(), CodeRefusal>> {
    let row = tx
        .query_opt(
            "SELECT public_key, retired_at IS NOT NULL FROM signing_keys WHERE kid = $1 AND orq = $2",
            &[&i64::from(claims.kid), &orq.0],
        )
        .map_err(db)?
        .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, bool>(1)));
    let key = row.as_ref().map(|(public_key, retired)| KnownKey {
        public_key,
        retired: *retired,
    });
    Ok(signed::check_key(claims, orq, key, message, signature))
}

fn ticket_serial(tx: &mut Tx<'_>, orq: Orq, code: &TicketCode) -> Result<Option<u32>> {
    tx.query_opt(
        "SELECT code_serial FROM tickets WHERE ticket_code = $1 AND orq = $2",
        &[&code.as_str(), &orq.0],
    )
    .map_err(db)?
    .map(|r| u32::try_from(r.get::<_, i64>(0)).map_err(|e| corrupt("code serial", e)))
    .transpose()
}

/// `ticket`'s signed code with the org's key, its serial read in `tx`.
fn sign_ticket(
    tx: &mut Tx<'_>,
    orq: Orq,
    ticket: &Ticket,
    (kid, key): &(u32, SigningKey),
) -> Result<String> {
    let serial = ticket_serial(tx, orq, &ticket.ticket_code)?
        .ok_or(DomainError::NotFound { entity: "ticket" })?;
    let claims = TicketClaims {
        kid: *kid,
        orq,
        ticket_code: ticket.ticket_code.clone(),
        serial,
        product_id: ticket.product_id,
        valid_from: None,
        valid_until: ticket.expires_at,
        venue_id: None,
        slot_id: None,
    };
    Ok(signed::sign(&claims, key))
}

/// When, and by whom, an authentic code whose ticket this database lacks
/// was let in here before (the `verifications` of such admissions).
fn admitted_not_synced(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
) -> Result<Option<AdmittedHere>> {
    Ok(tx
        .query_opt(
            "SELECT verified_at, operator_id FROM verifications WHERE orq = $1 AND ticket_code = $2 ORDER BY verified_at LIMIT 1",
            &[&orq.0, &code.as_str()],
        )
        .map_err(db)?
        .map(|r| AdmittedHere {
            at: r.get(0),
            by: r.get::<_, Option<i64>>(1).map(OperatorId),
        }))
}

/// What a scanned payload is on the server, before the ticket rules.
pub(crate) enum Screened {
    Code(TicketCode),
    Refused(Box<Verdict>),
}

impl PgStore {
    /// The org's current signing key, made on first use (one per org, even
    /// with several instances asking at once).
    pub(crate) fn signing_key(&self, orq: Orq, now: DateTime<Utc>) -> Result<(u32, SigningKey)> {
        if let Some(k) = self.read(|tx| active_private_key(tx, orq))? {
            return Ok(k);
        }
        self.write(|tx| {
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, $2::int)",
                &[&KEY_LOCK, &(orq.0 as i32)],
            )
            .map_err(db)?;
            match active_private_key(tx, orq)? {
                Some(k) => Ok(k),
                None => new_key(tx, orq, now),
            }
        })
    }

    /// A new key signs from now on; older keys keep verifying until retired.
    pub(crate) fn rotate_signing_key_in(&self, orq: Orq, now: DateTime<Utc>) -> Result<u32> {
        self.write(|tx| Ok(new_key(tx, orq, now)?.0))
    }

    /// After this, codes signed with `kid` are refused as forged.
    pub(crate) fn retire_signing_key_in(
        &self,
        orq: Orq,
        kid: u32,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND orq = $3 AND retired_at IS NULL",
                    &[&ts(now), &i64::from(kid), &orq.0],
                )
                .map_err(db)?;
            if n == 0 {
                return Err(DomainError::NotFound { entity: "signing key" }.into());
            }
            Ok(())
        })
    }

    /// Re-issues a ticket's code: every code printed before is revoked.
    pub(crate) fn reissue_code_in(
        &self,
        orq: Orq,
        code: &TicketCode,
        venue: Option<crate::domain::VenueId>,
        now: DateTime<Utc>,
    ) -> Result<String> {
        // Revokes the code's customer sessions: `revoking`.
        self.revoking(|tx| {
            crate::tickets::require_ticket_in(tx, orq, code, venue, true)?;
            tx.execute(
                "UPDATE tickets SET code_serial = code_serial + 1, updated_at = $1 WHERE ticket_code = $2 AND orq = $3",
                &[&ts(now), &code.as_str(), &orq.0],
            )
            .map_err(db)?;
            // A session opened on the old code would hand out the new one.
            tx.execute(
                "UPDATE api_tokens SET revoked_at = $1 WHERE orq = $2 AND ticket_code = $3 \
                 AND role = 'customer' AND revoked_at IS NULL",
                &[&ts(now), &orq.0, &code.as_str()],
            )
            .map_err(db)?;
            Ok(())
        })?;
        SigningStore::signed_code(self, orq, code, now)
    }

    /// Checks what a scanner read before any ticket rule: readable, signed by
    /// a known key, not revoked, presented as the org allows. The server has
    /// every ticket: an authentic code of an unknown ticket is refused as
    /// the rules refuse an unknown plain code.
    pub(crate) fn screen(&self, orq: Orq, raw: &[u8], now: DateTime<Utc>) -> Result<Screened> {
        let scanned = match signed::parse_scanned(raw) {
            Ok(s) => s,
            Err(refusal) => return Ok(Screened::Refused(Box::new(refusal.verdict(None)))),
        };
        self.read(|tx| {
            let presented = match &scanned {
                Scanned::Plain(code) => Presented::Plain(code),
                Scanned::Signed {
                    claims,
                    message,
                    signature,
                } => {
                    if let Err(refusal) = check_key(tx, orq, claims, message, signature)? {
                        return Ok(Screened::Refused(Box::new(
                            refusal.verdict(Some(&claims.ticket_code)),
                        )));
                    }
                    Presented::Signed(claims)
                }
            };
            let code = scanned.ticket_code();
            let serial = ticket_serial(tx, orq, code)?;
            let policy = org_settings_in(tx, orq)?.policy();
            Ok(
                match (signed::screen_code(presented, serial, policy), &scanned) {
                    (Screening::Refuse(v), _) => Screened::Refused(v),
                    (Screening::NotSynced, Scanned::Signed { claims, .. }) => {
                        // Authentic, but no such ticket here: what SQLite's
                        // store answers too (the amber verdict, or the refusal
                        // of a code let in before).
                        let earlier = admitted_not_synced(tx, orq, &claims.ticket_code)?;
                        Screened::Refused(Box::new(signed::screen_not_synced(claims, earlier, now)))
                    }
                    (Screening::Judge | Screening::NotSynced, _) => Screened::Code(code.clone()),
                },
            )
        })
    }
}

impl SigningStore for PgStore {
    fn ticket_state(
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
            let ticket = require_ticket(tx, orq, code, false)?;
            if !reader.sees(&ticket) {
                return Err(DomainError::NotFound { entity: "ticket" }.into());
            }
            let reservation = reservation_of_ticket(tx, orq, code)?;
            let place = match &reservation {
                Some(r) => {
                    let slot = require_slot(tx, orq, r.slot_id, false)?;
                    let venue = require_venue(tx, orq, slot.venue_id)?;
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
            let signed_code = sign_ticket(tx, orq, &ticket, &key)?;
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

    fn org_settings(&self, orq: Orq) -> Result<OrgSettings> {
        self.read(|tx| org_settings_in(tx, orq))
    }

    fn set_signed_codes_only(&self, orq: Orq, on: bool, now: DateTime<Utc>) -> Result<OrgSettings> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO org_settings (orq, signed_codes_only, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (orq) DO UPDATE SET signed_codes_only = excluded.signed_codes_only, updated_at = excluded.updated_at",
                &[&orq.0, &on, &ts(now)],
            )
            .map_err(db)?;
            org_settings_in(tx, orq)
        })
    }

    fn public_keys(&self, orq: Orq) -> Result<Vec<SigningKeyInfo>> {
        self.read(|tx| {
            tx.query(
                "SELECT kid, orq, public_key, created_at, retired_at FROM signing_keys WHERE orq = $1 ORDER BY kid",
                &[&orq.0],
            )
            .map_err(db)?
            .iter()
            .map(|r| {
                Ok(SigningKeyInfo {
                    kid: u32::try_from(r.get::<_, i64>(0)).map_err(|e| corrupt("key id", e))?,
                    orq: Orq(r.get(1)),
                    public_key: base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(r.get::<_, Vec<u8>>(2)),
                    created_at: r.get(3),
                    retired_at: r.get(4),
                })
            })
            .collect()
        })
    }

    fn signed_code(&self, orq: Orq, code: &TicketCode, now: DateTime<Utc>) -> Result<String> {
        let key = self.signing_key(orq, now)?;
        self.read(|tx| {
            let ticket = require_ticket(tx, orq, code, false)?;
            sign_ticket(tx, orq, &ticket, &key)
        })
    }

    /// What the gate says about whatever a scanner read; an ADMIT is
    /// recorded (exactly once, under the ticket's lock) before this returns.
    fn scan(
        &self,
        orq: Orq,
        raw: &[u8],
        operator: OperatorId,
        gate: &Gate,
        now: DateTime<Utc>,
    ) -> Result<Verdict> {
        let now = now.trunc_subsecs(3);
        let code = match self.screen(orq, raw, now)? {
            Screened::Code(code) => code,
            Screened::Refused(verdict) => return Ok(*verdict),
        };
        match self.write(|tx| verify_in(tx, orq, &code, operator, gate, now)) {
            Ok(v) => Ok(v),
            Err(StoreError::Domain(DomainError::Refused(v))) => Ok(*v),
            Err(e) => Err(e),
        }
    }
}
