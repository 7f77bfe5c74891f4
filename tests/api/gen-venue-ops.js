// Venue operations (issue 15): the venue's operations settings, occupancy,
// and the device-only lease endpoint — roles and refusals.
'use strict';

const { req, folder } = require('./lib');

const gate = (k) => ({ authorization: `Bearer {{${k}}}` });

const venueOpsFolder = () => folder('11 venue operations', 'Re-entry, walk-up leases, no-show release and occupancy limit on the venue; GET /api/operator/occupancy; POST /api/admin/venues/{id}/checkout (closing time) and DELETE /api/admin/venues/{id}/leases (take walk-up leases back), supervisors and admins; POST /api/sync/leases and POST /api/sync/walkup (online walk-ups: the server\'s reservation path) are for devices only.', [
  req('patch venue operations settings -> 200, all four set', {
    method: 'PATCH', path: '/api/admin/venues/{{venue_annex}}', as: 'admin',
    body: { reentry_allowed: true, walkup_lease_places: 2, no_show_release_minutes: 20, occupancy_limit: 300 },
    expect: { status: 200 },
    test() {
      pm.test('settings as set, grace untouched', () => {
        pm.expect(J.reentry_allowed).to.eql(true);
        pm.expect(J.walkup_lease_places).to.eql(2);
        pm.expect(J.no_show_release_minutes).to.eql(20);
        pm.expect(J.occupancy_limit).to.eql(300);
        pm.expect(J.early_grace_minutes).to.eql(30);
      });
    },
  }),
  req('patch null clears a nullable setting -> 200', {
    method: 'PATCH', path: '/api/admin/venues/{{venue_annex}}', as: 'admin',
    body: { occupancy_limit: null, no_show_release_minutes: null, reentry_allowed: false, walkup_lease_places: 0 },
    expect: { status: 200 },
    test() {
      pm.test('cleared', () => {
        pm.expect(J.occupancy_limit).to.eql(null);
        pm.expect(J.no_show_release_minutes).to.eql(null);
        pm.expect(J.reentry_allowed).to.eql(false);
        pm.expect(J.walkup_lease_places).to.eql(0);
      });
    },
  }),
  req('patch walkup_lease_places 51 -> 422 INVALID_INPUT', {
    method: 'PATCH', path: '/api/admin/venues/{{venue_annex}}', as: 'admin',
    body: { walkup_lease_places: 51 },
    expect: { status: 422, code: 'INVALID_INPUT' },
    test() { pm.test('details.field', () => pm.expect(J.error.details.field).to.eql('walkup_lease_places')); },
  }),
  req('patch occupancy_limit 0 -> 422 INVALID_INPUT', {
    method: 'PATCH', path: '/api/admin/venues/{{venue_annex}}', as: 'admin',
    body: { occupancy_limit: 0 },
    expect: { status: 422, code: 'INVALID_INPUT' },
    test() { pm.test('details.field', () => pm.expect(J.error.details.field).to.eql('occupancy_limit')); },
  }),
  req('patch reentry_allowed as text -> 422 INVALID_BODY', {
    method: 'PATCH', path: '/api/admin/venues/{{venue_annex}}', as: 'admin',
    body: { reentry_allowed: 'yes' },
    expect: { status: 422, code: 'INVALID_BODY' },
  }),
  req('patch closing_time 18:30 -> 200, read back HH:MM:SS', {
    method: 'PATCH', path: '/api/admin/venues/{{venue_annex}}', as: 'admin',
    body: { closing_time: '18:30' },
    expect: { status: 200 },
    test() { pm.test('closing_time', () => pm.expect(J.closing_time).to.eql('18:30:00')); },
  }),
  req('patch closing_time null clears it -> 200', {
    method: 'PATCH', path: '/api/admin/venues/{{venue_annex}}', as: 'admin',
    body: { closing_time: null },
    expect: { status: 200 },
    test() { pm.test('cleared', () => pm.expect(J.closing_time).to.eql(null)); },
  }),
  req('patch closing_time 25:00 -> 422 INVALID_BODY', {
    method: 'PATCH', path: '/api/admin/venues/{{venue_annex}}', as: 'admin',
    body: { closing_time: '25:00' },
    expect: { status: 422, code: 'INVALID_BODY' },
  }),
  req('patch closing_time as an operator -> 403', {
    method: 'PATCH', path: '/api/admin/venues/{{venue_annex}}', as: 'op',
    body: { closing_time: '18:00' },
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('patch venue operations as an operator -> 403', {
    method: 'PATCH', path: '/api/admin/venues/{{venue_annex}}', as: 'op',
    body: { reentry_allowed: true },
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('occupancy of a venue -> 200 {venue_id, inside, limit, level, as_of}', {
    path: '/api/operator/occupancy?venue_id={{venue_madrid}}', as: 'admin',
    expect: { status: 200 },
    test() {
      pm.test('the count', () => {
        pm.expect(J.venue_id).to.eql(Number(pm.collectionVariables.get('venue_madrid')));
        pm.expect(J.inside).to.be.a('number');
        pm.expect(J.limit).to.eql(null);
        pm.expect(J.level).to.eql('NORMAL');
        pm.expect(J.as_of).to.be.a('string');
      });
    },
  }),
  req('occupancy by a supervisor -> 200', {
    path: '/api/operator/occupancy?venue_id={{venue_madrid}}', as: 'sup',
    expect: { status: 200 },
    test() { pm.test('a count', () => pm.expect(J.inside).to.be.a('number')); },
  }),
  req('occupancy without venue_id -> 400 INVALID_QUERY', {
    path: '/api/operator/occupancy', as: 'op',
    expect: { status: 400, code: 'INVALID_QUERY' },
  }),
  req('occupancy of an unknown venue -> 404', {
    path: '/api/operator/occupancy?venue_id=999999', as: 'op',
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('occupancy of another venue than the token is bound to -> 404', {
    path: '/api/operator/occupancy?venue_id={{venue_madrid}}', as: 'opAnnex',
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('occupancy as a customer -> 403', {
    path: '/api/operator/occupancy?venue_id={{venue_madrid}}', as: 'cust1',
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('occupancy without a token -> 401', {
    path: '/api/operator/occupancy?venue_id={{venue_madrid}}',
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
  req('occupancy of another org\'s venue -> 404', {
    path: '/api/operator/occupancy?venue_id={{venue_madrid}}', as: 'admin2',
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('closing-time checkout by a supervisor -> 200 {venue_id, checked_out, inside: 0, at}', {
    method: 'POST', path: '/api/admin/venues/{{venue_madrid}}/checkout', as: 'sup',
    expect: { status: 200 },
    test() {
      pm.test('everyone out', () => {
        pm.expect(J.venue_id).to.eql(Number(pm.collectionVariables.get('venue_madrid')));
        pm.expect(J.checked_out).to.be.a('number');
        pm.expect(J.inside).to.eql(0);
        pm.expect(J.at).to.be.a('string');
      });
    },
  }),
  req('occupancy after the checkout -> 0 inside', {
    path: '/api/operator/occupancy?venue_id={{venue_madrid}}', as: 'sup',
    expect: { status: 200 },
    test() { pm.test('nobody inside', () => pm.expect(J.inside).to.eql(0)); },
  }),
  req('a second checkout -> 200, nobody checked out', {
    method: 'POST', path: '/api/admin/venues/{{venue_madrid}}/checkout', as: 'admin',
    expect: { status: 200 },
    test() { pm.test('nothing recorded', () => { pm.expect(J.checked_out).to.eql(0); pm.expect(J.inside).to.eql(0); }); },
  }),
  req('checkout as an operator -> 403', {
    method: 'POST', path: '/api/admin/venues/{{venue_madrid}}/checkout', as: 'op',
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('checkout as a customer -> 403', {
    method: 'POST', path: '/api/admin/venues/{{venue_madrid}}/checkout', as: 'cust1',
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('checkout without a token -> 401', {
    method: 'POST', path: '/api/admin/venues/{{venue_madrid}}/checkout',
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
  req('checkout of an unknown venue -> 404', {
    method: 'POST', path: '/api/admin/venues/999999/checkout', as: 'admin',
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('checkout of another org\'s venue -> 404', {
    method: 'POST', path: '/api/admin/venues/{{venue_madrid}}/checkout', as: 'admin2',
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('take back a venue\'s walk-up leases by a supervisor -> 200 {returned}', {
    method: 'DELETE', path: '/api/admin/venues/{{venue_madrid}}/leases', as: 'sup',
    expect: { status: 200 },
    test() { pm.test('per slot', () => pm.expect(J.returned).to.be.an('array')); },
  }),
  req('take back leases as an operator -> 403', {
    method: 'DELETE', path: '/api/admin/venues/{{venue_madrid}}/leases', as: 'op',
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('take back leases as a customer -> 403', {
    method: 'DELETE', path: '/api/admin/venues/{{venue_madrid}}/leases', as: 'cust1',
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('take back leases without a token -> 401', {
    method: 'DELETE', path: '/api/admin/venues/{{venue_madrid}}/leases',
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
  req('take back leases of another org\'s venue -> 404', {
    method: 'DELETE', path: '/api/admin/venues/{{venue_madrid}}/leases', as: 'admin2',
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  // Online walk-ups (POST /api/sync/walkup): a venue of its own, a slot
  // open now (today, all day, 2 places), one gate; the server books by its
  // reservation path, a deferred ticket activated on the way.
  req('walk-ups: a venue of their own -> 201', {
    method: 'POST', path: '/api/admin/venues', as: 'admin',
    body: { name: 'Walk-up hall', timezone: 'UTC' },
    expect: { status: 201 },
    test() { save('venue_walkup', J.id); },
  }),
  req('walk-ups: a slot open now with 2 places -> 201', {
    method: 'POST', path: '/api/operator/slots/create', as: 'admin',
    body: { venue_id: '@@venue_walkup', date: '{{today}}', start_time: '00:00', end_time: '23:59', total_capacity: 2 },
    expect: { status: 201 },
    test() { save('slot_walkup', J.id); },
  }),
  req('walk-ups: a gate at that venue -> 201', {
    method: 'POST', path: '/api/admin/devices', as: 'admin',
    body: { name: 'Walk-up gate', venue_id: '@@venue_walkup' },
    expect: { status: 201 },
    test() { save('tok_walkup_gate', J.token); },
  }),
  req('walk-ups: three tickets, one deferred, none reserved -> 201', {
    method: 'POST', path: '/api/admin/tickets', as: 'admin',
    body: [
      { ticket_code: 'WU-1', activation_mode: 'immediate' },
      { ticket_code: 'WU-2', activation_mode: 'immediate' },
      { ticket_code: 'WU-D', activation_mode: 'deferred' },
    ],
    expect: { status: 201 },
    test() { pm.test('three tickets', () => pm.expect(J.length).to.eql(3)); },
  }),
  req('online walk-up -> 200, booked into the slot open now', {
    method: 'POST', path: '/api/sync/walkup', as: gate('tok_walkup_gate'),
    body: { code: 'WU-1' },
    expect: { status: 200 },
    test() {
      pm.test('the reservation the gate writes', () => {
        pm.expect(J.ticket_code).to.eql('WU-1');
        pm.expect(J.slot_id).to.eql(V('slot_walkup'));
        pm.expect(J.reservation_id).to.match(/^[0-9a-f-]{36}$/);
        pm.expect(J.reserved_at).to.be.a('string');
        pm.expect(J.activated_at).to.eql(null);
      });
    },
  }),
  req('online walk-up of a deferred ticket -> 200, activated and booked', {
    method: 'POST', path: '/api/sync/walkup', as: gate('tok_walkup_gate'),
    body: { code: 'WU-D' },
    expect: { status: 200 },
    test() { pm.test('activated now', () => pm.expect(J.activated_at).to.be.a('string')); },
  }),
  req('...its ticket is active and reserved', {
    path: '/api/tickets/WU-D/status', as: 'admin',
    expect: { status: 200 },
    test() {
      pm.test('active and reserved', () => {
        pm.expect(J.ticket.activation_status).to.eql('active');
        pm.expect(J.ticket.status).to.eql('RESERVED');
      });
    },
  }),
  req('online walk-up with the slot full -> 409 NO_PLACE_LEFT', {
    method: 'POST', path: '/api/sync/walkup', as: gate('tok_walkup_gate'),
    body: { code: 'WU-2' },
    expect: { status: 409, code: 'NO_PLACE_LEFT' },
    test() { pm.test('the verdict in details', () => pm.expect(J.error.details.verdict).to.eql('NO_PLACE_LEFT')); },
  }),
  req('online walk-up of a ticket reserved for now -> 409 ALREADY_RESERVED', {
    method: 'POST', path: '/api/sync/walkup', as: gate('tok_walkup_gate'),
    body: { code: 'WU-1' },
    expect: { status: 409, code: 'ALREADY_RESERVED' },
  }),
  req('online walk-up of an unknown ticket -> 404 NOT_FOUND', {
    method: 'POST', path: '/api/sync/walkup', as: gate('tok_walkup_gate'),
    body: { code: 'NO-SUCH-TICKET' },
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('online walk-up with no code -> 422 INVALID_BODY', {
    method: 'POST', path: '/api/sync/walkup', as: gate('tok_walkup_gate'),
    body: {},
    expect: { status: 422, code: 'INVALID_BODY' },
  }),
  req('online walk-up with a staff token -> 401 (devices only)', {
    method: 'POST', path: '/api/sync/walkup', as: 'admin',
    body: { code: 'WU-2' },
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
  // "Check everyone out" from a gate (POST /api/sync/checkout): the gate
  // names its signed-in supervisor; the server checks the role.
  req('checkout from a gate: a supervisor to name -> 201', {
    method: 'POST', path: '/api/admin/operators', as: 'admin',
    body: { role: 'supervisor', display_name: 'Walk-up hall lead', pin: '864213' },
    expect: { status: 201 },
    test() { save('walkup_sup_id', J.id); },
  }),
  req('checkout from a gate by its supervisor -> 200, nobody inside after', {
    method: 'POST', path: '/api/sync/checkout', as: gate('tok_walkup_gate'),
    body: { operator_id: '@@walkup_sup_id' },
    expect: { status: 200 },
    test() {
      pm.test('the gate\'s venue, nobody inside after', () => {
        pm.expect(J.venue_id).to.eql(Number(V('venue_walkup')));
        pm.expect(J.inside).to.eql(0);
        pm.expect(J.checked_out).to.be.a('number');
      });
    },
  }),
  req('checkout from a gate naming an operator -> 403 FORBIDDEN', {
    method: 'POST', path: '/api/sync/checkout', as: gate('tok_walkup_gate'),
    body: { operator_id: '@@gate_operator_id' },
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('checkout from a gate naming nobody known -> 403 FORBIDDEN', {
    method: 'POST', path: '/api/sync/checkout', as: gate('tok_walkup_gate'),
    body: { operator_id: 999999 },
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('checkout from a gate without operator_id -> 422 INVALID_BODY', {
    method: 'POST', path: '/api/sync/checkout', as: gate('tok_walkup_gate'),
    body: {},
    expect: { status: 422, code: 'INVALID_BODY' },
  }),
  req('checkout via the device route with a staff token -> 401 (devices only)', {
    method: 'POST', path: '/api/sync/checkout', as: 'sup',
    body: { operator_id: 1 },
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
  req('lease refresh with a staff token -> 401 (devices only)', {
    method: 'POST', path: '/api/sync/leases', as: 'admin',
    body: { pending: [] },
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
]);

module.exports = { venueOpsFolder };
