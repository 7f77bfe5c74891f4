//! The conformance suite's signing and sync groups (see `conformance`): signed
//! codes, scanning and keys; devices, uploaded events exactly once, and the
//! change feed, whose rows must be the same JSON on every engine (a gate's
//! SQLite replica binds them as they come).

use chrono::Duration;

use crate::conformance::{now, ORQ};
use crate::domain::{
    ActivationMode, Contact, Gate, NewSlot, NewTicket, OperatorId, Slot, TicketCode, Venue,
    VerdictCode,
};
use crate::{ReservationStore, ReserveRequest, SlotStore, TicketStore, VenueStore};

fn ticket(s: &(impl TicketStore + ?Sized), code: &str) -> TicketCode {
    let t = NewTicket::plain(code, ActivationMode::Immediate).unwrap();
    s.insert_tickets(ORQ, &[t], now()).unwrap();
    TicketCode::parse(code).unwrap()
}

/// Prado (Madrid), a slot on 2025-12-01 09:00-12:00 (10 places) and `T-1`
/// reserved on it.
fn booked(
    s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + ?Sized),
) -> (Venue, Slot, TicketCode, crate::domain::Reservation) {
    let venue = s.add_venue(ORQ, "Prado", "Europe/Madrid", now()).unwrap();
    let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(10)).unwrap();
    let slot = s.create_slot(ORQ, &new, now()).unwrap();
    let t = ticket(s, "T-1");
    let req = ReserveRequest {
        ticket: t.clone(),
        slot_id: slot.id,
        contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
    };
    let r = s.reserve_slot(ORQ, &req, now()).unwrap();
    (venue, slot, t, r)
}

/// 2025-12-01 10:00 UTC: 11:00 in Madrid, inside the slot.
fn at_gate() -> chrono::DateTime<chrono::Utc> {
    now() + Duration::days(6)
}

/// Signed codes, scanning, keys, the org's code policy, a ticket's state.
pub mod signing {
    use super::*;
    use crate::{GateStore, SigningStore, StoreError, TicketReader};

