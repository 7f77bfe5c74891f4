// The slots screen: the next days' slots, capacity and open/closed for supervisors.

import type { CommandError } from './bindings/CommandError';
import type { SlotView } from './bindings/SlotView';
import { $, errorText, h, toast } from './dom';
import { run, state } from './state';
import { S, todayIso } from './strings';
import { refreshSync } from './sync';
import { api, asCommandError } from './tauri';

const SLOT_DAYS = 6;

// ------------------------------------------------------------------ slots (supervisor)

export function buildSlots() {
  $('screen-slots').replaceChildren(
    h('div', { class: 'page-head' },
      h('h1', {}, S.slotsTitle),
      h('p', { class: 'hint', id: 'slots-hint' }, S.slotsHint)),
    h('div', { class: 'banner error', id: 'slot-error', role: 'alert', hidden: true }),
    h('div', { class: 'table-wrap' }, h('table', { class: 'slots', id: 'slots-table' })),
  );
}

export async function loadSlots() {
  try {
    state.slots = await run(api.slots(SLOT_DAYS));
  } catch (raw) {
    showSlotError(asCommandError(raw));
  }
  renderSlots();
}

function showSlotError(e: CommandError | null, slot?: SlotView) {
  const box = $('slot-error');
  if (!e) {
    box.hidden = true;
    return;
  }
  const where = slot ? `${slot.date === todayIso() ? 'Today' : slot.date} ${slot.start_time}–${slot.end_time}: ` : '';
  box.replaceChildren(
    h('strong', {}, where + errorText(e)),
    e.message && S.errors[e.code] ? h('div', { class: 'err-detail' }, e.message) : '',
  );
  box.dataset.code = e.code;
  box.hidden = false;
}

function renderSlots() {
  const sup = !!state.operator?.is_supervisor;
  $('slots-hint').textContent = sup ? S.slotsHint : `${S.slotsHint} ${S.slotsReadOnly}`;
  const table = $('slots-table');
  const c = S.slotCols;
  const head = h('thead', {}, h('tr', {}, h('th', {}, c.when), h('th', {}, c.booked), h('th', {}, c.capacity), h('th', {}, c.admitted), h('th', {}, c.status), sup ? h('th', {}, c.actions) : ''));
  if (!state.slots.length) {
    table.replaceChildren(head, h('tbody', {}, h('tr', {}, h('td', { colspan: 6, class: 'empty' }, S.noSlots))));
    return;
  }
  const rows = state.slots.map((s) => {
    const pct = s.total_capacity > 0 ? Math.min(100, Math.round((s.booked_count / s.total_capacity) * 100)) : 100;
    const cap = h('input', { type: 'number', class: 'cap-input', min: s.booked_count, value: s.total_capacity, inputmode: 'numeric', 'aria-label': c.capacity });
    const step = (d: number) => () => (cap.value = String(Math.max(0, Number(cap.value || 0) + d)));
    return h('tr', { 'data-slot-id': s.id, 'data-status': s.status, class: s.date === todayIso() ? 'today' : '' },
      h('td', { class: 'when' }, h('div', { class: 'when-day' }, s.date === todayIso() ? 'Today' : s.date), h('div', { class: 'when-time' }, `${s.start_time}–${s.end_time}`)),
      h('td', { class: 'booked' },
        h('div', { class: 'num' }, h('span', { class: 'booked-n' }, s.booked_count), ` / `, h('span', { class: 'cap-n' }, s.total_capacity)),
        h('div', { class: 'bar-track' }, h('div', { class: 'bar-fill', style: `width:${pct}%` })),
        h('div', { class: 'small' }, S.free(s.available_count))),
      h('td', { class: 'cap' }, sup
        ? h('div', { class: 'stepper' },
            h('button', { type: 'button', class: 'btn step', 'aria-label': '−10', onclick: step(-10) }, '−'),
            cap,
            h('button', { type: 'button', class: 'btn step', 'aria-label': '+10', onclick: step(10) }, '+'),
            h('button', { type: 'button', class: 'btn primary cap-save', onclick: () => void changeSlot(s, Number(cap.value), null) }, S.save))
        : h('span', { class: 'num' }, s.total_capacity)),
      h('td', { class: 'num admitted', 'data-label': c.admitted }, s.admitted),
      h('td', {}, h('span', { class: `badge ${s.status.toLowerCase()}` }, S.slotStatus[s.status] ?? s.status)),
      sup ? h('td', {}, h('button', {
        type: 'button', class: `btn ${s.status === 'CLOSED' ? '' : 'danger'} status-toggle`,
        onclick: () => void changeSlot(s, null, s.status === 'CLOSED' ? 'ACTIVE' : 'CLOSED'),
      }, s.status === 'CLOSED' ? S.reopen : S.close)) : '',
    );
  });
  table.replaceChildren(head, h('tbody', {}, ...rows));
}

async function changeSlot(slot: SlotView, capacity: number | null, status: string | null) {
  showSlotError(null);
  try {
    const changed = await run(api.changeSlot(slot.id, capacity, status));
    state.slots = state.slots.map((s) => (s.id === changed.id ? changed : s));
    renderSlots();
    toast(S.slotSaved(`${changed.date} ${changed.start_time}–${changed.end_time}: ${changed.total_capacity}, ${S.slotStatus[changed.status] ?? changed.status}`), 'ok');
    void refreshSync();
  } catch (raw) {
    showSlotError(asCommandError(raw), slot);
  }
}
