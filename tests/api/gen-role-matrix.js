// The role matrix: every endpoint called as public / customer / operator /
// supervisor / admin, asserting the exact status (allowed, 401 or 403) and, for
// allowed calls, the shape of the answer. Used by gen-collection.js.
'use strict';

const { req, folder } = require('./lib');

const ROLES = ['public', 'customer', 'operator', 'supervisor', 'admin'];
const SHORT = { public: 'pub', customer: 'cust', operator: 'op', supervisor: 'sup', admin: 'adm' };
const EMAIL = 'matrix@example.com';
const PHONE = '+12025551234';

const arr = 'pm.test("body is an array", () => pm.expect(J).to.be.an("array"));';

// For each endpoint: the status per role, in ROLES order.
const ENDPOINTS = [
  {
    method: 'GET', path: '/api/health', expect: [200, 200, 200, 200, 200],
    ok: 'pm.test("status ok", () => pm.expect(J.status).to.eql("ok"));',
  },
  {
    method: 'GET', path: '/api/openapi.json', expect: [200, 200, 200, 200, 200],
    ok: 'pm.test("an OpenAPI document", () => pm.expect(J.openapi).to.match(/^3\\./));',
  },
  {
    method: 'POST', path: '/api/operator/slots/create', expect: [401, 403, 403, 201, 201],
    // Each role tries a different start time so an allowed call never collides.
    body: (r) => ({
      venue_id: '@@gate_venue_id', date: '{{plus3}}',
      start_time: { public: '06:00', customer: '07:00', operator: '08:00', supervisor: '10:00', admin: '11:00' }[r],
      end_time: '12:00', total_capacity: 10,
    }),
    ok: (r) => `pm.test("slot created", () => pm.expect(J.status).to.eql("ACTIVE")); save("mx_slot_${SHORT[r]}", J.id);`,
  },
  {
    method: 'GET', path: '/api/operator/slots?venue_id={{gate_venue_id}}', expect: [401, 403, 200, 200, 200],
    ok: 'pm.test("org-1 slots including the matrix slot", () => { pm.expect(J.map((s) => s.id)).to.include(V("mx_slot")); J.forEach((s) => pm.expect(s.orq).to.eql(1)); });',
  },
  {
    method: 'GET', path: '/api/operator/slots/{{mx_slot}}', expect: [401, 403, 200, 200, 200],
    ok: 'pm.test("the matrix slot", () => pm.expect(J.id).to.eql(V("mx_slot")));',
  },
  {
    method: 'PUT', path: '/api/operator/slots/{{mx_slot}}', body: { total_capacity: 50 }, expect: [401, 403, 403, 200, 200],
    ok: 'pm.test("capacity 50", () => pm.expect(J.total_capacity).to.eql(50));',
  },
  {
    method: 'DELETE',
    path: (r) => `/api/operator/slots/{{${{ supervisor: 'mx_slot_sup', admin: 'mx_slot_adm' }[r] || 'mx_slot'}}}`,
    expect: [401, 403, 403, 200, 200],
    ok: 'pm.test("hard-deleted (no reservations)", () => { pm.expect(J.result).to.eql("deleted"); pm.expect(J.slot).to.eql(null); });',
  },
  {
    method: 'GET', path: '/api/reservation-slots/available?month={{fy}}-04&orq=1', expect: [200, 200, 200, 200, 200],
    ok: 'pm.test("org-1 slots, none CLOSED", () => { pm.expect(J).to.be.an("array").that.is.not.empty; J.forEach((s) => { pm.expect(s.orq).to.eql(1); pm.expect(s.status).to.not.eql("CLOSED"); }); });',
  },
  {
    method: 'GET', path: '/api/tickets', expect: [401, 200, 403, 403, 403],
    ok: 'pm.test("own tickets only", () => { pm.expect(J.map((t) => t.ticket_code)).to.include("MX-STATUS"); J.forEach((t) => pm.expect(t.user_id).to.eql(1)); });',
  },
  {
    method: 'POST', path: '/api/tickets/validate', body: { ticket_code: 'MX-STATUS' }, expect: [401, 200, 200, 200, 200],
    ok: 'pm.test("may reserve: ADMIT", () => { pm.expect(J.verdict).to.eql("ADMIT"); pm.expect(J.ticket_code).to.eql("MX-STATUS"); });',
  },
  {
    method: 'POST',
    path: (r) => `/api/tickets/${r === 'admin' ? 'MX-A-ACT' : 'MX-C-ACT'}/activate`,
    expect: [401, 200, 403, 403, 200],
    ok: 'pm.test("activated", () => pm.expect(J.activation_status).to.eql("active"));',
  },
  {
    method: 'GET', path: '/api/tickets/MX-STATUS/status', expect: [401, 200, 200, 200, 200],
    ok: 'pm.test("the ticket", () => { pm.expect(J.ticket.ticket_code).to.eql("MX-STATUS"); pm.expect(J).to.have.property("reservation"); });',
  },
  {
    method: 'POST', path: '/api/reservations/create', expect: [401, 201, 403, 403, 201],
    body: (r) => ({ ticket_id: r === 'admin' ? 'MX-A-RES' : 'MX-C-RES', slot_id: '{{mx_slot}}', customer_email: EMAIL, customer_phone: PHONE }),
    ok: (r) => `pm.test("RESERVED", () => pm.expect(J.status).to.eql("RESERVED")); save("mx_res_${SHORT[r]}", J.id);`,
  },
  {
    method: 'GET', path: (r) => `/api/reservations/{{${r === 'admin' ? 'mx_res_adm' : 'mx_res_cust'}}}`,
    expect: [401, 200, 200, 200, 200],
    ok: 'pm.test("a reservation on the matrix slot", () => pm.expect(J.slot_id).to.eql(V("mx_slot")));',
  },
  {
    method: 'PUT', path: (r) => `/api/reservations/{{${r === 'admin' ? 'mx_res_adm' : 'mx_res_cust'}}}`,
    body: { slot_id: '{{mx_slot}}' }, expect: [401, 200, 403, 403, 200],
    ok: 'pm.test("still RESERVED on the matrix slot", () => { pm.expect(J.status).to.eql("RESERVED"); pm.expect(J.slot_id).to.eql(V("mx_slot")); });',
  },
  {
    method: 'POST', path: '/api/operator/validate-ticket', body: { ticket_code: 'MX-STATUS' }, expect: [401, 403, 200, 200, 200],
    ok: 'pm.test("a verdict (not reserved)", () => { pm.expect(J.admit).to.eql(false); pm.expect(J.verdict).to.eql("NOT_RESERVED"); });',
  },
  {
    method: 'POST', path: '/api/operator/verify-ticket', expect: [401, 403, 200, 200, 200],
    body: (r) => ({
      ticket_id: { supervisor: 'MX-V-SUP', admin: 'MX-V-ADM' }[r] || 'MX-V-OP',
      operator_id: '@@gate_operator_id',
    }),
    ok: 'pm.test("admitted and verified", () => { pm.expect(J.admit).to.eql(true); pm.expect(J.verified_by).to.eql(Number(V("gate_operator_id"))); });',
  },
  {
    // The operator token is bound to the gate operator: it may not sign in as another (OPERATOR_MISMATCH).
    method: 'POST', path: '/api/operator/sign-in', body: { operator_id: '@@op_pin_id', pin: '4321' }, expect: [401, 403, 403, 200, 200],
    ok: 'pm.test("the operator", () => pm.expect(J.id).to.eql(Number(V("op_pin_id"))));',
  },
  {
    method: 'POST', path: '/api/admin/venues', body: { name: 'Matrix venue', timezone: 'UTC' }, expect: [401, 403, 403, 403, 201],
    ok: 'pm.test("venue created in org 1", () => { pm.expect(J.name).to.eql("Matrix venue"); pm.expect(J.orq).to.eql(1); });',
  },
  { method: 'GET', path: '/api/admin/venues', expect: [401, 403, 403, 403, 200], ok: arr },
  {
    method: 'POST', path: '/api/admin/tickets', body: { ticket_code: 'MX-NEW' }, expect: [401, 403, 403, 403, 201],
    ok: 'pm.test("one ticket", () => pm.expect(J.map((t) => t.ticket_code)).to.eql(["MX-NEW"]));',
  },
  {
    method: 'GET', path: '/api/admin/tickets?limit=5', expect: [401, 403, 403, 403, 200],
    ok: 'pm.test("a page of 5", () => { pm.expect(J.tickets).to.have.lengthOf(5); pm.expect(J.next_after).to.be.a("string"); });',
  },
  {
    method: 'POST', path: '/api/admin/tickets/import', contentType: 'text/csv', body: 'ticket_code,user_id\nMX-CSV,5\n',
    expect: [401, 403, 403, 403, 201],
    ok: 'pm.test("one ticket imported", () => pm.expect(J.map((t) => t.ticket_code)).to.eql(["MX-CSV"]));',
  },
  {
    method: 'POST', path: '/api/admin/operators', body: { role: 'supervisor', display_name: 'Matrix sup' }, expect: [401, 403, 403, 403, 201],
    ok: 'pm.test("operator created", () => pm.expect(J.role).to.eql("supervisor"));',
  },
  { method: 'GET', path: '/api/admin/operators', expect: [401, 403, 403, 403, 200], ok: arr },
  {
    method: 'POST', path: '/api/admin/tokens', body: { role: 'customer', user_id: 42 }, expect: [401, 403, 403, 403, 201],
    ok: 'pm.test("a token", () => { pm.expect(J.token).to.match(/^ent_/); pm.expect(J.user_id).to.eql(42); });',
  },
  {
    method: 'POST', path: '/api/customer/session', body: { ticket_code: 'MX-SESSION', email: 'Buyer@Example.com' },
    expect: [201, 201, 201, 201, 201],
    ok: 'pm.test("a session for that ticket", () => { pm.expect(J.token).to.match(/^ent_/); pm.expect(J.ticket_code).to.eql("MX-SESSION"); });',
  },
  {
    method: 'GET', path: '/api/operator/signing-keys', expect: [401, 403, 200, 200, 200],
    ok: 'pm.test("org-1 public keys", () => { pm.expect(J).to.be.an("array"); J.forEach((k) => pm.expect(k.orq).to.eql(1)); });',
  },
  {
    // Scanning records a verification by the token's operator: only the
    // operator token here is bound to one (the others answer 422).
    method: 'POST', path: '/api/operator/scan', body: { payload: 'MX-NO-SUCH-CODE' }, expect: [401, 403, 200, 422, 422],
    ok: 'pm.test("a verdict: unknown ticket", () => pm.expect(J.verdict).to.eql("UNKNOWN_TICKET"));',
  },
  {
    method: 'GET', path: '/api/admin/tickets/MX-STATUS/signed-code', expect: [401, 403, 403, 403, 200],
    ok: 'pm.test("a signed ENT1 code", () => { pm.expect(J.ticket_code).to.eql("MX-STATUS"); pm.expect(J.signed_code).to.match(/^ENT1\./); });',
  },
  {
    method: 'POST', path: '/api/admin/devices', body: { name: 'Matrix gate', venue_id: '@@gate_venue_id' }, expect: [401, 403, 403, 403, 201],
    ok: 'pm.test("a device token", () => { pm.expect(J.token).to.match(/^dev_/); pm.expect(J.device.orq).to.eql(1); });',
  },
  {
    method: 'GET', path: '/api/operator/conflicts', expect: [401, 403, 200, 200, 200], ok: arr,
  },
  {
    // Sync endpoints take device tokens only: user tokens of any role are 401.
    method: 'GET', path: '/api/sync/changes?cursor=0&limit=10', expect: [401, 401, 401, 401, 401],
  },
  { method: 'GET', path: '/api/sync/whoami', expect: [401, 401, 401, 401, 401] },
  {
    method: 'POST', path: '/api/sync/events', body: { events: [], sent_at: '2025-12-01T00:00:00Z' }, expect: [401, 401, 401, 401, 401],
  },
  {
    method: 'DELETE', path: (r) => `/api/reservations/{{${r === 'admin' ? 'mx_res_adm' : 'mx_res_cust'}}}`,
    expect: [401, 200, 403, 403, 200],
    ok: 'pm.test("CANCELLED", () => pm.expect(J.status).to.eql("CANCELLED"));',
  },
];

