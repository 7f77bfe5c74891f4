//! `entrada serve`: its settings (flags, environment, config file) and the server.

use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::engine::{is_postgres, open_server, shown, sqlite_only, ServerOptions};
use super::seed::print_demo;
use super::{DbArg, ServeArgs, MAX_POOL_SIZE, MAX_TOKEN_CACHE_TTL_MS};

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ServeFile {
    db: Option<PathBuf>,
    listen: Option<std::net::SocketAddr>,
    ui_dir: Option<PathBuf>,
    lookups_per_minute: Option<u32>,
    /// Moved to the venue (refused with a pointer there, not ignored).
    early_grace_minutes: Option<toml::Value>,
    late_grace_minutes: Option<toml::Value>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
    updates_dir: Option<PathBuf>,
    public_url: Option<String>,
    token_cache_ttl_ms: Option<u64>,
    pool_size: Option<u32>,
}

struct ServeSettings {
    db: PathBuf,
    pool_size: u32,
    /// PostgreSQL's store options set here (the token cache's TTL).
    server: ServerOptions,
    listen: std::net::SocketAddr,
    ui_dir: PathBuf,
    lookups_per_minute: u32,
    /// Certificate chain and key files, when serving HTTPS.
    tls: Option<(PathBuf, PathBuf)>,
    /// The venue CA's certificate file (only with `tls`).
    tls_ca: Option<PathBuf>,
    updates_dir: Option<PathBuf>,
    /// The address gates and browsers reach the server at, when not the one
    /// it listens on (behind a proxy or a NAT).
    public_url: Option<String>,
}

impl ServeArgs {
    fn resolve(&self) -> anyhow::Result<ServeSettings> {
        let file: ServeFile = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("in {}", path.display()))?
            }
            None => ServeFile::default(),
        };
        anyhow::ensure!(
            file.early_grace_minutes.is_none() && file.late_grace_minutes.is_none(),
            "early_grace_minutes and late_grace_minutes are each venue's gate settings now \
             (PATCH /api/admin/venues/{{id}}, read by the server and every gate): remove them from {}",
            self.config.as_deref().unwrap_or(std::path::Path::new("")).display()
        );
        let tls = match (
            self.tls_cert.clone().or(file.tls_cert),
            self.tls_key.clone().or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => anyhow::bail!("HTTPS needs both a certificate (tls_cert) and its key (tls_key)"),
        };
        let tls_ca = self.tls_ca.clone().or(file.tls_ca);
        anyhow::ensure!(
            tls_ca.is_none() || tls.is_some(),
            "tls_ca names the CA of the server's certificate: it needs tls_cert and tls_key"
        );
        // Checked (and normalised) as a pairing code's server address.
        let public_url = match self.public_url.clone().or(file.public_url) {
            Some(url) => {
                let checked = entrada::domain::pairing::server_address(&url)
                    .map_err(|e| anyhow::anyhow!("public_url {url:?}: {e}"))?;
                anyhow::ensure!(
                    tls_ca.is_none() || checked.starts_with("https://"),
                    "public_url {url:?}: with tls_ca, gates pin the CA of an https:// address"
                );
                anyhow::ensure!(
                    tls.is_none() || checked.starts_with("https://"),
                    "public_url {url:?}: the server speaks https (tls_cert), so gates must too"
                );
                if entrada::api::pairing::is_loopback(&checked) {
                    tracing::warn!(public_url = %checked, "public_url names this machine only: gates elsewhere cannot reach it");
                }
                Some(checked)
            }
            None => None,
        };
        let token_cache_ttl_ms = self.token_cache_ttl_ms.or(file.token_cache_ttl_ms);
        // The flag's range, for the file's value too.
        if let Some(ms) = token_cache_ttl_ms {
            anyhow::ensure!(
                ms <= MAX_TOKEN_CACHE_TTL_MS,
                "token_cache_ttl_ms {ms}: at most {MAX_TOKEN_CACHE_TTL_MS} (a revoked token may be \
                 accepted by another instance for that long)"
            );
        }
        // The flag's range, for the file's value too: the pool would take
        // 0 as 1, and a typo of 10,000 as that many connections.
        let pool_size = self.pool_size.or(file.pool_size).unwrap_or(8);
        anyhow::ensure!(
            (1..=MAX_POOL_SIZE).contains(&pool_size),
            "pool_size {pool_size}: between 1 and {MAX_POOL_SIZE} (all instances together stay \
             under the database's max_connections)"
        );
        Ok(ServeSettings {
            server: ServerOptions {
                token_cache_ttl: token_cache_ttl_ms.map(std::time::Duration::from_millis),
            },
            tls,
            tls_ca,
            public_url,
            updates_dir: self.updates_dir.clone().or(file.updates_dir),
            pool_size,
            db: self
                .db
                .clone()
                .or(file.db)
                .context("no database: give --db, ENTRADA_DB or db in the config file")?,
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or(([127, 0, 0, 1], 8080).into()),
            ui_dir: self
                .ui_dir
                .clone()
                .or(file.ui_dir)
                .unwrap_or_else(|| "ui/dist".into()),
            lookups_per_minute: self
                .lookups_per_minute
                .or(file.lookups_per_minute)
                .unwrap_or(600),
        })
    }
}

