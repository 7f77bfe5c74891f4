//! What the kiosk's screens receive. TypeScript types for these are
//! generated from Rust (`cargo test -p entrada-desktop export_bindings`
//! writes `ui/kiosk/bindings/`), never written by hand.

use entrada::domain::Verdict;
use serde::Serialize;
use ts_rs::TS;

use crate::source::{CameraAdjust, CameraControls};

/// How the verdict screen looks from a metre away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum Tone {
    /// Green: let them in.
    Admit,
    /// Red: refused, with the reason in large words.
    Refuse,
    /// Amber: the operator decides.
    Decide,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct VerdictView {
    pub admit: bool,
    pub tone: Tone,
    /// `ADMIT` or the refusal's reason code.
    pub verdict: String,
    /// The headline, e.g. "Already verified".
    pub message: String,
    pub ticket_code: Option<String>,
    pub slot_date: Option<String>,
    pub slot_start_time: Option<String>,
    pub slot_end_time: Option<String>,
    pub venue_name: Option<String>,
    pub verified_at: Option<String>,
    pub verified_by: Option<i64>,
    /// The gate that admitted it (ALREADY_VERIFIED), when this gate knows.
    pub verified_gate: Option<String>,
    pub expires_at: Option<String>,
    /// The amber verdict the operator overruled to let the holder in.
    pub overruled: Option<String>,
    /// An ADMIT of a holder coming back in after leaving.
    pub reentry: bool,
    /// When the holder last left (EXIT's refusals, re-entry).
    pub left_at: Option<String>,
    /// The operator may book the holder into the current slot as a walk-up
    /// (`domain::venue_ops::walkup_bookable`).
    pub walkup: bool,
}

impl From<&Verdict> for VerdictView {
    fn from(v: &Verdict) -> Self {
        let time = |t: Option<chrono::NaiveTime>| t.map(|t| t.format("%H:%M").to_string());
        Self {
            admit: v.admit,
            tone: if v.admit {
                Tone::Admit
            } else if v.verdict.needs_operator_decision() {
                Tone::Decide
            } else {
                Tone::Refuse
            },
            verdict: v.verdict.code().to_string(),
            message: v.message.clone(),
            ticket_code: v.ticket_code.clone(),
            slot_date: v.slot_date.map(|d| d.to_string()),
            slot_start_time: time(v.slot_start_time),
            slot_end_time: time(v.slot_end_time),
            venue_name: v.venue_name.clone(),
            verified_at: v
                .verified_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            verified_by: v.verified_by.map(|o| o.0),
            verified_gate: v.verified_gate.clone(),
            expires_at: v
                .expires_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            overruled: v.overruled.map(|c| c.code().to_string()),
            reentry: v.reentry,
            left_at: v
                .left_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            walkup: entrada::domain::venue_ops::walkup_bookable(v),
        }
    }
}

/// Where a scanned code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum ScanSource {
    Camera,
    /// A USB handheld scanner typing into the window.
    Wedge,
    /// Typed by the operator.
    Manual,
}

/// One scan's result: the verdict plus the counter for the slot.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct ScanOutcome {
    pub verdict: VerdictView,
    pub source: ScanSource,
    /// Admitted so far for the ticket's slot (None when no slot is known).
    pub admitted_in_slot: Option<i64>,
    /// Milliseconds from payload to durable verdict.
    pub ms: f64,
    /// What was scanned, on amber and walk-up verdicts only: the
    /// operator's decision (`admit_anyway`, `book_walkup`) refers to
    /// exactly this code.
    pub payload: Option<String>,
    /// The gate's direction for this scan: `in` or `out`.
    pub direction: String,
    /// An ADMIT the operator may undo within this many seconds.
    pub undo_secs: Option<i64>,
    /// The operator booked the holder in as a walk-up and they were let in.
    pub walkup_booked: bool,
}

/// People inside the venue as this gate knows it, for the scanner screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct OccupancyView {
    pub inside: i64,
    /// The venue's occupancy limit (None: none).
    pub limit: Option<i64>,
    /// `normal`, `near` (90 % of the limit) or `full` (100 %).
    pub level: String,
    /// The gate's last sync (None: never synced): other gates' passages
    /// are counted as of then, this gate's own at once.
    pub as_of: Option<String>,
}

