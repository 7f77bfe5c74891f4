//! Which engine `--db` names: a SQLite file path, or a `postgres://` /
//! `postgresql://` URL (multi-host, `target_session_attrs=read-write`,
//! `sslmode` as libpq spells them) for the server's PostgreSQL store.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use entrada::store::{CliStore, ServerStore, Store};
use entrada_store_pg::{PgOptions, PgStore};

use super::DbArg;

/// Whether `db` is a PostgreSQL URL rather than a file.
pub(crate) fn is_postgres(db: &std::path::Path) -> bool {
    db.to_str()
        .is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// The URL without its password, for messages and logs.
pub(crate) fn shown(db: &std::path::Path) -> String {
    let text = without_password_parameter(&db.display().to_string());
    match (text.find("://"), text.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &text[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &text[..scheme + 3],
                    &userinfo[..colon],
                    &text[at..]
                ),
                None => text,
            }
        }
        _ => text,
    }
}

/// A URL's `password=` query parameter (libpq's other way to give one) as `***`.
fn without_password_parameter(text: &str) -> String {
    let Some(query) = text.find('?') else {
        return text.to_owned();
    };
    let params: Vec<String> = text[query + 1..]
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => p.to_owned(),
        })
        .collect();
    format!("{}?{}", &text[..query], params.join("&"))
}

/// What `entrada serve` sets beyond `--db` and `--pool-size` (PostgreSQL
/// only; the other commands keep the store's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct ServerOptions {
    /// `PgOptions::token_cache_ttl` (zero: no cache); `None`: its default.
    pub(crate) token_cache_ttl: Option<Duration>,
}

/// The PostgreSQL store's options for `db` and `server`.
pub(crate) fn pg_options(db: &DbArg, server: ServerOptions) -> PgOptions {
    let defaults = PgOptions::default();
    PgOptions {
        pool_size: db.pool_size,
        token_cache_ttl: server.token_cache_ttl.unwrap_or(defaults.token_cache_ttl),
        ..defaults
    }
}

fn connect(db: &DbArg, server: ServerOptions) -> anyhow::Result<PgStore> {
    let url = db.db.to_str().context("the database URL is not UTF-8")?;
    PgStore::connect(url, pg_options(db, server))
        .with_context(|| format!("connecting to {}", shown(&db.db)))
}

/// The store for the administration commands, on either engine (migrated).
pub(crate) fn open_any(db: &DbArg) -> anyhow::Result<Box<dyn CliStore>> {
    if is_postgres(&db.db) {
        Ok(Box::new(connect(db, ServerOptions::default())?))
    } else {
        Ok(Box::new(super::open(db)?))
    }
}

/// The server's store, on either engine (migrated); `server` applies to
/// PostgreSQL only (SQLite has no token cache: one process, one file).
pub(crate) fn open_server(
    db: &DbArg,
    server: ServerOptions,
) -> anyhow::Result<Arc<dyn ServerStore>> {
    if is_postgres(&db.db) {
        Ok(Arc::new(connect(db, server)?))
    } else {
        Ok(Arc::new(super::open(db)?))
    }
}

/// Commands that run on a SQLite file only (a gate's replica, the demo and
/// seeding's bulk paths): a clear refusal for a URL.
pub(crate) fn sqlite_only(db: &DbArg, what: &str) -> anyhow::Result<Store> {
    anyhow::ensure!(
        !is_postgres(&db.db),
        "{what} runs on a SQLite file only (not yet on PostgreSQL): give --db a file"
    );
    super::open(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_files_and_shown_without_password() {
        assert!(is_postgres("postgres://u:p@h/db".as_ref()));
        assert!(is_postgres(
            "postgresql://h1,h2/db?target_session_attrs=read-write".as_ref()
        ));
        assert!(!is_postgres("entrada.db".as_ref()));
        assert!(!is_postgres("./postgres:/x.db".as_ref()));
        assert_eq!(
            shown("postgres://u:secret@h:5432/db".as_ref()),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(shown("postgres://h/db".as_ref()), "postgres://h/db");
        assert_eq!(
            shown("postgres://u@h/db?sslmode=require&password=secret&x=1".as_ref()),
            "postgres://u@h/db?sslmode=require&password=***&x=1"
        );
        assert_eq!(shown("x.db".as_ref()), "x.db");
    }
}
