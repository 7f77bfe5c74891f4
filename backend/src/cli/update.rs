//! `entrada update …` (fleet updates of the gate app: the release key, signed
//! bundles, publishing them on a server, a supervisor's deferral),
//! `entrada launch` (the launcher a gate's service starts), `entrada device
//! list`, and the update check of `entrada sync --watch --app-dir`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use super::engine::open_server;
use super::{open, DbArg};
use entrada::domain::update::{self as rules, GateActivity, InstallMoment, Version};
use entrada::domain::Orq;
use entrada::sync::client::SyncEngine;
use entrada::sync::update::{self as updater, AppDir, Launch, UpdateCheck};

/// The gate's device setting a supervisor's deferral is kept in (RFC 3339).
pub(crate) const DEFERRED_UNTIL: &str = "update_deferred_until";

#[derive(Subcommand)]
pub(crate) enum UpdateCommand {
    /// Make a release key: writes its private half (base64, mode 0600) to --out
    /// and prints its public half (build with ENTRADA_RELEASE_PUBLIC_KEY=<it>)
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign PAYLOAD (the gate's executable) as version --version: writes the bundle to --out
    Sign {
        /// The release key's private half (from keygen)
        #[arg(long)]
        key: PathBuf,
        /// MAJOR.MINOR.PATCH
        #[arg(long)]
        version: String,
        #[arg(long)]
        out: PathBuf,
        payload: PathBuf,
    },
    /// Publish BUNDLE on this server: verified against the release key built into
    /// this binary, then copied into the updates folder (`entrada serve --updates-dir`)
    Publish {
        /// The server's updates folder
        #[arg(long, env = "ENTRADA_UPDATES_DIR")]
        dir: PathBuf,
        bundle: PathBuf,
    },
    /// On a gate: no update installs until --minutes from now (0: lift the deferral)
    Defer {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        minutes: u32,
    },
}

/// `entrada launch` flags.
#[derive(Args)]
pub(crate) struct LaunchArgs {
    /// The app folder (versions/, current, ...), e.g. /var/lib/entrada-gate/app
    #[arg(long, env = "ENTRADA_APP_DIR")]
    app_dir: PathBuf,
    /// Seconds a version just switched to has to report healthy
    #[arg(long, default_value_t = 30)]
    health_timeout: u64,
    /// The command line of the app (e.g. sync --watch --db gate.db --app-dir DIR)
    #[arg(last = true)]
    args: Vec<std::ffi::OsString>,
}

/// How `entrada sync --watch` checks for updates.
pub(crate) struct UpdatePolicy {
    pub app_dir: PathBuf,
    pub every: Duration,
    pub quiet: chrono::Duration,
}

/// The version this process runs: the one its launcher started (the signed
/// version of its folder), else this build's.
pub(crate) fn running_version() -> Version {
    std::env::var(updater::ENV_APP_VERSION)
        .ok()
        .and_then(|v| Version::parse(&v).ok())
        .unwrap_or_else(|| {
            Version::parse(env!("CARGO_PKG_VERSION"))
                .expect("the crate version is MAJOR.MINOR.PATCH")
        })
}

pub(crate) fn run(command: UpdateCommand, now: DateTime<Utc>) -> anyhow::Result<()> {
    match command {
        UpdateCommand::Keygen { out } => {
            let (private, public) = updater::new_release_key().map_err(anyhow::Error::msg)?;
            write_private(&out, &private)?;
            println!("{public}");
        }
        UpdateCommand::Sign {
            key,
            version,
            out,
            payload,
        } => {
            let text = std::fs::read_to_string(&key)
                .with_context(|| format!("reading {}", key.display()))?;
            let version =
                Version::parse(&version).map_err(|e| anyhow::anyhow!("--version: {e}"))?;
            let bytes = std::fs::read(&payload)
                .with_context(|| format!("reading {}", payload.display()))?;
            let bundle =
                updater::sign_bundle(&text, version, &bytes).map_err(anyhow::Error::msg)?;
            std::fs::write(&out, bundle).with_context(|| format!("writing {}", out.display()))?;
        }
        UpdateCommand::Publish { dir, bundle } => {
            let bytes =
                std::fs::read(&bundle).with_context(|| format!("reading {}", bundle.display()))?;
            // Version(0, 0, 0): any version is newer; the gate refuses downgrades itself.
            let (version, _) = updater::verify(&bytes, Version(0, 0, 0), &updater::release_key())
                .map_err(|e| {
                anyhow::anyhow!("{} refused: {e} ({})", bundle.display(), e.code())
            })?;
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let target = dir.join(entrada::api::update::bundle_file_name(version));
            let tmp = dir.join(format!(".{version}.part"));
            std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &target)
                .with_context(|| format!("publishing {}", target.display()))?;
            println!(
                "{}",
                serde_json::json!({ "version": version.to_string(), "file": target })
            );
        }
        UpdateCommand::Defer { db, minutes } => {
            let store = open(&db)?;
            let until = now + chrono::Duration::minutes(minutes.into());
            store.set_device_setting(DEFERRED_UNTIL, &until.to_rfc3339())?;
            println!("{}", serde_json::json!({ "deferred_until": until }));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist)", path.display()))?;
    writeln!(file, "{text}")?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, format!("{text}\n")).with_context(|| format!("writing {}", path.display()))
}

