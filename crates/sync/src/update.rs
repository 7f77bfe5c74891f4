//! Fleet updates, gate side: ask the server for a newer signed bundle on the
//! sync schedule, verify it against the release key built into the app,
//! stage it side by side, and switch to it only at a quiet moment; the
//! launcher (`launch`) starts the current version, waits for it to report
//! healthy and rolls back to the previous one if it does not.
//!
//! The app folder (`AppDir`, e.g. `/var/lib/entrada-gate/app`):
//!
//! ```text
//! versions/<version>/<exe>   one folder per staged version (never changed once written)
//! current -> versions/<v>    the version the launcher starts (absent: the packaged binary)
//! previous -> versions/<v>   the version before the last switch (for a rollback)
//! pending                    "<v>": switched to, not yet reported healthy
//! healthy                    "<v>": written by the app once it runs
//! status.json                the last update's outcome, reported to the server
//! ```
//!
//! The gate's database is elsewhere and never touched: unsent scans stay in
//! its outbox across an update or a rollback.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::client::{blocking, read_json, request_error, SyncEngine, SyncError};
use entrada_domain::update::{
    self as rules, UpdateAnswer, UpdateOffer, UpdateOutcome, UpdateRefusal, UpdateReport,
    UpdateState, Version,
};

/// The exit code by which the app asks its launcher to start it again (it
/// switched `current` to a new version).
pub const RESTART_EXIT_CODE: i32 = 75;
/// Set by the launcher for the app it starts.
pub const ENV_APP_DIR: &str = "ENTRADA_APP_DIR";
pub const ENV_APP_VERSION: &str = "ENTRADA_APP_VERSION";

/// The release public key built into this binary: `ENTRADA_RELEASE_PUBLIC_KEY`
/// (base64) at build time, else the development key of
/// `tests/fixtures/update/dev-release.pub` (its private half is public: a
/// release build must set its own, see that folder's README).
pub fn release_key() -> VerifyingKey {
    let text = option_env!("ENTRADA_RELEASE_PUBLIC_KEY").unwrap_or(include_str!(
        "../../../tests/fixtures/update/dev-release.pub"
    ));
    parse_public_key(text).expect("the release public key built into the app is valid")
}

/// Whether [`release_key`] is the development key.
pub fn release_key_is_dev() -> bool {
    option_env!("ENTRADA_RELEASE_PUBLIC_KEY").is_none()
}

/// What a binary built with the development release key says about it.
pub const DEV_KEY_WARNING: &str =
    "development release key built in: any bundle signed with the public test key installs (build with ENTRADA_RELEASE_PUBLIC_KEY)";

/// This build's version for `--version`: with a note when the development
/// release key is built in, so a package made from such a build shows it.
pub const VERSION_TEXT: &str = if option_env!("ENTRADA_RELEASE_PUBLIC_KEY").is_some() {
    env!("CARGO_PKG_VERSION")
} else {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (development release key built in: not for a production fleet)"
    )
};

/// Logs a warning at start-up when the development release key is built in.
pub fn warn_if_dev_key() {
    if release_key_is_dev() {
        tracing::warn!("{DEV_KEY_WARNING}");
    }
}

/// The gate's device setting a supervisor's deferral is kept in (RFC 3339).
pub const DEFERRED_UNTIL: &str = "update_deferred_until";

/// This build's version (the packaged binary's).
pub fn build_version() -> Version {
    Version::parse(env!("CARGO_PKG_VERSION")).expect("the crate version is MAJOR.MINOR.PATCH")
}

/// The version this process runs: the one its launcher started (the signed
/// version of its folder), else this build's.
pub fn running_version() -> Version {
    std::env::var(ENV_APP_VERSION)
        .ok()
        .and_then(|v| Version::parse(&v).ok())
        .unwrap_or_else(build_version)
}

/// Tells the launcher that started this process (if one did) that this
/// version works. Called after the app's first successful sync round: a
/// version that starts but cannot sync is rolled back.
pub fn confirm_healthy_to_launcher() {
    if let Some(dir) = std::env::var_os(ENV_APP_DIR) {
        match AppDir::new(PathBuf::from(dir), "").confirm_healthy(running_version()) {
            Ok(()) => {
                tracing::info!(version = %running_version(), "healthy: reported to the launcher")
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell the launcher this version is healthy")
            }
        }
    }
}

