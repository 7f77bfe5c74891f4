// The console's Staff page (issue 16, track "16t"): the org's operators
// (GET /api/admin/operators), add one (POST), reset a PIN (PUT
// /api/admin/operators/{id}/pin), deactivate / reactivate one or change a
// role between gate operator and supervisor (PATCH /api/admin/operators/{id};
// never one's own). Listing is for admins: the server refuses a supervisor,
// and the page says so.

import { ApiError, call, whoami } from './api';
import type { Strings } from './strings';

interface Operator {
  id: number;
  role: string;
  display_name: string;
  created_at: string;
  deactivated_at?: string | null;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

function field(id: string, label: string, input: HTMLInputElement | HTMLSelectElement): HTMLElement {
  input.id = id;
  input.setAttribute('name', id);
  return el('div', { class: 'field' }, el('label', { for: id }, label), input);
}

export async function staffPage(main: HTMLElement, t: Strings, note = '') {
  const describe = (e: unknown) =>
    e instanceof ApiError ? (e.status === 403 ? t.forbidden : t.failed(e.message)) : t.failed(String(e));
  const h1 = el('h1', { tabindex: '-1' }, t.staffHeading);
  const status = el('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  const editor = el('section', { id: 'staff-editor' });
  main.replaceChildren(h1, status);
  h1.focus();
  status.textContent = t.loading;
  let operators: Operator[];
  let me: number | null;
  try {
    operators = await call<Operator[]>('GET', '/api/admin/operators');
    me = (await whoami()).operator_id;
  } catch (e) {
    status.textContent = describe(e);
    return;
  }
  const pinInput = () => {
    const i = el('input', { type: 'password', inputmode: 'numeric', autocomplete: 'new-password', pattern: '[0-9]{4,8}', maxlength: '8' });
    i.required = true;
    return i;
  };
  const resetButton = (o: Operator) => {
    const b = el('button', { type: 'button', class: 'secondary', 'aria-label': t.staffResetOf(o.display_name) }, t.staffResetShort);
    b.addEventListener('click', () => {
      const pin = pinInput();
      const heading = el('h2', { tabindex: '-1' }, t.staffResetHeading(o.display_name));
      const close = el('button', { type: 'button', class: 'secondary' }, t.cancelButton);
      const form = el('form', {}, field('reset-pin', t.staffPinLabel, pin), el('div', { class: 'actions' }, el('button', { type: 'submit' }, t.staffResetButton), close));
      const done = () => {
        editor.replaceChildren();
        b.focus();
      };
      close.addEventListener('click', done);
      editor.onkeydown = (ev) => {
        if (ev.key === 'Escape') done();
      };
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        try {
          await call<Operator>('PUT', `/api/admin/operators/${o.id}/pin`, { pin: pin.value });
          await staffPage(main, t, t.staffPinReset(o.display_name));
        } catch (e) {
          status.textContent = describe(e);
        }
      });
      editor.replaceChildren(heading, form);
      heading.focus();
    });
    return b;
  };
  const change = async (o: Operator, body: { role?: string; active?: boolean }, note: string) => {
    try {
      await call<Operator>('PATCH', `/api/admin/operators/${o.id}`, body);
      await staffPage(main, t, note);
    } catch (e) {
      status.textContent = describe(e);
    }
  };
  const actions = (o: Operator) => {
    const cell = el('td', { class: 'actions' }, resetButton(o));
    if (o.id === me) return cell;
    const active = !o.deactivated_at;
    if (o.role !== 'admin') {
      const to = o.role === 'operator' ? 'supervisor' : 'operator';
      const b = el(
        'button',
        { type: 'button', class: 'secondary', 'aria-label': to === 'supervisor' ? t.staffMakeSupervisorOf(o.display_name) : t.staffMakeOperatorOf(o.display_name) },
        to === 'supervisor' ? t.staffMakeSupervisor : t.staffMakeOperator,
      );
      b.addEventListener('click', () => change(o, { role: to }, t.staffRoleChanged(o.display_name, t.staffRoles[to] ?? to)));
      cell.append(' ', b);
    }
    const toggle = el(
      'button',
      { type: 'button', class: 'secondary', 'aria-label': active ? t.staffDeactivateOf(o.display_name) : t.staffReactivateOf(o.display_name) },
      active ? t.staffDeactivate : t.staffReactivate,
    );
    toggle.addEventListener('click', () =>
      change(o, { active: !active }, active ? t.staffDeactivatedNote(o.display_name) : t.staffReactivatedNote(o.display_name)),
    );
    cell.append(' ', toggle);
    return cell;
  };
  const state = (o: Operator) =>
    (o.deactivated_at ? t.staffDeactivated : t.staffActive) + (o.id === me ? ` (${t.staffYou})` : '');
  const table = el(
    'table',
    {},
    el('caption', { class: 'visually-hidden' }, t.staffHeading),
    el('thead', {}, el('tr', {}, ...[t.colName, t.staffColRole, t.staffColId, t.staffColStatus, t.colActions].map((c) => el('th', { scope: 'col' }, c)))),
    el(
      'tbody',
      {},
      ...operators.map((o) =>
        el(
          'tr',
          o.deactivated_at ? { class: 'deactivated' } : {},
          el('th', { scope: 'row' }, o.display_name),
          el('td', {}, t.staffRoles[o.role] ?? o.role),
          el('td', {}, String(o.id)),
          el('td', {}, state(o)),
          actions(o),
        ),
      ),
    ),
  );
  const name = el('input', { type: 'text', autocomplete: 'off', maxlength: '200' });
  name.required = true;
  const role = el('select', {}, ...['operator', 'supervisor', 'admin'].map((r) => el('option', { value: r }, t.staffRoles[r] ?? r)));
  const pin = pinInput();
  const form = el(
    'form',
    { 'aria-labelledby': 'staff-add-heading' },
    el('h2', { id: 'staff-add-heading' }, t.staffAddHeading),
    field('staff-name', t.nameLabel, name),
    field('staff-role', t.staffColRole, role),
    field('staff-pin', t.staffPinLabel, pin),
    el('button', { type: 'submit' }, t.staffAddButton),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const o = await call<Operator>('POST', '/api/admin/operators', { role: role.value, display_name: name.value.trim(), pin: pin.value });
      await staffPage(main, t, t.staffAdded(o.display_name, o.id));
    } catch (e) {
      status.textContent = describe(e);
    }
  });
  main.replaceChildren(h1, status, table, editor, form, el('p', { class: 'note' }, t.staffNote));
  status.textContent = note;
}
