//! Operators and their PINs, with the lockout shared by every instance.

use chrono::{DateTime, Utc};
use postgres::{GenericClient, Row};

use crate::domain::venue::{validate_name, PinAttempts};
use crate::domain::{DomainError, Operator, OperatorId, Orq, Role};
use crate::{corrupt, db, ts, PgStore};
use entrada_store::{hash_pin, pin_hash_runnable, pin_matches, OperatorStore, Result};

pub(crate) const OPERATOR_COLUMNS: &str =
    "id, orq, role, display_name, pin_hash, created_at, updated_at";

pub(crate) fn operator(row: &Row) -> Result<Operator> {
    Ok(Operator {
        id: OperatorId(row.get("id")),
        orq: Orq(row.get("orq")),
        role: Role::parse(row.get("role")).map_err(|e| corrupt("operator role", e))?,
        display_name: row.get("display_name"),
        pin_hash: row.get("pin_hash"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

pub(crate) fn load_operator(
    tx: &mut impl GenericClient,
    orq: Orq,
    id: OperatorId,
) -> Result<Option<Operator>> {
    tx.query_opt(
        &format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = $1 AND orq = $2"),
        &[&id.0, &orq.0],
    )
    .map_err(db)?
    .as_ref()
    .map(operator)
    .transpose()
}

pub(crate) fn require_operator(
    tx: &mut impl GenericClient,
    orq: Orq,
    id: OperatorId,
) -> Result<Operator> {
    load_operator(tx, orq, id)?.ok_or_else(|| DomainError::NotFound { entity: "operator" }.into())
}

impl OperatorStore for PgStore {
    fn reset_operator_pin(
        &self,
        orq: Orq,
        id: OperatorId,
        pin: &str,
        now: DateTime<Utc>,
    ) -> Result<Operator> {
        entrada_store::AdminStore::set_operator_pin(self, orq, id, pin, now)
    }

    fn add_operator(
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
            let row = tx
                .query_one(
                    &format!(
                        "INSERT INTO operators (orq, role, display_name, pin_hash, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $5) RETURNING {OPERATOR_COLUMNS}"
                    ),
                    &[&orq.0, &role.as_str(), &display_name, &pin_hash, &ts(now)],
                )
                .map_err(db)?;
            operator(&row)
        })
    }

    fn get_operator(&self, orq: Orq, id: OperatorId) -> Result<Operator> {
        self.read(|tx| require_operator(tx, orq, id))
    }

    fn list_operators(&self, orq: Orq) -> Result<Vec<Operator>> {
        self.read(|tx| {
            tx.query(
                &format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE orq = $1 ORDER BY id"),
                &[&orq.0],
            )
            .map_err(db)?
            .iter()
            .map(operator)
            .collect()
        })
    }

    /// As on SQLite: each attempt is counted (under the attempts row's lock,
    /// so parallel guesses on several instances queue) before its PIN is
    /// checked, outside the transaction; a right PIN clears the count.
    fn check_operator_pin(
        &self,
        orq: Orq,
        id: OperatorId,
        pin: &str,
        now: DateTime<Utc>,
    ) -> Result<Operator> {
        let operator = self.write(|tx| {
            let operator = load_operator(tx, orq, id)?.ok_or(DomainError::WrongPin)?;
            // The row exists from here on, so FOR UPDATE has something to lock.
            tx.execute(
                "INSERT INTO pin_attempts (orq, operator_id, failures, updated_at) VALUES ($1, $2, 0, $3) \
                 ON CONFLICT (orq, operator_id) DO NOTHING",
                &[&orq.0, &id.0, &ts(now)],
            )
            .map_err(db)?;
            let row = tx
                .query_one(
                    "SELECT failures, locked_until FROM pin_attempts WHERE orq = $1 AND operator_id = $2 FOR UPDATE",
                    &[&orq.0, &id.0],
                )
                .map_err(db)?;
            let attempts = PinAttempts {
                failures: u32::try_from(row.get::<_, i64>(0)).map_err(|e| corrupt("PIN failures", e))?,
                locked_until: row.get(1),
            };
            let next = attempts.begin(now)?;
            if let Some(stored) = &operator.pin_hash {
                pin_hash_runnable(stored)?;
            }
            tx.execute(
                "UPDATE pin_attempts SET failures = $3, locked_until = $4, updated_at = $5 \
                 WHERE orq = $1 AND operator_id = $2",
                &[&orq.0, &id.0, &i64::from(next.failures), &next.locked_until.map(ts), &ts(now)],
            )
            .map_err(db)?;
            Ok(operator)
        })?;
        if !pin_matches(&operator, pin)? {
            return Err(DomainError::WrongPin.into());
        }
        self.write(|tx| {
            tx.execute(
                "DELETE FROM pin_attempts WHERE orq = $1 AND operator_id = $2",
                &[&orq.0, &id.0],
            )
            .map_err(db)?;
            Ok(())
        })?;
        Ok(operator)
    }
}
