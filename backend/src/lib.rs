//! Entrada: time-slot reservations and gate verification.
//!
//! The workspace's crates are the architecture (see ARCHITECTURE.md):
//! `entrada-domain` holds the rules (pure), `entrada-store` runs every SQL
//! statement and the transactions that apply the rules, `entrada-sync` is the
//! device-side sync engine and `entrada-server` the HTTP API. This crate is the
//! `entrada` CLI; its library re-exports them under their old paths
//! (`entrada::domain`, `entrada::store`, `entrada::sync`, `entrada::api`) for
//! the CLI, the tests, the benchmarks and the desktop app.

pub use entrada_domain as domain;
pub use entrada_server as api;
pub use entrada_store as store;
pub use entrada_sync as sync;

pub mod demo;
pub mod qr;
