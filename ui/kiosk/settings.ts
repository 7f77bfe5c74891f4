// The settings screen (supervisor): pairing with a server (typed, or by scanning the console's pairing QR
// code: pairing mode, issue 16), camera, kiosk mode, auto-lock, dimming, LAN exchange, about.

import type { CommandError } from './bindings/CommandError';
import type { PairOutcome } from './bindings/PairOutcome';
import type { PairingScan } from './bindings/PairingScan';
import type { SettingsView } from './bindings/SettingsView';
import { $, errorText, h, toast } from './dom';
import { locked } from './signin';
import { renderBar, run, state } from './state';
import { S } from './strings';
import { api, asCommandError, on } from './tauri';

// ------------------------------------------------------------------ settings (supervisor)

export function buildSettings() {
  $('screen-settings').replaceChildren(
    h('div', { class: 'page-head' }, h('h1', {}, S.settingsTitle), h('p', { class: 'hint' }, S.settingsHint)),
    h('div', { class: 'banner error', id: 'settings-error', role: 'alert', hidden: true }),
    h('div', { class: 'settings', id: 'settings-body' }),
  );
}

export async function loadSettings() {
  showSettingsError(null);
  try {
    state.settings = await run(api.settings());
  } catch (raw) {
    showSettingsError(asCommandError(raw));
    return;
  }
  renderSettings();
}

// The exchange starts or stops within a second of the switch: the card
// shows it once it has (a few looks, while the settings screen is open).
async function followLan(on: boolean) {
  for (let i = 0; i < 6; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    if (state.screen !== 'settings') return;
    await loadSettings();
    const now = state.settings?.lan.state;
    if (on ? now === 'listening' || now === 'peers' : now === 'off') return;
  }
}

function showSettingsError(e: CommandError | null) {
  const box = $('settings-error');
  if (!e) {
    box.hidden = true;
    return;
  }
  box.replaceChildren(
    h('strong', {}, errorText(e)),
    e.message && S.errors[e.code] ? h('div', { class: 'err-detail' }, e.message) : '',
  );
  box.dataset.code = e.code;
  box.hidden = false;
}

const fixedNote = (v: SettingsView, key: string) =>
  v.fixed.includes(key) ? h('p', { class: 'small fixed-note' }, S.fixedByFlag) : '';

