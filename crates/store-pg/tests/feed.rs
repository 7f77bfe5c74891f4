//! The change feed across concurrent writers: a device that pulls while
//! transactions commit out of the order they wrote in never loses an entry.
//! The device pulls as the server serves it (`SyncStore::changes_since`,
//! paged by `next_cursor` and `has_more`) where it matters; `feed_entries`
//! (the log alone) where only the numbering is under test.
//! (With a feed position taken at write time, a slow transaction's entry
//! lands below a cursor a device already holds, and is skipped forever.)

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use entrada_store::conformance::{now, ORQ};
use entrada_store::VenueStore;
use entrada_store_pg::{FeedEntry, PgStore};

/// Inserts one slot row at `venue` in `tx` (the feed trigger logs it).
fn insert_slot(tx: &mut impl postgres::GenericClient, venue: i64, day: u32, hour: u32) -> String {
    let id = uuid::Uuid::now_v7();
    tx.execute(
        "INSERT INTO reservation_slots (id, date, start_time, end_time, venue_id, total_capacity, orq) \
         VALUES ($1, make_date(2026, 1, $2::INT), make_time($3::INT, 0, 0), make_time($3::INT + 1, 0, 0), $4, 10, 1)",
        &[&id, &(day as i32), &(hour as i32), &venue],
    )
    .unwrap();
    id.to_string()
}

/// Pulls every page after `cursor`, checking the seqs rise; returns the new cursor.
fn pull(store: &PgStore, venue: i64, cursor: i64, seen: &mut Vec<FeedEntry>) -> i64 {
    let mut cursor = cursor;
    loop {
        let page = store
            .feed_entries(ORQ, entrada_domain::VenueId(venue), cursor, 7)
            .unwrap();
        let Some(last) = page.last() else {
            return cursor;
        };
        for e in &page {
            assert!(
                e.seq > cursor,
                "seq {} at or below the cursor {cursor}",
                e.seq
            );
            cursor = e.seq;
        }
        assert_eq!(cursor, last.seq);
        seen.extend(page);
    }
}

/// A device's page size in `pull_changes`: small, so that a pull is many
/// pages and every page boundary is a `next_cursor` to get right.
const PAGE: u32 = 5;

/// Pulls as a device is served, through `SyncStore::changes_since`: pages of
/// `PAGE`, each asked from the `next_cursor` of the one before, while
/// `has_more`. Checks that every seq is above every seq received before (so
/// none comes twice: a `next_cursor` one too low re-sends the page's last
/// entry), that `next_cursor` is the page's last seq, and that a page with
/// more after it is full. With `behind` (the caller's backlog may exceed
/// what a pull numbers, `PULL_BATCHES` batches) a short page with more is
/// accepted too, the pull's numbering being behind: its cursor moves past
/// its last seq (never back). A caller whose backlog cannot exceed that
/// passes `false`: a caught-up pull that says more on a short page fails.
/// Returns the cursor the pull ends at.
fn pull_changes(
    store: &PgStore,
    venue: i64,
    cursor: i64,
    behind: bool,
    seen: &mut Vec<(i64, String, String)>,
) -> i64 {
    use entrada_store::SyncStore;
    let mut cursor = cursor;
    loop {
        let page = store
            .changes_since(ORQ, entrada_domain::VenueId(venue), cursor, PAGE, now())
            .unwrap();
        let mut top = seen.last().map_or(cursor, |(seq, _, _)| *seq).max(cursor);
        for c in &page.changes {
            assert!(
                c.seq > top,
                "seq {} at or below {top}, already received (cursor {cursor})",
                c.seq
            );
            top = c.seq;
            seen.push((c.seq, c.entity.clone(), c.entity_id.clone()));
        }
        let short = page.changes.len() < PAGE as usize;
        if page.has_more && short {
            assert!(
                behind,
                "a page with more is full (the numbering cannot be behind here): \
                 {} changes, cursor {cursor} -> {}",
                page.changes.len(),
                page.next_cursor
            );
            // The numbering is behind: the cursor moves to the highest seq
            // numbered, at or past the page's last.
            assert!(
                page.next_cursor > cursor,
                "a page with more moves the cursor"
            );
            assert!(page.next_cursor >= top, "the cursor never goes back");
        } else {
            match page.changes.last() {
                Some(last) => assert_eq!(
                    page.next_cursor, last.seq,
                    "next_cursor is the page's last seq"
                ),
                None => assert_eq!(page.next_cursor, cursor, "an empty page leaves the cursor"),
            }
        }
        if page.has_more {
            assert!(page.remaining >= 1);
        } else {
            assert_eq!(page.remaining, 0);
        }
        cursor = page.next_cursor;
        if !page.has_more {
            return cursor;
        }
    }
}