/// The venue's operations today as a supervisor at this gate sees them on
/// the sync screen (`Store::gate_ops_summary`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct VenueOpsView {
    /// Walk-up places this gate holds, per slot (offline walk-ups book
    /// from them).
    pub leases: Vec<LeaseView>,
    /// Admissions undone at this gate today, the latest first.
    pub undos: Vec<UndoView>,
    /// Reservations at the venue released as no-shows today.
    pub no_shows_today: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct LeaseView {
    pub slot_id: String,
    pub date: String,
    pub start_time: String,
    pub end_time: String,
    pub places: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct UndoView {
    pub ticket_code: String,
    pub operator_id: Option<i64>,
    pub at: String,
    pub reason: String,
}

/// What "Check everyone out" did (`POST /api/sync/checkout`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct CheckoutView {
    /// People recorded as leaving.
    pub checked_out: i64,
    /// The venue's occupancy on the server after it.
    pub inside: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct OperatorView {
    pub id: i64,
    pub display_name: String,
    /// operator, supervisor or admin
    pub role: String,
    pub is_supervisor: bool,
    /// Locked by wrong PINs for this many more seconds (the sign-in screen
    /// counts down; the lock is kept in the replica, across restarts).
    pub locked_secs: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct SlotView {
    pub id: String,
    pub date: String,
    pub start_time: String,
    pub end_time: String,
    pub total_capacity: i64,
    pub booked_count: i64,
    pub available_count: i64,
    pub admitted: i64,
    /// ACTIVE, FULL or CLOSED
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct TicketLookupView {
    pub ticket_code: String,
    pub status: String,
    pub activation_status: String,
    pub customer_email: Option<String>,
    pub customer_phone: Option<String>,
    pub verified_at: Option<String>,
    pub verified_by: Option<i64>,
    pub reservation_status: Option<String>,
    pub slot_date: Option<String>,
    pub slot_start_time: Option<String>,
    pub slot_end_time: Option<String>,
    /// What the gate would say now (nothing is recorded).
    pub gate_verdict: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct SyncView {
    /// `standalone` (demo data, no server), `online` or `offline`.
    pub mode: String,
    pub server_url: Option<String>,
    pub device_id: Option<i64>,
    pub last_sync_at: Option<String>,
    pub last_error: Option<String>,
    pub pending: i64,
    pub rejected: i64,
    pub conflicts: i64,
    pub clock_offset_ms: Option<i64>,
    pub clock_suspect: bool,
    /// The sync loop retrying after failed rounds; None while rounds go
    /// through (or no loop ran yet).
    pub retry: Option<SyncRetryView>,
    /// The sync loop stopped: the server refused this device's token (pair
    /// the gate again).
    pub stopped: bool,
    /// The other gates of this venue on the LAN exchange (issue 14).
    pub peers: Vec<PeerView>,
    /// The LAN exchange itself: off, starting, listening.
    pub lan: LanView,
}

/// The LAN exchange as it runs now (issue 14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct LanView {
    /// `off`; `starting` (not paired yet, or its port is taken: retried);
    /// `listening`; `peers` (only `--peer` links, no listener).
    pub state: String,
    /// Where it listens (`listening`).
    pub address: Option<String>,
    /// `--lan-listen` / `--peer` (or their environment) set it: the
    /// settings screen's switch does not apply.
    pub from_flags: bool,
}

impl Default for LanView {
    fn default() -> Self {
        Self {
            state: "off".into(),
            address: None,
            from_flags: false,
        }
    }
}

/// Another gate of this venue, as the LAN exchange knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct PeerView {
    pub device_id: i64,
    pub name: String,
    /// When this gate last heard from it (RFC 3339, seconds); None: never.
    pub last_seen_at: Option<String>,
    /// Heard from within the last 30 seconds (a link refreshes it every 10).
    pub reachable: bool,
    /// Its events this gate received; this gate's events it confirmed.
    pub received: i64,
    pub sent: i64,
}

impl PeerView {
    pub fn of(p: &entrada::store::PeerStatus, now: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            device_id: p.device_id,
            name: p.name.clone(),
            last_seen_at: p
                .last_seen_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            reachable: p
                .last_seen_at
                .is_some_and(|t| now - t <= chrono::Duration::seconds(30)),
            received: p.received,
            sent: p.sent,
        }
    }
}

/// The sync loop after failed rounds: why, how often, and when it tries
/// again. Every failure but a refused token is retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct SyncRetryView {
    /// Failed rounds in a row.
    pub attempts: u32,
    /// The last failure's stable code: `DATABASE_BUSY` (another program
    /// holds the gate's database), `SERVER_UNREACHABLE`, …
    pub error_code: String,
    pub error: String,
    /// When the next round starts (RFC 3339, seconds); None once stopped.
    pub next_attempt_at: Option<String>,
}

