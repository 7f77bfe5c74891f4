// The sync screen and the bar's sync pill: mode, pending, retries, clock, conflicts.

import type { VenueOpsView } from './bindings/VenueOpsView';
import { $, type Child, errorText, fmtTime, h, toast } from './dom';
import { show, state } from './state';
import { S } from './strings';
import { api, asCommandError } from './tauri';

/** The supervisor's view of the venue's operations (None for others). */
let ops: VenueOpsView | null = null;
/** The "Check everyone out" question is on screen. */
let askingCheckout = false;

/** What the pill shows now: it is rebuilt only when this changes (the bar
 *  polls the gate every 3 s, and each rebuild is a repaint in software). */
let pillShows = '';

export function renderSyncPill() {
  const pill = $('sync-pill');
  const s = state.sync;
  const shows = JSON.stringify([s?.mode, s?.pending, s?.clock_suspect]);
  if (shows === pillShows && pill.firstChild) return;
  pillShows = shows;
  pill.dataset.mode = s?.mode ?? '';
  pill.replaceChildren(
    h('span', { class: 'dot' }),
    h('span', { id: 'sync-pill-mode' }, s ? (S.modes[s.mode] ?? s.mode) : '…'),
    s && s.pending > 0 ? h('span', { class: 'pill-pending', id: 'sync-pill-pending' }, S.pendingPill(s.pending)) : '',
    s?.clock_suspect ? h('span', { class: 'pill-warn' }, '⚠') : '',
  );
}

// ------------------------------------------------------------------ sync

export function buildSync() {
  $('screen-sync').replaceChildren(
    h('div', { class: 'page-head' }, h('h1', {}, S.syncTitle)),
    h('div', { id: 'sync-body' }),
  );
}

export async function refreshSync() {
  try {
    state.sync = await api.syncStatus();
  } catch {
    return;
  }
  renderSyncPill();
  if (state.screen === 'sync') renderSync();
}

export async function loadSync(withConflicts: boolean) {
  await refreshSync();
  ops = null;
  if (state.operator?.is_supervisor) {
    try {
      ops = await api.venueOps();
    } catch {
      /* shown without it */
    }
  }
  if (withConflicts) {
    try {
      state.conflicts = await api.conflicts();
    } catch {
      /* shown as none */
    }
  }
  renderSync();
}

function renderSync() {
  const s = state.sync;
  const body = $('sync-body');
  if (!s || !body) return;
  const f = S.syncFields;
  const stat = (id: string, label: string, value: Child, tone = '') =>
    h('div', { class: `stat ${tone}`, id }, h('div', { class: 'stat-v' }, value), h('div', { class: 'stat-k' }, label));
  const conflicts = state.conflicts;
  const next = h('div', {},
    h('div', { class: 'mode-card', 'data-mode': s.mode },
      h('span', { class: 'mode-dot' }),
      h('div', {}, h('div', { class: 'mode-name', id: 'sync-mode' }, S.modes[s.mode] ?? s.mode), h('div', { class: 'mode-hint' }, S.modeHints[s.mode] ?? '')),
      s.mode === 'standalone'
        ? state.operator?.is_supervisor
          ? h('button', { type: 'button', class: 'btn primary pair-link', id: 'sync-pair', onclick: () => show('settings') }, S.pairFromSync)
          : h('div', { class: 'small pair-link' }, S.pairAskSupervisor)
        : ''),
    s.clock_suspect ? h('div', { class: 'banner warn', id: 'clock-warning' }, S.clockWarning(s.clock_offset_ms)) : '',
    s.stopped
      ? h('div', { class: 'banner error', id: 'sync-stopped', role: 'alert' }, S.syncStopped)
      : s.retry
        ? h('div', { class: 'banner warn', id: 'sync-retry', 'data-code': s.retry.error_code },
            h('strong', {}, S.retry.title),
            h('div', { id: 'sync-retry-code' }, `${s.retry.error_code} · ${S.retry.attempts(s.retry.attempts)}`),
            s.retry.next_attempt_at ? h('div', { id: 'sync-retry-next' }, S.retry.nextAt(fmtTime(s.retry.next_attempt_at, true))) : '',
            h('div', { class: 'small' }, S.retry.hints[s.retry.error_code] ?? S.retry.hint))
        : '',
    h('div', { class: 'stats' },
      stat('sync-last', f.lastSync, s.last_sync_at ? fmtTime(s.last_sync_at, true) : S.never),
      stat('sync-pending', f.pending, s.pending, s.pending > 0 ? 'warn' : ''),
      stat('sync-rejected', f.rejected, s.rejected, s.rejected > 0 ? 'bad' : ''),
      stat('sync-conflicts', f.conflicts, s.conflicts, s.conflicts > 0 ? 'bad' : '')),
    h('dl', { class: 'facts' },
      h('div', { class: 'kv' }, h('dt', {}, f.server), h('dd', {}, s.server_url ?? S.none)),
      h('div', { class: 'kv' }, h('dt', {}, f.device), h('dd', {}, s.device_id ?? S.none)),
      h('div', { class: 'kv' }, h('dt', {}, f.clock), h('dd', {}, s.clock_offset_ms == null ? S.none : s.clock_suspect ? S.clockWarning(s.clock_offset_ms) : S.clockOk(s.clock_offset_ms))),
      s.last_error ? h('div', { class: 'kv warn' }, h('dt', {}, f.lastError), h('dd', { id: 'sync-error' }, s.last_error)) : ''),
    h('h2', {}, S.peersTitle),
    h('p', { id: 'sync-lan', 'data-state': s.lan.state }, S.lanState(s.lan.state, s.lan.address)),
    s.peers.length
      ? h('table', { class: 'peers', id: 'peers' },
          h('thead', {}, h('tr', {}, h('th', {}, S.peerCols.name), h('th', {}, S.peerCols.lastSeen), h('th', {}, S.peerCols.reachable), h('th', {}, S.peerCols.exchanged))),
          h('tbody', {}, ...s.peers.map((p) => h('tr', { 'data-device': String(p.device_id) },
            h('td', {}, p.name),
            h('td', {}, p.last_seen_at ? fmtTime(p.last_seen_at, true) : S.never),
            h('td', { class: p.reachable ? '' : 'warn' }, p.reachable ? S.peerReachable : S.peerUnreachable),
            h('td', {}, S.peerExchanged(p.received, p.sent))))))
      : h('p', { class: 'hint', id: 'peers-none' }, S.peersNone),
    ops && state.operator?.is_supervisor ? opsSection(ops, s.mode !== 'standalone') : '',
    h('h2', {}, S.conflictsTitle),
    conflicts.length
      ? h('table', { class: 'conflicts', id: 'conflicts' },
          h('thead', {}, h('tr', {}, h('th', {}, S.conflictCols.ticket), h('th', {}, S.conflictCols.first), h('th', {}, S.conflictCols.second))),
          h('tbody', {}, ...conflicts.map((c) => h('tr', {},
            h('td', { class: 'code' }, c.ticket_code),
            h('td', {}, c.kind === 'DOUBLE_ENTRY'
              ? S.conflictScan(fmtTime(c.first_at, true), c.first_device_id, c.first_operator_id, state.operators.find((o) => o.id === c.first_operator_id)?.display_name)
              : S.conflictServerSide(c.kind)),
            h('td', {}, S.conflictScan(fmtTime(c.second_at, true), c.second_device_id, c.second_operator_id, state.operators.find((o) => o.id === c.second_operator_id)?.display_name))))))
      : h('p', { class: 'hint', id: 'conflicts-none' }, S.conflictsNone),
  );
  // Sync events arrive every few seconds; replacing an unchanged screen
  // would swallow a press that lands between mousedown and mouseup (the
  // button is a new node) and repaint for nothing.
  if (next.innerHTML === body.innerHTML) return;
  body.replaceChildren(...next.childNodes);
}