/// Whether now is a moment to install: a supervisor's deferral (the
/// device setting [`DEFERRED_UNTIL`]), the last scan in the outbox, and
/// whether the screen is locked, through `rules::install_moment`.
pub fn install_moment_of(
    store: &entrada_store::Store,
    quiet: chrono::Duration,
    locked: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<rules::InstallMoment, entrada_store::StoreError> {
    let deferred_until = store
        .device_settings()?
        .get(DEFERRED_UNTIL)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    let activity = rules::GateActivity {
        now,
        last_scan_at: store.last_local_event_at()?,
        locked,
        deferred_until,
    };
    Ok(rules::install_moment(&activity, quiet))
}

/// A supervisor's deferral: no update installs until `until` (a time in
/// the past lifts it).
pub fn defer_updates(
    store: &entrada_store::Store,
    until: chrono::DateTime<chrono::Utc>,
) -> Result<(), entrada_store::StoreError> {
    store.set_device_setting(DEFERRED_UNTIL, &until.to_rfc3339())
}

/// How a gate checks for updates beside its sync loop.
#[derive(Debug, Clone)]
pub struct UpdatePolicy {
    pub app: AppDir,
    pub every: Duration,
    /// An update installs only after this long without a scan (or locked).
    pub quiet: chrono::Duration,
}

pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let raw = STANDARD
        .decode(text.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    let raw: [u8; 32] = raw
        .as_slice()
        .try_into()
        .map_err(|_| "not 32 bytes".to_string())?;
    VerifyingKey::from_bytes(&raw).map_err(|e| e.to_string())
}

/// A new release key: (private seed, public key), both base64. The private
/// half signs bundles (`sign_bundle`) and stays with the release manager.
pub fn new_release_key() -> Result<(String, String), String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    Ok((
        STANDARD.encode(seed),
        STANDARD.encode(key.verifying_key().to_bytes()),
    ))
}

/// Signs `payload` as `version` with the private key `private` (base64
/// seed, from [`new_release_key`]): the bundle's bytes.
pub fn sign_bundle(private: &str, version: Version, payload: &[u8]) -> Result<Vec<u8>, String> {
    let seed: [u8; 32] = STANDARD
        .decode(private.trim())
        .ok()
        .and_then(|raw| raw.try_into().ok())
        .ok_or("the key is not a base64 Ed25519 seed (from `entrada update keygen`)")?;
    Ok(rules::make_bundle(
        &SigningKey::from_bytes(&seed),
        version,
        &sha256(payload),
        payload,
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("update refused: {0}")]
    Refused(#[from] UpdateRefusal),
    #[error("update folder: {0}")]
    Io(String),
    #[error(transparent)]
    Sync(#[from] SyncError),
}

impl UpdateError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused(r) => r.code(),
            Self::Io(_) => "UPDATE_IO_ERROR",
            Self::Sync(e) => e.code(),
        }
    }
}

fn io(context: &str, path: &Path) -> impl FnOnce(std::io::Error) -> UpdateError {
    let message = format!("{context} {}", path.display());
    move |e| UpdateError::Io(format!("{message}: {e}"))
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Parses and verifies a bundle against `key`, refusing one not newer than
/// `running`. Returns its version and payload.
pub fn verify<'a>(
    bytes: &'a [u8],
    running: Version,
    key: &VerifyingKey,
) -> Result<(Version, &'a [u8]), UpdateRefusal> {
    let bundle = rules::parse_bundle(bytes)?;
    rules::verify_bundle(&bundle, &sha256(bundle.payload), key)?;
    rules::accept_offer(running, bundle.version)?;
    Ok((bundle.version, bundle.payload))
}

/// The app folder the launcher and the updater share.
/// A download's temporary file not written for this long was cut off.
const STALE_DOWNLOAD: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct AppDir {
    root: PathBuf,
    exe: String,
}