function renderSettings() {
  const v = state.settings;
  if (!v) return;
  // --- server
  const url = h('input', { id: 'pair-url', 'data-wedge': 'off', type: 'text', placeholder: S.serverUrlPlaceholder, value: v.server_url ?? '', spellcheck: 'false', autocapitalize: 'off', inputmode: 'url' });
  const token = h('input', { id: 'pair-token', 'data-wedge': 'off', type: 'password', placeholder: S.deviceTokenPlaceholder, spellcheck: 'false', autocomplete: 'off' });
  // The venue's own CA: a PEM file's path, or its text pasted; empty keeps the one in use.
  const caCert = h('textarea', { id: 'pair-ca', 'data-wedge': 'off', rows: 2, placeholder: S.caCertPlaceholder, spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off' });
  const pairForm = h('form', { class: 'settings-form', id: 'pair-form', autocomplete: 'off' },
    h('label', { for: 'pair-url' }, S.serverUrl), url,
    h('label', { for: 'pair-token' }, S.deviceToken), token,
    h('label', { for: 'pair-ca' }, S.caCert), caCert,
    h('p', { class: 'small', id: 'pair-ca-hint' }, S.caCertHint),
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit', class: 'btn primary', id: 'pair-submit' }, S.pairButton),
      h('span', { class: 'form-status', id: 'pair-status', 'aria-live': 'polite' })));
  pairForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void pairDevice(url.value.trim(), token.value.trim(), caCert.value.trim());
  });
  // Pairing mode: the camera waits for the console's pairing QR code.
  const scanPair = h('button', { type: 'button', class: 'btn', id: 'pair-scan' }, pairingArmed ? S.scanPairingCancel : S.scanPairing);
  scanPair.addEventListener('click', () => void (pairingArmed ? stopPairingScan() : startPairingScan()));
  const scanRow = pairingFound
    ? pairingConfirm(pairingFound)
    : h('div', { class: 'form-actions', id: 'pair-scan-row' },
      scanPair,
      h('span', { class: 'form-status', id: 'pair-scan-status', 'aria-live': 'polite' }, pairingArmed ? S.scanPairingWaiting(pairingArmed) : ''));
  // --- camera
  const select = h('select', { id: 'camera-select', 'aria-label': S.cameraSelect });
  const options = [...v.camera_options];
  const inFolder = v.camera.startsWith('folder:');
  if (!inFolder && !options.some((o) => o.value === v.camera)) options.push({ value: v.camera, label: v.camera });
  for (const o of options) select.append(h('option', { value: o.value }, o.label));
  select.append(h('option', { value: 'folder' }, S.cameraFolder));
  select.value = inFolder ? 'folder' : v.camera;
  const folder = h('input', { id: 'camera-folder', 'data-wedge': 'off', type: 'text', placeholder: S.cameraFolderPlaceholder, value: inFolder ? v.camera.slice('folder:'.length) : '', spellcheck: 'false' });
  const folderRow = h('div', { class: 'folder-row', hidden: !inFolder }, h('label', { for: 'camera-folder' }, S.cameraFolderPath), folder);
  select.addEventListener('change', () => (folderRow.hidden = select.value !== 'folder'));
  const cameraForm = h('form', { class: 'settings-form', id: 'camera-form', autocomplete: 'off' },
    h('label', { for: 'camera-select' }, S.cameraSelect), select, folderRow,
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn primary', id: 'camera-use' }, S.cameraUse)));
  cameraForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void useCamera(select.value === 'folder' ? `folder:${folder.value.trim()}` : select.value);
  });
  // --- screen
  const kiosk = h('input', { id: 'kiosk-toggle', type: 'checkbox', checked: v.kiosk });
  kiosk.addEventListener('change', () => void saveSetting(api.setKiosk(kiosk.checked)));
  const lock = h('select', { id: 'auto-lock', 'aria-label': S.autoLockLabel });
  const choices = S.autoLockChoices.some(([n]) => n === v.auto_lock_secs) ? S.autoLockChoices : [...S.autoLockChoices, [v.auto_lock_secs, `${v.auto_lock_secs} s`] as [number, string]];
  for (const [n, label] of choices) lock.append(h('option', { value: n }, label));
  lock.value = String(v.auto_lock_secs);
  lock.addEventListener('change', () => void saveSetting(api.setAutoLock(Number(lock.value))));
  const dim = h('select', { id: 'idle-dim', 'aria-label': S.idleDimLabel });
  const dims = S.idleDimChoices.some(([n]) => n === v.idle_dim_secs) ? S.idleDimChoices : [...S.idleDimChoices, [v.idle_dim_secs, `${v.idle_dim_secs} s`] as [number, string]];
  for (const [n, label] of dims) dim.append(h('option', { value: n }, label));
  dim.value = String(v.idle_dim_secs);
  dim.addEventListener('change', () => void saveSetting(api.setIdleDim(Number(dim.value))));

  // --- updates (a supervisor defers them, e.g. before doors open)
  const deferred = v.updates_deferred_until;
  const defer = h('button', { type: 'button', class: 'btn', id: 'updates-defer' }, deferred ? S.resumeUpdates : S.deferUpdates);
  defer.addEventListener('click', () => void saveSetting(api.deferUpdates(deferred ? 0 : 120)).then(loadSettings));

  // --- LAN exchange (issue 14): on with a port, or off.
  const lanOn = h('input', { id: 'lan-toggle', type: 'checkbox', checked: v.lan_port != null });
  const lanPort = h('input', { id: 'lan-port', 'data-wedge': 'off', type: 'number', min: '1024', max: '65535', value: String(v.lan_port ?? 7700) });
  const saveLan = () => void saveSetting(api.setLanPort(lanOn.checked ? Number(lanPort.value) : null)).then(() => followLan(lanOn.checked));
  lanOn.addEventListener('change', saveLan);
  lanPort.addEventListener('change', () => { if (lanOn.checked) saveLan(); });

  const cam = v.camera_status;
  // Torch, fixed focus, fixed exposure: only those the camera in use offers.
  const offered = cam?.controls;
  const adjustKeys = (['torch', 'fixed_focus', 'fixed_exposure'] as const).filter((k) => offered?.[k]);
  const adjust = { ...v.camera_adjust };
  const controls = adjustKeys.length
    ? h('div', { class: 'camera-controls', id: 'camera-controls' },
        ...adjustKeys.map((k) => {
          const box = h('input', { id: `camera-${k.replace('_', '-')}`, type: 'checkbox', checked: adjust[k] });
          box.addEventListener('change', () => {
            adjust[k] = box.checked;
            void saveSetting(api.setCameraAdjust(adjust));
          });
          return h('label', { class: 'check' }, box, S.cameraControls[k]);
        }))
    : h('p', { class: 'small', id: 'camera-no-controls' }, S.cameraNoControls);
  $('settings-body').replaceChildren(
    h('section', { class: 'card', id: 'settings-server' },
      h('h2', {}, S.pairTitle),
      h('div', { class: 'mode-card', 'data-mode': state.sync?.mode ?? (v.paired ? 'online' : 'standalone') },
        h('span', { class: 'mode-dot' }),
        h('div', { id: 'pair-summary' }, v.paired ? S.pairPaired(v.venue_name, v.device_name) : S.pairStandalone)),
      v.paired ? '' : h('p', { class: 'hint' }, S.pairReplaces),
      h('p', { class: 'small' }, S.scanPairingHint),
      scanRow,
      pairForm),
    h('section', { class: 'card', id: 'settings-camera' },
      h('h2', {}, S.cameraTitle),
      h('div', { class: 'cam-now', 'data-ok': cam ? String(cam.ok) : '' },
        h('div', { class: 'cam-now-k' }, S.cameraInUse),
        h('div', { id: 'settings-cam-status' }, cam ? cam.description : v.camera)),
      v.cameras_error ? h('p', { class: 'small' }, S.cameraListError(v.cameras_error)) : '',
      cameraForm,
      fixedNote(v, 'camera'),
      controls),
    h('section', { class: 'card', id: 'settings-screen' },
      h('h2', {}, S.screenTitle),
      h('label', { class: 'check' }, kiosk, S.kioskLabel),
      fixedNote(v, 'kiosk'),
      h('label', { class: 'inline', for: 'auto-lock' }, S.autoLockLabel, lock),
      fixedNote(v, 'auto_lock'),
      h('label', { class: 'inline', for: 'idle-dim' }, S.idleDimLabel, dim),
      fixedNote(v, 'idle_dim')),
    h('section', { class: 'card', id: 'settings-updates' },
      h('h2', {}, S.updatesTitle),
      h('p', { class: 'hint' }, S.updatesHint),
      h('p', { id: 'updates-state' }, deferred ? S.updatesDeferredUntil(deferred) : S.updatesNotDeferred),
      h('div', { class: 'form-actions' }, defer)),
    h('section', { class: 'card', id: 'settings-lan' },
      h('h2', {}, S.lanTitle),
      h('label', { class: 'check' }, lanOn, S.lanLabel),
      h('label', { class: 'inline', for: 'lan-port' }, S.lanPort, lanPort),
      h('p', { id: 'lan-state', 'data-state': v.lan.state }, S.lanState(v.lan.state, v.lan.address)),
      v.lan.from_flags ? h('p', { class: 'small fixed-note' }, S.lanFromFlags) : '',
      h('p', { class: 'small' }, S.lanHint)),
    h('section', { class: 'card', id: 'settings-about' },
      h('h2', {}, S.aboutTitle),
      h('dl', { class: 'facts' },
        h('div', { class: 'kv' }, h('dt', {}, S.syncFields.device), h('dd', {}, v.device_id == null ? S.none : `#${v.device_id} ${v.device_name ?? ''}`)),
        h('div', { class: 'kv' }, h('dt', {}, S.database), h('dd', { id: 'settings-db' }, v.database)),
        h('div', { class: 'kv' }, h('dt', {}, S.version), h('dd', { id: 'settings-version' }, v.dev_release_key ? `${v.version} (${S.devReleaseKey})` : v.version)))),
  );
}

