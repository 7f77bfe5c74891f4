//! The HTTP API (`entrada serve`): the spec's endpoints over axum. Handlers
//! extract, check the caller, call one store service on the blocking pool,
//! and convert the result; the rules are all in `domain` and `store`.

mod access;
mod admin;
mod admin_dashboard;
mod admin_gates;
mod admin_slots;
mod admin_staff;
mod admin_tickets;
#[cfg(test)]
mod bindings;
mod console;
pub mod error;
mod extract;
mod gate;
mod headers;
mod openapi;
pub mod pairing;
mod ratelimit;
mod reservations;
mod slots;
mod sync;
mod tickets;
pub mod update;
mod venue_ops;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use entrada_domain as domain;
use entrada_store as store;

use crate::domain::{DomainError, TicketCode};
use crate::store::{ServerStore, Store, StoreError};
use error::ApiError;
pub use ratelimit::RateLimiter;
pub use sync::{spawn_feed_numberer, FEED_NUMBERING_PERIOD};
pub use venue_ops::{spawn_no_show_release, NO_SHOW_PERIOD};

/// Largest request body of the bulk routes (ticket creation and CSV import:
/// 20,000 tickets fit; a gate's batch of events).
pub const BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Largest request body everywhere else. Every other body is a handful of
/// fields, and a JSON body is parsed into a tree before it is typed (see
/// `extract.rs`): an unauthenticated 8 MiB array would cost over 100 MiB.
pub const SMALL_BODY_LIMIT: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    /// The database engine (SQLite's `Store`, or another `ServerStore`).
    pub store: Arc<dyn ServerStore>,
    pub limiter: Arc<RateLimiter>,
    /// Where published gate update bundles are (`<version>.entupd`); None:
    /// this server offers no updates.
    pub updates_dir: Option<PathBuf>,
    /// Console session cookies carry `Secure` (the server speaks TLS, or
    /// browsers reach it by an https `--public-url`).
    pub secure_cookies: bool,
    /// SHA-256 of the venue CA's certificate (`serve --tls-ca`): new gates'
    /// pairing codes name it, so a gate pins (adds) that CA.
    pub pairing_ca_sha256: Option<String>,
    /// The address gates and browsers reach this server at (`serve
    /// --public-url`), checked as a pairing code's server address; None: the
    /// request's `Host`.
    pub public_url: Option<String>,
    /// The open dashboard streams (`admin_dashboard`), bounded per session,
    /// org and server.
    dashboards: Arc<admin_dashboard::Streams>,
    /// Fired when the server stops: long-lived responses end at once.
    pub shutdown: Shutdown,
}

/// Tells long-lived responses (the dashboard's event streams) that the
/// server is stopping, so a graceful stop does not wait for them: axum's
/// graceful shutdown waits for every connection to close.
#[derive(Clone)]
pub struct Shutdown(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Shutdown {
    fn default() -> Self {
        Self(Arc::new(tokio::sync::watch::channel(false).0))
    }
}

impl Shutdown {
    /// The server is stopping (idempotent).
    pub fn notify(&self) {
        self.0.send_replace(true);
    }

    /// Resolves once `notify` was called (at once if it was already).
    pub async fn notified(&self) {
        let mut stopping = self.0.subscribe();
        let _ = stopping.wait_for(|s| *s).await;
    }
}

impl AppState {
    pub fn new(store: Arc<dyn ServerStore>, lookups_per_minute: u32) -> Self {
        Self {
            store,
            limiter: Arc::new(RateLimiter::new(lookups_per_minute)),
            updates_dir: None,
            secure_cookies: false,
            pairing_ca_sha256: None,
            public_url: None,
            dashboards: Arc::default(),
            shutdown: Shutdown::default(),
        }
    }

    /// Offers the gate update bundles published in `dir`.
    pub fn with_updates_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.updates_dir = dir;
        self
    }

    /// Marks console session cookies `Secure` (when browsers use HTTPS).
    pub fn with_secure_cookies(mut self, secure: bool) -> Self {
        self.secure_cookies = secure;
        self
    }

    /// The address new gates' pairing codes name (behind a proxy); refused
    /// when no pairing code could carry it.
    pub fn with_public_url(
        mut self,
        url: Option<&str>,
    ) -> Result<Self, crate::domain::pairing::PairingError> {
        self.public_url = url
            .map(crate::domain::pairing::server_address)
            .transpose()?;
        Ok(self)
    }

    /// The CA certificate (PEM) new gates' pairing codes name.
    pub fn with_pairing_ca(mut self, pem: &[u8]) -> Result<Self, pairing::CaError> {
        self.pairing_ca_sha256 = Some(pairing::ca_fingerprint(pem)?);
        Ok(self)
    }

    /// Runs one store call on the blocking pool (the engines' calls block).
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn ServerStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|_| ApiError::http(StatusCode::INTERNAL_SERVER_ERROR))?
            .map_err(ApiError::from)
    }
}

