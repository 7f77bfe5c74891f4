//! The conformance suite (`entrada_store::conformance`) on PostgreSQL, one
//! schema per test. The groups this engine implements so far run here; the
//! others join as they are implemented (see the crate's README section).

mod common;

// A `PgStore` in a schema of its own, dropped after the test.
fn fresh() -> Option<common::Fresh> {
    common::fresh()
}

entrada_store::venue_conformance!(fresh());
entrada_store::slot_conformance!(fresh());
entrada_store::ticket_conformance!(fresh());
entrada_store::reservation_conformance!(fresh());
entrada_store::operator_conformance!(fresh());
entrada_store::token_conformance!(fresh());
entrada_store::gate_conformance!(fresh());
entrada_store::signing_conformance!(fresh());
entrada_store::sync_conformance!(fresh());
entrada_store::admin_conformance!(fresh());
entrada_store::venue_ops_conformance!(fresh());
entrada_store::venue_ops_sync_conformance!(fresh());
entrada_store::venue_upload_conformance!(fresh());
entrada_store::update_conformance!(fresh());
entrada_store::console_ticket_conformance!(fresh());
entrada_store::slot_board_conformance!(fresh());
entrada_store::staff_conformance!(fresh());
entrada_store::gate_health_conformance!(fresh());