/// Every seq the log holds for a device of `venue` (org-wide and its venue's).
fn logged_seqs(url: &str, schema: &str, venue: i64) -> Vec<i64> {
    common::client(url, schema)
        .query(
            "SELECT seq FROM change_log WHERE orq = $1 AND scope IN (0, $2) AND seq IS NOT NULL ORDER BY seq",
            &[&ORQ.0, &venue],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn slot_ids(seen: &[FeedEntry]) -> BTreeSet<String> {
    seen.iter()
        .filter(|e| e.entity == "reservation_slots")
        .map(|e| e.entity_id.clone())
        .collect()
}

#[test]
fn a_slow_writer_commits_after_a_fast_one_and_the_device_still_gets_both() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let venue = store.add_venue(ORQ, "Prado", "UTC", now()).unwrap().id.0;

    let mut slow_client = common::client(&url, &schema);
    let mut slow = slow_client.transaction().unwrap();
    let slow_id = insert_slot(&mut slow, venue, 1, 9); // writes first…
    let mut fast_client = common::client(&url, &schema);
    let fast_id = insert_slot(&mut fast_client, venue, 1, 12); // …commits first

    let mut seen = Vec::new();
    let cursor = pull(&store, venue, 0, &mut seen);
    slow.commit().unwrap();
    pull(&store, venue, cursor, &mut seen);

    assert_eq!(
        slot_ids(&seen),
        BTreeSet::from([slow_id, fast_id]),
        "every committed slot reaches the device"
    );
}

#[test]
fn interleaved_slow_and_fast_writers_while_a_device_pulls_lose_nothing() {
    interleaved_writers_and_a_pulling_device(Numbering::Pulls);
}

/// The same with the server's numberer (`settle_feed`, in batches) running
/// all along, as `entrada serve` runs it (every 200 ms).
#[test]
fn interleaved_writers_a_pulling_device_and_the_background_numberer_lose_nothing() {
    interleaved_writers_and_a_pulling_device(Numbering::Numberer);
}

/// Two instances (two `PgStore`s, two pools), each with its numberer in
/// batches of 3, and pulls that number 3 entries each: pulls come while
/// entries are still pending, the numberers and the pulls of both instances
/// number concurrently, and the device's pages alternate between the two.
#[test]
fn two_instances_numbering_in_small_batches_while_writers_interleave_lose_nothing() {
    interleaved_writers_and_a_pulling_device(Numbering::TwoInstancesInBatchesOf3);
}

#[derive(Clone, Copy, PartialEq)]
enum Numbering {
    /// Only the pulls number.
    Pulls,
    /// One instance, its background numberer running.
    Numberer,
    /// Two instances, numberers and pulls in batches of 3.
    TwoInstancesInBatchesOf3,
}

fn interleaved_writers_and_a_pulling_device(numbering: Numbering) {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = Arc::new(PgStore::connect(&url, common::options(&schema)).unwrap());
    let venue = store.add_venue(ORQ, "Prado", "UTC", now()).unwrap().id.0;
    let mut stores = vec![store.clone()];
    if numbering == Numbering::TwoInstancesInBatchesOf3 {
        stores.push(Arc::new(
            PgStore::connect(&url, common::options(&schema)).unwrap(),
        ));
        for s in &stores {
            s.set_feed_pull_batch(3);
        }
    }

    const WRITERS: u32 = 6;
    const TXS: u32 = 12;
    // Pulls number in batches of 3 (15 entries a pull) on two instances, so
    // a backlog can outrun them; at the default batch (2,000, five a pull)
    // the writers' ~100 entries never do.
    let behind = numbering == Numbering::TwoInstancesInBatchesOf3;
    let done = Arc::new(AtomicBool::new(false));
    let puller = {
        let (stores, done) = (stores.clone(), done.clone());
        let (url, schema) = (url.clone(), schema.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut cursor = 0;
            let mut round = 0;
            while !done.load(Ordering::SeqCst) {
                cursor = pull_changes(
                    &stores[round % stores.len()],
                    venue,
                    cursor,
                    behind,
                    &mut seen,
                );
                round += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            // Everything has committed: the next rounds drain the feed (a
            // pull that numbers a batch leaves the rest for the next ones).
            for _ in 0..1000 {
                let before = seen.len();
                cursor = pull_changes(
                    &stores[round % stores.len()],
                    venue,
                    cursor,
                    behind,
                    &mut seen,
                );
                round += 1;
                if seen.len() == before && pending(&url, &schema) == 0 {
                    break;
                }
            }
            seen
        })
    };
    let numberers: Vec<_> = stores
        .iter()
        .filter(|_| numbering != Numbering::Pulls)
        .map(|store| {
            let (store, done) = (store.clone(), done.clone());
            std::thread::spawn(move || {
                let mut numbered = 0;
                while !done.load(Ordering::SeqCst) {
                    numbered += match numbering {
                        Numbering::TwoInstancesInBatchesOf3 => store.settle_feed_batch(3),
                        _ => store.settle_feed(),
                    }
                    .unwrap();
                    std::thread::sleep(Duration::from_millis(1));
                }
                numbered
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (url, schema) = (url.clone(), schema.clone());
            std::thread::spawn(move || {
                let mut client = common::client(&url, &schema);
                let mut ids = Vec::new();
                for i in 0..TXS {
                    let mut tx = client.transaction().unwrap();
                    ids.push(insert_slot(&mut tx, venue, 1 + w, 1 + i));
                    // Odd writers are slow: they hold their transaction open
                    // (a deterministic spread, 0 to 24 ms) while others commit.
                    let hold = if w % 2 == 1 { (w * 7 + i * 5) % 25 } else { 0 };
                    std::thread::sleep(Duration::from_millis(u64::from(hold)));
                    if i % 3 == 0 {
                        ids.push(insert_slot(&mut tx, venue, 1 + w, 13 + i / 3));
                    }
                    tx.commit().unwrap();
                }
                ids
            })
        })
        .collect();
    let written: BTreeSet<String> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    done.store(true, Ordering::SeqCst);
    let seen = puller.join().unwrap();
    for numberer in numberers {
        assert!(
            numberer.join().unwrap() > 0,
            "each numberer numbered some of the entries (the pulls the rest)"
        );
    }
    assert_eq!(pending(&url, &schema), 0, "every committed entry numbered");

    // Nothing the log holds for the device was skipped, nothing came twice.
    let seqs: Vec<i64> = seen.iter().map(|(seq, _, _)| *seq).collect();
    assert_eq!(
        seqs,
        logged_seqs(&url, &schema, venue),
        "the device got each logged entry once, in order"
    );
    let pulled: BTreeSet<String> = seen
        .iter()
        .filter(|(_, entity, _)| entity == "reservation_slots")
        .map(|(_, _, id)| id.clone())
        .collect();
    let missing: Vec<_> = written.difference(&pulled).collect();
    assert!(
        missing.is_empty(),
        "{} of {} committed slots never reached the device: {missing:?}",
        missing.len(),
        written.len()
    );
    // Each slot once: none was re-logged, so none comes twice.
    assert_eq!(
        seen.iter()
            .filter(|(_, entity, _)| entity == "reservation_slots")
            .count(),
        written.len()
    );
}

/// `n` slots of `venue` from day `day` on, inserted (and committed) in one
/// transaction.
fn insert_slots(url: &str, schema: &str, venue: i64, day: u32, n: u32) -> Vec<String> {
    let mut client = common::client(url, schema);
    let mut tx = client.transaction().unwrap();
    let ids = (0..n)
        .map(|i| insert_slot(&mut tx, venue, day + i / 20, 1 + i % 20))
        .collect();
    tx.commit().unwrap();
    ids
}

fn pending(url: &str, schema: &str) -> i64 {
    common::client(url, schema)
        .query_one("SELECT count(*) FROM change_log WHERE seq IS NULL", &[])
        .unwrap()
        .get(0)
}

#[test]
fn the_numberer_numbers_what_committed_and_leaves_a_running_writer_for_later() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let venue = store.add_venue(ORQ, "Prado", "UTC", now()).unwrap().id.0;

    let mut slow_client = common::client(&url, &schema);
    let mut slow = slow_client.transaction().unwrap();
    let slow_id = insert_slot(&mut slow, venue, 28, 9); // written first, committed last
    let fast = insert_slots(&url, &schema, venue, 1, 30);
    // The venue's entry and the 30 slots are numbered; the slow slot's is
    // not committed, so neither seen nor numbered.
    let committed = pending(&url, &schema);
    assert!(committed > 30);
    assert_eq!(store.settle_feed().unwrap(), committed);
    assert_eq!(pending(&url, &schema), 0);
    let mut seen = Vec::new();
    let cursor = pull(&store, venue, 0, &mut seen);
    slow.commit().unwrap();
    assert_eq!(
        pending(&url, &schema),
        1,
        "written before the numbering, committed after it: pending, not lost"
    );
    assert_eq!(store.settle_feed().unwrap(), 1);
    assert_eq!(pending(&url, &schema), 0);
    pull(&store, venue, cursor, &mut seen);
    let mut want: BTreeSet<String> = fast.into_iter().collect();
    want.insert(slow_id);
    assert_eq!(slot_ids(&seen), want);
    assert_eq!(store.settle_feed().unwrap(), 0, "nothing left to number");
}

/// `has_more` is exact; `remaining` is counted on the first page of a pull
/// and carried (less what each page sent, plus what was numbered since), so
/// it stays exact while nothing already counted changes again.
#[test]
fn a_pull_counts_its_backlog_once_and_carries_it_page_to_page() {
    use entrada_store::SyncStore;
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let venue = store.add_venue(ORQ, "Prado", "UTC", now()).unwrap().id;
    insert_slots(&url, &schema, venue.0, 1, 40);
    store.settle_feed().unwrap();
    let exact = |cursor: i64| -> i64 {
        common::client(&url, &schema)
            .query_one(
                "SELECT count(*) FROM change_log WHERE orq = $1 AND scope IN (0, $2) AND seq > $3",
                &[&ORQ.0, &venue.0, &cursor],
            )
            .unwrap()
            .get(0)
    };
    let total = exact(0) as usize + 5;
    assert!(total > 40);
    let (mut cursor, mut pages, mut got) = (0, 0, 0);
    loop {
        let page = store.changes_since(ORQ, venue, cursor, 7, now()).unwrap();
        pages += 1;
        got += page.changes.len();
        if pages == 3 {
            // Written during the pull: counted on the next page.
            insert_slots(&url, &schema, venue.0, 10, 5);
            store.settle_feed().unwrap();
        }
        cursor = page.next_cursor;
        let left = if pages == 3 {
            exact(cursor) - 5
        } else {
            exact(cursor)
        };
        assert_eq!(page.remaining, left, "page {pages}");
        assert_eq!(page.has_more, left > 0, "page {pages}");
        if !page.has_more {
            break;
        }
    }
    assert_eq!(got, total);
    assert_eq!(pages, total.div_ceil(7), "pages of 7");
    // A full page that is the last one: no more, nothing left.
    let last = store
        .changes_since(ORQ, venue, 0, total as u32, now())
        .unwrap();
    assert_eq!(
        (last.changes.len(), last.has_more, last.remaining),
        (total, false, 0)
    );
}

/// A fresh schema with one venue of `slots` slots, a gate's cursor at the
/// end of its feed, and then the first two slots changed (logged as
/// upserts): where the tests of rows gone or moved behind the triggers
/// start.
struct TwoSlotsChanged {
    url: String,
    schema: String,
    store: PgStore,
    venue: entrada_domain::VenueId,
    ids: Vec<String>,
    cursor: i64,
    client: postgres::Client,
}

fn two_slots_changed(url: String, slots: u32) -> TwoSlotsChanged {
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let venue = store.add_venue(ORQ, "Prado", "UTC", now()).unwrap().id;
    let ids = insert_slots(&url, &schema, venue.0, 1, slots);
    let mut seen = Vec::new();
    let cursor = pull_changes(&store, venue.0, 0, false, &mut seen);
    assert_eq!(seen.len(), 1 + slots as usize, "the venue and its slots");
    let mut client = common::client(&url, &schema);
    client
        .execute(
            "UPDATE reservation_slots SET total_capacity = 11 WHERE id::text = ANY($1)",
            &[&vec![ids[0].clone(), ids[1].clone()]],
        )
        .unwrap();
    TwoSlotsChanged {
        url,
        schema,
        store,
        venue,
        ids,
        cursor,
        client,
    }
}

/// What the page from `cursor` sends, as (entity id, op, with a row),
/// read the two ways a server answers: `changes_since` and the route's
/// JSON text, which a gate must take (`PulledPage::check`).
fn sent_both_ways(
    store: &PgStore,
    venue: entrada_domain::VenueId,
    cursor: i64,
) -> [Vec<(String, String, bool)>; 2] {
    use entrada_store::{PulledPage, SyncStore};
    let page = store.changes_since(ORQ, venue, cursor, 100, now()).unwrap();
    let from_page = page
        .changes
        .iter()
        .map(|c| (c.entity_id.clone(), c.op.clone(), c.row.is_some()))
        .collect();
    let text = store
        .changes_page_json(ORQ, venue, cursor, 100, now())
        .unwrap();
    let pulled: PulledPage = serde_json::from_slice(&text).unwrap();
    pulled.check().expect("a gate takes the page");
    let from_text = pulled
        .changes
        .iter()
        .map(|c| (c.entity_id.clone(), c.op.to_string(), c.row.is_some()))
        .collect();
    [from_page, from_text]
}

/// `(id, op, with a row)` as `sent_both_ways` gives them.
fn sent(expected: &[(&str, &str, bool)]) -> Vec<(String, String, bool)> {
    expected
        .iter()
        .map(|(id, op, row)| (id.to_string(), op.to_string(), *row))
        .collect()
}

/// A log entry whose row was deleted behind the triggers' back (here with
/// the triggers off: `session_replication_role = replica`, as a restore or
/// a hand-made fix might) goes out as a `delete`, in both the page and the
/// route's text, and a gate takes the page (`PulledPage::check`). Before,
/// it went out as an upsert with a null row, which the gate refuses whole:
/// its pulls stopped at that entry for good.
#[test]
fn an_entry_whose_row_was_deleted_behind_the_triggers_goes_as_a_delete() {
    let Some(url) = common::url() else { return };
    let TwoSlotsChanged {
        store,
        venue,
        ids,
        cursor,
        mut client,
        ..
    } = two_slots_changed(url, 3);
    // One of the two changed slots goes with the triggers off: its entry
    // stays an upsert.
    client
        .batch_execute(&format!(
            "SET session_replication_role = replica; \
             DELETE FROM reservation_slots WHERE id = '{}'; \
             RESET session_replication_role",
            ids[0]
        ))
        .unwrap();
    let logged: Vec<(String, String)> = client
        .query(
            "SELECT entity_id, op FROM change_log WHERE entity = 'reservation_slots' ORDER BY written",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(
        logged.contains(&(ids[0].clone(), "upsert".to_owned())),
        "the delete bypassed the log: {logged:?}"
    );
    let expected = sent(&[(&ids[0], "delete", false), (&ids[1], "upsert", true)]);
    assert_eq!(
        sent_both_ways(&store, venue, cursor),
        [expected.clone(), expected]
    );
}

/// A page's rows are looked up by their key and the pulling org: a row
/// that another org holds under a logged key by now (moved behind the
/// triggers; or a key deleted and re-used between a page's two reads) is
/// not this org's, and goes out as a delete, not with the other org's row.
#[test]
fn a_logged_key_whose_row_is_now_another_orgs_is_not_sent() {
    let Some(url) = common::url() else { return };
    let TwoSlotsChanged {
        store,
        venue,
        ids,
        cursor,
        mut client,
        ..
    } = two_slots_changed(url, 2);
    // The first slot now belongs to org 2, its log entry still ORQ's.
    client
        .batch_execute(&format!(
            "SET session_replication_role = replica; \
             UPDATE reservation_slots SET orq = {} WHERE id = '{}'; \
             RESET session_replication_role",
            ORQ.0 + 1,
            ids[0]
        ))
        .unwrap();
    let expected = sent(&[(&ids[0], "delete", false), (&ids[1], "upsert", true)]);
    assert_eq!(
        sent_both_ways(&store, venue, cursor),
        [expected.clone(), expected]
    );
}

/// TRUNCATE is not MVCC-safe: a page whose snapshot was taken (its log
/// read) before a TRUNCATE and reload committed sees the table empty when
/// it reads the rows after. Those rows exist: they go out as upserts with
/// their rows (looked up again in a fresh read), not as deletes.
#[test]
fn a_row_truncated_and_reloaded_during_a_page_goes_as_an_upsert() {
    use entrada_store::{PulledPage, SyncStore};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let Some(url) = common::url() else { return };
    let TwoSlotsChanged {
        url,
        schema,
        store,
        venue,
        ids,
        cursor,
        mut client,
    } = two_slots_changed(url, 3);
    let logged = |client: &mut postgres::Client| -> i64 {
        client
            .query_one("SELECT count(*) FROM change_log", &[])
            .unwrap()
            .get(0)
    };
    let entries = logged(&mut client);
    // Between the page's log read and its row reads: the slots table is
    // emptied and reloaded with the same rows, triggers off (a restore).
    let reloads = Arc::new(AtomicUsize::new(0));
    let reload = {
        let (url, schema, reloads) = (url.clone(), schema.clone(), reloads.clone());
        move || {
            let mut client = common::client(&url, &schema);
            // The stored columns (a generated one is computed again).
            let cols: String = client
                .query_one(
                    "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) \
                     FROM information_schema.columns WHERE table_schema = current_schema() \
                     AND table_name = 'reservation_slots' AND is_generated = 'NEVER'",
                    &[],
                )
                .unwrap()
                .get(0);
            client
                .batch_execute(&format!(
                    "BEGIN; \
                     SET LOCAL session_replication_role = replica; \
                     CREATE TEMP TABLE keep ON COMMIT DROP AS SELECT {cols} FROM reservation_slots; \
                     TRUNCATE reservation_slots, ticket_reservations; \
                     INSERT INTO reservation_slots ({cols}) SELECT {cols} FROM keep; \
                     COMMIT"
                ))
                .unwrap();
            reloads.fetch_add(1, Ordering::SeqCst);
        }
    };
    store.set_feed_page_pause(reload.clone());
    let page = store.changes_since(ORQ, venue, cursor, 100, now()).unwrap();
    assert_eq!(
        reloads.load(Ordering::SeqCst),
        1,
        "the reload ran in the page"
    );
    let sent: Vec<(&str, &str, Option<i64>)> = page
        .changes
        .iter()
        .map(|c| {
            let capacity = c
                .row
                .as_ref()
                .map(|r| r["total_capacity"].as_i64().unwrap());
            (c.entity_id.as_str(), c.op.as_str(), capacity)
        })
        .collect();
    assert_eq!(
        sent,
        [
            (ids[0].as_str(), "upsert", Some(11)),
            (ids[1].as_str(), "upsert", Some(11))
        ],
        "rows that exist go with their rows, not as deletes"
    );

    store.set_feed_page_pause(reload);
    let text = store
        .changes_page_json(ORQ, venue, cursor, 100, now())
        .unwrap();
    assert_eq!(
        reloads.load(Ordering::SeqCst),
        2,
        "the reload ran in the page"
    );
    let pulled: PulledPage = serde_json::from_slice(&text).unwrap();
    pulled.check().expect("a gate takes the page");
    let sent: Vec<(&str, &str, bool)> = pulled
        .changes
        .iter()
        .map(|c| (c.entity_id.as_str(), &*c.op, c.row.is_some()))
        .collect();
    assert_eq!(
        sent,
        [
            (ids[0].as_str(), "upsert", true),
            (ids[1].as_str(), "upsert", true)
        ]
    );
    assert_eq!(logged(&mut client), entries, "the reloads logged nothing");
}

/// The rows of a page are found by the log's `entity_id` as written: one
/// written otherwise than PostgreSQL prints the key (an upper-case UUID)
/// finds its row, so it is not taken for a row that is gone (a delete).
#[test]
fn a_logged_key_written_otherwise_still_finds_its_row() {
    use entrada_store::SyncStore;
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let venue = store.add_venue(ORQ, "Prado", "UTC", now()).unwrap().id;
    let ids = insert_slots(&url, &schema, venue.0, 1, 2);
    let mut seen = Vec::new();
    let cursor = pull_changes(&store, venue.0, 0, false, &mut seen);
    let mut client = common::client(&url, &schema);
    client
        .execute(
            "UPDATE reservation_slots SET total_capacity = 11 WHERE id::text = $1",
            &[&ids[0]],
        )
        .unwrap();
    let upper = ids[0].to_uppercase();
    assert_eq!(
        client
            .execute(
                "UPDATE change_log SET entity_id = $2 WHERE entity = 'reservation_slots' AND entity_id = $1",
                &[&ids[0], &upper],
            )
            .unwrap(),
        1
    );
    let page = store.changes_since(ORQ, venue, cursor, 100, now()).unwrap();
    let sent: Vec<(&str, &str, Option<&str>)> = page
        .changes
        .iter()
        .map(|c| {
            let id = c.row.as_ref().map(|r| r["id"].as_str().unwrap());
            (c.entity_id.as_str(), c.op.as_str(), id)
        })
        .collect();
    assert_eq!(sent, [(upper.as_str(), "upsert", Some(ids[0].as_str()))]);
}

/// A pull numbers the backlog in batches (each its own transaction) until
/// none is left, so it gets everything committed before it, in order.
#[test]
fn a_pull_numbers_the_backlog_in_batches_and_gets_all_of_it() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let venue = store.add_venue(ORQ, "Prado", "UTC", now()).unwrap().id.0;
    store.settle_feed().unwrap();
    let ids = insert_slots(&url, &schema, venue, 1, 10);
    store.set_feed_pull_batch(3);
    let mut seen = Vec::new();
    // 10 entries, fewer than the 15 a pull numbers: never behind.
    pull_changes(&store, venue, 0, false, &mut seen);
    assert_eq!(
        pending(&url, &schema),
        0,
        "numbered in batches of 3, all of it"
    );
    assert_eq!(
        seen.len(),
        1 + 10,
        "the venue and the 10 slots, in one pull"
    );
    let seqs: Vec<i64> = seen.iter().map(|(seq, _, _)| *seq).collect();
    assert_eq!(seqs, logged_seqs(&url, &schema, venue));
    let got: Vec<String> = seen[1..].iter().map(|(_, _, id)| id.clone()).collect();
    assert_eq!(got, ids, "in the order they were written");
}

/// A pull numbers a bounded share of the backlog (`PULL_BATCHES` batches:
/// 15 entries at batches of 3), not all of it: one request does a bounded
/// amount of work whatever was imported before it. What it leaves pending
/// still reaches the device in the same pull: a page says it has more while
/// the numbering is behind, and moves the cursor even when the entries it
/// numbered were another venue's (the gate refuses a page with more that
/// does not). Fails on a pull that numbers the whole backlog first.
#[test]
fn a_pull_numbers_a_bounded_share_of_the_backlog_and_the_device_still_gets_it_all() {
    use entrada_store::SyncStore;
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let venue = store.add_venue(ORQ, "Prado", "UTC", now()).unwrap().id.0;
    let other = store
        .add_venue(ORQ, "Reina Sofia", "UTC", now())
        .unwrap()
        .id
        .0;
    store.settle_feed().unwrap();
    let mut seen = Vec::new();
    let cursor = pull_changes(&store, venue, 0, false, &mut seen);
    // Another venue's import first, then this venue's: written in that order.
    insert_slots(&url, &schema, other, 1, 40);
    let ids = insert_slots(&url, &schema, venue, 1, 4);
    store.set_feed_pull_batch(3);
    let backlog = pending(&url, &schema);
    assert!(backlog >= 44);

    let page = store
        .changes_since(ORQ, entrada_domain::VenueId(venue), cursor, PAGE, now())
        .unwrap();
    assert_eq!(
        pending(&url, &schema),
        backlog - 15,
        "the pull numbered 5 batches of 3, not the whole backlog"
    );
    assert!(
        page.changes.is_empty(),
        "the 15 numbered were the other venue's"
    );
    assert!(page.has_more, "entries still pending: more to come");
    assert!(page.next_cursor > cursor, "the cursor moves");

    let before = seen.len();
    // 29 still pending, more than the 15 a pull numbers.
    pull_changes(&store, venue, page.next_cursor, true, &mut seen);
    assert_eq!(
        pending(&url, &schema),
        0,
        "numbered by the pages that followed"
    );
    let got: Vec<String> = seen[before..].iter().map(|(_, _, id)| id.clone()).collect();
    assert_eq!(got, ids, "this venue's slots, each once, in write order");
    let seqs: Vec<i64> = seen.iter().map(|(seq, _, _)| *seq).collect();
    assert_eq!(seqs, logged_seqs(&url, &schema, venue));
}

/// On a `change_log` never analyzed (a bulk import into a new database,
/// before autovacuum), a numbering batch fetches about its own entries: the
/// planner guessed a few hundred pending rows, fetched every pending entry
/// and sorted them all for each batch, so numbering a backlog in batches
/// was quadratic (pg_http's first sync after ~243,000 entries: a 408 at the
/// server's 15 s request timeout). Counted as the rows the batch's
/// transaction fetched from the table, not timed. Fails without the
/// numbering's planner settings (`NUMBERING_PLAN`): ~22,000 rows.
#[test]
fn a_numbering_batch_reads_its_own_entries_without_statistics() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let mut client = common::client(&url, &schema);
    client
        .batch_execute("ALTER TABLE change_log SET (autovacuum_enabled = off)")
        .unwrap();
    let venue = store.add_venue(ORQ, "Prado", "UTC", now()).unwrap().id.0;
    store.settle_feed().unwrap();
    bulk_slots(&url, &schema, venue, 0, 20_000);
    let analyzed: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'change_log' \
             AND schemaname = current_schema() AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(analyzed, 0, "the test needs a table never analyzed");
    for _ in 0..3 {
        let (numbered, read) = store.feed_numbering_reads(2_000).unwrap();
        assert_eq!(numbered, 2_000);
        assert!(
            read <= 3 * 2_000,
            "a batch of 2,000 fetched {read} rows of change_log (20,000 were pending)"
        );
    }
}

fn vacuums(url: &str, schema: &str) -> i64 {
    common::client(url, schema)
        .query_one(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'change_log' AND schemaname = current_schema()",
            &[],
        )
        .unwrap()
        .get(0)
}

/// `n` slots of `venue` in one INSERT (one committed transaction).
fn bulk_slots(url: &str, schema: &str, venue: i64, from_day: i32, n: i32) {
    common::client(url, schema)
        .execute(
            "INSERT INTO reservation_slots (id, date, start_time, end_time, venue_id, total_capacity, orq) \
             SELECT gen_random_uuid(), make_date(2026, 1, 1) + ($2 + i / 23), make_time(i % 23, 0, 0), make_time(i % 23 + 1, 0, 0), $1, 10, 1 \
             FROM generate_series(0, $3 - 1) i",
            &[&venue, &from_day, &n],
        )
        .unwrap();
}

/// Pulls never vacuum; the numberer vacuums after numbering a bulk import,
/// at most once in `VACUUM_EVERY` (5 minutes) per instance.
#[test]
fn only_the_numberer_vacuums_after_a_bulk_import_and_not_again_soon() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let venue = store.add_venue(ORQ, "Prado", "UTC", now()).unwrap().id.0;
    // The numberer's VACUUM skips a table autovacuum is working on (SKIP_LOCKED),
    // and 36,000 rows would wake autovacuum: only our vacuums are counted.
    common::client(&url, &schema)
        .batch_execute("ALTER TABLE change_log SET (autovacuum_enabled = false)")
        .unwrap();
    assert_eq!(store.settle_feed().unwrap(), 1, "the venue: no vacuum");
    let before = vacuums(&url, &schema);
    bulk_slots(&url, &schema, venue, 0, 12_000);
    // A pull numbers all 12,000 in batches of 2,000: no vacuum.
    for _ in 0..6 {
        use entrada_store::SyncStore;
        store
            .changes_since(ORQ, entrada_domain::VenueId(venue), 0, 1, now())
            .unwrap();
    }
    assert_eq!(pending(&url, &schema), 0);
    assert_eq!(vacuums(&url, &schema), before, "a pull never vacuums");
    bulk_slots(&url, &schema, venue, 1000, 12_000);
    assert_eq!(store.settle_feed().unwrap(), 12_000);
    assert_eq!(
        vacuums(&url, &schema),
        before + 1,
        "after the bulk numbering"
    );
    bulk_slots(&url, &schema, venue, 2000, 12_000);
    assert_eq!(store.settle_feed().unwrap(), 12_000);
    assert_eq!(
        vacuums(&url, &schema),
        before + 1,
        "not again within 5 minutes"
    );
}

