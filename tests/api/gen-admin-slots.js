// The console's Slots page (issue 16): a venue's month with admitted
// counts, and a weekly pattern previewed, created, and created again
// (nothing new). Madrid springs forward on 2031-03-30: 02:30 does not exist.
'use strict';

const { req, folder } = require('./lib');

const pattern = (create, extra = {}) => ({
  venue_id: '@@venue_madrid',
  date_from: '2031-03-24',
  date_to: '2031-03-30',
  weekdays: [2, 3, 4, 5, 6, 7],
  times: [{ start_time: '09:00', end_time: '12:00' }, { start_time: '02:30', end_time: '03:30' }],
  total_capacity: 30,
  create,
  ...extra,
});

const adminSlotsFolder = () => folder('13 console slots', 'GET /api/admin/slots/month and POST /api/admin/slots/pattern (issue 16).', [
  req('pattern preview as a supervisor -> 200, nothing written', {
    method: 'POST', path: '/api/admin/slots/pattern', as: 'sup', body: pattern(false),
    expect: { status: 200 },
    test() {
      pm.test('6 days x 2 ranges; 02:30 on the DST day skipped', () => {
        pm.expect(J.created).to.eql(false);
        pm.expect(J.slots).to.have.lengthOf(12);
        pm.expect(J.create_count).to.eql(11);
        pm.expect(J.nonexistent_time_count).to.eql(1);
        const skipped = J.slots.find((s) => s.outcome === 'nonexistent_time');
        pm.expect([skipped.date, skipped.start_time]).to.eql(['2031-03-30', '02:30:00']);
      });
    },
  }),
  req('month after a preview -> 200, no slots', {
    path: '/api/admin/slots/month?venue_id={{venue_madrid}}&month=2031-03', as: 'admin',
    expect: { status: 200 },
    test() { pm.test('empty', () => pm.expect(J).to.eql([])); },
  }),
  req('pattern create as an admin -> 201', {
    method: 'POST', path: '/api/admin/slots/pattern', as: 'admin', body: pattern(true),
    expect: { status: 201 },
    test() {
      pm.test('11 created', () => {
        pm.expect(J.created).to.eql(true);
        pm.expect(J.create_count).to.eql(11);
      });
    },
  }),
  req('the same pattern again -> 201, nothing new (idempotent)', {
    method: 'POST', path: '/api/admin/slots/pattern', as: 'admin', body: pattern(true),
    expect: { status: 201 },
    test() {
      pm.test('all there already', () => {
        pm.expect(J.create_count).to.eql(0);
        pm.expect(J.exists_count).to.eql(11);
      });
    },
  }),
  req('month as an operator bound to another venue -> 404', {
    path: '/api/admin/slots/month?venue_id={{venue_madrid}}&month=2031-03', as: 'op',
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('month of its own venue as that operator -> 200', {
    path: '/api/admin/slots/month?venue_id={{gate_venue_id}}&month=2031-03', as: 'op',
    expect: { status: 200 },
    test() { pm.test('none that month', () => pm.expect(J).to.eql([])); },
  }),
  req('month as a supervisor -> 200, counts per slot', {
    path: '/api/admin/slots/month?venue_id={{venue_madrid}}&month=2031-03', as: 'sup',
    expect: { status: 200 },
    test() {
      pm.test('11 slots with capacity, booked and admitted', () => {
        pm.expect(J).to.have.lengthOf(11);
        J.forEach((b) => {
          pm.expect(b.slot.total_capacity).to.eql(30);
          pm.expect(b.slot.booked_count).to.eql(0);
          pm.expect(b.admitted_count).to.eql(0);
        });
      });
    },
  }),
  req('pattern as an operator -> 403', {
    method: 'POST', path: '/api/admin/slots/pattern', as: 'op', body: pattern(false),
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('pattern without a token -> 401', {
    method: 'POST', path: '/api/admin/slots/pattern', body: pattern(false),
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
  req('month without a token -> 401', {
    path: '/api/admin/slots/month?venue_id={{venue_madrid}}&month=2031-03',
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
  req('pattern with weekday 8 -> 422 INVALID_INPUT', {
    method: 'POST', path: '/api/admin/slots/pattern', as: 'admin', body: pattern(false, { weekdays: [8] }),
    expect: { status: 422, code: 'INVALID_INPUT' },
  }),
  req('pattern with overlapping ranges -> 422 INVALID_INPUT', {
    method: 'POST', path: '/api/admin/slots/pattern', as: 'admin',
    body: pattern(false, { times: [{ start_time: '09:00', end_time: '12:00' }, { start_time: '11:00', end_time: '13:00' }] }),
    expect: { status: 422, code: 'INVALID_INPUT' },
  }),
  req('pattern over more than a year -> 422 INVALID_INPUT', {
    method: 'POST', path: '/api/admin/slots/pattern', as: 'admin', body: pattern(false, { date_to: '2032-03-30' }),
    expect: { status: 422, code: 'INVALID_INPUT' },
  }),
  req('pattern for an unknown venue -> 404', {
    method: 'POST', path: '/api/admin/slots/pattern', as: 'admin', body: pattern(false, { venue_id: 999999 }),
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req("month of another org's venue -> 404", {
    path: '/api/admin/slots/month?venue_id={{venue_madrid}}&month=2031-03', as: 'admin2',
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('month not YYYY-MM -> 422', {
    path: '/api/admin/slots/month?venue_id={{venue_madrid}}&month=2031-3', as: 'admin',
    expect: { status: 422, code: 'INVALID_INPUT' },
  }),
]);

module.exports = { adminSlotsFolder };
