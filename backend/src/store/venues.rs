//! Venues and operators.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use super::codec::{self, ts, OPERATOR_COLUMNS, VENUE_COLUMNS};
use super::{Result, Store};
use crate::domain::{
    venue::{parse_timezone, validate_name},
    DomainError, Operator, OperatorId, Orq, Role, Venue, VenueId,
};

pub(crate) fn load_venue(tx: &Transaction<'_>, orq: Orq, id: VenueId) -> Result<Option<Venue>> {
    Ok(tx
        .prepare_cached(&format!(
            "SELECT {VENUE_COLUMNS} FROM venues WHERE id = ?1 AND orq = ?2"
        ))?
        .query_row(params![id, orq], codec::venue)
        .optional()?)
}

pub(crate) fn require_venue(tx: &Transaction<'_>, orq: Orq, id: VenueId) -> Result<Venue> {
    load_venue(tx, orq, id)?.ok_or_else(|| DomainError::NotFound { entity: "venue" }.into())
}

pub(crate) fn require_operator(tx: &Transaction<'_>, orq: Orq, id: OperatorId) -> Result<Operator> {
    tx.prepare_cached(&format!(
        "SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = ?1 AND orq = ?2"
    ))?
    .query_row(params![id, orq], codec::operator)
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
                params![orq, name, tz.name(), ts(now)],
            )?;
            require_venue(tx, orq, VenueId(tx.last_insert_rowid()))
        })
    }

    pub fn get_venue(&self, orq: Orq, id: VenueId) -> Result<Venue> {
        self.read(|tx| require_venue(tx, orq, id))
    }

    pub fn list_venues(&self, orq: Orq) -> Result<Vec<Venue>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {VENUE_COLUMNS} FROM venues WHERE orq = ?1 ORDER BY id"
            ))?;
            let rows = stmt.query_map([orq], codec::venue)?;
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
        let pin_hash = pin.map(hash_pin).transpose()?;
        if role == Role::Customer {
            return Err(DomainError::invalid(
                "role",
                "operators are operator, supervisor or admin",
            )
            .into());
        }
        let display_name = validate_name("display_name", display_name)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO operators (orq, role, display_name, pin_hash, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![orq, role, display_name, pin_hash.as_deref(), ts(now)],
            )?;
            let id = OperatorId(tx.last_insert_rowid());
            Ok(tx.query_row(
                &format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = ?1"),
                [id],
                codec::operator,
            )?)
        })
    }

    pub fn get_operator(&self, orq: Orq, id: OperatorId) -> Result<Operator> {
        self.read(|tx| {
            tx.query_row(
                &format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = ?1 AND orq = ?2"),
                params![id, orq],
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
            let rows = stmt.query_map([orq], codec::operator)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}

fn hash_pin(pin: &str) -> Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let pin = crate::domain::venue::validate_pin(pin)?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| super::StoreError::Randomness(e.to_string()))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| super::StoreError::Randomness(e.to_string()))?;
    Ok(argon2::Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .map_err(|e| super::StoreError::Randomness(e.to_string()))?
        .to_string())
}

impl Store {
    /// The operator, if `pin` is theirs. Wrong PIN, unknown operator and an
    /// operator without a PIN all answer the same `WRONG_PIN`.
    pub fn check_operator_pin(&self, orq: Orq, id: OperatorId, pin: &str) -> Result<Operator> {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        let operator = self.get_operator(orq, id).map_err(|e| match e.code() {
            "NOT_FOUND" => DomainError::WrongPin.into(),
            _ => e,
        })?;
        let ok = operator
            .pin_hash
            .as_deref()
            .and_then(|h| PasswordHash::new(h).ok())
            .is_some_and(|h| {
                argon2::Argon2::default()
                    .verify_password(pin.as_bytes(), &h)
                    .is_ok()
            });
        if ok {
            Ok(operator)
        } else {
            Err(DomainError::WrongPin.into())
        }
    }
}
