//! The conformance suite (`entrada_store::conformance`) on PostgreSQL, one
//! schema per test. The groups this engine implements so far run here; the
//! others join as they are implemented (see the crate's README section).

mod common;

// `fresh()` gives a `PgStore`; the suite wants something to borrow from.
fn fresh() -> Option<Box<entrada_store_pg::PgStore>> {
    common::fresh().map(Box::new)
}

entrada_store::venue_conformance!(fresh());
entrada_store::slot_conformance!(fresh());
entrada_store::ticket_conformance!(fresh());
entrada_store::reservation_conformance!(fresh());
entrada_store::operator_conformance!(fresh());
entrada_store::token_conformance!(fresh());
entrada_store::gate_conformance!(fresh());
entrada_store::venue_ops_conformance!(fresh());
