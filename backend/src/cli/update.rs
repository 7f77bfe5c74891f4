//! `entrada update …` (fleet updates of the gate app: the release key, signed
//! bundles, publishing them on a server, a supervisor's deferral),
//! `entrada launch` (the launcher a gate's service starts), `entrada device
//! list`, and the update check of `entrada sync --watch --app-dir`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use super::engine::{open_server, ServerOptions};
use super::{open, DbArg};
use entrada::domain::update::Version;
use entrada::domain::Orq;
use entrada::sync::update::{self as updater, AppDir, Launch};

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
            updater::warn_if_dev_key();
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
            updater::defer_updates(&store, until)?;
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
    updater::warn_if_dev_key();
    let launch = Launch {
        app: AppDir::new(&args.app_dir, "entrada"),
        packaged: std::env::current_exe().context("this program's path")?,
        packaged_version: updater::build_version(),
        args: args.args,
        health_timeout: Duration::from_secs(args.health_timeout),
    };
    let status = updater::launch(&launch).map_err(|e| anyhow::anyhow!("{e}"))?;
    std::process::exit(status.code().unwrap_or(1));
}

/// `entrada device list`: the org's gates with the app version each reported.
pub(crate) fn device_list(db: DbArg, orq: i64) -> anyhow::Result<()> {
    for device in open_server(&db, ServerOptions::default())?.device_versions(Orq(orq))? {
        println!("{}", serde_json::to_string(&device)?);
    }
    Ok(())
}
