// Issue 14 (gate to gate): POST /api/sync/peers, a device registering its
// public key and receiving its venue's other gates. Device tokens only.

const { req, folder } = require('./lib');

// RFC 8032's test keys 1 and 2: valid Ed25519 public keys.
const KEY_A = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const KEY_B = '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c';
const dev = (k) => ({ authorization: `Bearer {{${k}}}` });

const lanFolder = () => folder('12 gate to gate', 'Device keys: POST /api/sync/peers registers the calling gate\'s Ed25519 public key and lists the other gates of its venue and org (devices only).', [
  req('add gate device A -> 201', {
    method: 'POST', path: '/api/admin/devices', as: 'admin',
    body: { name: 'LAN gate A', venue_id: '@@venue_annex' },
    expect: { status: 201 },
    test() { pm.test('a device token', () => pm.expect(J.token).to.match(/^dev_/)); save('tok_lan_a', J.token); save('lan_a_id', J.device.device_id); },
  }),
  req('add gate device B -> 201', {
    method: 'POST', path: '/api/admin/devices', as: 'admin',
    body: { name: 'LAN gate B', venue_id: '@@venue_annex' },
    expect: { status: 201 },
    test() { pm.test('a device token', () => pm.expect(J.token).to.match(/^dev_/)); save('tok_lan_b', J.token); },
  }),
  req('gate A registers its key -> 200, no peer yet', {
    method: 'POST', path: '/api/sync/peers', as: dev('tok_lan_a'),
    body: { public_key: KEY_A },
    expect: { status: 200 },
    test() { pm.test('no peers', () => pm.expect(J.peers).to.eql([])); },
  }),
  req('gate B registers its key -> 200, lists A', {
    method: 'POST', path: '/api/sync/peers', as: dev('tok_lan_b'),
    body: { public_key: KEY_B },
    expect: { status: 200 },
    test() {
      pm.test('A with its key', () => {
        pm.expect(J.peers.length).to.eql(1);
        pm.expect(J.peers[0].device_id).to.eql(V('lan_a_id'));
        pm.expect(J.peers[0].name).to.eql('LAN gate A');
        pm.expect(J.peers[0].public_key).to.eql('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
      });
    },
  }),
  req('gate A registers B\'s key -> 409 DUPLICATE_DEVICE_KEY', {
    method: 'POST', path: '/api/sync/peers', as: dev('tok_lan_a'),
    body: { public_key: KEY_B.toUpperCase() },
    expect: { status: 409, code: 'DUPLICATE_DEVICE_KEY' },
  }),
  req('gate B still listed with its own key -> 200', {
    method: 'POST', path: '/api/sync/peers', as: dev('tok_lan_a'),
    body: { public_key: KEY_A },
    expect: { status: 200 },
    test() { pm.test('B keeps its key', () => { pm.expect(J.peers.length).to.eql(1); pm.expect(J.peers[0].public_key).to.eql('3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c'); }); },
  }),
  req('a key that is not an Ed25519 key -> 422', {
    method: 'POST', path: '/api/sync/peers', as: dev('tok_lan_a'),
    body: { public_key: 'zz'.repeat(32) },
    expect: { status: 422, code: 'INVALID_INPUT' },
  }),
  req('an unknown field -> 422', {
    method: 'POST', path: '/api/sync/peers', as: dev('tok_lan_a'),
    body: { public_key: KEY_A, private_key: KEY_A },
    expect: { status: 422, code: 'INVALID_BODY' },
  }),
  req('peers with a staff token -> 401 (devices only)', {
    method: 'POST', path: '/api/sync/peers', as: 'admin',
    body: { public_key: KEY_A },
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
  req('peers without a token -> 401', {
    method: 'POST', path: '/api/sync/peers',
    body: { public_key: KEY_A },
    expect: { status: 401, code: 'UNAUTHORIZED' },
  }),
]);

module.exports = { lanFolder };
