//! The `entrada` CLI's clap types (flags, subcommands) and the helpers every command shares.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use entrada::store::Store;
use indicatif::{ProgressBar, ProgressStyle};

pub(crate) mod admin;
pub(crate) mod engine;
pub(crate) mod gate;
pub(crate) mod seed;
pub(crate) mod serve;
pub(crate) mod sync;
pub(crate) mod ticket;
pub(crate) mod update;

#[derive(Parser)]
#[command(
    name = "entrada",
    version = entrada::sync::update::VERSION_TEXT,
    about = "Entrada: time-slot reservations and gate verification"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Args, Clone)]
pub(crate) struct DbArg {
    /// SQLite database file (created if missing), or a postgres:// URL
    #[arg(long, env = "ENTRADA_DB", value_name = "FILE|URL")]
    db: PathBuf,
    /// PostgreSQL: connections this process keeps at most
    #[arg(long, env = "ENTRADA_DB_POOL_SIZE", default_value_t = 8)]
    pool_size: u32,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Create or upgrade the database schema
    Migrate(DbArg),
    /// Manage venues
    #[command(subcommand)]
    Venue(VenueCommand),
    /// Generate data
    #[command(subcommand)]
    Seed(SeedCommand),
    /// Run the HTTP API server (creates and migrates the database if needed)
    Serve(ServeArgs),
    /// Manage API tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// The admin console (sign-in links)
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Manage gate operators
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Organisation settings (signed codes only)
    #[command(subcommand)]
    Org(OrgCommand),
    /// Ticket codes and QR images
    #[command(subcommand)]
    Ticket(TicketCommand),
    /// Signing keys for ticket codes
    #[command(subcommand)]
    Key(KeyCommand),
    /// The gate, headless: verdicts against a local database
    #[command(subcommand)]
    Gate(GateCommand),
    /// Gate devices (server side)
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Sync a gate device's database with the server (pairs on first use)
    Sync(SyncArgs),
    /// Fleet updates of the gate app: release key, signed bundles, publishing, deferral
    #[command(subcommand)]
    Update(update::UpdateCommand),
    /// Run a gate under its launcher: starts the app folder's current version, rolls
    /// back a new version that does not report healthy (the gate service's ExecStart)
    Launch(update::LaunchArgs),
    /// Fill a database with a ready-to-use demo (two orgs, venues, 90 days of slots, tickets in every state)
    Demo {
        #[command(flatten)]
        db: DbArg,
        /// Print the report as JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

/// `entrada sync` flags.
#[derive(Args)]
pub(crate) struct SyncArgs {
    #[command(flatten)]
    db: DbArg,
    /// Server base URL, e.g. https://gate-server.example:8443 (needed the first time);
    /// plain http:// only to this machine unless --allow-http
    #[arg(long, env = "ENTRADA_SERVER")]
    server: Option<String>,
    /// Device token from `entrada device add` (needed the first time)
    #[arg(long, env = "ENTRADA_TOKEN")]
    token: Option<String>,
    /// One round (upload, then download) and exit
    #[arg(long, conflicts_with = "watch")]
    once: bool,
    /// Keep syncing every --interval until stopped
    #[arg(long)]
    watch: bool,
    /// Seconds between rounds with --watch
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Changes per page, a first sync's too (default: 2000, and 5000 while a
    /// first sync fills an empty replica)
    #[arg(long)]
    page_size: Option<u32>,
    /// With --watch: exchange admissions with the other gates of this venue over the
    /// LAN (issue 14), listening on ADDR:PORT (off unless given)
    #[arg(long, env = "ENTRADA_LAN_LISTEN", value_name = "ADDR:PORT")]
    lan_listen: Option<std::net::SocketAddr>,
    /// With --watch: another gate's LAN exchange, HOST:PORT (repeatable; the env var
    /// takes a comma-separated list). Only gates the server listed for this venue connect.
    #[arg(
        long = "peer",
        env = "ENTRADA_PEERS",
        value_delimiter = ',',
        value_name = "HOST:PORT"
    )]
    peers: Vec<String>,
    /// With --lan-listen: do not advertise this gate nor look for the venue's other
    /// gates by mDNS/DNS-SD (`_entrada-gate._tcp`); ENTRADA_LAN_MDNS=0 does the same.
    /// Discovery is off anyway when the exchange listens on a loopback address.
    #[arg(long = "no-mdns")]
    no_mdns: bool,
    #[command(flatten)]
    trust: TrustArgs,
    /// With --watch: check the server for gate updates and install them into this
    /// app folder (the one `entrada launch --app-dir` runs from)
    #[arg(long, env = "ENTRADA_APP_DIR")]
    app_dir: Option<PathBuf>,
    /// Seconds between update checks
    #[arg(long, default_value_t = 300.0)]
    update_every: f64,
    /// An update installs only after this many seconds without a scan
    #[arg(long, default_value_t = 60)]
    update_quiet: i64,
}

