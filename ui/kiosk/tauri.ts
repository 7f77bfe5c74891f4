// The Tauri bridge (`withGlobalTauri: true`): typed wrappers around the
// commands of src-tauri/src/commands.rs and the scan loop's window events.
// Argument names are camelCase: Tauri converts them to the Rust snake_case.

import type { AppInfo } from './bindings/AppInfo';
import type { CameraAdjust } from './bindings/CameraAdjust';
import type { CameraStatus } from './bindings/CameraStatus';
import type { CommandError } from './bindings/CommandError';
import type { ConflictView } from './bindings/ConflictView';
import type { CheckoutView } from './bindings/CheckoutView';
import type { OccupancyView } from './bindings/OccupancyView';
import type { OperatorView } from './bindings/OperatorView';
import type { PairOutcome } from './bindings/PairOutcome';
import type { PairingScan } from './bindings/PairingScan';
import type { PreviewFrame } from './bindings/PreviewFrame';
import type { ScanOutcome } from './bindings/ScanOutcome';
import type { ScanSource } from './bindings/ScanSource';
import type { SettingsView } from './bindings/SettingsView';
import type { SlotView } from './bindings/SlotView';
import type { SyncView } from './bindings/SyncView';
import type { TicketLookupView } from './bindings/TicketLookupView';
import type { VenueOpsView } from './bindings/VenueOpsView';
import type { VerdictView } from './bindings/VerdictView';

type Invoke = (cmd: string, args?: Record<string, unknown>) => Promise<unknown>;
type Listen = (event: string, handler: (e: { payload: unknown }) => void) => Promise<() => void>;

interface TauriGlobal {
  core: { invoke: Invoke };
  event: { listen: Listen };
}

const tauri = (window as unknown as { __TAURI__?: TauriGlobal }).__TAURI__;
export const inTauri = !!tauri;

/** Every rejection is a CommandError; anything else is wrapped into one. */
export function asCommandError(e: unknown): CommandError {
  if (e && typeof e === 'object' && 'code' in e && 'message' in e) return e as CommandError;
  return { code: 'INTERNAL', message: String(e) };
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  if (!tauri) throw { code: 'NO_TAURI', message: 'not running inside the app' } satisfies CommandError;
  try {
    return (await tauri.core.invoke(cmd, args)) as T;
  } catch (e) {
    throw asCommandError(e);
  }
}

export const api = {
  appInfo: () => call<AppInfo>('app_info'),
  operators: () => call<OperatorView[]>('operators'),
  signIn: (operatorId: number, pin: string) => call<OperatorView>('sign_in', { operatorId, pin }),
  signOut: () => call<null>('sign_out'),
  scanCode: (payload: string, source: ScanSource) => call<ScanOutcome>('scan_code', { payload, source }),
  admitAnyway: (payload: string, source: ScanSource, shown: string) => call<ScanOutcome>('admit_anyway', { payload, source, shown }),
  /** Sets the direction (`in` / `out`), or with null reads it. */
  direction: (direction: 'in' | 'out' | null) => call<string>('direction', { direction }),
  occupancy: () => call<OccupancyView | null>('occupancy'),
  venueOps: () => call<VenueOpsView | null>('venue_ops'),
  checkEveryoneOut: () => call<CheckoutView>('check_everyone_out'),
  bookWalkup: (payload: string, source: ScanSource) => call<ScanOutcome>('book_walkup', { payload, source }),
  undoAdmission: (ticketCode: string, reason: string) => call<VerdictView>('undo_admission', { ticketCode, reason }),
  slots: (days: number) => call<SlotView[]>('slots', { days }),
  changeSlot: (slotId: string, totalCapacity: number | null, status: string | null) =>
    call<SlotView>('change_slot', { slotId, totalCapacity, status }),
  lookup: (query: string) => call<TicketLookupView[]>('lookup', { query }),
  syncStatus: () => call<SyncView>('sync_status'),
  conflicts: () => call<ConflictView[]>('conflicts'),
  touch: () => call<null>('touch'),
  cameraStatus: () => call<CameraStatus | null>('camera_status'),
  lastScan: () => call<ScanOutcome | null>('last_scan'),
  dismissScan: (payload: string) => call<null>('dismiss_scan', { payload }),
  settings: () => call<SettingsView>('settings'),
  pairDevice: (serverUrl: string, token: string, caCert: string | null) =>
    call<PairOutcome>('pair_device', { serverUrl, token, caCert }),
  pairWithCode: (code: string) => call<PairOutcome>('pair_with_code', { code }),
  pairingScan: (on: boolean) => call<number>('pairing_scan', { on }),
  setCamera: (source: string) => call<string>('set_camera', { source }),
  setCameraAdjust: (adjust: CameraAdjust) => call<CameraAdjust>('set_camera_adjust', { adjust }),
  setKiosk: (on: boolean) => call<null>('set_kiosk', { on }),
  setAutoLock: (secs: number) => call<number>('set_auto_lock', { secs }),
  setLanPort: (port: number | null) => call<number | null>('set_lan_port', { port }),
  setIdleDim: (secs: number) => call<number>('set_idle_dim', { secs }),
  setPreview: (on: boolean) => call<null>('set_preview', { on }),
  setPowerSave: (on: boolean) => call<null>('set_power_save', { on }),
  deferUpdates: (minutes: number) => call<string>('defer_updates', { minutes }),
};

export interface Events {
  camera: CameraStatus;
  preview: PreviewFrame;
  scan: ScanOutcome;
  'scan-error': CommandError;
  'pairing-code': PairingScan;
  sync: SyncView;
}

export function on<K extends keyof Events>(event: K, handler: (payload: Events[K]) => void): void {
  if (!tauri) return;
  void tauri.event.listen(event, (e) => handler(e.payload as Events[K]));
}
