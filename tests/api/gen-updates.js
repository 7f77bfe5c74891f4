// Fleet updates (issue 20): a gate reports its version and is offered
// bundles (device tokens only); admins list which gate runs which version.
// This server runs without an updates folder: no offer, no bundle.
'use strict';

const { req, folder } = require('./lib');

const device = { authorization: 'Bearer {{update_device_token}}' };

const updatesFolder = () => folder('12 fleet updates', 'POST /api/sync/update and GET /api/sync/update/{version} for devices only; GET /api/admin/devices for admins (a venue-bound admin sees only the gates of its venue).', [
  req('register a gate device -> 201 (its token kept)', {
    method: 'POST', path: '/api/admin/devices', as: 'admin',
    body: { name: 'Update gate', venue_id: '@@venue_madrid' },
    expect: { status: 201 },
    test() {
      pm.test('a token', () => pm.expect(J.token).to.be.a('string'));
      pm.collectionVariables.set('update_device_token', J.token);
      pm.collectionVariables.set('update_device_id', J.device.device_id);
    },
  }),
  req('device reports its version -> 200, no offer (no updates folder)', {
    method: 'POST', path: '/api/sync/update', as: device,
    body: { running: '0.1.0', last: { version: '0.1.1', state: 'rolled_back', detail: 'exited (3)' } },
    expect: { status: 200 },
    test() { pm.test('offer null', () => pm.expect(J.offer).to.eql(null)); },
  }),
  req('devices as admin -> 200, the reported version and outcome', {
    path: '/api/admin/devices', as: 'admin',
    expect: { status: 200 },
    test() {
      const id = Number(pm.collectionVariables.get('update_device_id'));
      const d = J.find((x) => x.device_id === id);
      pm.test('listed', () => pm.expect(d).to.be.an('object'));
      pm.test('version and outcome', () => {
        pm.expect(d.app_version).to.eql('0.1.0');
        pm.expect(d.last_update.state).to.eql('rolled_back');
        pm.expect(d.last_update.version).to.eql('0.1.1');
      });
    },
  }),
  req('report with a version not MAJOR.MINOR.PATCH -> 422 INVALID_INPUT', {
    method: 'POST', path: '/api/sync/update', as: device,
    body: { running: 'latest', last: null },
    expect: { status: 422, code: 'INVALID_INPUT' },
  }),
  req('report with an unknown state -> 422 INVALID_BODY', {
    method: 'POST', path: '/api/sync/update', as: device,
    body: { running: '0.1.0', last: { version: '0.1.1', state: 'hacked', detail: null } },
    expect: { status: 422, code: 'INVALID_BODY' },
  }),
  req('report with a staff token -> 401 (devices only)', {
    method: 'POST', path: '/api/sync/update', as: 'admin',
    body: { running: '0.1.0', last: null },
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
  req('bundle of a version not published -> 404', {
    path: '/api/sync/update/0.1.1', as: device,
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('bundle with a path for a version -> 404', {
    path: '/api/sync/update/..%2F..%2Fetc%2Fpasswd', as: device,
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('bundle with a staff token -> 401 (devices only)', {
    path: '/api/sync/update/0.1.1', as: 'admin',
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
  req('devices as an operator -> 403', {
    path: '/api/admin/devices', as: 'op',
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('devices without a token -> 401', {
    path: '/api/admin/devices',
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
  req('register a gate at the annex -> 201', {
    method: 'POST', path: '/api/admin/devices', as: 'admin',
    body: { name: 'Annex update gate', venue_id: '@@venue_annex' },
    expect: { status: 201 },
    test() { pm.collectionVariables.set('update_annex_device_id', J.device.device_id); },
  }),
  req('create an admin token bound to the annex venue -> 201', {
    method: 'POST', path: '/api/admin/tokens', as: 'admin',
    body: { role: 'admin', venue_id: '@@venue_annex' },
    expect: { status: 201 },
    test() { pm.collectionVariables.set('tok_admin_annex', J.token); },
  }),
  req('devices as a venue-bound admin -> 200, only its venue\'s gates', {
    path: '/api/admin/devices', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    expect: { status: 200 },
    test() {
      const annex = Number(pm.collectionVariables.get('update_annex_device_id'));
      const madrid = Number(pm.collectionVariables.get('update_device_id'));
      const venue = Number(pm.collectionVariables.get('venue_annex'));
      pm.test('the annex gate listed', () => pm.expect(J.some((x) => x.device_id === annex)).to.eql(true));
      pm.test('the Madrid gate not listed', () => pm.expect(J.some((x) => x.device_id === madrid)).to.eql(false));
      pm.test('all of the annex', () => J.forEach((x) => pm.expect(x.venue_id).to.eql(venue)));
    },
  }),
  req('PATCH another venue as a venue-bound admin -> 404 (its binding holds)', {
    method: 'PATCH', path: '/api/admin/venues/{{venue_madrid}}', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    body: { closing_time: '00:00' },
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('a venue-bound admin mints a token for another venue -> 404', {
    method: 'POST', path: '/api/admin/tokens', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    body: { role: 'admin', venue_id: '@@venue_madrid' },
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('a venue-bound admin adds a gate to another venue -> 404', {
    method: 'POST', path: '/api/admin/devices', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    body: { name: 'Not its venue', venue_id: '@@venue_madrid' },
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('a venue-bound admin mints an unbound token -> 201, bound to its venue', {
    method: 'POST', path: '/api/admin/tokens', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    body: { role: 'operator' },
    expect: { status: 201 },
    test() {
      pm.test('bound to the annex', () => pm.expect(J.venue_id).to.eql(Number(pm.collectionVariables.get('venue_annex'))));
    },
  }),
  req('a venue-bound admin mints a customer token -> 403 ORG_ADMIN_ONLY (it would reach every venue)', {
    method: 'POST', path: '/api/admin/tokens', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    body: { role: 'customer', user_id: 1 },
    expect: { status: 403, code: 'ORG_ADMIN_ONLY' },
    test() {
      pm.test('says why', () => pm.expect(J.error.message).to.include('whole org'));
      pm.test('no token', () => pm.expect(J.token).to.eql(undefined));
    },
  }),
  req('devices of another org -> 200, not this org\'s gate', {
    path: '/api/admin/devices', as: 'admin2',
    expect: { status: 200 },
    test() {
      const id = Number(pm.collectionVariables.get('update_device_id'));
      pm.test('not listed', () => pm.expect(J.some((x) => x.device_id === id)).to.eql(false));
    },
  }),
]);

module.exports = { updatesFolder };
