//! Who may do what: the spec's permission table over a request's principal.
//! Another tenant's rows and another customer's tickets answer NOT_FOUND,
//! never FORBIDDEN, so their existence does not leak.

use super::error::ApiError;
use super::extract::Caller;
use crate::domain::{DomainError, Role, Ticket};
use crate::store::Principal;

pub fn signed_in(caller: &Caller) -> Result<&Principal, ApiError> {
    caller.0.as_ref().ok_or(ApiError::Unauthorized)
}

fn with_role(caller: &Caller, allowed: impl Fn(Role) -> bool) -> Result<&Principal, ApiError> {
    let p = signed_in(caller)?;
    if allowed(p.role) {
        Ok(p)
    } else {
        Err(ApiError::Forbidden)
    }
}

/// Operators, supervisors and admins: read, validate, verify.
pub fn staff(caller: &Caller) -> Result<&Principal, ApiError> {
    with_role(caller, Role::can_verify)
}

/// Supervisors and admins: slot create / update / close.
pub fn slot_manager(caller: &Caller) -> Result<&Principal, ApiError> {
    with_role(caller, Role::can_manage_slots)
}

pub fn admin(caller: &Caller) -> Result<&Principal, ApiError> {
    with_role(caller, |r| r == Role::Admin)
}

/// Customers (for their own tickets) and admins change reservations and
/// activate tickets; operators only read.
pub fn customer_or_admin(caller: &Caller) -> Result<&Principal, ApiError> {
    with_role(caller, |r| matches!(r, Role::Customer | Role::Admin))
}

/// Whether `p` may see this ticket at all.
pub fn may_see(p: &Principal, ticket: &Ticket) -> bool {
    match p.role {
        Role::Customer => match &p.ticket_code {
            Some(code) => *code == ticket.ticket_code,
            None => p.user_id.is_some() && ticket.user_id == p.user_id,
        },
        _ => true,
    }
}

pub fn check_sees(p: &Principal, ticket: &Ticket) -> Result<(), crate::store::StoreError> {
    if may_see(p, ticket) {
        Ok(())
    } else {
        Err(DomainError::NotFound { entity: "ticket" }.into())
    }
}
