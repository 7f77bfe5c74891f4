//! The pure half of offline-first sync: the wire protocol (`protocol`) and
//! the planner that decides what to upload and when to retry (`plan`). They
//! live here, not in `entrada-sync`, because the store speaks them too.

pub mod lan;
pub mod plan;
pub mod protocol;