/// `entrada serve`.
pub(crate) fn serve(args: ServeArgs, now: DateTime<Utc>) -> anyhow::Result<()> {
    let ServeSettings {
        db,
        pool_size,
        server,
        listen,
        ui_dir,
        lookups_per_minute,
        tls,
        tls_ca,
        updates_dir,
        public_url,
    } = args.resolve()?;
    let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let ca_pem = tls_ca.as_ref().map(read).transpose()?;
    let demo = args.demo;
    let db = DbArg { db, pool_size };
    let store = if demo {
        let store = sqlite_only(&db, "serve --demo")?;
        let report = entrada::demo::populate(&store, now, |_| {})?;
        print_demo(&db.db, &report);
        std::sync::Arc::new(store)
    } else {
        open_server(&db, server)?
    };
    // Dropped last, outside the runtime: PostgreSQL's synchronous clients
    // close their connections with a runtime of their own, which must not
    // happen on a thread driving async tasks (the router is dropped in one).
    let last_owner = store.clone();
    let no_show_period = args
        .no_show_seconds
        .map_or(entrada::api::NO_SHOW_PERIOD, std::time::Duration::from_secs);
    let release_store = store.clone();
    // Behind a proxy that speaks TLS for the server, browsers reach it over
    // https too: its console cookies are `Secure` then as well.
    let secure = tls.is_some()
        || public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"));
    let state = entrada::api::AppState::new(store, lookups_per_minute)
        .with_updates_dir(updates_dir)
        .with_secure_cookies(secure)
        .with_public_url(public_url.as_deref())
        .context("public_url")?;
    let state = match (&ca_pem, &tls_ca) {
        (Some(pem), Some(path)) => state
            .with_pairing_ca(pem)
            .with_context(|| format!("the CA certificate {}", path.display()))?,
        _ => state,
    };
    let shutdown = state.shutdown.clone();
    let app = entrada::api::router(state, Some(ui_dir));
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let tls = match &tls {
            Some((cert, key)) => {
                // The venue CA goes out with the chain (after the server's
                // certificate and intermediates): a gate pairing from a QR
                // code pins it by the code's fingerprint.
                let mut chain = read(cert)?;
                if let (Some(ca), Some(ca_path)) = (&ca_pem, &tls_ca) {
                    entrada::api::pairing::check_chain_leads_to_ca(&chain, ca).with_context(
                        || {
                            format!(
                                "--tls-ca {} with --tls-cert {}",
                                ca_path.display(),
                                cert.display()
                            )
                        },
                    )?;
                }
                if let Some(ca) = &ca_pem {
                    if !chain.windows(ca.len()).any(|w| w == ca.as_slice()) {
                        if !chain.ends_with(b"\n") {
                            chain.push(b'\n');
                        }
                        chain.extend_from_slice(ca);
                    }
                }
                let config = entrada::api::TlsConfig::from_pem(chain, read(key)?)
                    .await
                    .with_context(|| {
                        format!(
                            "TLS certificate {} with key {}",
                            cert.display(),
                            key.display()
                        )
                    })?;
                Some(config)
            }
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        // Aborted with the runtime; its store handle goes before `last_owner`.
        // PostgreSQL only: SQLite numbers the feed as it writes.
        let numberer = is_postgres(&db.db).then(|| {
            entrada::api::spawn_feed_numberer(
                release_store.clone(),
                entrada::api::FEED_NUMBERING_PERIOD,
            )
        });
        let release = entrada::api::spawn_no_show_release(release_store, no_show_period);
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(address = %listener.local_addr()?, scheme, db = %shown(&db.db), "entrada serve ready");
        let served = match tls {
            Some(tls) => entrada::api::serve_tls(listener, app, tls, shutdown).await,
            None => entrada::api::serve(listener, app, shutdown).await,
        };
        release.abort();
        let _ = release.await;
        if let Some(numberer) = numberer {
            numberer.abort();
            let _ = numberer.await;
        }
        served?;
        anyhow::Ok(())
    })?;
    drop(runtime);
    drop(last_owner);
    Ok(())
}

