//! Signed ticket codes through the store's scan service: the same call the
//! kiosk and the headless gate use (payload → signature → verdict → record).

mod common;

use chrono::Duration;
use common::{now, Fixture, ORQ};
use entrada::domain::{ActivationMode, Gate, OperatorId, Orq, VerdictCode};

fn admit_fixture() -> (
    Fixture,
    entrada::domain::TicketCode,
    chrono::DateTime<chrono::Utc>,
) {
    let f = Fixture::new();
    let slot = f.slot("2025-12-01", "09:00", "12:00", 10);
    let t = f.ticket("TKT-2025-ABC123", ActivationMode::Immediate);
    f.store
        .reserve_slot(ORQ, &f.request(&t, &slot), now())
        .unwrap();
    (f, t, now() + Duration::days(6)) // 2025-12-01 10:00 UTC, 11:00 in Madrid
}

#[test]
fn valid_signed_code_admits_once_and_is_recorded() {
    let (f, t, at) = admit_fixture();
    let code = f.store.signed_code(ORQ, &t, now()).unwrap();
    let v = f
        .store
        .scan(ORQ, code.as_bytes(), OperatorId(3), &Gate::default(), at)
        .unwrap();
    assert_eq!(
        (v.verdict, v.verified_by),
        (VerdictCode::Admit, Some(OperatorId(3)))
    );
    assert_eq!(
        f.store.get_ticket(ORQ, &t).unwrap().verified_by,
        Some(OperatorId(3))
    );
    let again = f
        .store
        .scan(ORQ, code.as_bytes(), OperatorId(4), &Gate::default(), at)
        .unwrap();
    assert_eq!(
        (again.verdict, again.verified_by),
        (VerdictCode::AlreadyVerified, Some(OperatorId(3)))
    );
    // The plain spec code is still accepted and says the same.
    let plain = f
        .store
        .scan(ORQ, b"TKT-2025-ABC123", OperatorId(4), &Gate::default(), at)
        .unwrap();
    assert_eq!(plain.verdict, VerdictCode::AlreadyVerified);
}

#[test]
fn tampered_wrong_org_and_retired_keys_are_forged() {
    let (f, t, at) = admit_fixture();
    let code = f.store.signed_code(ORQ, &t, now()).unwrap();
    let mut tampered = code.clone().into_bytes();
    let i = code.len() - 3;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let v = f
        .store
        .scan(ORQ, &tampered, OperatorId(1), &Gate::default(), at)
        .unwrap();
    assert_eq!(v.verdict, VerdictCode::Forged);

    // Org 2's gate does not accept org 1's code.
    assert_eq!(
        f.store
            .scan(Orq(2), code.as_bytes(), OperatorId(1), &Gate::default(), at)
            .unwrap()
            .verdict,
        VerdictCode::Forged
    );

    // Rotation keeps old codes valid; retiring the old key refuses them.
    let slot = f.store.list_slots(ORQ, None, None, None).unwrap()[0].id;
    let t2 = f.ticket("TKT-2", ActivationMode::Immediate);
    let req = entrada::store::ReserveRequest {
        slot_id: slot,
        ..f.request(&t2, &f.store.get_slot(ORQ, slot).unwrap())
    };
    f.store.reserve_slot(ORQ, &req, now()).unwrap();
    let old_code_2 = f.store.signed_code(ORQ, &t2, now()).unwrap();
    let old_kid = f.store.public_keys(ORQ).unwrap()[0].kid;
    let new_kid = f.store.rotate_signing_key(ORQ, now()).unwrap();
    assert_ne!(old_kid, new_kid);
    let v = f
        .store
        .scan(ORQ, code.as_bytes(), OperatorId(1), &Gate::default(), at)
        .unwrap();
    assert_eq!(
        v.verdict,
        VerdictCode::Admit,
        "a code signed before rotation still admits"
    );
    f.store.retire_signing_key(ORQ, old_kid, now()).unwrap();
    let v = f
        .store
        .scan(
            ORQ,
            old_code_2.as_bytes(),
            OperatorId(1),
            &Gate::default(),
            at,
        )
        .unwrap();
    assert_eq!(
        (v.verdict, v.message.as_str()),
        (VerdictCode::Forged, "Forged code: signing key retired")
    );
    assert_eq!(f.store.get_ticket(ORQ, &t2).unwrap().verified_at, None);
    let fresh = f.store.signed_code(ORQ, &t2, now()).unwrap();
    assert_eq!(
        f.store
            .scan(ORQ, fresh.as_bytes(), OperatorId(1), &Gate::default(), at)
            .unwrap()
            .verdict,
        VerdictCode::Admit
    );
}

#[test]
fn reissued_codes_revoke_the_old_ones() {
    let (f, t, at) = admit_fixture();
    let old = f.store.signed_code(ORQ, &t, now()).unwrap();
    let new = f.store.reissue_code(ORQ, &t, now()).unwrap();
    assert_ne!(old, new);
    let v = f
        .store
        .scan(ORQ, old.as_bytes(), OperatorId(1), &Gate::default(), at)
        .unwrap();
    assert_eq!(v.verdict, VerdictCode::Revoked);
    assert_eq!(
        f.store.get_ticket(ORQ, &t).unwrap().verified_at,
        None,
        "a revoked code records nothing"
    );
    assert_eq!(
        f.store
            .scan(ORQ, new.as_bytes(), OperatorId(1), &Gate::default(), at)
            .unwrap()
            .verdict,
        VerdictCode::Admit
    );
}

#[test]
fn authentic_but_unsynced_and_garbage_scans() {
    let (f, t, at) = admit_fixture();
    let code = f.store.signed_code(ORQ, &t, now()).unwrap();
    // The replica lost the ticket (not synced yet): authentic, operator decides.
    rusqlite::Connection::open(f.db_path())
        .unwrap()
        .execute("DELETE FROM tickets", [])
        .unwrap();
    let v = f
        .store
        .scan(ORQ, code.as_bytes(), OperatorId(1), &Gate::default(), at)
        .unwrap();
    assert_eq!(
        (v.verdict, v.admit),
        (VerdictCode::AuthenticNotSynced, false)
    );
    for garbage in [&b"\xff\xfe"[..], b"", b"hello world", b"ENT7.x.y"] {
        let v = f
            .store
            .scan(ORQ, garbage, OperatorId(1), &Gate::default(), at)
            .unwrap();
        assert_eq!(v.verdict, VerdictCode::Unreadable, "{garbage:?}");
    }
    let v = f
        .store
        .scan(ORQ, b"NO-SUCH-TICKET", OperatorId(1), &Gate::default(), at)
        .unwrap();
    assert_eq!(v.verdict, VerdictCode::UnknownTicket);
}