/** Leases, undos, no-shows and "Check everyone out", for a supervisor. */
function opsSection(o: VenueOpsView, paired: boolean) {
  const name = (id: number | null) => (id == null ? '' : state.operators.find((x) => x.id === id)?.display_name ?? `#${id}`);
  return h('section', { class: 'venue-ops', id: 'venue-ops' },
    h('h2', {}, S.opsTitle),
    h('p', { id: 'ops-no-shows' }, S.opsNoShows(o.no_shows_today)),
    h('h3', {}, S.opsLeases),
    o.leases.length
      ? h('table', { class: 'peers', id: 'ops-leases' },
          h('thead', {}, h('tr', {}, h('th', {}, S.opsLeaseCols.slot), h('th', {}, S.opsLeaseCols.places))),
          h('tbody', {}, ...o.leases.map((l) => h('tr', { 'data-slot': l.slot_id },
            h('td', {}, `${l.date} ${l.start_time}–${l.end_time}`),
            h('td', { class: 'lease-places' }, String(l.places))))))
      : h('p', { class: 'hint', id: 'ops-leases-none' }, S.opsLeasesNone),
    h('h3', {}, S.opsUndos),
    o.undos.length
      ? h('table', { class: 'peers', id: 'ops-undos' },
          h('thead', {}, h('tr', {}, h('th', {}, S.opsUndoCols.time), h('th', {}, S.opsUndoCols.ticket), h('th', {}, S.opsUndoCols.by), h('th', {}, S.opsUndoCols.reason))),
          h('tbody', {}, ...o.undos.map((u) => h('tr', {},
            h('td', {}, fmtTime(u.at, true)),
            h('td', { class: 'code' }, u.ticket_code),
            h('td', {}, name(u.operator_id)),
            h('td', {}, u.reason)))))
      : h('p', { class: 'hint', id: 'ops-undos-none' }, S.opsUndosNone),
    paired
      ? askingCheckout
        ? h('div', { class: 'banner warn', id: 'ops-checkout-ask', role: 'alertdialog', 'aria-label': S.opsCheckoutAsk },
            h('strong', {}, S.opsCheckoutAsk),
            h('div', { class: 'form-actions' },
              h('button', { type: 'button', class: 'btn primary', id: 'ops-checkout-yes', onclick: () => void checkEveryoneOut() }, S.opsCheckoutYes),
              h('button', { type: 'button', class: 'btn', id: 'ops-checkout-no', onclick: () => { askingCheckout = false; renderSync(); } }, S.opsCheckoutNo)))
        : h('div', { class: 'form-actions' },
            h('button', { type: 'button', class: 'btn', id: 'ops-checkout', onclick: () => { askingCheckout = true; renderSync(); } }, S.opsCheckout),
            h('span', { class: 'small' }, S.opsCheckoutHint))
      : '');
}

async function checkEveryoneOut() {
  askingCheckout = false;
  try {
    const done = await api.checkEveryoneOut();
    toast(S.opsCheckedOut(Number(done.checked_out)), 'ok');
  } catch (e) {
    toast(errorText(asCommandError(e)));
  }
  await loadSync(true);
}