#[cfg(test)]
mod tests {

    use super::super::engine::pg_options;
    use super::super::{Cli, Command};
    use super::*;

    /// `entrada serve args` resolved, with no `ENTRADA_*` variable of the
    /// test process's environment read (clap reads them for `env` args):
    /// what a developer exported must not change what the tests see.
    fn settings(args: &[&str]) -> anyhow::Result<ServeSettings> {
        settings_reading_env(args, None)
    }

    /// As `settings`, but the arg `env_of` (its id) still reads its
    /// variable from the environment.
    fn settings_reading_env(args: &[&str], env_of: Option<&str>) -> anyhow::Result<ServeSettings> {
        use clap::{CommandFactory, FromArgMatches};
        let no_env = |arg: clap::Arg| {
            if Some(arg.get_id().as_str()) == env_of {
                arg
            } else {
                arg.env(None)
            }
        };
        let command = Cli::command()
            .mut_args(no_env)
            .mut_subcommand("serve", |serve| serve.mut_args(no_env));
        let matches = command.try_get_matches_from([&["entrada", "serve"], args].concat())?;
        let cli = Cli::from_arg_matches(&matches)?;
        match cli.command {
            Command::Serve(args) => args.resolve(),
            _ => unreachable!("a serve command"),
        }
    }

    fn ttl(settings: &ServeSettings) -> std::time::Duration {
        let db = DbArg {
            db: settings.db.clone(),
            pool_size: settings.pool_size,
        };
        pg_options(&db, settings.server).token_cache_ttl
    }