/// How a gate trusts its server.
#[derive(Args, Clone)]
pub(crate) struct TrustArgs {
    /// PEM file with the certificate of the venue's own CA, trusted besides the public ones
    #[arg(long, env = "ENTRADA_CA_CERT", value_name = "PEM")]
    ca_cert: Option<PathBuf>,
    /// Accept a plain http:// server that is not on this machine (traffic readable and
    /// changeable by anyone on the network)
    #[arg(long, env = "ENTRADA_ALLOW_HTTP")]
    allow_http: bool,
}

#[derive(Subcommand)]
pub(crate) enum VenueCommand {
    /// Add a venue; prints only its id
    Add {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        orq: i64,
        #[arg(long)]
        name: String,
        /// IANA time zone, e.g. Europe/Madrid
        #[arg(long)]
        timezone: String,
    },
    /// List an org's venues as JSON lines
    List {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        orq: i64,
    },
    /// Closing time: check everyone inside the venue out now (one exit each, reason CLOSING);
    /// prints {venue_id, checked_out, inside, at} as JSON
    Checkout {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        orq: i64,
        #[arg(long)]
        venue: i64,
        /// The supervisor who closes, recorded with the exits
        #[arg(long)]
        operator: Option<i64>,
    },
    /// Take every walk-up lease of the venue's gates back to its slot now;
    /// prints {"returned": [{slot_id, places}]} as JSON
    TakeLeases {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        orq: i64,
        #[arg(long)]
        venue: i64,
    },
}

