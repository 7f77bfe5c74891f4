//! Tauri commands: each extracts its arguments, calls one `GateService`
//! method, and returns its view or a `CommandError`. No rule lives here.
//! They run on Tauri's thread pool (`async`), never on the window's main
//! thread, so a database write cannot stall the screen.

use std::sync::Arc;

use tauri::State;

use crate::device::DeviceLink;
use crate::gate::views::{
    AppInfo, CameraStatus, CommandError, ConflictView, OccupancyView, OperatorView, PairOutcome,
    ScanOutcome, ScanSource, SettingsView, SlotView, SyncView, TicketLookupView, VerdictView,
};
use crate::gate::GateService;
use crate::source::{CameraAdjust, CameraSource};

type Gate<'a> = State<'a, Arc<GateService>>;

#[tauri::command(async)]
pub fn app_info(gate: Gate<'_>) -> Result<AppInfo, CommandError> {
    gate.info()
}

#[tauri::command(async)]
pub fn operators(gate: Gate<'_>) -> Result<Vec<OperatorView>, CommandError> {
    gate.operators()
}

#[tauri::command(async)]
pub fn sign_in(
    gate: Gate<'_>,
    operator_id: i64,
    pin: String,
) -> Result<OperatorView, CommandError> {
    gate.sign_in(operator_id, &pin)
}

#[tauri::command(async)]
pub fn sign_out(gate: Gate<'_>) {
    gate.sign_out();
}

#[tauri::command(async)]
pub fn scan_code(
    gate: Gate<'_>,
    payload: String,
    source: ScanSource,
) -> Result<ScanOutcome, CommandError> {
    gate.scan(&payload, source)
}

/// The operator lets the holder of an amber verdict in.
#[tauri::command(async)]
pub fn admit_anyway(
    gate: Gate<'_>,
    payload: String,
    source: ScanSource,
    shown: String,
) -> Result<ScanOutcome, CommandError> {
    gate.admit_anyway(&payload, source, &shown)
}

/// The operator turns the gate to scan entries (`in`) or exits (`out`);
/// without one, the direction it scans now.
#[tauri::command(async)]
pub fn direction(gate: Gate<'_>, direction: Option<String>) -> Result<String, CommandError> {
    match direction {
        Some(d) => gate.set_direction(&d),
        None => Ok(gate.direction().as_str().to_string()),
    }
}

/// People inside the venue, as this gate knows it.
#[tauri::command(async)]
pub fn occupancy(gate: Gate<'_>) -> Result<Option<OccupancyView>, CommandError> {
    gate.occupancy()
}

/// The operator books a NOT_RESERVED holder into the current slot (walk-up).
#[tauri::command]
pub async fn book_walkup(
    link: State<'_, Arc<DeviceLink>>,
    payload: String,
    source: ScanSource,
) -> Result<ScanOutcome, CommandError> {
    link.book_walkup(&payload, source).await
}

/// The venue's operations today, for a supervisor (the sync screen).
#[tauri::command(async)]
pub fn venue_ops(gate: Gate<'_>) -> Result<Option<crate::gate::views::VenueOpsView>, CommandError> {
    gate.venue_ops()
}

/// A supervisor checks everyone out of the venue (online, by the server).
#[tauri::command]
pub async fn check_everyone_out(
    link: State<'_, Arc<DeviceLink>>,
) -> Result<crate::gate::views::CheckoutView, CommandError> {
    link.check_everyone_out().await
}

/// The operator undoes their own admission (within 60 s), with a reason.
#[tauri::command(async)]
pub fn undo_admission(
    gate: Gate<'_>,
    ticket_code: String,
    reason: String,
) -> Result<VerdictView, CommandError> {
    gate.undo_admission(&ticket_code, &reason)
}

#[tauri::command(async)]
pub fn slots(gate: Gate<'_>, days: i64) -> Result<Vec<SlotView>, CommandError> {
    gate.slots(days)
}

#[tauri::command(async)]
pub fn change_slot(
    gate: Gate<'_>,
    slot_id: String,
    total_capacity: Option<i64>,
    status: Option<String>,
) -> Result<SlotView, CommandError> {
    gate.change_slot(&slot_id, total_capacity, status.as_deref())
}

#[tauri::command(async)]
pub fn lookup(gate: Gate<'_>, query: String) -> Result<Vec<TicketLookupView>, CommandError> {
    gate.lookup(&query)
}