    pub fn a_signed_code_scans_in_once_and_a_forged_one_never(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + GateStore
              + SigningStore
              + ?Sized),
    ) {
        let (venue, _, t, _) = booked(s);
        let gate = Gate {
            venue_id: Some(venue.id),
            ..Gate::default()
        };
        let code = s.signed_code(ORQ, &t, now()).unwrap();
        assert!(code.starts_with("ENT1."), "{code}");
        // The same code every time, with the org's one key.
        assert_eq!(s.signed_code(ORQ, &t, now()).unwrap(), code);
        let keys = s.public_keys(ORQ).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(
            (keys[0].orq, keys[0].created_at, keys[0].retired_at),
            (ORQ, now(), None)
        );

        // One flipped character of the signature: refused, nothing written.
        let mut forged = code.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let v = s
            .scan(ORQ, &forged, OperatorId(5), &gate, at_gate())
            .unwrap();
        assert!(!v.admit, "{v:?}");
        assert_eq!(s.get_ticket(ORQ, &t).unwrap().verified_at, None);

        let v = s
            .scan(ORQ, code.as_bytes(), OperatorId(5), &gate, at_gate())
            .unwrap();
        assert_eq!(
            (v.verdict, v.verified_by),
            (VerdictCode::Admit, Some(OperatorId(5)))
        );
        assert_eq!(
            s.get_ticket(ORQ, &t).unwrap().verified_by,
            Some(OperatorId(5))
        );
        let again = s
            .scan(ORQ, code.as_bytes(), OperatorId(6), &gate, at_gate())
            .unwrap();
        assert_eq!(again.verdict, VerdictCode::AlreadyVerified);
        assert_eq!(
            s.get_ticket(ORQ, &t).unwrap().verified_by,
            Some(OperatorId(5))
        );
        // Garbage is a verdict too, not an error.
        assert!(
            !s.scan(ORQ, b"\x00\x01", OperatorId(5), &gate, at_gate())
                .unwrap()
                .admit
        );
    }

    pub fn signed_codes_only_refuses_plain_codes(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + GateStore
              + SigningStore
              + ?Sized),
    ) {
        let (venue, _, t, _) = booked(s);
        let gate = Gate {
            venue_id: Some(venue.id),
            ..Gate::default()
        };
        let defaults = s.org_settings(ORQ).unwrap();
        assert_eq!(
            (defaults.signed_codes_only, defaults.updated_at),
            (false, None)
        );
        let later = now() + Duration::minutes(1);
        let on = s.set_signed_codes_only(ORQ, true, later).unwrap();
        assert_eq!((on.signed_codes_only, on.updated_at), (true, Some(later)));
        assert_eq!(s.org_settings(ORQ).unwrap(), on);
        let v = s
            .scan(ORQ, t.as_str().as_bytes(), OperatorId(5), &gate, at_gate())
            .unwrap();
        assert_eq!(v.verdict, VerdictCode::SignedCodeRequired);
        assert_eq!(
            s.validate_ticket(ORQ, &t, &gate, at_gate())
                .unwrap()
                .verdict,
            VerdictCode::SignedCodeRequired
        );
        let code = s.signed_code(ORQ, &t, now()).unwrap();
        assert!(
            s.scan(ORQ, code.as_bytes(), OperatorId(5), &gate, at_gate())
                .unwrap()
                .admit
        );
    }

    pub fn ticket_state_is_the_holders_view_with_the_signed_code(
        s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + SigningStore + ?Sized),
    ) {
        let (venue, slot, t, r) = booked(s);
        let state = s
            .ticket_state(ORQ, &t, &TicketReader::Staff, now())
            .unwrap();
        assert_eq!(state.ticket.ticket_code, t);
        assert_eq!(state.reservation.as_ref().map(|r| r.id), Some(r.id));
        assert_eq!(state.slot.as_ref().map(|s| s.id), Some(slot.id));
        assert_eq!(state.venue.as_ref().map(|v| v.id), Some(venue.id));
        assert_eq!(state.signed_code, s.signed_code(ORQ, &t, now()).unwrap());
        // A customer without a session that covers it does not see it.
        let err = s
            .ticket_state(ORQ, &t, &TicketReader::Customer(None), now())
            .unwrap_err();
        assert_eq!(err.code(), "NOT_FOUND");
        let unknown = TicketCode::parse("NOPE").unwrap();
        assert!(matches!(
            s.ticket_state(ORQ, &unknown, &TicketReader::Staff, now()),
            Err(StoreError::Domain(_))
        ));
    }

    pub fn concurrent_first_signatures_make_one_key(
        s: &(impl TicketStore + SigningStore + ?Sized),
    ) {
        let codes: Vec<TicketCode> = (0..8).map(|i| ticket(s, &format!("K-{i}"))).collect();
        // All at once: the first look finds no key for every one of them.
        let start = std::sync::Barrier::new(codes.len());
        let signed: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = codes
                .iter()
                .map(|c| {
                    let start = &start;
                    scope.spawn(move || {
                        start.wait();
                        s.signed_code(ORQ, c, now()).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(signed.len(), 8);
        assert_eq!(
            s.public_keys(ORQ).unwrap().len(),
            1,
            "one key per org, however many sign at once"
        );
    }
}

/// Devices, uploaded events, the change feed.
pub mod sync {
    use super::*;
    use crate::domain::sync::protocol::{Change, Event, EventStatus};
    use crate::domain::Role;
    use crate::{GateStore, OperatorStore, SigningStore, SyncStore};

    fn event(
        kind: &str,
        payload: serde_json::Value,
        operator: i64,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Event {
        Event {
            event_id: uuid::Uuid::now_v7(),
            kind: kind.into(),
            payload,
            operator_id: Some(operator),
            device_time: at,
        }
    }

    /// Every change of the venue's feed, page by page (`limit` each).
    fn pull_all(s: &(impl SyncStore + ?Sized), venue: &Venue, limit: u32) -> Vec<Change> {
        let mut cursor = 0;
        let mut all = Vec::new();
        loop {
            let page = s
                .changes_since(ORQ, venue.id, cursor, limit, now())
                .unwrap();
            assert!(page.changes.len() <= limit as usize);
            assert_eq!(page.remaining > 0, page.has_more);
            all.extend(page.changes);
            assert!(page.next_cursor >= cursor);
            cursor = page.next_cursor;
            if !page.has_more {
                return all;
            }
        }
    }

    pub fn devices_are_registered_and_found_by_token(s: &(impl VenueStore + SyncStore + ?Sized)) {
        let venue = s.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
        let (token, info) = s.add_device(ORQ, venue.id, " Gate 1 ", now()).unwrap();
        assert!(token.starts_with("dev_") && token.len() > 40, "{token}");
        assert_eq!(
            (info.orq, info.venue_id, info.name.as_str()),
            (ORQ.0, venue.id.0, "Gate 1")
        );
        assert_eq!(s.device_for_token(&token).unwrap(), Some(info.clone()));
        assert_eq!(
            s.device_for_token(&format!(" {token}\n")).unwrap(),
            Some(info)
        );
        assert_eq!(s.device_for_token("dev_nope").unwrap(), None);
        let err = s
            .add_device(ORQ, crate::domain::VenueId(999_999), "Gate", now())
            .unwrap_err();
        assert_eq!(err.code(), "NOT_FOUND");
        let (other, _) = s.add_device(ORQ, venue.id, "Gate 2", now()).unwrap();
        assert_ne!(other, token);
    }

    /// Issue 14: a device registers its public key with its token; the
    /// answer lists the other gates of its venue and org with a key, and a
    /// revoked gate drops out.
    pub fn device_keys_reach_the_other_gates_of_the_venue_only(
        s: &(impl VenueStore + SyncStore + crate::AdminStore + ?Sized),
    ) {
        use crate::domain::sync::lan::{public_key_hex, PeerKey};
        let key = |seed: u8| public_key_hex(&ed25519_dalek::SigningKey::from_bytes(&[seed; 32]));
        let venue = s.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
        let other_venue = s.add_venue(ORQ, "Reina Sofia", "UTC", now()).unwrap();
        let other_org = crate::domain::Orq(ORQ.0 + 1);
        let elsewhere = s.add_venue(other_org, "Louvre", "UTC", now()).unwrap();
        let (_, a) = s.add_device(ORQ, venue.id, "A", now()).unwrap();
        let (_, b) = s.add_device(ORQ, venue.id, "B", now()).unwrap();
        let (_, c) = s
            .add_device(ORQ, venue.id, "C (no key yet)", now())
            .unwrap();
        let (_, x) = s.add_device(ORQ, other_venue.id, "X", now()).unwrap();
        let (_, y) = s.add_device(other_org, elsewhere.id, "Y", now()).unwrap();
        assert_eq!(s.register_device_key(&a, &key(1), now()).unwrap(), vec![]);
        assert_eq!(
            s.register_device_key(&x, &key(3), now()).unwrap(),
            vec![],
            "another venue's gate is not listed"
        );
        assert_eq!(
            s.register_device_key(&y, &key(4), now()).unwrap(),
            vec![],
            "another org's gate is not listed"
        );
        let peers = s
            .register_device_key(&b, &key(2).to_uppercase(), now())
            .unwrap();
        assert_eq!(
            peers,
            vec![PeerKey {
                device_id: a.device_id,
                name: "A".into(),
                public_key: key(1)
            }]
        );
        assert_eq!(
            s.register_device_key(&a, &key(1), now()).unwrap(),
            vec![PeerKey {
                device_id: b.device_id,
                name: "B".into(),
                public_key: key(2)
            }],
            "stored lowercase; C, without a key, is not listed"
        );
        let _ = c;
        for bad in ["", "00", &"zz".repeat(32), &key(1)[..62]] {
            let err = s.register_device_key(&a, bad, now()).unwrap_err();
            assert_eq!(err.code(), "INVALID_INPUT", "{bad:?}");
        }
        s.revoke_device(ORQ, b.device_id, now()).unwrap();
        assert_eq!(
            s.register_device_key(&a, &key(1), now()).unwrap(),
            vec![],
            "a revoked gate drops out"
        );
    }

    /// Issue 14h: a device key belongs to one live gate. A gate cannot
    /// register another gate's key (of its venue or any other): it gets
    /// DUPLICATE_DEVICE_KEY and the owner keeps its key and its place in the
    /// peer lists; a revoked gate's key is free again. (On the gate, pairing
    /// as another device makes a new key pair: `sync::lan::tests::
    /// a_gate_paired_as_another_device_gets_a_key_pair_of_its_own`.)
    pub fn a_device_key_belongs_to_one_live_gate(
        s: &(impl VenueStore + SyncStore + crate::AdminStore + ?Sized),
    ) {
        use crate::domain::sync::lan::{public_key_hex, PeerKey};
        let key = |seed: u8| public_key_hex(&ed25519_dalek::SigningKey::from_bytes(&[seed; 32]));
        let venue = s.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
        let other_venue = s.add_venue(ORQ, "Reina Sofia", "UTC", now()).unwrap();
        let (_, a) = s.add_device(ORQ, venue.id, "A", now()).unwrap();
        let (_, b) = s.add_device(ORQ, venue.id, "B", now()).unwrap();
        let (_, c) = s.add_device(ORQ, venue.id, "C", now()).unwrap();
        let (_, x) = s.add_device(ORQ, other_venue.id, "X", now()).unwrap();
        s.register_device_key(&a, &key(1), now()).unwrap();
        s.register_device_key(&b, &key(2), now()).unwrap();
        let err = s.register_device_key(&c, &key(1), now()).unwrap_err();
        assert_eq!(err.code(), "DUPLICATE_DEVICE_KEY");
        let err = s
            .register_device_key(&b, &key(1).to_uppercase(), now())
            .unwrap_err();
        assert_eq!(err.code(), "DUPLICATE_DEVICE_KEY", "any case of the hex");
        let err = s.register_device_key(&x, &key(1), now()).unwrap_err();
        assert_eq!(err.code(), "DUPLICATE_DEVICE_KEY", "another venue's gate");
        let a_key = PeerKey {
            device_id: a.device_id,
            name: "A".into(),
            public_key: key(1),
        };
        assert_eq!(
            s.register_device_key(&b, &key(2), now()).unwrap(),
            vec![a_key],
            "B kept its own key; A kept its"
        );
        assert_eq!(
            s.register_device_key(&a, &key(1), now()).unwrap(),
            vec![PeerKey {
                device_id: b.device_id,
                name: "B".into(),
                public_key: key(2)
            }],
            "registering one's own key again is fine"
        );
        s.revoke_device(ORQ, a.device_id, now()).unwrap();
        assert_eq!(
            s.register_device_key(&c, &key(1), now()).unwrap(),
            vec![PeerKey {
                device_id: b.device_id,
                name: "B".into(),
                public_key: key(2)
            }],
            "a revoked gate's key is free again"
        );
    }

    /// The feed's rows, column by column, as SQLite's `json_object` gives
    /// them: both engines must produce exactly this text.
    pub fn feed_rows_are_the_same_json_on_every_engine(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + SigningStore
              + SyncStore
              + ?Sized),
    ) {
        let (venue, slot, t, r) = booked(s);
        let op = s
            .add_operator(ORQ, Role::Supervisor, "Ana", None, now())
            .unwrap();
        let later = now() + Duration::minutes(1);
        s.set_signed_codes_only(ORQ, true, later).unwrap();
        s.signed_code(ORQ, &t, now()).unwrap();
        let key = &s.public_keys(ORQ).unwrap()[0];
        let changes = pull_all(s, &venue, 3);
        let row = |entity: &str| -> String {
            let c = changes
                .iter()
                .find(|c| c.entity == entity)
                .unwrap_or_else(|| panic!("no {entity} in {changes:?}"));
            assert_eq!(c.op, "upsert");
            serde_json::to_string(c.row.as_ref().unwrap()).unwrap()
        };
        let json = |v: serde_json::Value| serde_json::to_string(&v).unwrap();
        let n = "2025-11-25T10:00:00.000Z";
        assert_eq!(
            row("venues"),
            json(serde_json::json!({
                "id": venue.id.0, "orq": 1, "name": "Prado", "timezone": "Europe/Madrid",
                "early_grace_minutes": 30, "late_grace_minutes": 30, "created_at": n, "updated_at": n,
                "reentry_allowed": 0, "walkup_lease_places": 0, "no_show_release_minutes": null,
                "occupancy_limit": null, "closing_time": null,
            }))
        );
        assert_eq!(
            row("operators"),
            json(serde_json::json!({
                "id": op.id.0, "orq": 1, "role": "supervisor", "display_name": "Ana", "pin_hash": null,
                "created_at": n, "updated_at": n, "deactivated_at": null,
            }))
        );
        assert_eq!(
            row("org_settings"),
            json(serde_json::json!({
                "orq": 1, "signed_codes_only": 1, "updated_at": "2025-11-25T10:01:00.000Z",
            }))
        );
        use base64::Engine;
        let public = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&key.public_key)
            .unwrap();
        let hex: String = public.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(
            row("signing_keys"),
            json(serde_json::json!({
                "kid": key.kid, "orq": 1, "public_key": hex, "created_at": n, "retired_at": null,
            }))
        );
        assert_eq!(
            row("reservation_slots"),
            json(serde_json::json!({
                "id": slot.id.to_string(), "date": "2025-12-01", "start_time": "09:00:00", "end_time": "12:00:00",
                "venue_id": venue.id.0, "total_capacity": 10, "booked_count": 1, "status": "ACTIVE", "orq": 1,
                "created_at": n, "updated_at": n,
            }))
        );
        assert_eq!(
            row("tickets"),
            json(serde_json::json!({
                "ticket_code": "T-1", "orq": 1, "order_id": null, "product_id": null, "user_id": null,
                "status": "RESERVED", "entitlements": "{}", "expires_at": null, "created_at": n, "updated_at": n,
                "customer_email": "john@example.com", "customer_phone": "+12025551234", "reserved_at": n,
                "verified_at": null, "verified_by": null, "activation_status": "active", "activated_at": n,
                "activation_mode": "immediate", "code_serial": 1, "left_at": null, "verified_gate": null,
            }))
        );
        assert_eq!(
            row("ticket_reservations"),
            json(serde_json::json!({
                "id": r.id.to_string(), "ticket_id": "T-1", "slot_id": slot.id.to_string(),
                "customer_email": "john@example.com", "customer_phone": "+12025551234", "reserved_at": n,
                "status": "RESERVED", "orq": 1, "created_at": n, "updated_at": n, "no_show_at": null,
            }))
        );
        // Each row once, in feed order.
        let seqs: Vec<i64> = changes.iter().map(|c| c.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        let mut keys: Vec<(&str, &str)> = changes
            .iter()
            .map(|c| (c.entity.as_str(), c.entity_id.as_str()))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), changes.len());
    }

    /// The route answers `changes_page_json` (PostgreSQL writes its text
    /// straight from the columns, without the page's values): on every
    /// page it must be exactly the text serde_json writes for
    /// `changes_since`'s page, deletes (`row: null`) and every entity
    /// included.
    pub fn the_routes_page_text_is_the_serialised_page(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + SigningStore
              + SyncStore
              + ?Sized),
    ) {
        let (venue, _slot, t, _r) = booked(s);
        s.add_operator(ORQ, Role::Supervisor, "Ana \"Ñ\"\n", None, now())
            .unwrap();
        s.set_signed_codes_only(ORQ, true, now()).unwrap();
        s.signed_code(ORQ, &t, now()).unwrap();
        // A slot made and deleted: a delete entry, its row null.
        let new = NewSlot::validate(venue.id.0, "2025-12-02", "09:00", "12:00", Some(5)).unwrap();
        let gone = s.create_slot(ORQ, &new, now()).unwrap();
        let (removal, _) = s.remove_slot(ORQ, gone.id, now()).unwrap();
        assert!(matches!(removal, crate::domain::SlotRemoval::Deleted));
        let mut cursor = 0;
        let mut deletes = 0;
        let mut entities = std::collections::BTreeSet::new();
        loop {
            let page = s.changes_since(ORQ, venue.id, cursor, 2, now()).unwrap();
            // The same cursor again: `remaining` is recounted (or carried
            // from the call before, which counted the same snapshot).
            let text = s
                .changes_page_json(ORQ, venue.id, cursor, 2, now())
                .unwrap();
            assert_eq!(
                String::from_utf8(text.clone()).unwrap(),
                serde_json::to_string(&page).unwrap()
            );
            let parsed: crate::domain::sync::protocol::ChangePage =
                serde_json::from_slice(&text).unwrap();
            assert_eq!(
                serde_json::to_value(&parsed).unwrap(),
                serde_json::to_value(&page).unwrap()
            );
            for c in &page.changes {
                entities.insert(c.entity.clone());
                if c.op == "delete" {
                    assert!(c.row.is_none(), "{c:?}");
                    deletes += 1;
                }
            }
            cursor = page.next_cursor;
            if !page.has_more {
                break;
            }
        }
        assert!(deletes >= 1, "no delete on any page");
        for e in [
            "venues",
            "operators",
            "org_settings",
            "signing_keys",
            "reservation_slots",
            "tickets",
            "ticket_reservations",
        ] {
            assert!(entities.contains(e), "no {e} in {entities:?}");
        }
    }

    /// Issue 14: a gate that learns an admission from the server (a pulled
    /// ticket row) names the gate that made it. The name is the uploading
    /// device's, from its token (`apply_events`' `device`), whatever the
    /// event claims; the earlier of a double entry takes the row, and an
    /// undo clears it with the verification.
    pub fn an_uploaded_admission_names_its_gate_by_the_uploaders_token(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + GateStore
              + SyncStore
              + ?Sized),
    ) {
        let (venue, _, t, _) = booked(s);
        let op = s
            .add_operator(ORQ, Role::Operator, "Ana", None, now())
            .unwrap();
        let (_, one) = s.add_device(ORQ, venue.id, "Gate 1", now()).unwrap();
        let (_, two) = s.add_device(ORQ, venue.id, "Gate 2", now()).unwrap();
        // The ticket's row as a gate of the venue pulls it from the start.
        let gate_of = || -> serde_json::Value {
            let changes = pull_all(s, &venue, 100);
            let c = changes
                .iter()
                .rev()
                .find(|c| c.entity == "tickets" && c.entity_id == "T-1")
                .expect("T-1 in the feed");
            c.row.as_ref().expect("an upsert")["verified_gate"].clone()
        };
        let verdict_gate = || {
            let gate = Gate {
                venue_id: Some(venue.id),
                ..Gate::default()
            };
            let v = s.validate_ticket(ORQ, &t, &gate, at_gate()).unwrap();
            (v.verdict, v.verified_gate)
        };
        assert_eq!(gate_of(), serde_json::Value::Null, "not admitted");

        // Gate 1 uploads an admission whose payload claims other gates'
        // names: only the token's device counts.
        let claimed = serde_json::json!({
            "ticket_code": "T-1", "venue_id": venue.id.0,
            "verified_gate": "Gate 2", "gate": "Gate 2", "device_id": two.device_id,
        });
        let got = s
            .apply_events(
                &one,
                &[event("verify", claimed, op.id.0, at_gate())],
                at_gate(),
                at_gate(),
            )
            .unwrap();
        assert_eq!(got[0].status, EventStatus::Applied, "{got:?}");
        assert_eq!(gate_of(), "Gate 1");
        assert_eq!(
            verdict_gate(),
            (VerdictCode::AlreadyVerified, Some("Gate 1".to_string())),
            "the server's own verdict names it too"
        );

        // Gate 2 let the same holder in a minute earlier (uploaded later):
        // its admission is the canonical one, and the row names it.
        let earlier = at_gate() - Duration::minutes(1);
        let later = at_gate() + Duration::minutes(2);
        let got = s
            .apply_events(
                &two,
                &[event(
                    "verify",
                    serde_json::json!({ "ticket_code": "T-1", "venue_id": venue.id.0 }),
                    op.id.0,
                    earlier,
                )],
                later,
                later,
            )
            .unwrap();
        assert_eq!(
            (got[0].status, got[0].reason.as_deref()),
            (EventStatus::Conflict, Some("DOUBLE_ENTRY")),
            "{got:?}"
        );
        assert_eq!(s.get_ticket(ORQ, &t).unwrap().verified_at, Some(earlier));
        assert_eq!(gate_of(), "Gate 2");

        // Gate 2 undoes its admission within the minute: no verification,
        // no gate.
        let got = s
            .apply_events(
                &two,
                &[event(
                    "undo",
                    serde_json::json!({ "ticket_code": "T-1", "reason": "wrong phone" }),
                    op.id.0,
                    earlier + Duration::seconds(20),
                )],
                later + Duration::seconds(20),
                later + Duration::seconds(20),
            )
            .unwrap();
        assert_eq!(got[0].status, EventStatus::Applied, "{got:?}");
        assert_eq!(s.get_ticket(ORQ, &t).unwrap().verified_at, None);
        assert_eq!(gate_of(), serde_json::Value::Null, "cleared with it");
        assert_eq!(verdict_gate().1, None);

        // Admitted at the server itself (an operator's scan, no device):
        // no gate is named.
        let gate = Gate {
            venue_id: Some(venue.id),
            ..Gate::default()
        };
        s.verify_ticket(ORQ, &t, op.id, &gate, later + Duration::minutes(1))
            .unwrap();
        assert_eq!(gate_of(), serde_json::Value::Null);
        assert_eq!(verdict_gate(), (VerdictCode::AlreadyVerified, None));
    }

    /// ALREADY_VERIFIED is decided before WRONG_VENUE: a caller bound to
    /// another venue learns the ticket is used, but not which of this
    /// venue's gates admitted it; the ticket's venue and an org-wide
    /// caller are told.
    pub fn another_venues_caller_is_not_told_the_admitting_gate(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + GateStore
              + SyncStore
              + ?Sized),
    ) {
        let (venue, _, t, _) = booked(s);
        let other = s.add_venue(ORQ, "Aquarium", "UTC", now()).unwrap();
        let op = s
            .add_operator(ORQ, Role::Operator, "Ana", None, now())
            .unwrap();
        let (_, one) = s.add_device(ORQ, venue.id, "Gate 1", now()).unwrap();
        let got = s
            .apply_events(
                &one,
                &[event(
                    "verify",
                    serde_json::json!({ "ticket_code": "T-1", "venue_id": venue.id.0 }),
                    op.id.0,
                    at_gate(),
                )],
                at_gate(),
                at_gate(),
            )
            .unwrap();
        assert_eq!(got[0].status, EventStatus::Applied, "{got:?}");
        let seen_from = |venue_id| {
            let gate = Gate {
                venue_id,
                ..Gate::default()
            };
            let v = s.validate_ticket(ORQ, &t, &gate, at_gate()).unwrap();
            (v.verdict, v.verified_gate)
        };
        let named = (VerdictCode::AlreadyVerified, Some("Gate 1".to_string()));
        assert_eq!(seen_from(Some(venue.id)), named, "the ticket's venue");
        assert_eq!(seen_from(None), named, "an org-wide caller");
        assert_eq!(
            seen_from(Some(other.id)),
            (VerdictCode::AlreadyVerified, None),
            "another venue's caller"
        );
    }

    pub fn uploaded_events_apply_once_and_double_entries_are_conflicts(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + GateStore
              + SyncStore
              + crate::DashboardStore
              + ?Sized),
    ) {
        let (venue, _, t, _) = booked(s);
        let op = s
            .add_operator(ORQ, Role::Operator, "Ana", None, now())
            .unwrap();
        let (_, device) = s.add_device(ORQ, venue.id, "Gate 1", now()).unwrap();
        let (_, other) = s.add_device(ORQ, venue.id, "Gate 2", now()).unwrap();
        let first = event(
            "verify",
            serde_json::json!({ "ticket_code": "T-1", "venue_id": venue.id.0 }),
            op.id.0,
            at_gate(),
        );
        let got = s
            .apply_events(&device, std::slice::from_ref(&first), at_gate(), at_gate())
            .unwrap();
        assert_eq!(got[0].status, EventStatus::Applied, "{got:?}");
        let ticket = s.get_ticket(ORQ, &t).unwrap();
        assert_eq!(
            (ticket.verified_at, ticket.verified_by),
            (Some(at_gate()), Some(op.id))
        );
        // A replay: the first answer, nothing changes.
        let replay = s
            .apply_events(
                &device,
                std::slice::from_ref(&first),
                at_gate(),
                at_gate() + Duration::minutes(1),
            )
            .unwrap();
        assert_eq!(
            (replay[0].status, replay[0].received_at),
            (EventStatus::Duplicate, at_gate())
        );
        assert!(s.list_conflicts(ORQ).unwrap().is_empty());
        // Another gate let the same ticket in later: a double entry.
        let second = event(
            "verify",
            serde_json::json!({ "ticket_code": "T-1", "venue_id": venue.id.0 }),
            op.id.0,
            at_gate() + Duration::minutes(2),
        );
        let got = s
            .apply_events(
                &other,
                &[second],
                at_gate() + Duration::minutes(2),
                at_gate() + Duration::minutes(2),
            )
            .unwrap();
        assert_eq!(
            (got[0].status, got[0].reason.as_deref()),
            (EventStatus::Conflict, Some("DOUBLE_ENTRY"))
        );
        assert_eq!(
            s.get_ticket(ORQ, &t).unwrap().verified_at,
            Some(at_gate()),
            "the earliest entry stays"
        );
        let conflicts = s.list_conflicts(ORQ).unwrap();
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0]["kind"], "DOUBLE_ENTRY");
        assert_eq!(conflicts[0]["first_device_id"], device.device_id);
        assert_eq!(conflicts[0]["second_device_id"], other.device_id);
        assert!(conflicts[0]["facts"].is_string(), "stored as its JSON text");
        // The dashboard counts it for its venue and day only: another venue
        // of the org, and the venue's next day, count none.
        let annex = s.add_venue(ORQ, "Annex", "Europe/Madrid", now()).unwrap();
        let count = |at: chrono::DateTime<chrono::Utc>, v: crate::domain::VenueId| {
            s.dashboard(ORQ, at)
                .unwrap()
                .venues
                .iter()
                .find(|x| x.venue_id == v)
                .map(|x| x.conflicts)
        };
        let later = at_gate() + Duration::minutes(3);
        assert_eq!(count(later, venue.id), Some(1));
        assert_eq!(count(later, annex.id), Some(0));
        assert_eq!(count(later + Duration::days(1), venue.id), Some(0));
        // A venue-bound caller's list: its venue's conflicts only.
        let of = |v: Option<crate::domain::VenueId>| s.list_conflicts_in(ORQ, v).unwrap().len();
        assert_eq!(
            (of(None), of(Some(venue.id)), of(Some(annex.id))),
            (1, 1, 0)
        );
        // Unknown kinds and unknown tickets are rejected, not errors.
        let odd = event("teleport", serde_json::json!({}), op.id.0, at_gate());
        let unknown = event(
            "verify",
            serde_json::json!({ "ticket_code": "NOPE" }),
            op.id.0,
            at_gate(),
        );
        let got = s
            .apply_events(&device, &[odd, unknown], at_gate(), at_gate())
            .unwrap();
        assert_eq!(
            got.iter().map(|r| r.status).collect::<Vec<_>>(),
            vec![EventStatus::Rejected; 2]
        );
        // The conflict reaches the venue's gates.
        assert!(pull_all(s, &venue, 100)
            .iter()
            .any(|c| c.entity == "sync_conflicts"));
    }

    /// Forged or confused uploads of venue operations change nothing they
    /// may not: another venue's gate can neither check a holder out nor undo
    /// an admission, another gate of the same venue cannot undo it either, a
    /// walk-up beyond the lease books no slot that is not open now, and a
    /// double entry still counts the person who walked in.
    pub fn venue_operation_uploads_are_held_to_their_gate(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + crate::VenueOpsStore
              + SyncStore
              + ?Sized),
    ) {
        let (prado, slot, t, _) = booked(s);
        let reina = s
            .add_venue(ORQ, "Reina Sofia", "Europe/Madrid", now())
            .unwrap();
        let op = s
            .add_operator(ORQ, Role::Operator, "Ana", None, now())
            .unwrap();
        let (_, a1) = s.add_device(ORQ, prado.id, "Prado 1", now()).unwrap();
        let (_, a2) = s.add_device(ORQ, prado.id, "Prado 2", now()).unwrap();
        let (_, b1) = s.add_device(ORQ, reina.id, "Reina 1", now()).unwrap();
        let push = |device, kind: &str, payload: serde_json::Value, at| {
            let got = s
                .apply_events(device, &[event(kind, payload, op.id.0, at)], at, at)
                .unwrap();
            got.into_iter().next().unwrap()
        };
        let code = serde_json::json!({ "ticket_code": "T-1", "venue_id": prado.id.0 });
        let later = at_gate() + Duration::minutes(5);
        let inside = |venue: &Venue| s.occupancy(ORQ, venue.id, later).unwrap().inside;

        assert_eq!(
            push(&a1, "verify", code.clone(), at_gate()).status,
            EventStatus::Applied
        );
        // Two people on one code: a double entry, and two people inside.
        let again = push(
            &a2,
            "verify",
            code.clone(),
            at_gate() + Duration::seconds(5),
        );
        assert_eq!(again.reason.as_deref(), Some("DOUBLE_ENTRY"));
        assert_eq!(inside(&prado), 2, "a double entry walked in too");

        // Another venue's gate checks the holder out: refused, counted nowhere.
        let exit = push(
            &b1,
            "exit",
            serde_json::json!({ "ticket_code": "T-1" }),
            at_gate() + Duration::seconds(10),
        );
        assert_eq!(exit.status, EventStatus::Rejected, "{exit:?}");
        assert_eq!((inside(&prado), inside(&reina)), (2, 0));

        // An exit of a holder this venue never saw enter (reserved here, not
        // used): a conflict whose passage is kept for audit, but it takes
        // nobody else out of the count (counted per ticket, never below 0).
        let stray = ReserveRequest {
            ticket: ticket(s, "T-3"),
            slot_id: slot.id,
            contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
        };
        s.reserve_slot(ORQ, &stray, now()).unwrap();
        let stray = push(
            &a1,
            "exit",
            serde_json::json!({ "ticket_code": "T-3" }),
            at_gate() + Duration::seconds(12),
        );
        assert_eq!(stray.status, EventStatus::Conflict, "{stray:?}");
        assert_eq!(
            inside(&prado),
            2,
            "an exit without an entry takes nobody out"
        );

        // Undo: neither another venue's gate nor another gate of this venue.
        let reason = serde_json::json!({ "ticket_code": "T-1", "reason": "wrong phone" });
        let soon = at_gate() + Duration::seconds(20);
        for (name, device) in [("other venue", &b1), ("other gate", &a2)] {
            let undo = push(device, "undo", reason.clone(), soon);
            assert_ne!(undo.status, EventStatus::Applied, "{name}: {undo:?}");
            assert_eq!(
                s.get_ticket(ORQ, &t).unwrap().verified_at,
                Some(at_gate()),
                "{name}"
            );
        }
        // The gate that let them in may, within the minute.
        assert_eq!(push(&a1, "undo", reason, soon).status, EventStatus::Applied);
        assert_eq!(s.get_ticket(ORQ, &t).unwrap().verified_at, None);

        // A walk-up with no lease into tomorrow's slot: no place is taken.
        let tomorrow =
            NewSlot::validate(prado.id.0, "2025-12-02", "09:00", "12:00", Some(10)).unwrap();
        let tomorrow = s.create_slot(ORQ, &tomorrow, now()).unwrap();
        ticket(s, "T-2");
        let walkup = push(
            &a1,
            "walkup",
            serde_json::json!({
                "ticket_code": "T-2",
                "slot_id": tomorrow.id.to_string(),
                "reservation_id": uuid::Uuid::now_v7().to_string(),
            }),
            at_gate() + Duration::seconds(30),
        );
        assert_ne!(walkup.status, EventStatus::Applied, "{walkup:?}");
        assert_eq!(s.get_slot(ORQ, tomorrow.id).unwrap().booked_count, 0);
    }

    pub fn a_cursor_pulls_only_what_changed_since(
        s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + SyncStore + ?Sized),
    ) {
        let (venue, slot, _, _) = booked(s);
        let elsewhere = s.add_venue(ORQ, "Garden", "UTC", now()).unwrap();
        let first = s.changes_since(ORQ, venue.id, 0, 5000, now()).unwrap();
        assert!(!first.has_more && first.remaining == 0);
        assert!(
            first
                .changes
                .iter()
                .all(|c| c.entity_id != elsewhere.id.0.to_string() || c.entity != "venues"),
            "another venue's row is not this venue's gates'"
        );
        let none = s
            .changes_since(ORQ, venue.id, first.next_cursor, 5000, now())
            .unwrap();
        assert!(none.changes.is_empty());
        assert_eq!(none.next_cursor, first.next_cursor);
        let change = crate::domain::SlotChange {
            total_capacity: Some(20),
            status: None,
        };
        s.update_slot(ORQ, slot.id, change, now()).unwrap();
        let next = s
            .changes_since(ORQ, venue.id, first.next_cursor, 5000, now())
            .unwrap();
        assert_eq!(next.changes.len(), 1);
        assert_eq!(
            (
                next.changes[0].entity.as_str(),
                next.changes[0].entity_id.clone()
            ),
            ("reservation_slots", slot.id.to_string())
        );
        assert_eq!(next.changes[0].row.as_ref().unwrap()["total_capacity"], 20);
        assert!(next.next_cursor > first.next_cursor);
    }

    /// The console's Gates page (issue 16): each gate with its last upload,
    /// clock offset, reported pending uploads and conflicts; revoking is
    /// idempotent and stops its token.
    pub fn gates_show_what_they_reported_and_are_revoked_once(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + SyncStore
              + crate::GateHealthStore
              + ?Sized),
    ) {
        let (venue, _, _, _) = booked(s);
        let op = s
            .add_operator(ORQ, Role::Operator, "Ana", None, now())
            .unwrap();
        let (token_a, a) = s.add_device(ORQ, venue.id, "Gate A", now()).unwrap();
        let (_, b) = s.add_device(ORQ, venue.id, "Gate B", now()).unwrap();
        let (_, elsewhere) = s.add_device(ORQ, venue.id, "Gate C", now()).unwrap();
        let fresh = s.gate_health(ORQ).unwrap();
        assert_eq!(fresh.len(), 3);
        assert!(fresh.iter().all(|g| g.last_seen_at.is_none()
            && g.clock_offset_ms.is_none()
            && g.pending_uploads.is_none()
            && g.conflicts == 0
            && !g.revoked));
        // A admits T-1, B admits it again later: one conflict for both.
        let verify = |at| {
            event(
                "verify",
                serde_json::json!({ "ticket_code": "T-1", "venue_id": venue.id.0 }),
                op.id.0,
                at,
            )
        };
        // A's clock is 3 s ahead of the server's.
        let ahead = at_gate() + Duration::seconds(3);
        s.apply_events(&a, &[verify(at_gate())], ahead, at_gate())
            .unwrap();
        s.record_pending_uploads(&a, 7, at_gate()).unwrap();
        let later = at_gate() + Duration::minutes(2);
        s.apply_events(&b, &[verify(later)], later, later).unwrap();
        let gates = s.gate_health(ORQ).unwrap();
        let g = |id: i64| gates.iter().find(|g| g.device_id == id).unwrap().clone();
        let (ga, gb, gc) = (g(a.device_id), g(b.device_id), g(elsewhere.device_id));
        assert_eq!(
            (
                ga.name.as_str(),
                ga.venue_id,
                ga.last_seen_at,
                ga.clock_offset_ms
            ),
            ("Gate A", venue.id.0, Some(at_gate()), Some(3000))
        );
        assert_eq!(
            (ga.pending_uploads, ga.pending_reported_at),
            (Some(7), Some(at_gate()))
        );
        assert_eq!((ga.conflicts, gb.conflicts, gc.conflicts), (1, 1, 0));
        assert_eq!(
            (gb.last_seen_at, gb.clock_offset_ms, gb.pending_uploads),
            (Some(later), Some(0), None)
        );
        // Another org sees none of them, and cannot revoke them.
        assert!(s.gate_health(crate::domain::Orq(2)).unwrap().is_empty());
        assert_eq!(
            s.revoke_gate(crate::domain::Orq(2), a.device_id, later)
                .unwrap_err()
                .code(),
            "NOT_FOUND"
        );
        // Revoked: the token stops; a replay keeps it revoked; no report lands.
        s.revoke_gate(ORQ, a.device_id, later).unwrap();
        s.revoke_gate(ORQ, a.device_id, later + Duration::minutes(1))
            .unwrap();
        assert_eq!(s.device_for_token(&token_a).unwrap(), None);
        s.record_pending_uploads(&a, 1, later).unwrap();
        let ga = s
            .gate_health(ORQ)
            .unwrap()
            .into_iter()
            .find(|g| g.device_id == a.device_id)
            .unwrap();
        assert!(ga.revoked);
        assert_eq!(
            ga.pending_uploads,
            Some(7),
            "a revoked gate's report is not recorded"
        );
        assert_eq!(
            s.revoke_gate(ORQ, 999_999, later).unwrap_err().code(),
            "NOT_FOUND"
        );
    }
}