/// A verification reaches the venue's devices: its ticket and its
/// reservation come in the feed after it, and the rows they name are the
/// verified ones. Self-contained (its own setup and pulls).
#[test]
fn a_verification_puts_the_ticket_and_its_reservation_in_the_venues_feed() {
    use entrada_domain::{
        ActivationMode, Contact, Gate, NewSlot, NewTicket, OperatorId, ReservationId,
        ReservationStatus, TicketCode, TicketStatus,
    };
    use entrada_store::{GateStore, ReservationStore, ReserveRequest, SlotStore, TicketStore};

    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let venue = store.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
    let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(10)).unwrap();
    let slot = store.create_slot(ORQ, &new, now()).unwrap();
    let t = NewTicket::plain("T-1", ActivationMode::Immediate).unwrap();
    store.insert_tickets(ORQ, &[t], now()).unwrap();
    let code = TicketCode::parse("T-1").unwrap();
    let req = ReserveRequest {
        ticket: code.clone(),
        slot_id: slot.id,
        contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
    };
    let r = store.reserve_slot(ORQ, &req, now()).unwrap();
    let cursor = pull(&store, venue.id.0, 0, &mut Vec::new());

    let at_gate = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2025, 12, 1, 10, 0, 0).unwrap();
    let gate = Gate {
        venue_id: Some(venue.id),
        ..Gate::default()
    };
    store
        .verify_ticket(ORQ, &code, OperatorId(5), &gate, at_gate)
        .unwrap();
    let mut seen = Vec::new();
    pull(&store, venue.id.0, cursor, &mut seen);

    let ids = |entity: &str| -> Vec<String> {
        seen.iter()
            .filter(|e| e.entity == entity)
            .map(|e| e.entity_id.clone())
            .collect()
    };
    assert_eq!(ids("tickets"), vec![code.to_string()], "{seen:?}");
    assert_eq!(
        ids("ticket_reservations"),
        vec![r.id.0.to_string()],
        "{seen:?}"
    );
    // What a device then reads for those entries: the verified rows.
    let ticket = store
        .get_ticket(ORQ, &TicketCode::parse(&ids("tickets")[0]).unwrap())
        .unwrap();
    assert_eq!(
        (ticket.status, ticket.verified_at, ticket.verified_by),
        (TicketStatus::Verified, Some(at_gate), Some(OperatorId(5)))
    );
    let reservation_id = ReservationId(ids("ticket_reservations")[0].parse().unwrap());
    let reservation = store.get_reservation(ORQ, reservation_id).unwrap();
    assert_eq!(reservation.status, ReservationStatus::Verified);
    assert_eq!(reservation.updated_at, at_gate);
}

