//! The change feed: the synced entities, change pages served (server) and applied (device), conflicts as feed rows.

use chrono::{DateTime, Utc};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{params, OptionalExtension, Transaction};

use super::pulled::{Cell, PulledPage, PulledRow};
use crate::codec::ts;
use crate::column::Sql;
use crate::domain::sync::protocol::{sent_op, Change, ChangePage};
use crate::domain::{Orq, VenueId};
use crate::{Result, Store, StoreError};

/// A synced table: its key and the columns that travel (never private keys).
pub(super) struct Entity {
    pub(super) table: &'static str,
    pub(super) key: &'static str,
    /// The key is an INTEGER PRIMARY KEY: SQLite reads text such as "09"
    /// or " 9" bound to it as the integer 9, so only an entity_id written
    /// as the integer's own text names one row (`PulledChange::refusal`).
    pub(super) integer_key: bool,
    pub(super) columns: &'static [&'static str],
    /// BLOB columns travel as hex.
    blobs: &'static [&'static str],
}

pub(super) const ENTITIES: &[Entity] = &[
    Entity {
        table: "venues",
        key: "id",
        integer_key: true,
        columns: &[
            "id",
            "orq",
            "name",
            "timezone",
            "early_grace_minutes",
            "late_grace_minutes",
            "created_at",
            "updated_at",
            "reentry_allowed",
            "walkup_lease_places",
            "no_show_release_minutes",
            "occupancy_limit",
            "closing_time",
        ],
        blobs: &[],
    },
    Entity {
        table: "operators",
        key: "id",
        integer_key: true,
        columns: &[
            "id",
            "orq",
            "role",
            "display_name",
            "pin_hash",
            "created_at",
            "updated_at",
            "deactivated_at",
        ],
        blobs: &[],
    },
    Entity {
        table: "org_settings",
        key: "orq",
        integer_key: true,
        columns: &["orq", "signed_codes_only", "updated_at"],
        blobs: &[],
    },
    Entity {
        table: "signing_keys",
        key: "kid",
        integer_key: true,
        columns: &["kid", "orq", "public_key", "created_at", "retired_at"],
        blobs: &["public_key"],
    },
    Entity {
        table: "reservation_slots",
        key: "id",
        integer_key: false,
        columns: &[
            "id",
            "date",
            "start_time",
            "end_time",
            "venue_id",
            "total_capacity",
            "booked_count",
            "status",
            "orq",
            "created_at",
            "updated_at",
        ],
        blobs: &[],
    },
    Entity {
        table: "tickets",
        key: "ticket_code",
        integer_key: false,
        columns: &[
            "ticket_code",
            "orq",
            "order_id",
            "product_id",
            "user_id",
            "status",
            "entitlements",
            "expires_at",
            "created_at",
            "updated_at",
            "customer_email",
            "customer_phone",
            "reserved_at",
            "verified_at",
            "verified_by",
            "activation_status",
            "activated_at",
            "activation_mode",
            "code_serial",
            "left_at",
            // Optional for a gate: an older server sends no such key (NULL).
            "verified_gate",
        ],
        blobs: &[],
    },
    Entity {
        table: "ticket_reservations",
        key: "id",
        integer_key: false,
        columns: &[
            "id",
            "ticket_id",
            "slot_id",
            "customer_email",
            "customer_phone",
            "reserved_at",
            "status",
            "orq",
            "created_at",
            "updated_at",
            "no_show_at",
        ],
        blobs: &[],
    },
    Entity {
        table: "sync_conflicts",
        key: "id",
        integer_key: true,
        columns: &[
            "id",
            "orq",
            "kind",
            "ticket_code",
            "first_device_id",
            "first_operator_id",
            "first_at",
            "second_device_id",
            "second_operator_id",
            "second_at",
            "second_event_id",
            "detected_at",
            "venue_id",
            "facts",
        ],
        blobs: &[],
    },
];

fn entity(name: &str) -> Option<&'static Entity> {
    ENTITIES.iter().find(|e| e.table == name)
}

fn select_json_sql(e: &Entity) -> String {
    let fields: Vec<String> = e
        .columns
        .iter()
        .map(|c| {
            if e.blobs.contains(c) {
                format!("'{c}', hex({c})")
            } else {
                format!("'{c}', {c}")
            }
        })
        .collect();
    format!(
        "SELECT json_object({}) FROM {} WHERE {} = ?1",
        fields.join(", "),
        e.table,
        e.key
    )
}

/// A synced row's columns by key (BLOBs as hex, as `select_json_sql`), for
/// [`row_json`].
fn select_row_sql(e: &Entity) -> String {
    let fields: Vec<String> = e
        .columns
        .iter()
        .map(|c| {
            if e.blobs.contains(c) {
                format!("hex({c})")
            } else {
                (*c).to_string()
            }
        })
        .collect();
    format!(
        "SELECT {} FROM {} WHERE {} = ?1",
        fields.join(", "),
        e.table,
        e.key
    )
}

/// A row of [`select_row_sql`] as a JSON object, built from the values
/// (no JSON text written and parsed again per row: a first sync's 200,000
/// rows). The same object `json_object` made (`select_json_sql`) but for
/// reals: those are written losslessly (shortest text that reads back the
/// same f64: 0.1 + 0.2 is 0.30000000000000004, not `json_object`'s 15
/// digits 0.3). A real that is not finite, or text that is not UTF-8, has
/// no JSON: [`StoreError::NotJson`] (the page fails), never null or U+FFFD.
fn row_json(e: &Entity, r: &rusqlite::Row<'_>) -> Result<serde_json::Value> {
    let mut map = serde_json::Map::with_capacity(e.columns.len());
    for (i, c) in e.columns.iter().enumerate() {
        let value = match r.get_ref(i)? {
            ValueRef::Null => serde_json::Value::Null,
            ValueRef::Integer(n) => serde_json::Value::from(n),
            ValueRef::Real(x) => serde_json::Number::from_f64(x)
                .map(serde_json::Value::Number)
                .ok_or_else(|| {
                    StoreError::NotJson(format!("{}.{c} is {x}, not a finite number", e.table))
                })?,
            ValueRef::Text(t) => serde_json::Value::String(
                std::str::from_utf8(t)
                    .map_err(|_| StoreError::NotJson(format!("{}.{c} is not UTF-8 text", e.table)))?
                    .to_owned(),
            ),
            // Not selected as such (BLOB columns come through `hex()`).
            ValueRef::Blob(b) => {
                serde_json::Value::String(b.iter().map(|x| format!("{x:02X}")).collect())
            }
        };
        map.insert((*c).to_string(), value);
    }
    Ok(serde_json::Value::Object(map))
}

fn upsert_sql(e: &Entity) -> String {
    let params: Vec<String> = (1..=e.columns.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT OR REPLACE INTO {} ({}) VALUES ({})",
        e.table,
        e.columns.join(", "),
        params.join(", ")
    )
}

/// A pulled row's values in the columns' order of entity `i` (its index in
/// [`ENTITIES`]), bound directly (parsing the JSON once in Rust rather than
/// once per column in SQL); text is bound from the parsed row, not copied.
fn row_values(i: usize, row: &PulledRow) -> Vec<ToSqlOutput<'_>> {
    let e = &ENTITIES[i];
    e.columns
        .iter()
        .zip(row.cells(i))
        .map(|(c, cell)| match cell {
            Some(Cell::Text(text)) if e.blobs.contains(c) => {
                ToSqlOutput::Owned(unhex(text).map_or(Value::Null, Value::Blob))
            }
            Some(Cell::Text(text) | Cell::Json(text)) => {
                ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes()))
            }
            Some(Cell::Integer(n)) => ToSqlOutput::Borrowed(ValueRef::Integer(*n)),
            Some(Cell::Real(x)) => ToSqlOutput::Borrowed(ValueRef::Real(*x)),
            Some(Cell::Null) | None => ToSqlOutput::Owned(Value::Null),
        })
        .collect()
}

/// A bound value as text, if it is text.
fn bound_text<'v>(value: &'v ToSqlOutput<'_>) -> Option<&'v str> {
    match value {
        ToSqlOutput::Borrowed(ValueRef::Text(bytes)) => std::str::from_utf8(bytes).ok(),
        ToSqlOutput::Owned(Value::Text(text)) => Some(text),
        _ => None,
    }
}

/// The longest admitting gate's name a replica keeps (the CHECK of
/// migration 0024: 1 to 200 characters).
const MAX_GATE_NAME_CHARS: usize = 200;

/// A pulled row's values as [`row_values`], with what is display text only
/// made safe for the replica's CHECKs: a ticket's `verified_gate` is kept
/// only with a verification (`verified_at` set) and when it is text of 1 to
/// [`MAX_GATE_NAME_CHARS`] characters with no NUL (SQLite's `length()`
/// stops at one); otherwise NULL. A hostile server, or a newer one that
/// allows longer device names, cannot stop the gate's pulls with it: the
/// row applies and ALREADY_VERIFIED names no gate.
fn pulled_values(i: usize, row: &PulledRow) -> Vec<ToSqlOutput<'_>> {
    let e = &ENTITIES[i];
    let mut values = row_values(i, row);
    if e.table == "tickets" {
        let at = |name: &str| e.columns.iter().position(|c| *c == name);
        if let (Some(verified_at), Some(gate)) = (at("verified_at"), at("verified_gate")) {
            let keep = !matches!(
                values[verified_at],
                ToSqlOutput::Owned(Value::Null)
                    | ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Null)
            ) && bound_text(&values[gate]).is_some_and(|name| {
                (1..=MAX_GATE_NAME_CHARS).contains(&name.chars().count()) && !name.contains('\0')
            });
            if !keep {
                values[gate] = ToSqlOutput::Owned(Value::Null);
            }
        }
    }
    values
}

