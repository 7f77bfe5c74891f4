//! Gate to gate (issue 14), in SQL. Server side: each device's public key
//! and the list of its venue's other gates. Device side: the gate's own key
//! pair, its peers, the signed events it sends (its outbox) and receives
//! (`lan_events`, each once), and the per-peer cursor of what a peer has.

use chrono::{DateTime, SubsecRound, Utc};
use ed25519_dalek::SigningKey;
use rusqlite::{params, OptionalExtension, Transaction};

use crate::codec::{ts, Ts};
use crate::domain::sync::lan::{self, LanRefusal, PeerKey, SignedEvent};
use crate::domain::sync::protocol::{DeviceInfo, Event};
use crate::domain::{enter, DomainError, Entry, OperatorId, Orq, TicketCode};
use crate::reservations::reservation_of_ticket;
use crate::tickets::{load_ticket, write_use};
use crate::{Result, Store, StoreError};

/// Peers a gate keeps at most (a venue has tens of gates, not thousands).
pub const MAX_PEERS: usize = 256;

/// What receiving a peer's event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// New: recorded, and applied to the replica when it is an admission
    /// this gate had not seen.
    Applied,
    /// Seen before (a replay, or this gate's own event): nothing changed.
    Duplicate,
    /// Nothing for this gate to keep: an event of a kind the replica does
    /// not take from peers (only admissions and their undo), or one older
    /// than the hold window (`PEER_HOLD_HOURS`: it would be released at
    /// once, and its record may already be pruned), or one dated more than
    /// `PEER_CLOCK_SKEW_MINUTES` ahead of this gate's clock (it could never
    /// be pruned). Nothing changed.
    Ignored,
    /// Not accepted: nothing changed.
    Refused(LanRefusal),
}

/// A listed peer as the sync screen shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PeerStatus {
    pub device_id: i64,
    pub name: String,
    pub public_key: String,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub received: i64,
    pub sent: i64,
}

/// The gate's key pair, made when it is first paired (on the gate; only
/// the public half is ever sent).
pub(super) fn ensure_device_key(tx: &Transaction<'_>) -> Result<()> {
    let has: bool = tx.query_row(
        "SELECT device_key IS NOT NULL FROM device_identity",
        [],
        |r| r.get(0),
    )?;
    if !has {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| StoreError::Randomness(e.to_string()))?;
        tx.execute(
            "UPDATE device_identity SET device_key = ?1",
            [seed.to_vec()],
        )?;
    }
    Ok(())
}

/// A paired gate's device id, org, venue and key pair (None before it has one).
type Identity = (i64, i64, i64, Option<SigningKey>);

/// The gate's identity and key, when it is paired.
fn identity(tx: &Transaction<'_>) -> Result<Option<Identity>> {
    Ok(tx
        .prepare_cached("SELECT device_id, orq, venue_id, device_key FROM device_identity")?
        .query_row([], |r| {
            let key: Option<Vec<u8>> = r.get(3)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                key.and_then(|k| <[u8; 32]>::try_from(k).ok())
                    .map(|k| SigningKey::from_bytes(&k)),
            ))
        })
        .optional()?)
}

/// The signature of an outbox event being committed (None on a gate paired
/// before keys existed, until its next pairing or round makes one).
pub(super) fn sign_local_event(tx: &Transaction<'_>, event: &Event) -> Result<Option<String>> {
    Ok(match identity(tx)? {
        Some((device, orq, venue, Some(key))) => {
            Some(lan::sign(&key, device, orq, venue, event).signature)
        }
        _ => None,
    })
}

/// The outbox's device time as it reads back (milliseconds), so the
/// signature covers what is sent.
pub(super) fn stored_time(now: DateTime<Utc>) -> DateTime<Utc> {
    now.trunc_subsecs(3)
}

