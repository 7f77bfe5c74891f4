//! The pool tests no connection before handing it out (that cost a round
//! trip per call); a connection found dead by a call is dropped instead and
//! the call, if nothing of it ran yet, runs again on another. What a
//! failover leaves behind is simulated here by terminating every backend
//! of the store while its connections sit idle in the pool: the next calls
//! (a write, a read transaction, a single-statement look-up) must succeed
//! on new connections, with no error to the caller.

mod common;

use entrada_domain::Role;
use entrada_store::conformance::{now, ORQ};
use entrada_store::{TokenStore, VenueStore};
use entrada_store_pg::PgStore;

/// The store's backends (by the application name its URL sets).
fn backends(admin: &mut postgres::Client, app: &str) -> Vec<i32> {
    admin
        .query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid",
            &[&app],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn calls_after_the_pools_backends_were_killed_succeed_on_new_connections() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let app = format!("reconnect_{}", std::process::id());
    let sep = if url.contains('?') { '&' } else { '?' };
    let store = PgStore::connect(
        &format!("{url}{sep}application_name={app}"),
        // No token cache: each round's look-up must reach the database.
        entrada_store_pg::PgOptions {
            token_cache_ttl: std::time::Duration::ZERO,
            ..common::options(&schema)
        },
    )
    .unwrap();
    let venue = store.add_venue(ORQ, "Zoo", "UTC", now()).unwrap();
    let (token, _) = store
        .create_token(ORQ, Role::Admin, None, None, now())
        .unwrap();
    // Four callers at once: the pool (4) holds several idle connections.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..20 {
                    store.get_venue(ORQ, venue.id).unwrap();
                }
            });
        }
    });
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let killed = backends(&mut admin, &app);
    assert!(!killed.is_empty(), "the pool holds connections");
    for pid in &killed {
        admin
            .execute("SELECT pg_terminate_backend($1)", &[pid])
            .unwrap();
    }
    // Terminated backends leave pg_stat_activity once they have exited.
    let started = std::time::Instant::now();
    while backends(&mut admin, &app)
        .iter()
        .any(|p| killed.contains(p))
    {
        assert!(started.elapsed().as_secs() < 10, "backends still there");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    // Every call finds a dead connection first, while the pool has one.
    for round in 0..killed.len() + 1 {
        let principal = store
            .principal_for_token(&token, now())
            .unwrap_or_else(|e| panic!("round {round}: look-up: {e}"));
        assert_eq!(principal.map(|p| p.role), Some(Role::Admin));
        assert_eq!(
            store
                .get_venue(ORQ, venue.id)
                .unwrap_or_else(|e| panic!("round {round}: read: {e}"))
                .name,
            "Zoo"
        );
        store
            .add_venue(ORQ, &format!("Zoo {round}"), "UTC", now())
            .unwrap_or_else(|e| panic!("round {round}: write: {e}"));
    }
    let now_serving = backends(&mut admin, &app);
    assert!(!now_serving.is_empty());
    assert!(
        now_serving.iter().all(|p| !killed.contains(p)),
        "new connections: {now_serving:?} vs killed {killed:?}"
    );
    drop(store);
    let _ = admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
}
