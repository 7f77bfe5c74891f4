//! `entrada`: the command line. Parsing and printing only; every action is
//! one call into the library.

use std::path::PathBuf;

use anyhow::Context;
use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use entrada::domain::{slot::parse_date, Orq, TicketCode, VenueId};
use entrada::store::Store;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(
    name = "entrada",
    version,
    about = "Entrada: time-slot reservations and gate verification"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct DbArg {
    /// SQLite database file (created if missing)
    #[arg(long, env = "ENTRADA_DB", value_name = "FILE")]
    db: PathBuf,
}

#[derive(Subcommand)]
enum Command {
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
    Sync {
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
        /// Changes per page
        #[arg(long, default_value_t = 2000)]
        page_size: u32,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Fill a database with a ready-to-use demo (two orgs, venues, 90 days of slots, tickets in every state)
    Demo {
        #[command(flatten)]
        db: DbArg,
        /// Print the report as JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

/// How a gate trusts its server.
#[derive(Args, Clone)]
struct TrustArgs {
    /// PEM file with the certificate of the venue's own CA, trusted besides the public ones
    #[arg(long, env = "ENTRADA_CA_CERT", value_name = "PEM")]
    ca_cert: Option<PathBuf>,
    /// Accept a plain http:// server that is not on this machine (traffic readable and
    /// changeable by anyone on the network)
    #[arg(long, env = "ENTRADA_ALLOW_HTTP")]
    allow_http: bool,
}

impl TrustArgs {
    fn transport(&self) -> anyhow::Result<entrada::sync::client::Transport> {
        let ca_cert_pem = match &self.ca_cert {
            Some(path) => {
                Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
            }
            None => None,
        };
        Ok(entrada::sync::client::Transport {
            ca_cert_pem,
            allow_http: self.allow_http,
        })
    }
}

#[derive(Subcommand)]
enum VenueCommand {
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
}

#[derive(Subcommand)]
enum TicketCommand {
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
enum KeyCommand {
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
enum GateCommand {
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
    },
}

/// `entrada serve` settings: flags, then `ENTRADA_*` variables, then the
/// `--config` file, then the defaults.
#[derive(Args)]
struct ServeArgs {
    /// TOML file with any of: db, listen, ui_dir, lookups_per_minute, tls_cert, tls_key
    /// (the slot window's grace is each venue's: PATCH /api/admin/venues/{id})
    #[arg(long, env = "ENTRADA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// SQLite database file (created if missing)
    #[arg(long, env = "ENTRADA_DB", value_name = "FILE")]
    db: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "ENTRADA_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Folder with the customer page's built assets, served under / [default: ui/dist]
    #[arg(long, env = "ENTRADA_UI_DIR")]
    ui_dir: Option<PathBuf>,
    /// Ticket look-ups and PIN checks per token and per client address per minute; 0 = no limit [default: 600]
    #[arg(long, env = "ENTRADA_LOOKUPS_PER_MINUTE")]
    lookups_per_minute: Option<u32>,
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
    /// Fill the database with the demo data set first (as `entrada demo`)
    #[arg(long)]
    demo: bool,
}

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
}

struct ServeSettings {
    db: PathBuf,
    listen: std::net::SocketAddr,
    ui_dir: PathBuf,
    lookups_per_minute: u32,
    /// Certificate chain and key files, when serving HTTPS.
    tls: Option<(PathBuf, PathBuf)>,
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
        Ok(ServeSettings {
            tls,
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

#[derive(Subcommand)]
enum DeviceCommand {
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
enum TokenCommand {
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
enum OperatorCommand {
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
enum OrgCommand {
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
enum SeedCommand {
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

fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

fn open(db: &DbArg) -> anyhow::Result<Store> {
    Store::open(&db.db).with_context(|| format!("opening {}", db.db.display()))
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
    let cli = Cli::parse();
    let now = Utc::now();
    match cli.command {
        Command::Migrate(db) => {
            open(&db)?;
            eprintln!(
                "{}: schema version {}",
                db.db.display(),
                Store::known_schema_version()
            );
        }
        Command::Venue(VenueCommand::Add {
            db,
            orq,
            name,
            timezone,
        }) => {
            let venue = open(&db)?.add_venue(Orq(orq), &name, &timezone, now)?;
            println!("{}", venue.id);
        }
        Command::Venue(VenueCommand::List { db, orq }) => {
            for venue in open(&db)?.list_venues(Orq(orq))? {
                println!("{}", serde_json::to_string(&venue)?);
            }
        }
        Command::Seed(SeedCommand::Slots {
            db,
            orq,
            venue,
            days,
            capacity,
            from,
        }) => {
            let store = open(&db)?;
            let from = match from {
                Some(raw) => parse_date("from", &raw)?,
                None => {
                    let v = store.get_venue(Orq(orq), VenueId(venue))?;
                    now.with_timezone(&v.timezone).date_naive()
                }
            };
            let bar = progress_bar(days.into(), "seeding days");
            let plan = entrada::store::SeedPlan {
                venue: VenueId(venue),
                from,
                days,
                capacity,
            };
            let report = store.seed_slots(Orq(orq), plan, now, |n| bar.inc(n))?;
            bar.finish_and_clear();
            eprintln!(
                "{} slots created, {} already there ({} days from {from})",
                report.created, report.already_there, days
            );
        }
        Command::Serve(args) => {
            let ServeSettings {
                db,
                listen,
                ui_dir,
                lookups_per_minute,
                tls,
            } = args.resolve()?;
            let demo = args.demo;
            let db = DbArg { db };
            let store = open(&db)?;
            if demo {
                let report = entrada::demo::populate(&store, now, |_| {})?;
                print_demo(&db.db, &report);
            }
            let state = entrada::api::AppState::new(std::sync::Arc::new(store), lookups_per_minute);
            let app = entrada::api::router(state, Some(ui_dir));
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let tls = match &tls {
                    Some((cert, key)) => {
                        let read = |p: &PathBuf| {
                            std::fs::read(p).with_context(|| format!("reading {}", p.display()))
                        };
                        let config = entrada::api::TlsConfig::from_pem(read(cert)?, read(key)?)
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
                let scheme = if tls.is_some() { "https" } else { "http" };
                tracing::info!(address = %listener.local_addr()?, scheme, db = %db.db.display(), "entrada serve ready");
                match tls {
                    Some(tls) => entrada::api::serve_tls(listener, app, tls).await?,
                    None => entrada::api::serve(listener, app).await?,
                }
                anyhow::Ok(())
            })?;
        }
        Command::Token(TokenCommand::Create {
            db,
            orq,
            role,
            user_id,
            venue,
        }) => {
            let role = entrada::domain::Role::parse(&role)?;
            let (token, _) =
                open(&db)?.create_token(Orq(orq), role, user_id, venue.map(VenueId), now)?;
            println!("{token}");
        }
        Command::Token(TokenCommand::Revoke { db, token }) => {
            if !open(&db)?.revoke_token(&token, now)? {
                anyhow::bail!("no live token matches");
            }
            eprintln!("revoked");
        }
        Command::Operator(OperatorCommand::Add {
            db,
            orq,
            role,
            name,
            pin,
        }) => {
            let role = entrada::domain::Role::parse(&role)?;
            let op = open(&db)?.add_operator(Orq(orq), role, &name, pin.as_deref(), now)?;
            println!("{}", op.id);
        }
        Command::Operator(OperatorCommand::SetPin { db, orq, id, pin }) => {
            let op = open(&db)?.set_operator_pin(
                Orq(orq),
                entrada::domain::OperatorId(id),
                &pin,
                now,
            )?;
            eprintln!("PIN set for operator {} ({})", op.id, op.display_name);
        }
        Command::Org(OrgCommand::Show { db, orq }) => {
            let settings = open(&db)?.org_settings(Orq(orq))?;
            println!("{}", serde_json::to_string(&settings)?);
        }
        Command::Org(OrgCommand::Set {
            db,
            orq,
            signed_codes_only,
        }) => {
            let settings = open(&db)?.set_signed_codes_only(Orq(orq), signed_codes_only, now)?;
            println!("{}", serde_json::to_string(&settings)?);
        }
        Command::Ticket(TicketCommand::Qr { db, code, orq, out }) => {
            let store = open(&db)?;
            let signed = store.signed_code(Orq(orq), &TicketCode::parse(&code)?, now)?;
            entrada::qr::write(&signed, &out).map_err(|e| anyhow::anyhow!(e))?;
            eprintln!("{}: {signed}", out.display());
        }
        Command::Ticket(TicketCommand::ExportQr {
            db,
            orq,
            out_dir,
            limit,
            format,
        }) => {
            let store = open(&db)?;
            entrada::qr::file_name("T", &format)?;
            std::fs::create_dir_all(&out_dir)?;
            let bar = progress_bar(limit.into(), "rendering QR codes");
            let (mut after, mut done) = (None, 0u32);
            while done < limit {
                let page = store.list_tickets(
                    Orq(orq),
                    &Default::default(),
                    after.as_ref(),
                    1000.min(limit - done),
                )?;
                let Some(last) = page.last() else { break };
                after = Some(last.ticket_code.clone());
                for t in &page {
                    let signed = store.signed_code(Orq(orq), &t.ticket_code, now)?;
                    // A name made from the code: never a path out of --out-dir.
                    let name = entrada::qr::file_name(t.ticket_code.as_str(), &format)?;
                    entrada::qr::write(&signed, &out_dir.join(name))
                        .map_err(|e| anyhow::anyhow!(e))?;
                    bar.inc(1);
                }
                done += page.len() as u32;
            }
            bar.finish_and_clear();
            eprintln!("{done} QR images in {}", out_dir.display());
        }
        Command::Ticket(TicketCommand::Code {
            db,
            code,
            orq,
            reissue,
        }) => {
            let store = open(&db)?;
            let code = TicketCode::parse(&code)?;
            let signed = if reissue {
                store.reissue_code(Orq(orq), &code, now)?
            } else {
                store.signed_code(Orq(orq), &code, now)?
            };
            println!("{signed}");
        }
        Command::Key(KeyCommand::List { db, orq }) => {
            for key in open(&db)?.public_keys(Orq(orq))? {
                println!("{}", serde_json::to_string(&key)?);
            }
        }
        Command::Key(KeyCommand::Rotate { db, orq }) => {
            println!("{}", open(&db)?.rotate_signing_key(Orq(orq), now)?);
        }
        Command::Key(KeyCommand::Retire { db, orq, kid }) => {
            open(&db)?.retire_signing_key(Orq(orq), kid, now)?;
            eprintln!("key {kid} retired");
        }
        Command::Gate(GateCommand::Verify {
            db,
            code,
            orq,
            operator,
            venue,
        }) => {
            let gate = entrada::domain::Gate {
                venue_id: venue.map(VenueId),
                ..Default::default()
            };
            let verdict = match open(&db).and_then(|s| {
                s.scan(
                    Orq(orq),
                    code.as_bytes(),
                    entrada::domain::OperatorId(operator),
                    &gate,
                    now,
                )
                .map_err(anyhow::Error::from)
            }) {
                Ok(v) => v,
                Err(e) => {
                    println!(
                        "{}",
                        serde_json::json!({ "error": { "code": "GATE_ERROR", "message": format!("{e:#}") } })
                    );
                    std::process::exit(2);
                }
            };
            println!("{}", serde_json::to_string(&verdict)?);
            std::process::exit(if verdict.admit { 0 } else { 1 });
        }
        Command::Device(DeviceCommand::Add {
            db,
            orq,
            venue,
            name,
        }) => {
            let (token, _) = open(&db)?.add_device(Orq(orq), VenueId(venue), &name, now)?;
            println!("{token}");
        }
        Command::Device(DeviceCommand::Revoke { db, orq, device_id }) => {
            open(&db)?.revoke_device(Orq(orq), device_id, now)?;
            eprintln!("device {device_id} revoked");
        }
        Command::Sync {
            db,
            server,
            token,
            once,
            watch,
            interval,
            page_size,
            trust,
        } => {
            let store = std::sync::Arc::new(open(&db)?);
            let engine = entrada::sync::client::SyncEngine::with_transport(
                store.clone(),
                trust.transport()?,
            )?
            .with_page_size(page_size);
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                // --server/--token pair an unpaired database, and re-pair a
                // paired one (new URL, or a new token after a revocation):
                // the sync engine's one pairing policy, as in the app.
                let pairing = store.pairing()?;
                let server = server.or_else(|| pairing.as_ref().map(|p| p.server_url.clone()));
                let token = token.or_else(|| pairing.as_ref().map(|p| p.token.clone()));
                let (Some(server), Some(token)) = (server, token) else {
                    anyhow::bail!(
                        "{}: give both --server and --token to pair it",
                        db.db.display()
                    );
                };
                match engine.repair(&server, &token).await? {
                    entrada::sync::client::PairChange::Unchanged => {}
                    entrada::sync::client::PairChange::Paired { info, replaced } => {
                        tracing::info!(
                            device = info.device_id,
                            orq = info.orq,
                            venue = info.venue_id,
                            replaced,
                            "paired"
                        )
                    }
                    entrada::sync::client::PairChange::Kept { reason } => tracing::warn!(
                        code = reason.code(),
                        error = %reason,
                        "new --server/--token not applied: syncing with the current pairing"
                    ),
                }
                if watch && !once {
                    let interval = std::time::Duration::from_secs_f64(interval.max(0.05));
                    let fatal = engine
                        .watch(interval, |r| match r {
                            Ok(report) if report.uploaded + report.pulled > 0 => {
                                tracing::info!(?report, "sync round")
                            }
                            Ok(_) => {}
                            Err(e) => {
                                let status = engine.loop_status();
                                tracing::warn!(
                                    code = e.code(),
                                    error = %e,
                                    failures = status.failures,
                                    next_attempt_at = ?status.next_attempt_at,
                                    "sync round failed"
                                )
                            }
                        })
                        .await;
                    anyhow::bail!(fatal);
                }
                let bar = progress_bar(0, "pulling changes");
                let report = engine
                    .round(|done, total| {
                        bar.set_length(total);
                        bar.set_position(done);
                    })
                    .await;
                bar.finish_and_clear();
                let status = engine.status().await?;
                println!(
                    "{}",
                    serde_json::json!({ "round": report.as_ref().ok(), "status": status })
                );
                report?;
                anyhow::Ok(())
            })?;
        }
        Command::Demo { db, json } => {
            let store = open(&db)?;
            let bar = progress_bar(270, "seeding demo slots");
            let report = entrada::demo::populate(&store, now, |n| bar.inc(n))?;
            bar.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_demo(&db.db, &report);
            }
        }
    }
    Ok(())
}

fn print_demo(path: &std::path::Path, report: &entrada::demo::DemoReport) {
    if report.created {
        println!("Demo data written to {}", path.display());
    } else {
        println!(
            "{} already holds the demo data; nothing added.",
            path.display()
        );
    }
    println!("\nVenues:");
    for v in &report.venues {
        println!(
            "  org {} venue {:>2}  {:<20} {}",
            v.orq, v.id, v.name, v.timezone
        );
    }
    if report.created {
        println!(
            "\n{} slots (09–12, 12–15, 15–18 for 90 days, plus an all-day slot today)",
            report.slots_created
        );
        println!("\nOperators:");
        for (id, name, role) in &report.operators {
            let pin = if *role == "supervisor" {
                entrada::demo::SUPERVISOR_PIN
            } else {
                entrada::demo::OPERATOR_PIN
            };
            println!("  {id:>2}  {name:<22} {role:<11} PIN {pin}");
        }
    }
    println!("\nTickets (verdict at the org's first venue, now):");
    for t in &report.tickets {
        println!(
            "  org {}  {:<20} {:<24} {}",
            t.orq, t.ticket_code, t.gate_verdict, t.state
        );
    }
    println!("\nPlus DEMO-1-0001..0200 and DEMO-2-0001..0200: deferred tickets, not activated.");
}