/// The route's page (`changes_page_json`, each row's JSON written straight
/// from its columns) is byte for byte what serde_json writes for
/// `changes_since`'s page (rows built as values), page after page, with odd
/// values in every kind of column a row carries: escapes, control and
/// non-ASCII characters, i64's largest, microseconds, BYTEA, JSONB with
/// odd strings and numbers, NULLs, JSONB NULL, BOOL true, DATE and TIME;
/// every synced entity and a delete (`row: null`). So a gate of any version reads the same
/// page from it.
#[test]
fn a_pages_json_text_is_the_serialised_page() {
    use entrada_domain::{ActivationMode, Contact, NewSlot, NewTicket, TicketCode};
    use entrada_store::{ReservationStore, ReserveRequest, SlotStore, SyncStore, TicketStore};

    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let venue = store
        .add_venue(ORQ, "Prado \"Nacional\" \\ é 😀", "UTC", now())
        .unwrap();
    let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(10)).unwrap();
    let slot = store.create_slot(ORQ, &new, now()).unwrap();
    let tickets: Vec<NewTicket> = (0..3)
        .map(|i| NewTicket::plain(&format!("T-{i}"), ActivationMode::Immediate).unwrap())
        .collect();
    store.insert_tickets(ORQ, &tickets, now()).unwrap();
    for i in 0..2 {
        let req = ReserveRequest {
            ticket: TicketCode::parse(&format!("T-{i}")).unwrap(),
            slot_id: slot.id,
            contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
        };
        store.reserve_slot(ORQ, &req, now()).unwrap();
    }
    let mut c = common::client(&url, &schema);
    c.execute(
        "UPDATE tickets SET customer_email = $1, customer_phone = NULL, order_id = $2, \
         user_id = -1, code_serial = $2, entitlements = $3::text::jsonb, \
         expires_at = '2026-01-01 10:00:00.123456+00', reserved_at = '1970-01-01 00:00:00+00' \
         WHERE ticket_code = 'T-0'",
        &[
            &"quo\"te \\ back\n\t\u{1}\u{7f} é 😀 </script> \u{2028}",
            &i64::MAX,
            &r#"{"z": [1, 2.5, -0.0, 1e300, 12345678901234567890, "x\"y\u0001"], "a": {"": null, "é": true}}"#,
        ],
    )
    .unwrap();
    c.execute(
        "INSERT INTO signing_keys (orq, public_key, private_key, created_at) \
         VALUES ($1, decode(repeat('00ff7f', 10) || '0a1b', 'hex'), NULL, '2025-06-30 23:59:59.999+00')",
        &[&ORQ.0],
    )
    .unwrap();
    c.execute(
        "INSERT INTO sync_conflicts (orq, kind, ticket_code, first_at, second_at, second_event_id, \
         detected_at, venue_id, facts) VALUES ($1, 'DOUBLE_ENTRY', 'T-0', now(), now(), \
         '01890a5d-ac96-774b-bcce-b302099a8057', now(), $2, '{\"note\": \"a\\\\b\\n\", \"n\": [-9223372036854775808]}')",
        &[&ORQ.0, &venue.id.0],
    )
    .unwrap();
    // The rest of the types and entities: TIME (a closing time) and BOOL
    // true on venues, DATE/TIME on slots, an operator, org settings,
    // JSONB NULL (facts), and a delete (a removed slot: `row: null`).
    c.execute(
        "UPDATE venues SET closing_time = '23:59:58', reentry_allowed = true WHERE id = $1",
        &[&venue.id.0],
    )
    .unwrap();
    c.execute(
        "INSERT INTO operators (orq, role, display_name, created_at, updated_at) \
         VALUES ($1, 'supervisor', 'Ana \\ \"Ñ\"', now(), now())",
        &[&ORQ.0],
    )
    .unwrap();
    c.execute(
        "INSERT INTO org_settings (orq, signed_codes_only, updated_at) VALUES ($1, true, now()) \
         ON CONFLICT (orq) DO UPDATE SET signed_codes_only = true",
        &[&ORQ.0],
    )
    .unwrap();
    c.execute(
        "INSERT INTO sync_conflicts (orq, kind, ticket_code, first_at, second_at, second_event_id, \
         detected_at, venue_id, facts) VALUES ($1, 'DOUBLE_ENTRY', 'T-1', now(), now(), \
         '01890a5d-ac96-774b-bcce-b302099a8058', now(), $2, NULL)",
        &[&ORQ.0, &venue.id.0],
    )
    .unwrap();
    let new = NewSlot::validate(venue.id.0, "2025-12-02", "09:00", "12:00", Some(5)).unwrap();
    let gone = store.create_slot(ORQ, &new, now()).unwrap();
    store.remove_slot(ORQ, gone.id, now()).unwrap();
    store.settle_feed().unwrap();

    let at = now();
    let (mut cursor, mut pages, mut changes) = (0, 0, 0);
    loop {
        let page = store.changes_since(ORQ, venue.id, cursor, 3, at).unwrap();
        // Both calls share `FeedCounts`; the second takes no carried count
        // for this cursor (the first took it) and counts the same unchanged
        // feed, so `remaining` matches exactly.
        let text = store
            .changes_page_json(ORQ, venue.id, cursor, 3, at)
            .unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            serde_json::to_string(&page).unwrap(),
            "page {pages} from cursor {cursor}"
        );
        pages += 1;
        changes += page.changes.len();
        cursor = page.next_cursor;
        if !page.has_more {
            break;
        }
    }
    // Several pages, and the odd rows were in them (each entity's last
    // change is what the log keeps).
    assert!(
        changes >= 8 && pages >= 3,
        "{changes} changes in {pages} pages"
    );
    let all = store.changes_since(ORQ, venue.id, 0, 100, at).unwrap();
    assert!(
        all.changes.iter().any(|c| c.entity == "reservation_slots"
            && c.entity_id == gone.id.0.to_string()
            && c.op == "delete"
            && c.row.is_none()),
        "no delete of the removed slot in the feed"
    );
    let row = |entity: &str| {
        all.changes
            .iter()
            .find(|c| c.entity == entity)
            .and_then(|c| c.row.clone())
            .unwrap()
    };
    assert_eq!(row("venues")["closing_time"], "23:59:58");
    assert_eq!(row("venues")["reentry_allowed"], 1);
    assert_eq!(row("org_settings")["signed_codes_only"], 1);
    assert_eq!(row("reservation_slots")["start_time"], "09:00:00");
    assert!(all
        .changes
        .iter()
        .any(|c| c.entity == "sync_conflicts"
            && c.row.as_ref().is_some_and(|r| r["facts"].is_null())));
    for entity in [
        "venues",
        "operators",
        "org_settings",
        "signing_keys",
        "reservation_slots",
        "tickets",
        "ticket_reservations",
        "sync_conflicts",
    ] {
        assert!(
            all.changes
                .iter()
                .any(|c| c.entity == entity && c.row.is_some()),
            "no {entity} row in the feed"
        );
    }
    let odd = all
        .changes
        .iter()
        .rev()
        .find(|c| c.entity == "tickets" && c.entity_id == "T-0")
        .and_then(|c| c.row.clone())
        .unwrap();
    assert_eq!(odd["code_serial"], serde_json::json!(i64::MAX));
    assert_eq!(odd["expires_at"], "2026-01-01T10:00:00.123Z");
}

