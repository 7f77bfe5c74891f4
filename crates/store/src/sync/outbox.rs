//! The outbox: a paired device's queue of local events, their retries and answers, and its sync status.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use super::devices::is_device;
use crate::codec::{ts, Ts};
use crate::column::Sql;
use crate::domain::sync::protocol::{Event, EventResult, EventStatus};
use crate::domain::OperatorId;
use crate::{Result, Store};

/// A device's view of its own sync, for the app and `entrada sync`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SyncStatus {
    pub paired: bool,
    pub device_id: Option<i64>,
    pub orq: Option<i64>,
    pub venue_id: Option<i64>,
    pub server_url: Option<String>,
    pub cursor: i64,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub server_reachable: bool,
    pub pending: i64,
    pub rejected: i64,
    pub conflicts: i64,
    pub clock_offset_ms: Option<i64>,
    /// The device clock is more than 5 minutes off the server's.
    pub clock_suspect: bool,
}

/// An outbox entry as the device shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct OutboxEntry {
    pub event_id: uuid::Uuid,
    pub kind: String,
    pub entity_id: String,
    pub state: String,
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    pub device_time: DateTime<Utc>,
    pub server_received_at: Option<DateTime<Utc>>,
    pub attempts: u32,
}

/// On a paired gate device, queues a local change for the server in the
/// caller's transaction. Elsewhere (the server) it does nothing.
pub(crate) fn record_local_event(
    tx: &Transaction<'_>,
    kind: &str,
    entity: &str,
    entity_id: &str,
    payload: serde_json::Value,
    operator: Option<OperatorId>,
    now: DateTime<Utc>,
) -> Result<()> {
    if !is_device(tx)? {
        return Ok(());
    }
    // Signed in the transaction that commits it (issue 14): what a peer
    // receives is what this gate made, as it will be uploaded.
    let event = Event {
        event_id: uuid::Uuid::now_v7(),
        kind: kind.to_owned(),
        payload,
        operator_id: operator.map(|o| o.0),
        device_time: super::lan::stored_time(now),
    };
    let signature = super::lan::sign_local_event(tx, &event)?;
    tx.prepare_cached(
        "INSERT INTO outbox (event_id, kind, entity, entity_id, payload, operator_id, device_time, signature) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![event.event_id.to_string(), kind, entity, entity_id, event.payload.to_string(), Sql(operator), ts(now), signature])?;
    Ok(())
}

impl Store {
    /// Pending outbox events, oldest first, with their retry state.
    pub fn pending_events(&self) -> Result<Vec<(Event, crate::domain::sync::plan::PendingEvent)>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT event_id, kind, payload, operator_id, device_time, attempts, next_attempt_at FROM outbox WHERE state = 'pending' ORDER BY event_id",
            )?;
            let rows = stmt.query_map([], |r| {
                let id: String = r.get(0)?;
                let payload: String = r.get(2)?;
                Ok((id, r.get::<_, String>(1)?, payload, r.get::<_, Option<i64>>(3)?, r.get::<_, Ts>(4)?, r.get::<_, u32>(5)?, r.get::<_, Option<Ts>>(6)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, kind, payload, operator_id, device_time, attempts, next) = row?;
                let Ok(event_id) = uuid::Uuid::parse_str(&id) else { continue };
                let event = Event {
                    event_id,
                    kind,
                    payload: serde_json::from_str(&payload).unwrap_or_default(),
                    operator_id,
                    device_time: device_time.0,
                };
                out.push((event, crate::domain::sync::plan::PendingEvent { event_id, attempts, next_attempt_at: next.map(|t| t.0) }));
            }
            Ok(out)
        })
    }

    /// Records the server's answers; each answered event leaves `pending`.
    pub fn record_event_results(&self, results: &[EventResult]) -> Result<()> {
        self.write(|tx| {
            for r in results {
                tx.prepare_cached(
                    "UPDATE outbox SET state = ?1, result = ?2, server_received_at = ?3, attempts = attempts + 1 WHERE event_id = ?4 AND state = 'pending'",
                )?
                .execute(params![
                    match r.status {
                        // A replay of an event applied before: its first answer counts.
                        EventStatus::Duplicate => r
                            .facts
                            .as_ref()
                            .and_then(|f| f.get("status"))
                            .and_then(|s| s.as_str())
                            .filter(|s| ["applied", "conflict", "rejected"].contains(s))
                            .unwrap_or("duplicate")
                            .to_string(),
                        other => other.as_str().to_string(),
                    },
                    serde_json::to_string(r).unwrap_or_default(),
                    ts(r.received_at),
                    r.event_id.to_string()
                ])?;
            }
            Ok(())
        })
    }

    /// After a failed push: schedule the retry and remember why.
    pub fn record_sync_failure(
        &self,
        event_ids: &[uuid::Uuid],
        error: &str,
        reachable: bool,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> Result<()> {
        self.write(|tx| {
            for id in event_ids {
                let attempts: u32 = tx.query_row("SELECT attempts FROM outbox WHERE event_id = ?1", [id.to_string()], |r| r.get(0)).unwrap_or(0);
                let next = now + crate::domain::sync::plan::backoff(attempts, jitter);
                tx.execute(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?1 WHERE event_id = ?2 AND state = 'pending'",
                    params![ts(next), id.to_string()],
                )?;
            }
            tx.execute(
                "UPDATE device_identity SET last_error = ?1, last_attempt_at = ?2, server_reachable = ?3",
                params![error, ts(now), reachable],
            )?;
            Ok(())
        })
    }

    pub fn record_sync_attempt(
        &self,
        now: DateTime<Utc>,
        clock_offset_ms: Option<i64>,
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE device_identity SET last_attempt_at = ?1, server_reachable = 1, clock_offset_ms = coalesce(?2, clock_offset_ms)",
                params![ts(now), clock_offset_ms],
            )?;
            Ok(())
        })
    }

    /// When this gate last recorded a change of its own (a scan's admission,
    /// an exit, an undo): the device time of its newest outbox event. The
    /// updater installs only after a quiet spell since then.
    pub fn last_local_event_at(&self) -> Result<Option<DateTime<Utc>>> {
        self.read(|tx| {
            let at: Option<Ts> =
                tx.query_row("SELECT max(device_time) FROM outbox", [], |r| r.get(0))?;
            Ok(at.map(|t| t.0))
        })
    }

    pub fn sync_status(&self) -> Result<SyncStatus> {
        self.read(|tx| {
            let counts = |state: &str| -> Result<i64> {
                Ok(tx.prepare_cached("SELECT count(*) FROM outbox WHERE state = ?1")?.query_row([state], |r| r.get(0))?)
            };
            let (pending, rejected) = (counts("pending")?, counts("rejected")?);
            let conflicts: i64 = tx.query_row("SELECT count(*) FROM sync_conflicts", [], |r| r.get(0))?;
            let identity = tx
                .query_row(
                    "SELECT device_id, orq, venue_id, server_url, cursor, last_sync_at, last_attempt_at, last_error, server_reachable, clock_offset_ms FROM device_identity",
                    [],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, Option<Ts>>(5)?,
                            r.get::<_, Option<Ts>>(6)?,
                            r.get::<_, Option<String>>(7)?,
                            r.get::<_, bool>(8)?,
                            r.get::<_, Option<i64>>(9)?,
                        ))
                    },
                )
                .optional()?;
            Ok(match identity {
                None => SyncStatus {
                    paired: false, device_id: None, orq: None, venue_id: None, server_url: None, cursor: 0, last_sync_at: None,
                    last_attempt_at: None, last_error: None, server_reachable: false, pending, rejected, conflicts, clock_offset_ms: None, clock_suspect: false,
                },
                Some((device_id, orq, venue_id, url, cursor, last_sync, last_attempt, last_error, reachable, offset)) => SyncStatus {
                    paired: true,
                    device_id: Some(device_id),
                    orq: Some(orq),
                    venue_id: Some(venue_id),
                    server_url: Some(url),
                    cursor,
                    last_sync_at: last_sync.map(|t| t.0),
                    last_attempt_at: last_attempt.map(|t| t.0),
                    last_error,
                    server_reachable: reachable,
                    pending,
                    rejected,
                    conflicts,
                    clock_offset_ms: offset,
                    clock_suspect: offset.is_some_and(crate::domain::sync::plan::clock_suspect),
                },
            })
        })
    }

    /// The outbox, newest first: what the device did and what the server said.
    pub fn outbox(&self, limit: u32) -> Result<Vec<OutboxEntry>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT event_id, kind, entity_id, state, result, device_time, server_received_at, attempts FROM outbox ORDER BY event_id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit], |r| {
                Ok(OutboxEntry {
                    event_id: uuid::Uuid::parse_str(&r.get::<_, String>(0)?).unwrap_or_default(),
                    kind: r.get(1)?,
                    entity_id: r.get(2)?,
                    state: r.get(3)?,
                    result: r.get::<_, Option<String>>(4)?.and_then(|s| serde_json::from_str(&s).ok()),
                    device_time: r.get::<_, Ts>(5)?.0,
                    server_received_at: r.get::<_, Option<Ts>>(6)?.map(|t| t.0),
                    attempts: r.get(7)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}