#[derive(Subcommand)]
pub(crate) enum TicketCommand {
    /// Render a ticket's signed code as a QR image (.png or .svg)
    Qr {
        #[command(flatten)]
        db: DbArg,
        /// The ticket code, e.g. TKT-2025-ABC123
        code: String,
        #[arg(long, default_value_t = 1)]
        orq: i64,
        #[arg(long, value_name = "FILE.png|FILE.svg")]
        out: PathBuf,
    },
    /// Render the QR images of many tickets into a folder (one CODE.png each; a code with
    /// characters other than A-Z a-z 0-9 - _ gets a safe name plus a short hash)
    ExportQr {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        orq: i64,
        #[arg(long)]
        out_dir: PathBuf,
        /// At most this many tickets (in code order)
        #[arg(long, default_value_t = 100_000)]
        limit: u32,
        /// png or svg
        #[arg(long, default_value = "png")]
        format: String,
    },
    /// Print a ticket's signed code
    Code {
        #[command(flatten)]
        db: DbArg,
        code: String,
        #[arg(long, default_value_t = 1)]
        orq: i64,
        /// Re-issue: revoke every code printed before
        #[arg(long)]
        reissue: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum KeyCommand {
    /// List an org's public keys as JSON lines
    List {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        orq: i64,
    },
    /// Start signing with a new key (old keys stay valid until retired); prints its id
    Rotate {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        orq: i64,
    },
    /// Retire a key: codes it signed are refused from now on
    Retire {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        orq: i64,
        kid: u32,
    },
}

#[derive(Subcommand)]
pub(crate) enum GateCommand {
    /// The gate's verdict for CODE, recorded like a scan; prints one JSON object.
    /// Exit status: 0 ADMIT, 1 refused, 2 error.
    Verify {
        #[command(flatten)]
        db: DbArg,
        /// What the scanner read (plain or signed code)
        code: String,
        #[arg(long, default_value_t = 1)]
        orq: i64,
        /// The operator recorded as verified_by
        #[arg(long, default_value_t = 0)]
        operator: i64,
        /// The gate's venue (checked against the reservation)
        #[arg(long)]
        venue: Option<i64>,
        /// Which way the gate scans: `in` (entries, and re-entries as the
        /// venue allows) or `out` (exits: EXIT, or NOT_INSIDE with its reason)
        #[arg(long, default_value = "in", value_parser = parse_direction)]
        direction: entrada::domain::venue_ops::Direction,
    },
    /// Books a walk-up: a holder with a valid ticket and no reservation (or a
    /// deferred ticket not activated) is booked into the slot open now and
    /// admitted. A paired gate asks its server first (its reservation path,
    /// free places only; a few seconds at most); offline, or when the server has no
    /// free place left, it books from this gate's lease. Prints one JSON
    /// verdict (ADMIT, or the refusal, e.g. NO_PLACE_LEFT).
    /// Exit status: 0 ADMIT, 1 refused, 2 error.
    Book {
        #[command(flatten)]
        db: DbArg,
        /// What the scanner read (plain or signed code)
        code: String,
        #[arg(long, default_value_t = 1)]
        orq: i64,
        /// The operator recorded as verified_by
        #[arg(long, default_value_t = 0)]
        operator: i64,
        /// The gate's venue (default: the paired gate's)
        #[arg(long)]
        venue: Option<i64>,
        /// Do not ask the server: book from this gate's lease only
        #[arg(long)]
        offline: bool,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// A supervisor checks everyone out of this paired gate's venue now
    /// (closing time, an evacuation): online only, by the server, which
    /// checks the operator's role; then a sync round brings the exits here.
    /// Prints the checkout as JSON. Exit status: 0 done, 2 refused/error.
    Checkout {
        #[command(flatten)]
        db: DbArg,
        /// The supervisor (or admin) checking everyone out
        #[arg(long)]
        operator: i64,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Undoes the operator's own admission of CODE within 60 s, with a
    /// reason; prints the ticket's verdict now. Exit status: 0 undone, 2 refused/error.
    Undo {
        #[command(flatten)]
        db: DbArg,
        code: String,
        #[arg(long, default_value_t = 1)]
        orq: i64,
        /// The operator who let the holder in
        #[arg(long)]
        operator: i64,
        /// Why (3 to 200 characters), e.g. "wrong phone scanned"
        #[arg(long)]
        reason: String,
    },
    /// The gate's best knowledge of the people inside its venue (its
    /// replica, as of its last sync); prints one JSON object.
    Occupancy {
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value_t = 1)]
        orq: i64,
        /// The venue (default: the paired gate's)
        #[arg(long)]
        venue: Option<i64>,
    },
}

fn parse_direction(raw: &str) -> Result<entrada::domain::venue_ops::Direction, String> {
    entrada::domain::venue_ops::Direction::parse(raw).map_err(|e| e.to_string())
}

/// The longest token cache TTL `entrada serve` takes (ms): the window in
/// which another instance may still accept a revoked token.
pub(crate) const MAX_TOKEN_CACHE_TTL_MS: u64 = 60_000;

/// The most connections one `entrada serve` instance may keep
/// (PostgreSQL's default max_connections is 100).
pub(crate) const MAX_POOL_SIZE: u32 = 1000;

/// `entrada serve` settings: flags, then `ENTRADA_*` variables, then the
/// `--config` file, then the defaults.
#[derive(Args)]
pub(crate) struct ServeArgs {
    /// TOML file with any of: db, listen, ui_dir, lookups_per_minute, tls_cert, tls_key, tls_ca, updates_dir, public_url,
    /// token_cache_ttl_ms, pool_size
    /// (the slot window's grace is each venue's: PATCH /api/admin/venues/{id})
    #[arg(long, env = "ENTRADA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// SQLite database file (created if missing), or a postgres:// URL
    #[arg(long, env = "ENTRADA_DB", value_name = "FILE|URL")]
    db: Option<PathBuf>,
    /// PostgreSQL: connections this instance keeps at most (all instances
    /// together stay under the server's max_connections) [default: 8]
    #[arg(long, env = "ENTRADA_DB_POOL_SIZE")]
    pool_size: Option<u32>,
    /// PostgreSQL: milliseconds this instance answers a token it read valid from memory; a
    /// revocation made through another instance or the CLI reaches it within that time;
    /// 0 = no cache (every request reads its token) [default: 2000, at most 60000]
    #[arg(long, env = "ENTRADA_TOKEN_CACHE_TTL_MS", value_name = "MS",
          value_parser = clap::value_parser!(u64).range(0..=MAX_TOKEN_CACHE_TTL_MS))]
    token_cache_ttl_ms: Option<u64>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "ENTRADA_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Folder with the customer page's built assets, served under / [default: ui/dist]
    #[arg(long, env = "ENTRADA_UI_DIR")]
    ui_dir: Option<PathBuf>,
    /// Ticket look-ups and PIN checks per token and per client address per minute; 0 = no limit [default: 600]
    #[arg(long, env = "ENTRADA_LOOKUPS_PER_MINUTE")]
    lookups_per_minute: Option<u32>,
    /// Folder of published gate update bundles (`entrada update publish`); none: no updates offered
    #[arg(long, env = "ENTRADA_UPDATES_DIR")]
    updates_dir: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM: the server's certificate first)
    #[arg(
        long,
        env = "ENTRADA_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM)
    #[arg(
        long,
        env = "ENTRADA_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// The venue's own CA certificate (PEM) that signed --tls-cert: new gates' pairing QR
    /// codes carry its SHA-256, and the server sends it in its chain so a gate can pin it
    #[arg(
        long,
        env = "ENTRADA_TLS_CA",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    tls_ca: Option<PathBuf>,
    /// The address gates and browsers reach this server at, when it is not the one the
    /// browser used (behind a reverse proxy or a NAT): new gates' pairing QR codes carry it;
    /// an https:// address also makes console cookies Secure
    #[arg(long, env = "ENTRADA_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// Fill the database with the demo data set first (as `entrada demo`)
    #[arg(long)]
    demo: bool,
    /// Seconds between two no-show releases (venues' `no_show_release_minutes`) [default: 30]
    #[arg(long, env = "ENTRADA_NO_SHOW_SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) no_show_seconds: Option<u64>,
}