/// 0019's `log_ticket` and `log_ticket_reservation` (0001's and 0013's
/// bodies, 0018's plan mode), cut from the migrations' own text: the feed
/// as it was before 0020's fast paths.
fn triggers_before_0020() -> String {
    const SCHEMA: &str = include_str!("../migrations/0001_schema.sql");
    const LOOKUPS: &str = include_str!("../migrations/0013_feed_trigger_lookups.sql");
    const PLANS: &str = include_str!("../migrations/0018_feed_trigger_plans.sql");
    // From `start` to the end of the dollar-quoted body that follows it.
    fn function<'a>(text: &'a str, start: &str) -> &'a str {
        let from = text
            .find(start)
            .unwrap_or_else(|| panic!("{start} is gone"));
        let to = from + text[from..].find("\n$$;").unwrap() + "\n$$;".len();
        &text[from..to]
    }
    let log_ticket = function(SCHEMA, "CREATE FUNCTION log_ticket()").replacen(
        "CREATE FUNCTION",
        "CREATE OR REPLACE FUNCTION",
        1,
    );
    let log_reservation = function(
        LOOKUPS,
        "CREATE OR REPLACE FUNCTION log_ticket_reservation()",
    );
    let plan_modes: Vec<&str> = PLANS
        .lines()
        .filter(|l| {
            l.starts_with("ALTER FUNCTION log_ticket() ")
                || l.starts_with("ALTER FUNCTION log_ticket_reservation() ")
        })
        .collect();
    assert_eq!(plan_modes.len(), 2, "0018 sets both functions' plan mode");
    format!(
        "{log_ticket}\n{log_reservation}\n{}\n",
        plan_modes.join("\n")
    )
}

