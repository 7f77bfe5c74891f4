//! `entrada-desktop`: the gate app. Flags, environment and the settings
//! screen configure it; with a server and a device token it pairs, syncs and
//! pushes its verifications on its own; without one it runs standalone on
//! the demo data set.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use entrada::store::{LocalData, Store};
use entrada_desktop::camera::{self, CameraChoice, LoopEvent};
use entrada_desktop::commands;
use entrada_desktop::data_dir;
use entrada_desktop::device::DeviceLink;
use entrada_desktop::gate::{GateService, GateSettings, StartOptions};
use tauri::{Emitter, Manager};

#[derive(Parser, Debug)]
#[command(
    name = "entrada-desktop",
    version = entrada::sync::update::VERSION_TEXT,
    about = "Entrada gate app: scan tickets, admit or refuse, online or offline"
)]
struct Args {
    /// The gate's local database (created if missing). Default: DIR/gate.db
    /// with --data-dir, else $XDG_DATA_HOME/entrada/gate.db
    /// (~/.local/share/entrada/gate.db)
    #[arg(long, env = "ENTRADA_DB")]
    db: Option<PathBuf>,
    /// Folder for the database when --db is not given (the kiosk service
    /// sets its state folder, /var/lib/entrada-gate)
    #[arg(long, env = "ENTRADA_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Server to pair and sync with, e.g. https://10.0.0.5:8443
    /// (plain http:// only to this machine unless --allow-http)
    #[arg(long, env = "ENTRADA_SERVER", requires = "token")]
    server: Option<String>,
    /// Device token from `entrada device add`
    #[arg(long, env = "ENTRADA_TOKEN", requires = "server")]
    token: Option<String>,
    /// PEM file with the certificate of the venue's own CA (kept for later starts;
    /// the settings screen can set it too)
    #[arg(long, env = "ENTRADA_CA_CERT", value_name = "PEM")]
    ca_cert: Option<PathBuf>,
    /// Accept a plain http:// server that is not on this machine (anyone on the
    /// network can read and change the gate's traffic)
    #[arg(long, env = "ENTRADA_ALLOW_HTTP")]
    allow_http: bool,
    /// Exchange admissions with the other gates of this venue over the LAN
    /// (issue 14), listening on ADDR:PORT (off unless given)
    #[arg(long, env = "ENTRADA_LAN_LISTEN", value_name = "ADDR:PORT")]
    lan_listen: Option<std::net::SocketAddr>,
    /// Another gate's LAN exchange, HOST:PORT (repeatable; the env var takes a
    /// comma-separated list)
    #[arg(
        long = "peer",
        env = "ENTRADA_PEERS",
        value_delimiter = ',',
        value_name = "HOST:PORT"
    )]
    peers: Vec<String>,
    /// Do not advertise or browse for the venue's gates by mDNS
    /// (`_entrada-gate._tcp`); `ENTRADA_LAN_MDNS=0` does the same
    #[arg(long = "no-mdns")]
    no_mdns: bool,
    /// auto, a camera index or name, or folder:PATH (replays images as frames).
    /// Default: the settings screen's choice, else auto
    #[arg(long, env = "ENTRADA_CAMERA")]
    camera: Option<CameraChoice>,
    /// Sign this operator in at start (gate PCs set up by script)
    #[arg(long, env = "ENTRADA_OPERATOR")]
    operator: Option<i64>,
    /// Fullscreen, no window chrome (default: the settings screen's choice)
    #[arg(long, env = "ENTRADA_KIOSK")]
    kiosk: bool,
    /// Lock after this many seconds without activity
    /// (default: the settings screen's choice, else 300)
    #[arg(long, env = "ENTRADA_AUTO_LOCK_SECS")]
    auto_lock_secs: Option<u64>,
    /// Dim the screen and scan less after this many seconds without a scan
    /// or touch, for handhelds on a battery; 0: never
    /// (default: the settings screen's choice, else never)
    #[arg(long, env = "ENTRADA_IDLE_DIM_SECS")]
    idle_dim_secs: Option<u64>,
    /// Seconds between sync rounds
    #[arg(long, env = "ENTRADA_SYNC_INTERVAL", default_value_t = 1.0)]
    sync_interval: f64,
    /// Fleet updates: the app folder (versions/, current link, ...), e.g.
    /// /var/lib/entrada-gate/app. Given to a process no launcher started, that
    /// process is the launcher: it runs the folder's current version (else
    /// this binary) with the same arguments, starts it again after an update,
    /// and rolls back a new version not healthy (a first sync round) in time
    #[arg(long, env = "ENTRADA_APP_DIR", value_name = "DIR")]
    app_dir: Option<PathBuf>,
    /// Seconds between update checks (with --app-dir)
    #[arg(long, env = "ENTRADA_UPDATE_EVERY", default_value_t = 300.0)]
    update_every: f64,
    /// An update installs only with the screen locked or after this many
    /// seconds without a scan
    #[arg(long, env = "ENTRADA_UPDATE_QUIET", default_value_t = 60)]
    update_quiet: i64,
    /// Seconds a version just switched to has to complete a sync round (the launcher)
    #[arg(long, env = "ENTRADA_HEALTH_TIMEOUT", default_value_t = 120)]
    health_timeout: u64,
}

