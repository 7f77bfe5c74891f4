//! Venues and operators.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use super::codec::{self, ts, OPERATOR_COLUMNS, VENUE_COLUMNS};
use super::column::Sql;
use super::{Result, Store};
use crate::domain::{
    venue::{
        check_pin_hash, parse_timezone, validate_name, validate_pin_for, PinAttempts,
        PinHashParams, VenuePatch, PIN_HASH_M_KIB, PIN_HASH_P, PIN_HASH_T,
    },
    DomainError, Operator, OperatorId, Orq, Role, Venue, VenueId,
};
use argon2::password_hash::PasswordHash;

pub(crate) fn load_venue(tx: &Transaction<'_>, orq: Orq, id: VenueId) -> Result<Option<Venue>> {
    Ok(tx
        .prepare_cached(&format!(
            "SELECT {VENUE_COLUMNS} FROM venues WHERE id = ?1 AND orq = ?2"
        ))?
        .query_row(params![Sql(id), Sql(orq)], codec::venue)
        .optional()?)
}

pub(crate) fn require_venue(tx: &Transaction<'_>, orq: Orq, id: VenueId) -> Result<Venue> {
    load_venue(tx, orq, id)?.ok_or_else(|| DomainError::NotFound { entity: "venue" }.into())
}

pub(crate) fn require_operator(tx: &Transaction<'_>, orq: Orq, id: OperatorId) -> Result<Operator> {
    tx.prepare_cached(&format!(
        "SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = ?1 AND orq = ?2"
    ))?
    .query_row(params![Sql(id), Sql(orq)], codec::operator)
    .optional()?
    .ok_or_else(|| DomainError::NotFound { entity: "operator" }.into())
}

impl Store {
    pub fn add_venue(
        &self,
        orq: Orq,
        name: &str,
        timezone: &str,
        now: DateTime<Utc>,
    ) -> Result<Venue> {
        let name = validate_name("name", name)?;
        let tz = parse_timezone(timezone)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO venues (orq, name, timezone, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![Sql(orq), name, tz.name(), ts(now)],
            )?;
            require_venue(tx, orq, VenueId(tx.last_insert_rowid()))
        })
    }

    pub fn get_venue(&self, orq: Orq, id: VenueId) -> Result<Venue> {
        self.read(|tx| require_venue(tx, orq, id))
    }

    /// Renames a venue, moves it to another time zone (refused while booked
    /// slots lie ahead) or changes its gate settings, in one transaction:
    /// the write lock keeps a reservation from slipping in between the count
    /// of booked slots and the change. Its gates learn it with their next sync.
    pub fn update_venue(
        &self,
        orq: Orq,
        id: VenueId,
        patch: &VenuePatch,
        now: DateTime<Utc>,
    ) -> Result<Venue> {
        self.write(|tx| {
            let current = require_venue(tx, orq, id)?;
            let booked_ahead = match current.zone_change(patch, now)? {
                Some((_, from)) => tx
                    .prepare_cached(
                        "SELECT count(*) FROM reservation_slots \
                         WHERE venue_id = ?1 AND orq = ?2 AND date >= ?3 AND booked_count > 0",
                    )?
                    .query_row(params![Sql(id), Sql(orq), codec::date(from)], |r| {
                        r.get::<_, i64>(0)
                    })?,
                None => 0,
            };
            let next = current.patched(patch, booked_ahead.unsigned_abs(), now)?;
            let ops = next.gate.ops();
            tx.prepare_cached(
                "UPDATE venues SET name = ?11, timezone = ?12, early_grace_minutes = ?1, late_grace_minutes = ?2, \
                 updated_at = ?3, reentry_allowed = ?6, walkup_lease_places = ?7, no_show_release_minutes = ?8, \
                 occupancy_limit = ?9, closing_time = ?10 WHERE id = ?4 AND orq = ?5",
            )?
            .execute(params![
                next.gate.early_grace_minutes(),
                next.gate.late_grace_minutes(),
                ts(now),
                Sql(id),
                Sql(orq),
                ops.reentry_allowed,
                ops.walkup_lease_places,
                ops.no_show_release_minutes,
                ops.occupancy_limit,
                ops.closing_time.map(|t| t.format("%H:%M:%S").to_string()),
                next.name,
                next.timezone.name(),
            ])?;
            require_venue(tx, orq, id)
        })
    }

    pub fn list_venues(&self, orq: Orq) -> Result<Vec<Venue>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {VENUE_COLUMNS} FROM venues WHERE orq = ?1 ORDER BY id"
            ))?;
            let rows = stmt.query_map([Sql(orq)], codec::venue)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Adds a gate operator. The PIN is stored only as an Argon2 hash.
    pub fn add_operator(
        &self,
        orq: Orq,
        role: Role,
        display_name: &str,
        pin: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Operator> {
        if role == Role::Customer {
            return Err(DomainError::invalid(
                "role",
                "operators are operator, supervisor or admin",
            )
            .into());
        }
        let pin_hash = pin.map(|pin| hash_pin(role, pin)).transpose()?;
        let display_name = validate_name("display_name", display_name)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO operators (orq, role, display_name, pin_hash, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![Sql(orq), Sql(role), display_name, pin_hash.as_deref(), ts(now)],
            )?;
            let id = OperatorId(tx.last_insert_rowid());
            Ok(tx.query_row(
                &format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = ?1"),
                [Sql(id)],
                codec::operator,
            )?)
        })
    }

    pub fn get_operator(&self, orq: Orq, id: OperatorId) -> Result<Operator> {
        self.read(|tx| {
            tx.query_row(
                &format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = ?1 AND orq = ?2"),
                params![Sql(id), Sql(orq)],
                codec::operator,
            )
            .optional()?
            .ok_or_else(|| DomainError::NotFound { entity: "operator" }.into())
        })
    }
}