/// `e`'s upsert statement, prepared the first time a page needs it.
fn upsert<'s, 'c>(
    tx: &'c Transaction<'_>,
    slot: &'s mut Option<rusqlite::CachedStatement<'c>>,
    e: &Entity,
) -> Result<&'s mut rusqlite::CachedStatement<'c>> {
    Ok(match slot {
        Some(stmt) => stmt,
        slot => slot.insert(tx.prepare_cached(&upsert_sql(e))?),
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// On a device: deletes every row the change feed brought, except the ones
/// with a local change the server has not answered yet (it will).
pub(super) fn drop_synced_rows(tx: &Transaction<'_>) -> Result<()> {
    for e in ENTITIES {
        tx.execute(
            &format!(
                "DELETE FROM {} WHERE CAST({} AS TEXT) NOT IN \
                 (SELECT entity_id FROM outbox WHERE state = 'pending' AND entity = ?1)",
                e.table, e.key
            ),
            [e.table],
        )?;
    }
    Ok(())
}

/// The synced tables whose secondary indexes a first sync builds after
/// filling them rather than row by row (migration 0025).
const DEFERRED_TABLES: &[&str] = &["tickets", "ticket_reservations"];

/// The indexes a first sync may defer, by name: the non-unique secondary
/// indexes of [`DEFERRED_TABLES`]. A `deferred_indexes` row naming any
/// other is refused, not run; an index a later migration adds is not
/// deferred until it is listed here.
const DEFERRABLE_INDEXES: &[&str] = &[
    "idx_ticket_reservations_orq",
    "idx_ticket_reservations_slot_id",
    "idx_ticket_reservations_slot_status",
    "idx_tickets_customer_email",
    "idx_tickets_customer_phone",
    "idx_tickets_order",
    "idx_tickets_orq",
    "idx_tickets_orq_code",
    "idx_tickets_purchase_email",
    "idx_tickets_status",
    "idx_tickets_user",
];

/// The change log's triggers a first sync drops while it fills the
/// tables (migration 0026): on a gate they never write (their WHEN clause),
/// but each inserted row ran their program and kept a statement journal.
/// Created again from [`trigger_sql`], never from text in the file.
const DEFERRABLE_TRIGGERS: &[&str] = &["ticket_reservations_log_insert", "tickets_log_insert"];

/// Whether the schema has the `kind` (index, trigger) named `name`.
fn in_schema(conn: &rusqlite::Connection, kind: &str, name: &str) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = ?1 AND name = ?2)",
        [kind, name],
        |r| r.get(0),
    )?)
}

/// The WHEN clause that keeps a deferrable trigger from writing on a
/// paired device: only a trigger with it may be dropped during a first sync.
const DEVICE_ONLY_WHEN: &str = "WHEN NOT EXISTS (SELECT 1 FROM device_identity)";

/// Whether a trigger's text (`CREATE TRIGGER … END`) has
/// [`DEVICE_ONLY_WHEN`] as its whole WHEN clause, on the line before its
/// `BEGIN`: then it never runs on a paired device.
fn device_only(sql: &str) -> bool {
    sql.split_once("\nBEGIN\n").is_some_and(|(head, _)| {
        head.strip_suffix(DEVICE_ONLY_WHEN)
            .and_then(|h| h.strip_suffix('\n'))
            .is_some_and(|h| !h.contains('\n') && !h.contains("WHEN"))
    })
}

/// The file's schema version (`PRAGMA user_version`): how many of this
/// program's migrations it has run.
fn schema_version(conn: &rusqlite::Connection) -> Result<usize> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    Ok(usize::try_from(version).unwrap_or(0))
}

/// A deferrable trigger's definition as the first `version` migrations
/// last wrote it (`CREATE TRIGGER <name> ` … `END`): the schema a file of
/// that version has when the trigger is in place. At open the restore runs
/// before the migrations, so a later migration's text (for a schema the
/// file does not have yet) must not be used. `None` for a name not listed,
/// and for one a migration up to that version drops after its last
/// creation (`DROP TRIGGER [IF EXISTS] <name>`): a trigger removed for good
/// is never brought back.
fn trigger_sql(name: &str, version: usize) -> Option<&'static str> {
    if !DEFERRABLE_TRIGGERS.contains(&name) {
        return None;
    }
    let upto = version.min(crate::MIGRATIONS.len());
    last_definition(&crate::MIGRATIONS[..upto], name)
}

/// The last `CREATE TRIGGER <name> ` … `END` in `migrations`, unless a
/// `DROP TRIGGER [IF EXISTS] <name>` follows it (a migration that drops
/// and creates again, as 0009 does, keeps its new text).
fn last_definition(migrations: &[&'static str], name: &str) -> Option<&'static str> {
    let head = format!("CREATE TRIGGER {name} ");
    let drops = [
        format!("DROP TRIGGER {name}"),
        format!("DROP TRIGGER IF EXISTS {name}"),
    ];
    for m in migrations.iter().rev() {
        // The last drop of exactly this name (not of a longer one).
        let dropped = drops
            .iter()
            .flat_map(|d| {
                m.match_indices(d.as_str()).filter(|(at, d)| {
                    !m[at + d.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                })
            })
            .map(|(at, _)| at)
            .max();
        match (m.rfind(&head), dropped) {
            (Some(from), dropped) if dropped.is_none_or(|d| d < from) => {
                let len = m[from..].find("\nEND;")? + "\nEND".len();
                return Some(&m[from..from + len]);
            }
            (None, None) => {}
            // Dropped after its last creation (or with none in that file).
            _ => return None,
        }
    }
    None
}

/// Drops the deferrable triggers that exist, their names kept in
/// `deferred_triggers` (same transaction). Only on a paired device (a
/// `device_identity` row, read in this transaction) and only a trigger
/// whose live text is exactly [`trigger_sql`]'s, and that one
/// [`device_only`]: such a trigger never
/// writes there, so dropping it loses no change-log row. On a server (no
/// device), with a trigger some migration made to write on a device, or
/// one whose live text differs (changed outside this program's
/// migrations), it is kept: dropping it could lose change-log rows.
fn defer_triggers(tx: &Transaction<'_>) -> Result<()> {
    let paired: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM device_identity)", [], |r| {
        r.get(0)
    })?;
    if !paired {
        return Ok(());
    }
    let version = schema_version(tx)?;
    for name in DEFERRABLE_TRIGGERS {
        let live: Option<String> = tx
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        // The live text exactly as this program's migrations wrote it
        // (SQLite keeps a trigger's text as written, up to `END`, so no
        // normalising), and that text's WHEN clause the device-only one,
        // whole, right before `BEGIN`: a text that only contains it (an
        // added `OR …`, a `CASE WHEN` in the body) may write here.
        let ours = trigger_sql(name, version).filter(|sql| device_only(sql));
        if ours.is_some() && live.as_deref() == ours {
            tx.execute("INSERT INTO deferred_triggers (name) VALUES (?1)", [name])?;
            tx.execute(&format!("DROP TRIGGER {name}"), [])?;
        }
    }
    Ok(())
}

/// Creates again every trigger a first sync dropped (from this program's
/// migrations up to the file's version) and forgets their names, in the
/// caller's transaction. A name this program does not defer (no text of
/// the file ever runs) is logged and forgotten: it must not keep the
/// indexes from being built at every round. Returns how many it created.
fn restore_triggers(tx: &Transaction<'_>) -> Result<usize> {
    let names: Vec<String> = tx
        .prepare_cached("SELECT name FROM deferred_triggers ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let version = schema_version(tx)?;
    let mut built = 0;
    for name in &names {
        match trigger_sql(name, version) {
            Some(sql) if !in_schema(tx, "trigger", name)? => {
                tx.execute(sql, [])?;
                built += 1;
            }
            Some(_) => {}
            None => {
                tracing::warn!(trigger = %name, "a deferred trigger this program does not defer: forgotten, not run")
            }
        }
        tx.execute("DELETE FROM deferred_triggers WHERE name = ?1", [name])?;
    }
    Ok(built)
}

/// A `deferred_indexes` row's statement if it is one this program defers:
/// a listed name, `CREATE INDEX <name> ON tickets` (or
/// `ticket_reservations`), one statement. Otherwise
/// [`StoreError::DeferredIndex`] naming it: the row's text is not run.
fn checked_index_sql<'a>(name: &str, sql: &'a str) -> Result<&'a str> {
    let ok = DEFERRABLE_INDEXES.contains(&name)
        && !sql.contains(';')
        && sql
            .strip_prefix("CREATE INDEX ")
            .and_then(|s| s.strip_prefix(name))
            .filter(|s| s.starts_with(char::is_whitespace))
            .and_then(|s| s.trim_start().strip_prefix("ON"))
            .filter(|s| s.starts_with(char::is_whitespace))
            .map(str::trim_start)
            .is_some_and(|s| {
                DEFERRED_TABLES.iter().any(|t| {
                    s.strip_prefix(t)
                        .is_some_and(|rest| rest.starts_with([' ', '(']))
                })
            });
    if ok {
        Ok(sql)
    } else {
        Err(StoreError::DeferredIndex(name.to_string()))
    }
}

/// On a device, at a first sync's first page (the synced tables empty, more
/// pages to come): drops the non-unique secondary indexes of the big synced
/// tables, their definitions kept in `deferred_indexes` (same transaction).
/// Inserting 100,000 tickets into nine B-trees each, row by row, was most
/// of a first sync's apply; one sort per index at the end is a fraction of
/// it. The lookups stay correct meanwhile (these indexes are paths, not
/// rules), only slower. Returns how many it dropped.
fn defer_indexes(tx: &Transaction<'_>) -> Result<usize> {
    let tables = DEFERRED_TABLES
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let indexes: Vec<(String, String)> = tx
        .prepare(&format!(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN ({tables}) \
             AND sql IS NOT NULL AND upper(sql) NOT LIKE 'CREATE UNIQUE%' ORDER BY name"
        ))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut dropped = 0;
    for (name, sql) in &indexes {
        // Only what the restore will accept is deferred.
        if checked_index_sql(name, sql).is_err() {
            continue;
        }
        tx.execute(
            "INSERT INTO deferred_indexes (name, sql) VALUES (?1, ?2)",
            params![name, sql],
        )?;
        tx.execute(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")), [])?;
        dropped += 1;
    }
    Ok(dropped)
}

/// Whether a page with more to come starts a first sync: the big synced
/// tables empty and nothing deferred yet.
fn is_first_sync(tx: &Transaction<'_>) -> Result<bool> {
    Ok(tx
        .prepare_cached(
            "SELECT NOT EXISTS (SELECT 1 FROM tickets) AND NOT EXISTS (SELECT 1 FROM ticket_reservations) \
             AND NOT EXISTS (SELECT 1 FROM deferred_indexes) AND NOT EXISTS (SELECT 1 FROM deferred_triggers)",
        )?
        .query_row([], |r| r.get(0))?)
}

/// The `deferred_indexes` rows, each checked ([`checked_index_sql`]): one
/// refused row refuses them all, before any runs.
fn deferred_rows(conn: &rusqlite::Connection) -> Result<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = conn
        .prepare_cached("SELECT name, sql FROM deferred_indexes ORDER BY name")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, sql) in &rows {
        checked_index_sql(name, sql)?;
    }
    Ok(rows)
}

