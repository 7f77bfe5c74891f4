//! An operator's role and deactivation (issue 16, the console's Staff page).
//! Who may is `domain::staff::check_staff_change` (the server asks it with
//! the target as loaded); here the change is applied only if the target's
//! role is still the one judged, with the operator's tokens and console
//! sessions revoked in the same transaction.

use chrono::{DateTime, Utc};
use rusqlite::{params, Transaction};

use crate::codec::{self, ts, OPERATOR_COLUMNS};
use crate::column::Sql;
use crate::domain::staff::StaffChange;
use crate::domain::{DomainError, Operator, OperatorId, Orq, Role};
use crate::{Result, Store};

/// The operator, if they may sign in or hold a token: a deactivated one is
/// refused (`INVALID_INPUT` on `field`), an unknown one NOT_FOUND.
pub(crate) fn require_active_operator(
    tx: &Transaction<'_>,
    orq: Orq,
    id: OperatorId,
    field: &'static str,
) -> Result<Operator> {
    let operator = super::venues::require_operator(tx, orq, id)?;
    if !operator.is_active() {
        return Err(DomainError::invalid(field, "this operator is deactivated").into());
    }
    Ok(operator)
}

/// Whether a change takes the operator's standing away or alters it, so
/// that what was granted before (tokens, console sessions, links) must go.
pub fn revokes_grants(before: &Operator, change: &StaffChange) -> bool {
    change.role.is_some_and(|r| r != before.role) || change.active == Some(false)
}

impl Store {
    /// Applies `change` to operator `id` if their role is still `judged_role`
    /// (the one `check_staff_change` judged; else NOT_FOUND, as a PIN reset
    /// racing a role change). A new role or a deactivation revokes the
    /// operator's staff tokens and console sessions and voids their unused
    /// sign-in links; reactivating restores none of them.
    pub fn change_operator(
        &self,
        orq: Orq,
        id: OperatorId,
        judged_role: Role,
        change: StaffChange,
        now: DateTime<Utc>,
    ) -> Result<Operator> {
        self.write(|tx| {
            let before = super::venues::require_operator(tx, orq, id)?;
            if before.role != judged_role {
                return Err(DomainError::NotFound { entity: "operator" }.into());
            }
            let role = change.role.unwrap_or(before.role);
            let deactivated_at = match change.active {
                Some(true) => None,
                Some(false) => Some(before.deactivated_at.unwrap_or(now)),
                None => before.deactivated_at,
            };
            tx.execute(
                "UPDATE operators SET role = ?1, deactivated_at = ?2, updated_at = ?3 WHERE id = ?4 AND orq = ?5",
                params![Sql(role), deactivated_at.map(ts), ts(now), Sql(id), Sql(orq)],
            )?;
            if revokes_grants(&before, &change) {
                tx.execute(
                    "UPDATE api_tokens SET revoked_at = ?1 WHERE orq = ?2 AND user_id = ?3 \
                     AND role <> 'customer' AND revoked_at IS NULL",
                    params![ts(now), Sql(orq), Sql(id)],
                )?;
                tx.execute(
                    "UPDATE console_links SET expires_at = ?1 WHERE orq = ?2 AND operator_id = ?3 \
                     AND used_at IS NULL AND expires_at > ?1",
                    params![ts(now), Sql(orq), Sql(id)],
                )?;
            }
            Ok(tx.query_row(
                &format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = ?1"),
                [Sql(id)],
                codec::operator,
            )?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::VenueId;

    /// The gate's side: a deactivation pulled with the change feed makes the
    /// replica refuse the operator's PIN offline, and a reactivation lets
    /// them back in.
    #[test]
    fn a_gate_refuses_a_deactivated_operator_after_its_next_sync() {
        let dir = tempfile::tempdir().unwrap();
        let server = Store::open(dir.path().join("server.db")).unwrap();
        let gate = Store::open(dir.path().join("gate.db")).unwrap();
        let orq = Orq(1);
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 3, 1, 9, 0, 0).unwrap();
        let venue: VenueId = server.add_venue(orq, "Prado", "UTC", now).unwrap().id;
        let ana = server
            .add_operator(orq, Role::Operator, "Ana", Some("1234"), now)
            .unwrap();
        let sync = |cursor: i64| {
            let page = server.changes_since(orq, venue, cursor, 5000, now).unwrap();
            gate.apply_change_page(&page, None, now).unwrap();
            page.next_cursor
        };
        let cursor = sync(0);
        assert_eq!(
            gate.check_operator_pin(orq, ana.id, "1234", now)
                .unwrap()
                .id,
            ana.id
        );

        let off = StaffChange {
            role: None,
            active: Some(false),
        };
        server
            .change_operator(orq, ana.id, Role::Operator, off, now)
            .unwrap();
        // Before the sync the gate still knows Ana as active (offline).
        assert!(gate.check_operator_pin(orq, ana.id, "1234", now).is_ok());
        let cursor = sync(cursor);
        assert!(!gate.get_operator(orq, ana.id).unwrap().is_active());
        let refused = gate
            .check_operator_pin(orq, ana.id, "1234", now)
            .unwrap_err();
        assert_eq!(refused.code(), "WRONG_PIN");

        let on = StaffChange {
            role: None,
            active: Some(true),
        };
        server
            .change_operator(orq, ana.id, Role::Operator, on, now)
            .unwrap();
        sync(cursor);
        assert_eq!(
            gate.check_operator_pin(orq, ana.id, "1234", now)
                .unwrap()
                .id,
            ana.id
        );
    }
}
