//! Who may do what: the spec's permission table over a request's principal.
//! Another tenant's rows and another customer's tickets answer NOT_FOUND,
//! never FORBIDDEN, so their existence does not leak.

use super::error::ApiError;
use super::extract::Caller;
use crate::domain::{DomainError, Role, Ticket, VenueId};
use crate::store::{CustomerScope, Principal, TicketReader};

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

/// An admin of the whole org, for what belongs to no venue (issuing
/// tickets: a ticket has no venue until it is reserved; minting a customer
/// token, which reaches its user's tickets in every venue). A venue-bound
/// token is refused with 403 ORG_ADMIN_ONLY — not FORBIDDEN, so the console
/// can say why; `what` names the act. (Console sessions carry no venue.)
pub fn org_admin<'a>(caller: &'a Caller, what: &str) -> Result<&'a Principal, ApiError> {
    let p = admin(caller)?;
    match p.venue_id {
        None => Ok(p),
        Some(venue) => Err(ApiError::Http {
            status: axum::http::StatusCode::FORBIDDEN,
            code: "ORG_ADMIN_ONLY",
            message: format!(
                "{what} is for an admin of the whole org: this token is bound to venue {venue}"
            ),
        }),
    }
}

/// Customers (for their own tickets) and admins change reservations and
/// activate tickets; operators only read.
pub fn customer_or_admin(caller: &Caller) -> Result<&Principal, ApiError> {
    with_role(caller, |r| matches!(r, Role::Customer | Role::Admin))
}

/// A customer session opened with a ticket code and e-mail (it may sign out).
pub fn customer_session(caller: &Caller) -> Result<&Principal, ApiError> {
    let p = signed_in(caller)?;
    match p.customer_scope() {
        Some(CustomerScope::Ticket(_)) => Ok(p),
        _ => Err(ApiError::Forbidden),
    }
}

/// The tickets a customer's list shows: `None` for staff (the list is not
/// theirs: 403), an empty scope for a customer token that names no ticket.
pub fn own_tickets(caller: &Caller) -> Result<(&Principal, Option<CustomerScope>), ApiError> {
    let p = with_role(caller, |r| r == Role::Customer)?;
    Ok((p, p.customer_scope()))
}

/// Whether `p` may see this ticket at all: staff see their org's tickets,
/// a customer only those of their scope (one ticket for a session).
pub fn may_see(p: &Principal, ticket: &Ticket) -> bool {
    ticket_reader(p).sees(ticket)
}

/// The same rule for a store service that reads the ticket itself.
pub fn ticket_reader(p: &Principal) -> TicketReader {
    match p.role {
        Role::Customer => TicketReader::Customer(p.customer_scope()),
        _ => TicketReader::Staff,
    }
}

pub fn check_sees(p: &Principal, ticket: &Ticket) -> Result<(), crate::store::StoreError> {
    if may_see(p, ticket) {
        Ok(())
    } else {
        Err(DomainError::NotFound { entity: "ticket" }.into())
    }
}

/// The venue a staff token is bound to; `None` for an org-wide token and for
/// a customer (whose own rules, one ticket or one user's, already apply).
pub fn staff_venue(p: &Principal) -> Option<VenueId> {
    match p.role {
        Role::Customer => None,
        _ => p.venue_id,
    }
}

/// A venue-bound staff caller reaches the slots of its venue only: another
/// venue's slot is NOT_FOUND to it (reserving into it, or rescheduling into
/// it, would also move a ticket in or out of the caller's reach).
pub fn check_slot_venue(
    s: &dyn crate::store::ServerStore,
    p: &Principal,
    slot: crate::domain::SlotId,
) -> Result<(), crate::store::StoreError> {
    if staff_venue(p).is_none() {
        return Ok(());
    }
    check_venue(p, s.get_slot(p.orq, slot)?.venue_id, "slot")
}

/// A token bound to a venue (a gate's supervisor) changes that venue's slots
/// only: another venue's is as unknown to it as another org's.
pub fn check_venue(
    p: &Principal,
    venue: VenueId,
    entity: &'static str,
) -> Result<(), crate::store::StoreError> {
    match p.venue_id {
        Some(bound) if bound != venue => Err(DomainError::NotFound { entity }.into()),
        _ => Ok(()),
    }
}
