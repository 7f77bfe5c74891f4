// The kiosk's one state object, its screens, and the shell's hooks the screens call (main.ts wires them).

import type { AppInfo } from './bindings/AppInfo';
import type { ConflictView } from './bindings/ConflictView';
import type { OperatorView } from './bindings/OperatorView';
import type { ScanOutcome } from './bindings/ScanOutcome';
import type { SettingsView } from './bindings/SettingsView';
import type { SlotView } from './bindings/SlotView';
import type { SyncView } from './bindings/SyncView';
import { S } from './strings';
import { asCommandError } from './tauri';

export type Screen = 'scan' | 'slots' | 'lookup' | 'sync' | 'settings';
export const SCREENS: Screen[] = ['scan', 'slots', 'lookup', 'sync', 'settings'];
/** Screens only a supervisor opens. */
export const SUPERVISOR_SCREENS: Screen[] = ['settings'];

export const state = {
  info: null as AppInfo | null,
  operator: null as OperatorView | null,
  operators: [] as OperatorView[],
  screen: 'scan' as Screen,
  sync: null as SyncView | null,
  last: null as ScanOutcome | null,
  recent: [] as { outcome: ScanOutcome; at: Date }[],
  verdictTimer: 0,
  slots: [] as SlotView[],
  conflicts: [] as ConflictView[],
  settings: null as SettingsView | null,
  lockedByTimeout: false,
};

export const operatorName = (id: number | null | undefined) =>
  id == null ? S.none : S.operatorName(id, state.operators.find((o) => o.id === id)?.display_name);

/** What the shell does for the screens. main.ts wires these, so that the
 *  screens do not import it (or each other) in a circle. */
export const nav = {
  show: (_screen: Screen): void => undefined,
  renderBar: (): void => undefined,
  locked: (_byTimeout: boolean): void => undefined,
};
export const show = (screen: Screen) => nav.show(screen);
export const renderBar = () => nav.renderBar();
const locked = (byTimeout: boolean) => nav.locked(byTimeout);

/** Runs a command; a LOCKED answer shows the sign-in screen. */
export async function run<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (raw) {
    const e = asCommandError(raw);
    if (e.code === 'LOCKED') locked(true);
    throw e;
  }
}
