//! The customer page's API types: `ui/customer/bindings/` is generated from
//! these Rust types (`cargo test -p entrada-server --lib export_customer_bindings`),
//! never written by hand; `scripts/test.sh` fails when the committed files
//! differ from what Rust says.

use ts_rs::TS;

#[test]
fn export_customer_bindings() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/customer/bindings");
    let cfg = ts_rs::Config::new()
        .with_large_int("number")
        .with_out_dir(&dir);
    super::tickets::TicketState::export_all(&cfg).unwrap();
    super::tickets::SessionBody::export_all(&cfg).unwrap();
    super::tickets::CustomerSession::export_all(&cfg).unwrap();
    super::reservations::CreateReservationBody::export_all(&cfg).unwrap();
    super::reservations::RescheduleBody::export_all(&cfg).unwrap();
    super::error::ErrorBody::export_all(&cfg).unwrap();
    crate::domain::SlotOffer::export_all(&cfg).unwrap();
    assert!(dir.join("TicketState.ts").exists());
}

/// The admin console's API types: `ui/admin/bindings/` (issue 16).
#[test]
fn export_admin_bindings() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/admin/bindings");
    let cfg = ts_rs::Config::new()
        .with_large_int("number")
        .with_out_dir(&dir);
    super::console::ConsoleSession::export_all(&cfg).unwrap();
    super::admin_slots::PatternBody::export_all(&cfg).unwrap();
    super::admin_slots::PatternAnswer::export_all(&cfg).unwrap();
    crate::domain::slot_pattern::BoardSlot::export_all(&cfg).unwrap();
    crate::domain::dashboard::Dashboard::export_all(&cfg).unwrap();
    crate::domain::gate_health::GateHealth::export_all(&cfg).unwrap();
    crate::domain::closing::Checkout::export_all(&cfg).unwrap();
    super::error::ErrorBody::export_all(&cfg).unwrap();
    assert!(dir.join("ConsoleSession.ts").exists());
}