impl SyncRetryView {
    /// What the screen shows of the loop: Some after a failed round.
    pub fn of(status: &entrada::sync::client::LoopStatus) -> Option<Self> {
        if status.failures == 0 {
            return None;
        }
        Some(Self {
            attempts: status.failures,
            error_code: status.last_error_code.clone().unwrap_or_default(),
            error: status.last_error.clone().unwrap_or_default(),
            next_attempt_at: status
                .next_attempt_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct ConflictView {
    /// `DOUBLE_ENTRY` (two gates admitted one ticket), or why the server would
    /// not have admitted what this venue's gate let in (`RESERVATION_CANCELLED`, …).
    pub kind: String,
    pub ticket_code: String,
    pub first_at: String,
    pub first_device_id: Option<i64>,
    pub first_operator_id: Option<i64>,
    pub second_at: String,
    pub second_device_id: Option<i64>,
    pub second_operator_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct CameraStatus {
    pub ok: bool,
    /// e.g. "folder ./frames (12 images, 10 fps, looping)" or why there is no camera.
    pub description: String,
    /// What the source in use lets the operator change (none for a folder,
    /// or when there is no camera): the settings screen shows only these.
    pub controls: CameraControls,
}

impl CameraStatus {
    pub fn on(description: String, controls: CameraControls) -> Self {
        Self {
            ok: true,
            description,
            controls,
        }
    }

    pub fn off(description: String) -> Self {
        Self {
            ok: false,
            description,
            controls: CameraControls::default(),
        }
    }
}

/// A downscaled camera frame for the live preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct PreviewFrame {
    /// `data:image/jpeg;base64,…`
    pub data_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct AppInfo {
    pub venue_name: Option<String>,
    pub kiosk: bool,
    pub operator: Option<OperatorView>,
    pub auto_lock_secs: u32,
    /// Dim the screen after this many seconds without a scan or touch (0: never).
    pub idle_dim_secs: u32,
    pub sync: SyncView,
}

/// One entry of the settings screen's camera list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct CameraOption {
    /// What `--camera` would say: `auto` or an index.
    pub value: String,
    pub label: String,
}

/// The settings screen (supervisors only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct SettingsView {
    pub paired: bool,
    pub server_url: Option<String>,
    pub device_id: Option<i64>,
    pub device_name: Option<String>,
    pub venue_name: Option<String>,
    /// The camera in use, as `--camera` would say it (`auto`, `0`, a name, `folder:PATH`).
    pub camera: String,
    pub camera_options: Vec<CameraOption>,
    /// Why the system could not list its cameras, if it could not.
    pub cameras_error: Option<String>,
    pub camera_status: Option<CameraStatus>,
    /// The torch/focus/exposure choice (applied where the camera offers it).
    pub camera_adjust: CameraAdjust,
    pub kiosk: bool,
    pub auto_lock_secs: u32,
    pub idle_dim_secs: u32,
    /// Settings a flag or the environment fixed at start (`camera`, `kiosk`,
    /// `auto_lock`, `idle_dim`): changed here for this run, the flag wins at the next start.
    pub fixed: Vec<String>,
    /// The LAN exchange switch (issue 14): the port it listens on, or null when off
    /// (`--lan-listen` / `--peer` at start win over it).
    pub lan_port: Option<u16>,
    /// The LAN exchange as it runs now.
    pub lan: LanView,
    pub database: String,
    /// The version running (the signed one its launcher started, else this build's).
    pub version: String,
    /// The development release key is built in (not for a production fleet).
    pub dev_release_key: bool,
    /// A supervisor's deferral of fleet updates still running (RFC 3339).
    pub updates_deferred_until: Option<String>,
}

/// What pairing from the settings screen did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct PairOutcome {
    pub device_id: i64,
    pub device_name: String,
    pub venue_name: Option<String>,
    /// The standalone demo data was replaced by the server's.
    pub replaced_demo: bool,
    /// Operators who can sign in here after the first download.
    pub operators: u32,
    /// The first download failed (it is retried in the background).
    pub first_sync_error: Option<String>,
}

/// A pairing code the camera read in pairing mode (issue 16): the server it
/// would pair with, for the settings screen to show before `pair_with_code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct PairingScan {
    /// The code as scanned (it holds the device token): what `pair_with_code` takes.
    pub code: String,
    /// The server it pairs with; null when the code cannot be used (`error`).
    pub server_url: Option<String>,
    /// The code names the venue's CA (by its SHA-256): it is taken from the
    /// server's chain and trusted besides the public CAs.
    pub pins_ca: bool,
    /// The server this gate is paired with now (null: standalone).
    pub current_server: Option<String>,
    /// Scans on this gate not yet uploaded.
    pub pending: u32,
    /// Why this gate may not pair with it now (`PAIRING_SYNC_FIRST`): the
    /// confirm panel offers no "Pair".
    pub refusal: Option<CommandError>,
    /// Why the code cannot be used (`INVALID_PAIRING_CODE`).
    pub error: Option<CommandError>,
}

/// Every command error: a stable code and a message for the screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    pub code: String,
    pub message: String,
    /// PIN_LOCKED: seconds until this operator may try a PIN again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub retry_after_secs: Option<u32>,
}

