//! Pure business rules. This crate knows nothing of SQL, HTTP, Tauri or the
//! clock: time comes in as a parameter, ids are created by the caller (the
//! store). backend/tests/tidy.rs keeps it that way.

pub mod closing;
pub mod customer;
pub mod dashboard;
mod error;
pub mod gate_health;
mod ids;
pub mod no_show;
pub mod pairing;
pub mod reservation;
pub mod signed;
pub mod slot;
pub mod slot_pattern;
pub mod staff;
pub mod sync;
pub mod ticket;
pub mod ticket_story;
pub mod update;
pub mod upload;
pub mod venue;
pub mod venue_ops;
pub mod verdict;

pub use customer::{
    customer_actions, slot_offer, Action, Booked, ChangedBy, CustomerActions, SlotOffer,
};
pub use error::DomainError;
pub use ids::{OperatorId, Orq, ReservationId, SlotId, TicketCode, VenueId};
pub use reservation::{
    check_reservable, check_slot_bookable, Contact, Reservation, ReservationStatus,
};
pub use slot::{NewSlot, Slot, SlotChange, SlotRemoval, SlotStatus};
pub use ticket::{
    enter, ActivationMode, ActivationStatus, Cancellation, DoubleEntry, Entry, NewTicket, Ticket,
    TicketStatus, TicketUse,
};
pub use venue::{Operator, Role, Venue};
pub use verdict::{
    gate_verdict, not_synced_verdict, reservation_verdict, Gate, Verdict, VerdictCode, VerdictInput,
};