/// An id from a path or body; a malformed one identifies nothing (404).
fn parse_id<T: std::str::FromStr>(raw: &str, entity: &'static str) -> Result<T, DomainError> {
    raw.parse().map_err(|_| DomainError::NotFound { entity })
}

/// The IANA time zones the server knows (`chrono_tz`), as an enum.
fn timezone_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())))
        .examples([serde_json::json!("Europe/Madrid")])
        .build()
}

fn parse_code(raw: &str) -> Result<TicketCode, DomainError> {
    TicketCode::parse(raw)
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    status: &'static str,
    schema_version: i64,
}

#[utoipa::path(get, path = "/api/health", tag = "meta", responses((status = 200, body = Health)))]
async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        schema_version: Store::known_schema_version(),
    })
}

async fn route_not_found() -> ApiError {
    ApiError::http(StatusCode::NOT_FOUND)
}

pub fn router(state: AppState, ui_dir: Option<PathBuf>) -> Router {
    let api = Router::new()
        .route("/api/health", get(health))
        .route("/api/openapi.json", get(openapi::document))
        .route("/api/operator/slots/create", post(slots::create_slot))
        .route("/api/operator/slots", get(slots::list_slots))
        .route(
            "/api/operator/slots/{slot_id}",
            get(slots::get_slot)
                .put(slots::update_slot)
                .delete(slots::delete_slot),
        )
        .route("/api/reservation-slots/available", get(slots::available))
        .route("/api/tickets", get(tickets::own_tickets))
        .route(
            "/api/customer/session",
            post(tickets::customer_session).delete(tickets::end_customer_session),
        )
        .route("/api/tickets/validate", post(tickets::validate))
        .route("/api/tickets/{ticket_id}/activate", post(tickets::activate))
        .route("/api/tickets/{ticket_id}/status", get(tickets::status))
        .route("/api/reservations/create", post(reservations::create))
        .route(
            "/api/reservations/{id}",
            get(reservations::get)
                .put(reservations::reschedule)
                .delete(reservations::cancel),
        )
        .route("/api/operator/validate-ticket", post(gate::validate_ticket))
        .route("/api/operator/verify-ticket", post(gate::verify_ticket))
        .route("/api/operator/sign-in", post(gate::sign_in))
        .route("/api/operator/scan", post(gate::scan))
        .route("/api/operator/signing-keys", get(gate::signing_keys))
        .route(
            "/api/admin/venues",
            post(admin::create_venue).get(admin::list_venues),
        )
        .route(
            "/api/admin/venues/{venue_id}",
            get(admin::get_venue).patch(admin::update_venue),
        )
        .route(
            "/api/admin/tickets",
            post(admin::create_tickets)
                .layer(DefaultBodyLimit::max(BODY_LIMIT))
                .get(admin::list_tickets),
        )
        .route(
            "/api/admin/tickets/import",
            post(admin::import_tickets).layer(DefaultBodyLimit::max(BODY_LIMIT)),
        )
        .route(
            "/api/admin/tickets/import/checked",
            post(admin_tickets::import_checked).layer(DefaultBodyLimit::max(BODY_LIMIT)),
        )
        .route(
            "/api/admin/tickets/export",
            get(admin_tickets::export_tickets),
        )
        .route(
            "/api/admin/tickets/search",
            get(admin_tickets::search_tickets),
        )
        .route(
            "/api/admin/tickets/{ticket_id}/reissue",
            post(admin_staff::reissue_code),
        )
        .route("/api/admin/gates", get(admin_gates::list_gates))
        .route(
            "/api/admin/gates/{device_id}/revoke",
            post(admin_gates::revoke_gate),
        )
        .route(
            "/api/admin/operators/{operator_id}",
            axum::routing::patch(admin_staff::change_operator),
        )
        .route(
            "/api/admin/operators/{operator_id}/pin",
            axum::routing::put(admin_staff::reset_pin),
        )
        .route(
            "/api/admin/tickets/{ticket_id}/story",
            get(admin_tickets::ticket_story),
        )
        .route(
            "/api/admin/tickets/{ticket_id}/cancel",
            post(admin_tickets::cancel_ticket),
        )
        .route(
            "/api/admin/tickets/{ticket_id}/signed-code",
            get(admin::signed_code),
        )
        .route(
            "/api/admin/operators",
            post(admin::create_operator).get(admin::list_operators),
        )
        .route("/api/admin/tokens", post(admin::create_token))
        .route("/api/admin/slots/month", get(admin_slots::month))
        .route("/api/admin/slots/pattern", post(admin_slots::pattern))
        .route("/api/admin/dashboard/stream", get(admin_dashboard::stream))
        .route(
            "/api/admin/session",
            get(console::whoami).delete(console::sign_out),
        )
        .route(
            "/admin/signin",
            get(console::sign_in_page).post(console::sign_in),
        )
        .route("/admin/signin.js", get(console::sign_in_script))
        .route(
            "/api/admin/org",
            get(admin::org_settings).patch(admin::update_org_settings),
        )
        .route("/api/sync/whoami", get(sync::whoami))
        .route("/api/sync/changes", get(sync::changes))
        .route(
            "/api/sync/events",
            post(sync::events).layer(DefaultBodyLimit::max(BODY_LIMIT)),
        )
        .route(
            "/api/admin/devices",
            post(sync::create_device).get(update::list_devices),
        )
        .route("/api/sync/update", post(update::report))
        .route("/api/sync/update/{version}", get(update::bundle))
        .route("/api/operator/conflicts", get(sync::conflicts))
        .route("/api/operator/occupancy", get(venue_ops::occupancy))
        .route(
            "/api/admin/venues/{venue_id}/checkout",
            post(venue_ops::checkout),
        )
        .route(
            "/api/admin/venues/{venue_id}/leases",
            axum::routing::delete(venue_ops::take_back_leases),
        )
        .route("/api/sync/leases", post(venue_ops::leases))
        .route("/api/sync/walkup", post(venue_ops::walkup))
        .route("/api/sync/checkout", post(venue_ops::gate_checkout))
        .route("/api/sync/peers", post(sync::peers))
        .route("/api/{*rest}", axum::routing::any(route_not_found))
        .with_state(state);
    let security = headers::SecurityHeaders::for_pages(ui_dir.as_deref());
    let app = match ui_dir {
        // The customer page's built assets, when there are any.
        Some(dir) if dir.is_dir() => api.fallback_service(tower_http::services::ServeDir::new(dir)),
        _ => api.fallback(route_not_found),
    };
    // The JSON-errors layer sits outside the timeout so that a 408 gets the
    // JSON shape too (the last layer added is the outermost).
    app.layer(DefaultBodyLimit::max(SMALL_BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(15),
        ))
        .layer(axum::middleware::from_fn(error::json_errors))
        // Pages and JSON travel gzipped to clients that accept it (phones on
        // venue Wi-Fi); tiny bodies are left alone.
        .layer(tower_http::compression::CompressionLayer::new().gzip(true))
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::map_response_with_state(
            security,
            headers::apply,
        ))
        .layer(axum::middleware::map_request(host_from_authority))
}