/// Venue operations through sync (issue 15): walk-up leases granted during
/// a gate's sync, and the uploaded exits, re-entries, walk-ups and undos the
/// server judges, the same on every engine.
pub mod venue_ops_sync {
    use super::*;
    use crate::domain::sync::protocol::{DeviceInfo, Event, EventResult, EventStatus};
    use crate::domain::venue::VenuePatch;
    use crate::domain::venue_ops::SlotPlaces;
    use crate::domain::{ReservationId, Role};
    use crate::{OperatorStore, SyncStore, VenueOpsStore};

    fn event(
        kind: &str,
        payload: serde_json::Value,
        operator: i64,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Event {
        Event {
            event_id: uuid::Uuid::now_v7(),
            kind: kind.into(),
            payload,
            operator_id: Some(operator),
            device_time: at,
        }
    }

    /// One event uploaded at its own time (the gate's clock is the server's).
    fn upload(s: &(impl SyncStore + ?Sized), device: &DeviceInfo, e: Event) -> EventResult {
        let at = e.device_time;
        s.apply_events(device, &[e], at, at).unwrap().remove(0)
    }

    fn settings(s: &(impl VenueStore + ?Sized), venue: &Venue, json: &str) {
        let patch: VenuePatch = serde_json::from_str(json).unwrap();
        s.update_venue(ORQ, venue.id, &patch, now()).unwrap();
    }

    fn reserve(
        s: &(impl TicketStore + ReservationStore + ?Sized),
        slot: &Slot,
        code: &str,
    ) -> crate::domain::Reservation {
        let req = ReserveRequest {
            ticket: ticket(s, code),
            slot_id: slot.id,
            contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
        };
        s.reserve_slot(ORQ, &req, now()).unwrap()
    }

    fn booked_count(s: &(impl SlotStore + ?Sized), slot: &Slot) -> i64 {
        s.get_slot(ORQ, slot.id).unwrap().booked_count
    }

    /// The server gives leases back itself: the periodic return takes only
    /// the leases of slots no longer open for walk-ups; a supervisor's
    /// take-back takes all of a venue's; the places are back on the slot,
    /// and a gate's next refresh no longer lists them (nor grants them
    /// again once the window closed). Another org's venue: NOT_FOUND.
    pub fn leases_are_taken_back_by_the_server(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + SyncStore
              + crate::VenueOpsStore
              + ?Sized),
    ) {
        let venue = s.add_venue(ORQ, "Zoo", "Europe/Madrid", now()).unwrap();
        settings(s, &venue, r#"{"walkup_lease_places": 2}"#);
        let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(5)).unwrap();
        let slot = s.create_slot(ORQ, &new, now()).unwrap();
        let (_, a) = s.add_device(ORQ, venue.id, "Gate A", now()).unwrap();
        let (_, b) = s.add_device(ORQ, venue.id, "Gate B", now()).unwrap();
        let t0 = at_gate();
        s.refresh_leases(&a, &[], t0).unwrap();
        s.refresh_leases(&b, &[], t0).unwrap();
        assert_eq!(booked_count(s, &slot), 4);
        // The window is still open: the periodic return leaves them.
        assert_eq!(s.take_back_leases(None, true, t0).unwrap(), vec![]);
        assert_eq!(booked_count(s, &slot), 4);
        // A supervisor takes the venue's leases back while the slot still
        // takes walk-ups: a recall. The places stay counted (an offline gate
        // may be booking from them) until each gate's next refresh.
        let back = s
            .take_back_leases(Some((ORQ, venue.id)), false, t0)
            .unwrap();
        assert_eq!(back, vec![]);
        assert_eq!(booked_count(s, &slot), 4);
        assert_eq!(
            s.take_back_leases(Some((ORQ, venue.id)), false, t0)
                .unwrap(),
            vec![]
        );
        // Gate B refreshes with no walk-up on its way: its places are back;
        // gate A keeps the one its walk-up on its way needs, no more.
        assert_eq!(s.refresh_leases(&b, &[], t0).unwrap(), vec![]);
        assert_eq!(booked_count(s, &slot), 2);
        let owed = [SlotPlaces {
            slot_id: slot.id,
            places: 1,
        }];
        assert_eq!(s.refresh_leases(&a, &owed, t0).unwrap(), owed.to_vec());
        assert_eq!(booked_count(s, &slot), 1);
        // Once that walk-up arrived the recall is over: nothing held, and
        // the next refresh grants again while the window is open...
        assert_eq!(s.refresh_leases(&a, &[], t0).unwrap(), vec![]);
        assert_eq!(booked_count(s, &slot), 0);
        s.refresh_leases(&a, &[], t0).unwrap();
        assert_eq!(booked_count(s, &slot), 2);
        // ... and once it closed, the periodic return gives the places back
        // without the gate syncing; the gate's next refresh lists nothing.
        let closed = t0 + Duration::hours(2);
        let back = s.take_back_leases(None, true, closed).unwrap();
        assert_eq!(
            back,
            vec![SlotPlaces {
                slot_id: slot.id,
                places: 2
            }]
        );
        assert_eq!(booked_count(s, &slot), 0);
        assert_eq!(s.refresh_leases(&a, &[], closed).unwrap(), vec![]);
        assert_eq!(booked_count(s, &slot), 0);
        assert_eq!(
            s.take_back_leases(Some((crate::domain::Orq(2), venue.id)), false, t0)
                .unwrap_err()
                .code(),
            "NOT_FOUND"
        );
    }

