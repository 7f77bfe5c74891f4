// The admin console's sessions (issue 16): GET/DELETE /api/admin/session and
// GET and POST /admin/signin — roles and refusals. run.sh prints one link with
// `entrada admin link` (console_link); the folder runs last, because the
// cookie newman keeps after the sign-in would otherwise ride along with the
// other folders' public requests. It signs out at its end.
'use strict';

const { req, folder } = require('./lib');

const consoleFolder = () => folder('12 admin console sessions', 'A one-time link opens a cookie session (HttpOnly, SameSite=Strict); cookie writes need X-Entrada-Console: 1; sign-out revokes.', [
  req('whoami as an admin token -> 200 role admin', {
    path: '/api/admin/session', as: 'admin',
    expect: { status: 200 },
    test() {
      pm.test('admin of org 1', () => { pm.expect(J.role).to.eql('admin'); pm.expect(J.orq).to.eql(1); });
      pm.test('of the whole org', () => pm.expect(J.venue_id).to.eql(null));
    },
  }),
  req('whoami as a venue-bound admin token -> 200, its venue', {
    path: '/api/admin/session', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    expect: { status: 200 },
    test() { pm.test('the annex', () => pm.expect(J.venue_id).to.eql(Number(pm.collectionVariables.get('venue_annex')))); },
  }),
  req('whoami as a supervisor token -> 200 role supervisor', {
    path: '/api/admin/session', as: 'sup',
    expect: { status: 200 },
    test() { pm.test('supervisor', () => pm.expect(J.role).to.eql('supervisor')); },
  }),
  req('whoami as a customer -> 403', {
    path: '/api/admin/session', as: 'cust1',
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('whoami without a token -> 401', {
    path: '/api/admin/session',
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
  req('sign out with a bearer token (no console cookie) -> 401', {
    method: 'DELETE', path: '/api/admin/session', as: 'admin',
    headers: [['X-Entrada-Console', '1']],
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
  req('open the sign-in page for the printed link -> 200 page, no cookie, link unused', {
    path: '/admin/signin?link={{console_link}}',
    headers: [['Sec-Fetch-Site', 'cross-site']],
    expect: { status: 200 },
    test() {
      pm.test('a page that changes nothing', () => {
        pm.expect(pm.response.headers.get('Content-Type') || '').to.include('text/html');
        pm.expect(pm.response.headers.get('Set-Cookie')).to.eql(undefined);
        pm.expect(pm.response.text()).to.include('/admin/signin.js');
      });
    },
  }),
  req('sign in without a link -> 400 INVALID_QUERY', {
    path: '/admin/signin',
    expect: { status: 400, code: 'INVALID_QUERY' },
  }),
  req('redeem without X-Entrada-Console -> 403 CROSS_SITE_REQUEST', {
    method: 'POST', path: '/admin/signin',
    body: { link: '{{console_link}}' },
    expect: { status: 403, code: 'CROSS_SITE_REQUEST' },
  }),
  req('redeem from another Origin -> 403 CROSS_SITE_REQUEST', {
    method: 'POST', path: '/admin/signin',
    headers: [['X-Entrada-Console', '1'], ['Origin', 'https://evil.example']],
    body: { link: '{{console_link}}' },
    expect: { status: 403, code: 'CROSS_SITE_REQUEST' },
  }),
  req('redeem marked Sec-Fetch-Site: same-site -> 403 CROSS_SITE_REQUEST', {
    method: 'POST', path: '/admin/signin',
    headers: [['X-Entrada-Console', '1'], ['Sec-Fetch-Site', 'same-site']],
    body: { link: '{{console_link}}' },
    expect: { status: 403, code: 'CROSS_SITE_REQUEST' },
  }),
  req('redeem an unknown link -> 404', {
    method: 'POST', path: '/admin/signin',
    headers: [['X-Entrada-Console', '1']],
    body: { link: 'ent_0000000000000000000000000000000000000000000000000000000000000000' },
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('redeem the printed link -> 204 and an HttpOnly SameSite=Strict cookie', {
    method: 'POST', path: '/admin/signin',
    headers: [['X-Entrada-Console', '1']],
    body: { link: '{{console_link}}' },
    expect: { status: 204 },
    test() {
      pm.test('cookie', () => {
        const c = pm.response.headers.get('Set-Cookie') || '';
        pm.expect(c).to.match(/^entrada_console=ent_[0-9a-f]{64};/);
        pm.expect(c).to.include('HttpOnly');
        pm.expect(c).to.include('SameSite=Strict');
        pm.expect(c).to.match(/Max-Age=\d+/);
      });
    },
  }),
  req('the same link again -> 404 (once only)', {
    method: 'POST', path: '/admin/signin',
    headers: [['X-Entrada-Console', '1']],
    body: { link: '{{console_link}}' },
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('whoami by the cookie -> 200 role admin', {
    path: '/api/admin/session',
    expect: { status: 200 },
    test() { pm.test('admin', () => pm.expect(J.role).to.eql('admin')); },
  }),
  req('a cookie write without X-Entrada-Console -> 403 CROSS_SITE_REQUEST', {
    method: 'POST', path: '/api/admin/venues',
    body: { name: 'Cross-site', timezone: 'UTC' },
    expect: { status: 403, code: 'CROSS_SITE_REQUEST' },
  }),
  req('a cookie write from another Origin -> 403 CROSS_SITE_REQUEST', {
    method: 'DELETE', path: '/api/admin/session',
    headers: [['X-Entrada-Console', '1'], ['Origin', 'https://evil.example']],
    expect: { status: 403, code: 'CROSS_SITE_REQUEST' },
  }),
  req('sign out by the cookie -> 204, cookie cleared', {
    method: 'DELETE', path: '/api/admin/session',
    headers: [['X-Entrada-Console', '1']],
    expect: { status: 204 },
    test() { pm.test('cleared', () => pm.expect(pm.response.headers.get('Set-Cookie') || '').to.include('Max-Age=0')); },
  }),
  req('whoami after sign-out -> 401', {
    path: '/api/admin/session',
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
]);

module.exports = { consoleFolder };
