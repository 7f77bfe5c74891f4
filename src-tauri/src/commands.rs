//! Tauri commands: each extracts its arguments, calls one `GateService`
//! method, and returns its view or a `CommandError`. No rule lives here.
//! They run on Tauri's thread pool (`async`), never on the window's main
//! thread, so a database write cannot stall the screen.

use std::sync::Arc;

use tauri::State;

use crate::gate::views::{
    AppInfo, CameraStatus, CommandError, ConflictView, OperatorView, ScanOutcome, ScanSource,
    SlotView, SyncView, TicketLookupView,
};
use crate::gate::GateService;

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