    /// A revoked gate's lease comes back at once (`lease_take_back`): none
    /// of its uploads can arrive any more and it never refreshes again, so a
    /// recall would keep its places until the window ends. The periodic task
    /// returns it while the slot still takes walk-ups, and so does a
    /// supervisor's take-back; a live gate's lease is kept, or recalled.
    pub fn a_revoked_gates_lease_comes_back_at_once(
        s: &(impl VenueStore + SlotStore + SyncStore + crate::AdminStore + VenueOpsStore + ?Sized),
    ) {
        let venue = s.add_venue(ORQ, "Zoo", "Europe/Madrid", now()).unwrap();
        settings(s, &venue, r#"{"walkup_lease_places": 2}"#);
        let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(5)).unwrap();
        let slot = s.create_slot(ORQ, &new, now()).unwrap();
        let (_, a) = s.add_device(ORQ, venue.id, "Gate A", now()).unwrap();
        let (_, b) = s.add_device(ORQ, venue.id, "Gate B", now()).unwrap();
        let t0 = at_gate();
        s.refresh_leases(&a, &[], t0).unwrap();
        s.refresh_leases(&b, &[], t0).unwrap();
        assert_eq!(booked_count(s, &slot), 4);
        let back = |places| {
            vec![SlotPlaces {
                slot_id: slot.id,
                places,
            }]
        };
        // Gate B is stolen and revoked: the periodic task gives its places
        // back on its next round, the window still open; A keeps its lease.
        s.revoke_device(ORQ, b.device_id, t0).unwrap();
        assert_eq!(s.take_back_leases(None, true, t0).unwrap(), back(2));
        assert_eq!(booked_count(s, &slot), 2);
        assert_eq!(s.take_back_leases(None, true, t0).unwrap(), vec![]);
        // A supervisor's take-back: a revoked gate's lease comes back now,
        // a live gate's is only recalled.
        let (_, c) = s.add_device(ORQ, venue.id, "Gate C", now()).unwrap();
        s.refresh_leases(&c, &[], t0).unwrap();
        assert_eq!(booked_count(s, &slot), 4);
        s.revoke_device(ORQ, a.device_id, t0).unwrap();
        assert_eq!(
            s.take_back_leases(Some((ORQ, venue.id)), false, t0)
                .unwrap(),
            back(2)
        );
        assert_eq!(
            booked_count(s, &slot),
            2,
            "C's recalled places still counted"
        );
        assert_eq!(s.refresh_leases(&c, &[], t0).unwrap(), vec![]);
        assert_eq!(booked_count(s, &slot), 0);
    }

