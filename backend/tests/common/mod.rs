//! Shared fixture for the store tests: a real SQLite file in a temp dir.
#![allow(dead_code)]

pub mod procs;

use chrono::{DateTime, TimeZone, Utc};
use entrada::domain::{ActivationMode, Contact, NewSlot, NewTicket, Orq, Slot, TicketCode, Venue};
use entrada::store::{ReserveRequest, Store};

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub venue: Venue,
}

pub const ORQ: Orq = Orq(1);

/// 2025-11-25 10:00 UTC: before the December slots used in the tests.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 11, 25, 10, 0, 0).unwrap()
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("entrada.db")).unwrap();
        let venue = store
            .add_venue(ORQ, "Prado", "Europe/Madrid", now())
            .unwrap();
        Self { dir, store, venue }
    }

    pub fn db_path(&self) -> std::path::PathBuf {
        self.dir.path().join("entrada.db")
    }

    pub fn slot(&self, date: &str, start: &str, end: &str, capacity: i64) -> Slot {
        let new = NewSlot::validate(self.venue.id.0, date, start, end, Some(capacity)).unwrap();
        self.store.create_slot(ORQ, &new, now()).unwrap()
    }

    pub fn ticket(&self, code: &str, mode: ActivationMode) -> TicketCode {
        let t = NewTicket::plain(code, mode).unwrap();
        self.store.insert_tickets(ORQ, &[t], now()).unwrap();
        TicketCode::parse(code).unwrap()
    }

    pub fn request(&self, code: &TicketCode, slot: &Slot) -> ReserveRequest {
        ReserveRequest {
            ticket: code.clone(),
            slot_id: slot.id,
            contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
        }
    }
}