/// Builds one deferred index (unless it exists) and forgets its
/// definition, in the caller's transaction; true if it built it.
fn restore_one(tx: &Transaction<'_>, name: &str, sql: &str) -> Result<bool> {
    let sql = checked_index_sql(name, sql)?;
    let exists = in_schema(tx, "index", name)?;
    if !exists {
        // One statement (`execute` refuses more than one).
        tx.execute(sql, [])?;
    }
    tx.execute("DELETE FROM deferred_indexes WHERE name = ?1", [name])?;
    Ok(!exists)
}

/// Builds again every index a first sync deferred (`defer_indexes`) and
/// forgets their definitions, all in the caller's transaction; returns how
/// many it built. An index that exists already is left as it is.
/// The deferred triggers are created again first ([`restore_triggers`]);
/// the count is of indexes.
pub(super) fn restore_deferred_indexes(tx: &Transaction<'_>) -> Result<usize> {
    restore_triggers(tx)?;
    restore_indexes(tx)
}

/// The indexes of [`restore_deferred_indexes`] alone.
fn restore_indexes(tx: &Transaction<'_>) -> Result<usize> {
    let mut built = 0;
    for (name, sql) in deferred_rows(tx)? {
        built += usize::from(restore_one(tx, &name, &sql)?);
    }
    Ok(built)
}

/// `restore_deferred_indexes` when a database opens (before its
/// migrations, after the schema version is checked): a first sync that
/// stopped between pages (a crash, a lost server) leaves no replica
/// without its indexes for longer than that. Nothing to do (one read) on a
/// database without the table or the rows.
pub(crate) fn restore_deferred_indexes_at_open(conn: &mut rusqlite::Connection) -> Result<()> {
    let has = |table: &str| -> Result<bool> {
        Ok(conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [table],
            |r| r.get(0),
        )? && conn.query_row(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), [], |r| {
            r.get(0)
        })?)
    };
    let (indexes, triggers) = (has("deferred_indexes")?, has("deferred_triggers")?);
    // The triggers in their own transaction, committed first: an index
    // build that fails (refused, a full disk) must not take them back out,
    // or the migrations would run, and the gate write, without them.
    if triggers {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        restore_triggers(&tx)?;
        tx.commit()?;
    }
    if indexes {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        restore_indexes(&tx)?;
        tx.commit()?;
    }
    Ok(())
}

impl Store {
    // ---- server side ----

    /// Numbers the change feed's pending entries: nothing to do on SQLite,
    /// whose one writer gives each entry its seq as it writes it (a
    /// PostgreSQL server numbers entries once they commit; its instances
    /// run this between pulls). Returns how many it numbered.
    pub fn settle_feed(&self) -> Result<i64> {
        Ok(0)
    }