fn peers_in(tx: &Transaction<'_>) -> Result<Vec<PeerKey>> {
    let mut stmt =
        tx.prepare_cached("SELECT device_id, name, public_key FROM lan_peers ORDER BY device_id")?;
    let rows = stmt.query_map([], |r| {
        Ok(PeerKey {
            device_id: r.get(0)?,
            name: r.get(1)?,
            public_key: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

impl Store {
    // ---- server side ----

    /// Registers `device`'s public key (its token is its credential: a
    /// re-paired gate replaces its key) and lists the other non-revoked
    /// gates of its venue and org that have one.
    pub fn register_device_key(
        &self,
        device: &DeviceInfo,
        public_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<PeerKey>> {
        let _ = now;
        if lan::parse_public_key(public_key).is_none() {
            return Err(DomainError::invalid(
                "public_key",
                "64 hex characters of an Ed25519 public key",
            )
            .into());
        }
        let key = public_key.to_ascii_lowercase();
        self.write(|tx| {
            // One live gate per key (unique index, migration 0018): another
            // gate's key is refused, not taken over.
            tx.execute(
                "UPDATE devices SET public_key = ?1 WHERE id = ?2 AND orq = ?3 AND revoked_at IS NULL",
                params![key, device.device_id, device.orq],
            )
            .map_err(|e| crate::on_constraint(e, DomainError::DuplicateDeviceKey))?;
            let mut stmt = tx.prepare_cached(
                "SELECT id, name, public_key FROM devices WHERE orq = ?1 AND venue_id = ?2 AND id <> ?3 \
                 AND revoked_at IS NULL AND public_key IS NOT NULL ORDER BY id LIMIT ?4",
            )?;
            let rows = stmt.query_map(params![device.orq, device.venue_id, device.device_id, MAX_PEERS as i64], |r| {
                Ok(PeerKey { device_id: r.get(0)?, name: r.get(1)?, public_key: r.get(2)? })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    // ---- device side ----

    /// This gate's public key (hex), making its key pair if it has none yet.
    pub fn device_public_key(&self) -> Result<Option<String>> {
        self.write(|tx| {
            if !super::devices::is_device(tx)? {
                return Ok(None);
            }
            ensure_device_key(tx)?;
            Ok(identity(tx)?
                .and_then(|(_, _, _, k)| k)
                .map(|k| lan::public_key_hex(&k)))
        })
    }

    /// This gate's public key (hex) as stored now, making none (a read:
    /// the LAN exchange asks every second whether the gate was paired again).
    pub fn stored_device_public_key(&self) -> Result<Option<String>> {
        self.read(|tx| {
            Ok(identity(tx)?
                .and_then(|(_, _, _, k)| k)
                .map(|k| lan::public_key_hex(&k)))
        })
    }

    /// This gate's key pair, for the LAN link's authentication (it stays
    /// on this machine: the link proves it, never sends it).
    pub fn device_signing_key(&self) -> Result<Option<SigningKey>> {
        self.device_public_key()?;
        self.read(|tx| Ok(identity(tx)?.and_then(|(_, _, _, k)| k)))
    }

    /// The peers as the server listed them (their keys pin the LAN link).
    pub fn peer_keys(&self) -> Result<Vec<PeerKey>> {
        self.read(peers_in)
    }

    /// Replaces the peer list with the server's (a gate that dropped out,
    /// revoked, is forgotten with its cursor).
    pub fn set_peers(&self, peers: &[PeerKey]) -> Result<()> {
        self.write(|tx| {
            let keep: Vec<i64> = peers.iter().take(MAX_PEERS).map(|p| p.device_id).collect();
            let listed = serde_json::to_string(&keep).unwrap_or_default();
            tx.execute("DELETE FROM lan_peers WHERE device_id NOT IN (SELECT value FROM json_each(?1))", [listed])?;
            // A revoked gate's admissions held on this replica end with it.
            release_peer_holds(tx, None)?;
            for p in peers.iter().take(MAX_PEERS) {
                if lan::parse_public_key(&p.public_key).is_none() {
                    continue;
                }
                tx.execute(
                    "INSERT INTO lan_peers (device_id, name, public_key) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (device_id) DO UPDATE SET name = excluded.name, public_key = excluded.public_key, \
                     sent_cursor = CASE WHEN lan_peers.public_key = excluded.public_key THEN lan_peers.sent_cursor END, \
                     sent_seq = CASE WHEN lan_peers.public_key = excluded.public_key THEN lan_peers.sent_seq END",
                    params![p.device_id, p.name, p.public_key],
                )?;
            }
            Ok(())
        })
    }

    pub fn lan_peers(&self) -> Result<Vec<PeerStatus>> {
        self.read(|tx| {
            let mut stmt = tx.prepare("SELECT device_id, name, public_key, last_seen_at, received, sent FROM lan_peers ORDER BY device_id")?;
            let rows = stmt.query_map([], |r| {
                Ok(PeerStatus {
                    device_id: r.get(0)?,
                    name: r.get(1)?,
                    public_key: r.get(2)?,
                    last_seen_at: r.get::<_, Option<Ts>>(3)?.map(|t| t.0),
                    received: r.get(4)?,
                    sent: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// This gate's own signed events a peer has not confirmed, oldest
    /// first, at most `limit` (events from before keys existed are skipped).
    /// [`StoreError::NotAPeer`] for a gate no longer listed (revoked: its
    /// row and cursor are gone), so that its link ends instead of sending
    /// everything again from the start.
    pub fn events_for_peer(&self, peer: i64, limit: u32) -> Result<Vec<SignedEvent>> {
        self.read(|tx| {
            let Some((device, orq, venue, _)) = identity(tx)? else {
                return Ok(Vec::new());
            };
            // The cursor is the outbox's rowid (insertion order): event ids
            // (UUID v7) from another process in the same millisecond or after
            // a clock step back would sort below it and never be sent.
            let cursor: Option<i64> = tx
                .query_row(
                    "SELECT sent_seq FROM lan_peers WHERE device_id = ?1",
                    [peer],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or(StoreError::NotAPeer(peer))?;
            let mut stmt = tx.prepare_cached(
                "SELECT event_id, kind, payload, operator_id, device_time, signature FROM outbox \
                 WHERE signature IS NOT NULL AND rowid > coalesce(?1, 0) ORDER BY rowid LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![cursor, limit], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Ts>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, kind, payload, operator_id, device_time, signature) = row?;
                let Ok(event_id) = uuid::Uuid::parse_str(&id) else {
                    continue;
                };
                out.push(SignedEvent {
                    origin_device_id: device,
                    orq,
                    venue_id: venue,
                    event: Event {
                        event_id,
                        kind,
                        payload: serde_json::from_str(&payload).unwrap_or_default(),
                        operator_id,
                        device_time: device_time.0,
                    },
                    signature,
                });
            }
            Ok(out)
        })
    }

    /// The newest signed event of this gate's outbox (its id), for the
    /// exchange's one look that wakes every peer's sender.
    pub fn newest_signed_event(&self) -> Result<Option<String>> {
        self.read(|tx| {
            Ok(tx
                .prepare_cached(
                    "SELECT event_id FROM outbox WHERE signature IS NOT NULL ORDER BY rowid DESC LIMIT 1",
                )?
                .query_row([], |r| r.get(0))
                .optional()?)
        })
    }

    /// A peer confirmed every event up to `event_id`;
    /// [`StoreError::NotAPeer`] for a gate no longer listed.
    pub fn peer_confirmed(
        &self,
        peer: i64,
        event_id: uuid::Uuid,
        count: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(|tx| {
            let listed = tx
                .prepare_cached("SELECT 1 FROM lan_peers WHERE device_id = ?1")?
                .exists([peer])?;
            if !listed {
                return Err(StoreError::NotAPeer(peer));
            }
            tx.execute(
                "UPDATE lan_peers SET sent_seq = (SELECT rowid FROM outbox WHERE event_id = ?1), \
                 sent = sent + ?2, last_seen_at = ?3 \
                 WHERE device_id = ?4 AND coalesce(sent_seq, 0) < (SELECT rowid FROM outbox WHERE event_id = ?1)",
                params![event_id.to_string(), count, ts(now), peer],
            )?;
            Ok(())
        })
    }

    /// A peer answered (seen, reachable).
    pub fn peer_seen(&self, peer: i64, now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE lan_peers SET last_seen_at = ?1 WHERE device_id = ?2",
                params![ts(now), peer],
            )?;
            Ok(())
        })
    }

    /// A peer's signed event: checked (`lan::check` against the synced
    /// peer list, this gate's org and venue), recorded once by event id,
    /// and, for an admission, applied to the replica like a pulled change:
    /// no outbox entry (the origin uploads it), the ticket used by the
    /// origin's operator at the origin's time. A ticket this gate admitted
    /// itself meanwhile keeps its own admission (the server makes the
    /// double entry of the two uploads).
    pub fn receive_peer_event(&self, signed: &SignedEvent, now: DateTime<Utc>) -> Result<Received> {
        self.write(|tx| {
            let Some((me, orq, venue, _)) = identity(tx)? else {
                return Ok(Received::Refused(LanRefusal::UnknownSender));
            };
            if signed.origin_device_id == me {
                return Ok(Received::Duplicate);
            }
            let peers = peers_in(tx)?;
            if let Err(refusal) = lan::check(signed, orq, venue, &peers) {
                return Ok(Received::Refused(refusal));
            }
            let event = &signed.event;
            // Only admissions and their undo are kept, and only within the
            // hold window: `lan_events` stays bounded (pruned past it), and
            // a replay older than what it remembers changes nothing.
            if !matches!(event.kind.as_str(), "verify" | "undo")
                || event.device_time <= now - chrono::Duration::hours(PEER_HOLD_HOURS)
                || event.device_time > now + chrono::Duration::minutes(PEER_CLOCK_SKEW_MINUTES)
            {
                tx.execute(
                    "UPDATE lan_peers SET last_seen_at = ?1 WHERE device_id = ?2",
                    params![ts(now), signed.origin_device_id],
                )?;
                return Ok(Received::Ignored);
            }
            let ticket = event.payload.get("ticket_code").and_then(|v| v.as_str()).unwrap_or("").to_owned();
            let inserted = tx.execute(
                "INSERT INTO lan_events (event_id, origin_device_id, kind, entity_id, event, signature, received_at, outcome) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'received') ON CONFLICT (event_id) DO NOTHING",
                params![
                    event.event_id.to_string(),
                    signed.origin_device_id,
                    event.kind,
                    ticket,
                    serde_json::to_string(event).unwrap_or_default(),
                    signed.signature,
                    ts(now)
                ],
            )?;
            tx.execute(
                "UPDATE lan_peers SET last_seen_at = ?1, received = received + ?2 WHERE device_id = ?3",
                params![ts(now), inserted as i64, signed.origin_device_id],
            )?;
            if inserted == 0 {
                return Ok(Received::Duplicate);
            }
            if event.kind == "verify" {
                let outcome = apply_peer_admission(tx, Orq(orq), &ticket, event, now)?;
                tx.execute("UPDATE lan_events SET outcome = ?1 WHERE event_id = ?2", params![outcome, event.event_id.to_string()])?;
            } else if event.kind == "undo" {
                let outcome = apply_peer_undo(tx, Orq(orq), signed.origin_device_id, &ticket, now)?;
                tx.execute("UPDATE lan_events SET outcome = ?1 WHERE event_id = ?2", params![outcome, event.event_id.to_string()])?;
            }
            Ok(Received::Applied)
        })
    }

    /// Whether a ticket was admitted by a peer and the server's view of it
    /// has not caught up (used by the pull to keep the peer's admission).
    pub fn peer_admitted(&self, code: &str, now: DateTime<Utc>) -> Result<bool> {
        self.read(|tx| peer_admitted_in(tx, code, now))
    }
}

/// The admissions of `code` this replica knows with the gate that made
/// each: its own (the outbox, under this gate's name) and those listed
/// peers sent over the LAN. Empty off a paired gate (the server).
pub(crate) fn known_admissions(
    tx: &Transaction<'_>,
    code: &str,
) -> Result<Vec<lan::KnownAdmission>> {
    let mut stmt = tx.prepare_cached(
        "SELECT p.name, json_extract(e.event, '$.device_time'), json_extract(e.event, '$.operator_id') \
         FROM lan_events e JOIN lan_peers p ON p.device_id = e.origin_device_id \
         WHERE e.kind = 'verify' AND e.entity_id = ?1 \
         UNION ALL \
         SELECT d.name, o.device_time, o.operator_id FROM outbox o, device_identity d \
         WHERE o.kind = 'verify' AND o.entity_id = ?1",
    )?;
    let rows = stmt.query_map([code], |r| {
        Ok(lan::KnownAdmission {
            gate: r.get(0)?,
            at: r.get::<_, Ts>(1)?.0,
            operator: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How long a peer's admission is held against a server row without a
/// verification (the origin has not uploaded yet). After it, or once the
/// origin is no longer a listed peer (revoked), or when the origin undoes
/// it, the replica drops it: a gate that never uploads cannot keep a ticket
/// used on the others.
pub const PEER_HOLD_HOURS: i64 = 12;

/// How far ahead of this gate's clock a peer's event may be dated. A later
/// one is ignored: its record could not be pruned (pruning waits until the
/// event is older than the hold window), so a listed gate could grow
/// `lan_events` without bound with events dated years ahead. Gates' clocks
/// are kept by NTP and checked against the server's at each sync.
pub const PEER_CLOCK_SKEW_MINUTES: i64 = 60;

pub(super) fn peer_admitted_in(
    tx: &Transaction<'_>,
    code: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM lan_events e JOIN lan_peers p ON p.device_id = e.origin_device_id \
             WHERE e.kind = 'verify' AND e.entity_id = ?1 AND e.outcome = 'applied' AND e.received_at > ?2)",
        )?
        .query_row(params![code, ts(now - chrono::Duration::hours(PEER_HOLD_HOURS))], |r| r.get(0))?)
}

/// The tickets with a peer's admission not yet settled (`outcome =
/// 'applied'`), each with whether it is held now as [`peer_admitted_in`]
/// answers it: one query for a whole pulled page instead of one per ticket.
pub(super) fn peer_admissions(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
) -> Result<std::collections::HashMap<String, bool>> {
    let mut stmt = tx.prepare_cached(
        "SELECT e.entity_id, coalesce(max(EXISTS (SELECT 1 FROM lan_peers p WHERE p.device_id = e.origin_device_id) \
                                        AND e.received_at > ?1), 0) \
         FROM lan_events e WHERE e.kind = 'verify' AND e.outcome = 'applied' GROUP BY e.entity_id",
    )?;
    let rows = stmt.query_map([ts(now - chrono::Duration::hours(PEER_HOLD_HOURS))], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Applies again the held peer admission of `code` (the newest one still
/// held) to a ticket row that lost it: a reset feed dropped and resent the
/// replica's rows, the hold (`lan_events`) outlived them.
pub(super) fn reapply_peer_hold(
    tx: &Transaction<'_>,
    code: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some((_, orq, _, _)) = identity(tx)? else {
        return Ok(());
    };
    let held: Option<String> = tx
        .prepare_cached(
            "SELECT e.event FROM lan_events e JOIN lan_peers p ON p.device_id = e.origin_device_id \
             WHERE e.kind = 'verify' AND e.entity_id = ?1 AND e.outcome = 'applied' AND e.received_at > ?2 \
             ORDER BY e.received_at DESC LIMIT 1",
        )?
        .query_row(
            params![code, ts(now - chrono::Duration::hours(PEER_HOLD_HOURS))],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(event) = held.and_then(|e| serde_json::from_str::<Event>(&e).ok()) {
        apply_peer_admission(tx, Orq(orq), code, &event, now)?;
    }
    Ok(())
}

/// The server's row for `code` has a verification: it judged the ticket,
/// so a peer's admission of it is no longer held (nor ever reverted).
pub(super) fn settle_peer_admissions(tx: &Transaction<'_>, code: &str) -> Result<()> {
    tx.prepare_cached(
        "UPDATE lan_events SET outcome = 'settled' WHERE kind = 'verify' AND entity_id = ?1 AND outcome = 'applied'",
    )?
    .execute([code])?;
    Ok(())
}

/// Drops the held peer admissions that ended: from a peer no longer listed
/// (revoked), or (with `now`) received more than PEER_HOLD_HOURS ago, and
/// the server never showed a verification of the ticket since. The ticket
/// is unused again on this replica, as the server has it.
pub(super) fn release_peer_holds(tx: &Transaction<'_>, now: Option<DateTime<Utc>>) -> Result<()> {
    let before = now.map(|n| ts(n - chrono::Duration::hours(PEER_HOLD_HOURS)));
    let ended: Vec<(String, String)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT e.event_id, e.entity_id FROM lan_events e \
             WHERE e.kind = 'verify' AND e.outcome = 'applied' \
             AND (NOT EXISTS (SELECT 1 FROM lan_peers p WHERE p.device_id = e.origin_device_id) \
                  OR (?1 IS NOT NULL AND e.received_at <= ?1))",
        )?;
        let rows = stmt.query_map(params![before], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let Some((_, orq, _, _)) = identity(tx)? else {
        return Ok(());
    };
    for (event_id, code) in ended {
        if let Ok(code) = TicketCode::parse(&code) {
            crate::venue_ops::revert_admission(
                tx,
                Orq(orq),
                &code,
                None,
                now.unwrap_or_else(Utc::now),
            )?;
        }
        tx.execute(
            "UPDATE lan_events SET outcome = 'released' WHERE event_id = ?1",
            [event_id],
        )?;
    }
    Ok(())
}

/// Forgets the received peer events that can no longer matter: no longer
/// held (settled by the server, undone, released, or never applied) and
/// both received and made more than PEER_HOLD_HOURS ago, so a replay of one
/// is ignored as too old ([`Received::Ignored`]). Returns how many.
pub(super) fn prune_peer_events(tx: &Transaction<'_>, now: DateTime<Utc>) -> Result<usize> {
    let before = now - chrono::Duration::hours(PEER_HOLD_HOURS);
    Ok(tx
        .prepare_cached(
            "DELETE FROM lan_events WHERE outcome <> 'applied' AND received_at <= ?1 \
             AND julianday(json_extract(event, '$.device_time')) <= julianday(?2)",
        )?
        .execute(params![ts(before), before.to_rfc3339()])?)
}

/// A peer undid its admission of `code`: the admission it gave this
/// replica is dropped. Returns the undo event's outcome.
fn apply_peer_undo(
    tx: &Transaction<'_>,
    orq: Orq,
    origin: i64,
    code: &str,
    now: DateTime<Utc>,
) -> Result<&'static str> {
    let held = tx.execute(
        "UPDATE lan_events SET outcome = 'undone' WHERE kind = 'verify' AND entity_id = ?1 \
         AND origin_device_id = ?2 AND outcome = 'applied'",
        params![code, origin],
    )?;
    if held == 0 {
        return Ok("nothing_held");
    }
    let Ok(code) = TicketCode::parse(code) else {
        return Ok("unknown_ticket");
    };
    crate::venue_ops::revert_admission(tx, orq, &code, None, now)?;
    // Not "applied": only admissions stay held; an undo record is pruned
    // like any settled one.
    Ok("undid")
}

/// The peer's admission on this replica: `domain::enter` at the event's
/// time by its operator, when the ticket is still unused here.
fn apply_peer_admission(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &str,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<&'static str> {
    let Ok(code) = TicketCode::parse(code) else {
        return Ok("unknown_ticket");
    };
    let Some(ticket) = load_ticket(tx, orq, &code)? else {
        return Ok("unknown_ticket");
    };
    let Some(operator) = event.operator_id.map(OperatorId) else {
        return Ok("no_operator");
    };
    let reservation = reservation_of_ticket(tx, orq, &code)?;
    match enter(&ticket, reservation.as_ref(), event.device_time, operator) {
        Entry::First(used) => {
            write_use(tx, orq, &code, &used, None, now)?;
            Ok("applied")
        }
        Entry::Again(_) => Ok("already_used"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sync::protocol::ChangePage;
    use chrono::TimeZone;

    fn gate(dir: &tempfile::TempDir) -> Store {
        let store = Store::open(dir.path().join("gate.db")).unwrap();
        let info = DeviceInfo {
            device_id: 1,
            orq: 1,
            venue_id: 1,
            name: "Gate A".into(),
        };
        store.pair(&info, "http://server", "token").unwrap();
        let peer = SigningKey::from_bytes(&[7; 32]);
        store
            .set_peers(&[PeerKey {
                device_id: 2,
                name: "Gate B".into(),
                public_key: lan::public_key_hex(&peer),
            }])
            .unwrap();
        store
    }

    /// A new token of the same device (a new URL, a revoked token) keeps
    /// the key pair; pairing as another device makes a new one (a key
    /// belongs to one live device on the server).
    #[test]
    fn a_gate_paired_as_another_device_gets_a_key_pair_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = gate(&dir);
        let first = store.device_public_key().unwrap().unwrap();
        let same = DeviceInfo {
            device_id: 1,
            orq: 1,
            venue_id: 1,
            name: "Gate A".into(),
        };
        store.pair(&same, "https://server", "new-token").unwrap();
        assert_eq!(store.device_public_key().unwrap().unwrap(), first);
        let other = DeviceInfo {
            device_id: 9,
            ..same
        };
        store.pair(&other, "https://server", "token-9").unwrap();
        let second = store.device_public_key().unwrap().unwrap();
        assert_ne!(second, first, "another device, another key");
    }

    fn record(store: &Store, code: &str, event_id: &str) {
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        store
            .write(|tx| {
                crate::sync::record_local_event(
                    tx,
                    "verify",
                    "tickets",
                    code,
                    serde_json::json!({ "ticket_code": code }),
                    Some(OperatorId(1)),
                    at,
                )?;
                // What a second process in the same millisecond, or a clock
                // stepped back, makes: an id that sorts below older ones.
                tx.execute(
                    "UPDATE outbox SET event_id = ?1 WHERE rowid = (SELECT max(rowid) FROM outbox)",
                    [event_id],
                )?;
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn an_event_whose_id_sorts_below_the_cursor_is_still_sent() {
        let dir = tempfile::tempdir().unwrap();
        let store = gate(&dir);
        record(&store, "T-1", "0190f000-0000-7000-8000-000000000009");
        let first = store.events_for_peer(2, 10).unwrap();
        assert_eq!(first.len(), 1);
        store
            .peer_confirmed(2, first[0].event.event_id, 1, Utc::now())
            .unwrap();
        assert!(store.events_for_peer(2, 10).unwrap().is_empty());

        record(&store, "T-2", "0190f000-0000-7000-8000-000000000001");
        let next = store.events_for_peer(2, 10).unwrap();
        assert_eq!(
            next.len(),
            1,
            "the newer event is sent although its id sorts lower"
        );
        assert_eq!(next[0].event.payload["ticket_code"], "T-2");
        assert_eq!(
            store.newest_signed_event().unwrap(),
            Some("0190f000-0000-7000-8000-000000000001".into())
        );
        store
            .peer_confirmed(2, next[0].event.event_id, 1, Utc::now())
            .unwrap();
        assert!(store.events_for_peer(2, 10).unwrap().is_empty());
    }

    /// A revoked gate (dropped from the peer list by a sync round) has no
    /// cursor left: its sender gets an error that ends its link, not the
    /// oldest batch again, and a confirmation for it is refused too.
    #[test]
    fn a_gate_dropped_from_the_peer_list_gets_no_events_and_no_confirmation() {
        let dir = tempfile::tempdir().unwrap();
        let store = gate(&dir);
        record(&store, "T-1", "0190f000-0000-7000-8000-000000000009");
        let sent = store.events_for_peer(2, 10).unwrap();
        assert_eq!(sent.len(), 1);
        store
            .peer_confirmed(2, sent[0].event.event_id, 1, Utc::now())
            .unwrap();
        store.set_peers(&[]).unwrap();
        assert!(matches!(
            store.events_for_peer(2, 10),
            Err(StoreError::NotAPeer(2))
        ));
        assert!(matches!(
            store.peer_confirmed(2, sent[0].event.event_id, 1, Utc::now()),
            Err(StoreError::NotAPeer(2))
        ));
        assert!(matches!(
            store.events_for_peer(3, 10),
            Err(StoreError::NotAPeer(3))
        ));
    }

    fn peer_event(kind: &str, code: &str, at: DateTime<Utc>) -> SignedEvent {
        let key = SigningKey::from_bytes(&[7; 32]);
        let event = Event {
            event_id: uuid::Uuid::now_v7(),
            kind: kind.into(),
            payload: serde_json::json!({ "ticket_code": code }),
            operator_id: Some(1),
            device_time: stored_time(at),
        };
        lan::sign(&key, 2, 1, 1, &event)
    }

    fn admitted_by_peer(store: &Store, code: &str, at: DateTime<Utc>) {
        store
            .write(|tx| {
                tx.execute(
                    "INSERT INTO tickets (ticket_code, orq, status, activation_status, activated_at) VALUES (?1, 1, 'ACTIVATED', 'active', '2026-11-30T08:00:00.000Z')",
                    [code],
                )?;
                Ok(())
            })
            .unwrap();
        assert_eq!(
            store
                .receive_peer_event(&peer_event("verify", code, at), at)
                .unwrap(),
            Received::Applied
        );
        assert!(used(store, code), "the peer's admission applies");
    }

    fn used(store: &Store, code: &str) -> bool {
        store
            .read(|tx| {
                Ok(tx.query_row(
                    "SELECT verified_at IS NOT NULL FROM tickets WHERE ticket_code = ?1",
                    [code],
                    |r| r.get(0),
                )?)
            })
            .unwrap()
    }

    fn empty_page(at: DateTime<Utc>) -> ChangePage {
        serde_json::from_value(serde_json::json!({
            "changes": [], "next_cursor": 0, "has_more": false, "remaining": 0, "server_time": at
        }))
        .unwrap()
    }

    #[test]
    fn a_peer_admission_ends_with_its_undo_its_revocation_or_the_hold() {
        let dir = tempfile::tempdir().unwrap();
        let store = gate(&dir);
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();

        admitted_by_peer(&store, "T-1", at);
        store
            .receive_peer_event(&peer_event("undo", "T-1", at), at)
            .unwrap();
        assert!(!used(&store, "T-1"), "the peer's undo frees the ticket");

        admitted_by_peer(&store, "T-2", at);
        store
            .apply_change_page(&empty_page(at), None, at + chrono::Duration::hours(1))
            .unwrap();
        assert!(used(&store, "T-2"), "held within the bound");
        store
            .apply_change_page(
                &empty_page(at),
                None,
                at + chrono::Duration::hours(PEER_HOLD_HOURS + 1),
            )
            .unwrap();
        assert!(
            !used(&store, "T-2"),
            "the hold ends: the server never showed a verification"
        );

        admitted_by_peer(&store, "T-3", at);
        store.set_peers(&[]).unwrap();
        assert!(
            !used(&store, "T-3"),
            "revoking the origin ends its held admissions"
        );
    }

    /// The replica's ticket row as the server's feed would send it, with
    /// `edit` applied.
    fn server_row(store: &Store, code: &str, edit: serde_json::Value) -> serde_json::Value {
        let mut row = store
            .read(|tx| {
                let mut stmt = tx.prepare("SELECT * FROM tickets WHERE ticket_code = ?1")?;
                let names: Vec<String> =
                    stmt.column_names().iter().map(|n| n.to_string()).collect();
                Ok(stmt.query_row([code], |r| {
                    let mut m = serde_json::Map::new();
                    for (i, n) in names.iter().enumerate() {
                        let v = match r.get::<_, rusqlite::types::Value>(i)? {
                            rusqlite::types::Value::Integer(x) => serde_json::json!(x),
                            rusqlite::types::Value::Text(t) => serde_json::json!(t),
                            rusqlite::types::Value::Real(x) => serde_json::json!(x),
                            _ => serde_json::Value::Null,
                        };
                        m.insert(n.clone(), v);
                    }
                    Ok(serde_json::Value::Object(m))
                })?)
            })
            .unwrap();
        for (k, v) in edit.as_object().unwrap() {
            row[k] = v.clone();
        }
        row
    }

    fn page_with(code: &str, row: serde_json::Value, at: DateTime<Utc>) -> ChangePage {
        let mut page = empty_page(at);
        page.changes.push(
            serde_json::from_value(serde_json::json!({
                "seq": 1, "entity": "tickets", "entity_id": code, "op": "upsert", "row": row
            }))
            .unwrap(),
        );
        page
    }

    fn email(store: &Store, code: &str) -> Option<String> {
        store
            .read(|tx| {
                Ok(tx.query_row(
                    "SELECT customer_email FROM tickets WHERE ticket_code = ?1",
                    [code],
                    |r| r.get(0),
                )?)
            })
            .unwrap()
    }

    #[test]
    fn a_held_admission_keeps_only_the_verification_and_ends_when_the_server_shows_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = gate(&dir);
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        admitted_by_peer(&store, "T-4", at);
        let unverified = serde_json::json!({
            "verified_at": null, "verified_by": null, "status": "ACTIVATED",
            "activation_status": "active", "customer_email": "new@example.org"
        });
        let row = server_row(&store, "T-4", unverified);
        store
            .apply_change_page(&page_with("T-4", row, at), None, at)
            .unwrap();
        assert!(
            used(&store, "T-4"),
            "held: the server's row has no verification yet"
        );
        assert_eq!(
            email(&store, "T-4").as_deref(),
            Some("new@example.org"),
            "the rest of the row syncs"
        );

        // The origin uploaded: the server's row has the verification, the
        // hold is settled and no later release reverts it.
        let row = server_row(&store, "T-4", serde_json::json!({}));
        store
            .apply_change_page(&page_with("T-4", row, at), None, at)
            .unwrap();
        store
            .apply_change_page(
                &empty_page(at),
                None,
                at + chrono::Duration::hours(PEER_HOLD_HOURS + 1),
            )
            .unwrap();
        assert!(used(&store, "T-4"), "the server's verification stays");
    }

    /// The holds are read once per page: within one page, a row with the
    /// server's verification settles the hold, so a later unverified row of
    /// the same ticket (the server undid it) applies as sent, while another
    /// held ticket of the page stays held.
    #[test]
    fn a_hold_settled_earlier_in_a_page_is_not_held_later_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = gate(&dir);
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        admitted_by_peer(&store, "T-8", at);
        admitted_by_peer(&store, "T-9", at);
        let unverified = serde_json::json!({
            "verified_at": null, "verified_by": null, "status": "ACTIVATED", "activation_status": "active"
        });
        let verified = server_row(&store, "T-8", serde_json::json!({}));
        let undone = server_row(&store, "T-8", unverified.clone());
        let other = server_row(&store, "T-9", unverified);
        let mut page = empty_page(at);
        for (seq, (code, row)) in [("T-8", verified), ("T-9", other), ("T-8", undone)]
            .into_iter()
            .enumerate()
        {
            page.changes.push(
                serde_json::from_value(serde_json::json!({
                    "seq": seq + 1, "entity": "tickets", "entity_id": code, "op": "upsert", "row": row
                }))
                .unwrap(),
            );
        }
        assert_eq!(store.apply_change_page(&page, None, at).unwrap(), 3);
        assert!(
            !used(&store, "T-8"),
            "settled by the first row, not held for the last"
        );
        assert!(used(&store, "T-9"), "still held");
    }

    /// A reset feed (the server resends everything: the replica drops its
    /// synced rows first) must not lose a held peer admission: the ticket
    /// row comes back without a verification, the hold applies it again.
    #[test]
    fn a_held_admission_survives_a_feed_reset() {
        let dir = tempfile::tempdir().unwrap();
        let store = gate(&dir);
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        admitted_by_peer(&store, "T-5", at);
        let unverified = serde_json::json!({
            "verified_at": null, "verified_by": null, "status": "ACTIVATED", "activation_status": "active"
        });
        let row = server_row(&store, "T-5", unverified);
        let mut reset = page_with("T-5", row.clone(), at);
        reset.reset = true;
        store.apply_change_page(&reset, None, at).unwrap();
        assert!(used(&store, "T-5"), "held across the reset");

        // A reset page without the ticket drops it; a later page brings it
        // back, still held.
        let mut reset = empty_page(at);
        reset.reset = true;
        store.apply_change_page(&reset, None, at).unwrap();
        store
            .apply_change_page(&page_with("T-5", row, at), None, at)
            .unwrap();
        assert!(used(&store, "T-5"), "held when the row comes back later");
        // The hold still ends on time.
        store
            .apply_change_page(
                &empty_page(at),
                None,
                at + chrono::Duration::hours(PEER_HOLD_HOURS + 1),
            )
            .unwrap();
        assert!(!used(&store, "T-5"));
    }

    fn admitted_at(store: &Store, code: &str, now: DateTime<Utc>) -> Option<String> {
        let code = TicketCode::parse(code).unwrap();
        let v = store
            .ticket_verdict(Orq(1), &code, &crate::domain::Gate::default(), now)
            .unwrap();
        assert_eq!(v.verdict, crate::domain::VerdictCode::AlreadyVerified);
        v.verified_gate
    }

    /// ALREADY_VERIFIED names the gate: a peer's admission received over the
    /// LAN, the same admission once the server's row replaces it (its time
    /// corrected by the origin's clock offset), and this gate's own; not an
    /// admission the replica never heard of from a gate.
    #[test]
    fn already_verified_names_the_gate_that_admitted() {
        let dir = tempfile::tempdir().unwrap();
        let store = gate(&dir);
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        admitted_by_peer(&store, "T-7", at);
        assert_eq!(
            admitted_at(&store, "T-7", at).as_deref(),
            Some("Gate B"),
            "LAN-received"
        );

        let pulled = serde_json::json!({ "verified_at": ts(at + chrono::Duration::seconds(40)), "verified_by": 1 });
        let row = server_row(&store, "T-7", pulled);
        store
            .apply_change_page(&page_with("T-7", row, at), None, at)
            .unwrap();
        assert_eq!(
            store
                .read(|tx| Ok(tx.query_row(
                    "SELECT verified_at FROM tickets WHERE ticket_code = 'T-7'",
                    [],
                    |r| r.get::<_, String>(0)
                )?))
                .unwrap(),
            ts(at + chrono::Duration::seconds(40)),
            "the server's row applied"
        );
        assert_eq!(
            admitted_at(&store, "T-7", at).as_deref(),
            Some("Gate B"),
            "server-pulled"
        );

        // Admitted here: this gate's own name.
        store
            .write(|tx| {
                tx.execute(
                    "INSERT INTO tickets (ticket_code, orq, status, activation_status, activated_at) VALUES ('T-8', 1, 'ACTIVATED', 'active', '2026-11-30T08:00:00.000Z')",
                    [],
                )?;
                let ticket = load_ticket(tx, Orq(1), &TicketCode::parse("T-8").unwrap())?.unwrap();
                let Entry::First(used) = enter(&ticket, None, at, OperatorId(1)) else { unreachable!() };
                write_use(tx, Orq(1), &TicketCode::parse("T-8").unwrap(), &used, None, at)?;
                crate::sync::record_local_event(tx, "verify", "tickets", "T-8", serde_json::json!({ "ticket_code": "T-8" }), Some(OperatorId(1)), at)
            })
            .unwrap();
        assert_eq!(
            admitted_at(&store, "T-8", at).as_deref(),
            Some("Gate A"),
            "this gate's own"
        );

        // Used at a gate this replica never heard from (only the server's row).
        store
            .write(|tx| {
                tx.execute(
                    "INSERT INTO tickets (ticket_code, orq, status, activation_status, activated_at, verified_at, verified_by) \
                     VALUES ('T-9', 1, 'ACTIVATED', 'active', '2026-11-30T08:00:00.000Z', ?1, 1)",
                    [ts(at)],
                )?;
                Ok(())
            })
            .unwrap();
        assert_eq!(admitted_at(&store, "T-9", at), None, "no gate known");
    }

    fn lan_events(store: &Store) -> i64 {
        store
            .read(|tx| Ok(tx.query_row("SELECT count(*) FROM lan_events", [], |r| r.get(0))?))
            .unwrap()
    }

    /// `lan_events` stays bounded: a settled event is pruned once the hold
    /// window has passed, one still held is kept, other kinds are never
    /// stored, and a replay of a pruned event is ignored as too old.
    #[test]
    fn received_peer_events_are_pruned_once_settled_and_past_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let store = gate(&dir);
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        let settled = peer_event("verify", "T-6", at);
        store
            .write(|tx| {
                tx.execute(
                    "INSERT INTO tickets (ticket_code, orq, status, activation_status, activated_at) VALUES ('T-6', 1, 'ACTIVATED', 'active', '2026-11-30T08:00:00.000Z')",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
        assert_eq!(
            store.receive_peer_event(&settled, at).unwrap(),
            Received::Applied
        );
        let row = server_row(&store, "T-6", serde_json::json!({}));
        store
            .apply_change_page(&page_with("T-6", row, at), None, at)
            .unwrap();
        assert_eq!(
            store
                .receive_peer_event(&peer_event("exit", "T-6", at), at)
                .unwrap(),
            Received::Ignored,
            "only admissions and undos are kept"
        );
        let later = at + chrono::Duration::hours(PEER_HOLD_HOURS - 1);
        admitted_by_peer(&store, "T-7", later);
        assert_eq!(lan_events(&store), 2);
        store
            .apply_change_page(&empty_page(at), None, later)
            .unwrap();
        assert_eq!(lan_events(&store), 2, "nothing past the window yet");

        let past = at + chrono::Duration::hours(PEER_HOLD_HOURS + 1);
        store
            .apply_change_page(&empty_page(at), None, past)
            .unwrap();
        assert_eq!(lan_events(&store), 1, "the settled one is pruned");
        assert!(used(&store, "T-7"), "the one still held is kept");
        assert_eq!(
            store.receive_peer_event(&settled, past).unwrap(),
            Received::Ignored,
            "a replay of a pruned event is too old"
        );
        assert_eq!(lan_events(&store), 1);

        // An undo is kept no longer than a settled admission.
        admitted_by_peer(&store, "T-9", past);
        assert_eq!(
            store
                .receive_peer_event(&peer_event("undo", "T-9", past), past)
                .unwrap(),
            Received::Applied
        );
        assert!(!used(&store, "T-9"), "the undo applies");
        assert_eq!(lan_events(&store), 3);
        // An event dated far ahead is not stored at all (it could never be
        // past the window); one a little ahead (a clock skew) is.
        let ahead = past + chrono::Duration::minutes(PEER_CLOCK_SKEW_MINUTES + 1);
        assert_eq!(
            store
                .receive_peer_event(&peer_event("verify", "T-10", ahead), past)
                .unwrap(),
            Received::Ignored,
            "dated too far ahead"
        );
        admitted_by_peer(&store, "T-11", past + chrono::Duration::minutes(5));
        assert_eq!(lan_events(&store), 4);
        // Just past the window of the undo pair, not of T-11's admission.
        let long_after =
            past + chrono::Duration::hours(PEER_HOLD_HOURS) + chrono::Duration::minutes(2);
        store
            .apply_change_page(&empty_page(at), None, long_after)
            .unwrap();
        assert!(used(&store, "T-11"), "T-11 is still held");
        assert_eq!(
            lan_events(&store),
            1,
            "the undone admission, its undo and T-7's ended hold are pruned; T-11's is kept"
        );
    }
}
