// Splitting a big CSV into parts the server takes, and naming each part's
// rows by the lines of the file they came from. Pure (no DOM), so it runs
// under `node --test` (csv.test.ts) as well as in the console.

/** Rows per request of an import (the server takes at most 20,000). */
export const IMPORT_PART_ROWS = 5000;

/** Bytes per request of an import: half the server's 8 MiB body limit, so
 * 5,000 long rows (big entitlements) still fit, with room for the header. */
export const IMPORT_PART_BYTES = 4 * 1024 * 1024;

/** The server's largest request body (`BODY_LIMIT`): a part above it is
 * refused whole (413), so a single record that long is named here instead. */
export const SERVER_BODY_LIMIT = 8 * 1024 * 1024;

/** A part of a CSV: some records after the file's header, sent with it. */
export interface CsvPart {
  body: string;
  /** Records in the part (the header not counted). */
  rows: number;
  /** The file's line where each of the part's records starts. */
  fileLines: number[];
  /** The file's line where the part's last record ends (a quoted field may
   * hold line breaks). */
  endLine: number;
  /** The body's size in bytes (UTF-8). */
  bytes: number;
  /** The part's own line (the header is line 1) where each record starts:
   * what the server names in its report. */
  partLines: number[];
}

const newlines = (s: string): number => {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === 10) n++;
  return n;
};

const utf8 = new TextEncoder();

/**
 * Splits a CSV after its header into parts of at most `rows` records and
 * about `bytes` bytes each (a single longer record is a part of its own),
 * each sent with the header. Records end where the server's reader ends
 * them: a quote opens a quoted field only as a field's first character (so
 * `12" tv` is plain text), a quoted field may hold line breaks, and `""` is
 * a quote inside one. Empty lines are left out, as the server's reader skips
 * them, but still counted in the file's lines.
 */
export function splitCsv(text: string, rows: number, bytes = IMPORT_PART_BYTES): { header: string; parts: CsvPart[] } {
  const records: { text: string; line: number }[] = [];
  let start = 0;
  let line = 1; // the file's line at `start`
  // Where the reader is: at a field's start, in a plain field, in a quoted
  // one, or just after a quote inside a quoted one (closing it, or `""`).
  let state: 'start' | 'plain' | 'quoted' | 'quote' = 'start';
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text[i] : '\n';
    if (state === 'quoted') {
      if (c === '"') state = 'quote';
      if (i < text.length) continue;
    } else if (c === '"' && state === 'start') {
      state = 'quoted';
      continue;
    } else if (c === '"' && state === 'quote') {
      state = 'quoted';
      continue;
    }
    if (c === ',') state = 'start';
    else if (c === '\n') {
      const raw = text.slice(start, i);
      const record = raw.replace(/\r$/, '');
      if (record !== '') records.push({ text: record, line });
      line += newlines(raw) + 1;
      start = i + 1;
      state = 'start';
    } else if (state !== 'plain') state = c === '\r' && state === 'start' ? 'start' : 'plain';
  }
  const header = records.shift()?.text ?? '';
  const headerLines = newlines(header) + 1;
  const headerBytes = utf8.encode(header).length + 1;
  const parts: CsvPart[] = [];
  let current: typeof records = [];
  let size = headerBytes;
  const flush = () => {
    if (current.length === 0) return;
    const partLines: number[] = [];
    let at = headerLines + 1;
    for (const r of current) {
      partLines.push(at);
      at += newlines(r.text) + 1;
    }
    const lastRecord = current[current.length - 1];
    parts.push({
      body: `${header}\n${current.map((r) => r.text).join('\n')}\n`,
      rows: current.length,
      fileLines: current.map((r) => r.line),
      endLine: lastRecord.line + newlines(lastRecord.text),
      bytes: size,
      partLines,
    });
    current = [];
    size = headerBytes;
  };
  for (const r of records) {
    const n = utf8.encode(r.text).length + 1;
    if (current.length >= rows || (current.length > 0 && size + n > bytes)) flush();
    current.push(r);
    size += n;
  }
  flush();
  return { header, parts };
}

/** The file's line of a line the server named in a part's report (where a
 * record starts; any other line maps by its distance from the record). */
export function fileLine(part: CsvPart, partLine: number): number {
  let k = part.partLines.length - 1;
  while (k > 0 && part.partLines[k] > partLine) k--;
  if (k < 0 || partLine < part.partLines[0]) return partLine; // the header
  return part.fileLines[k] + (partLine - part.partLines[k]);
}

/**
 * Whether a part went in, from a dry run of it sent after its import's
 * answer was lost. The import is one transaction, so either every row
 * exists now or none of them did through it: every row refused as `EXISTS`
 * means it went in; a clean check, or any row the check passed (a code
 * it read and found free), means it did not. Anything else (no answer, or
 * one without an Entrada report): unknown. `imported` is how many rows the
 * server read, not the console's own count.
 */
export function wentIn(check: {
  status: number;
  rows?: { problem?: string }[];
  ticket_codes?: (string | null)[];
}): { went: 'yes'; imported: number } | { went: 'no' | 'unknown' } {
  if (check.status === 200) return { went: 'no' };
  const { rows, ticket_codes: codes } = check;
  if (check.status !== 422 || !rows || !codes) return { went: 'unknown' };
  if (codes.some((c) => c !== null)) return { went: 'no' };
  if (rows.length === codes.length && rows.every((r) => r.problem === 'EXISTS')) return { went: 'yes', imported: rows.length };
  return { went: 'unknown' };
}