#[derive(Subcommand)]
pub(crate) enum DeviceCommand {
    /// Register a gate device; prints only its token
    Add {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        orq: i64,
        #[arg(long)]
        venue: i64,
        #[arg(long)]
        name: String,
    },
    /// The org's gate devices with the app version each runs and its last update, as JSON lines
    List {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        orq: i64,
    },
    /// Revoke a device: its token stops working
    Revoke {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        orq: i64,
        device_id: i64,
    },
}

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token; prints only the token
    Create {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        orq: i64,
        /// customer, operator, supervisor or admin
        #[arg(long)]
        role: String,
        /// The customer's user id (required for customers) or the operator's id
        #[arg(long)]
        user_id: Option<i64>,
        /// Bind a gate token to a venue
        #[arg(long)]
        venue: Option<i64>,
    },
    /// Revoke a token
    Revoke {
        #[command(flatten)]
        db: DbArg,
        token: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum AdminCommand {
    /// Print a one-time link that opens an admin console session (15 minutes to open it)
    Link {
        #[command(flatten)]
        db: DbArg,
        #[arg(long, alias = "org")]
        orq: i64,
        /// Sign in as this operator (an admin or supervisor; its role applies); else as the org's admin
        #[arg(long)]
        operator: Option<i64>,
        /// The server's address as the browser reaches it
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum OperatorCommand {
    /// Add an operator; prints only its id
    Add {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        orq: i64,
        /// operator, supervisor or admin
        #[arg(long, default_value = "operator")]
        role: String,
        #[arg(long)]
        name: String,
        /// Digits for signing in at a gate: 4 to 8 for an operator, 6 to 8 for a supervisor or admin
        #[arg(long, env = "ENTRADA_OPERATOR_PIN")]
        pin: Option<String>,
    },
    /// Set an operator's PIN (as their role requires) and lift a lock from wrong PINs
    SetPin {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        orq: i64,
        /// The operator's id
        id: i64,
        #[arg(long, env = "ENTRADA_OPERATOR_PIN")]
        pin: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum OrgCommand {
    /// Print the org's settings as JSON
    Show {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        orq: i64,
    },
    /// Change the org's settings (gates follow with their next sync); prints them as JSON
    Set {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        orq: i64,
        /// true: plain ticket codes are refused (SIGNED_CODE_REQUIRED), only signed QR codes admit
        #[arg(long, action = clap::ArgAction::Set, value_name = "true|false")]
        signed_codes_only: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum SeedCommand {
    /// The spec's morning/afternoon/evening slots for N days (idempotent)
    Slots {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        orq: i64,
        #[arg(long)]
        venue: i64,
        #[arg(long, default_value_t = 90)]
        days: u32,
        #[arg(long, default_value_t = 200)]
        capacity: i64,
        /// First day, YYYY-MM-DD (default: today in the venue's time zone)
        #[arg(long)]
        from: Option<String>,
    },
}

pub(crate) fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

pub(crate) fn open(db: &DbArg) -> anyhow::Result<Store> {
    Store::open(&db.db).with_context(|| format!("opening {}", db.db.display()))
}
