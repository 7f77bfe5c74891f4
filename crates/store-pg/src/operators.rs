//! Operators and their PINs, with the lockout shared by every instance.

use crate::conn::Tx;
use chrono::{DateTime, Utc};
use postgres::Row;

use crate::domain::staff::StaffChange;
use crate::domain::venue::{validate_name, PinAttempts};
use crate::domain::{DomainError, Operator, OperatorId, Orq, Role};
use crate::{corrupt, db, ts, PgStore};
use entrada_store::{
    hash_pin, pin_hash_runnable, pin_matches, revokes_grants, OperatorStore, Result,
};

pub(crate) const OPERATOR_COLUMNS: &str =
    "id, orq, role, display_name, pin_hash, created_at, updated_at, deactivated_at";

pub(crate) fn operator(row: &Row) -> Result<Operator> {
    Ok(Operator {
        id: OperatorId(row.get("id")),
        orq: Orq(row.get("orq")),
        role: Role::parse(row.get("role")).map_err(|e| corrupt("operator role", e))?,
        display_name: row.get("display_name"),
        pin_hash: row.get("pin_hash"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        deactivated_at: row.get("deactivated_at"),
    })
}

pub(crate) fn load_operator(tx: &mut Tx<'_>, orq: Orq, id: OperatorId) -> Result<Option<Operator>> {
    tx.query_opt(
        &format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = $1 AND orq = $2"),
        &[&id.0, &orq.0],
    )
    .map_err(db)?
    .as_ref()
    .map(operator)
    .transpose()
}

/// The operator, if they may sign in or hold a token (as on SQLite).
pub(crate) fn require_active_operator(
    tx: &mut Tx<'_>,
    orq: Orq,
    id: OperatorId,
    field: &'static str,
) -> Result<Operator> {
    let operator = require_operator(tx, orq, id)?;
    if !operator.is_active() {
        return Err(DomainError::invalid(field, "this operator is deactivated").into());
    }
    Ok(operator)
}

pub(crate) fn require_operator(tx: &mut Tx<'_>, orq: Orq, id: OperatorId) -> Result<Operator> {
    load_operator(tx, orq, id)?.ok_or_else(|| DomainError::NotFound { entity: "operator" }.into())
}

impl OperatorStore for PgStore {
    /// As on SQLite: applied only if the role is still the one judged; a new
    /// role or a deactivation revokes the operator's tokens and links.
    fn change_operator(
        &self,
        orq: Orq,
        id: OperatorId,
        judged_role: Role,
        change: StaffChange,
        now: DateTime<Utc>,
    ) -> Result<Operator> {
        // A new role or a deactivation revokes tokens: `revoking`.
        self.revoking(|tx| {
            let before = tx
                .query_opt(
                    &format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = $1 AND orq = $2 FOR UPDATE"),
                    &[&id.0, &orq.0],
                )
                .map_err(db)?
                .as_ref()
                .map(operator)
                .transpose()?
                .ok_or(DomainError::NotFound { entity: "operator" })?;
            if before.role != judged_role {
                return Err(DomainError::NotFound { entity: "operator" }.into());
            }
            let role = change.role.unwrap_or(before.role);
            let deactivated_at = match change.active {
                Some(true) => None,
                Some(false) => Some(before.deactivated_at.unwrap_or(now)),
                None => before.deactivated_at,
            };
            let row = tx
                .query_one(
                    &format!(
                        "UPDATE operators SET role = $1, deactivated_at = $2, updated_at = $3 \
                         WHERE id = $4 AND orq = $5 RETURNING {OPERATOR_COLUMNS}"
                    ),
                    &[&role.as_str(), &deactivated_at.map(ts), &ts(now), &id.0, &orq.0],
                )
                .map_err(db)?;
            if revokes_grants(&before, &change) {
                tx.execute(
                    "UPDATE api_tokens SET revoked_at = $1 WHERE orq = $2 AND user_id = $3 \
                     AND role <> 'customer' AND revoked_at IS NULL",
                    &[&ts(now), &orq.0, &id.0],
                )
                .map_err(db)?;
                tx.execute(
                    "UPDATE console_links SET expires_at = $1 WHERE orq = $2 AND operator_id = $3 \
                     AND used_at IS NULL AND expires_at > $1",
                    &[&ts(now), &orq.0, &id.0],
                )
                .map_err(db)?;
            }
            operator(&row)
        })
    }

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
            // A deactivated operator answers as an unknown one, before any
            // attempt is counted or the PIN checked.
            let operator = load_operator(tx, orq, id)?
                .filter(Operator::is_active)
                .ok_or(DomainError::WrongPin)?;
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