    /// An online walk-up (`POST /api/sync/walkup`) takes a free place of
    /// the slot open now by the reservation path, never a leased one; a
    /// deferred ticket is activated in the same transaction; a slot without
    /// a free place, a slot not open yet, a ticket reserved for now and an
    /// unknown ticket are refused, and a refusal changes nothing.
    pub fn online_walkups_take_free_places_never_leased_ones(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + SyncStore
              + crate::SigningStore
              + ?Sized),
    ) {
        use crate::domain::{ActivationStatus, DomainError};
        use crate::StoreError;
        let venue = s.add_venue(ORQ, "Zoo", "Europe/Madrid", now()).unwrap();
        settings(s, &venue, r#"{"walkup_lease_places": 2}"#);
        let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(4)).unwrap();
        let slot = s.create_slot(ORQ, &new, now()).unwrap();
        let (_, a) = s.add_device(ORQ, venue.id, "Gate A", now()).unwrap();
        let refused = |r: crate::Result<crate::domain::venue_ops::WalkupBooking>| match r {
            Err(StoreError::Domain(DomainError::Refused(v))) => v.verdict,
            other => panic!("not a refusal: {other:?}"),
        };
        let t0 = at_gate();
        let w1 = ticket(s, "W-1");
        // Before the slot's entry window: no slot open, nothing written.
        assert_eq!(
            refused(s.book_walkup_online(&a, w1.as_str().as_bytes(), now())),
            VerdictCode::NoPlaceLeft
        );
        assert_eq!(booked_count(s, &slot), 0);
        // The gate holds 2 places; 2 are free for everyone else.
        s.refresh_leases(&a, &[], t0).unwrap();
        assert_eq!(booked_count(s, &slot), 2);

        let b = s
            .book_walkup_online(&a, w1.as_str().as_bytes(), t0)
            .unwrap();
        assert_eq!((b.slot_id, b.activated_at), (slot.id, None));
        // The gate reports it as an online walk-up (for an undo to find):
        // applied, nothing booked again; the same claim about a ticket the
        // server did not book is a conflict and books nothing.
        let op = s
            .add_operator(ORQ, Role::Operator, "Ana", None, now())
            .unwrap();
        let online = |code: &str, id: ReservationId| {
            event(
                "walkup",
                serde_json::json!({ "ticket_code": code, "slot_id": slot.id, "reservation_id": id, "venue_id": venue.id, "online": true }),
                op.id.0,
                t0,
            )
        };
        let got = upload(s, &a, online("W-1", b.reservation_id));
        assert_eq!(got.status, EventStatus::Applied, "{got:?}");
        ticket(s, "W-9");
        let got = upload(s, &a, online("W-9", ReservationId(uuid::Uuid::now_v7())));
        assert_eq!(
            (got.status, got.reason.as_deref()),
            (EventStatus::Conflict, Some("WALKUP_NOT_BOOKED")),
            "{got:?}"
        );
        assert_eq!(
            s.get_ticket(ORQ, &TicketCode::parse("W-9").unwrap())
                .unwrap()
                .status
                .as_str(),
            "ACTIVATED",
            "not reserved"
        );
        let r = s.get_reservation(ORQ, b.reservation_id).unwrap();
        assert_eq!(
            (r.slot_id, r.status.as_str(), r.reserved_at),
            (slot.id, "RESERVED", t0)
        );
        assert_eq!(s.get_ticket(ORQ, &w1).unwrap().status.as_str(), "RESERVED");
        assert_eq!(booked_count(s, &slot), 3);

        // A deferred ticket bought ahead: activated and booked at once.
        let d = TicketCode::parse("D-1").unwrap();
        s.insert_tickets(
            ORQ,
            &[NewTicket::plain("D-1", ActivationMode::Deferred).unwrap()],
            now(),
        )
        .unwrap();
        assert_eq!(
            s.get_ticket(ORQ, &d).unwrap().activation_status,
            ActivationStatus::Inactive
        );
        let b = s.book_walkup_online(&a, d.as_str().as_bytes(), t0).unwrap();
        assert_eq!(b.activated_at, Some(t0));
        let t = s.get_ticket(ORQ, &d).unwrap();
        assert_eq!(
            (t.activation_status, t.activated_at, t.status.as_str()),
            (ActivationStatus::Active, Some(t0), "RESERVED")
        );
        assert_eq!(booked_count(s, &slot), 4);

        // The slot is full for walk-ups by the server: the leased places
        // stay the gate's, and a deferred ticket refused is not activated.
        let w2 = ticket(s, "W-2");
        assert_eq!(
            refused(s.book_walkup_online(&a, w2.as_str().as_bytes(), t0)),
            VerdictCode::NoPlaceLeft
        );
        s.insert_tickets(
            ORQ,
            &[NewTicket::plain("D-2", ActivationMode::Deferred).unwrap()],
            now(),
        )
        .unwrap();
        let d2 = TicketCode::parse("D-2").unwrap();
        assert_eq!(
            refused(s.book_walkup_online(&a, d2.as_str().as_bytes(), t0)),
            VerdictCode::NoPlaceLeft
        );
        assert_eq!(
            s.get_ticket(ORQ, &d2).unwrap().activation_status,
            ActivationStatus::Inactive,
            "a refused walk-up rolls its activation back"
        );
        assert_eq!(booked_count(s, &slot), 4, "never over capacity");
        assert_eq!(
            s.refresh_leases(&a, &[], t0).unwrap(),
            vec![SlotPlaces {
                slot_id: slot.id,
                places: 2
            }],
            "the lease is untouched"
        );
        // A ticket with its reservation for now keeps its own verdict; an
        // unknown one is not found.
        assert_eq!(
            refused(s.book_walkup_online(&a, w1.as_str().as_bytes(), t0)),
            VerdictCode::AlreadyReserved
        );
        assert!(matches!(
            s.book_walkup_online(&a, b"NOPE-1", t0),
            Err(StoreError::Domain(DomainError::NotFound {
                entity: "ticket"
            }))
        ));
        // The scan is screened as at a gate: a QR code superseded by a
        // re-issue books nothing (its ticket is valid and unreserved).
        let w3 = ticket(s, "W-3");
        let old = s.signed_code(ORQ, &w3, now()).unwrap();
        s.reissue_ticket_code(ORQ, &w3, None, now()).unwrap();
        assert_eq!(
            refused(s.book_walkup_online(&a, old.as_bytes(), t0)),
            VerdictCode::Revoked
        );
        assert_eq!(booked_count(s, &slot), 4);
    }

    /// Two gates, 2 places each per open slot, a slot of 3: the leases
    /// never take the slot over capacity and customers cannot book the
    /// leased places; a walk-up uploaded from a lease is honoured without
    /// another place; once the window closes a gate gives back what it did
    /// not use (but keeps what its walk-ups on their way need); walk-ups
    /// beyond the lease take a free place or are NO_PLACE_LEFT conflicts.
    pub fn walkup_leases_stay_within_capacity_and_are_given_back(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + SyncStore
              + ?Sized),
    ) {
        let venue = s.add_venue(ORQ, "Zoo", "Europe/Madrid", now()).unwrap();
        settings(s, &venue, r#"{"walkup_lease_places": 2}"#);
        let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(3)).unwrap();
        let slot = s.create_slot(ORQ, &new, now()).unwrap();
        let op = s
            .add_operator(ORQ, Role::Operator, "Ana", None, now())
            .unwrap();
        let (_, a) = s.add_device(ORQ, venue.id, "Gate A", now()).unwrap();
        let (_, b) = s.add_device(ORQ, venue.id, "Gate B", now()).unwrap();
        let lease = |places| {
            vec![SlotPlaces {
                slot_id: slot.id,
                places,
            }]
        };
        // Before the slot's day: nothing to lease.
        assert_eq!(s.refresh_leases(&a, &[], now()).unwrap(), vec![]);
        // 11:00 in Madrid, the slot's window open: A takes 2, B the last 1.
        let t0 = at_gate();
        assert_eq!(s.refresh_leases(&a, &[], t0).unwrap(), lease(2));
        assert_eq!(booked_count(s, &slot), 2, "leased places count as booked");
        assert_eq!(s.refresh_leases(&b, &[], t0).unwrap(), lease(1));
        assert_eq!(booked_count(s, &slot), 3);
        // Refreshing again changes nothing: what a gate holds is counted.
        assert_eq!(s.refresh_leases(&a, &[], t0).unwrap(), lease(2));
        assert_eq!(s.refresh_leases(&b, &[], t0).unwrap(), lease(1));
        assert_eq!(booked_count(s, &slot), 3, "never over capacity");
        // A customer cannot take a leased place.
        let req = ReserveRequest {
            ticket: ticket(s, "C-1"),
            slot_id: slot.id,
            contact: Contact::validate("ann@example.com", "+12025551234").unwrap(),
        };
        assert!(s.reserve_slot(ORQ, &req, now()).is_err());
        assert_eq!(booked_count(s, &slot), 3);

        // A walk-up A booked offline from its lease: honoured, and the
        // place it took was already counted.
        let walkup = |code: &str, at| {
            let id = ReservationId(uuid::Uuid::now_v7());
            let e = event(
                "walkup",
                serde_json::json!({ "ticket_code": code, "slot_id": slot.id, "reservation_id": id, "venue_id": venue.id }),
                op.id.0,
                at,
            );
            (id, e)
        };
        ticket(s, "W-1");
        let (id, e) = walkup("W-1", t0 + Duration::minutes(1));
        let got = upload(s, &a, e);
        assert_eq!(got.status, EventStatus::Applied, "{got:?}");
        let r = s.get_reservation(ORQ, id).unwrap();
        assert_eq!((r.slot_id, r.status.as_str()), (slot.id, "RESERVED"));
        assert_eq!(
            s.get_ticket(ORQ, &TicketCode::parse("W-1").unwrap())
                .unwrap()
                .status
                .as_str(),
            "RESERVED"
        );
        assert_eq!(booked_count(s, &slot), 3);
        // While the window is open A holds what is left of its lease.
        assert_eq!(s.refresh_leases(&a, &[], t0).unwrap(), lease(1));
        assert_eq!(booked_count(s, &slot), 3);

        // The window closed (12:00 in Madrid): A gives its unused place
        // back; B keeps the one its walk-up on the way needs.
        let closed = t0 + Duration::hours(2);
        assert_eq!(s.refresh_leases(&a, &[], closed).unwrap(), vec![]);
        assert_eq!(booked_count(s, &slot), 2, "the unused place is back");
        assert_eq!(s.refresh_leases(&b, &lease(1), closed).unwrap(), lease(1));
        assert_eq!(booked_count(s, &slot), 2);
        ticket(s, "W-2");
        let (_, e) = walkup("W-2", t0 + Duration::minutes(30));
        assert_eq!(upload(s, &b, e).status, EventStatus::Applied);
        assert_eq!(booked_count(s, &slot), 2, "from B's lease");
        assert_eq!(s.refresh_leases(&b, &[], closed).unwrap(), vec![]);
        assert_eq!(booked_count(s, &slot), 2);
        // Beyond any lease: the free place, then NO_PLACE_LEFT.
        ticket(s, "W-3");
        let (_, e) = walkup("W-3", t0 + Duration::minutes(31));
        assert_eq!(upload(s, &b, e).status, EventStatus::Applied);
        assert_eq!(booked_count(s, &slot), 3);
        ticket(s, "W-4");
        let (id, e) = walkup("W-4", t0 + Duration::minutes(32));
        let got = upload(s, &b, e);
        assert_eq!(
            (got.status, got.reason.as_deref()),
            (EventStatus::Conflict, Some("NO_PLACE_LEFT"))
        );
        assert_eq!(booked_count(s, &slot), 3, "the slot never goes over");
        assert!(s.get_reservation(ORQ, id).is_err());
        // A ticket already reserved is no walk-up: a conflict, nothing changes.
        let (_, e) = walkup("W-1", t0 + Duration::minutes(33));
        let got = upload(s, &a, e);
        assert_eq!(got.status, EventStatus::Conflict, "{got:?}");
        assert_eq!(booked_count(s, &slot), 3);
    }

    /// Gates refreshing their leases while customers book the same slot,
    /// all at once: the slot ends exactly full, every place counted once
    /// (leases plus reservations), never over capacity.
    pub fn concurrent_leases_and_bookings_never_overbook(
        s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + SyncStore + ?Sized),
    ) {
        let venue = s.add_venue(ORQ, "Zoo", "Europe/Madrid", now()).unwrap();
        settings(s, &venue, r#"{"walkup_lease_places": 2}"#);
        let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(5)).unwrap();
        let slot = s.create_slot(ORQ, &new, now()).unwrap();
        let gates: Vec<DeviceInfo> = (0..6)
            .map(|i| {
                s.add_device(ORQ, venue.id, &format!("Gate {i}"), now())
                    .unwrap()
                    .1
            })
            .collect();
        let reqs: Vec<ReserveRequest> = (0..6)
            .map(|i| ReserveRequest {
                ticket: ticket(s, &format!("C-{i}")),
                slot_id: slot.id,
                contact: Contact::validate("ann@example.com", "+12025551234").unwrap(),
            })
            .collect();
        // Online walk-ups (the server's reservation path) race them too.
        let walkers: Vec<TicketCode> = (0..6).map(|i| ticket(s, &format!("O-{i}"))).collect();
        let start = std::sync::Barrier::new(gates.len() + reqs.len() + walkers.len());
        let (leased, booked, walked): (i64, i64, i64) = std::thread::scope(|scope| {
            let leases: Vec<_> = gates
                .iter()
                .map(|g| {
                    let start = &start;
                    scope.spawn(move || {
                        start.wait();
                        let held = s.refresh_leases(g, &[], at_gate()).unwrap();
                        held.iter().map(|l| l.places).sum::<i64>()
                    })
                })
                .collect();
            let bookings: Vec<_> = reqs
                .iter()
                .map(|r| {
                    let start = &start;
                    scope.spawn(move || {
                        start.wait();
                        i64::from(s.reserve_slot(ORQ, r, now()).is_ok())
                    })
                })
                .collect();
            let walkups: Vec<_> = walkers
                .iter()
                .map(|code| {
                    let (start, gate) = (&start, &gates[0]);
                    scope.spawn(move || {
                        start.wait();
                        match s.book_walkup_online(gate, code.as_str().as_bytes(), at_gate()) {
                            Ok(_) => 1,
                            Err(crate::StoreError::Domain(
                                crate::domain::DomainError::Refused(v),
                            )) if v.verdict == VerdictCode::NoPlaceLeft => 0,
                            Err(e) => panic!("an online walk-up under contention: {e}"),
                        }
                    })
                })
                .collect();
            (
                leases.into_iter().map(|h| h.join().unwrap()).sum(),
                bookings.into_iter().map(|h| h.join().unwrap()).sum(),
                walkups.into_iter().map(|h| h.join().unwrap()).sum(),
            )
        });
        let after = s.get_slot(ORQ, slot.id).unwrap();
        assert_eq!(
            after.booked_count,
            leased + booked + walked,
            "each place counted once"
        );
        assert_eq!(after.booked_count, 5, "exactly full, never over");
        // Every gate asking again gets what it holds: nothing moves.
        let again: i64 = gates
            .iter()
            .map(|g| {
                s.refresh_leases(g, &[], at_gate())
                    .unwrap()
                    .iter()
                    .map(|l| l.places)
                    .sum::<i64>()
            })
            .sum();
        assert_eq!(again, leased);
        assert_eq!(s.get_slot(ORQ, slot.id).unwrap().booked_count, 5);
    }

    /// Capacity safety of the no-show release: a released no-show let in
    /// late by the operator (an uploaded admission marked `overruled:
    /// NO_SHOW_RELEASED`) takes a place back in its slot — the gate's lease
    /// first, else a free place — and with neither it is a NO_PLACE_LEFT
    /// conflict that changes no reservation (the person still counts as
    /// inside). The slot never goes over capacity.
    pub fn a_late_no_show_takes_a_place_back_never_over_capacity(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + SyncStore
              + VenueOpsStore
              + ?Sized),
    ) {
        use crate::domain::ReservationStatus as R;
        let venue = s.add_venue(ORQ, "Zoo", "Europe/Madrid", now()).unwrap();
        settings(
            s,
            &venue,
            r#"{"walkup_lease_places": 1, "no_show_release_minutes": 20}"#,
        );
        let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(2)).unwrap();
        let slot = s.create_slot(ORQ, &new, now()).unwrap();
        let op = s
            .add_operator(ORQ, Role::Operator, "Ana", None, now())
            .unwrap();
        let (_, a) = s.add_device(ORQ, venue.id, "Gate A", now()).unwrap();
        let (_, b) = s.add_device(ORQ, venue.id, "Gate B", now()).unwrap();
        let n1 = reserve(s, &slot, "N-1");
        let n2 = reserve(s, &slot, "N-2");
        // 09:30 UTC is 10:30 in Madrid: both are no-shows, their places back.
        let released_at = at_gate() - Duration::minutes(30);
        assert_eq!(s.release_no_shows(released_at).unwrap().len(), 2);
        assert_eq!(booked_count(s, &slot), 0);
        // Gate A leases one place; a customer books the other: full.
        s.refresh_leases(&a, &[], released_at).unwrap();
        reserve(s, &slot, "C-1");
        assert_eq!(booked_count(s, &slot), 2);
        let late = |device: &DeviceInfo, code: &str, at| {
            upload(
                s,
                device,
                event(
                    "verify",
                    serde_json::json!({ "ticket_code": code, "venue_id": venue.id.0, "overruled": "NO_SHOW_RELEASED" }),
                    op.id.0,
                    at,
                ),
            )
        };
        let status = |r: &crate::domain::Reservation| s.get_reservation(ORQ, r.id).unwrap().status;

        // N-1 at gate A, on a leased place (the gate marks it so): that
        // place (already counted) comes back.
        let got = upload(
            s,
            &a,
            event(
                "verify",
                serde_json::json!({
                    "ticket_code": "N-1", "venue_id": venue.id.0,
                    "overruled": "NO_SHOW_RELEASED", "lease_slot_id": slot.id,
                }),
                op.id.0,
                at_gate(),
            ),
        );
        assert_eq!(got.status, EventStatus::Applied, "{got:?}");
        assert_eq!(status(&n1), R::Verified);
        assert_eq!(booked_count(s, &slot), 2);
        assert_eq!(s.refresh_leases(&a, &[], at_gate()).unwrap(), vec![]);

        // N-2 at gate B, no lease, the slot full: a conflict, nothing booked.
        let got = late(&b, "N-2", at_gate() + Duration::seconds(5));
        assert_eq!(
            (got.status, got.reason.as_deref()),
            (EventStatus::Conflict, Some("NO_PLACE_LEFT")),
            "{got:?}"
        );
        assert_eq!(status(&n2), R::Cancelled);
        assert_eq!(booked_count(s, &slot), 2);
        let later = at_gate() + Duration::minutes(1);
        assert_eq!(s.occupancy(ORQ, venue.id, later).unwrap().inside, 2);

        // One more place on the slot: a third no-show takes that free place.
        let change = crate::domain::SlotChange {
            total_capacity: Some(3),
            status: None,
        };
        let n3 = {
            // Reserved before the release, released with the others.
            let t = ticket(s, "N-3");
            s.update_slot(ORQ, slot.id, change, now()).unwrap();
            let req = ReserveRequest {
                ticket: t,
                slot_id: slot.id,
                contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
            };
            let r = s.reserve_slot(ORQ, &req, now()).unwrap();
            // N-3 and C-1 (who never came either) are released.
            assert_eq!(s.release_no_shows(released_at).unwrap().len(), 2);
            r
        };
        assert_eq!(booked_count(s, &slot), 1);
        let got = late(&b, "N-3", at_gate() + Duration::seconds(10));
        assert_eq!(got.status, EventStatus::Applied, "{got:?}");
        assert_eq!(status(&n3), R::Verified);
        let after = s.get_slot(ORQ, slot.id).unwrap();
        assert_eq!((after.booked_count, after.total_capacity), (2, 3));
    }

    /// A late no-show the gate let in on a free place (its upload carries
    /// no `lease_slot_id`: the gate counted it in neither its lease nor its
    /// refresh) takes a free place or is a NO_PLACE_LEFT conflict, never one
    /// of the gate's leased places: the walk-ups the gate booked from its
    /// lease afterwards, and showed ADMIT for, are all honoured.
    pub fn a_late_no_show_on_a_free_place_leaves_the_lease_to_the_walkups(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + SyncStore
              + VenueOpsStore
              + ?Sized),
    ) {
        use crate::domain::ReservationStatus as R;
        let venue = s.add_venue(ORQ, "Zoo", "Europe/Madrid", now()).unwrap();
        settings(
            s,
            &venue,
            r#"{"walkup_lease_places": 2, "no_show_release_minutes": 20}"#,
        );
        let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(3)).unwrap();
        let slot = s.create_slot(ORQ, &new, now()).unwrap();
        let op = s
            .add_operator(ORQ, Role::Operator, "Ana", None, now())
            .unwrap();
        let (_, a) = s.add_device(ORQ, venue.id, "Gate A", now()).unwrap();
        let n1 = reserve(s, &slot, "N-1");
        let n2 = reserve(s, &slot, "N-2");
        let released_at = at_gate() - Duration::minutes(30);
        assert_eq!(s.release_no_shows(released_at).unwrap().len(), 2);
        // Gate A holds 2 of the 3 places; one is free.
        s.refresh_leases(&a, &[], released_at).unwrap();
        assert_eq!(booked_count(s, &slot), 2);
        let status = |r: &crate::domain::Reservation| s.get_reservation(ORQ, r.id).unwrap().status;
        let late = |code: &str, at| {
            upload(
                s,
                &a,
                event(
                    "verify",
                    serde_json::json!({ "ticket_code": code, "venue_id": venue.id.0, "overruled": "NO_SHOW_RELEASED" }),
                    op.id.0,
                    at,
                ),
            )
        };
        // N-1 on the free place: applied, the lease untouched.
        let got = late("N-1", at_gate());
        assert_eq!(got.status, EventStatus::Applied, "{got:?}");
        assert_eq!(status(&n1), R::Verified);
        assert_eq!(booked_count(s, &slot), 3);
        // N-2, the slot full: a conflict, however many places the gate holds.
        let got = late("N-2", at_gate() + Duration::seconds(5));
        assert_eq!(
            (got.status, got.reason.as_deref()),
            (EventStatus::Conflict, Some("NO_PLACE_LEFT")),
            "{got:?}"
        );
        assert_eq!(status(&n2), R::Cancelled);
        // The walk-ups the gate booked from its 2 leased places: both honoured.
        for (i, code) in ["W-1", "W-2"].into_iter().enumerate() {
            ticket(s, code);
            let got = upload(
                s,
                &a,
                event(
                    "walkup",
                    serde_json::json!({
                        "ticket_code": code,
                        "slot_id": slot.id.to_string(),
                        "reservation_id": uuid::Uuid::now_v7().to_string(),
                    }),
                    op.id.0,
                    at_gate() + Duration::minutes(1 + i as i64),
                ),
            );
            assert_eq!(got.status, EventStatus::Applied, "{code}: {got:?}");
        }
        let after = s.get_slot(ORQ, slot.id).unwrap();
        assert_eq!((after.booked_count, after.total_capacity), (3, 3));
        assert_eq!(s.list_conflicts(ORQ).unwrap().len(), 1, "N-2's only");
    }

    /// A gate that had not heard of a no-show's release yet showed ADMIT (an
    /// upload without `overruled`): the person is inside, so the admission is
    /// judged like the operator's late decision, not as a conflict outright.
    /// It takes a free place back (the reservation live, then verified);
    /// with none left it is a NO_PLACE_LEFT conflict. Never over capacity.
    pub fn a_stale_gates_admit_of_a_released_no_show_takes_a_free_place(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + SyncStore
              + VenueOpsStore
              + ?Sized),
    ) {
        use crate::domain::ReservationStatus as R;
        let venue = s.add_venue(ORQ, "Zoo", "Europe/Madrid", now()).unwrap();
        settings(s, &venue, r#"{"no_show_release_minutes": 20}"#);
        let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(2)).unwrap();
        let slot = s.create_slot(ORQ, &new, now()).unwrap();
        let op = s
            .add_operator(ORQ, Role::Operator, "Ana", None, now())
            .unwrap();
        let (_, a) = s.add_device(ORQ, venue.id, "Gate A", now()).unwrap();
        let n1 = reserve(s, &slot, "N-1");
        let n2 = reserve(s, &slot, "N-2");
        assert_eq!(
            s.release_no_shows(at_gate() - Duration::minutes(30))
                .unwrap()
                .len(),
            2
        );
        reserve(s, &slot, "C-1");
        assert_eq!(booked_count(s, &slot), 1);
        let stale = |code: &str, at| {
            upload(
                s,
                &a,
                event(
                    "verify",
                    serde_json::json!({ "ticket_code": code, "venue_id": venue.id.0 }),
                    op.id.0,
                    at,
                ),
            )
        };
        let status = |r: &crate::domain::Reservation| s.get_reservation(ORQ, r.id).unwrap().status;
        let got = stale("N-1", at_gate());
        assert_eq!(got.status, EventStatus::Applied, "{got:?}");
        assert_eq!(status(&n1), R::Verified);
        assert_eq!(booked_count(s, &slot), 2);
        let got = stale("N-2", at_gate() + Duration::seconds(5));
        assert_eq!(
            (got.status, got.reason.as_deref()),
            (EventStatus::Conflict, Some("NO_PLACE_LEFT")),
            "{got:?}"
        );
        assert_eq!(status(&n2), R::Cancelled);
        let after = s.get_slot(ORQ, slot.id).unwrap();
        assert_eq!((after.booked_count, after.total_capacity), (2, 2));
        let later = at_gate() + Duration::minutes(1);
        assert_eq!(s.occupancy(ORQ, venue.id, later).unwrap().inside, 2);
    }

    /// A supervisor's take-back of a lease while the slot still takes
    /// walk-ups must not turn an offline gate's walk-ups, already shown as
    /// ADMIT, into conflicts: the lease is recalled, its places stay counted
    /// (customers get only what was free besides), and the walk-ups uploaded
    /// afterwards are applied from it. The slot never exceeds capacity.
    pub fn a_recalled_lease_still_honours_the_offline_walkups(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + SyncStore
              + VenueOpsStore
              + ?Sized),
    ) {
        let venue = s.add_venue(ORQ, "Zoo", "Europe/Madrid", now()).unwrap();
        settings(s, &venue, r#"{"walkup_lease_places": 2}"#);
        // 11:00-12:00 in Madrid (10:00-11:00 UTC): at 09:50 UTC it is ten
        // minutes before the start, inside the early grace: walk-ups open.
        let new = NewSlot::validate(venue.id.0, "2025-12-01", "11:00", "12:00", Some(3)).unwrap();
        let slot = s.create_slot(ORQ, &new, now()).unwrap();
        let op = s
            .add_operator(ORQ, Role::Operator, "Ana", None, now())
            .unwrap();
        let (_, a) = s.add_device(ORQ, venue.id, "Gate A", now()).unwrap();
        let before = at_gate() - Duration::minutes(10);
        assert_eq!(s.refresh_leases(&a, &[], before).unwrap().len(), 1);
        assert_eq!(booked_count(s, &slot), 2);
        // Gate A goes offline and books both leased places (ADMIT shown).
        // Meanwhile a supervisor takes the venue's leases back.
        assert_eq!(
            s.take_back_leases(Some((ORQ, venue.id)), false, before)
                .unwrap(),
            vec![]
        );
        assert_eq!(booked_count(s, &slot), 2, "recalled, still counted");
        // Customers may book only what was free besides: one place.
        reserve(s, &slot, "C-1");
        let full = ReserveRequest {
            ticket: ticket(s, "C-2"),
            slot_id: slot.id,
            contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
        };
        assert!(s.reserve_slot(ORQ, &full, now()).is_err());
        // The gate comes back: upload first (as a sync round does), then
        // its lease refresh. Both walk-ups are honoured, no conflict.
        for (i, code) in ["W-1", "W-2"].into_iter().enumerate() {
            ticket(s, code);
            let got = upload(
                s,
                &a,
                event(
                    "walkup",
                    serde_json::json!({
                        "ticket_code": code,
                        "slot_id": slot.id.to_string(),
                        "reservation_id": uuid::Uuid::now_v7().to_string(),
                    }),
                    op.id.0,
                    before + Duration::minutes(5 + i as i64),
                ),
            );
            assert_eq!(got.status, EventStatus::Applied, "{code}: {got:?}");
        }
        assert_eq!(s.refresh_leases(&a, &[], at_gate()).unwrap(), vec![]);
        let after = s.get_slot(ORQ, slot.id).unwrap();
        assert_eq!((after.booked_count, after.total_capacity), (3, 3));
        assert!(s.list_conflicts(ORQ).unwrap().is_empty());
    }

    /// An online walk-up's admission undone at its gate: the reservation the
    /// server booked is released and its place goes back to the slot (it
    /// came from the slot's free places), never to the gate's lease.
    pub fn an_undone_online_walkup_gives_its_place_back_to_the_slot(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + SyncStore
              + ?Sized),
    ) {
        let venue = s.add_venue(ORQ, "Zoo", "Europe/Madrid", now()).unwrap();
        settings(s, &venue, r#"{"walkup_lease_places": 2}"#);
        let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(4)).unwrap();
        let slot = s.create_slot(ORQ, &new, now()).unwrap();
        let op = s
            .add_operator(ORQ, Role::Operator, "Ana", None, now())
            .unwrap();
        let (_, a) = s.add_device(ORQ, venue.id, "Gate A", now()).unwrap();
        let t0 = at_gate();
        s.refresh_leases(&a, &[], t0).unwrap();
        let o1 = ticket(s, "O-1");
        let b = s.book_walkup_online(&a, b"O-1", t0).unwrap();
        assert_eq!(booked_count(s, &slot), 3, "2 leased + the online walk-up");
        for (kind, payload, at) in [
            (
                "walkup",
                serde_json::json!({ "ticket_code": "O-1", "slot_id": slot.id, "reservation_id": b.reservation_id, "online": true }),
                t0,
            ),
            ("verify", serde_json::json!({ "ticket_code": "O-1" }), t0),
            (
                "undo",
                serde_json::json!({ "ticket_code": "O-1", "reason": "wrong phone" }),
                t0 + Duration::seconds(10),
            ),
        ] {
            let got = upload(s, &a, event(kind, payload, op.id.0, at));
            assert_eq!(got.status, EventStatus::Applied, "{kind}: {got:?}");
        }
        let r = s.get_reservation(ORQ, b.reservation_id).unwrap();
        assert_eq!(r.status.as_str(), "CANCELLED");
        assert!(s.get_ticket(ORQ, &o1).unwrap().verified_at.is_none());
        assert_eq!(booked_count(s, &slot), 2, "the place is the slot's again");
        assert_eq!(
            s.refresh_leases(&a, &[], t0 + Duration::seconds(20))
                .unwrap(),
            vec![SlotPlaces {
                slot_id: slot.id,
                places: 2
            }],
            "the lease is as it was"
        );
    }

    /// An undone walk-up (the gate's uploaded undo of its walk-up's
    /// admission) releases its reservation: cancelled, its place back on
    /// the gate's lease while the gate holds one of the slot, else on the
    /// slot (`domain::venue_ops::undo_place`).
    pub fn an_undone_walkup_releases_its_reservation(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + SyncStore
              + VenueOpsStore
              + ?Sized),
    ) {
        use crate::domain::TicketStatus;
        let venue = s.add_venue(ORQ, "Zoo", "Europe/Madrid", now()).unwrap();
        settings(s, &venue, r#"{"walkup_lease_places": 2}"#);
        let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(3)).unwrap();
        let slot = s.create_slot(ORQ, &new, now()).unwrap();
        let op = s
            .add_operator(ORQ, Role::Operator, "Ana", None, now())
            .unwrap();
        let (_, a) = s.add_device(ORQ, venue.id, "Gate A", now()).unwrap();
        let t0 = at_gate();
        s.refresh_leases(&a, &[], t0).unwrap();
        assert_eq!(booked_count(s, &slot), 2);
        let walk_in = |code: &str, at: chrono::DateTime<chrono::Utc>| {
            ticket(s, code);
            let w = upload(
                s,
                &a,
                event(
                    "walkup",
                    serde_json::json!({
                        "ticket_code": code, "slot_id": slot.id.to_string(),
                        "reservation_id": uuid::Uuid::now_v7().to_string(),
                    }),
                    op.id.0,
                    at,
                ),
            );
            assert_eq!(w.status, EventStatus::Applied, "{w:?}");
            let v = upload(
                s,
                &a,
                event(
                    "verify",
                    serde_json::json!({ "ticket_code": code }),
                    op.id.0,
                    at,
                ),
            );
            assert_eq!(v.status, EventStatus::Applied, "{v:?}");
            let u = upload(
                s,
                &a,
                event(
                    "undo",
                    serde_json::json!({ "ticket_code": code, "reason": "wrong phone" }),
                    op.id.0,
                    at + Duration::seconds(10),
                ),
            );
            assert_eq!(u.status, EventStatus::Applied, "{u:?}");
        };
        // With the lease: the place is the gate's again, the count unchanged.
        walk_in("W-1", t0);
        let t = s
            .get_ticket(ORQ, &TicketCode::parse("W-1").unwrap())
            .unwrap();
        assert_eq!((t.status, t.verified_at), (TicketStatus::Activated, None));
        assert_eq!(booked_count(s, &slot), 2);
        assert_eq!(
            s.refresh_leases(&a, &[], t0 + Duration::seconds(20))
                .unwrap(),
            vec![SlotPlaces {
                slot_id: slot.id,
                places: 2
            }]
        );
        // Without it (recalled and settled meanwhile): back on the slot.
        let t1 = t0 + Duration::minutes(1);
        ticket(s, "W-2");
        let w = upload(
            s,
            &a,
            event(
                "walkup",
                serde_json::json!({
                    "ticket_code": "W-2", "slot_id": slot.id.to_string(),
                    "reservation_id": uuid::Uuid::now_v7().to_string(),
                }),
                op.id.0,
                t1,
            ),
        );
        assert_eq!(w.status, EventStatus::Applied);
        let v = upload(
            s,
            &a,
            event(
                "verify",
                serde_json::json!({ "ticket_code": "W-2" }),
                op.id.0,
                t1,
            ),
        );
        assert_eq!(v.status, EventStatus::Applied);
        s.take_back_leases(Some((ORQ, venue.id)), false, t1)
            .unwrap();
        assert_eq!(s.refresh_leases(&a, &[], t1).unwrap(), vec![]);
        assert_eq!(booked_count(s, &slot), 1, "W-2's reservation only");
        let u = upload(
            s,
            &a,
            event(
                "undo",
                serde_json::json!({ "ticket_code": "W-2", "reason": "wrong phone" }),
                op.id.0,
                t1 + Duration::seconds(10),
            ),
        );
        assert_eq!(u.status, EventStatus::Applied, "{u:?}");
        assert_eq!(booked_count(s, &slot), 0);
    }

    /// The undo of an admission releases a walk-up's reservation only when
    /// the admission undone is that walk-up's. A walk-up W-1 is undone
    /// (released); the holder then books the same slot online and is
    /// admitted at the same gate (a normal verify), which the operator
    /// undoes too: the customer's reservation stays, and the gate's lease
    /// gains no place.
    pub fn undoing_a_later_admission_keeps_the_reservation_made_since_the_walkup(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + SyncStore
              + VenueOpsStore
              + ?Sized),
    ) {
        use crate::domain::{ReservationStatus as R, TicketStatus};
        let venue = s.add_venue(ORQ, "Zoo", "Europe/Madrid", now()).unwrap();
        settings(s, &venue, r#"{"walkup_lease_places": 2}"#);
        let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(3)).unwrap();
        let slot = s.create_slot(ORQ, &new, now()).unwrap();
        let op = s
            .add_operator(ORQ, Role::Operator, "Ana", None, now())
            .unwrap();
        let (_, a) = s.add_device(ORQ, venue.id, "Gate A", now()).unwrap();
        let t0 = at_gate();
        s.refresh_leases(&a, &[], t0).unwrap();
        assert_eq!(booked_count(s, &slot), 2);
        let ev = |kind: &str, payload: serde_json::Value, at| {
            let got = upload(s, &a, event(kind, payload, op.id.0, at));
            assert_eq!(got.status, EventStatus::Applied, "{kind}: {got:?}");
        };
        ticket(s, "W-1");
        let w1 = serde_json::json!({ "ticket_code": "W-1" });
        let undo = serde_json::json!({ "ticket_code": "W-1", "reason": "wrong phone" });
        ev(
            "walkup",
            serde_json::json!({
                "ticket_code": "W-1", "slot_id": slot.id.to_string(),
                "reservation_id": uuid::Uuid::now_v7().to_string(),
            }),
            t0,
        );
        ev("verify", w1.clone(), t0);
        ev("undo", undo.clone(), t0 + Duration::seconds(10));
        assert_eq!(
            booked_count(s, &slot),
            2,
            "the walk-up's place is the lease's again"
        );
        // The holder books the slot online and is admitted at gate A.
        let req = ReserveRequest {
            ticket: TicketCode::parse("W-1").unwrap(),
            slot_id: slot.id,
            contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
        };
        let online = s.reserve_slot(ORQ, &req, now()).unwrap();
        assert_eq!(booked_count(s, &slot), 3);
        let t1 = t0 + Duration::minutes(2);
        ev("verify", w1, t1);
        assert_eq!(
            s.get_reservation(ORQ, online.id).unwrap().status,
            R::Verified
        );
        // That admission undone: the online reservation stays, live.
        ev("undo", undo, t1 + Duration::seconds(10));
        assert_eq!(
            s.get_reservation(ORQ, online.id).unwrap().status,
            R::Reserved
        );
        let t = s
            .get_ticket(ORQ, &TicketCode::parse("W-1").unwrap())
            .unwrap();
        assert_eq!((t.status, t.verified_at), (TicketStatus::Reserved, None));
        assert_eq!(booked_count(s, &slot), 3);
        // The gate's lease is still 2 places, the slot still full.
        assert_eq!(
            s.refresh_leases(&a, &[], t1 + Duration::seconds(20))
                .unwrap(),
            vec![SlotPlaces {
                slot_id: slot.id,
                places: 2
            }]
        );
        assert_eq!(booked_count(s, &slot), 3);
    }

    /// Gates upload in any order: an exit made offline at gate B at 10:10,
    /// uploaded after gate A's re-entry of the same holder at 10:30, leaves
    /// the holder inside (`domain::venue_ops::left_mark`): the count is
    /// right and their next exit is an EXIT, not "left at 10:10".
    pub fn an_exit_uploaded_after_a_later_reentry_leaves_the_holder_inside(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + SyncStore
              + VenueOpsStore
              + ?Sized),
    ) {
        let (venue, _, _, _) = booked(s);
        settings(s, &venue, r#"{"reentry_allowed": true}"#);
        let op = s
            .add_operator(ORQ, Role::Operator, "Ana", None, now())
            .unwrap();
        let (_, gate_a) = s.add_device(ORQ, venue.id, "Gate A", now()).unwrap();
        let (_, gate_b) = s.add_device(ORQ, venue.id, "Gate B", now()).unwrap();
        let at = |m: i64| at_gate() + Duration::minutes(m);
        let ev = |kind: &str, when| {
            event(
                kind,
                serde_json::json!({ "ticket_code": "T-1", "venue_id": venue.id }),
                op.id.0,
                when,
            )
        };
        let inside = || s.occupancy(ORQ, venue.id, at(59)).unwrap().inside;
        assert_eq!(
            upload(s, &gate_a, ev("verify", at(0))).status,
            EventStatus::Applied
        );
        // Gate A's re-entry arrives first (the server has not seen the exit).
        upload(s, &gate_a, ev("reenter", at(30)));
        // Gate B's older exit arrives: applied, and the holder is inside.
        assert_eq!(
            upload(s, &gate_b, ev("exit", at(10))).status,
            EventStatus::Applied
        );
        assert_eq!(inside(), 1);
        let next = upload(s, &gate_b, ev("exit", at(40)));
        assert_eq!(next.status, EventStatus::Applied, "{next:?}");
        assert_eq!(inside(), 0);
    }

    /// Uploaded exits and re-entries are judged by the gate's rule on the
    /// server's rows (re-entry as the venue allows, no exit without an
    /// entry) and counted; an undo takes its operator's own admission back
    /// within 60 s, and only that.
    pub fn uploaded_exits_reentries_and_undos_are_judged(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + SyncStore
              + VenueOpsStore
              + ?Sized),
    ) {
        let (venue, slot, t1, _) = booked(s);
        let op = s
            .add_operator(ORQ, Role::Operator, "Ana", None, now())
            .unwrap();
        let other = s
            .add_operator(ORQ, Role::Operator, "Bea", None, now())
            .unwrap();
        let (_, gate_a) = s.add_device(ORQ, venue.id, "Gate A", now()).unwrap();
        let (_, gate_b) = s.add_device(ORQ, venue.id, "Gate B", now()).unwrap();
        let t0 = at_gate();
        let at = |m: i64| t0 + Duration::minutes(m);
        let ev = |kind: &str, code: &str, who: i64, when| {
            event(
                kind,
                serde_json::json!({ "ticket_code": code, "venue_id": venue.id }),
                who,
                when,
            )
        };
        let inside = || s.occupancy(ORQ, venue.id, at(59)).unwrap().inside;
        // In at A, out at B: the server's count follows the uploaded facts.
        assert_eq!(
            upload(s, &gate_a, ev("verify", "T-1", op.id.0, at(0))).status,
            EventStatus::Applied
        );
        assert_eq!(inside(), 1);
        assert_eq!(
            upload(s, &gate_b, ev("exit", "T-1", op.id.0, at(5))).status,
            EventStatus::Applied
        );
        assert_eq!(inside(), 0);
        // Re-entry refused while the venue does not allow it (the holder
        // still walked through: the passage counts).
        let got = upload(s, &gate_a, ev("reenter", "T-1", op.id.0, at(10)));
        assert_eq!(
            (got.status, got.reason.as_deref()),
            (EventStatus::Conflict, Some("REENTRY_NOT_ALLOWED"))
        );
        assert_eq!(inside(), 1);
        // Allowed: another holder goes out and comes back.
        settings(s, &venue, r#"{"reentry_allowed": true}"#);
        reserve(s, &slot, "T-2");
        for (kind, m, gate) in [
            ("verify", 0, &gate_a),
            ("exit", 5, &gate_b),
            ("reenter", 10, &gate_a),
        ] {
            let got = upload(s, gate, ev(kind, "T-2", op.id.0, at(m)));
            assert_eq!(got.status, EventStatus::Applied, "{kind}: {got:?}");
        }
        assert_eq!(inside(), 2);
        // An exit without an entry: a conflict with its reason.
        reserve(s, &slot, "T-3");
        let got = upload(s, &gate_b, ev("exit", "T-3", op.id.0, at(12)));
        assert_eq!(
            (got.status, got.reason.as_deref()),
            (EventStatus::Conflict, Some("NOT_INSIDE"))
        );
        // Unknown tickets are rejected.
        let got = upload(s, &gate_b, ev("exit", "NOPE", op.id.0, at(12)));
        assert_eq!(got.status, EventStatus::Rejected);

        // Undo: the operator's own admission within 60 s.
        let r4 = reserve(s, &slot, "T-4");
        let t4 = TicketCode::parse("T-4").unwrap();
        upload(s, &gate_a, ev("verify", "T-4", op.id.0, at(20)));
        let undo = |code: &str, who: i64, when, reason: &str| {
            event(
                "undo",
                serde_json::json!({ "ticket_code": code, "reason": reason }),
                who,
                when,
            )
        };
        let later = at(20) + Duration::seconds(30);
        // Without a reason: rejected; by another operator: refused.
        assert_eq!(
            upload(s, &gate_a, undo("T-4", op.id.0, later, "")).status,
            EventStatus::Rejected
        );
        let got = upload(s, &gate_a, undo("T-4", other.id.0, later, "wrong phone"));
        assert_eq!(
            (got.status, got.reason.as_deref()),
            (EventStatus::Conflict, Some("UNDO_REFUSED"))
        );
        assert_eq!(s.get_ticket(ORQ, &t4).unwrap().verified_at, Some(at(20)));
        let got = upload(s, &gate_a, undo("T-4", op.id.0, later, "wrong phone"));
        assert_eq!(got.status, EventStatus::Applied, "{got:?}");
        let back = s.get_ticket(ORQ, &t4).unwrap();
        assert_eq!(
            (back.verified_at, back.verified_by, back.status.as_str()),
            (None, None, "RESERVED")
        );
        assert_eq!(
            s.get_reservation(ORQ, r4.id).unwrap().status.as_str(),
            "RESERVED"
        );
        // Too late for T-1's admission (an hour ago).
        let got = upload(
            s,
            &gate_a,
            undo(t1.as_str(), op.id.0, at(30), "wrong phone"),
        );
        assert_eq!(
            (got.status, got.reason.as_deref()),
            (EventStatus::Conflict, Some("UNDO_REFUSED"))
        );
    }
}

