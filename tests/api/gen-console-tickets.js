// The console's tickets (issue 16, track "16t"): search by code, order,
// e-mail or phone (supervisors and admins), cancel a ticket (admins only;
// idempotent; another org's ticket is NOT_FOUND). A venue-bound caller reaches
// its venue's tickets only (a ticket's venue is its reservation's slot's):
// another venue's, or one never reserved, is NOT_FOUND / left out of lists;
// validating either answers UNKNOWN_TICKET, as for a made-up code; reserving
// into another venue's slot is 404 `slot` whatever the code; it creates and
// imports no tickets (403 ORG_ADMIN_ONLY: a ticket has no venue until it is
// reserved).
'use strict';

const { req, folder } = require('./lib');

const consoleTicketsFolder = () => folder('13 console tickets', 'GET /api/admin/tickets/search and POST /api/admin/tickets/{code}/cancel: roles, paging, refusals.', [
  req('admin issues an order of two tickets -> 201', {
    method: 'POST', path: '/api/admin/tickets', as: 'admin',
    body: [
      { ticket_code: 'CT16-1', order_id: 916161, purchase_email: 'carmen@example.com', activation_mode: 'immediate' },
      { ticket_code: 'CT16-2', order_id: 916161, purchase_email: 'carmen@example.com', activation_mode: 'immediate' },
    ],
    expect: { status: 201 },
    test() { pm.test('two', () => pm.expect(J.length).to.eql(2)); },
  }),
  req('search by order id as admin -> 200, both tickets in code order', {
    path: '/api/admin/tickets/search?q=916161', as: 'admin',
    expect: { status: 200 },
    test() {
      pm.test('both', () => pm.expect(J.tickets.map((t) => t.ticket_code)).to.eql(['CT16-1', 'CT16-2']));
      pm.test('last page', () => pm.expect(J.next_after).to.eql(null));
    },
  }),
  req('search by e-mail in another case as supervisor -> 200', {
    path: '/api/admin/tickets/search?q=CARMEN@example.com', as: 'sup',
    expect: { status: 200 },
    test() { pm.test('both', () => pm.expect(J.tickets.length).to.eql(2)); },
  }),
  req('search one per page -> next_after is the last code shown', {
    path: '/api/admin/tickets/search?q=916161&limit=1', as: 'admin',
    expect: { status: 200 },
    test() {
      pm.test('one', () => pm.expect(J.tickets.map((t) => t.ticket_code)).to.eql(['CT16-1']));
      pm.test('cursor', () => pm.expect(J.next_after).to.eql('CT16-1'));
    },
  }),
  req('search the next page -> the second ticket', {
    path: '/api/admin/tickets/search?q=916161&limit=1&after=CT16-1', as: 'admin',
    expect: { status: 200 },
    test() { pm.test('second', () => pm.expect(J.tickets.map((t) => t.ticket_code)).to.eql(['CT16-2'])); },
  }),
  req('search from another org -> 200, nothing', {
    path: '/api/admin/tickets/search?q=916161', as: 'admin2',
    expect: { status: 200 },
    test() { pm.test('none', () => pm.expect(J.tickets).to.eql([])); },
  }),
  req('search as an operator -> 403', {
    path: '/api/admin/tickets/search?q=916161', as: 'op',
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('search without a token -> 401', {
    path: '/api/admin/tickets/search?q=916161',
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
  req('search with a blank query -> 422 INVALID_INPUT', {
    path: '/api/admin/tickets/search?q=%20%20', as: 'admin',
    expect: { status: 422, code: 'INVALID_INPUT' },
  }),
  req('search with a page size of 0 -> 422 INVALID_INPUT', {
    path: '/api/admin/tickets/search?q=916161&limit=0', as: 'admin',
    expect: { status: 422, code: 'INVALID_INPUT' },
  }),
  req('cancel as a supervisor -> 403 (admins only)', {
    method: 'POST', path: '/api/admin/tickets/CT16-1/cancel', as: 'sup',
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('cancel as an operator -> 403', {
    method: 'POST', path: '/api/admin/tickets/CT16-1/cancel', as: 'op',
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('cancel without a token -> 401', {
    method: 'POST', path: '/api/admin/tickets/CT16-1/cancel',
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
  req('cancel another org\'s ticket -> 404', {
    method: 'POST', path: '/api/admin/tickets/CT16-1/cancel', as: 'admin2',
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('cancel an unknown ticket -> 404', {
    method: 'POST', path: '/api/admin/tickets/CT16-NONE/cancel', as: 'admin',
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('cancel as admin -> 200, cancelled', {
    method: 'POST', path: '/api/admin/tickets/CT16-1/cancel', as: 'admin',
    expect: { status: 200 },
    test() {
      pm.test('cancelled', () => {
        pm.expect(J.status).to.eql('cancelled');
        pm.expect(J.activation_status).to.eql('cancelled');
      });
      pm.collectionVariables.set('ct16_updated_at', J.updated_at);
    },
  }),
  req('cancel again -> 200, the same ticket unchanged', {
    method: 'POST', path: '/api/admin/tickets/CT16-1/cancel', as: 'admin',
    expect: { status: 200 },
    test() {
      pm.test('unchanged', () => pm.expect(J.updated_at).to.eql(pm.collectionVariables.get('ct16_updated_at')));
    },
  }),
  req('story of the cancelled ticket as a supervisor -> 200, created ... cancelled', {
    path: '/api/admin/tickets/CT16-1/story', as: 'sup',
    expect: { status: 200 },
    test() {
      pm.test('ticket', () => pm.expect(J.ticket.ticket_code).to.eql('CT16-1'));
      pm.test('first and last', () => {
        pm.expect(J.events[0].kind).to.eql('created');
        pm.expect(J.events[J.events.length - 1].kind).to.eql('cancelled');
      });
    },
  }),
  req('story as an operator -> 403', {
    path: '/api/admin/tickets/CT16-1/story', as: 'op',
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('story of another org\'s ticket -> 404', {
    path: '/api/admin/tickets/CT16-1/story', as: 'admin2',
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('the server\'s gate check refuses it -> TICKET_CANCELLED', {
    method: 'POST', path: '/api/operator/validate-ticket', as: 'op',
    body: { ticket_code: 'CT16-1' },
    expect: { status: 200 },
    test() {
      pm.test('refused', () => {
        pm.expect(J.admit).to.eql(false);
        pm.expect(J.verdict).to.eql('TICKET_CANCELLED');
      });
    },
  }),
  req('checked CSV import with two bad rows -> 422 INVALID_ROWS naming lines 3 and 4, nothing imported', {
    method: 'POST', path: '/api/admin/tickets/import/checked', as: 'admin',
    body: 'ticket_code,order_id,activation_mode\nCT16-CSV-1,1,immediate\nCT16-CSV-2,x,immediate\nCT16-CSV-3,1,sometimes\n',
    contentType: 'text/csv',
    expect: { status: 422, code: 'INVALID_ROWS' },
    test() {
      pm.test('lines 3 and 4', () => pm.expect(J.error.details.rows.map((r) => r.line)).to.eql([3, 4]));
    },
  }),
  req('...and the good row was not imported -> none found', {
    path: '/api/admin/tickets/search?q=CT16-CSV-1', as: 'admin',
    expect: { status: 200 },
    test() { pm.test('none', () => pm.expect(J.tickets).to.eql([])); },
  }),
  req('checked CSV import, dry run of good rows -> 200, checked 2, codes as stored, nothing imported', {
    method: 'POST', path: '/api/admin/tickets/import/checked?dry_run=true', as: 'admin',
    body: 'order_id,ticket_code\n916162, CT16-CSV-1 \n916162,CT16-CSV-2\n', contentType: 'text/csv',
    expect: { status: 200 },
    test() {
      pm.test('checked', () => pm.expect(J.checked).to.eql(2));
      pm.test('codes', () => pm.expect(J.ticket_codes).to.eql(['CT16-CSV-1', 'CT16-CSV-2']));
    },
  }),
  req('...and the dry run imported nothing -> none found', {
    path: '/api/admin/tickets/search?q=CT16-CSV-1', as: 'admin',
    expect: { status: 200 },
    test() { pm.test('none', () => pm.expect(J.tickets).to.eql([])); },
  }),
  req('checked CSV import, dry run with a bad e-mail and a repeated code -> 422 INVALID_ROWS, lines 2 and 4', {
    method: 'POST', path: '/api/admin/tickets/import/checked?dry_run=true', as: 'admin',
    body: 'ticket_code,purchase_email\nCT16-CSV-7,ana.example.com\nCT16-CSV-8,\nCT16-CSV-8,\n', contentType: 'text/csv',
    expect: { status: 422, code: 'INVALID_ROWS' },
    test() {
      const rows = J.error.details.rows;
      pm.test('lines 2 and 4', () => pm.expect(rows.map((r) => r.line)).to.eql([2, 4]));
      pm.test('the field', () => pm.expect(rows[0].message).to.match(/^purchase_email:/));
      pm.test('the first line', () => pm.expect(rows[1].duplicate_of).to.eql(3));
      pm.test('the good rows\' codes', () => pm.expect(J.error.details.ticket_codes).to.eql([null, 'CT16-CSV-8', null]));
    },
  }),
  req('checked CSV import as a supervisor -> 403', {
    method: 'POST', path: '/api/admin/tickets/import/checked', as: 'sup',
    body: 'ticket_code\nCT16-CSV-9\n', contentType: 'text/csv',
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('checked CSV import of good rows -> 201, imported 2', {
    method: 'POST', path: '/api/admin/tickets/import/checked', as: 'admin',
    body: 'ticket_code,order_id\nCT16-CSV-1,916162\nCT16-CSV-2,916162\n', contentType: 'text/csv',
    expect: { status: 201 },
    test() { pm.test('two', () => pm.expect(J.imported).to.eql(2)); },
  }),
  req('export the order as CSV -> 200 text/csv, header and both rows', {
    path: '/api/admin/tickets/export?q=916162', as: 'admin',
    expect: { status: 200 },
    test() {
      const lines = pm.response.text().trim().split('\n');
      pm.test('csv', () => pm.expect(pm.response.headers.get('Content-Type')).to.include('text/csv'));
      pm.test('rows', () => {
        pm.expect(lines.length).to.eql(3);
        pm.expect(lines[1]).to.match(/^CT16-CSV-1,916162,/);
      });
    },
  }),
  req('export the order, only active ones -> 200, the header alone (the filter holds with q)', {
    path: '/api/admin/tickets/export?q=916162&activation_status=active', as: 'admin',
    expect: { status: 200 },
    test() { pm.test('no rows', () => pm.expect(pm.response.text().trim().split('\n').length).to.eql(1)); },
  }),
  req('export the order, only inactive ones -> 200, both rows', {
    path: '/api/admin/tickets/export?q=916162&activation_status=inactive', as: 'admin',
    expect: { status: 200 },
    test() { pm.test('two rows', () => pm.expect(pm.response.text().trim().split('\n').length).to.eql(3)); },
  }),
  req('search with a status filter -> 200, the cancelled ticket only', {
    path: '/api/admin/tickets/search?q=916161&status=cancelled', as: 'admin',
    expect: { status: 200 },
    test() { pm.test('CT16-1', () => pm.expect(J.tickets.map((t) => t.ticket_code)).to.eql(['CT16-1'])); },
  }),
  req('export as a supervisor -> 403', {
    path: '/api/admin/tickets/export', as: 'sup',
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('add an operator for the PIN reset -> 201', {
    method: 'POST', path: '/api/admin/operators', as: 'admin',
    body: { role: 'operator', display_name: 'CT16 gate', pin: '2468' },
    expect: { status: 201 },
    test() { pm.collectionVariables.set('ct16_op', J.id); pm.test('id', () => pm.expect(J.id).to.be.a('number')); },
  }),
  req('reset the PIN as a supervisor -> 403 (admins manage operators)', {
    method: 'PUT', path: '/api/admin/operators/{{ct16_op}}/pin', as: 'sup', body: { pin: '1357' },
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('reset the PIN from another org -> 404', {
    method: 'PUT', path: '/api/admin/operators/{{ct16_op}}/pin', as: 'admin2', body: { pin: '1357' },
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('reset to a 3-digit PIN -> 422 INVALID_INPUT', {
    method: 'PUT', path: '/api/admin/operators/{{ct16_op}}/pin', as: 'admin', body: { pin: '135' },
    expect: { status: 422, code: 'INVALID_INPUT' },
  }),
  req('reset the PIN as admin -> 200', {
    method: 'PUT', path: '/api/admin/operators/{{ct16_op}}/pin', as: 'admin', body: { pin: '1357' },
    expect: { status: 200 },
    test() { pm.test('same operator', () => pm.expect(J.id).to.eql(Number(pm.collectionVariables.get('ct16_op')))); },
  }),
  req('...the old PIN no longer signs in -> 401 WRONG_PIN', {
    method: 'POST', path: '/api/operator/sign-in', as: 'admin', body: { operator_id: '@@ct16_op', pin: '2468' },
    expect: { status: 401, code: 'WRONG_PIN' },
  }),
  req('...the new one does -> 200', {
    method: 'POST', path: '/api/operator/sign-in', as: 'admin', body: { operator_id: '@@ct16_op', pin: '1357' },
    expect: { status: 200 },
    test() { pm.test('signed in', () => pm.expect(J).to.be.an('object')); },
  }),
  req('re-issue a signed code as a supervisor -> 403', {
    method: 'POST', path: '/api/admin/tickets/CT16-2/reissue', as: 'sup',
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
  req('re-issue a signed code as admin -> 200, a new ENT1 code', {
    method: 'POST', path: '/api/admin/tickets/CT16-2/reissue', as: 'admin',
    expect: { status: 200 },
    test() {
      pm.test('signed', () => pm.expect(J.signed_code).to.match(/^ENT1\./));
      pm.collectionVariables.set('ct16_code', J.signed_code);
    },
  }),
  req('...and the signed code now is that one', {
    path: '/api/admin/tickets/CT16-2/signed-code', as: 'admin',
    expect: { status: 200 },
    test() { pm.test('same', () => pm.expect(J.signed_code).to.eql(pm.collectionVariables.get('ct16_code'))); },
  }),
  req('create a supervisor token bound to the annex venue -> 201', {
    method: 'POST', path: '/api/admin/tokens', as: 'admin',
    body: { role: 'supervisor', venue_id: '@@venue_annex' },
    expect: { status: 201 },
    test() { pm.collectionVariables.set('tok_sup_annex', J.token); },
  }),
  req('a venue-bound supervisor searches its venue\'s ticket -> 200, found', {
    path: '/api/admin/tickets/search?q=G-ANNEX', as: { authorization: 'Bearer {{tok_sup_annex}}' },
    expect: { status: 200 },
    test() { pm.test('G-ANNEX', () => pm.expect(J.tickets.map((t) => t.ticket_code)).to.eql(['G-ANNEX'])); },
  }),
  req('a venue-bound supervisor searches another venue\'s ticket -> 200, nothing', {
    path: '/api/admin/tickets/search?q=G-ADMIT2', as: { authorization: 'Bearer {{tok_sup_annex}}' },
    expect: { status: 200 },
    test() { pm.test('none', () => pm.expect(J.tickets).to.eql([])); },
  }),
  req('a venue-bound supervisor reads its venue\'s ticket\'s story -> 200', {
    path: '/api/admin/tickets/G-ANNEX/story', as: { authorization: 'Bearer {{tok_sup_annex}}' },
    expect: { status: 200 },
    test() { pm.test('ticket', () => pm.expect(J.ticket.ticket_code).to.eql('G-ANNEX')); },
  }),
  req('a venue-bound supervisor reads another venue\'s ticket\'s story -> 404', {
    path: '/api/admin/tickets/G-ADMIT2/story', as: { authorization: 'Bearer {{tok_sup_annex}}' },
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('a venue-bound supervisor reads a never-reserved ticket\'s story -> 404', {
    path: '/api/admin/tickets/CT16-2/story', as: { authorization: 'Bearer {{tok_sup_annex}}' },
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('a venue-bound admin lists user 1\'s tickets -> 200, its venue\'s only', {
    path: '/api/admin/tickets?user_id=1&limit=1000', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    expect: { status: 200 },
    test() {
      const codes = J.tickets.map((t) => t.ticket_code);
      pm.test('the annex ticket', () => pm.expect(codes).to.include('G-ANNEX'));
      pm.test('not another venue\'s', () => pm.expect(codes).to.not.include('G-ADMIT2'));
      pm.test('not a never-reserved one', () => pm.expect(codes).to.not.include('G-NORES'));
    },
  }),
  req('a venue-bound admin exports user 1\'s tickets -> 200, its venue\'s only', {
    path: '/api/admin/tickets/export?user_id=1', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    expect: { status: 200 },
    test() {
      const codes = pm.response.text().trim().split('\n').slice(1).map((l) => l.split(',')[0]);
      pm.test('the annex ticket', () => pm.expect(codes).to.include('G-ANNEX'));
      pm.test('not another venue\'s', () => pm.expect(codes).to.not.include('G-ADMIT2'));
    },
  }),
  req('a venue-bound admin exports a search for another venue\'s ticket -> 200, the header alone', {
    path: '/api/admin/tickets/export?q=G-ADMIT2', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    expect: { status: 200 },
    test() { pm.test('no rows', () => pm.expect(pm.response.text().trim().split('\n').length).to.eql(1)); },
  }),
  req('a venue-bound admin reads another venue\'s signed code -> 404', {
    path: '/api/admin/tickets/G-ADMIT2/signed-code', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('a venue-bound admin reads its venue\'s signed code -> 200', {
    path: '/api/admin/tickets/G-ANNEX/signed-code', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    expect: { status: 200 },
    test() { pm.test('signed', () => pm.expect(J.signed_code).to.match(/^ENT1\./)); },
  }),
  req('a venue-bound admin re-issues another venue\'s ticket -> 404', {
    method: 'POST', path: '/api/admin/tickets/G-ADMIT2/reissue', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('a venue-bound admin cancels another venue\'s ticket -> 404', {
    method: 'POST', path: '/api/admin/tickets/G-ADMIT2/cancel', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  req('...and it is not cancelled -> its story ends without a cancel', {
    path: '/api/admin/tickets/G-ADMIT2/story', as: 'admin',
    expect: { status: 200 },
    test() { pm.test('not cancelled', () => pm.expect(J.ticket.status).to.not.eql('cancelled')); },
  }),
  req('a venue-bound admin activates a never-reserved ticket -> 404 (it has no venue)', {
    method: 'POST', path: '/api/tickets/CT16-2/activate', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    expect: { status: 404, code: 'NOT_FOUND' },
  }),
  // Validating: another venue's ticket, or one never reserved, is to a
  // venue-bound caller what a made-up code is (UNKNOWN_TICKET, same shape).
  req('a venue-bound supervisor validates an unknown code -> UNKNOWN_TICKET', {
    method: 'POST', path: '/api/tickets/validate', as: { authorization: 'Bearer {{tok_sup_annex}}' },
    body: { ticket_code: 'CT16-NO-SUCH' },
    expect: { status: 200 },
    test() {
      pm.test('UNKNOWN_TICKET', () => pm.expect(J.verdict).to.eql('UNKNOWN_TICKET'));
      pm.collectionVariables.set('ct16_unknown_verdict', JSON.stringify(J));
    },
  }),
  req('a venue-bound supervisor validates another venue\'s ticket -> UNKNOWN_TICKET, as an unknown code', {
    method: 'POST', path: '/api/tickets/validate', as: { authorization: 'Bearer {{tok_sup_annex}}' },
    body: { ticket_code: 'G-ADMIT2' },
    expect: { status: 200 },
    test() {
      const unknown = JSON.parse(V('ct16_unknown_verdict'));
      unknown.ticket_code = 'G-ADMIT2';
      pm.test('the unknown code\'s answer', () => pm.expect(J).to.eql(unknown));
    },
  }),
  req('a venue-bound admin validates a never-reserved ticket -> UNKNOWN_TICKET (it has no venue)', {
    method: 'POST', path: '/api/tickets/validate', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    body: { ticket_code: 'CT16-2' },
    expect: { status: 200 },
    test() {
      const unknown = JSON.parse(V('ct16_unknown_verdict'));
      unknown.ticket_code = 'CT16-2';
      pm.test('the unknown code\'s answer', () => pm.expect(J).to.eql(unknown));
    },
  }),
  req('a venue-bound supervisor validates its venue\'s ticket -> its real verdict', {
    method: 'POST', path: '/api/tickets/validate', as: { authorization: 'Bearer {{tok_sup_annex}}' },
    body: { ticket_code: 'G-ANNEX' },
    expect: { status: 200 },
    test() { pm.test('not UNKNOWN_TICKET', () => pm.expect(J.verdict).to.not.eql('UNKNOWN_TICKET')); },
  }),
  req('...and the org\'s admin gets another venue\'s ticket\'s real verdict', {
    method: 'POST', path: '/api/tickets/validate', as: 'admin',
    body: { ticket_code: 'G-ADMIT2' },
    expect: { status: 200 },
    test() { pm.test('not UNKNOWN_TICKET', () => pm.expect(J.verdict).to.not.eql('UNKNOWN_TICKET')); },
  }),
  // Reserving: another venue's slot is checked before the code, so the
  // answer is 404 `slot` whatever the code (no oracle for codes).
  req('a venue-bound admin reserves an unknown code into another venue\'s slot -> 404 slot', {
    method: 'POST', path: '/api/reservations/create', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    body: { ticket_id: 'CT16-NO-SUCH', slot_id: '{{slot_today}}', customer_email: 'ana@example.com', customer_phone: '+34 600 111 222' },
    expect: { status: 404, code: 'NOT_FOUND' },
    test() { pm.test('entity slot', () => pm.expect(J.error.details.entity).to.eql('slot')); },
  }),
  // Into its own venue's slot, a ticket reserved at another venue is as
  // unknown as a code that does not exist: no ALREADY_RESERVED, no state.
  req('a venue-bound admin reserves another venue\'s ticket into its own slot -> 404 ticket', {
    method: 'POST', path: '/api/reservations/create', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    body: { ticket_id: 'G-ADMIT2', slot_id: '{{slot_annex_today}}', customer_email: 'ana@example.com', customer_phone: '+34 600 111 222' },
    expect: { status: 404, code: 'NOT_FOUND' },
    test() { pm.test('entity ticket', () => pm.expect(J.error.details.entity).to.eql('ticket')); },
  }),
  req('...exactly as an unknown code into its own slot -> 404 ticket', {
    method: 'POST', path: '/api/reservations/create', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    body: { ticket_id: 'CT16-NO-SUCH', slot_id: '{{slot_annex_today}}', customer_email: 'ana@example.com', customer_phone: '+34 600 111 222' },
    expect: { status: 404, code: 'NOT_FOUND' },
    test() { pm.test('entity ticket', () => pm.expect(J.error.details.entity).to.eql('ticket')); },
  }),
  // Tickets have no venue until reserved: issuing them is the org's admins'.
  req('a venue-bound admin creates a ticket -> 403 ORG_ADMIN_ONLY', {
    method: 'POST', path: '/api/admin/tickets', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    body: { ticket_code: 'CT16-BOUND-1', activation_mode: 'immediate' },
    expect: { status: 403, code: 'ORG_ADMIN_ONLY' },
    test() { pm.test('says why', () => pm.expect(J.error.message).to.include('whole org')); },
  }),
  req('a venue-bound admin imports a CSV -> 403 ORG_ADMIN_ONLY', {
    method: 'POST', path: '/api/admin/tickets/import', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    body: 'ticket_code\nCT16-BOUND-2\n', contentType: 'text/csv',
    expect: { status: 403, code: 'ORG_ADMIN_ONLY' },
  }),
  req('a venue-bound admin imports a checked CSV -> 403 ORG_ADMIN_ONLY', {
    method: 'POST', path: '/api/admin/tickets/import/checked', as: { authorization: 'Bearer {{tok_admin_annex}}' },
    body: 'ticket_code\nCT16-BOUND-3\n', contentType: 'text/csv',
    expect: { status: 403, code: 'ORG_ADMIN_ONLY' },
  }),
  req('...and none of them was created -> the org\'s admin finds nothing', {
    path: '/api/admin/tickets/search?q=CT16-BOUND', as: 'admin',
    expect: { status: 200 },
    test() { pm.test('none', () => pm.expect(J.tickets).to.eql([])); },
  }),
  req('a venue-bound supervisor creates a ticket -> 403 FORBIDDEN (its role comes first)', {
    method: 'POST', path: '/api/admin/tickets', as: { authorization: 'Bearer {{tok_sup_annex}}' },
    body: { ticket_code: 'CT16-BOUND-4' },
    expect: { status: 403, code: 'FORBIDDEN' },
  }),
]);

module.exports = { consoleTicketsFolder };
