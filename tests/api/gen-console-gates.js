// The console's Gates page (issue 16): GET /api/admin/gates (each gate's last
// upload, clock offset, reported pending uploads, conflicts) and POST
// /api/admin/gates/{id}/revoke (admins only; idempotent; another org's gate
// is NOT_FOUND; a revoked gate's token is refused).
'use strict';

const { req, folder } = require('./lib');

const dev = (k) => ({ authorization: `Bearer {{${k}}}` });
const mine = "const g = J.find((x) => x.device_id === Number(pm.collectionVariables.get('cg16_id')));";

const consoleGatesFolder = () => folder('15 console gates', 'GET /api/admin/gates and POST /api/admin/gates/{id}/revoke: what each gate reported, roles, refusals.', [
  req('admin adds a gate -> 201', {
    method: 'POST', path: '/api/admin/devices', as: 'admin',
    body: { name: 'CG16 gate', venue_id: '@@gate_venue_id' },
    expect: { status: 201 },
    test() {
      pm.collectionVariables.set('tok_cg16', J.token);
      pm.collectionVariables.set('cg16_id', J.device.device_id);
      pm.test('a device token', () => pm.expect(J.token).to.match(/^dev_/));
      pm.test('its pairing code: the address this request reached and the token, as a QR code (SVG)', () => {
        const base = pm.variables.get('baseUrl');
        pm.expect(J.pairing.server_url).to.eql(base);
        pm.expect(J.pairing.uri).to.eql('entrada-pair:v1?server=' + base + '&token=' + J.token);
        pm.expect(J.pairing.svg).to.include('<svg');
      });
    },
  }),
  req('the new gate is listed, nothing reported yet', {
    path: '/api/admin/gates', as: 'admin',
    expect: { status: 200 },
    test: `${mine}
      pm.test('listed', () => pm.expect(g.name).to.eql('CG16 gate'));
      pm.test('nothing reported', () => {
        pm.expect(g.last_seen_at).to.eql(null);
        pm.expect(g.clock_offset_ms).to.eql(null);
        pm.expect(g.pending_uploads).to.eql(null);
        pm.expect(g.conflicts).to.eql(0);
        pm.expect(g.revoked).to.eql(false);
      });`,
  }),
  req('the gate uploads an empty batch saying 12 events wait -> 200', {
    method: 'POST', path: '/api/sync/events', as: dev('tok_cg16'),
    headers: [['X-Entrada-Pending', '12']],
    body: { events: [], sent_at: '2020-01-01T00:00:00Z' },
    expect: { status: 200 },
    test() { pm.test('no results', () => pm.expect(J.results).to.eql([])); },
  }),
  req('...the list shows its upload, clock offset and pending count', {
    path: '/api/admin/gates', as: 'admin',
    expect: { status: 200 },
    test: `${mine}
      pm.test('seen', () => pm.expect(g.last_seen_at).to.be.a('string'));
      pm.test('its clock is years behind', () => pm.expect(g.clock_offset_ms).to.be.below(-86400000));
      pm.test('12 pending', () => pm.expect(g.pending_uploads).to.eql(12));
      pm.test('reported when', () => pm.expect(g.pending_reported_at).to.be.a('string'));`,
  }),
  req('a malformed pending header is no report -> 200, the last count kept', {
    method: 'POST', path: '/api/sync/events', as: dev('tok_cg16'),
    headers: [['X-Entrada-Pending', '-3; drop table']],
    body: { events: [], sent_at: '2020-01-01T00:00:00Z' },
    expect: { status: 200 },
    test() { pm.test('no results', () => pm.expect(J.results).to.eql([])); },
  }),
  req('...still 12', {
    path: '/api/admin/gates', as: 'admin',
    expect: { status: 200 },
    test: `${mine} pm.test('12 pending', () => pm.expect(g.pending_uploads).to.eql(12));`,
  }),
  req('list as a supervisor -> 403', { path: '/api/admin/gates', as: 'sup', expect: { status: 403, code: 'FORBIDDEN' } }),
  req('list as a gate operator -> 403', { path: '/api/admin/gates', as: 'op', expect: { status: 403, code: 'FORBIDDEN' } }),
  req('list without a token -> 401', { path: '/api/admin/gates', expect: { status: 401, code: 'UNAUTHORIZED' } }),
  req("another org's admin does not see it", {
    path: '/api/admin/gates', as: 'admin2',
    expect: { status: 200 },
    test: `${mine} pm.test('absent', () => pm.expect(g).to.eql(undefined));`,
  }),
  req('revoke as a supervisor -> 403', {
    method: 'POST', path: '/api/admin/gates/{{cg16_id}}/revoke', as: 'sup',
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('revoke as a customer -> 403', {
    method: 'POST', path: '/api/admin/gates/{{cg16_id}}/revoke', as: 'cust1',
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('revoke with its own device token -> 401 (devices are not staff)', {
    method: 'POST', path: '/api/admin/gates/{{cg16_id}}/revoke', as: dev('tok_cg16'),
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
  req("revoke from another org -> 404", {
    method: 'POST', path: '/api/admin/gates/{{cg16_id}}/revoke', as: 'admin2',
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('revoke an unknown gate -> 404', {
    method: 'POST', path: '/api/admin/gates/999999999/revoke', as: 'admin',
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('revoke a malformed id -> 404', {
    method: 'POST', path: '/api/admin/gates/abc/revoke', as: 'admin',
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('revoke as admin -> 200, revoked', {
    method: 'POST', path: '/api/admin/gates/{{cg16_id}}/revoke', as: 'admin',
    expect: { status: 200 },
    test() { pm.test('revoked', () => pm.expect(J.revoked).to.eql(true)); },
  }),
  req('a replayed revoke -> 200, still revoked', {
    method: 'POST', path: '/api/admin/gates/{{cg16_id}}/revoke', as: 'admin',
    expect: { status: 200 },
    test() { pm.test('revoked', () => pm.expect(J.revoked).to.eql(true)); },
  }),
  req("...the gate's token is refused -> 401", {
    method: 'POST', path: '/api/sync/events', as: dev('tok_cg16'),
    body: { events: [], sent_at: '2020-01-01T00:00:00Z' },
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
]);

module.exports = { consoleGatesFolder };