/// The CLI's administration calls (`AdminStore`).
pub mod admin {
    use super::*;
    use crate::domain::Role;
    use crate::{AdminStore, GateStore, OperatorStore, SigningStore, SyncStore, TokenStore};

    pub fn tokens_pins_keys_devices_and_codes_are_administered(
        s: &(impl VenueStore
              + SlotStore
              + TicketStore
              + ReservationStore
              + OperatorStore
              + TokenStore
              + GateStore
              + SigningStore
              + SyncStore
              + AdminStore
              + ?Sized),
    ) {
        let (venue, _, t, _) = booked(s);
        // A token revoked by its secret stops working; twice is a no.
        let (token, _) = s.create_token(ORQ, Role::Admin, None, None, now()).unwrap();
        assert!(s.principal_for_token(&token, now()).unwrap().is_some());
        assert!(s.revoke_token(&token, now()).unwrap());
        assert!(!s.revoke_token(&token, now()).unwrap());
        assert!(s.principal_for_token(&token, now()).unwrap().is_none());
        // A PIN set is checked.
        let op = s
            .add_operator(ORQ, Role::Operator, "Ana", None, now())
            .unwrap();
        let got = s.set_operator_pin(ORQ, op.id, "4821", now()).unwrap();
        assert!(got.pin_hash.is_some());
        assert!(s.check_operator_pin(ORQ, op.id, "4821", now()).is_ok());
        assert_eq!(
            s.set_operator_pin(ORQ, OperatorId(999_999), "4821", now())
                .unwrap_err()
                .code(),
            "NOT_FOUND"
        );
        // A retired key's codes no longer admit; the new key's do.
        let gate = Gate {
            venue_id: Some(venue.id),
            ..Gate::default()
        };
        let old = s.signed_code(ORQ, &t, now()).unwrap();
        let old_kid = s.public_keys(ORQ).unwrap()[0].kid;
        let new_kid = s.rotate_signing_key(ORQ, now()).unwrap();
        assert_ne!(new_kid, old_kid);
        s.retire_signing_key(ORQ, old_kid, now()).unwrap();
        assert_eq!(
            s.retire_signing_key(ORQ, old_kid, now())
                .unwrap_err()
                .code(),
            "NOT_FOUND"
        );
        assert!(
            !s.scan(ORQ, old.as_bytes(), OperatorId(5), &gate, at_gate())
                .unwrap()
                .admit
        );
        // A re-issued code revokes the one printed before.
        let fresh = s.reissue_code(ORQ, &t, now()).unwrap();
        assert_ne!(fresh, old);
        let reprinted = s.signed_code(ORQ, &t, now()).unwrap();
        assert_eq!(fresh, reprinted);
        assert!(
            s.scan(ORQ, fresh.as_bytes(), OperatorId(5), &gate, at_gate())
                .unwrap()
                .admit
        );
        // A revoked device's token is no one's.
        let (dev_token, device) = s.add_device(ORQ, venue.id, "Gate 1", now()).unwrap();
        s.revoke_device(ORQ, device.device_id, now()).unwrap();
        assert_eq!(s.device_for_token(&dev_token).unwrap(), None);
        assert_eq!(
            s.revoke_device(ORQ, device.device_id, now())
                .unwrap_err()
                .code(),
            "NOT_FOUND"
        );
    }
}