    /// One page of the changes after `cursor` that a device of `venue`
    /// receives: the org-wide rows (operators, signing keys) and its venue's
    /// (the venue row, its slots, the reservations on them and their tickets,
    /// its gates' conflicts), read in the same snapshot as the log. A row that
    /// left the venue's scope (a reservation moved elsewhere, its ticket)
    /// comes as a delete. A cursor from before the feed was scoped answers a
    /// `reset` page from the start: the device drops what it holds first.
    pub fn changes_since(
        &self,
        orq: Orq,
        venue: VenueId,
        cursor: i64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<ChangePage> {
        let limit = limit.clamp(1, 5000);
        self.read(|tx| {
            let scoped_from: i64 = tx
                .prepare_cached("SELECT scoped_from FROM change_feed")?
                .query_row([], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            let reset = cursor > 0 && cursor < scoped_from;
            let cursor = if reset { 0 } else { cursor };
            // Two index ranges (org-wide, this venue), merged in seq order.
            let mut log = tx.prepare_cached(
                "SELECT seq, entity, entity_id, op FROM ( \
                   SELECT * FROM (SELECT seq, entity, entity_id, op FROM change_log WHERE orq = ?1 AND scope = 0 AND seq > ?2 ORDER BY seq LIMIT ?3) \
                   UNION ALL \
                   SELECT * FROM (SELECT seq, entity, entity_id, op FROM change_log WHERE orq = ?1 AND scope = ?4 AND seq > ?2 ORDER BY seq LIMIT ?3) \
                 ) ORDER BY seq LIMIT ?3",
            )?;
            let entries: Vec<(i64, String, String, String)> = log
                .query_map(params![Sql(orq), cursor, limit, Sql(venue)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut changes = Vec::with_capacity(entries.len());
            let mut last_seq = None;
            // Each table's row statement, prepared once per page.
            let mut selects: Vec<Option<rusqlite::CachedStatement<'_>>> = ENTITIES.iter().map(|_| None).collect();
            for (seq, name, entity_id, op) in entries {
                last_seq = Some(seq);
                let (name, entity_id, op) = match name.as_str() {
                    // `venue/entity/id`: the row left this venue.
                    "scope_exit" => match entity_id.splitn(3, '/').collect::<Vec<_>>()[..] {
                        [_, entity, id] => (entity.to_string(), id.to_string(), "delete".to_string()),
                        _ => continue,
                    },
                    _ => (name, entity_id, op),
                };
                let Some(i) = ENTITIES.iter().position(|e| e.table == name) else { continue };
                let row = if op == "upsert" {
                    let select = match &mut selects[i] {
                        Some(stmt) => stmt,
                        slot => slot.insert(tx.prepare_cached(&select_row_sql(&ENTITIES[i]))?),
                    };
                    match select.query([&entity_id])?.next()? {
                        Some(r) => Some(row_json(&ENTITIES[i], r)?),
                        None => None,
                    }
                } else {
                    None
                };
                // A row gone behind the triggers' back goes as a delete.
                let op = sent_op(op, row.is_some());
                changes.push(Change { seq, entity: name, entity_id, op, row });
            }
            let next_cursor = match last_seq {
                Some(seq) => seq,
                // A reset with nothing to send still leaves the old cursor behind.
                None if reset => scoped_from,
                None => cursor,
            };
            let remaining: i64 = tx
                .prepare_cached(
                    "SELECT (SELECT count(*) FROM change_log WHERE orq = ?1 AND scope = 0 AND seq > ?2) \
                          + (SELECT count(*) FROM change_log WHERE orq = ?1 AND scope = ?3 AND seq > ?2)",
                )?
                .query_row(params![Sql(orq), next_cursor, Sql(venue)], |r| r.get(0))?;
            Ok(ChangePage { changes, next_cursor, has_more: remaining > 0, remaining, server_time: now, reset })
        })
    }

    /// [`Store::changes_since`]'s page as the JSON text the server answers
    /// (what serde_json writes for it; PostgreSQL writes the same text
    /// without building the page's values).
    pub fn changes_page_json(
        &self,
        orq: Orq,
        venue: VenueId,
        cursor: i64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>> {
        let page = self.changes_since(orq, venue, cursor, limit, now)?;
        serde_json::to_vec(&page).map_err(|e| StoreError::NotJson(e.to_string()))
    }

    /// Conflicts of the org (double entries, admissions the server would have
    /// refused), newest first (for supervisors).
    pub fn list_conflicts(&self, orq: Orq) -> Result<Vec<serde_json::Value>> {
        self.list_conflicts_in(orq, None)
    }

    /// `list_conflicts` for a caller bound to `venue`: that venue's only
    /// (another venue's conflicts name its tickets and gates).
    pub fn list_conflicts_in(
        &self,
        orq: Orq,
        venue: Option<VenueId>,
    ) -> Result<Vec<serde_json::Value>> {
        let e = entity("sync_conflicts").ok_or(StoreError::Db(rusqlite::Error::InvalidQuery))?;
        self.read(|tx| {
            let sql = select_json_sql(e).replace(
                " WHERE id = ?1",
                " WHERE orq = ?1 AND (?2 IS NULL OR venue_id = ?2) ORDER BY id DESC",
            );
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt.query_map(params![Sql(orq), venue.map(|v| v.0)], |r| {
                r.get::<_, String>(0)
            })?;
            rows.map(|j| Ok(serde_json::from_str(&j?).unwrap_or_default()))
                .collect()
        })
    }

    // ---- device side ----

    /// Applies one pulled page and stores its cursor in the same transaction,
    /// so an interrupted pull resumes exactly where it stopped. Rows with a
    /// local change the server has not acknowledged yet are left alone.
    pub fn apply_change_page(
        &self,
        page: &ChangePage,
        clock_offset_ms: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        self.apply_pulled_page(&PulledPage::from(page), clock_offset_ms, now)
    }

    /// [`Store::apply_change_page`] for a page read as a [`PulledPage`]
    /// (the sync engine's: no JSON map per row).
    pub fn apply_pulled_page(
        &self,
        page: &PulledPage,
        clock_offset_ms: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        // A change the apply would misread refuses the page before anything
        // is written (no write lock taken, the cursor stays).
        page.check()?;
        // Rows arrive in change order, not dependency order (a slot updated
        // after its reservations comes after them): foreign keys are checked
        // by the server, not by the replica.
        let applied = self.write_without_foreign_keys(|tx| {
            let mut applied = 0;
            if page.reset {
                drop_synced_rows(tx)?;
            }
            // A first sync (the synced tables empty, more pages to come)
            // fills the tables without their secondary indexes, built again
            // with its last page (or the next open, after a crash).
            if page.has_more && is_first_sync(tx)? {
                defer_indexes(tx)?;
                defer_triggers(tx)?;
            }
            super::lan::release_peer_holds(tx, Some(now))?;
            super::lan::prune_peer_events(tx, now)?;
            // Most pages meet an empty outbox: then no row needs the check.
            let any_pending: bool =
                tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM outbox WHERE state = 'pending')")?.query_row([], |r| r.get(0))?;
            // Once per page, not per change: each table's statements (built
            // when first needed) and the tickets with a peer's admission not
            // yet settled (nothing below adds one; a settled one leaves).
            let mut upserts: Vec<Option<rusqlite::CachedStatement<'_>>> = ENTITIES.iter().map(|_| None).collect();
            let mut deletes: Vec<Option<rusqlite::CachedStatement<'_>>> = ENTITIES.iter().map(|_| None).collect();
            // Read at the page's first ticket: a page without tickets (a
            // steady-state poll) does not pay for it.
            let mut admissions: Option<std::collections::HashMap<String, bool>> = None;
            for change in &page.changes {
                let Some(i) = ENTITIES.iter().position(|e| e.table == change.entity) else { continue };
                let e = &ENTITIES[i];
                if any_pending {
                    let pending: bool = tx
                        .prepare_cached("SELECT EXISTS (SELECT 1 FROM outbox WHERE state = 'pending' AND entity = ?1 AND entity_id = ?2)")?
                        .query_row(params![change.entity, change.entity_id], |r| r.get(0))?;
                    if pending {
                        continue;
                    }
                }
                // A peer's admission (issue 14) is held while the server's row
                // has no verification (the origin may not have uploaded yet):
                // the row is applied but its verification columns stay. The
                // hold ends when the server shows a verification, the origin
                // undoes it, is revoked, or after PEER_HOLD_HOURS.
                let mut held = false;
                if change.entity == "tickets" {
                    let admissions = match &mut admissions {
                        Some(a) => a,
                        None => admissions.insert(super::lan::peer_admissions(tx, now)?),
                    };
                    let unverified =
                        change.row.as_ref().is_some_and(|r| r.get("verified_at").is_none_or(|v| *v == Cell::Null));
                    if unverified {
                        held = admissions.get(&change.entity_id).copied().unwrap_or(false);
                    } else if change.row.is_some() && admissions.remove(&change.entity_id).is_some() {
                        super::lan::settle_peer_admissions(tx, &change.entity_id)?;
                    }
                }
                match (&*change.op, &change.row) {
                    ("upsert", Some(row)) if held => {
                        let kept: Option<[rusqlite::types::Value; 5]> = tx
                            .prepare_cached(
                                "SELECT verified_at, verified_by, status, activation_status, activated_at FROM tickets WHERE ticket_code = ?1",
                            )?
                            .query_row([&change.entity_id], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]))
                            .optional()?;
                        upsert(tx, &mut upserts[i], e)?.execute(rusqlite::params_from_iter(pulled_values(i, row)))?;
                        match kept {
                            Some([a, b, c, d, f]) if a != rusqlite::types::Value::Null => {
                                tx.prepare_cached(
                                    "UPDATE tickets SET verified_at = ?1, verified_by = ?2, status = ?3, activation_status = ?4, \
                                     activated_at = ?5 WHERE ticket_code = ?6",
                                )?
                                .execute(params![a, b, c, d, f, change.entity_id])?;
                            }
                            // The row is gone (a reset dropped the replica's
                            // synced rows) or lost its verification: the held
                            // admission is applied again from the peer's event.
                            _ => super::lan::reapply_peer_hold(tx, &change.entity_id, now)?,
                        }
                    }
                    ("upsert", Some(row)) => {
                        upsert(tx, &mut upserts[i], e)?.execute(rusqlite::params_from_iter(pulled_values(i, row)))?;
                    }
                    ("delete", _) => {
                        let delete = match &mut deletes[i] {
                            Some(stmt) => stmt,
                            slot => slot.insert(tx.prepare_cached(&format!("DELETE FROM {} WHERE {} = ?1", e.table, e.key))?),
                        };
                        delete.execute([&change.entity_id])?;
                    }
                    // Any other change was refused whole by `check` above;
                    // here too it never falls through to a write.
                    _ => {
                        if let Some(refused) = change.refusal() {
                            return Err(refused);
                        }
                        continue;
                    }
                }
                applied += 1;
            }
            tx.execute(
                "UPDATE device_identity SET cursor = ?1, last_sync_at = ?2, server_reachable = 1, last_error = NULL, \
                 clock_offset_ms = coalesce(?3, clock_offset_ms)",
                params![page.next_cursor, ts(now), clock_offset_ms],
            )?;
            Ok(applied)
        })?;
        // The last page, committed with its cursor: the deferred indexes
        // are built after it, one per transaction. The page is applied
        // whatever the build does: a failed build (a locked file, a refused
        // definition) is not a failed sync, and reporting it as one would
        // show "sync failed" on a complete replica at every round. Its
        // definitions stay for the next round's end or the next open.
        if !page.has_more {
            if let Err(error) = self.restore_deferred_indexes() {
                tracing::warn!(%error, "the deferred indexes are not built yet; the next sync or start builds them");
            }
        }
        Ok(applied)
    }

    /// Builds again the indexes a first sync deferred, one transaction per
    /// index (its `CREATE INDEX` and the removal of its definition
    /// together): a gate's own writes (a verification, a passage) wait for
    /// one index's build at most, not for all of them. Every definition is
    /// checked before any index is built ([`StoreError::DeferredIndex`]);
    /// the deferred triggers are created again first, in their own
    /// transaction, whether or not the indexes then build. A stop
    /// midway leaves the rest to the next call (the next sync's end, the
    /// next open). Returns how many it built; one read when none is
    /// deferred.
    pub fn restore_deferred_indexes(&self) -> Result<usize> {
        // One read decides: a steady-state round's last page (nothing
        // deferred) takes no write lock and syncs no WAL. The triggers
        // first, all in one short transaction (no sort); the count is of
        // indexes.
        let (triggers, pending) = self.read(|tx| {
            let triggers: bool = tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM deferred_triggers)")?
                .query_row([], |r| r.get(0))?;
            // A refused index definition still lets the triggers come back.
            Ok((triggers, deferred_rows(tx)))
        })?;
        if triggers {
            self.write(restore_triggers)?;
        }
        let pending = pending?;
        let mut built = 0;
        for (name, _) in pending {
            built += usize::from(self.write(|tx| {
                // Read again: another call may have built it meanwhile.
                let sql: Option<String> = tx
                    .query_row(
                        "SELECT sql FROM deferred_indexes WHERE name = ?1",
                        [&name],
                        |r| r.get(0),
                    )
                    .optional()?;
                match sql {
                    Some(sql) => restore_one(tx, &name, &sql),
                    None => Ok(false),
                }
            })?);
        }
        Ok(built)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::types::Value;
    use serde_json::json;

    const AT: &str = "2026-11-30T12:00:00.000Z";

    /// A new gate's replica at `path`, paired, empty.
    fn gate(path: &std::path::Path) -> crate::Store {
        let store = crate::Store::open(path).unwrap();
        let info = crate::domain::sync::protocol::DeviceInfo {
            device_id: 1,
            orq: 1,
            venue_id: 1,
            name: "Gate A".into(),
        };
        store.pair(&info, "http://server", "token").unwrap();
        store
    }

    /// A first sync's pages: `n` tickets, each with its reservation, in
    /// pages of `size` changes.
    fn ticket_pages(n: usize, size: usize) -> Vec<ChangePage> {
        let at = AT;
        let mut changes = Vec::with_capacity(2 * n);
        for i in 0..n {
            let code = format!("S-{i:06}");
            changes.push(json!({
                "seq": changes.len() + 1, "entity": "tickets", "entity_id": code, "op": "upsert",
                "row": {
                    "ticket_code": code, "orq": 1, "order_id": format!("O-{}", i % 97), "product_id": null,
                    "user_id": null, "status": "RESERVED", "entitlements": "{}",
                    "expires_at": null, "created_at": at, "updated_at": at,
                    "customer_email": format!("c{}@example.com", i % 13), "customer_phone": "+34600000001",
                    "reserved_at": at, "verified_at": null, "verified_by": null,
                    "activation_status": "active", "activated_at": at,
                    "activation_mode": "immediate", "code_serial": null, "left_at": null,
                    "verified_gate": null,
                }
            }));
            let id = format!("01900000-0000-7000-8000-{i:012}");
            changes.push(json!({
                "seq": changes.len() + 1, "entity": "ticket_reservations", "entity_id": id, "op": "upsert",
                "row": {
                    "id": id, "ticket_id": code, "slot_id": "slot-1",
                    "customer_email": "bench@example.com", "customer_phone": "+34600000001",
                    "reserved_at": at, "status": "RESERVED", "orq": 1,
                    "created_at": at, "updated_at": at, "no_show_at": null,
                }
            }));
        }
        let total = changes.len();
        changes
            .chunks(size)
            .map(|c| {
                let last = c.last().unwrap()["seq"].as_i64().unwrap();
                serde_json::from_value(json!({
                    "changes": c, "next_cursor": last, "has_more": last < total as i64,
                    "remaining": total as i64 - last, "server_time": at,
                }))
                .unwrap()
            })
            .collect()
    }

    /// Index definitions, rows, deferred definitions, cursor, trigger
    /// definitions, deferred triggers.
    type Replica = (
        Vec<(String, String)>,
        Vec<String>,
        i64,
        i64,
        Vec<(String, String)>,
        i64,
    );

    /// The replica's indexes (name, definition) and synced rows, to compare.
    fn replica(store: &crate::Store) -> Replica {
        store
            .read(|tx| {
                let indexes = tx
                    .prepare("SELECT name, coalesce(sql, '') FROM sqlite_master WHERE type = 'index' ORDER BY name")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let rows = tx
                    .prepare(
                        "SELECT json_array(t.ticket_code, t.order_id, t.customer_email, t.status, r.id, r.slot_id) \
                         FROM tickets t LEFT JOIN ticket_reservations r ON r.ticket_id = t.ticket_code ORDER BY t.ticket_code",
                    )?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?;
                let deferred: i64 = tx.query_row("SELECT count(*) FROM deferred_indexes", [], |r| r.get(0))?;
                let cursor: i64 = tx.query_row("SELECT cursor FROM device_identity", [], |r| r.get(0))?;
                let triggers = tx
                    .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let deferred_triggers: i64 = tx.query_row("SELECT count(*) FROM deferred_triggers", [], |r| r.get(0))?;
                Ok((indexes, rows, deferred, cursor, triggers, deferred_triggers))
            })
            .unwrap()
    }

    fn index_count(store: &crate::Store, table: &str) -> i64 {
        store
            .read(|tx| {
                Ok(tx.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL",
                    [table],
                    |r| r.get(0),
                )?)
            })
            .unwrap()
    }

    /// Issue 13: a first sync into an empty replica fills the tables
    /// without their secondary indexes and builds them with its last page;
    /// it ends with the same rows, indexes and cursor as the row-by-row
    /// path (a replica that was not empty: one ticket applied before).
    #[test]
    fn a_first_sync_ends_with_the_rows_and_indexes_of_the_row_by_row_path() {
        let dir = tempfile::tempdir().unwrap();
        let pages = ticket_pages(3_000, 1_000);
        let now = AT.parse().unwrap();
        let first = gate(&dir.path().join("first.db"));
        let before = index_count(&first, "tickets");
        assert!(before >= 8, "the tickets' secondary indexes: {before}");
        for (k, page) in pages.iter().enumerate() {
            first.apply_change_page(page, None, now).unwrap();
            if page.has_more {
                assert_eq!(index_count(&first, "tickets"), 0, "page {k}: deferred");
                assert_eq!(
                    index_count(&first, "ticket_reservations"),
                    0,
                    "page {k}: deferred"
                );
            }
        }
        // The row-by-row path: a replica that holds a row already.
        let other = gate(&dir.path().join("other.db"));
        let mut one = pages[0].clone();
        one.changes.truncate(1);
        one.has_more = false;
        one.next_cursor = 1;
        other.apply_change_page(&one, None, now).unwrap();
        assert_eq!(index_count(&other, "tickets"), before);
        for page in &pages {
            other.apply_change_page(page, None, now).unwrap();
            assert_eq!(index_count(&other, "tickets"), before, "never deferred");
        }
        let (a, b) = (replica(&first), replica(&other));
        assert_eq!(a.1.len(), 3_000);
        assert_eq!(a, b, "same indexes, rows, nothing deferred, same cursor");
        assert_eq!(a.2, 0);
        assert_eq!(a.3, 6_000);
    }

    /// A first sync stopped between pages (a crash, a lost server) leaves
    /// a consistent replica: the pages applied, their cursor, the deferred
    /// indexes' definitions. The next sync resumes at the cursor and builds
    /// them with its last page; or the next open builds them at once.
    #[test]
    fn a_first_sync_stopped_between_pages_is_completed_later() {
        let dir = tempfile::tempdir().unwrap();
        let pages = ticket_pages(2_000, 1_000);
        let now = AT.parse().unwrap();
        let reference = gate(&dir.path().join("reference.db"));
        for page in &pages {
            reference.apply_change_page(page, None, now).unwrap();
        }
        let want = replica(&reference);

        // Stopped after two pages; the next sync goes on from the cursor.
        let path = dir.path().join("resumed.db");
        let store = gate(&path);
        for page in &pages[..2] {
            store.apply_change_page(page, None, now).unwrap();
        }
        drop(store);
        let store = crate::Store::open(&path).unwrap();
        let (indexes, rows, deferred, cursor, triggers, deferred_triggers) = replica(&store);
        assert_eq!(
            (rows.len(), deferred, cursor, deferred_triggers),
            (1_000, 0, 2_000, 0),
            "reopened: built again"
        );
        assert_eq!(indexes, want.0);
        assert_eq!(triggers, want.4, "reopened: the triggers created again");
        for page in &pages[2..] {
            store.apply_change_page(page, None, now).unwrap();
        }
        assert_eq!(replica(&store), want);

        // Stopped after one page, no reopen: the sync's last page builds them.
        let store = gate(&dir.path().join("continued.db"));
        store.apply_change_page(&pages[0], None, now).unwrap();
        let (_, rows, deferred, cursor, _, deferred_triggers) = replica(&store);
        assert_eq!(rows.len(), 500);
        assert_eq!(deferred_triggers, DEFERRABLE_TRIGGERS.len() as i64);
        assert!(
            deferred >= 8,
            "the definitions kept with the page: {deferred}"
        );
        assert_eq!(cursor, 1_000);
        // A failing page (a CHECK refuses its row) leaves the replica as
        // the page before left it.
        let mut bad = pages[1].clone();
        bad.changes[0].row.as_mut().unwrap()["status"] = json!("NOT_A_STATUS");
        assert!(store.apply_change_page(&bad, None, now).is_err());
        assert_eq!(replica(&store).3, 1_000, "the cursor did not move");
        assert_eq!(replica(&store).2, deferred);
        for page in &pages[1..] {
            store.apply_change_page(page, None, now).unwrap();
        }
        assert_eq!(replica(&store), want);
    }

    /// Issue 13: a change of a synced table that is neither an upsert with
    /// a row nor a delete (an op this gate does not know, an upsert whose
    /// row is null or absent, or whose row's key is missing or not its
    /// entity_id) refuses its page whole, with a typed error:
    /// nothing of the page is applied (not its good changes either), the
    /// cursor stays. Before, such a change was applied as a DELETE.
    #[test]
    fn an_unknown_op_or_an_upsert_without_a_row_refuses_the_page() {
        let dir = tempfile::tempdir().unwrap();
        let store = gate(&dir.path().join("gate.db"));
        let now = AT.parse().unwrap();
        let pages = ticket_pages(3, 100);
        store.apply_change_page(&pages[0], None, now).unwrap();
        let before = replica(&store);
        assert_eq!((before.1.len(), before.3), (3, 6));
        // A new ticket first (must not land), then the bad change on an
        // existing one.
        let fresh = ticket_pages(4, 100)[0].changes[6].clone();
        assert_eq!(fresh.entity_id, "S-000003");
        let page = |bad: Change| {
            let mut page = pages[0].clone();
            page.changes = vec![fresh.clone(), bad];
            for (k, c) in page.changes.iter_mut().enumerate() {
                c.seq = 7 + k as i64;
            }
            page.next_cursor = 8;
            page
        };
        let existing = pages[0].changes[2].clone();
        assert_eq!(existing.entity_id, "S-000001");
        let frobnicate = Change {
            op: "frobnicate".into(),
            ..existing.clone()
        };
        let without_row = Change {
            row: None,
            ..existing.clone()
        };
        for (bad, reason) in [
            (frobnicate, "unknown op \"frobnicate\""),
            (without_row, "an upsert without a row"),
        ] {
            let err = store.apply_change_page(&page(bad), None, now).unwrap_err();
            match &err {
                StoreError::RefusedPage {
                    seq,
                    entity,
                    entity_id,
                    reason: why,
                } => assert_eq!(
                    (*seq, entity.as_str(), entity_id.as_str(), why.as_str()),
                    (8, "tickets", "S-000001", reason)
                ),
                other => panic!("not a refused page: {other}"),
            }
            assert_eq!(err.code(), "SYNC_PROTOCOL_ERROR");
            assert_eq!(replica(&store), before, "rows and cursor unchanged");
        }
        // An upsert whose row is another ticket than its entity_id: the row
        // would be written under its own key, past the checks on entity_id
        // that keep a gate's unacknowledged changes.
        let elsewhere = Change {
            entity_id: "S-000002".into(),
            ..existing.clone()
        };
        match store.apply_change_page(&page(elsewhere), None, now) {
            Err(StoreError::RefusedPage {
                entity_id, reason, ..
            }) => assert_eq!(
                (entity_id.as_str(), reason.as_str()),
                (
                    "S-000002",
                    "an upsert whose row's ticket_code is not its entity_id"
                )
            ),
            other => panic!("not a refused page: {other:?}"),
        }
        assert_eq!(replica(&store), before, "rows and cursor unchanged");
        // A row without its key (SQLite would give it a key of its own), and
        // an integer key that is not the entity_id.
        let mut keyless = existing.clone();
        keyless
            .row
            .as_mut()
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove("ticket_code");
        let other_venue = Change {
            entity: "venues".into(),
            entity_id: "5".into(),
            row: Some(serde_json::json!({"id": 6, "orq": 1, "name": "Elsewhere"})),
            ..existing.clone()
        };
        for (bad, id, reason) in [
            (
                keyless,
                "S-000001",
                "an upsert whose row's ticket_code is not its entity_id",
            ),
            (
                other_venue,
                "5",
                "an upsert whose row's id is not its entity_id",
            ),
        ] {
            match store.apply_change_page(&page(bad), None, now) {
                Err(StoreError::RefusedPage {
                    entity_id,
                    reason: why,
                    ..
                }) => assert_eq!((entity_id.as_str(), why.as_str()), (id, reason)),
                other => panic!("not a refused page: {other:?}"),
            }
            assert_eq!(replica(&store), before, "rows and cursor unchanged");
        }
        // The same page as the gate reads it off the wire: a null row and
        // an absent one are both an upsert without a row.
        for row in [r#","row":null"#, ""] {
            let text = format!(
                r#"{{"changes":[{{"seq":7,"entity":"tickets","entity_id":"S-000001","op":"upsert"{row}}}],"next_cursor":7,"has_more":false,"remaining":0,"server_time":"{AT}"}}"#
            );
            let pulled: PulledPage = serde_json::from_str(&text).unwrap();
            assert!(matches!(
                store.apply_pulled_page(&pulled, None, now),
                Err(StoreError::RefusedPage { .. })
            ));
            assert_eq!(replica(&store), before);
        }
        // A table this gate does not sync is skipped whatever its op; a
        // delete with a row is a delete.
        let mut fine = page(Change {
            entity: "future_table".into(),
            op: "frobnicate".into(),
            ..existing.clone()
        });
        fine.changes.push(Change {
            seq: 9,
            op: "delete".into(),
            ..pages[0].changes[4].clone()
        });
        fine.next_cursor = 9;
        store.apply_change_page(&fine, None, now).unwrap();
        let after = replica(&store);
        assert_eq!(after.3, 9);
        assert!(after.1.iter().any(|r| r.contains("S-000003")));
        assert!(!after.1.iter().any(|r| r.contains("S-000002")));
    }

    /// A log entry whose row was deleted behind the triggers' back (here
    /// with the delete trigger dropped, as a hand-made fix or a restore of
    /// the table might) goes out as a `delete` (`sent_op`), in the page and
    /// the route's text, and a gate applies it: the row goes, the pull goes
    /// on. Before, it went out as an upsert with a null row, which the gate
    /// refuses whole (`RefusedPage`): its pulls stopped there for good.
    #[test]
    fn an_entry_whose_row_was_deleted_behind_the_triggers_goes_as_a_delete() {
        use crate::domain::{NewSlot, Orq, SlotChange, VenueId};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.db");
        let server = crate::Store::open(&path).unwrap();
        let now: DateTime<Utc> = AT.parse().unwrap();
        let venue = server.add_venue(Orq(1), "Prado", "UTC", now).unwrap();
        assert_eq!(venue.id, VenueId(1), "the gate's venue");
        let slots: Vec<_> = ["09:00", "10:00", "11:00"]
            .iter()
            .map(|start| {
                let new = NewSlot::validate(1, "2026-12-01", start, "12:00", Some(10)).unwrap();
                server.create_slot(Orq(1), &new, now).unwrap()
            })
            .collect();
        let first = server.changes_since(Orq(1), venue.id, 0, 100, now).unwrap();
        assert_eq!(first.changes.len(), 4, "the venue and its 3 slots");
        let gate = gate(&dir.path().join("gate.db"));
        gate.apply_change_page(&first, None, now).unwrap();
        let gate_slots = |gate: &crate::Store| -> Vec<String> {
            gate.read(|tx| {
                Ok(tx
                    .prepare("SELECT id FROM reservation_slots ORDER BY id")?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?)
            })
            .unwrap()
        };
        assert_eq!(gate_slots(&gate).len(), 3);

        // Two slots change (logged as upserts), then one of them goes with
        // its delete trigger dropped: its entry stays an upsert.
        for slot in &slots[..2] {
            let change = SlotChange {
                total_capacity: Some(11),
                status: None,
            };
            server.update_slot(Orq(1), slot.id, change, now).unwrap();
        }
        let gone = slots[0].id.to_string();
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(&format!(
                "DROP TRIGGER reservation_slots_log_delete; \
                 DELETE FROM reservation_slots WHERE id = '{gone}';"
            ))
            .unwrap();
        let op: String = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row(
                "SELECT op FROM change_log WHERE entity = 'reservation_slots' AND entity_id = ?1",
                [&gone],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(op, "upsert", "the delete bypassed the log");

        let cursor = first.next_cursor;
        let page = server
            .changes_since(Orq(1), venue.id, cursor, 100, now)
            .unwrap();
        let sent: Vec<(&str, &str, bool)> = page
            .changes
            .iter()
            .map(|c| (c.entity_id.as_str(), c.op.as_str(), c.row.is_some()))
            .collect();
        let kept = slots[1].id.to_string();
        assert_eq!(
            sent,
            [
                (gone.as_str(), "delete", false),
                (kept.as_str(), "upsert", true)
            ]
        );
        let text = server
            .changes_page_json(Orq(1), venue.id, cursor, 100, now)
            .unwrap();
        let pulled: PulledPage = serde_json::from_slice(&text).unwrap();
        gate.apply_pulled_page(&pulled, None, now).unwrap();
        let mut want = vec![kept, slots[2].id.to_string()];
        want.sort();
        assert_eq!(gate_slots(&gate), want, "the gate dropped the row too");
    }

    /// A first sync of 1,500 tickets in pages of 1,000 at `path`, all but
    /// its last page applied; that page, and the replica a whole first sync
    /// leaves (a reference database in `dir`).
    fn all_but_the_last_page(
        dir: &std::path::Path,
        path: &std::path::Path,
    ) -> (crate::Store, ChangePage, Replica) {
        let pages = ticket_pages(1_500, 1_000);
        let now = AT.parse().unwrap();
        let reference = gate(&dir.join("reference.db"));
        for page in &pages {
            reference.apply_change_page(page, None, now).unwrap();
        }
        let want = replica(&reference);
        let store = gate(path);
        let (last, rest) = pages.split_last().unwrap();
        for page in rest {
            store.apply_change_page(page, None, now).unwrap();
        }
        (store, last.clone(), want)
    }

    /// A first sync whose last page fails to apply: the cursor stays, the
    /// indexes stay deferred (their definitions kept); the next open builds
    /// them, and the last page applied again ends as a whole sync does.
    #[test]
    fn a_failed_last_page_leaves_the_indexes_deferred_until_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gate.db");
        let (store, last, want) = all_but_the_last_page(dir.path(), &path);
        let now = AT.parse().unwrap();
        let before = replica(&store);
        assert_eq!(before.2, DEFERRABLE_INDEXES.len() as i64);
        let mut bad = last.clone();
        assert!(!bad.has_more);
        bad.changes.last_mut().unwrap().row.as_mut().unwrap()["status"] = json!("NOT_A_STATUS");
        assert!(store.apply_change_page(&bad, None, now).is_err());
        assert_eq!(replica(&store), before, "cursor, rows, deferred: unchanged");
        assert_eq!(index_count(&store, "tickets"), 0);
        drop(store);
        let store = crate::Store::open(&path).unwrap();
        let (indexes, _, deferred, cursor, triggers, deferred_triggers) = replica(&store);
        assert_eq!(
            (deferred, cursor, deferred_triggers),
            (0, before.3, 0),
            "built at open"
        );
        assert_eq!(indexes, want.0);
        assert_eq!(triggers, want.4, "the triggers created at open");
        store.apply_change_page(&last, None, now).unwrap();
        assert_eq!(replica(&store), want);
    }

    /// The last page applies (rows, cursor, `last_error` cleared) even when
    /// the build of the deferred indexes after it fails: the sync is not
    /// reported failed; the definitions stay and a later call builds them.
    #[test]
    fn a_failed_index_build_after_the_last_page_does_not_fail_the_page() {
        let dir = tempfile::tempdir().unwrap();
        let (store, last, want) = all_but_the_last_page(dir.path(), &dir.path().join("gate.db"));
        let now = AT.parse().unwrap();
        add_evil(&store);
        store.apply_change_page(&last, None, now).unwrap();
        let (_, _, deferred, cursor, triggers, deferred_triggers) = replica(&store);
        assert_eq!(cursor, want.3, "the last page's cursor is committed");
        assert_eq!(
            (triggers, deferred_triggers),
            (want.4.clone(), 0),
            "a refused index keeps no trigger away"
        );
        assert_eq!(
            deferred,
            DEFERRABLE_INDEXES.len() as i64 + 1,
            "nothing built, nothing run"
        );
        assert_eq!(index_count(&store, "tickets"), 0);
        forget_evil_then_build(&store);
        assert_eq!(replica(&store), want);
    }

    /// A `deferred_indexes` row that is not one of the deferred indexes (a
    /// listed name with another statement, a name not listed) is refused
    /// with an error naming it, and no index runs: none built, no
    /// definition removed. The triggers are created again all the same
    /// (they do not wait for the indexes). The rows as the first page left
    /// them build.
    #[test]
    fn a_tampered_deferred_index_is_refused_unrun_and_the_triggers_still_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let pages = ticket_pages(500, 400);
        let store = gate(&dir.path().join("gate.db"));
        let all_triggers = triggers(&store);
        store
            .apply_change_page(&pages[0], None, AT.parse().unwrap())
            .unwrap();
        let (_, _, deferred, ..) = replica(&store);
        assert_eq!(deferred, DEFERRABLE_INDEXES.len() as i64);
        for (name, sql) in [
            (
                "idx_tickets_status",
                "CREATE INDEX idx_tickets_status ON tickets (status); DROP TABLE tickets",
            ),
            ("idx_tickets_status", "DROP TABLE tickets"),
            (
                "idx_tickets_status",
                "CREATE INDEX idx_tickets_status ON venues (id)",
            ),
            ("idx_evil", "CREATE INDEX idx_evil ON tickets (status)"),
        ] {
            let saved: String = store
                .write(|tx| {
                    let saved = tx.query_row(
                        "SELECT sql FROM deferred_indexes WHERE name = 'idx_tickets_status'",
                        [],
                        |r| r.get(0),
                    )?;
                    tx.execute(
                        "INSERT OR REPLACE INTO deferred_indexes (name, sql) VALUES (?1, ?2)",
                        params![name, sql],
                    )?;
                    Ok(saved)
                })
                .unwrap();
            let before = replica(&store);
            let err = store.restore_deferred_indexes().unwrap_err();
            assert!(
                matches!(&err, StoreError::DeferredIndex(n) if n == name),
                "{sql}: {err}"
            );
            assert!(err.to_string().contains(name), "{err}");
            let after = replica(&store);
            assert_eq!(
                (&after.0, &after.1, after.2, after.3),
                (&before.0, &before.1, before.2, before.3),
                "{sql}: no index ran"
            );
            assert_eq!(
                (&after.4, after.5),
                (&all_triggers, 0),
                "{sql}: the triggers came back all the same"
            );
            assert_eq!(index_count(&store, "tickets"), 0);
            store
                .write(|tx| {
                    tx.execute("DELETE FROM deferred_indexes WHERE name = 'idx_evil'", [])?;
                    tx.execute(
                        "UPDATE deferred_indexes SET sql = ?1 WHERE name = 'idx_tickets_status'",
                        [&saved],
                    )?;
                    Ok(())
                })
                .unwrap();
        }
        assert_eq!(
            store.restore_deferred_indexes().unwrap(),
            DEFERRABLE_INDEXES.len()
        );
        assert_eq!(replica(&store).2, 0);
        assert_eq!(replica(&store).5, 0);
        assert_eq!(index_count(&store, "tickets"), 8);
    }

