// The lookup screen: find a ticket by code, e-mail or phone and show what the gate would say.

import type { TicketLookupView } from './bindings/TicketLookupView';
import { $, type Child, errorText, fmtTime, h } from './dom';
import { operatorName, run } from './state';
import { S } from './strings';
import { api, asCommandError } from './tauri';

// ------------------------------------------------------------------ lookup

export function buildLookup() {
  const form = h('form', { class: 'search', autocomplete: 'off' },
    h('input', { id: 'lookup-q', type: 'search', placeholder: S.lookupPlaceholder, spellcheck: 'false' }),
    h('button', { type: 'submit', class: 'btn primary', id: 'lookup-go' }, S.lookupGo));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void doLookup($<HTMLInputElement>('lookup-q').value.trim());
  });
  $('screen-lookup').replaceChildren(
    h('div', { class: 'page-head' }, h('h1', {}, S.lookupTitle)),
    form,
    h('div', { class: 'results', id: 'lookup-results' }),
  );
}

async function doLookup(q: string) {
  if (!q) return;
  const out = $('lookup-results');
  try {
    const found = await run(api.lookup(q));
    out.replaceChildren(...(found.length ? found.map(lookupCard) : [h('p', { class: 'hint', id: 'lookup-none' }, S.lookupNone)]));
  } catch (raw) {
    const e = asCommandError(raw);
    out.replaceChildren(h('div', { class: 'banner error' }, errorText(e)));
  }
}

function lookupCard(t: TicketLookupView) {
  const f = S.lookupFields;
  const admit = t.gate_verdict === 'ADMIT';
  const row = (k: string, v: Child, cls = '') => h('div', { class: `kv ${cls}` }, h('dt', {}, k), h('dd', {}, v ?? S.none));
  return h('article', { class: 'lookup-result', 'data-code': t.ticket_code },
    h('header', {},
      h('span', { class: 'code' }, t.ticket_code),
      h('span', { class: `badge ${admit ? 'admit' : 'refuse'}`, 'data-verdict': t.gate_verdict }, `${f.gate}: ${admit ? S.admit : (S.reasons[t.gate_verdict] ?? t.gate_verdict)}`)),
    h('dl', {},
      row(f.status, t.status),
      row(f.activation, t.activation_status),
      row(f.email, t.customer_email),
      row(f.phone, t.customer_phone),
      row(f.reservation, t.reservation_status),
      row(f.slot, t.slot_date ? S.slotLine(t.slot_date, t.slot_start_time, t.slot_end_time) : null),
      row(f.verified, t.verified_at ? S.verifiedAt(fmtTime(t.verified_at, true), operatorName(t.verified_by)) : S.notYet, t.verified_at ? 'warn' : '')),
  );
}