/// `entrada launch`.
pub(crate) fn launch(args: LaunchArgs) -> anyhow::Result<()> {
    let launch = Launch {
        app: AppDir::new(&args.app_dir, "entrada"),
        packaged: std::env::current_exe().context("this program's path")?,
        packaged_version: Version::parse(env!("CARGO_PKG_VERSION"))
            .expect("the crate version is MAJOR.MINOR.PATCH"),
        args: args.args,
        health_timeout: Duration::from_secs(args.health_timeout),
    };
    let status = updater::launch(&launch).map_err(|e| anyhow::anyhow!("{e}"))?;
    std::process::exit(status.code().unwrap_or(1));
}

/// `entrada device list`: the org's gates with the app version each reported.
pub(crate) fn device_list(db: DbArg, orq: i64) -> anyhow::Result<()> {
    for device in open_server(&db)?.device_versions(Orq(orq))? {
        println!("{}", serde_json::to_string(&device)?);
    }
    Ok(())
}

/// Tells the launcher this version runs (when one started it).
pub(crate) fn confirm_healthy() {
    if let Ok(dir) = std::env::var(updater::ENV_APP_DIR) {
        if let Err(e) = AppDir::new(dir, "entrada").confirm_healthy(running_version()) {
            tracing::warn!(error = %e, "cannot tell the launcher this version is healthy");
        }
    }
}

/// The update loop beside `sync --watch`: every `policy.every`, report and
/// stage; once a verified version is staged, switch to it at the first quiet
/// moment and return (the caller exits for the launcher to restart it).
pub(crate) async fn watch_updates(
    engine: &SyncEngine,
    store: Arc<entrada::store::Store>,
    policy: &UpdatePolicy,
) -> Version {
    let app = AppDir::new(&policy.app_dir, "entrada");
    let running = running_version();
    let key = updater::release_key();
    let mut staged = None;
    loop {
        match engine.check_update(&app, running, &key).await {
            Ok(UpdateCheck::Staged(v)) => staged = Some(v),
            Ok(UpdateCheck::Refused(v, refusal)) => {
                tracing::warn!(version = %v, code = refusal.code(), "update bundle refused")
            }
            Ok(UpdateCheck::UpToDate) => {}
            Err(e) => tracing::warn!(code = e.code(), error = %e, "update check failed"),
        }
        if let Some(version) = staged {
            match moment(&store, policy.quiet) {
                Ok(InstallMoment::Now) => match app.activate(version) {
                    Ok(()) => {
                        tracing::info!(%version, "update installed: restarting into it");
                        return version;
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot switch to the update"),
                },
                Ok(wait) => tracing::info!(%version, ?wait, "update staged, waiting"),
                Err(e) => tracing::warn!(error = %e, "cannot tell whether the gate is busy"),
            }
        }
        tokio::time::sleep(policy.every).await;
    }
}

fn moment(store: &entrada::store::Store, quiet: chrono::Duration) -> anyhow::Result<InstallMoment> {
    let deferred_until = store
        .device_settings()?
        .get(DEFERRED_UNTIL)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let activity = GateActivity {
        now: Utc::now(),
        last_scan_at: store.last_local_event_at()?,
        // A headless gate has no screen to lock.
        locked: false,
        deferred_until,
    };
    Ok(rules::install_moment(&activity, quiet))
}