/// With `--app-dir` and no launcher above this process: be the launcher
/// (`entrada::sync::update::launch`), else None.
fn run_as_launcher(args: &Args) -> anyhow::Result<Option<i32>> {
    use entrada::sync::update::{self as updater, AppDir, Launch};
    let Some(app_dir) = &args.app_dir else {
        return Ok(None);
    };
    if std::env::var_os(updater::ENV_APP_VERSION).is_some() {
        return Ok(None);
    }
    let launch = Launch {
        app: AppDir::new(app_dir, "entrada-desktop"),
        packaged: std::env::current_exe().context("this program's path")?,
        packaged_version: updater::build_version(),
        args: std::env::args_os().skip(1).collect(),
        health_timeout: Duration::from_secs(args.health_timeout),
    };
    tracing::info!(app_dir = %app_dir.display(), "launcher: starting the gate app");
    let status = updater::launch(&launch).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Some(status.code().unwrap_or(1)))
}

/// Fullscreen in kiosk mode; else the configured size, or the whole screen
/// where that does not fit (`entrada_desktop::window::plan`).
fn fit_window(window: &tauri::WebviewWindow, kiosk: bool) {
    use entrada_desktop::window::{plan, WindowPlan, MIN_SIZE};
    let scale = window.scale_factor().unwrap_or(1.0);
    let wanted = window
        .inner_size()
        .map(|s| s.to_logical::<f64>(scale))
        .map(|s| (s.width, s.height))
        .unwrap_or((1280.0, 800.0));
    let screen = window.current_monitor().ok().flatten().map(|m| {
        let s = m.size().to_logical::<f64>(m.scale_factor());
        (s.width, s.height)
    });
    let _ = window.set_min_size(Some(tauri::LogicalSize::new(MIN_SIZE.0, MIN_SIZE.1)));
    match plan(kiosk, wanted, screen) {
        WindowPlan::Fullscreen => {
            let _ = window.set_decorations(false);
            let _ = window.set_fullscreen(true);
        }
        WindowPlan::Maximized => {
            let _ = window.maximize();
        }
        WindowPlan::Windowed { .. } => {}
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ENTRADA_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,rusqlite_migration=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    entrada::sync::update::warn_if_dev_key();
    if let Some(code) = run_as_launcher(&args)? {
        std::process::exit(code);
    }
    let location = data_dir::resolve(&data_dir::DataDirInputs {
        db: args.db.clone(),
        data_dir: args.data_dir.clone(),
        xdg_data_home: std::env::var_os("XDG_DATA_HOME"),
        home: std::env::var_os("HOME"),
        earlier_default: Some(PathBuf::from(data_dir::EARLIER_DEFAULT)).filter(|p| p.is_file()),
    })?;
    let db = location.path;
    data_dir::create_parent(&db)
        .with_context(|| format!("creating the folder of {}", db.display()))?;
    tracing::info!(db = %db.display(), source = ?location.source, "gate database");
    let store = Arc::new(Store::open(&db).with_context(|| format!("opening {}", db.display()))?);
    let ca_cert = match &args.ca_cert {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    let transport = entrada_desktop::device::start_transport(&store, ca_cert, args.allow_http)?;
    let engine = Arc::new(
        entrada::sync::client::SyncEngine::with_transport(store.clone(), transport)
            .map_err(|e| anyhow::anyhow!("--ca-cert: {e}"))?,
    );

    let flags = StartOptions {
        camera: args.camera.clone(),
        kiosk: args.kiosk.then_some(true),
        auto_lock_secs: args.auto_lock_secs,
        idle_dim_secs: args.idle_dim_secs,
    };
    let settings = GateSettings::resolve(&flags, &store.device_settings()?);
    let paired_before = store.pairing()?.is_some();
    // Standalone means the demo data set: never added to a file that holds
    // a server's data or anything else that is not the demo's.
    match store.local_data()? {
        LocalData::Server | LocalData::Other => anyhow::bail!(
            "{} holds a server's or other data; a gate needs its own file (e.g. --db entrada-gate.db)",
            db.display()
        ),
        LocalData::Replica | LocalData::Empty | LocalData::Demo => {}
    }
    if !paired_before && args.server.is_none() {
        let report = entrada::demo::populate(&store, chrono::Utc::now(), |_| {})?;
        tracing::info!(
            created = report.created,
            "standalone mode on the demo data set"
        );
    }
    let kiosk = settings.kiosk;
    let gate = Arc::new(GateService::new(store.clone(), settings).map_err(|e| anyhow::anyhow!(e))?);
    let interval = Duration::from_secs_f64(args.sync_interval.max(0.1));
    let link = Arc::new(DeviceLink::new(gate.clone(), engine, interval));
    let lan = entrada::sync::lan::LanConfig {
        listen: args.lan_listen,
        peers: args.peers.clone(),
    };
    if let (Some(server), Some(token)) = (&args.server, &args.token) {
        // Before the window opens: the replica then holds the venue and its
        // operators (for --operator and PIN sign-in).
        tauri::async_runtime::block_on(link.provision(server, token))
            .map_err(|e| anyhow::anyhow!("pairing with {server}: {e}"))?;
    }
    if let Some(id) = args.operator {
        gate.start_session(id)
            .map_err(|e| anyhow::anyhow!("--operator {id}: {e}"))?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (app_dir, update_every, update_quiet) =
        (args.app_dir.clone(), args.update_every, args.update_quiet);
    let no_mdns = args.no_mdns;

    let (gate_setup, stop_setup, link_setup) = (gate.clone(), stop.clone(), link.clone());
    let window_gate = gate.clone();
    tauri::Builder::default()
        .manage(gate.clone())
        // No preview frames for a minimized or hidden window (GTK reports a
        // minimize as a move and a resize; a hide or show comes with a focus change).
        .on_window_event(move |window, event| {
            if matches!(
                event,
                tauri::WindowEvent::Resized(_)
                    | tauri::WindowEvent::Moved(_)
                    | tauri::WindowEvent::Focused(_)
            ) {
                let shown =
                    window.is_visible().unwrap_or(true) && !window.is_minimized().unwrap_or(false);
                window_gate.set_window_shown(shown);
            }
        })
        .manage(link.clone())
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::operators,
            commands::sign_in,
            commands::sign_out,
            commands::scan_code,
            commands::admit_anyway,
            commands::direction,
            commands::occupancy,
            commands::venue_ops,
            commands::check_everyone_out,
            commands::book_walkup,
            commands::undo_admission,
            commands::slots,
            commands::change_slot,
            commands::lookup,
            commands::sync_status,
            commands::conflicts,
            commands::touch,
            commands::camera_status,
            commands::last_scan,
            commands::dismiss_scan,
            commands::settings,
            commands::pair_device,
            commands::pair_with_code,
            commands::pairing_scan,
            commands::set_camera,
            commands::set_camera_adjust,
            commands::set_kiosk,
            commands::set_auto_lock,
            commands::set_lan_port,
            commands::set_idle_dim,
            commands::set_preview,
            commands::set_power_save,
            commands::defer_updates,
        ])
        .setup(move |app| {
            if let Some(window) = app.get_webview_window("main") {
                fit_window(&window, kiosk);
            }
            let handle = app.handle().clone();
            let camera_gate = gate_setup.clone();
            std::thread::Builder::new()
                .name("scan-loop".into())
                .spawn(move || {
                    camera::run(gate_setup, stop_setup, |event| {
                        let _ = match event {
                            LoopEvent::Camera(c) => {
                                camera_gate.set_camera_status(c.clone());
                                handle.emit("camera", c)
                            }
                            LoopEvent::Preview(p) => handle.emit("preview", p),
                            LoopEvent::Scan(s) => handle.emit("scan", *s),
                            LoopEvent::ScanError(e) => handle.emit("scan-error", e),
                            LoopEvent::Pairing(p) => handle.emit("pairing-code", *p),
                        };
                    })
                })?;
            let handle = app.handle().clone();
            link_setup.on_round(move |view| {
                let _ = handle.emit("sync", view);
            });
            link_setup.start_sync();
            link_setup.start_lan(lan, no_mdns);
            if let Some(app_dir) = &app_dir {
                let policy = entrada::sync::update::UpdatePolicy {
                    app: entrada::sync::update::AppDir::new(app_dir, "entrada-desktop"),
                    every: Duration::from_secs_f64(update_every.max(0.1)),
                    quiet: chrono::Duration::seconds(update_quiet.max(0)),
                };
                link_setup.start_updates(policy, |version| {
                    tracing::info!(%version, "update installed: the launcher starts it");
                    std::process::exit(entrada::sync::update::RESTART_EXIT_CODE);
                });
            }
            Ok(())
        })
        .run(tauri::generate_context!())
        .context("running the window")?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}
