//! Entrada: time-slot reservations and gate verification.
//!
//! `domain` holds the rules (pure), `store` runs every SQL statement and the
//! transactions that apply the rules. The `entrada` binary (server and CLI)
//! and the desktop app are thin shells over this crate.

pub mod api;
pub mod demo;
pub mod domain;
pub mod qr;
pub mod store;
pub mod sync;