#[tauri::command(async)]
pub fn sync_status(gate: Gate<'_>) -> Result<SyncView, CommandError> {
    gate.sync_view()
}

#[tauri::command(async)]
pub fn conflicts(gate: Gate<'_>) -> Result<Vec<ConflictView>, CommandError> {
    gate.conflicts()
}

/// The user touched the screen: keeps the session from auto-locking.
#[tauri::command(async)]
pub fn touch(gate: Gate<'_>) {
    gate.touch();
}

/// The camera's last reported state (for a page that just loaded).
#[tauri::command(async)]
pub fn camera_status(gate: Gate<'_>) -> Option<CameraStatus> {
    gate.camera_status()
}

/// The operator dismissed the verdict of `payload` on screen.
#[tauri::command(async)]
pub fn dismiss_scan(gate: Gate<'_>, payload: String) {
    gate.dismiss_scan(&payload);
}

/// The verdict of the last few seconds (for a page that just loaded).
#[tauri::command(async)]
pub fn last_scan(gate: Gate<'_>) -> Option<ScanOutcome> {
    gate.last_scan()
}

#[tauri::command(async)]
pub fn settings(gate: Gate<'_>) -> Result<SettingsView, CommandError> {
    gate.settings_view(|| CameraSource::list().map_err(|e| e.to_string()))
}

#[tauri::command]
pub async fn pair_device(
    link: State<'_, Arc<DeviceLink>>,
    server_url: String,
    token: String,
    ca_cert: Option<String>,
) -> Result<PairOutcome, CommandError> {
    link.pair(&server_url, &token, ca_cert.as_deref()).await
}

/// Pairs with a scanned pairing code (`pairing-code` event); a supervisor's act.
#[tauri::command]
pub async fn pair_with_code(
    link: State<'_, Arc<DeviceLink>>,
    code: String,
) -> Result<PairOutcome, CommandError> {
    link.pair_with_code(&code).await
}

/// Pairing mode on (the camera waits for a pairing code; returns for how
/// many seconds) or off.
#[tauri::command(async)]
pub fn pairing_scan(gate: Gate<'_>, on: bool) -> Result<u64, CommandError> {
    if on {
        gate.arm_pairing_scan()
    } else {
        gate.disarm_pairing_scan();
        Ok(0)
    }
}

#[tauri::command(async)]
pub fn set_camera(gate: Gate<'_>, source: String) -> Result<String, CommandError> {
    gate.set_camera(&source)
}

/// Torch, fixed focus, fixed exposure (where the camera offers them).
#[tauri::command(async)]
pub fn set_camera_adjust(
    gate: Gate<'_>,
    adjust: CameraAdjust,
) -> Result<CameraAdjust, CommandError> {
    gate.set_camera_adjust(adjust)
}

#[tauri::command(async)]
pub fn set_kiosk(
    gate: Gate<'_>,
    window: tauri::WebviewWindow,
    on: bool,
) -> Result<(), CommandError> {
    gate.set_kiosk(on)?;
    let _ = window.set_decorations(!on);
    let _ = window.set_fullscreen(on);
    Ok(())
}

/// The LAN exchange on (listening on `port`) or off (null); issue 14.
#[tauri::command(async)]
pub fn set_lan_port(gate: Gate<'_>, port: Option<u16>) -> Result<Option<u16>, CommandError> {
    gate.set_lan_port(port)
}

#[tauri::command(async)]
pub fn set_auto_lock(gate: Gate<'_>, secs: u64) -> Result<u32, CommandError> {
    gate.set_auto_lock(secs)
}

/// Dim the screen after this many seconds without a scan or touch (0: never).
#[tauri::command(async)]
pub fn set_idle_dim(gate: Gate<'_>, secs: u64) -> Result<u32, CommandError> {
    gate.set_idle_dim(secs)
}

/// A supervisor defers fleet updates for `minutes` (0: lift the deferral).
#[tauri::command(async)]
pub fn defer_updates(gate: Gate<'_>, minutes: u32) -> Result<String, CommandError> {
    gate.defer_updates(minutes)
}

/// The scanner screen is (or is no longer) shown in a visible window.
#[tauri::command(async)]
pub fn set_preview(gate: Gate<'_>, on: bool) {
    gate.set_preview_wanted(on);
}

/// The screen dimmed after a long idle (or woke): the scan loop slows down.
#[tauri::command(async)]
pub fn set_power_save(gate: Gate<'_>, on: bool) {
    gate.set_power_save(on);
}
