// The role matrix: every endpoint called as public / customer (a user token) /
// customer session (opened with a ticket code and e-mail, scoped to that one
// ticket) / operator / supervisor / admin, asserting the exact status (allowed, 401 or 403) and, for
// allowed calls, the shape of the answer. Used by gen-collection.js.
'use strict';

const { req, folder } = require('./lib');

const ROLES = ['public', 'customer', 'session', 'operator', 'supervisor', 'admin'];
const SHORT = { public: 'pub', customer: 'cust', session: 'sess', operator: 'op', supervisor: 'sup', admin: 'adm' };
const LABEL = { session: 'customer session' };
// The session's own ticket (deferred, no user id) and the e-mail it was bought with.
const SESS = 'MX-SESS';
const SESS_EMAIL = 'sess@example.com';
const EMAIL = 'matrix@example.com';
const PHONE = '+12025551234';

const arr = 'pm.test("body is an array", () => pm.expect(J).to.be.an("array"));';

// For each endpoint: the status per role, in ROLES order.
const ENDPOINTS = [
  {
    method: 'GET', path: '/api/health', expect: [200, 200, 200, 200, 200, 200],
    ok: 'pm.test("status ok", () => pm.expect(J.status).to.eql("ok"));',
  },
  {
    method: 'GET', path: '/api/openapi.json', expect: [200, 200, 200, 200, 200, 200],
    ok: 'pm.test("an OpenAPI document", () => pm.expect(J.openapi).to.match(/^3\\./));',
  },
  {
    method: 'POST', path: '/api/operator/slots/create', expect: [401, 403, 403, 403, 201, 201],
    // Each role tries a different start time so an allowed call never collides.
    body: (r) => ({
      venue_id: '@@gate_venue_id', date: '{{plus3}}',
      start_time: { public: '06:00', customer: '07:00', session: '07:30', operator: '08:00', supervisor: '10:00', admin: '11:00' }[r],
      end_time: '12:00', total_capacity: 10,
    }),
    ok: (r) => `pm.test("slot created", () => pm.expect(J.status).to.eql("ACTIVE")); save("mx_slot_${SHORT[r]}", J.id);`,
  },
  {
    method: 'GET', path: '/api/operator/slots?venue_id={{gate_venue_id}}', expect: [401, 403, 403, 200, 200, 200],
    ok: 'pm.test("org-1 slots including the matrix slot", () => { pm.expect(J.map((s) => s.id)).to.include(V("mx_slot")); J.forEach((s) => pm.expect(s.orq).to.eql(1)); });',
  },
  {
    method: 'GET', path: '/api/operator/slots/{{mx_slot}}', expect: [401, 403, 403, 200, 200, 200],
    ok: 'pm.test("the matrix slot", () => pm.expect(J.id).to.eql(V("mx_slot")));',
  },
  {
    method: 'PUT', path: '/api/operator/slots/{{mx_slot}}', body: { total_capacity: 50 }, expect: [401, 403, 403, 403, 200, 200],
    ok: 'pm.test("capacity 50", () => pm.expect(J.total_capacity).to.eql(50));',
  },
  {
    method: 'DELETE',
    path: (r) => `/api/operator/slots/{{${{ supervisor: 'mx_slot_sup', admin: 'mx_slot_adm' }[r] || 'mx_slot'}}}`,
    expect: [401, 403, 403, 403, 200, 200],
    ok: 'pm.test("hard-deleted (no reservations)", () => { pm.expect(J.result).to.eql("deleted"); pm.expect(J.slot).to.eql(null); });',
  },
  {
    method: 'GET', path: '/api/reservation-slots/available?month={{fy}}-04&orq=1', expect: [200, 200, 200, 200, 200, 200],
    ok: 'pm.test("org-1 slots, none CLOSED", () => { pm.expect(J).to.be.an("array").that.is.not.empty; J.forEach((s) => { pm.expect(s.orq).to.eql(1); pm.expect(s.status).to.not.eql("CLOSED"); }); });',
  },
  {
    method: 'GET', path: '/api/tickets', expect: [401, 200, 200, 403, 403, 403],
    ok: (r) => (r === 'session'
      ? `pm.test("the session's one ticket, nothing else of the org", () => pm.expect(J.map((t) => t.ticket_code)).to.eql(["${SESS}"]));`
      : 'pm.test("own tickets only", () => { pm.expect(J.map((t) => t.ticket_code)).to.include("MX-STATUS"); J.forEach((t) => pm.expect(t.user_id).to.eql(1)); });'),
  },
  {
    // The session asks about another holder's ticket: as unknown as a made-up
    // code (which echoes the code asked). So does the operator, bound to the
    // gate venue: MX-STATUS is not reserved yet (no venue), as for its status.
    method: 'POST', path: '/api/tickets/validate', body: { ticket_code: 'MX-STATUS' }, expect: [401, 200, 200, 200, 200, 200],
    ok: (r) => (r === 'session' || r === 'operator'
      ? 'pm.test("a ticket not the caller\'s is unknown to it", () => { pm.expect(J.admit).to.eql(false); pm.expect(J.verdict).to.eql("UNKNOWN_TICKET"); pm.expect(J.ticket_code).to.eql("MX-STATUS"); });'
      : 'pm.test("may reserve: ADMIT", () => { pm.expect(J.verdict).to.eql("ADMIT"); pm.expect(J.ticket_code).to.eql("MX-STATUS"); });'),
  },
  {
    method: 'POST',
    path: (r) => `/api/tickets/${{ admin: 'MX-A-ACT', session: SESS }[r] || 'MX-C-ACT'}/activate`,
    expect: [401, 200, 200, 403, 403, 200],
    ok: 'pm.test("activated", () => pm.expect(J.activation_status).to.eql("active"));',
  },
  {
    // The operator token is bound to the gate venue and MX-STATUS is not
    // reserved yet (no venue): a venue-bound caller gets 404 (SECURITY.md).
    method: 'GET', path: (r) => `/api/tickets/${r === 'session' ? SESS : 'MX-STATUS'}/status`, expect: [401, 200, 200, 404, 200, 200],
    ok: (r) => `pm.test("the ticket", () => { pm.expect(J.ticket.ticket_code).to.eql("${r === 'session' ? SESS : 'MX-STATUS'}"); pm.expect(J).to.have.property("reservation"); });`,
  },
  {
    method: 'POST', path: '/api/reservations/create', expect: [401, 201, 201, 403, 403, 201],
    body: (r) => ({ ticket_id: { admin: 'MX-A-RES', session: SESS }[r] || 'MX-C-RES', slot_id: '{{mx_slot}}', customer_email: EMAIL, customer_phone: PHONE }),
    ok: (r) => `pm.test("RESERVED", () => pm.expect(J.status).to.eql("RESERVED")); save("mx_res_${SHORT[r]}", J.id);`,
  },
  {
    method: 'GET', path: (r) => `/api/reservations/{{${{ admin: 'mx_res_adm', session: 'mx_res_sess' }[r] || 'mx_res_cust'}}}`,
    expect: [401, 200, 200, 200, 200, 200],
    ok: 'pm.test("a reservation on the matrix slot", () => pm.expect(J.slot_id).to.eql(V("mx_slot")));',
  },
  {
    method: 'PUT', path: (r) => `/api/reservations/{{${{ admin: 'mx_res_adm', session: 'mx_res_sess' }[r] || 'mx_res_cust'}}}`,
    body: { slot_id: '{{mx_slot}}' }, expect: [401, 200, 200, 403, 403, 200],
    ok: 'pm.test("still RESERVED on the matrix slot", () => { pm.expect(J.status).to.eql("RESERVED"); pm.expect(J.slot_id).to.eql(V("mx_slot")); });',
  },
  {
    method: 'POST', path: '/api/operator/validate-ticket', body: { ticket_code: 'MX-STATUS' }, expect: [401, 403, 403, 200, 200, 200],
    ok: 'pm.test("a verdict (not reserved)", () => { pm.expect(J.admit).to.eql(false); pm.expect(J.verdict).to.eql("NOT_RESERVED"); });',
  },
  {
    method: 'POST', path: '/api/operator/verify-ticket', expect: [401, 403, 403, 200, 200, 200],
    body: (r) => ({
      ticket_id: { supervisor: 'MX-V-SUP', admin: 'MX-V-ADM' }[r] || 'MX-V-OP',
      operator_id: '@@gate_operator_id',
    }),
    ok: 'pm.test("admitted and verified", () => { pm.expect(J.admit).to.eql(true); pm.expect(J.verified_by).to.eql(Number(V("gate_operator_id"))); });',
  },
  {
    // The operator token is bound to the gate operator: it may not sign in as another (OPERATOR_MISMATCH).
    method: 'POST', path: '/api/operator/sign-in', body: { operator_id: '@@op_pin_id', pin: '4321' }, expect: [401, 403, 403, 403, 200, 200],
    codes: { operator: 'OPERATOR_MISMATCH' },
    ok: 'pm.test("the operator", () => pm.expect(J.id).to.eql(Number(V("op_pin_id"))));',
  },
  {
    method: 'POST', path: '/api/admin/venues', body: { name: 'Matrix venue', timezone: 'UTC' }, expect: [401, 403, 403, 403, 403, 201],
    ok: 'pm.test("venue created in org 1", () => { pm.expect(J.name).to.eql("Matrix venue"); pm.expect(J.orq).to.eql(1); });',
  },
  // Supervisors list venues too (the console's Slots page picks one).
  { method: 'GET', path: '/api/admin/venues', expect: [401, 403, 403, 403, 200, 200], ok: arr },
  {
    method: 'GET', path: '/api/admin/venues/{{gate_venue_id}}', expect: [401, 403, 403, 403, 403, 200],
    ok: 'pm.test("the gate venue with its grace", () => { pm.expect(J.id).to.eql(Number(V("gate_venue_id"))); pm.expect(J.early_grace_minutes).to.be.a("number"); });',
  },
  {
    // Sets what it is (30): the rest of the suite scans with the default grace.
    method: 'PATCH', path: '/api/admin/venues/{{gate_venue_id}}', body: { early_grace_minutes: 30 }, expect: [401, 403, 403, 403, 403, 200],
    ok: 'pm.test("grace 30", () => pm.expect(J.early_grace_minutes).to.eql(30));',
  },
  {
    method: 'GET', path: '/api/admin/org', expect: [401, 403, 403, 403, 403, 200],
    ok: 'pm.test("the org settings", () => pm.expect(J.signed_codes_only).to.be.a("boolean"));',
  },
  {
    // Leaves the setting as it was (off): the rest of the suite scans plain codes.
    method: 'PATCH', path: '/api/admin/org', body: { signed_codes_only: false }, expect: [401, 403, 403, 403, 403, 200],
    ok: 'pm.test("plain codes still accepted", () => pm.expect(J.signed_codes_only).to.eql(false));',
  },
  {
    method: 'POST', path: '/api/admin/tickets', body: { ticket_code: 'MX-NEW' }, expect: [401, 403, 403, 403, 403, 201],
    ok: 'pm.test("one ticket", () => pm.expect(J.map((t) => t.ticket_code)).to.eql(["MX-NEW"]));',
  },
  {
    method: 'GET', path: '/api/admin/tickets?limit=5', expect: [401, 403, 403, 403, 403, 200],
    ok: 'pm.test("a page of 5", () => { pm.expect(J.tickets).to.have.lengthOf(5); pm.expect(J.next_after).to.be.a("string"); });',
  },
  {
    method: 'POST', path: '/api/admin/tickets/import', contentType: 'text/csv', body: 'ticket_code,user_id\nMX-CSV,5\n',
    expect: [401, 403, 403, 403, 403, 201],
    ok: 'pm.test("one ticket imported", () => pm.expect(J.map((t) => t.ticket_code)).to.eql(["MX-CSV"]));',
  },
  {
    method: 'POST', path: '/api/admin/operators', body: { role: 'supervisor', display_name: 'Matrix sup' }, expect: [401, 403, 403, 403, 403, 201],
    ok: 'pm.test("operator created", () => pm.expect(J.role).to.eql("supervisor"));',
  },
  { method: 'GET', path: '/api/admin/operators', expect: [401, 403, 403, 403, 403, 200], ok: arr },
  {
    method: 'POST', path: '/api/admin/tokens', body: { role: 'customer', user_id: 42 }, expect: [401, 403, 403, 403, 403, 201],
    ok: 'pm.test("a token", () => { pm.expect(J.token).to.match(/^ent_/); pm.expect(J.user_id).to.eql(42); });',
  },
  {
    method: 'POST', path: '/api/customer/session', body: { ticket_code: 'MX-SESSION', email: 'Buyer@Example.com' },
    expect: [201, 201, 201, 201, 201, 201],
    ok: 'pm.test("a session for that ticket", () => { pm.expect(J.token).to.match(/^ent_/); pm.expect(J.ticket_code).to.eql("MX-SESSION"); });',
  },
  {
    method: 'GET', path: '/api/operator/signing-keys', expect: [401, 403, 403, 200, 200, 200],
    ok: 'pm.test("org-1 public keys", () => { pm.expect(J).to.be.an("array"); J.forEach((k) => pm.expect(k.orq).to.eql(1)); });',
  },
  {
    // Scanning records a verification by the token's operator: only the
    // operator token here is bound to one (the others answer 422).
    method: 'POST', path: '/api/operator/scan', body: { payload: 'MX-NO-SUCH-CODE' }, expect: [401, 403, 403, 200, 422, 422],
    ok: 'pm.test("a verdict: unknown ticket", () => pm.expect(J.verdict).to.eql("UNKNOWN_TICKET"));',
  },
  {
    method: 'GET', path: '/api/admin/tickets/MX-STATUS/signed-code', expect: [401, 403, 403, 403, 403, 200],
    ok: 'pm.test("a signed ENT1 code", () => { pm.expect(J.ticket_code).to.eql("MX-STATUS"); pm.expect(J.signed_code).to.match(/^ENT1\./); });',
  },
  {
    method: 'POST', path: '/api/admin/devices', body: { name: 'Matrix gate', venue_id: '@@gate_venue_id' }, expect: [401, 403, 403, 403, 403, 201],
    ok: 'pm.test("a device token", () => { pm.expect(J.token).to.match(/^dev_/); pm.expect(J.device.orq).to.eql(1); });',
  },
  {
    method: 'GET', path: '/api/operator/conflicts', expect: [401, 403, 403, 200, 200, 200], ok: arr,
  },
  {
    // Sync endpoints take device tokens only: user tokens of any role are 401.
    method: 'GET', path: '/api/sync/changes?cursor=0&limit=10', expect: [401, 401, 401, 401, 401, 401],
  },
  { method: 'GET', path: '/api/sync/whoami', expect: [401, 401, 401, 401, 401, 401] },
  {
    method: 'POST', path: '/api/sync/events', body: { events: [], sent_at: '2025-12-01T00:00:00Z' }, expect: [401, 401, 401, 401, 401, 401],
  },
  {
    method: 'DELETE', path: (r) => `/api/reservations/{{${{ admin: 'mx_res_adm', session: 'mx_res_sess' }[r] || 'mx_res_cust'}}}`,
    expect: [401, 200, 200, 403, 403, 200],
    ok: 'pm.test("CANCELLED", () => pm.expect(J.status).to.eql("CANCELLED"));',
  },
  {
    // Signing out revokes the session's token; other tokens are not sessions
    // (an admin revokes them). Last: it ends the matrix's session.
    method: 'DELETE', path: '/api/customer/session', expect: [401, 403, 204, 403, 403, 403],
    ok: 'pm.test("no body", () => pm.expect(pm.response.text()).to.eql(""));',
  },
];