impl Store {
    pub fn list_operators(&self, orq: Orq) -> Result<Vec<Operator>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {OPERATOR_COLUMNS} FROM operators WHERE orq = ?1 ORDER BY id"
            ))?;
            let rows = stmt.query_map([Sql(orq)], codec::operator)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}

/// Argon2id with the app's own parameters (`domain::venue::PIN_HASH_*`).
fn argon2_ours() -> Result<argon2::Argon2<'static>> {
    let params = argon2::Params::new(PIN_HASH_M_KIB, PIN_HASH_T, PIN_HASH_P, None)
        .map_err(|e| super::StoreError::Randomness(e.to_string()))?;
    Ok(argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    ))
}

/// An operator's PIN as stored: validated for their role, then an Argon2id
/// PHC string with a fresh salt. Engine-independent (every store engine
/// stores the same hashes), so public.
pub fn hash_pin(role: Role, pin: &str) -> Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let pin = validate_pin_for(role, pin)?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| super::StoreError::Randomness(e.to_string()))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| super::StoreError::Randomness(e.to_string()))?;
    Ok(argon2_ours()?
        .hash_password(pin.as_bytes(), &salt)
        .map_err(|e| super::StoreError::Randomness(e.to_string()))?
        .to_string())
}

/// A stored PIN hash, parsed, if it is one this app runs: Argon2id within
/// the bounds of `domain::venue::check_pin_hash`. A synced hash asking for
/// more is refused before any work is done on it.
fn runnable_hash(stored: &str) -> std::result::Result<PasswordHash<'_>, DomainError> {
    let refused = |reason| DomainError::PinHashRefused { reason };
    let hash = PasswordHash::new(stored).map_err(|_| refused("not a PHC string"))?;
    let params = argon2::Params::try_from(&hash).map_err(|_| refused("bad Argon2 parameters"))?;
    check_pin_hash(&PinHashParams {
        algorithm: hash.algorithm.as_str(),
        version: hash.version,
        m_kib: params.m_cost(),
        t: params.t_cost(),
        p: params.p_cost(),
    })?;
    Ok(hash)
}

/// Refuses a stored PIN hash this app would not run (before any work is
/// done on it): `PIN_HASH_REFUSED`.
pub fn pin_hash_runnable(stored: &str) -> std::result::Result<(), DomainError> {
    runnable_hash(stored).map(|_| ())
}

/// Whether `pin` is `operator`'s: valid for their role and matching their
/// stored hash (Argon2, slow on purpose: call it outside any transaction).
/// An operator without a PIN matches none.
pub fn pin_matches(operator: &Operator, pin: &str) -> Result<bool> {
    use argon2::password_hash::PasswordVerifier;
    Ok(validate_pin_for(operator.role, pin).is_ok()
        && match operator.pin_hash.as_deref().map(runnable_hash) {
            Some(Ok(hash)) => argon2_ours()?
                .verify_password(pin.as_bytes(), &hash)
                .is_ok(),
            Some(Err(refused)) => return Err(refused.into()),
            None => false,
        })
}

fn load_operator(tx: &Transaction<'_>, orq: Orq, id: OperatorId) -> Result<Option<Operator>> {
    Ok(tx
        .prepare_cached(&format!(
            "SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = ?1 AND orq = ?2"
        ))?
        .query_row(params![Sql(id), Sql(orq)], codec::operator)
        .optional()?)
}

