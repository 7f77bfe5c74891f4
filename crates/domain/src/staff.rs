//! Who may change an operator's role or deactivate them (issue 16, the
//! console's Staff page). Pure: the caller passes who acts and the target as
//! loaded; the store applies the change only if the target's role is still
//! the one judged here.

use crate::{DomainError, Operator, OperatorId, Role};

/// A change to an operator: a new role and/or active (false deactivates,
/// true reactivates). At least one of the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StaffChange {
    pub role: Option<Role>,
    pub active: Option<bool>,
}

/// Why a staff change is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffRefusal {
    /// The actor's role may not make this change (403).
    Forbidden,
    /// The change itself is not valid (422 INVALID_INPUT).
    Invalid(DomainError),
}

/// Whether `actor` (their role and, for a console session or token bound to
/// an operator, their operator id) may apply `change` to `target`:
/// - only an admin changes a role, and only to operator or supervisor;
/// - an admin or a supervisor (de)activates; a supervisor only operators;
/// - nobody changes their own role or deactivates themselves (an org must
///   not lose its last admin by a slip of the hand);
/// - operators and customers change nothing.
pub fn check_staff_change(
    actor: Role,
    actor_id: Option<OperatorId>,
    target: &Operator,
    change: &StaffChange,
) -> Result<(), StaffRefusal> {
    if change.role.is_none() && change.active.is_none() {
        return Err(StaffRefusal::Invalid(DomainError::invalid(
            "body",
            "names a role, active, or both",
        )));
    }
    if let Some(role) = change.role {
        if !matches!(role, Role::Operator | Role::Supervisor) {
            return Err(StaffRefusal::Invalid(DomainError::invalid(
                "role",
                "an operator's role changes to operator or supervisor",
            )));
        }
    }
    let may = match actor {
        Role::Admin => true,
        Role::Supervisor => change.role.is_none() && target.role == Role::Operator,
        Role::Operator | Role::Customer => false,
    };
    if !may {
        return Err(StaffRefusal::Forbidden);
    }
    let changes_role = change.role.is_some_and(|r| r != target.role);
    if actor_id == Some(target.id) && (changes_role || change.active == Some(false)) {
        return Err(StaffRefusal::Invalid(DomainError::invalid(
            "operator_id",
            "you cannot change your own role or deactivate yourself",
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Orq;
    use chrono::{TimeZone, Utc};

    fn op(id: i64, role: Role) -> Operator {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        Operator {
            id: OperatorId(id),
            orq: Orq(1),
            role,
            display_name: format!("op{id}"),
            pin_hash: None,
            created_at: t,
            updated_at: t,
            deactivated_at: None,
        }
    }

    #[test]
    fn who_may_change_whom() {
        use Role::{Admin as A, Customer as C, Operator as O, Supervisor as S};
        let role = |r| StaffChange {
            role: Some(r),
            active: None,
        };
        let active = |a| StaffChange {
            role: None,
            active: Some(a),
        };
        let ok = Ok(());
        let no = Err(StaffRefusal::Forbidden);
        let invalid = |e: &Result<(), StaffRefusal>| matches!(e, Err(StaffRefusal::Invalid(_)));
        // (actor role, actor id, target id, target role, change, expected)
        type Case = (
            Role,
            Option<i64>,
            i64,
            Role,
            StaffChange,
            Result<(), StaffRefusal>,
        );
        let cases: Vec<Case> = vec![
            (A, Some(1), 2, O, role(S), ok.clone()),
            (A, Some(1), 2, S, role(O), ok.clone()),
            (A, None, 2, A, role(S), ok.clone()),
            (A, Some(1), 2, O, active(false), ok.clone()),
            (A, Some(1), 2, A, active(false), ok.clone()),
            (A, Some(1), 2, O, active(true), ok.clone()),
            (
                A,
                Some(1),
                2,
                S,
                StaffChange {
                    role: Some(O),
                    active: Some(false),
                },
                ok.clone(),
            ),
            (S, Some(1), 2, O, active(false), ok.clone()),
            (S, Some(1), 2, O, active(true), ok.clone()),
            (S, Some(1), 2, S, active(false), no.clone()),
            (S, Some(1), 2, A, active(false), no.clone()),
            (S, Some(1), 2, O, role(S), no.clone()),
            (
                S,
                Some(1),
                2,
                O,
                StaffChange {
                    role: Some(O),
                    active: Some(false),
                },
                no.clone(),
            ),
            (O, Some(1), 2, O, active(false), no.clone()),
            (C, None, 2, O, active(false), no.clone()),
            // Oneself: an admin keeps their role and stays active.
            (A, Some(1), 1, A, active(true), ok.clone()),
        ];
        for (actor, actor_id, target_id, target_role, change, expected) in cases {
            let got = check_staff_change(
                actor,
                actor_id.map(OperatorId),
                &op(target_id, target_role),
                &change,
            );
            assert_eq!(
                got, expected,
                "{actor:?} {actor_id:?} -> {target_id} {target_role:?} {change:?}"
            );
        }
        for (actor, actor_id, target_id, target_role, change) in [
            (A, Some(1), 1, A, role(S)),
            (A, Some(1), 1, A, role(O)),
            (A, Some(1), 1, A, active(false)),
            (A, Some(1), 2, O, role(A)),
            (A, Some(1), 2, O, role(C)),
            (A, Some(1), 2, O, StaffChange::default()),
        ] {
            let got = check_staff_change(
                actor,
                actor_id.map(OperatorId),
                &op(target_id, target_role),
                &change,
            );
            assert!(
                invalid(&got),
                "{actor:?} {actor_id:?} -> {target_id} {change:?}: {got:?}"
            );
        }
    }
}
