//! The store interface the server speaks, one trait per service group, in
//! the atuin manner: each database engine implements the traits (SQLite:
//! [`Store`], here; PostgreSQL: the `entrada-store-pg` crate), and the server
//! holds an `Arc<dyn ServerStore>`. The gate app keeps the concrete SQLite
//! `Store` (outbox, pairing, local data are a replica's, not the server's).
//!
//! The traits are the server's calls and nothing more: the same signatures
//! as `Store`'s inherent methods, which the SQLite implementation forwards to
//! (one macro writes the trait and the forwarding, so they cannot drift).
//! The calls block; the server runs them on tokio's blocking pool. The
//! exceptions: `TokenStore::cached_principal` answers from memory or not at
//! all, never blocks, and the server calls it on its async worker; and
//! `HandOff`'s calls, which an engine may take from an async caller as a
//! future (queued, no blocking thread per waiting caller), or decline.
//!
//! Groups rather than one trait, so an engine can be brought up one group at
//! a time with the conformance suite (`crate::conformance`) proving each
//! group against both engines; `ServerStore` is every group, implemented for
//! any type that has them all.

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::sync::protocol::{ChangePage, DeviceInfo, Event, EventResult};
use crate::domain::venue::VenuePatch;
use crate::domain::{
    ChangedBy, Gate, NewSlot, NewTicket, Operator, OperatorId, Orq, Reservation, ReservationId,
    Role, Slot, SlotChange, SlotId, SlotOffer, SlotRemoval, Ticket, TicketCode, Venue, VenueId,
    Verdict,
};
use crate::{
    CustomerScope, OrgSettings, Principal, ReserveRequest, Result, SigningKeyInfo, Store,
    TicketFilter, TicketReader, TicketState,
};

/// An answer an engine gives later, to a caller that awaits it.
pub type Pending<T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send>>;

/// Calls an engine may take from a caller on an async runtime's worker
/// without a blocking thread per waiting call (PostgreSQL: verify-ticket
/// goes into its group-commit queue, whose batches are led by a few
/// blocking threads, and its caller's task is woken once, with its answer).
/// Each returns `None` when the engine does not take it so (the default;
/// SQLite): the caller runs the blocking call on a blocking thread, as for
/// every other call. Same rules, same answer as the blocking call.
pub trait HandOff: Send + Sync {
    /// `GateStore::verify_ticket`, handed off. Must be called on a tokio
    /// runtime (an engine that needs one and finds none declines).
    fn verify_ticket_handed_off(
        self: std::sync::Arc<Self>,
        orq: Orq,
        code: TicketCode,
        operator: OperatorId,
        gate: Gate,
        now: DateTime<Utc>,
    ) -> Option<Pending<Verdict>> {
        let _ = (orq, code, operator, gate, now);
        None
    }
}

/// SQLite's calls block on its own connection: none is handed off.
impl HandOff for Store {}

