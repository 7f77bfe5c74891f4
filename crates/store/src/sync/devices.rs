//! Devices: registering, looking up (whoami) and revoking gate devices, pairing a database, device settings.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use super::feed::drop_synced_rows;
use crate::codec::ts;
use crate::column::Sql;
use crate::domain::sync::protocol::DeviceInfo;
use crate::domain::{DomainError, Orq, VenueId};
use crate::tokens::hash_token;
use crate::{Result, Store, StoreError};

/// A device's pairing: who it is and how it reaches the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pairing {
    pub info: DeviceInfo,
    pub server_url: String,
    pub token: String,
    pub cursor: i64,
}

/// The ticket the demo data set is recognised by (`demo::populate` makes it).
pub const DEMO_MARKER_TICKET: &str = "DEMO-ADMIT";

/// What an unpaired database holds, as far as pairing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalData {
    /// Paired already: a replica.
    Replica,
    /// Nothing: a new file.
    Empty,
    /// The standalone demo data set (and nothing that served as a server).
    Demo,
    /// Venues, operators or tickets that are not the demo's.
    Other,
    /// It has served as a server: API tokens, devices or received events.
    Server,
}

fn local_data(tx: &Transaction<'_>) -> Result<LocalData> {
    if is_device(tx)? {
        return Ok(LocalData::Replica);
    }
    let flag = |sql: &str| -> Result<bool> { Ok(tx.query_row(sql, [], |r| r.get(0))?) };
    if flag("SELECT EXISTS (SELECT 1 FROM api_tokens) OR EXISTS (SELECT 1 FROM devices) OR EXISTS (SELECT 1 FROM sync_events)")? {
        return Ok(LocalData::Server);
    }
    if !flag("SELECT EXISTS (SELECT 1 FROM tickets) OR EXISTS (SELECT 1 FROM venues) OR EXISTS (SELECT 1 FROM operators)")? {
        return Ok(LocalData::Empty);
    }
    let demo: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM tickets WHERE ticket_code = ?1)",
        [DEMO_MARKER_TICKET],
        |r| r.get(0),
    )?;
    Ok(if demo {
        LocalData::Demo
    } else {
        LocalData::Other
    })
}

pub(super) fn is_device(tx: &Transaction<'_>) -> Result<bool> {
    Ok(tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM device_identity)")?
        .query_row([], |r| r.get(0))?)
}

impl Store {
    // ---- server side ----

    /// Registers a gate device; returns its token (shown once).
    pub fn add_device(
        &self,
        orq: Orq,
        venue: VenueId,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, DeviceInfo)> {
        let name = crate::domain::venue::validate_name("name", name)?;
        let token = format!("dev_{}", crate::tokens::random_hex()?);
        let id = self.write(|tx| {
            crate::venues::require_venue(tx, orq, venue)?;
            tx.execute(
                "INSERT INTO devices (orq, venue_id, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![Sql(orq), Sql(venue), name, hash_token(&token), ts(now)],
            )?;
            Ok(tx.last_insert_rowid())
        })?;
        Ok((
            token,
            DeviceInfo {
                device_id: id,
                orq: orq.0,
                venue_id: venue.0,
                name,
            },
        ))
    }

    pub fn device_for_token(&self, token: &str) -> Result<Option<DeviceInfo>> {
        self.read(|tx| {
            Ok(tx
                .prepare_cached("SELECT id, orq, venue_id, name FROM devices WHERE token_hash = ?1 AND revoked_at IS NULL")?
                .query_row([hash_token(token.trim())], |r| {
                    Ok(DeviceInfo { device_id: r.get(0)?, orq: r.get(1)?, venue_id: r.get(2)?, name: r.get(3)? })
                })
                .optional()?)
        })
    }