/// HTTP/2 (what a browser speaks to `serve --tls-cert`) carries the host as
/// `:authority`, which hyper puts in the URI and not in a `Host` header. The
/// console's same-origin check and a new gate's pairing code read `Host`, so
/// it is filled in from the URI when the request has none.
async fn host_from_authority(mut req: axum::extract::Request) -> axum::extract::Request {
    if !req.headers().contains_key(axum::http::header::HOST) {
        if let Some(host) = req
            .uri()
            .authority()
            .and_then(|a| axum::http::HeaderValue::from_str(a.as_str()).ok())
        {
            req.headers_mut().insert(axum::http::header::HOST, host);
        }
    }
    req
}

/// Serves until SIGINT/SIGTERM (or `stop` fires), then ends the open
/// dashboard streams (`shutdown`, the state's `AppState::shutdown`) and
/// finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop_on_signal(shutdown))
    .await
}

/// Resolves on SIGINT/SIGTERM or an earlier `notify`, and notifies.
async fn stop_on_signal(shutdown: Shutdown) {
    tokio::select! {
        () = shutdown_signal() => shutdown.notify(),
        () = shutdown.notified() => {}
    }
}

/// How long a stopping HTTPS server waits for in-flight requests (each is
/// cut at 15 s by the timeout layer, and the dashboard's event streams end
/// at the signal).
const TLS_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A certificate chain and its private key (PEM), ready to serve HTTPS:
/// TLS 1.2/1.3 only (rustls), ALPN h2 and http/1.1.
#[derive(Clone)]
pub struct TlsConfig(axum_server::tls_rustls::RustlsConfig);

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig")
    }
}

impl TlsConfig {
    /// Reads `cert` (the server's certificate, then any intermediates) and
    /// `key` (PKCS#8, PKCS#1 or SEC1), both PEM; says which file is wrong.
    pub async fn from_pem(cert: Vec<u8>, key: Vec<u8>) -> std::io::Result<Self> {
        axum_server::tls_rustls::RustlsConfig::from_pem(cert, key)
            .await
            .map(Self)
    }
}

/// As [`serve`], over TLS: serves HTTPS until SIGINT/SIGTERM, then stops
/// accepting and finishes in-flight requests.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: TlsConfig,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let on_signal = handle.clone();
    tokio::spawn(async move {
        stop_on_signal(shutdown).await;
        on_signal.graceful_shutdown(Some(TLS_SHUTDOWN_GRACE));
    });
    axum_server::from_tcp_rustls(listener.into_std()?, tls.0)?
        .handle(handle)
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}