fn load_attempts(tx: &Transaction<'_>, orq: Orq, id: OperatorId) -> Result<PinAttempts> {
    let row: Option<(u32, Option<codec::Ts>)> = tx
        .prepare_cached(
            "SELECT failures, locked_until FROM pin_attempts WHERE orq = ?1 AND operator_id = ?2",
        )?
        .query_row(params![Sql(orq), Sql(id)], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(
        row.map_or_else(PinAttempts::default, |(failures, until)| PinAttempts {
            failures,
            locked_until: until.map(|t| t.0),
        }),
    )
}

impl Store {
    /// The operator, if `pin` is theirs. Wrong PIN, unknown operator and an
    /// operator without a PIN all answer the same `WRONG_PIN`.
    ///
    /// Wrong PINs lock the operator (`domain::venue::PinAttempts`): while
    /// locked, `PIN_LOCKED` answers without the PIN being checked. The count
    /// lives in this database — the server's (shared by its instances) or
    /// the gate's replica (kept across restarts) — and each attempt is
    /// counted before its PIN is checked, so parallel guesses cannot pass it.
    /// A supervisor's PIN shorter than 6 digits is wrong whatever is stored.
    pub fn check_operator_pin(
        &self,
        orq: Orq,
        id: OperatorId,
        pin: &str,
        now: DateTime<Utc>,
    ) -> Result<Operator> {
        let operator = self.write(|tx| {
            // A deactivated operator answers as an unknown one, before any
            // attempt is counted or the PIN checked.
            let operator = load_operator(tx, orq, id)?
                .filter(Operator::is_active)
                .ok_or(DomainError::WrongPin)?;
            let next = load_attempts(tx, orq, id)?.begin(now)?;
            if let Some(stored) = &operator.pin_hash {
                runnable_hash(stored)?;
            }
            tx.prepare_cached(
                "INSERT INTO pin_attempts (orq, operator_id, failures, locked_until, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (orq, operator_id) DO UPDATE SET failures = excluded.failures, \
                 locked_until = excluded.locked_until, updated_at = excluded.updated_at",
            )?
            .execute(params![Sql(orq), Sql(id), next.failures, next.locked_until.map(ts), ts(now)])?;
            Ok(operator)
        })?;
        // Argon2, slow on purpose: outside the write transaction.
        if !pin_matches(&operator, pin)? {
            return Err(DomainError::WrongPin.into());
        }
        self.write(|tx| {
            tx.prepare_cached("DELETE FROM pin_attempts WHERE orq = ?1 AND operator_id = ?2")?
                .execute(params![Sql(orq), Sql(id)])?;
            Ok(())
        })?;
        Ok(operator)
    }

    /// Operators of the org locked by wrong PINs at `now`, and until when.
    pub fn pin_locks(
        &self,
        orq: Orq,
        now: DateTime<Utc>,
    ) -> Result<Vec<(OperatorId, DateTime<Utc>)>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT operator_id, locked_until FROM pin_attempts WHERE orq = ?1 AND locked_until IS NOT NULL",
            )?;
            let rows = stmt.query_map([Sql(orq)], |r| Ok((OperatorId(r.get(0)?), r.get::<_, codec::Ts>(1)?.0)))?;
            let mut locked = Vec::new();
            for row in rows {
                let (id, until) = row?;
                if until > now {
                    locked.push((id, until));
                }
            }
            Ok(locked)
        })
    }

    /// Sets an operator's PIN (as their role requires) and lifts their lock.
    pub fn set_operator_pin(
        &self,
        orq: Orq,
        id: OperatorId,
        pin: &str,
        now: DateTime<Utc>,
    ) -> Result<Operator> {
        let role = self.get_operator(orq, id)?.role;
        let hash = hash_pin(role, pin)?;
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE operators SET pin_hash = ?1, updated_at = ?2 WHERE id = ?3 AND orq = ?4 AND role = ?5",
                params![hash, ts(now), Sql(id), Sql(orq), Sql(role)],
            )?;
            if n == 0 {
                // Its role changed meanwhile: the PIN was validated for another.
                return Err(DomainError::NotFound { entity: "operator" }.into());
            }
            tx.execute(
                "DELETE FROM pin_attempts WHERE orq = ?1 AND operator_id = ?2",
                params![Sql(orq), Sql(id)],
            )?;
            require_operator(tx, orq, id)
        })
    }
}