const ERROR = { 401: 'UNAUTHORIZED', 403: 'FORBIDDEN', 422: 'INVALID_INPUT' };
const at = (v, r) => (typeof v === 'function' ? v(r) : v);

function fixtures() {
  const tickets = [
    { ticket_code: 'MX-STATUS', user_id: 1, activation_mode: 'immediate' },
    { ticket_code: 'MX-SESSION', user_id: 7, purchase_email: 'buyer@example.com' },
    { ticket_code: 'MX-C-ACT', user_id: 1 },
    { ticket_code: 'MX-A-ACT' },
    { ticket_code: 'MX-C-RES', user_id: 1, activation_mode: 'immediate' },
    { ticket_code: 'MX-A-RES', activation_mode: 'immediate' },
    { ticket_code: 'MX-V-OP', activation_mode: 'immediate' },
    { ticket_code: 'MX-V-SUP', activation_mode: 'immediate' },
    { ticket_code: 'MX-V-ADM', activation_mode: 'immediate' },
  ];
  const items = [
    req('matrix fixture: tickets', {
      method: 'POST', path: '/api/admin/tickets', as: 'admin', body: tickets,
      expect: { status: 201 },
      test: `pm.test("${tickets.length} tickets", () => pm.expect(J).to.have.lengthOf(${tickets.length}));`,
    }),
    req('matrix fixture: slot (in three days)', {
      method: 'POST', path: '/api/operator/slots/create', as: 'admin',
      body: { venue_id: '@@gate_venue_id', date: '{{plus3}}', start_time: '09:00', end_time: '10:00', total_capacity: 20 },
      expect: { status: 201 },
      test: 'pm.test("ACTIVE", () => pm.expect(J.status).to.eql("ACTIVE")); save("mx_slot", J.id);',
    }),
  ];
  for (const code of ['MX-V-OP', 'MX-V-SUP', 'MX-V-ADM']) {
    items.push(req(`matrix fixture: reserve ${code} today`, {
      method: 'POST', path: '/api/reservations/create', as: 'admin',
      body: { ticket_id: code, slot_id: '{{slot_today}}', customer_email: EMAIL, customer_phone: PHONE },
      expect: { status: 201 },
      test: 'pm.test("RESERVED", () => pm.expect(J.status).to.eql("RESERVED"));',
    }));
  }
  return items;
}

function roleMatrixFolder() {
  const items = fixtures();
  for (const e of ENDPOINTS) {
    ROLES.forEach((role, i) => {
      const status = e.expect[i];
      const p = at(e.path, role);
      const shown = p.replace(/\{\{[a-z_0-9]+\}\}/gi, (m) => (m === '{{gate_venue_id}}' ? m : ':id'));
      const allowed = status < 400;
      items.push(req(`[${role}] ${e.method} ${shown.split('?')[0]} -> ${allowed ? status : `${status} ${ERROR[status]}`}`, {
        method: e.method,
        path: p,
        as: role,
        body: at(e.body, role),
        contentType: e.contentType,
        expect: allowed ? { status } : { status, code: ERROR[status] },
        test: allowed ? at(e.ok, role) : undefined,
      }));
    });
  }
  return folder(
    '08 role matrix',
    'Generated by gen-role-matrix.js: every endpoint x public/customer/operator/supervisor/admin.',
    items,
  );
}

module.exports = { roleMatrixFolder, ENDPOINTS, ROLES };
