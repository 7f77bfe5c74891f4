//! Offline-first sync, device side: the engine that runs one upload-then-
//! download round over HTTP (`client`). The wire protocol (`protocol`) and the
//! pure planner (`plan`) are `entrada_domain::sync`, re-exported here. The
//! server side is in `entrada-store`'s `sync` (SQL) and `entrada-server`'s
//! `sync` (HTTP).

pub mod client;
pub mod closing;
pub mod lan;
pub mod lan_discovery;
pub mod pin;
pub mod update;
pub mod walkup;
pub use entrada_domain::sync::{plan, protocol};

use entrada_store as store;
