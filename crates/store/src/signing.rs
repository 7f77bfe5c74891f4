//! Signing keys and signed codes: issue, rotate, retire, re-issue, and the
//! scan service that turns whatever a scanner read into a recorded verdict.

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use rusqlite::{params, OptionalExtension, Transaction};

use super::codec::ts;
use super::column::{RowExt, Sql};
use super::gate::{verify_event, verify_in, Admission};
use super::tickets::require_ticket;
use super::{Result, Store, StoreError};
use crate::domain::signed::{
    self, AdmittedHere, CodePolicy, CodeRefusal, KnownKey, Presented, Scanned, Screening,
    TicketClaims,
};
use crate::domain::{DomainError, Gate, OperatorId, Orq, Ticket, TicketCode, Verdict, VerdictCode};

/// A public key as devices receive it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SigningKeyInfo {
    pub kid: u32,
    pub orq: Orq,
    /// 32 bytes, base64url.
    pub public_key: String,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

fn active_private_key(tx: &Transaction<'_>, orq: Orq) -> Result<Option<(u32, SigningKey)>> {
    let row: Option<(u32, Vec<u8>)> = tx
        .prepare_cached(
            "SELECT kid, private_key FROM signing_keys WHERE orq = ?1 AND retired_at IS NULL \
             AND private_key IS NOT NULL ORDER BY kid DESC LIMIT 1",
        )?
        .query_row([Sql(orq)], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.and_then(|(kid, bytes)| {
        let bytes: [u8; 32] = bytes.try_into().ok()?;
        Some((kid, SigningKey::from_bytes(&bytes)))
    }))
}

fn new_key(tx: &Transaction<'_>, orq: Orq, now: DateTime<Utc>) -> Result<(u32, SigningKey)> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| StoreError::Randomness(e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    tx.execute(
        "INSERT INTO signing_keys (orq, public_key, private_key, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![Sql(orq), key.verifying_key().to_bytes().to_vec(), seed.to_vec(), ts(now)],
    )?;
    Ok((tx.last_insert_rowid() as u32, key))
}

/// Why a signed code is refused before any ticket rule: the key's word
/// (`signed::check_key`) on the key its `kid` names in this org.
fn check_key(
    tx: &Transaction<'_>,
    orq: Orq,
    claims: &TicketClaims,
    message: &[u8],
    signature: &[u8; 64],
) -> Result<Result<(), CodeRefusal>> {
    let row: Option<(Vec<u8>, bool)> = tx
        .prepare_cached(
            "SELECT public_key, retired_at IS NOT NULL FROM signing_keys WHERE kid = ?1 AND orq = ?2",
        )?
        .query_row(params![claims.kid, Sql(orq)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let key = row.as_ref().map(|(public_key, retired)| KnownKey {
        public_key,
        retired: *retired,
    });
    Ok(signed::check_key(claims, orq, key, message, signature))
}

/// What a scanned payload is, before the ticket rules.
pub(crate) enum Screened {
    /// A ticket code to judge (plain, or signed and checked).
    Code(TicketCode),
    /// Authentic and signed, but the replica has no such ticket (amber).
    NotSynced(Box<Verdict>),
    /// Unreadable, forged, revoked, or let in here already.
    Refused(Box<Verdict>),
}

/// When, and by whom, an operator here let in an authentic code whose
/// ticket this replica does not have yet (device side of `verifications`).
fn admitted_not_synced(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
) -> Result<Option<AdmittedHere>> {
    Ok(tx
        .prepare_cached(
            "SELECT verified_at, operator_id FROM verifications WHERE orq = ?1 AND ticket_code = ?2 ORDER BY verified_at LIMIT 1",
        )?
        .query_row(params![Sql(orq), Sql(code)], |r| {
            Ok(AdmittedHere {
                at: r.get::<_, super::codec::Ts>(0)?.0,
                by: r.get::<_, Option<i64>>(1)?.map(OperatorId),
            })
        })
        .optional()?)
}

/// The serial of the ticket's current code, if this database has the ticket.
fn ticket_serial(tx: &Transaction<'_>, orq: Orq, code: &TicketCode) -> Result<Option<u32>> {
    Ok(tx
        .prepare_cached("SELECT code_serial FROM tickets WHERE ticket_code = ?1 AND orq = ?2")?
        .query_row(params![Sql(&code), Sql(orq)], |r| r.get(0))
        .optional()?)
}

/// How the org lets codes be presented (the default until an admin sets it).
pub(crate) fn code_policy(tx: &Transaction<'_>, orq: Orq) -> Result<CodePolicy> {
    Ok(org_settings_in(tx, orq)?.policy())
}

fn org_settings_in(tx: &Transaction<'_>, orq: Orq) -> Result<OrgSettings> {
    let row: Option<(bool, super::codec::Ts)> = tx
        .prepare_cached("SELECT signed_codes_only, updated_at FROM org_settings WHERE orq = ?1")?
        .query_row([Sql(orq)], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        Some((signed_codes_only, at)) => OrgSettings {
            orq,
            signed_codes_only,
            updated_at: Some(at.0),
        },
        None => OrgSettings {
            orq,
            signed_codes_only: false,
            updated_at: None,
        },
    })
}

/// A plain code typed at the server (validate, verify): refused, with the
/// verdict to show, if the org takes signed codes only or the ticket's code
/// was re-issued; `None` if the ticket rules judge it.
pub(crate) fn screen_plain(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
) -> Result<Option<Verdict>> {
    let serial = ticket_serial(tx, orq, code)?;
    Ok(
        match signed::screen_code(Presented::Plain(code), serial, code_policy(tx, orq)?) {
            Screening::Refuse(v) => Some(*v),
            Screening::Judge | Screening::NotSynced => None,
        },
    )
}

/// An org's settings as admins see and set them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct OrgSettings {
    pub orq: Orq,
    /// Plain ticket codes are refused (SIGNED_CODE_REQUIRED) at every gate
    /// and on the server; only signed QR codes admit.
    pub signed_codes_only: bool,
    /// When an admin last changed them (never: the defaults).
    pub updated_at: Option<DateTime<Utc>>,
}