const ERROR = { 401: 'UNAUTHORIZED', 403: 'FORBIDDEN', 404: 'NOT_FOUND', 422: 'INVALID_INPUT' };
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
    { ticket_code: SESS, purchase_email: SESS_EMAIL },
    { ticket_code: 'MX-SESS-2', purchase_email: SESS_EMAIL },
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
  for (const [code, v] of [[SESS, 'tok_session'], ['MX-SESS-2', 'tok_session2']]) {
    items.push(req(`matrix fixture: customer session on ${code} (code + purchase e-mail)`, {
      method: 'POST', path: '/api/customer/session', body: { ticket_code: code, email: SESS_EMAIL },
      expect: { status: 201 },
      test: `pm.test("a session for ${code}", () => pm.expect(J.ticket_code).to.eql("${code}")); save("${v}", J.token);`,
    }));
  }
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
      // A refusal's code: the status's usual one unless the endpoint names another for this role.
      const code = (e.codes && e.codes[role]) || ERROR[status];
      items.push(req(`[${LABEL[role] || role}] ${e.method} ${shown.split('?')[0]} -> ${allowed ? status : `${status} ${code}`}`, {
        method: e.method,
        path: p,
        as: role,
        body: at(e.body, role),
        contentType: e.contentType,
        expect: allowed ? { status } : { status, code },
        test: allowed ? at(e.ok, role) : undefined,
      }));
    });
  }
  items.push(...sessionScope());
  return folder(
    '08 role matrix',
    'Generated by gen-role-matrix.js: every endpoint x public/customer/customer session/operator/supervisor/admin, then a session against other holders\' rows.',
    items,
  );
}