/// What `feed_rows` reads: entity, entity id (reservation and slot ids as
/// their ticket and venue), op, scope, pending; in write order.
type FeedRow = (String, String, String, Option<i64>, bool);

/// The change log after a scenario run through the store (reservations,
/// verifications in one batch and alone) and a few rows moved or logged
/// by SQL into each state the reservation trigger treats apart: a
/// reservation moved to another venue and one moved back, a stale
/// `scope_exit` of the ticket in its own venue, the reservation's entry in
/// another venue's scope, the ticket's entry missing, and a reservation
/// updated alone. With `before`, on 0019's trigger functions.
fn feed_after_scenario(url: &str, before: bool) -> Vec<FeedRow> {
    use chrono::TimeZone;
    use entrada_domain::{
        ActivationMode, Contact, Gate, NewSlot, NewTicket, OperatorId, TicketCode,
    };
    use entrada_store::{GateStore, ReservationStore, ReserveRequest, SlotStore, TicketStore};
    let schema = common::fresh_schema(url);
    let store = PgStore::connect(url, common::options(&schema)).unwrap();
    let mut client = common::client(url, &schema);
    if before {
        client.batch_execute(&triggers_before_0020()).unwrap();
    }
    let a = store.add_venue(ORQ, "A", "UTC", now()).unwrap();
    let b = store.add_venue(ORQ, "B", "UTC", now()).unwrap();
    let slot = |venue: entrada_domain::VenueId| {
        let new = NewSlot::validate(venue.0, "2025-12-01", "09:00", "12:00", Some(100)).unwrap();
        store.create_slot(ORQ, &new, now()).unwrap().id
    };
    let (slot_a, slot_b) = (slot(a.id), slot(b.id));
    let codes: Vec<TicketCode> = (0..9)
        .map(|i| TicketCode::parse(&format!("T-{i}")).unwrap())
        .collect();
    let new: Vec<NewTicket> = codes
        .iter()
        .map(|c| NewTicket::plain(c.as_str(), ActivationMode::Immediate).unwrap())
        .collect();
    store.insert_tickets(ORQ, &new, now()).unwrap();
    for code in &codes[..8] {
        let req = ReserveRequest {
            ticket: code.clone(),
            slot_id: slot_a,
            contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
        };
        store.reserve_slot(ORQ, &req, now()).unwrap();
    }
    store.settle_feed().unwrap();
    let (a_id, b_id, slot_a, slot_b) = (a.id.0, b.id.0, slot_a.0, slot_b.0);
    client
        .execute(
            "UPDATE ticket_reservations SET slot_id = $1 WHERE ticket_id = 'T-3'",
            &[&slot_b],
        )
        .unwrap();
    for to in [slot_b, slot_a] {
        client
            .execute(
                "UPDATE ticket_reservations SET slot_id = $1 WHERE ticket_id = 'T-4'",
                &[&to],
            )
            .unwrap();
    }
    client
        .execute(
            "INSERT INTO change_log (orq, entity, entity_id, op, scope) \
             VALUES (1, 'scope_exit', $1 || '/tickets/T-5', 'delete', $2)",
            &[&a_id.to_string(), &a_id],
        )
        .unwrap();
    client
        .execute(
            "UPDATE change_log SET scope = $1 WHERE entity = 'ticket_reservations' \
             AND entity_id = (SELECT id::text FROM ticket_reservations WHERE ticket_id = 'T-6')",
            &[&b_id],
        )
        .unwrap();
    client
        .batch_execute(
            "DELETE FROM change_log WHERE entity = 'tickets' AND entity_id = 'T-7'; \
             UPDATE ticket_reservations SET updated_at = updated_at + interval '1 second' \
             WHERE ticket_id IN ('T-1', 'T-7')",
        )
        .unwrap();
    let at = chrono::Utc.with_ymd_and_hms(2025, 12, 1, 10, 0, 0).unwrap();
    let items: Vec<entrada_store_pg::TestItem> = ["T-0", "T-3", "T-5", "T-6"]
        .iter()
        .map(|c| {
            (
                ORQ,
                TicketCode::parse(c).unwrap(),
                OperatorId(5),
                Gate::default(),
                at,
            )
        })
        .collect();
    for answer in store.verify_tickets_together(&items) {
        assert!(answer.as_ref().is_ok_and(|v| v.admit), "{answer:?}");
    }
    let v = store
        .verify_ticket(ORQ, &codes[1], OperatorId(5), &Gate::default(), at)
        .unwrap();
    assert!(v.admit, "{v:?}");
    // Reservation and slot ids differ between two runs: named by their
    // ticket and their venue.
    let mut names: Vec<(String, String)> = client
        .query(
            "SELECT id::text, 'r:' || ticket_id FROM ticket_reservations",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    names.extend([
        (slot_a.to_string(), format!("s:{a_id}")),
        (slot_b.to_string(), format!("s:{b_id}")),
    ]);
    client
        .query(
            "SELECT entity, entity_id, op, scope, seq IS NULL FROM change_log ORDER BY written",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            let mut id: String = r.get(1);
            for (uuid, name) in &names {
                id = id.replace(uuid.as_str(), name);
            }
            (r.get(0), id, r.get(2), r.get(3), r.get(4))
        })
        .collect()
}

/// 0020's fast paths in the ticket and reservation triggers skip only
/// statements that would have changed nothing: after the same writes, the
/// change log holds the same rows (entity, id, op, scope, pending or not)
/// in the same write order as with 0019's trigger functions, through
/// verifications (batched and alone) and each state that needs the
/// trigger's full path. Fails if the fast path is taken where one of
/// those statements would have written (a stale `scope_exit` left, no
/// `scope_exit` for an entry in another venue, a ticket not logged).
#[test]
fn the_feed_triggers_log_the_same_rows_as_before_their_fast_paths() {
    let Some(url) = common::url() else { return };
    let now = feed_after_scenario(&url, false);
    let before = feed_after_scenario(&url, true);
    assert_eq!(now, before);
    // The scenario reached the states it is for.
    let has = |entity: &str, id: &str| now.iter().any(|r| r.0 == entity && r.1 == id);
    assert!(has("scope_exit", "1/tickets/T-3"), "{now:#?}");
    assert!(has("scope_exit", "2/ticket_reservations/r:T-6"), "{now:#?}");
    assert!(!has("scope_exit", "1/tickets/T-5"), "{now:#?}");
    assert!(has("tickets", "T-7"), "{now:#?}");
}