impl From<entrada::store::StoreError> for CommandError {
    fn from(e: entrada::store::StoreError) -> Self {
        match e {
            entrada::store::StoreError::Domain(e) => e.into(),
            e => Self::new(e.code(), e.to_string()),
        }
    }
}

impl From<entrada::domain::DomainError> for CommandError {
    fn from(e: entrada::domain::DomainError) -> Self {
        let mut out = Self::new(e.code(), e.to_string());
        if let entrada::domain::DomainError::PinLocked {
            retry_after_secs, ..
        } = e
        {
            out.retry_after_secs = Some(u32::try_from(retry_after_secs).unwrap_or(u32::MAX));
        }
        out
    }
}

impl CommandError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_string(),
            message: message.into(),
            retry_after_secs: None,
        }
    }
}

#[cfg(test)]
mod bindings {
    use super::*;

    #[test]
    fn a_peer_is_reachable_when_heard_from_within_30_seconds() {
        let now = chrono::Utc::now();
        let peer = |ago: Option<i64>| entrada::store::PeerStatus {
            device_id: 7,
            name: "Gate B".into(),
            public_key: String::new(),
            last_seen_at: ago.map(|s| now - chrono::Duration::seconds(s)),
            received: 3,
            sent: 2,
        };
        for (ago, reachable) in [
            (Some(0), true),
            (Some(30), true),
            (Some(31), false),
            (None, false),
        ] {
            let view = PeerView::of(&peer(ago), now);
            assert_eq!(view.reachable, reachable, "{ago:?}");
            assert_eq!(
                (view.received, view.sent, view.last_seen_at.is_some()),
                (3, 2, ago.is_some())
            );
        }
    }

    /// Writes the TypeScript types for the kiosk into `ui/kiosk/bindings/`;
    /// CI fails when the committed files differ from what Rust says.
    #[test]
    fn export_bindings() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/kiosk/bindings");
        let cfg = ts_rs::Config::new()
            .with_large_int("number")
            .with_out_dir(&dir);
        AppInfo::export_all(&cfg).unwrap();
        ScanOutcome::export_all(&cfg).unwrap();
        SlotView::export_all(&cfg).unwrap();
        TicketLookupView::export_all(&cfg).unwrap();
        ConflictView::export_all(&cfg).unwrap();
        CameraStatus::export_all(&cfg).unwrap();
        PreviewFrame::export_all(&cfg).unwrap();
        CommandError::export_all(&cfg).unwrap();
        SettingsView::export_all(&cfg).unwrap();
        PairOutcome::export_all(&cfg).unwrap();
        PairingScan::export_all(&cfg).unwrap();
        OperatorView::export_all(&cfg).unwrap();
        OccupancyView::export_all(&cfg).unwrap();
        VenueOpsView::export_all(&cfg).unwrap();
        CheckoutView::export_all(&cfg).unwrap();
        assert!(dir.join("ScanOutcome.ts").exists());
    }
}