macro_rules! service_groups {
    ($(
        $(#[$doc:meta])*
        trait $group:ident {
            $( fn $method:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty; )*
        }
    )*) => {
        $(
            $(#[$doc])*
            pub trait $group: Send + Sync {
                $( fn $method(&self $(, $arg: $ty)*) -> $ret; )*
            }

            impl $group for Store {
                $(
                    fn $method(&self $(, $arg: $ty)*) -> $ret {
                        Store::$method(self $(, $arg)*)
                    }
                )*
            }
        )*

        /// Everything the server needs from its database.
        pub trait ServerStore: $($group +)* HandOff + Send + Sync {}
        impl<T: $($group +)* HandOff + Send + Sync> ServerStore for T {}
    };
}

service_groups! {
    /// Venues and their gate settings.
    trait VenueStore {
        fn add_venue(&self, orq: Orq, name: &str, timezone: &str, now: DateTime<Utc>) -> Result<Venue>;
        fn get_venue(&self, orq: Orq, id: VenueId) -> Result<Venue>;
        fn list_venues(&self, orq: Orq) -> Result<Vec<Venue>>;
        fn update_venue(&self, orq: Orq, id: VenueId, patch: &VenuePatch, now: DateTime<Utc>) -> Result<Venue>;
    }

    /// Operators and their PINs (with the lockout).
    trait OperatorStore {
        fn add_operator(&self, orq: Orq, role: Role, display_name: &str, pin: Option<&str>, now: DateTime<Utc>) -> Result<Operator>;
        fn get_operator(&self, orq: Orq, id: OperatorId) -> Result<Operator>;
        fn list_operators(&self, orq: Orq) -> Result<Vec<Operator>>;
        fn reset_operator_pin(&self, orq: Orq, id: OperatorId, pin: &str, now: DateTime<Utc>) -> Result<Operator>;
        fn check_operator_pin(&self, orq: Orq, id: OperatorId, pin: &str, now: DateTime<Utc>) -> Result<Operator>;
        fn change_operator(&self, orq: Orq, id: OperatorId, judged_role: Role, change: crate::domain::staff::StaffChange, now: DateTime<Utc>) -> Result<Operator>;
    }

    /// Time slots.
    trait SlotStore {
        fn create_slot(&self, orq: Orq, new: &NewSlot, now: DateTime<Utc>) -> Result<Slot>;
        fn get_slot(&self, orq: Orq, id: SlotId) -> Result<Slot>;
        fn list_slots(&self, orq: Orq, venue: Option<VenueId>, from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<Vec<Slot>>;
        fn update_slot(&self, orq: Orq, id: SlotId, change: SlotChange, now: DateTime<Utc>) -> Result<Slot>;
        fn remove_slot(&self, orq: Orq, id: SlotId, now: DateTime<Utc>) -> Result<(SlotRemoval, Option<Slot>)>;
    }

    /// The console's Slots page (issue 16): a month with admitted counts;
    /// a weekly pattern previewed or created in one transaction.
    trait SlotBoardStore {
        fn slot_board(&self, orq: Orq, venue: VenueId, month: &str) -> Result<Vec<crate::domain::slot_pattern::BoardSlot>>;
        fn apply_slot_pattern(&self, orq: Orq, pattern: &crate::domain::slot_pattern::WeeklyPattern, create: bool, now: DateTime<Utc>) -> Result<Vec<crate::domain::slot_pattern::PlannedSlot>>;
    }

    /// The console's live dashboard (issue 16): an org's day as of `now`.
    trait DashboardStore {
        fn dashboard(&self, orq: Orq, now: DateTime<Utc>) -> Result<crate::domain::dashboard::Dashboard>;
    }

    /// Reservations of slots by ticket holders.
    trait ReservationStore {
        fn get_reservation(&self, orq: Orq, id: ReservationId) -> Result<Reservation>;
        fn reserve_slot(&self, orq: Orq, req: &ReserveRequest, now: DateTime<Utc>) -> Result<Reservation>;
        fn reserve_slot_as(&self, orq: Orq, req: &ReserveRequest, by: ChangedBy, now: DateTime<Utc>) -> Result<Reservation>;
        fn cancel_reservation(&self, orq: Orq, id: ReservationId, by: ChangedBy, now: DateTime<Utc>) -> Result<Reservation>;
        fn reschedule_reservation(&self, orq: Orq, id: ReservationId, new_slot: SlotId, by: ChangedBy, now: DateTime<Utc>) -> Result<Reservation>;
        fn offered_slots(&self, orq: Orq, month: &str, venue: Option<VenueId>, ticket: Option<&TicketCode>, now: DateTime<Utc>) -> Result<Vec<SlotOffer>>;
    }

    /// Tickets: creation, look-ups, activation, the customer's view.
    trait TicketStore {
        fn insert_tickets(&self, orq: Orq, tickets: &[NewTicket], now: DateTime<Utc>) -> Result<Vec<Ticket>>;
        fn get_ticket(&self, orq: Orq, code: &TicketCode) -> Result<Ticket>;
        fn existing_ticket_codes(&self, orq: Orq, codes: &[TicketCode]) -> Result<Vec<TicketCode>>;
        fn get_ticket_in(&self, orq: Orq, code: &TicketCode, venue: Option<VenueId>) -> Result<Ticket>;
        fn list_tickets(&self, orq: Orq, filter: &TicketFilter, after: Option<&TicketCode>, limit: u32) -> Result<Vec<Ticket>>;
        fn activate_ticket(&self, orq: Orq, code: &TicketCode, venue: Option<VenueId>, now: DateTime<Utc>) -> Result<Ticket>;
        fn customer_tickets(&self, orq: Orq, scope: &CustomerScope, limit: u32) -> Result<Vec<Ticket>>;
        fn search_tickets(&self, orq: Orq, query: &crate::TicketQuery, filter: &TicketFilter, after: Option<&TicketCode>, limit: u32) -> Result<Vec<Ticket>>;
        fn cancel_ticket(&self, orq: Orq, code: &TicketCode, venue: Option<VenueId>, now: DateTime<Utc>) -> Result<Ticket>;
        fn ticket_story(&self, orq: Orq, code: &TicketCode, venue: Option<VenueId>) -> Result<Vec<crate::domain::ticket_story::StoryEvent>>;
        fn reissue_ticket_code(&self, orq: Orq, code: &TicketCode, venue: Option<VenueId>, now: DateTime<Utc>) -> Result<String>;
    }

    /// The door: validate (read only) and verify (admit).
    trait GateStore {
        fn validate_ticket(&self, orq: Orq, code: &TicketCode, gate: &Gate, now: DateTime<Utc>) -> Result<Verdict>;
        fn reservation_eligibility(&self, orq: Orq, code: &TicketCode, now: DateTime<Utc>) -> Result<Verdict>;
        fn verify_ticket(&self, orq: Orq, code: &TicketCode, operator: OperatorId, gate: &Gate, now: DateTime<Utc>) -> Result<Verdict>;
    }

    /// API tokens, customer sessions and console sessions (issue 16).
    trait TokenStore {
        fn create_token(&self, orq: Orq, role: Role, user_id: Option<i64>, venue_id: Option<VenueId>, now: DateTime<Utc>) -> Result<(String, Principal)>;
        fn principal_for_token(&self, token: &str, now: DateTime<Utc>) -> Result<Option<Principal>>;
        // The principal of a token if the engine can answer it from memory
        // without blocking (no database call, no pooled connection): the
        // server asks this on its async worker first and goes to the blocking
        // pool (`principal_for_token`) only on `None`. Never `Some` for a
        // token `principal_for_token` would refuse at `now`.
        fn cached_principal(&self, token: &str, now: DateTime<Utc>) -> Option<Principal>;
        fn revoke_token_id(&self, token_id: i64, now: DateTime<Utc>) -> Result<bool>;
        fn customer_session(&self, code: &TicketCode, email: &str, now: DateTime<Utc>) -> Result<(String, Principal, DateTime<Utc>)>;
        fn create_console_link(&self, orq: Orq, operator: Option<OperatorId>, now: DateTime<Utc>) -> Result<(String, DateTime<Utc>)>;
        fn redeem_console_link(&self, link: &str, now: DateTime<Utc>) -> Result<(String, Principal, DateTime<Utc>)>;
    }

    /// Signing keys, signed codes, the org's code policy, scanning, and a
    /// ticket's state as its holder sees it (it carries the signed code).
    trait SigningStore {
        fn ticket_state(&self, orq: Orq, code: &TicketCode, reader: &TicketReader, now: DateTime<Utc>) -> Result<TicketState>;
        fn org_settings(&self, orq: Orq) -> Result<OrgSettings>;
        fn set_signed_codes_only(&self, orq: Orq, on: bool, now: DateTime<Utc>) -> Result<OrgSettings>;
        fn public_keys(&self, orq: Orq) -> Result<Vec<SigningKeyInfo>>;
        fn signed_code(&self, orq: Orq, code: &TicketCode, now: DateTime<Utc>) -> Result<String>;
        fn scan(&self, orq: Orq, raw: &[u8], operator: OperatorId, gate: &Gate, now: DateTime<Utc>) -> Result<Verdict>;
    }

    /// Venue operations (issue 15): occupancy counted from passages; no-show
    /// release across every org (the server's periodic task).
    trait VenueOpsStore {
        fn occupancy(&self, orq: Orq, venue: VenueId, now: DateTime<Utc>) -> Result<crate::domain::venue_ops::Occupancy>;
        fn release_no_shows(&self, now: DateTime<Utc>) -> Result<Vec<crate::domain::no_show::Released>>;
        fn take_back_leases(&self, scope: Option<(Orq, VenueId)>, only_closed: bool, now: DateTime<Utc>) -> Result<Vec<crate::domain::venue_ops::SlotPlaces>>;
        fn checkout_venue(&self, orq: Orq, venue: VenueId, operator: Option<OperatorId>, now: DateTime<Utc>) -> Result<crate::domain::closing::Checkout>;
        fn close_due_venues(&self, now: DateTime<Utc>) -> Result<Vec<crate::domain::closing::Checkout>>;
    }

    /// The server's side of sync: devices, uploaded events, the change feed.
    trait SyncStore {
        fn add_device(&self, orq: Orq, venue: VenueId, name: &str, now: DateTime<Utc>) -> Result<(String, DeviceInfo)>;
        fn device_for_token(&self, token: &str) -> Result<Option<DeviceInfo>>;
        fn apply_events(&self, device: &DeviceInfo, events: &[Event], sent_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<Vec<EventResult>>;
        fn changes_since(&self, orq: Orq, venue: VenueId, cursor: i64, limit: u32, now: DateTime<Utc>) -> Result<ChangePage>;
        fn changes_page_json(&self, orq: Orq, venue: VenueId, cursor: i64, limit: u32, now: DateTime<Utc>) -> Result<Vec<u8>>;
        fn settle_feed(&self) -> Result<i64>;
        fn list_conflicts(&self, orq: Orq) -> Result<Vec<serde_json::Value>>;
        fn list_conflicts_in(&self, orq: Orq, venue: Option<VenueId>) -> Result<Vec<serde_json::Value>>;
        fn refresh_leases(&self, device: &DeviceInfo, pending: &[crate::domain::venue_ops::SlotPlaces], now: DateTime<Utc>) -> Result<Vec<crate::domain::venue_ops::SlotPlaces>>;
        fn register_device_key(&self, device: &DeviceInfo, public_key: &str, now: DateTime<Utc>) -> Result<Vec<crate::domain::sync::lan::PeerKey>>;
        fn book_walkup_online(&self, device: &DeviceInfo, raw: &[u8], now: DateTime<Utc>) -> Result<crate::domain::venue_ops::WalkupBooking>;
    }

    /// The console's Gates page (issue 16): gates as recorded, revoked.
    trait GateHealthStore {
        fn gate_health(&self, orq: Orq) -> Result<Vec<crate::domain::gate_health::GateHealth>>;
        fn record_pending_uploads(&self, device: &DeviceInfo, pending: u32, now: DateTime<Utc>) -> Result<()>;
        fn revoke_gate(&self, orq: Orq, device_id: i64, now: DateTime<Utc>) -> Result<()>;
    }

    /// Fleet updates (issue 20): which gate runs which app version.
    trait UpdateStore {
        fn record_update_report(&self, device: &DeviceInfo, report: &crate::domain::update::UpdateReport, now: DateTime<Utc>) -> Result<()>;
        fn device_versions(&self, orq: Orq) -> Result<Vec<crate::domain::update::DeviceVersion>>;
    }
}