    pub fn revoke_device(&self, orq: Orq, device_id: i64, now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE devices SET revoked_at = ?1 WHERE id = ?2 AND orq = ?3 AND revoked_at IS NULL",
                params![ts(now), device_id, Sql(orq)],
            )?;
            if n == 0 {
                return Err(DomainError::NotFound { entity: "device" }.into());
            }
            Ok(())
        })
    }

    // ---- device side ----

    /// Makes this database the replica of a paired device. From now on its
    /// local changes go to the outbox.
    ///
    /// - Already paired (a new URL, or a new token after a revocation): the
    ///   replica and its outbox are kept, pending events are delivered under
    ///   the new device. Another org's token is refused. A token of another
    ///   venue drops the synced rows and starts the feed over (a gate holds
    ///   its own venue's rows only).
    /// - Never paired: a new file, or the standalone demo, whose rows are
    ///   deleted in the transaction that pairs (a demo ticket must not admit
    ///   at a real gate; a failure leaves them as they were). The device's
    ///   own settings stay. Anything else is refused, never wiped: a
    ///   database that served as a server (`SERVER_DATABASE`) or holds data
    ///   that is not the demo's (`LOCAL_DATA`).
    ///
    /// Returns whether local data was replaced.
    pub fn pair(&self, info: &DeviceInfo, server_url: &str, token: &str) -> Result<bool> {
        self.write_without_foreign_keys(|tx| {
            let existing: Option<(i64, i64, i64)> = tx
                .query_row("SELECT orq, venue_id, device_id FROM device_identity", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            if let Some((orq, venue, device)) = existing {
                if orq != info.orq {
                    return Err(DomainError::invalid(
                        "token",
                        format!("this database holds org {orq}'s data; use a new database file for org {}", info.orq),
                    )
                    .into());
                }
                tx.execute(
                    "UPDATE device_identity SET device_id = ?1, venue_id = ?2, name = ?3, server_url = ?4, token = ?5, \
                     last_error = NULL",
                    params![info.device_id, info.venue_id, info.name, server_url, token],
                )?;
                if device != info.device_id {
                    // Another device row on the server: a key pair of its
                    // own. Keys are unique among live devices, so keeping
                    // the old one would be refused (DUPLICATE_DEVICE_KEY)
                    // while the old row is not revoked, and the gate would
                    // silently drop out of the LAN exchange.
                    tx.execute("UPDATE device_identity SET device_key = NULL", [])?;
                }
                super::lan::ensure_device_key(tx)?;
                if venue != info.venue_id {
                    // Another venue's gate now: what this one held is not
                    // its to keep, and the new venue's rows come from the start.
                    drop_synced_rows(tx)?;
                    tx.execute("UPDATE device_identity SET cursor = 0", [])?;
                    return Ok(true);
                }
                return Ok(false);
            }
            match local_data(tx)? {
                LocalData::Empty | LocalData::Demo => {}
                LocalData::Server => return Err(StoreError::ServerDatabase),
                LocalData::Other | LocalData::Replica => return Err(StoreError::LocalData),
            }
            // The indexes a first sync deferred are built before the table
            // that names them is emptied below.
            super::feed::restore_deferred_indexes(tx)?;
            let tables: Vec<String> = tx
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
                     AND name NOT IN ('device_settings', 'change_log') ORDER BY name",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut replaced = false;
            for table in tables {
                replaced |= tx.execute(&format!("DELETE FROM \"{table}\""), [])? > 0;
            }
            // Last: the deletes above logged themselves through the triggers.
            tx.execute("DELETE FROM change_log", [])?;
            tx.execute(
                "INSERT INTO device_identity (id, device_id, orq, venue_id, name, server_url, token) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)",
                params![info.device_id, info.orq, info.venue_id, info.name, server_url, token],
            )?;
            super::lan::ensure_device_key(tx)?;
            Ok(replaced)
        })
    }

    /// What this database holds, as far as pairing it is concerned: only an
    /// empty file or the standalone demo becomes a gate's replica.
    pub fn local_data(&self) -> Result<LocalData> {
        self.read(local_data)
    }

    /// The device's own settings (camera, kiosk, auto-lock), by key.
    pub fn device_settings(&self) -> Result<std::collections::BTreeMap<String, String>> {
        self.read(|tx| {
            let mut stmt = tx.prepare("SELECT key, value FROM device_settings")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    pub fn set_device_setting(&self, key: &str, value: &str) -> Result<()> {
        if key.is_empty() || key.len() > 64 {
            return Err(DomainError::invalid("key", "1 to 64 characters").into());
        }
        self.write(|tx| {
            tx.execute(
                "INSERT INTO device_settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
    }

    pub fn pairing(&self) -> Result<Option<Pairing>> {
        self.read(|tx| {
            Ok(tx
                .query_row("SELECT device_id, orq, venue_id, name, server_url, token, cursor FROM device_identity", [], |r| {
                    Ok(Pairing {
                        info: DeviceInfo { device_id: r.get(0)?, orq: r.get(1)?, venue_id: r.get(2)?, name: r.get(3)? },
                        server_url: r.get(4)?,
                        token: r.get(5)?,
                        cursor: r.get(6)?,
                    })
                })
                .optional()?)
        })
    }
}
