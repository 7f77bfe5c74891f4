//! The console's Staff page (issue 16): an operator's role changed and an
//! operator deactivated, on every engine: the PIN refused, tokens and console
//! sessions revoked, no new ones, and the feed carrying it to gates.

use super::*;
use crate::domain::staff::StaffChange;
use crate::domain::Role;
use crate::{OperatorStore, SyncStore, TokenStore, VenueStore};

const OFF: StaffChange = StaffChange {
    role: None,
    active: Some(false),
};
const ON: StaffChange = StaffChange {
    role: None,
    active: Some(true),
};

pub fn a_deactivated_operator_signs_in_nowhere_and_holds_no_token(
    s: &(impl OperatorStore + TokenStore + VenueStore + SyncStore + ?Sized),
) {
    let venue = s.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
    let ana = s
        .add_operator(ORQ, Role::Operator, "Ana", Some("1234"), now())
        .unwrap();
    let sue = s
        .add_operator(ORQ, Role::Supervisor, "Sue", Some("123456"), now())
        .unwrap();
    let (ana_token, _) = s
        .create_token(ORQ, Role::Operator, Some(ana.id.0), Some(venue.id), now())
        .unwrap();
    let (admin_token, admin) = s.create_token(ORQ, Role::Admin, None, None, now()).unwrap();
    let (sue_link, _) = s.create_console_link(ORQ, Some(sue.id), now()).unwrap();
    let (sue_session, _, _) = s.redeem_console_link(&sue_link, now()).unwrap();
    let (sue_unused, _) = s.create_console_link(ORQ, Some(sue.id), now()).unwrap();
    let start = s
        .changes_since(ORQ, venue.id, 0, 5000, now())
        .unwrap()
        .next_cursor;

    let later = now() + chrono::Duration::minutes(1);
    // Judged as another role: refused, nothing changed.
    assert_eq!(
        code_of(s.change_operator(ORQ, ana.id, Role::Supervisor, OFF, later)),
        "NOT_FOUND"
    );
    assert_eq!(
        code_of(s.change_operator(Orq(2), ana.id, Role::Operator, OFF, later)),
        "NOT_FOUND"
    );
    assert!(s.principal_for_token(&ana_token, later).unwrap().is_some());

    let off = s
        .change_operator(ORQ, ana.id, Role::Operator, OFF, later)
        .unwrap();
    assert_eq!(
        (off.deactivated_at, off.role),
        (Some(later), Role::Operator)
    );
    assert!(!off.is_active());
    assert_eq!(
        s.get_operator(ORQ, ana.id).unwrap().deactivated_at,
        Some(later)
    );
    // The PIN is refused as an unknown operator's; the token is revoked; no new one.
    assert_eq!(
        code_of(s.check_operator_pin(ORQ, ana.id, "1234", later)),
        "WRONG_PIN"
    );
    assert_eq!(s.principal_for_token(&ana_token, later).unwrap(), None);
    assert_eq!(
        code_of(s.create_token(ORQ, Role::Operator, Some(ana.id.0), None, later)),
        "INVALID_INPUT"
    );
    // Others keep theirs.
    assert_eq!(
        s.principal_for_token(&admin_token, later).unwrap(),
        Some(admin)
    );
    assert!(s
        .principal_for_token(&sue_session, later)
        .unwrap()
        .is_some());
    // Deactivating again keeps the first date.
    let again = s
        .change_operator(
            ORQ,
            ana.id,
            Role::Operator,
            OFF,
            later + chrono::Duration::minutes(1),
        )
        .unwrap();
    assert_eq!(again.deactivated_at, Some(later));

    // The feed carries the deactivation to gates.
    let page = s.changes_since(ORQ, venue.id, start, 5000, later).unwrap();
    let row = page
        .changes
        .iter()
        .rev()
        .find(|c| c.entity == "operators" && c.entity_id == ana.id.0.to_string())
        .and_then(|c| c.row.clone())
        .expect("the operator's row is in the feed");
    assert!(
        row.get("deactivated_at").is_some_and(|v| !v.is_null()),
        "{row}"
    );

    // Reactivated: the PIN works again; the old token stays revoked.
    let on = s
        .change_operator(ORQ, ana.id, Role::Operator, ON, later)
        .unwrap();
    assert_eq!(on.deactivated_at, None);
    assert_eq!(
        s.check_operator_pin(ORQ, ana.id, "1234", later).unwrap().id,
        ana.id
    );
    assert_eq!(s.principal_for_token(&ana_token, later).unwrap(), None);

    // A supervisor deactivated: their console session and unused link die,
    // and no new link is made for them.
    s.change_operator(ORQ, sue.id, Role::Supervisor, OFF, later)
        .unwrap();
    assert_eq!(s.principal_for_token(&sue_session, later).unwrap(), None);
    assert_eq!(
        code_of(s.redeem_console_link(&sue_unused, later)),
        "NOT_FOUND"
    );
    assert_eq!(
        code_of(s.create_console_link(ORQ, Some(sue.id), later)),
        "INVALID_INPUT"
    );
}

pub fn a_role_change_is_applied_and_revokes_the_old_roles_grants(
    s: &(impl OperatorStore + TokenStore + ?Sized),
) {
    let sue = s
        .add_operator(ORQ, Role::Supervisor, "Sue", Some("123456"), now())
        .unwrap();
    let (link, _) = s.create_console_link(ORQ, Some(sue.id), now()).unwrap();
    let (session, p, _) = s.redeem_console_link(&link, now()).unwrap();
    assert_eq!(p.role, Role::Supervisor);
    let later = now() + chrono::Duration::minutes(1);
    let demote = StaffChange {
        role: Some(Role::Operator),
        active: None,
    };
    let op = s
        .change_operator(ORQ, sue.id, Role::Supervisor, demote, later)
        .unwrap();
    assert_eq!((op.role, op.deactivated_at), (Role::Operator, None));
    assert_eq!(op.updated_at, later);
    // The supervisor's console session is gone; as an operator, no console.
    assert_eq!(s.principal_for_token(&session, later).unwrap(), None);
    assert_eq!(
        code_of(s.create_console_link(ORQ, Some(sue.id), later)),
        "INVALID_INPUT"
    );
    // The PIN still signs in at a gate (6 digits suit an operator too).
    assert_eq!(
        s.check_operator_pin(ORQ, sue.id, "123456", later)
            .unwrap()
            .role,
        Role::Operator
    );
    // Same role again: a no-op that revokes nothing.
    let (token, _) = s
        .create_token(ORQ, Role::Operator, Some(sue.id.0), None, later)
        .unwrap();
    s.change_operator(ORQ, sue.id, Role::Operator, demote, later)
        .unwrap();
    assert!(s.principal_for_token(&token, later).unwrap().is_some());
    // Promoted back: the operator token is revoked (the role it was made under is gone).
    let promote = StaffChange {
        role: Some(Role::Supervisor),
        active: None,
    };
    let sup = s
        .change_operator(ORQ, sue.id, Role::Operator, promote, later)
        .unwrap();
    assert_eq!(sup.role, Role::Supervisor);
    assert_eq!(s.principal_for_token(&token, later).unwrap(), None);
}
