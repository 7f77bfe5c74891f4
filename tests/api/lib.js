// Small DSL that turns readable request descriptions into Postman v2.1 items.
// Used by gen-collection.js (the main suite) and gen-role-matrix.js.
'use strict';

const TOKENS = {
  public: null,
  admin: 'tok_admin1',
  sup: 'tok_sup1',
  op: 'tok_op1',
  cust1: 'tok_cust1',
  cust2: 'tok_cust2',
  admin2: 'tok_admin2',
  o2cust: 'tok_o2cust',
  opAnnex: 'tok_op_annex',
  // Matrix role names
  customer: 'tok_cust1',
  // Customer sessions opened in the matrix (collection variables).
  session: 'tok_session',
  session2: 'tok_session2',
  operator: 'tok_op1',
  supervisor: 'tok_sup1',
};

// Prepended to every test script: the parsed body and two helpers.
const PRELUDE = [
  'const J = (() => { try { return pm.response.json(); } catch (e) { return undefined; } })();',
  'const V = (k) => pm.variables.get(k);',
  'const save = (k, v) => { if (v !== undefined && v !== null) pm.collectionVariables.set(k, v); };',
].join('\n');

/** The body of a function as script lines (lets the generator syntax-check scripts). */
function fnBody(fn) {
  if (typeof fn === 'string') return fn.trim();
  const src = fn.toString();
  const body = src.slice(src.indexOf('{') + 1, src.lastIndexOf('}'));
  const lines = body.split('\n');
  const indent = Math.min(
    ...lines.filter((l) => l.trim()).map((l) => l.match(/^ */)[0].length),
  );
  return lines.map((l) => l.slice(indent)).join('\n').trim();
}

/** JSON with '@@name' strings turned into bare {{name}} (numeric variables). */
function jsonBody(obj) {
  return JSON.stringify(obj, null, 2).replace(/"@@([A-Za-z0-9_]+)"/g, '{{$1}}');
}

function statusTest(status) {
  return `pm.test("status is ${status}", () => pm.response.to.have.status(${status}));`;
}

function errorTest(code) {
  return [
    `pm.test("error.code is ${code} (JSON error shape)", () => {`,
    `  pm.expect(pm.response.headers.get('Content-Type') || '', 'content type').to.include('application/json');`,
    `  pm.expect(J && J.error, 'error object').to.be.an('object');`,
    `  pm.expect(J.error.code).to.eql(${JSON.stringify(code)});`,
    `  pm.expect(J.error.message, 'error.message').to.be.a('string').and.not.empty;`,
    `  pm.expect(J.error, 'error.details').to.have.property('details');`,
    `});`,
  ].join('\n');
}

/**
 * req(name, spec): spec = {
 *   method, path, as (token key or 'public' or {raw header}), body (object|string),
 *   contentType, headers, expect: {status, code}, test: fn, pre: fn
 * }
 */
function req(name, spec) {
  const { method = 'GET', path, as = 'public', body, contentType, headers = [], expect, test, pre } = spec;
  if (!expect || !expect.status) throw new Error(`${name}: expect.status is required`);
  if (!expect.code && !test) throw new Error(`${name}: needs an error code or a body test`);
  const header = [];
  if (typeof as === 'object' && as.authorization !== undefined) {
    header.push({ key: 'Authorization', value: as.authorization });
  } else if (as !== 'public') {
    const v = TOKENS[as];
    if (!v) throw new Error(`${name}: unknown principal ${as}`);
    header.push({ key: 'Authorization', value: `Bearer {{${v}}}` });
  }
  let rawBody;
  if (body !== undefined) {
    rawBody = typeof body === 'string' ? body : jsonBody(body);
    header.push({ key: 'Content-Type', value: contentType || 'application/json' });
  } else if (contentType) {
    header.push({ key: 'Content-Type', value: contentType });
  }
  for (const [k, v] of headers) header.push({ key: k, value: v });

  const exec = [PRELUDE, statusTest(expect.status)];
  if (expect.code) exec.push(errorTest(expect.code));
  if (test) exec.push(fnBody(test));
  const script = exec.join('\n');
  // Syntax check now rather than at run time.
  // eslint-disable-next-line no-new-func
  new Function('pm', script);

  const item = {
    name,
    event: [{ listen: 'test', script: { type: 'text/javascript', exec: script.split('\n') } }],
    request: {
      method,
      header,
      url: `{{baseUrl}}${path}`,
    },
  };
  if (pre) {
    const p = fnBody(pre);
    // eslint-disable-next-line no-new-func
    new Function('pm', p);
    item.event.unshift({ listen: 'prerequest', script: { type: 'text/javascript', exec: p.split('\n') } });
  }
  if (rawBody !== undefined) item.request.body = { mode: 'raw', raw: rawBody };
  return item;
}

function folder(name, description, items) {
  return { name, description, item: items.flat() };
}

module.exports = { req, folder, fnBody, TOKENS };