// Seconds pairing mode was armed for (0: off). Rust ends it on its own
// (taken code, timeout, lock); the timer below follows the timeout, and a
// lock leaves this screen (leaveSettings).
let pairingArmed = 0;
let pairingTimer: ReturnType<typeof setTimeout> | undefined;
let pairingListening = false;
// A code read in pairing mode, waiting for the supervisor's "Pair" or "Cancel":
// nothing is paired before that tap (a code in front of a public camera must
// not re-pair the gate on its own).
let pairingFound: PairingScan | null = null;

function setPairingArmed(secs: number) {
  pairingArmed = secs;
  clearTimeout(pairingTimer);
  if (secs) {
    pairingTimer = setTimeout(() => {
      pairingArmed = 0;
      if (state.screen === 'settings') renderSettings();
    }, secs * 1000);
  }
}

async function startPairingScan() {
  showSettingsError(null);
  pairingFound = null;
  if (!pairingListening) {
    pairingListening = true;
    on('pairing-code', (p) => pairingCodeRead(p));
  }
  try {
    setPairingArmed(await run(api.pairingScan(true)));
  } catch (raw) {
    showSettingsError(asCommandError(raw));
    return;
  }
  renderSettings();
}

async function stopPairingScan() {
  setPairingArmed(0);
  await api.pairingScan(false).catch(() => undefined);
  if (state.screen === 'settings') renderSettings();
}