    /// A tampered `deferred_indexes` row (`idx_evil`), refused by a build.
    fn add_evil(store: &crate::Store) {
        store
            .write(|tx| {
                tx.execute(
                    "INSERT INTO deferred_indexes (name, sql) VALUES ('idx_evil', 'DROP TABLE tickets')",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
    }

    /// Removes the tampered `idx_evil` row; every deferred index builds.
    fn forget_evil_then_build(store: &crate::Store) {
        store
            .write(|tx| {
                tx.execute("DELETE FROM deferred_indexes WHERE name = 'idx_evil'", [])?;
                Ok(())
            })
            .unwrap();
        assert_eq!(
            store.restore_deferred_indexes().unwrap(),
            DEFERRABLE_INDEXES.len()
        );
    }

    /// The gate's triggers (name, definition).
    fn triggers(store: &crate::Store) -> Vec<(String, String)> {
        store
            .read(|tx| {
                Ok(tx
                    .prepare(
                        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name",
                    )?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .unwrap()
    }

    /// A first sync drops the log's insert triggers of tickets and
    /// reservations with its first page and creates them again, exactly as
    /// the migrations made them, with its last; a name it does not defer,
    /// put in `deferred_triggers`, is forgotten unrun and the indexes are
    /// built anyway.
    #[test]
    fn a_first_sync_drops_the_insert_triggers_and_creates_them_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = gate(&dir.path().join("gate.db"));
        let before = triggers(&store);
        let before_indexes = index_count(&store, "tickets");
        for name in DEFERRABLE_TRIGGERS {
            let made = before
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, sql)| sql.as_str());
            assert_eq!(
                trigger_sql(name, crate::MIGRATIONS.len()),
                made,
                "{name}: the migrations' text"
            );
        }
        assert_eq!(
            trigger_sql("tickets_log_update", crate::MIGRATIONS.len()),
            None
        );
        // Before migration 0004 made them, there is no text to create.
        assert_eq!(trigger_sql("tickets_log_insert", 3), None);
        let pages = ticket_pages(500, 400);
        store
            .apply_change_page(&pages[0], None, AT.parse().unwrap())
            .unwrap();
        let during = triggers(&store);
        assert_eq!(during.len(), before.len() - DEFERRABLE_TRIGGERS.len());
        assert!(during
            .iter()
            .all(|(n, _)| !DEFERRABLE_TRIGGERS.contains(&n.as_str())));
        store
            .write(|tx| {
                tx.execute(
                    "INSERT INTO deferred_triggers (name) VALUES ('tickets_log_update')",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
        // The unknown name is forgotten (never run), and the rest is
        // built anyway: it must not stop the rebuild at every round.
        assert!(index_count(&store, "tickets") < before_indexes);
        store.restore_deferred_indexes().unwrap();
        assert_eq!(triggers(&store), before, "created again, the same");
        assert_eq!(
            index_count(&store, "tickets"),
            before_indexes,
            "the indexes built anyway"
        );
        let left: i64 = store
            .read(
                |tx| Ok(tx.query_row("SELECT count(*) FROM deferred_triggers", [], |r| r.get(0))?),
            )
            .unwrap();
        assert_eq!(left, 0, "the unknown name forgotten");
        // A whole first sync: dropped with its first page, created with its last.
        let dir = tempfile::tempdir().unwrap();
        let store = gate(&dir.path().join("gate.db"));
        store
            .apply_change_page(&pages[0], None, AT.parse().unwrap())
            .unwrap();
        assert_eq!(triggers(&store), during);
        for page in &pages[1..] {
            store
                .apply_change_page(page, None, AT.parse().unwrap())
                .unwrap();
        }
        assert_eq!(triggers(&store), before, "created again, the same");
        let left: i64 = store
            .read(
                |tx| Ok(tx.query_row("SELECT count(*) FROM deferred_triggers", [], |r| r.get(0))?),
            )
            .unwrap();
        assert_eq!(left, 0);
    }

    /// A steady-state round's last page (nothing deferred) does not take
    /// the write lock: with another connection holding it, the build
    /// answers at once instead of waiting out the busy timeout.
    #[test]
    fn nothing_deferred_builds_without_the_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gate.db");
        let store = crate::Store::open_with(
            &path,
            crate::StoreOptions {
                busy_timeout: std::time::Duration::from_millis(300),
            },
        )
        .unwrap();
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        assert_eq!(store.restore_deferred_indexes().unwrap(), 0);
        other.execute_batch("ROLLBACK").unwrap();
    }

    /// The insert triggers are dropped only on a paired device and only
    /// when their text keeps them from writing there (the device-only
    /// WHEN clause): otherwise a first-sync-shaped page keeps them.
    #[test]
    fn the_triggers_are_kept_off_a_device_or_without_their_when_clause() {
        let pages = ticket_pages(500, 400);
        let dir = tempfile::tempdir().unwrap();
        let server = crate::Store::open(dir.path().join("server.db")).unwrap();
        let before = triggers(&server);
        server
            .apply_change_page(&pages[0], None, AT.parse().unwrap())
            .unwrap();
        assert_eq!(triggers(&server), before, "not a device: kept");

        let plain = "CREATE TRIGGER tickets_log_insert AFTER INSERT ON tickets \
                     BEGIN SELECT 1; END";
        first_page_keeps_tickets_insert_trigger(&dir.path().join("gate.db"), plain, &pages[0]);
    }

    /// A new gate at `path` whose `tickets_log_insert` is `sql`, given a
    /// first sync's first `page`: that trigger is kept as it is, the
    /// reservations' one (untouched) is dropped.
    fn first_page_keeps_tickets_insert_trigger(
        path: &std::path::Path,
        sql: &str,
        page: &ChangePage,
    ) {
        let store = gate(path);
        store
            .write(|tx| {
                tx.execute_batch(&format!("DROP TRIGGER tickets_log_insert; {sql};"))?;
                Ok(())
            })
            .unwrap();
        store
            .apply_change_page(page, None, AT.parse().unwrap())
            .unwrap();
        let during = triggers(&store);
        assert!(
            during
                .iter()
                .any(|(n, live)| n == "tickets_log_insert" && live == sql),
            "kept: {sql}"
        );
        assert!(
            !during
                .iter()
                .any(|(n, _)| n == "ticket_reservations_log_insert"),
            "the untouched one dropped"
        );
    }

    /// A live insert trigger whose text is not exactly the migrations'
    /// (an added condition after the device-only clause, a `CASE WHEN` in
    /// its body) is kept by a first sync, though it contains the clause:
    /// it may write on a device. The untouched one is dropped.
    #[test]
    fn a_trigger_whose_text_differs_from_the_migrations_is_not_deferred() {
        let pages = ticket_pages(500, 400);
        let ours = trigger_sql("tickets_log_insert", crate::MIGRATIONS.len()).unwrap();
        assert!(device_only(ours));
        let or_more = ours.replacen(
            DEVICE_ONLY_WHEN,
            &format!("{DEVICE_ONLY_WHEN} OR NEW.status = 'x'"),
            1,
        );
        let in_body = ours.replacen(
            "\nBEGIN\n",
            &format!("\nBEGIN\n    SELECT CASE {DEVICE_ONLY_WHEN} THEN 1 END;\n"),
            1,
        );
        // Not the device-only clause itself; the body: not the same text.
        assert!(!device_only(&or_more));
        assert!(device_only(&in_body) && in_body != ours);
        for changed in [or_more, in_body] {
            let dir = tempfile::tempdir().unwrap();
            first_page_keeps_tickets_insert_trigger(
                &dir.path().join("gate.db"),
                &changed,
                &pages[0],
            );
        }
    }

    /// A trigger a later migration drops for good has no text to create
    /// again; one dropped and created again (as 0009 does) has the new
    /// text; a drop of a longer name is not its drop.
    #[test]
    fn a_trigger_dropped_by_a_later_migration_is_not_brought_back() {
        let create = "CREATE TRIGGER t_ins AFTER INSERT ON t\nBEGIN\n    SELECT 1;\nEND;";
        let again = "DROP TRIGGER t_ins;\nCREATE TRIGGER t_ins AFTER INSERT ON t\nBEGIN\n    SELECT 2;\nEND;";
        let text = |sql: &str| sql[sql.find("CREATE").unwrap()..sql.len() - 1].to_string();
        assert_eq!(
            last_definition(&[create], "t_ins"),
            Some(text(create).as_str())
        );
        assert_eq!(
            last_definition(&[create, again], "t_ins"),
            Some(text(again).as_str())
        );
        for drop in ["DROP TRIGGER t_ins;", "DROP TRIGGER IF EXISTS t_ins;"] {
            assert_eq!(last_definition(&[create, drop], "t_ins"), None, "{drop}");
            assert_eq!(
                last_definition(&[create, again, drop], "t_ins"),
                None,
                "{drop}"
            );
            let later = format!("{create}\n{drop}");
            let later: &'static str = later.leak();
            assert_eq!(
                last_definition(&[later], "t_ins"),
                None,
                "{drop} in the same file"
            );
        }
        assert_eq!(
            last_definition(&[create, "DROP TRIGGER t_ins_old;"], "t_ins"),
            Some(text(create).as_str())
        );
        assert_eq!(last_definition(&[], "t_ins"), None);
    }

    /// A deferred-index build that fails at open (here a refused
    /// definition) does not keep the gate's file from opening: it opens,
    /// the triggers are back all the same (their own transaction, before
    /// the migrations), no index ran and the definitions stay, and a later
    /// build, once the cause is gone, builds them.
    #[test]
    fn a_failed_index_build_at_open_still_opens_the_gate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gate.db");
        let pages = ticket_pages(500, 400);
        let (all_triggers, mut before) = {
            let store = gate(&path);
            let all_triggers = triggers(&store);
            store
                .apply_change_page(&pages[0], None, AT.parse().unwrap())
                .unwrap();
            add_evil(&store);
            (all_triggers, replica(&store))
        };
        assert_eq!(before.5, DEFERRABLE_TRIGGERS.len() as i64);
        let store = crate::Store::open(&path).expect("the gate opens");
        (before.4, before.5) = (all_triggers, 0);
        assert_eq!(
            replica(&store),
            before,
            "the triggers back; no index ran, the definitions kept"
        );
        assert_eq!(before.2, DEFERRABLE_INDEXES.len() as i64 + 1);
        assert_eq!(index_count(&store, "tickets"), 0);
        forget_evil_then_build(&store);
        assert_eq!(index_count(&store, "tickets"), 8);
    }

    /// `verified_gate` is display text: a pulled ticket row whose name the
    /// replica's CHECK would refuse (no verification, too long, empty, not
    /// text, a NUL) applies with the name dropped, and the pull goes on;
    /// a good name (200 characters, whatever their bytes) is kept.
    #[test]
    fn a_pulled_gate_name_the_check_would_refuse_is_dropped_not_the_page() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path().join("gate.db")).unwrap();
        let info = crate::domain::sync::protocol::DeviceInfo {
            device_id: 1,
            orq: 1,
            venue_id: 1,
            name: "Gate A".into(),
        };
        store.pair(&info, "http://server", "token").unwrap();
        let at = "2026-11-30T12:00:00.000Z";
        let long = "é".repeat(MAX_GATE_NAME_CHARS);
        let cases = [
            ("T-1", json!(at), json!("Gate 1"), Some("Gate 1")),
            ("T-2", json!(at), json!("x".repeat(255)), None),
            ("T-3", json!(null), json!("Gate 1"), None),
            ("T-4", json!(at), json!(""), None),
            ("T-5", json!(at), json!(42), None),
            ("T-6", json!(at), json!("\u{0}Gate"), None),
            ("T-7", json!(at), json!(long), Some(long.as_str())),
            ("T-8", json!(at), json!(null), None),
        ];
        let changes: Vec<_> = cases
            .iter()
            .enumerate()
            .map(|(i, (code, verified_at, gate, _))| {
                json!({
                    "seq": i + 1, "entity": "tickets", "entity_id": code, "op": "upsert",
                    "row": {
                        "ticket_code": code, "orq": 1, "order_id": null, "product_id": null,
                        "user_id": null, "status": "ACTIVATED", "entitlements": "{}",
                        "expires_at": null, "created_at": at, "updated_at": at,
                        "customer_email": null, "customer_phone": null, "reserved_at": at,
                        "verified_at": verified_at, "verified_by": 1,
                        "activation_status": "active", "activated_at": at,
                        "activation_mode": "immediate", "code_serial": 1, "left_at": null,
                        "verified_gate": gate,
                    }
                })
            })
            .collect();
        let page: ChangePage = serde_json::from_value(json!({
            "changes": changes, "next_cursor": 8, "has_more": false, "remaining": 0,
            "server_time": at,
        }))
        .unwrap();
        let applied = store
            .apply_change_page(&page, None, at.parse().unwrap())
            .expect("the page applies");
        assert_eq!(applied, cases.len());
        for (code, _, _, kept) in &cases {
            let gate: Option<String> = store
                .read(|tx| {
                    Ok(tx.query_row(
                        "SELECT verified_gate FROM tickets WHERE ticket_code = ?1",
                        [code],
                        |r| r.get(0),
                    )?)
                })
                .unwrap();
            assert_eq!(gate.as_deref(), *kept, "{code}");
        }
        let cursor: i64 = store
            .read(|tx| Ok(tx.query_row("SELECT cursor FROM device_identity", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(cursor, 8, "the pull moved on");
    }

    /// The gate's apply alone (issue 13): `ENTRADA_APPLY_TICKETS` tickets
    /// (default 30,000), each with its reservation, in pages of 2,000
    /// changes, applied to a new gate; prints the time. Run in release:
    ///   cargo test --release -p entrada-store apply_bench -- --ignored --nocapture
    #[test]
    #[ignore]
    fn apply_bench() {
        let n: usize = std::env::var("ENTRADA_APPLY_TICKETS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30_000);
        let dir = tempfile::tempdir().unwrap();
        let store = gate(&dir.path().join("gate.db"));
        let pages = ticket_pages(n, 2_000);
        let total: usize = pages.iter().map(|p| p.changes.len()).sum();
        let at = AT;
        let now = at.parse().unwrap();
        let start = std::time::Instant::now();
        let mut applied = 0;
        let mut last = std::time::Duration::ZERO;
        for page in &pages {
            let t = std::time::Instant::now();
            applied += store.apply_change_page(page, Some(0), now).unwrap();
            last = t.elapsed();
        }
        let took = start.elapsed();
        assert_eq!(applied, total);
        println!(
            "apply_bench: {n} tickets, {total} changes, {} pages: {:.3} s ({:.1} µs/change); \
             last page + index rebuild {:.0} ms",
            pages.len(),
            took.as_secs_f64(),
            took.as_secs_f64() * 1e6 / total as f64,
            last.as_secs_f64() * 1e3
        );
    }

    /// What a served row's values are written as (pinned text): integers
    /// (i64 min and max), NULL, text with its escapes (unicode as is,
    /// control characters escaped), JSON-looking text as text, BLOBs as
    /// upper-case hex, reals losslessly: not `json_object`'s text for
    /// 0.1 + 0.2 (0.3, 15 digits), equal to it as values otherwise. A real
    /// that is not finite or text that is not UTF-8 is an error, not null
    /// or U+FFFD.
    #[test]
    fn a_served_row_is_json_object_with_lossless_reals_and_refuses_what_json_cannot_hold() {
        let e = Entity {
            table: "t",
            key: "id",
            integer_key: false,
            columns: &["id", "i", "r", "s", "j", "b", "n"],
            blobs: &["b"],
        };
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE t (id TEXT PRIMARY KEY, i INTEGER, r REAL, s TEXT, j TEXT, b BLOB, n TEXT);
             INSERT INTO t VALUES ('k-1', 9223372036854775807, 0.1 + 0.2, 'é ✓ \"q\" \\ ' || char(1) || char(10) || char(31), '{\"a\": 1}', x'00ff10ab', NULL);
             INSERT INTO t VALUES ('k-2', -9223372036854775808, -0.0, '', '[]', x'', NULL);
             INSERT INTO t VALUES ('k-3', 0, 1e300, 'x', 'y', NULL, 'z');
             INSERT INTO t VALUES ('inf', 0, 1e999, 'x', 'y', NULL, NULL);
             INSERT INTO t VALUES ('utf8', 0, 1.5, CAST(x'61ff' AS TEXT), 'y', NULL, NULL);",
        )
        .unwrap();
        let served = |id: &str| {
            let mut select = c.prepare(&select_row_sql(&e)).unwrap();
            let mut rows = select.query([id]).unwrap();
            row_json(&e, rows.next().unwrap().unwrap())
        };
        let json_object = |id: &str| -> serde_json::Value {
            let text: String = c
                .query_row(&select_json_sql(&e), [id], |r| r.get(0))
                .unwrap();
            serde_json::from_str(&text).unwrap()
        };
        for (id, want) in [
            (
                "k-1",
                r#"{"b":"00FF10AB","i":9223372036854775807,"id":"k-1","j":"{\"a\": 1}","n":null,"r":0.30000000000000004,"s":"é ✓ \"q\" \\ \u0001\n\u001f"}"#,
            ),
            // -0.0 comes back from a REAL column as 0.0 (SQLite stores it
            // as the integer 0).
            (
                "k-2",
                r#"{"b":"","i":-9223372036854775808,"id":"k-2","j":"[]","n":null,"r":0.0,"s":""}"#,
            ),
            // A NULL BLOB is "" (hex(NULL), as json_object had it).
            (
                "k-3",
                r#"{"b":"","i":0,"id":"k-3","j":"y","n":"z","r":1e+300,"s":"x"}"#,
            ),
        ] {
            let now = served(id).unwrap();
            assert_eq!(serde_json::to_string(&now).unwrap(), want, "{id}");
            let mut before = json_object(id);
            if id == "k-1" {
                // json_object's %!.15g: the one difference.
                assert_eq!(before["r"], json!(0.3));
                before["r"] = json!(0.1 + 0.2);
            }
            assert_eq!(now, before, "{id}: as json_object made it");
        }
        for (id, why) in [("inf", "t.r is inf"), ("utf8", "t.s is not UTF-8")] {
            let err = served(id).unwrap_err();
            assert!(matches!(err, StoreError::NotJson(_)), "{id}: {err}");
            assert!(err.to_string().contains(why), "{id}: {err}");
        }
    }

    #[test]
    fn pulled_rows_bind_in_column_order_with_blobs_unhexed() {
        let keys = entity("signing_keys").unwrap();
        let row: PulledRow = serde_json::from_value(serde_json::json!({
            "kid": 3, "orq": 1, "public_key": "00ff10", "created_at": "2025-12-01T00:00:00.000Z", "retired_at": null
        }))
        .unwrap();
        let i = ENTITIES
            .iter()
            .position(|e| e.table == "signing_keys")
            .unwrap();
        let values: Vec<Value> = row_values(i, &row)
            .into_iter()
            .map(|v| match v {
                ToSqlOutput::Borrowed(r) => Value::from(r),
                ToSqlOutput::Owned(v) => v,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            values,
            vec![
                Value::Integer(3),
                Value::Integer(1),
                Value::Blob(vec![0x00, 0xff, 0x10]),
                Value::Text("2025-12-01T00:00:00.000Z".into()),
                Value::Null
            ]
        );
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
        assert_eq!(upsert_sql(keys), "INSERT OR REPLACE INTO signing_keys (kid, orq, public_key, created_at, retired_at) VALUES (?1, ?2, ?3, ?4, ?5)");
    }
}
