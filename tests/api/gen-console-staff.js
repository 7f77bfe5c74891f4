// The console's Staff page (issue 16): PATCH /api/admin/operators/{id}
// changes a role (admins only, operator <-> supervisor) or deactivates /
// reactivates (admins; supervisors for gate operators only); nobody turns on
// themselves. A deactivation revokes the operator's tokens and refuses their
// PIN; a replay is idempotent; another org's operator is NOT_FOUND.
'use strict';

const { req, folder } = require('./lib');

const OP = '/api/admin/operators/{{cs16_op}}';
const SUP = '/api/admin/operators/{{cs16_sup}}';
const bearer = (v) => ({ authorization: `Bearer {{${v}}}` });

const consoleStaffFolder = () => folder('14 console staff', 'PATCH /api/admin/operators/{id}: roles, deactivation, refusals.', [
  req('admin adds a gate operator -> 201', {
    method: 'POST', path: '/api/admin/operators', as: 'admin',
    body: { role: 'operator', display_name: 'CS16 gate', pin: '2580' },
    expect: { status: 201 },
    test() { pm.collectionVariables.set('cs16_op', J.id); pm.test('active', () => pm.expect(J.deactivated_at).to.eql(null)); },
  }),
  req('admin adds a supervisor -> 201', {
    method: 'POST', path: '/api/admin/operators', as: 'admin',
    body: { role: 'supervisor', display_name: 'CS16 sup', pin: '246810' },
    expect: { status: 201 },
    test() { pm.collectionVariables.set('cs16_sup', J.id); pm.test('supervisor', () => pm.expect(J.role).to.eql('supervisor')); },
  }),
  req('admin adds an admin operator -> 201', {
    method: 'POST', path: '/api/admin/operators', as: 'admin',
    body: { role: 'admin', display_name: 'CS16 admin', pin: '112233' },
    expect: { status: 201 },
    test() { pm.collectionVariables.set('cs16_admin', J.id); pm.test('admin', () => pm.expect(J.role).to.eql('admin')); },
  }),
  req('a token for the gate operator -> 201', {
    method: 'POST', path: '/api/admin/tokens', as: 'admin', body: { role: 'operator', user_id: '@@cs16_op' },
    expect: { status: 201 },
    test() { pm.collectionVariables.set('cs16_op_tok', J.token); pm.test('token', () => pm.expect(J.token).to.match(/^ent_/)); },
  }),
  req('a token bound to the admin operator -> 201', {
    method: 'POST', path: '/api/admin/tokens', as: 'admin', body: { role: 'admin', user_id: '@@cs16_admin' },
    expect: { status: 201 },
    test() { pm.collectionVariables.set('cs16_admin_tok', J.token); pm.test('token', () => pm.expect(J.token).to.match(/^ent_/)); },
  }),
  req("...the operator's token works -> 200", {
    path: '/api/operator/signing-keys', as: bearer('cs16_op_tok'),
    expect: { status: 200 },
    test() { pm.test('keys', () => pm.expect(J).to.be.an('array')); },
  }),
  req('PATCH without a token -> 401', {
    method: 'PATCH', path: OP, body: { active: false },
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
  req('PATCH as a customer -> 403', {
    method: 'PATCH', path: OP, as: 'cust1', body: { active: false },
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('PATCH as a gate operator -> 403', {
    method: 'PATCH', path: OP, as: 'op', body: { active: false },
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req("PATCH another org's operator -> 404", {
    method: 'PATCH', path: OP, as: 'admin2', body: { active: false },
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('PATCH an unknown operator -> 404', {
    method: 'PATCH', path: '/api/admin/operators/999999999', as: 'admin', body: { active: false },
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('PATCH an empty change -> 422 INVALID_INPUT', {
    method: 'PATCH', path: OP, as: 'admin', body: {},
    expect: { status: 422, code: 'INVALID_INPUT' },
  }),
  req('PATCH role admin -> 422 INVALID_INPUT (operator or supervisor only)', {
    method: 'PATCH', path: OP, as: 'admin', body: { role: 'admin' },
    expect: { status: 422, code: 'INVALID_INPUT' },
  }),
  req('PATCH an unknown field -> 422 INVALID_BODY', {
    method: 'PATCH', path: OP, as: 'admin', body: { active: false, pin_hash: 'x' },
    expect: { status: 422, code: 'INVALID_BODY' },
  }),
  req('PATCH malformed JSON -> 400 MALFORMED_JSON', {
    method: 'PATCH', path: OP, as: 'admin', body: '{"active": fals',
    expect: { status: 400, code: 'MALFORMED_JSON' },
  }),
  req('an admin deactivates themselves -> 422 INVALID_INPUT', {
    method: 'PATCH', path: '/api/admin/operators/{{cs16_admin}}', as: bearer('cs16_admin_tok'), body: { active: false },
    expect: { status: 422, code: 'INVALID_INPUT' },
  }),
  req('an admin demotes themselves -> 422 INVALID_INPUT', {
    method: 'PATCH', path: '/api/admin/operators/{{cs16_admin}}', as: bearer('cs16_admin_tok'), body: { role: 'supervisor' },
    expect: { status: 422, code: 'INVALID_INPUT' },
  }),
  req("a supervisor changes a gate operator's role -> 403", {
    method: 'PATCH', path: OP, as: 'sup', body: { role: 'supervisor' },
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('a supervisor deactivates a supervisor -> 403', {
    method: 'PATCH', path: SUP, as: 'sup', body: { active: false },
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('a supervisor deactivates an admin -> 403', {
    method: 'PATCH', path: '/api/admin/operators/{{cs16_admin}}', as: 'sup', body: { active: false },
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('a supervisor deactivates a gate operator -> 200', {
    method: 'PATCH', path: OP, as: 'sup', body: { active: false },
    expect: { status: 200 },
    test() {
      pm.collectionVariables.set('cs16_off_at', J.deactivated_at);
      pm.test('deactivated', () => pm.expect(J.deactivated_at).to.be.a('string'));
    },
  }),
  req("...the operator's token is revoked -> 401", {
    path: '/api/operator/signing-keys', as: bearer('cs16_op_tok'),
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
  req('...their PIN is refused -> 401 WRONG_PIN', {
    method: 'POST', path: '/api/operator/sign-in', as: 'admin', body: { operator_id: '@@cs16_op', pin: '2580' },
    expect: { status: 401, code: 'WRONG_PIN' },
  }),
  req('...no new token for them -> 422 INVALID_INPUT', {
    method: 'POST', path: '/api/admin/tokens', as: 'admin', body: { role: 'operator', user_id: '@@cs16_op' },
    expect: { status: 422, code: 'INVALID_INPUT' },
  }),
  req('...the list shows them deactivated', {
    path: '/api/admin/operators', as: 'admin',
    expect: { status: 200 },
    test() {
      const me = J.find((o) => o.id === Number(pm.collectionVariables.get('cs16_op')));
      pm.test('deactivated', () => pm.expect(me.deactivated_at).to.be.a('string'));
    },
  }),
  req('a replayed deactivation -> 200, the first date kept', {
    method: 'PATCH', path: OP, as: 'admin', body: { active: false },
    expect: { status: 200 },
    test() { pm.test('same date', () => pm.expect(J.deactivated_at).to.eql(pm.collectionVariables.get('cs16_off_at'))); },
  }),
  req('an admin reactivates them -> 200', {
    method: 'PATCH', path: OP, as: 'admin', body: { active: true },
    expect: { status: 200 },
    test() { pm.test('active', () => pm.expect(J.deactivated_at).to.eql(null)); },
  }),
  req('...their PIN works again -> 200', {
    method: 'POST', path: '/api/operator/sign-in', as: 'admin', body: { operator_id: '@@cs16_op', pin: '2580' },
    expect: { status: 200 },
    test() { pm.test('signed in', () => pm.expect(J.id).to.eql(Number(pm.collectionVariables.get('cs16_op')))); },
  }),
  req("...the revoked token stays revoked -> 401", {
    path: '/api/operator/signing-keys', as: bearer('cs16_op_tok'),
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
  req('an admin makes the gate operator a supervisor -> 200', {
    method: 'PATCH', path: OP, as: 'admin', body: { role: 'supervisor' },
    expect: { status: 200 },
    test() { pm.test('supervisor', () => pm.expect(J.role).to.eql('supervisor')); },
  }),
  req('...a 4-digit PIN does not sign a supervisor in -> 401 WRONG_PIN', {
    method: 'POST', path: '/api/operator/sign-in', as: 'admin', body: { operator_id: '@@cs16_op', pin: '2580' },
    expect: { status: 401, code: 'WRONG_PIN' },
  }),
  req('an admin makes the supervisor a gate operator -> 200', {
    method: 'PATCH', path: SUP, as: 'admin', body: { role: 'operator' },
    expect: { status: 200 },
    test() { pm.test('operator', () => pm.expect(J.role).to.eql('operator')); },
  }),
  req('...their 6-digit PIN signs in at a gate -> 200', {
    method: 'POST', path: '/api/operator/sign-in', as: 'admin', body: { operator_id: '@@cs16_sup', pin: '246810' },
    expect: { status: 200 },
    test() { pm.test('operator', () => pm.expect(J.role).to.eql('operator')); },
  }),
]);

module.exports = { consoleStaffFolder };