/**
 * A session is scoped to its one ticket everywhere: with a session on
 * MX-SESS-2 (same purchase e-mail as MX-SESS), another holder's ticket and
 * reservation answer 404 on every verb and nothing changes; the signed-out
 * session of the matrix answers 401.
 */
function sessionScope() {
  const as = 'session2';
  const nf = (name, spec) => req(`[customer session] ${name} -> 404 NOT_FOUND`, { as, expect: { status: 404, code: 'NOT_FOUND' }, ...spec });
  return [
    req('[customer session] GET /api/tickets lists only its ticket (not MX-SESS, bought with the same e-mail)', {
      path: '/api/tickets', as, expect: { status: 200 },
      test: 'pm.test("only MX-SESS-2", () => pm.expect(J.map((t) => t.ticket_code)).to.eql(["MX-SESS-2"]));',
    }),
    nf("another holder's ticket status", { path: '/api/tickets/MX-STATUS/status' }),
    nf('a ticket of the same e-mail, other session', { path: `/api/tickets/${SESS}/status` }),
    nf("activating another holder's ticket", { method: 'POST', path: '/api/tickets/MX-C-ACT/activate' }),
    nf("reserving with another holder's ticket", {
      method: 'POST', path: '/api/reservations/create',
      body: { ticket_id: 'MX-STATUS', slot_id: '{{mx_slot}}', customer_email: EMAIL, customer_phone: PHONE },
    }),
    nf("reading another holder's reservation", { path: '/api/reservations/{{mx_res_adm}}' }),
    nf("moving another holder's reservation", { method: 'PUT', path: '/api/reservations/{{mx_res_adm}}', body: { slot_id: '{{mx_slot}}' } }),
    nf("cancelling another holder's reservation", { method: 'DELETE', path: '/api/reservations/{{mx_res_adm}}' }),
    req("[customer session] another holder's reservation is unchanged (admin reads it)", {
      path: '/api/reservations/{{mx_res_adm}}', as: 'admin', expect: { status: 200 },
      test: 'pm.test("still as the matrix left it", () => pm.expect(J.status).to.eql("CANCELLED"));',
    }),
    req('[customer session] MX-STATUS was not reserved by the session', {
      path: '/api/tickets/MX-STATUS/status', as: 'admin', expect: { status: 200 },
      test: 'pm.test("no reservation", () => pm.expect(J.reservation).to.eql(null));',
    }),
    req('[customer session] a signed-out session token -> 401 UNAUTHORIZED', {
      path: `/api/tickets/${SESS}/status`, as: 'session', expect: { status: 401, code: 'UNAUTHORIZED' },
    }),
  ];
}

module.exports = { roleMatrixFolder, ENDPOINTS, ROLES };