impl OrgSettings {
    pub fn policy(&self) -> CodePolicy {
        CodePolicy {
            signed_codes_only: self.signed_codes_only,
        }
    }
}

impl Store {
    /// The org's settings (defaults until an admin changes one).
    pub fn org_settings(&self, orq: Orq) -> Result<OrgSettings> {
        self.read(|tx| org_settings_in(tx, orq))
    }

    /// Turns "signed codes only" on or off for the org; gates follow with
    /// their next sync.
    pub fn set_signed_codes_only(
        &self,
        orq: Orq,
        on: bool,
        now: DateTime<Utc>,
    ) -> Result<OrgSettings> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO org_settings (orq, signed_codes_only, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (orq) DO UPDATE SET signed_codes_only = excluded.signed_codes_only, updated_at = excluded.updated_at",
                params![Sql(orq), on, ts(now)],
            )?;
            org_settings_in(tx, orq)
        })
    }
}

/// `ticket`'s signed code with the org's key `(kid, key)`; its serial is read
/// in `tx`, the transaction `ticket` was read in.
pub(crate) fn sign_ticket(
    tx: &Transaction<'_>,
    orq: Orq,
    ticket: &Ticket,
    (kid, key): &(u32, SigningKey),
) -> Result<String> {
    let serial: u32 = tx
        .prepare_cached("SELECT code_serial FROM tickets WHERE ticket_code = ?1 AND orq = ?2")?
        .query_row(params![Sql(&ticket.ticket_code), Sql(orq)], |r| r.get(0))?;
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

impl Store {
    /// The org's current signing key, created on first use.
    pub(crate) fn signing_key(&self, orq: Orq, now: DateTime<Utc>) -> Result<(u32, SigningKey)> {
        self.write(|tx| match active_private_key(tx, orq)? {
            Some(k) => Ok(k),
            None => new_key(tx, orq, now),
        })
    }

    /// A new key signs from now on; older keys keep verifying until retired.
    pub fn rotate_signing_key(&self, orq: Orq, now: DateTime<Utc>) -> Result<u32> {
        self.write(|tx| Ok(new_key(tx, orq, now)?.0))
    }

    /// After this, codes signed with `kid` are refused as forged.
    pub fn retire_signing_key(&self, orq: Orq, kid: u32, now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE signing_keys SET retired_at = ?1 WHERE kid = ?2 AND orq = ?3 AND retired_at IS NULL",
                params![ts(now), kid, Sql(orq)],
            )?;
            if n == 0 {
                return Err(DomainError::NotFound { entity: "signing key" }.into());
            }
            Ok(())
        })
    }

    /// The org's public keys (retired ones included, so devices know them).
    pub fn public_keys(&self, orq: Orq) -> Result<Vec<SigningKeyInfo>> {
        use base64::Engine;
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT kid, orq, public_key, created_at, retired_at FROM signing_keys WHERE orq = ?1 ORDER BY kid",
            )?;
            let rows = stmt.query_map([Sql(orq)], |r| {
                Ok(SigningKeyInfo {
                    kid: r.get(0)?,
                    orq: r.col(1)?,
                    public_key: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r.get::<_, Vec<u8>>(2)?),
                    created_at: r.get::<_, super::codec::Ts>(3)?.0,
                    retired_at: r.get::<_, Option<super::codec::Ts>>(4)?.map(|t| t.0),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// The signed code to print on (or show for) a ticket.
    pub fn signed_code(&self, orq: Orq, code: &TicketCode, now: DateTime<Utc>) -> Result<String> {
        let key = self.signing_key(orq, now)?;
        self.read(|tx| sign_ticket(tx, orq, &require_ticket(tx, orq, code)?, &key))
    }

    /// Re-issues a ticket's code: every code printed before is revoked.
    pub fn reissue_code(&self, orq: Orq, code: &TicketCode, now: DateTime<Utc>) -> Result<String> {
        self.reissue_code_in(orq, code, None, now)
    }

    /// `reissue_code` for a caller bound to `venue`: another venue's ticket
    /// is NOT_FOUND, checked in the write transaction.
    pub(crate) fn reissue_code_in(
        &self,
        orq: Orq,
        code: &TicketCode,
        venue: Option<crate::domain::VenueId>,
        now: DateTime<Utc>,
    ) -> Result<String> {
        self.write(|tx| {
            super::tickets::require_ticket_in(tx, orq, code, venue)?;
            tx.execute(
                "UPDATE tickets SET code_serial = code_serial + 1, updated_at = ?1 WHERE ticket_code = ?2",
                params![ts(now), Sql(&code)],
            )?;
            // A session opened on the old code would hand out the new one.
            tx.execute(
                "UPDATE api_tokens SET revoked_at = ?1 WHERE orq = ?2 AND ticket_code = ?3 \
                 AND role = 'customer' AND revoked_at IS NULL",
                params![ts(now), Sql(orq), Sql(&code)],
            )?;
            Ok(())
        })?;
        self.signed_code(orq, code, now)
    }

    /// What the gate says about whatever a scanner read; an ADMIT is recorded
    /// (durably) as a verification by `operator` before this returns.
    pub fn scan(
        &self,
        orq: Orq,
        raw: &[u8],
        operator: OperatorId,
        gate: &Gate,
        now: DateTime<Utc>,
    ) -> Result<Verdict> {
        self.admit_scanned(orq, raw, operator, gate, now, Admission::ByRules)
    }

    /// The operator lets in the holder of the amber verdict `shown` (an
    /// authentic code this replica has no ticket for yet, a holder early or
    /// late): recorded like any admission — durably, with its outbox event —
    /// and marked as overruled. If the verdict is another by now (the ticket
    /// arrived, the slot began), it is answered as [`Store::scan`] would: an
    /// ADMIT is recorded, anything else is shown afresh; a red refusal is
    /// never the operator's to overrule.
    pub fn admit_by_decision(
        &self,
        orq: Orq,
        raw: &[u8],
        shown: VerdictCode,
        operator: OperatorId,
        gate: &Gate,
        now: DateTime<Utc>,
    ) -> Result<Verdict> {
        self.admit_scanned(
            orq,
            raw,
            operator,
            gate,
            now,
            Admission::ByOperatorDecision(shown),
        )
    }

    fn admit_scanned(
        &self,
        orq: Orq,
        raw: &[u8],
        operator: OperatorId,
        gate: &Gate,
        now: DateTime<Utc>,
        admission: Admission,
    ) -> Result<Verdict> {
        let now = chrono::SubsecRound::trunc_subsecs(now, 3);
        let code = match self.screen(orq, raw, now)? {
            Screened::Code(code) => code,
            Screened::NotSynced(verdict)
                if admission == Admission::ByOperatorDecision(VerdictCode::AuthenticNotSynced) =>
            {
                return match self.admit_not_synced(orq, *verdict, operator, gate, now)? {
                    Some(decided) => Ok(decided),
                    // The ticket arrived since the amber verdict: the rules
                    // judge it now, and the operator sees that verdict.
                    None => self.admit_scanned(orq, raw, operator, gate, now, Admission::ByRules),
                };
            }
            Screened::NotSynced(verdict) | Screened::Refused(verdict) => return Ok(*verdict),
        };
        match self.write(|tx| verify_in(tx, orq, &code, operator, gate, now, admission)) {
            Ok(v) => Ok(v),
            Err(StoreError::Domain(DomainError::Refused(v))) => Ok(*v),
            Err(e) => Err(e),
        }
    }

    /// Checks what a scanner read before any ticket rule: readable, signed by
    /// a known key, not revoked, presented as the org allows (`screen_code`),
    /// and a ticket this replica has.
    pub(crate) fn screen(&self, orq: Orq, raw: &[u8], now: DateTime<Utc>) -> Result<Screened> {
        let scanned = match signed::parse_scanned(raw) {
            Ok(s) => s,
            Err(refusal) => return Ok(Screened::Refused(Box::new(refusal.verdict(None)))),
        };
        self.read(|tx| {
            let (presented, claims) = match &scanned {
                Scanned::Plain(code) => (Presented::Plain(code), None),
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
                    (Presented::Signed(claims), Some(claims))
                }
            };
            let code = scanned.ticket_code();
            let serial = ticket_serial(tx, orq, code)?;
            Ok(
                match (
                    signed::screen_code(presented, serial, code_policy(tx, orq)?),
                    claims,
                ) {
                    (Screening::Refuse(v), _) => Screened::Refused(v),
                    (Screening::NotSynced, Some(claims)) => {
                        // Authentic, but this replica has no such ticket yet.
                        let earlier = admitted_not_synced(tx, orq, &claims.ticket_code)?;
                        let v = signed::screen_not_synced(claims, earlier, now);
                        if v.verdict.needs_operator_decision() {
                            Screened::NotSynced(Box::new(v))
                        } else {
                            Screened::Refused(Box::new(v))
                        }
                    }
                    (Screening::Judge | Screening::NotSynced, _) => Screened::Code(code.clone()),
                },
            )
        })
    }

    /// An operator lets in the holder of an authentic code whose ticket has
    /// not reached this replica: the admission is kept here (so the code is
    /// not let in twice before the ticket arrives) and queued for the server,
    /// which records it against its ticket. `None` if the ticket arrived
    /// meanwhile (nothing written: the caller judges it afresh).
    fn admit_not_synced(
        &self,
        orq: Orq,
        verdict: Verdict,
        operator: OperatorId,
        gate: &Gate,
        now: DateTime<Utc>,
    ) -> Result<Option<Verdict>> {
        let Some(code) = verdict
            .ticket_code
            .as_deref()
            .map(TicketCode::parse)
            .transpose()?
        else {
            return Ok(Some(verdict));
        };
        let written = self.write(|tx| {
            if super::tickets::load_ticket(tx, orq, &code)?.is_some() {
                return Ok(None);
            }
            let earlier = admitted_not_synced(tx, orq, &code)?;
            let admitted = signed::admit_not_synced(verdict, &code, earlier, operator, now)
                .map_err(DomainError::Refused)?;
            tx.execute(
                "INSERT INTO verifications (orq, ticket_code, operator_id, verified_at, received_at, overruled) VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
                params![Sql(orq), Sql(&code), Sql(operator), ts(now), VerdictCode::AuthenticNotSynced.code()],
            )?;
            let payload = verify_event(&code, gate, &admitted);
            super::sync::record_local_event(tx, "verify", "tickets", code.as_str(), payload, Some(operator), now)?;
            Ok(Some(admitted))
        });
        match written {
            Ok(v) => Ok(v),
            Err(StoreError::Domain(DomainError::Refused(v))) => Ok(Some(*v)),
            Err(e) => Err(e),
        }
    }
}