/// Expands to the signing group's tests; see `conformance`'s doc.
#[macro_export]
macro_rules! signing_conformance {
    ($fresh:expr) => {
        $crate::conformance_sync_tests!($fresh; signing;
            a_signed_code_scans_in_once_and_a_forged_one_never,
            signed_codes_only_refuses_plain_codes,
            ticket_state_is_the_holders_view_with_the_signed_code,
            concurrent_first_signatures_make_one_key,
        );
    };
}

/// Expands to the sync group's tests; see `conformance`'s doc.
#[macro_export]
macro_rules! sync_conformance {
    ($fresh:expr) => {
        $crate::conformance_sync_tests!($fresh; sync;
            devices_are_registered_and_found_by_token,
            device_keys_reach_the_other_gates_of_the_venue_only,
            a_device_key_belongs_to_one_live_gate,
            feed_rows_are_the_same_json_on_every_engine,
            the_routes_page_text_is_the_serialised_page,
            uploaded_events_apply_once_and_double_entries_are_conflicts,
            an_uploaded_admission_names_its_gate_by_the_uploaders_token,
            another_venues_caller_is_not_told_the_admitting_gate,
            a_cursor_pulls_only_what_changed_since,
        );
    };
}

/// Expands to the console Gates page's tests (issue 16).
#[macro_export]
macro_rules! gate_health_conformance {
    ($fresh:expr) => {
        $crate::conformance_sync_tests!($fresh; sync;
            gates_show_what_they_reported_and_are_revoked_once,
        );
    };
}

