//! Offline-first sync: the wire protocol (`protocol`), the pure planner that
//! decides what to upload and when to retry (`plan`), and the device-side
//! engine that runs a round over HTTP (`client`). The server side is in
//! `store::sync` (SQL) and `api::sync` (HTTP).

pub mod client;
pub mod plan;
pub mod protocol;
