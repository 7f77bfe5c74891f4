//! A PostgreSQL database of its own for a test or bench on the test cluster
//! (`ENTRADA_TEST_PG`, as `entrada-store-pg`'s tests): shared by
//! `tests/pg_instances.rs` and `benches/pg_http.rs` (included by path).

pub const ENV: &str = "ENTRADA_TEST_PG";

/// The test cluster's URL; `None` (skip, with a note) without one, a panic
/// under CI, which always runs the PostgreSQL tests.
pub fn pg_url() -> Option<String> {
    match std::env::var(ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{ENV} is not set: CI runs the PostgreSQL tests (scripts/pg.sh start)")
        }
        _ => {
            eprintln!(
                "{ENV} not set: PostgreSQL test skipped (export {ENV}=$(scripts/pg.sh start))"
            );
            None
        }
    }
}

/// A new database on the cluster (its name made of `prefix`, the process id
/// and the clock: no outside input), dropped with this value. Its URL is the
/// cluster's with the database replaced: the cluster URL must be
/// `postgres://…/DB` with no query.
pub struct FreshDb {
    cluster: String,
    name: String,
    pub url: String,
}

impl FreshDb {
    pub fn new(cluster: &str, prefix: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("{prefix}_{}_{nanos}", std::process::id());
        let mut admin = postgres::Client::connect(cluster, postgres::NoTls).unwrap();
        // Not in one batch: CREATE DATABASE may not run inside a transaction.
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let url = format!("{}/{name}", cluster.rsplit_once('/').unwrap().0);
        Self {
            cluster: cluster.to_owned(),
            name,
            url,
        }
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.cluster, postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}