/** Leaving the settings screen ends pairing mode and drops a code not confirmed. */
export function leaveSettings() {
  pairingFound = null;
  delete document.body.dataset.pairingServer;
  if (pairingArmed) void stopPairingScan();
}

function pairingCodeRead(p: PairingScan) {
  if (state.screen !== 'settings') return;
  if (p.error || !p.server_url) {
    if (p.error) showSettingsError(p.error);
    return;
  }
  setPairingArmed(0);
  pairingFound = p;
  document.body.dataset.pairingServer = p.server_url;
  renderSettings();
}

/** What the scanned code would do, for the supervisor to confirm (or not). */
function pairingConfirm(p: PairingScan) {
  const server = p.server_url ?? '';
  let host = server;
  try {
    host = new URL(server).host;
  } catch {
    // Shown as read.
  }
  const row = (k: string, v: string, id: string) => h('div', { class: 'kv' }, h('span', { class: 'small' }, k), h('strong', { id }, v));
  const ok = h('button', { type: 'button', class: 'btn primary', id: 'pair-confirm-ok', disabled: !!p.refusal }, S.pairButton);
  const cancel = h('button', { type: 'button', class: 'btn', id: 'pair-confirm-cancel' }, S.pairConfirmCancel);
  ok.addEventListener('click', () => {
    pairingFound = null;
    renderSettings();
    $('pair-scan-status').textContent = S.scanPairingFound(server, p.pins_ca);
    void pairDevice('', '', '', api.pairWithCode(p.code));
  });
  cancel.addEventListener('click', () => {
    pairingFound = null;
    delete document.body.dataset.pairingServer;
    renderSettings();
  });
  return h('div', { class: 'pair-confirm', id: 'pair-confirm', role: 'group', 'aria-label': S.pairConfirmTitle, 'data-refused': p.refusal?.code ?? '' },
    h('h3', {}, S.pairConfirmTitle),
    row(S.pairConfirmHost, host, 'pair-confirm-host'),
    row(S.pairConfirmServer, server, 'pair-confirm-server'),
    row(S.pairConfirmCa, p.pins_ca ? S.pairConfirmCaPinned : S.pairConfirmCaNone, 'pair-confirm-ca'),
    row(S.pairConfirmCurrent, p.current_server ?? S.pairConfirmStandalone, 'pair-confirm-current'),
    row(S.pairConfirmPending, String(p.pending), 'pair-confirm-pending'),
    p.refusal ? h('div', { class: 'banner error', id: 'pair-confirm-refusal', role: 'alert' }, errorText(p.refusal)) : '',
    h('div', { class: 'form-actions' }, ok, cancel));
}

async function pairDevice(url: string, token: string, caCert: string, scanned?: Promise<PairOutcome>) {
  showSettingsError(null);
  const status = $('pair-status');
  const button = $<HTMLButtonElement>('pair-submit');
  status.textContent = S.pairing;
  status.dataset.state = 'busy';
  button.disabled = true;
  try {
    const out = await run(scanned ?? api.pairDevice(url, token, caCert || null));
    status.dataset.state = 'ok';
    const msg = [S.paired(out.venue_name, out.operators), out.first_sync_error ? S.pairedSyncLater(out.first_sync_error) : ''].filter(Boolean).join(' ');
    status.textContent = msg;
    state.info = await api.appInfo();
    state.sync = state.info.sync;
    document.body.dataset.paired = String(out.device_id);
    if (!state.info.operator) {
      // A first pairing ends the session: sign in as one of the venue's operators.
      state.screen = 'scan';
      locked(false);
      toast(`${msg} ${S.pairedSignIn}`, 'ok');
      return;
    }
    toast(msg, 'ok');
    renderBar();
    await loadSettings();
  } catch (raw) {
    status.textContent = '';
    status.dataset.state = 'error';
    showSettingsError(asCommandError(raw));
  } finally {
    button.disabled = false;
  }
}

async function useCamera(source: string) {
  showSettingsError(null);
  try {
    const now = await run(api.setCamera(source));
    toast(S.cameraSwitched(now), 'ok');
    await loadSettings();
  } catch (raw) {
    showSettingsError(asCommandError(raw));
  }
}

async function saveSetting(p: Promise<unknown>) {
  showSettingsError(null);
  try {
    await run(p);
    toast(S.saved, 'ok');
    state.info = await api.appInfo();
  } catch (raw) {
    showSettingsError(asCommandError(raw));
    await loadSettings();
  }
}
