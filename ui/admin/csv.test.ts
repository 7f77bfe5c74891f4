// The console's CSV splitting: parts the server takes, and rows named by the
// file's own lines. Run: npm test (admin/tsconfig.test.json, node --test).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { fileLine, splitCsv, wentIn } from './csv.js';

test('parts hold at most the row count, each with the header', () => {
  const rows = Array.from({ length: 7 }, (_, i) => `T-${i + 1}`);
  const { header, parts } = splitCsv(`ticket_code\n${rows.join('\n')}\n`, 3);
  assert.equal(header, 'ticket_code');
  assert.deepEqual(
    parts.map((p) => p.rows),
    [3, 3, 1],
  );
  assert.equal(parts[1].body, 'ticket_code\nT-4\nT-5\nT-6\n');
  assert.deepEqual(parts[2].fileLines, [8]);
});

test('a quoted line break keeps a record whole and moves the later lines', () => {
  // line 1 header; 2–3 one record; 4 empty; 5 a record; 6–8 one record; 9 a record
  const file = 'ticket_code,entitlements\r\nA,"{\n}"\r\n\r\nB,\nC,"{""x"":\n\n1}"\nD,\n';
  const { parts } = splitCsv(file, 2);
  assert.deepEqual(
    parts.map((p) => p.fileLines),
    [
      [2, 5],
      [6, 9],
    ],
  );
  // The part's own lines, as the server counts them (header = 1).
  assert.deepEqual(parts[1].partLines, [2, 5]);
  assert.equal(fileLine(parts[1], 5), 9);
  assert.equal(fileLine(parts[1], 2), 6);
  assert.equal(fileLine(parts[1], 1), 1, 'the header');
  assert.equal(parts[0].endLine, 5);
  assert.equal(parts[1].endLine, 9);
  assert.equal(splitCsv('ticket_code,note\nA,"x\ny"\n', 10).parts[0].endLine, 3, 'a record ending over two lines');
  assert.equal(parts[1].body, 'ticket_code,entitlements\nC,"{""x"":\n\n1}"\nD,\n');
});

test('a part is cut before it passes the byte budget, a long row alone', () => {
  const long = 'L,' + 'x'.repeat(100);
  const file = ['ticket_code,note', 'A,1', 'B,2', long, 'C,3'].join('\n');
  const { parts } = splitCsv(file, 1000, 60);
  assert.deepEqual(
    parts.map((p) => p.fileLines),
    [[2, 3], [4], [5]],
  );
  for (const p of parts.filter((q) => q.rows > 1)) assert.ok(new TextEncoder().encode(p.body).length <= 60, p.body);
  // Multi-byte characters count as bytes, not as UTF-16 units.
  const { parts: wide } = splitCsv(`ticket_code\n${'é'.repeat(20)}\n${'é'.repeat(20)}\n`, 1000, 60);
  assert.equal(wide.length, 2);
});

test('a quote opens a quoted field only at the start of a field, as the server reads it', () => {
  // `12" tv` is plain text; `"a,b"` and `"x""y"` are quoted; a quoted field may hold a line break.
  // The same file as admin_tickets.rs's `lines_are_the_files_lines_and_problems_are_named` (its last row repeats A there).
  const file = 'ticket_code,note\nA,12" tv\nB,"a,b"\nC,"x""y\nz"\nD, "w\nE,\n';
  const { parts } = splitCsv(file, 100);
  assert.deepEqual(parts[0].fileLines, [2, 3, 4, 6, 7]);
  assert.equal(parts[0].rows, 5);
});

test('a re-check after a lost answer tells whether the part went in', () => {
  const exists = { problem: 'EXISTS' };
  assert.deepEqual(wentIn({ status: 422, rows: [exists, exists], ticket_codes: [null, null] }), { went: 'yes', imported: 2 });
  assert.deepEqual(wentIn({ status: 200 }), { went: 'no' });
  // One row passed the check: its code is free, so the one transaction did not commit.
  assert.deepEqual(wentIn({ status: 422, rows: [exists], ticket_codes: [null, 'B'] }), { went: 'no' });
  assert.deepEqual(wentIn({ status: 422, rows: [exists, { problem: 'INVALID' }], ticket_codes: [null, null] }), { went: 'unknown' });
  assert.deepEqual(wentIn({ status: 502 }), { went: 'unknown' });
  assert.deepEqual(wentIn({ status: 401, rows: undefined }), { went: 'unknown' });
});