impl AppDir {
    /// `exe`: the executable's file name inside a version folder.
    pub fn new(root: impl Into<PathBuf>, exe: &str) -> Self {
        Self {
            root: root.into(),
            exe: exe.to_string(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn version_dir(&self, version: Version) -> PathBuf {
        self.root.join("versions").join(version.to_string())
    }

    pub fn executable(&self, version: Version) -> PathBuf {
        self.version_dir(version).join(&self.exe)
    }

    fn link(&self, name: &str) -> Option<Version> {
        let target = std::fs::read_link(self.root.join(name)).ok()?;
        Version::parse(target.file_name()?.to_str()?).ok()
    }

    /// The version `current` points to (None: the packaged binary).
    pub fn current(&self) -> Option<Version> {
        self.link("current")
    }

    pub fn previous(&self) -> Option<Version> {
        self.link("previous")
    }

    fn read_version_file(&self, name: &str) -> Option<Version> {
        let text = std::fs::read_to_string(self.root.join(name)).ok()?;
        Version::parse(text.trim()).ok()
    }

    pub fn pending(&self) -> Option<Version> {
        self.read_version_file("pending")
    }

    pub fn is_staged(&self, version: Version) -> bool {
        self.executable(version).is_file()
    }

    /// Verifies `bytes` and writes its payload to `versions/<v>/<exe>`
    /// (through a [`BundleWriter`]: written under a temporary name, synced,
    /// verified, then renamed: a crash leaves no half-written version).
    /// Does not switch to it.
    pub fn stage(
        &self,
        bytes: &[u8],
        running: Version,
        key: &VerifyingKey,
    ) -> Result<Version, UpdateError> {
        let mut writer = BundleWriter::new(self, rules::MAX_PAYLOAD_LEN)?;
        writer.write(bytes)?;
        writer.finish(running, key)
    }

    /// Points `name` at `versions/<v>` (or removes it) atomically: a new
    /// link under a temporary name renamed over the old one.
    fn set_link(&self, name: &str, version: Option<Version>) -> Result<(), UpdateError> {
        let path = self.root.join(name);
        match version {
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(io("cannot remove", &path)(e))
                }
                _ => Ok(()),
            },
            Some(v) => {
                let tmp = self.root.join(format!(".{name}.new"));
                let _ = std::fs::remove_file(&tmp);
                symlink(Path::new("versions").join(v.to_string()), &tmp)
                    .map_err(io("cannot link", &tmp))?;
                std::fs::rename(&tmp, &path).map_err(io("cannot rename", &path))
            }
        }
    }

    fn write_file(&self, name: &str, text: &str) -> Result<(), UpdateError> {
        let path = self.root.join(name);
        let tmp = self.root.join(format!(".{name}.new"));
        std::fs::write(&tmp, text).map_err(io("cannot write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("cannot rename", &path))
    }

    fn remove_file(&self, name: &str) {
        let _ = std::fs::remove_file(self.root.join(name));
    }

    /// Switches to a staged version: `previous` = what ran, `current` = it,
    /// `pending` = it (the launcher waits for it to report healthy).
    pub fn activate(&self, version: Version) -> Result<(), UpdateError> {
        if !self.is_staged(version) {
            return Err(UpdateError::Io(format!("version {version} is not staged")));
        }
        self.set_link("previous", self.current())?;
        self.write_file("pending", &version.to_string())?;
        self.set_link("current", Some(version))
    }

    /// The packaged binary (upgraded by the package manager) is the same
    /// as or newer than the staged `current`: the staged version is
    /// superseded, so `current`, `previous` and `pending` are cleared and
    /// the packaged binary runs. Without this an apt upgrade would never
    /// run on a gate that once took an update bundle.
    pub fn forget_superseded(&self, packaged: Version) -> Result<(), UpdateError> {
        match self.current() {
            Some(v) if packaged >= v => {
                self.set_link("current", None)?;
                self.set_link("previous", None)?;
                self.remove_file("pending");
                tracing::info!(staged = %v, %packaged, "the packaged version supersedes the staged one");
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The running app says it works (called once it has started).
    pub fn confirm_healthy(&self, version: Version) -> Result<(), UpdateError> {
        self.write_file("healthy", &version.to_string())
    }

    fn healthy(&self) -> Option<Version> {
        self.read_version_file("healthy")
    }

    /// Back to the version before the last switch (the packaged binary if
    /// there was none); the failed version's folder is removed.
    fn roll_back(&self, failed: Version, reason: &str) -> Result<(), UpdateError> {
        self.set_link("current", self.previous())?;
        self.set_link("previous", None)?;
        self.remove_file("pending");
        let _ = std::fs::remove_dir_all(self.version_dir(failed));
        self.record(&UpdateOutcome {
            version: failed.to_string(),
            state: UpdateState::RolledBack,
            detail: Some(reason.chars().take(200).collect()),
        })
    }

    /// Removes the version folders that can no longer run: every version
    /// older than `current` except `previous` (the one a roll-back returns
    /// to). A newer one is kept (staged, waiting for its quiet moment), and
    /// so is a download in progress; one cut off (`STALE_DOWNLOAD`) goes.
    /// Called once `current` reported healthy: without it every release a
    /// gate ever installed stays on its disk. Returns the versions removed.
    pub fn prune_old_versions(&self) -> Vec<Version> {
        let Some(current) = self.current() else {
            return Vec::new();
        };
        let keep = [Some(current), self.previous()];
        let Ok(entries) = std::fs::read_dir(self.root.join("versions")) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_str().unwrap_or_default();
            // A download's temporary file untouched for an hour was cut off
            // (a kill, a power cut): a live download writes all the time.
            if name.starts_with('.') && name.ends_with(".part") {
                let stale = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STALE_DOWNLOAD);
                if stale {
                    let _ = std::fs::remove_file(entry.path());
                }
                continue;
            }
            let Ok(v) = Version::parse(name) else {
                continue;
            };
            if v < current
                && !keep.contains(&Some(v))
                && std::fs::remove_dir_all(entry.path()).is_ok()
            {
                removed.push(v);
            }
        }
        removed.sort();
        removed
    }

    /// Records the last update's outcome (reported to the server).
    pub fn record(&self, outcome: &UpdateOutcome) -> Result<(), UpdateError> {
        let text = serde_json::to_string(outcome).expect("an outcome serialises");
        self.write_file("status.json", &text)
    }

    pub fn last_outcome(&self) -> Option<UpdateOutcome> {
        let text = std::fs::read_to_string(self.root.join("status.json")).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// Receives a bundle chunk by chunk (as it downloads) with bounded memory:
/// the header line is parsed from the first bytes, the payload goes to a
/// temporary file in `versions/` while it is hashed, and is refused as soon
/// as it grows past the size its header (at most `max_size`, the offer's)
/// says. [`finish`](Self::finish) checks the digest, the release key's
/// signature over version, digest and size, and that the version is newer,
/// and only then renames the file into `versions/<v>/<exe>`. Anything
/// refused or dropped removes the temporary file.
pub struct BundleWriter {
    app: AppDir,
    max_size: u64,
    /// The bytes before the payload, until the header line is complete.
    prefix: Vec<u8>,
    header: Option<(rules::BundleHeader, Version)>,
    file: Option<(std::fs::File, PathBuf)>,
    hasher: Sha256,
    written: u64,
}

impl BundleWriter {
    /// `max_size`: the largest payload accepted (the offer's size, itself
    /// capped at `rules::MAX_PAYLOAD_LEN`).
    pub fn new(app: &AppDir, max_size: u64) -> Result<Self, UpdateError> {
        Ok(Self {
            app: app.clone(),
            max_size: max_size.min(rules::MAX_PAYLOAD_LEN),
            prefix: Vec::new(),
            header: None,
            file: None,
            hasher: Sha256::new(),
            written: 0,
        })
    }

    /// The next bytes of the bundle.
    pub fn write(&mut self, mut chunk: &[u8]) -> Result<(), UpdateError> {
        if self.header.is_none() {
            let limit = rules::MAGIC.len() + rules::MAX_HEADER_LEN + 1;
            let take = chunk.len().min(limit - self.prefix.len());
            self.prefix.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            let have = self.prefix.len().min(rules::MAGIC.len());
            if self.prefix[..have] != rules::MAGIC[..have] {
                return Err(UpdateRefusal::NotABundle.into());
            }
            let line_done = self.prefix.len() > rules::MAGIC.len()
                && self.prefix[rules::MAGIC.len()..].contains(&b'\n');
            if !line_done && self.prefix.len() < limit {
                return Ok(());
            }
            let (header, version, offset) = rules::parse_header(&self.prefix)?;
            if header.size > self.max_size {
                return Err(UpdateRefusal::WrongSize.into());
            }
            let dir = self.app.root.join("versions");
            std::fs::create_dir_all(&dir).map_err(io("cannot create", &dir))?;
            // A name of its own, created new: a second writer on the same
            // folder can never truncate or mix into this download's file
            // (the digest checked is of the bytes this writer wrote).
            let nonce = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let tmp = dir.join(format!(".{version}.{}-{nonce}.part", std::process::id()));
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(io("cannot write", &tmp))?;
            self.file = Some((file, tmp));
            self.header = Some((header, version));
            let rest = std::mem::take(&mut self.prefix).split_off(offset);
            self.payload(&rest)?;
        }
        self.payload(chunk)
    }

    fn payload(&mut self, chunk: &[u8]) -> Result<(), UpdateError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let (Some((header, _)), Some((file, tmp))) = (&self.header, &mut self.file) else {
            return Ok(());
        };
        if self.written + chunk.len() as u64 > header.size {
            return Err(UpdateRefusal::WrongSize.into());
        }
        self.hasher.update(chunk);
        file.write_all(chunk).map_err(io("cannot write", tmp))?;
        self.written += chunk.len() as u64;
        Ok(())
    }

    /// The whole bundle arrived: verifies it and stages its payload.
    pub fn finish(mut self, running: Version, key: &VerifyingKey) -> Result<Version, UpdateError> {
        let Some((header, version)) = self.header.take() else {
            // Ended before its header line did.
            rules::parse_header(&self.prefix)?;
            return Err(UpdateRefusal::BadHeader.into());
        };
        if self.written != header.size {
            return Err(UpdateRefusal::WrongSize.into());
        }
        let digest: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
        let bundle = rules::Bundle {
            header,
            version,
            payload: &[],
        };
        rules::verify_bundle(&bundle, &digest, key)?;
        rules::accept_offer(running, version)?;
        let (file, tmp) = self.file.take().expect("a parsed header opened the file");
        file.sync_all().map_err(io("cannot sync", &tmp))?;
        drop(file);
        let result = (|| {
            set_executable(&tmp).map_err(io("cannot chmod", &tmp))?;
            let dir = self.app.version_dir(version);
            std::fs::create_dir_all(&dir).map_err(io("cannot create", &dir))?;
            let exe = self.app.executable(version);
            std::fs::rename(&tmp, &exe).map_err(io("cannot rename", &exe))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map(|()| version)
    }
}

impl Drop for BundleWriter {
    fn drop(&mut self) {
        if let Some((_, tmp)) = self.file.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

#[cfg(unix)]
fn symlink(target: impl AsRef<Path>, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: impl AsRef<Path>, _link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "side-by-side updates need symlinks (Linux)",
    ))
}

#[cfg(unix)]
fn set_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

#[cfg(not(unix))]
fn set_executable(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// How the launcher runs the app.
#[derive(Debug, Clone)]
pub struct Launch {
    pub app: AppDir,
    /// The packaged binary, run when no version is current.
    pub packaged: PathBuf,
    pub packaged_version: Version,
    pub args: Vec<OsString>,
    /// A switched-to version must report healthy within this.
    pub health_timeout: Duration,
}

fn spawn(launch: &Launch, exe: &Path, version: Version) -> std::io::Result<Child> {
    Command::new(exe)
        .args(&launch.args)
        .env(ENV_APP_DIR, launch.app.root())
        .env(ENV_APP_VERSION, version.to_string())
        .spawn()
}

/// The launcher: starts the current version; a version just switched to
/// must report healthy within the timeout, else it is stopped and the
/// previous version starts instead (recorded as rolled back). Starts the
/// app again when it exits with [`RESTART_EXIT_CODE`]; otherwise returns
/// its exit status (systemd restarts the launcher).
pub fn launch(launch: &Launch) -> Result<ExitStatus, UpdateError> {
    std::fs::create_dir_all(launch.app.root()).map_err(io("cannot create", launch.app.root()))?;
    loop {
        launch.app.forget_superseded(launch.packaged_version)?;
        let (exe, version) = match launch.app.current() {
            Some(v) if launch.app.is_staged(v) => (launch.app.executable(v), v),
            _ => (launch.packaged.clone(), launch.packaged_version),
        };
        let on_trial = launch.app.pending() == Some(version);
        if on_trial {
            launch.app.remove_file("healthy");
        }
        let mut child = match spawn(launch, &exe, version) {
            Ok(child) => child,
            Err(e) if on_trial => {
                launch
                    .app
                    .roll_back(version, &format!("did not start: {e}"))?;
                continue;
            }
            Err(e) => return Err(io("cannot start", &exe)(e)),
        };
        if on_trial {
            let deadline = Instant::now() + launch.health_timeout;
            let verdict = loop {
                if launch.app.healthy() == Some(version) {
                    break Ok(());
                }
                if let Ok(Some(status)) = child.try_wait() {
                    break Err(format!("exited ({status}) before reporting healthy"));
                }
                if Instant::now() >= deadline {
                    break Err(format!(
                        "not healthy within {} s",
                        launch.health_timeout.as_secs()
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            match verdict {
                Ok(()) => {
                    launch.app.remove_file("pending");
                    launch.app.record(&UpdateOutcome {
                        version: version.to_string(),
                        state: UpdateState::Installed,
                        detail: None,
                    })?;
                    let removed = launch.app.prune_old_versions();
                    if !removed.is_empty() {
                        tracing::info!(?removed, "older versions removed");
                    }
                }
                Err(reason) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    tracing::warn!(%version, %reason, "update rolled back");
                    launch.app.roll_back(version, &reason)?;
                    continue;
                }
            }
        }
        let status = child.wait().map_err(io("cannot wait for", &exe))?;
        if status.code() != Some(RESTART_EXIT_CODE) {
            return Ok(status);
        }
    }
}

/// What one update check did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateCheck {
    /// Nothing newer on the server.
    UpToDate,
    /// A verified version is staged and waits for a quiet moment.
    Staged(Version),
    /// Refused (recorded and reported at the next check).
    Refused(Version, UpdateRefusal),
}

impl SyncEngine {
    /// `POST /api/sync/update`: the report in, the offer (if any) out.
    async fn post_update_report(
        &self,
        report: &UpdateReport,
    ) -> Result<Option<UpdateOffer>, SyncError> {
        let store = self.store.clone();
        let pairing = blocking(move || store.pairing())
            .await?
            .ok_or(SyncError::NotPaired)?;
        let (base, http) = self.http_for(&pairing.server_url)?;
        let response = http
            .post(format!("{base}/api/sync/update"))
            .bearer_auth(&pairing.token)
            .json(report)
            .send()
            .await
            .map_err(request_error)?;
        Ok(read_json::<UpdateAnswer>(response).await?.offer)
    }

    /// `GET /api/sync/update/{version}`: the bundle streamed into `writer`
    /// (bounded memory: chunk by chunk to a temporary file, hashed on the
    /// way; a body longer than the offer's size is cut off).
    async fn download_bundle(
        &self,
        offer: &UpdateOffer,
        writer: &mut BundleWriter,
    ) -> Result<(), UpdateError> {
        let store = self.store.clone();
        let pairing = blocking(move || store.pairing())
            .await?
            .ok_or(SyncError::NotPaired)?;
        let (base, http) = self.http_for(&pairing.server_url)?;
        let mut response = http
            .get(format!("{base}/api/sync/update/{}", offer.version))
            .bearer_auth(&pairing.token)
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .map_err(request_error)?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(SyncError::Unauthorized.into());
        }
        if !status.is_success() {
            return Err(SyncError::Server {
                status: status.as_u16(),
                body: String::new(),
            }
            .into());
        }
        let limit = (rules::MAGIC.len() + rules::MAX_HEADER_LEN + 1) as u64
            + offer.size.min(rules::MAX_PAYLOAD_LEN);
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(UpdateRefusal::WrongSize.into());
        }
        while let Some(chunk) = response.chunk().await.map_err(request_error)? {
            writer.write(&chunk)?;
        }
        Ok(())
    }

    /// Reports the running version and the last update's outcome, and
    /// stages the newer bundle the server offers (downloaded, verified
    /// against `key`). Switching to it is the caller's, at a quiet moment.
    pub async fn check_update(
        &self,
        app: &AppDir,
        running: Version,
        key: &VerifyingKey,
    ) -> Result<UpdateCheck, UpdateError> {
        let report = UpdateReport {
            running: running.to_string(),
            last: app.last_outcome(),
        };
        let Some(offer) = self.post_update_report(&report).await? else {
            return Ok(UpdateCheck::UpToDate);
        };
        let offered = Version::parse(&offer.version)?;
        if rules::accept_offer(running, offered).is_err() {
            // A server offering an older version: nothing to download.
            return Ok(UpdateCheck::UpToDate);
        }
        // A version this gate refused or rolled back is not tried again
        // (a newer one is): no download loop on a bad release.
        if app.last_outcome().is_some_and(|o| {
            o.version == offered.to_string()
                && matches!(o.state, UpdateState::Refused | UpdateState::RolledBack)
        }) {
            return Ok(UpdateCheck::UpToDate);
        }
        if app.is_staged(offered) {
            return Ok(UpdateCheck::Staged(offered));
        }
        let mut writer = BundleWriter::new(app, offer.size)?;
        let staged = match self.download_bundle(&offer, &mut writer).await {
            Ok(()) => writer.finish(running, key),
            Err(e) => Err(e),
        };
        match staged {
            Ok(version) if version == offered => {
                app.record(&UpdateOutcome {
                    version: version.to_string(),
                    state: UpdateState::Pending,
                    detail: None,
                })?;
                Ok(UpdateCheck::Staged(version))
            }
            Ok(version) => Err(UpdateError::Io(format!(
                "the server offered {offered} but sent {version}"
            ))),
            Err(UpdateError::Refused(refusal)) => {
                tracing::warn!(version = %offered, code = refusal.code(), "update bundle refused");
                app.record(&UpdateOutcome {
                    version: offered.to_string(),
                    state: UpdateState::Refused,
                    detail: Some(refusal.code().to_string()),
                })?;
                Ok(UpdateCheck::Refused(offered, refusal))
            }
            Err(e) => Err(e),
        }
    }
}

impl SyncEngine {
    /// The update loop beside the sync loop (headless gate and kiosk): every
    /// `policy.every`, report and stage; once a verified version is staged,
    /// switch to it at the first quiet moment (`locked()`: whether the
    /// gate's screen is locked now) and return it: the caller exits with
    /// [`RESTART_EXIT_CODE`] for its launcher to start the new version.
    pub async fn watch_updates(&self, policy: &UpdatePolicy, locked: impl Fn() -> bool) -> Version {
        let app = &policy.app;
        let running = running_version();
        let key = release_key();
        let mut staged = None;
        loop {
            match self.check_update(app, running, &key).await {
                Ok(UpdateCheck::Staged(v)) => staged = Some(v),
                Ok(UpdateCheck::Refused(v, refusal)) => {
                    tracing::warn!(version = %v, code = refusal.code(), "update bundle refused")
                }
                Ok(UpdateCheck::UpToDate) => {}
                Err(e) => tracing::warn!(code = e.code(), error = %e, "update check failed"),
            }
            if let Some(version) = staged {
                let store = self.store.clone();
                let (quiet, locked) = (policy.quiet, locked());
                let moment =
                    blocking(move || install_moment_of(&store, quiet, locked, chrono::Utc::now()))
                        .await;
                match moment {
                    Ok(rules::InstallMoment::Now) => match app.activate(version) {
                        Ok(()) => {
                            tracing::info!(%version, locked, "update installed: restarting into it");
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev_key() -> SigningKey {
        let seed = STANDARD
            .decode(include_str!("../../../tests/fixtures/update/dev-release.key").trim())
            .unwrap();
        SigningKey::from_bytes(&seed.try_into().unwrap())
    }

    fn bundle(key: &SigningKey, version: Version, payload: &[u8]) -> Vec<u8> {
        rules::make_bundle(key, version, &sha256(payload), payload)
    }

    #[test]
    fn the_dev_public_key_is_the_fixture_private_keys() {
        assert_eq!(dev_key().verifying_key(), release_key());
    }

    #[test]
    fn staging_verifies_and_switching_is_by_link() {
        let dir = tempfile::tempdir().unwrap();
        let app = AppDir::new(dir.path(), "app");
        let v1 = Version(1, 0, 1);
        let bytes = bundle(&dev_key(), v1, b"#!/bin/sh\nexit 0\n");
        assert_eq!(
            app.stage(&bytes, Version(1, 0, 0), &release_key()).unwrap(),
            v1
        );
        assert_eq!(app.current(), None, "staging does not switch");
        app.activate(v1).unwrap();
        assert_eq!(app.current(), Some(v1));
        assert_eq!(app.pending(), Some(v1));
        assert_eq!(
            std::fs::read(dir.path().join("current/app")).unwrap(),
            b"#!/bin/sh\nexit 0\n"
        );
    }

    /// After N installs a gate keeps what can still run: the current
    /// version, the previous one (a roll-back's target) and a newer one
    /// staged for later; older folders go.
    #[test]
    fn older_versions_are_removed_keeping_current_previous_and_staged() {
        let dir = tempfile::tempdir().unwrap();
        let app = AppDir::new(dir.path(), "app");
        let stage = |v: Version, running: Version| {
            let bytes = bundle(&dev_key(), v, b"#!/bin/sh\nexit 0\n");
            app.stage(&bytes, running, &release_key()).unwrap();
        };
        for patch in 1..=4 {
            let v = Version(1, 0, patch);
            stage(v, Version(1, 0, patch - 1));
            app.activate(v).unwrap();
        }
        // 1.0.5 staged (downloaded) but not yet switched to.
        stage(Version(1, 0, 5), Version(1, 0, 4));
        std::fs::write(dir.path().join("versions/.1.0.6.part"), b"half").unwrap();
        // A download cut off two hours ago.
        let cut = dir.path().join("versions/.1.0.6.77-1.part");
        std::fs::write(&cut, b"cut off").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&cut)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(7200))
            .unwrap();
        assert_eq!(app.current(), Some(Version(1, 0, 4)));
        assert_eq!(
            app.prune_old_versions(),
            vec![Version(1, 0, 1), Version(1, 0, 2)]
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path().join("versions"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [".1.0.6.part", "1.0.3", "1.0.4", "1.0.5"],
            "the cut-off download is removed, the live one kept"
        );
        assert!(
            app.is_staged(Version(1, 0, 3)),
            "the roll-back target still runs"
        );
        assert!(
            app.prune_old_versions().is_empty(),
            "nothing more to remove"
        );
        // On the packaged binary (no `current`) nothing is removed.
        let fresh = tempfile::tempdir().unwrap();
        let packaged = AppDir::new(fresh.path(), "app");
        assert!(packaged.prune_old_versions().is_empty());
    }

    #[test]
    fn a_bad_signature_or_a_downgrade_is_not_staged() {
        let dir = tempfile::tempdir().unwrap();
        let app = AppDir::new(dir.path(), "app");
        let forged = bundle(&SigningKey::from_bytes(&[7; 32]), Version(2, 0, 0), b"x");
        let old = bundle(&dev_key(), Version(0, 9, 0), b"x");
        let cases = [
            (forged, UpdateRefusal::BadSignature),
            (old, UpdateRefusal::NotNewer),
        ];
        for (bytes, want) in cases {
            match app.stage(&bytes, Version(1, 0, 0), &release_key()) {
                Err(UpdateError::Refused(got)) => assert_eq!(got, want),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            leftovers(dir.path()),
            Vec::<String>::new(),
            "nothing staged, no .part left"
        );
    }

    /// A payload of `len` bytes that is not all one value.
    fn big_payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir.join("versions"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn a_large_bundle_streams_through_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let app = AppDir::new(dir.path(), "app");
        // Larger than any buffer on the way (3 MiB in 8191-byte chunks).
        let payload = big_payload(3 * 1024 * 1024 + 17);
        let v = Version(1, 2, 0);
        let bytes = bundle(&dev_key(), v, &payload);
        let mut writer = BundleWriter::new(&app, payload.len() as u64).unwrap();
        for chunk in bytes.chunks(8191) {
            writer.write(chunk).unwrap();
        }
        assert_eq!(writer.finish(Version(1, 0, 0), &release_key()).unwrap(), v);
        assert_eq!(std::fs::read(app.executable(v)).unwrap(), payload);
        assert_eq!(
            leftovers(dir.path()),
            vec!["1.2.0".to_string()],
            "no .part left"
        );
    }

    #[test]
    fn a_stream_longer_than_its_size_or_altered_is_refused_and_leaves_nothing() {
        let payload = big_payload(100_000);
        let v = Version(1, 2, 0);
        let good = bundle(&dev_key(), v, &payload);
        // One byte more than the header says: refused as it arrives.
        let mut longer = good.clone();
        longer.push(0);
        // The same size, one byte changed: refused at the end (digest).
        let mut altered = good.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        let cases: [(&[u8], u64, UpdateRefusal); 4] = [
            (&longer, payload.len() as u64, UpdateRefusal::WrongSize),
            (
                &altered,
                payload.len() as u64,
                UpdateRefusal::DigestMismatch,
            ),
            // The offer said less than the header: cut off at the header.
            (&good, payload.len() as u64 - 1, UpdateRefusal::WrongSize),
            // Ends early.
            (
                &good[..good.len() - 10],
                payload.len() as u64,
                UpdateRefusal::WrongSize,
            ),
        ];
        for (bytes, offered_size, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            let app = AppDir::new(dir.path(), "app");
            let mut writer = BundleWriter::new(&app, offered_size).unwrap();
            let got = bytes
                .chunks(4096)
                .try_for_each(|c| writer.write(c))
                .and_then(|()| writer.finish(Version(1, 0, 0), &release_key()));
            match got {
                Err(UpdateError::Refused(r)) => assert_eq!(r, want),
                other => panic!("{want:?}: {other:?}"),
            }
            assert!(!app.is_staged(v));
            assert_eq!(leftovers(dir.path()), Vec::<String>::new(), "{want:?}");
        }
    }

    #[cfg(unix)]
    fn launch_with(dir: &Path, payload: &str) -> (Launch, Version) {
        let app = AppDir::new(dir.join("app"), "app");
        let packaged = dir.join("packaged");
        // The packaged version: reports healthy and exits 0.
        std::fs::write(
            &packaged,
            "#!/bin/sh\necho \"$ENTRADA_APP_VERSION\" > \"$ENTRADA_APP_DIR/healthy\"\necho \"$ENTRADA_APP_VERSION\" >> \"$ENTRADA_APP_DIR/ran\"\n",
        )
        .unwrap();
        set_executable(&packaged).unwrap();
        std::fs::create_dir_all(app.root()).unwrap();
        let v = Version(1, 1, 0);
        let bytes = bundle(&dev_key(), v, payload.as_bytes());
        app.stage(&bytes, Version(1, 0, 0), &release_key()).unwrap();
        app.activate(v).unwrap();
        (
            Launch {
                app,
                packaged,
                packaged_version: Version(1, 0, 0),
                args: vec![],
                health_timeout: Duration::from_secs(20),
            },
            v,
        )
    }

    #[cfg(unix)]
    #[test]
    fn a_version_that_reports_healthy_stays_installed() {
        let dir = tempfile::tempdir().unwrap();
        let (l, v) = launch_with(
            dir.path(),
            "#!/bin/sh\necho \"$ENTRADA_APP_VERSION\" > \"$ENTRADA_APP_DIR/healthy\"\necho \"$ENTRADA_APP_VERSION\" >> \"$ENTRADA_APP_DIR/ran\"\n",
        );
        assert!(launch(&l).unwrap().success());
        assert_eq!(l.app.current(), Some(v));
        assert_eq!(l.app.pending(), None);
        assert_eq!(l.app.last_outcome().unwrap().state, UpdateState::Installed);
        let ran = std::fs::read_to_string(l.app.root().join("ran")).unwrap();
        assert_eq!(ran, "1.1.0\n");
    }

    #[cfg(unix)]
    #[test]
    fn a_packaged_version_as_new_as_the_staged_one_runs_instead() {
        for packaged in [Version(1, 1, 0), Version(1, 2, 0)] {
            let dir = tempfile::tempdir().unwrap();
            // The staged 1.1.0 would exit 3 (and be rolled back) if it ran.
            let (mut l, v) = launch_with(dir.path(), "#!/bin/sh\nexit 3\n");
            l.packaged_version = packaged;
            assert_eq!(l.app.current(), Some(v));
            assert!(launch(&l).unwrap().success());
            let ran = std::fs::read_to_string(l.app.root().join("ran")).unwrap();
            assert_eq!(ran, format!("{packaged}\n"), "the packaged binary ran");
            assert_eq!(l.app.current(), None);
            assert_eq!(l.app.previous(), None);
            assert_eq!(l.app.pending(), None);
            assert_eq!(l.app.last_outcome(), None, "nothing was rolled back");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_version_that_fails_to_start_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let (l, v) = launch_with(dir.path(), "#!/bin/sh\nexit 3\n");
        assert!(launch(&l).unwrap().success(), "the packaged version ran");
        assert_eq!(l.app.current(), None);
        assert!(!l.app.is_staged(v));
        let outcome = l.app.last_outcome().unwrap();
        assert_eq!(
            (outcome.version.as_str(), outcome.state),
            ("1.1.0", UpdateState::RolledBack)
        );
        let ran = std::fs::read_to_string(l.app.root().join("ran")).unwrap();
        assert_eq!(ran, "1.0.0\n");
    }
}