    /// The token cache's TTL reaches the PostgreSQL store's options from
    /// the flag or the config file (the flag first), 0 turning the cache
    /// off; unset, the store's default (2 s); above 60 s refused from
    /// either.
    #[test]
    fn the_token_cache_ttl_reaches_the_stores_options() {
        use std::time::Duration;
        let db = ["--db", "postgres://h/entrada"];
        let with = |extra: &[&str]| settings(&[&db[..], extra].concat());
        assert_eq!(ttl(&with(&[]).unwrap()), Duration::from_secs(2));
        assert_eq!(
            ttl(&with(&["--token-cache-ttl-ms", "500"]).unwrap()),
            Duration::from_millis(500)
        );
        assert_eq!(
            ttl(&with(&["--token-cache-ttl-ms", "0"]).unwrap()),
            Duration::ZERO
        );
        assert!(with(&["--token-cache-ttl-ms", "60001"]).is_err());

        let dir = tempfile::tempdir().unwrap();
        let file = |text: &str| {
            let path = dir.path().join("serve.toml");
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let config = file("token_cache_ttl_ms = 0\n");
        assert_eq!(ttl(&with(&["--config", &config]).unwrap()), Duration::ZERO);
        assert_eq!(
            ttl(&with(&["--config", &config, "--token-cache-ttl-ms", "750"]).unwrap()),
            Duration::from_millis(750),
            "the flag before the file"
        );
        let config = file("token_cache_ttl_ms = 60001\n");
        let err = with(&["--config", &config]).err().unwrap();
        assert!(err.to_string().contains("at most 60000"), "{err}");
    }

    /// The pool size comes from the flag, else the config file, else 8;
    /// 0 or more than `MAX_POOL_SIZE` is refused from either.
    #[test]
    fn the_pool_size_comes_from_the_flag_or_the_config_file() {
        let db = ["--db", "postgres://h/entrada"];
        let with = |extra: &[&str]| settings(&[&db[..], extra].concat());
        assert_eq!(with(&[]).unwrap().pool_size, 8);
        assert_eq!(with(&["--pool-size", "3"]).unwrap().pool_size, 3);

        let dir = tempfile::tempdir().unwrap();
        let file = |text: &str| {
            let path = dir.path().join("serve.toml");
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let config = file("pool_size = 12\n");
        assert_eq!(with(&["--config", &config]).unwrap().pool_size, 12);
        assert_eq!(
            with(&["--config", &config, "--pool-size", "5"])
                .unwrap()
                .pool_size,
            5,
            "the flag before the file"
        );
        let config = file("pool_size = 0\n");
        let err = with(&["--config", &config]).err().unwrap();
        assert!(err.to_string().contains("between 1 and"), "{err}");
        assert!(with(&["--pool-size", "0"]).is_err());
        assert!(with(&["--pool-size", &(MAX_POOL_SIZE + 1).to_string()]).is_err());
    }

    /// `ENTRADA_TOKEN_CACHE_TTL_MS` sets the TTL as the flag does: before
    /// the config file, after the flag, above 60 s refused. The only test
    /// that sets the variable, and every other parse here ignores it
    /// (`settings`), so no test races it; the value it found is put back.
    #[test]
    fn the_token_cache_ttl_is_read_from_its_environment_variable() {
        use std::time::Duration;
        const VAR: &str = "ENTRADA_TOKEN_CACHE_TTL_MS";
        struct Restore(Option<std::ffi::OsString>);
        impl Drop for Restore {
            fn drop(&mut self) {
                match self.0.take() {
                    Some(value) => std::env::set_var(VAR, value),
                    None => std::env::remove_var(VAR),
                }
            }
        }
        let _restore = Restore(std::env::var_os(VAR));
        let db = ["--db", "postgres://h/entrada"];
        let with = |value: &str, extra: &[&str]| {
            std::env::set_var(VAR, value);
            settings_reading_env(&[&db[..], extra].concat(), Some("token_cache_ttl_ms"))
        };
        assert_eq!(ttl(&with("750", &[]).unwrap()), Duration::from_millis(750));
        assert_eq!(ttl(&with("0", &[]).unwrap()), Duration::ZERO);
        assert_eq!(
            ttl(&with("750", &["--token-cache-ttl-ms", "500"]).unwrap()),
            Duration::from_millis(500),
            "the flag before the variable"
        );
        assert!(with("60001", &[]).is_err());

        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("serve.toml");
        std::fs::write(&config, "token_cache_ttl_ms = 0\n").unwrap();
        let config = config.display().to_string();
        assert_eq!(
            ttl(&with("750", &["--config", &config]).unwrap()),
            Duration::from_millis(750),
            "the variable before the file"
        );
    }
}