/// Expands to the venue-operation uploads' tests; see `conformance`'s doc.
#[macro_export]
macro_rules! venue_upload_conformance {
    ($fresh:expr) => {
        $crate::conformance_sync_tests!($fresh; sync;
            venue_operation_uploads_are_held_to_their_gate,
        );
    };
}

/// Expands to the venue operations' sync tests; see `conformance`'s doc.
#[macro_export]
macro_rules! venue_ops_sync_conformance {
    ($fresh:expr) => {
        $crate::conformance_sync_tests!($fresh; venue_ops_sync;
            walkup_leases_stay_within_capacity_and_are_given_back,
            online_walkups_take_free_places_never_leased_ones,
            an_undone_online_walkup_gives_its_place_back_to_the_slot,
            leases_are_taken_back_by_the_server,
            a_revoked_gates_lease_comes_back_at_once,
            concurrent_leases_and_bookings_never_overbook,
            uploaded_exits_reentries_and_undos_are_judged,
            a_late_no_show_takes_a_place_back_never_over_capacity,
            a_late_no_show_on_a_free_place_leaves_the_lease_to_the_walkups,
            a_stale_gates_admit_of_a_released_no_show_takes_a_free_place,
            a_recalled_lease_still_honours_the_offline_walkups,
            an_undone_walkup_releases_its_reservation,
            undoing_a_later_admission_keeps_the_reservation_made_since_the_walkup,
            an_exit_uploaded_after_a_later_reentry_leaves_the_holder_inside,
        );
    };
}

/// Expands to the admin group's tests; see `conformance`'s doc.
#[macro_export]
macro_rules! admin_conformance {
    ($fresh:expr) => {
        $crate::conformance_sync_tests!($fresh; admin;
            tokens_pins_keys_devices_and_codes_are_administered,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! conformance_sync_tests {
    ($fresh:expr; $group:ident; $($test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                let Some(store) = $fresh else { return };
                $crate::conformance_sync::$group::$test(&*store);
            }
        )*
    };
}

#[cfg(test)]
mod sqlite {
    use crate::Store;

    struct Fresh {
        store: Store,
        _dir: tempfile::TempDir,
    }

    impl std::ops::Deref for Fresh {
        type Target = Store;
        fn deref(&self) -> &Store {
            &self.store
        }
    }

    fn fresh() -> Option<Fresh> {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("conformance.db")).unwrap();
        Some(Fresh { store, _dir: dir })
    }

    crate::signing_conformance!(fresh());
    crate::sync_conformance!(fresh());
    crate::venue_upload_conformance!(fresh());
    crate::admin_conformance!(fresh());
    crate::venue_ops_sync_conformance!(fresh());
    crate::gate_health_conformance!(fresh());
}
