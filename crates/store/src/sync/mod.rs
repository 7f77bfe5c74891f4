//! Sync, in SQL. Server side: device registration, the change feed, applying
//! pushed events exactly once, double-entry conflicts. Device side: pairing,
//! the outbox, applying pulled pages with their cursor in one transaction.

mod devices;
mod feed;
mod ingest;
mod lan;
mod outbox;
mod pulled;

pub use devices::{LocalData, Pairing, DEMO_MARKER_TICKET};
pub(crate) use feed::restore_deferred_indexes_at_open;
pub(crate) use lan::known_admissions;
pub use lan::{PeerStatus, Received, MAX_PEERS};
pub(crate) use outbox::record_local_event;
pub use outbox::{OutboxEntry, SyncStatus};
pub use pulled::{Cell, PulledChange, PulledPage, PulledRow};
