#!/usr/bin/env bash
# The console's ticket CSV import and export (issue 16) over real HTTP
# against a real `entrada serve` on a fresh SQLite database.
#
#   scripts/bench-import.sh [ENTRADA_BINARY] [N]      (N defaults to 10000)
#
# What it does, the way the console's Tickets page does it (ui/admin/tickets.ts):
#  1. writes N tickets as CSV (all eight import columns) with two bad rows at
#     known lines (101: activation_mode "sometimes"; 5002, or the last line
#     when N < 5001: the code of line 2 again);
#  2. checks that file as the console does: cut after its header into parts
#     of 5,000 rows (each sent with the header), every part sent to
#     POST /api/admin/tickets/import/checked?dry_run=true; the parts' reports
#     shifted to the file's lines, a code repeated across parts found from
#     the codes each good part answers; checks that those lines are named and
#     that nothing was imported;
#  3. the fixed file the same way: every part checked (dry run), then every
#     part imported (one transaction per part), timed separately;
#  4. times the CSV export of the whole list (GET /api/admin/tickets/export,
#     gzip as a browser asks for it) and counts its rows;
#  5. times a search by code as the console sends it (search?q=CODE&limit=50)
#     and the console's export link for that search (export?q=CODE): median
#     of 5;
#  6. reads the server's peak RSS (VmHWM in /proc/PID/status) after each step.
#
# Server and client run under `nice -n 5`. The admin authenticates with a
# bearer token (`entrada token create`); the console's cookie session reaches
# the same handlers. Needs bash, python3 (standard library only).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-${CARGO_TARGET_DIR:-$ROOT/target}/release/entrada}
N=${2:-10000}
BIN=$(readlink -f "$BIN")
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

DB="$WORK/bench.db"
"$BIN" migrate --db "$DB" >/dev/null 2>&1
TOKEN=$("$BIN" token create --db "$DB" --orq 1 --role admin 2>/dev/null)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

echo "binary: $BIN ($(stat -c '%y' "$BIN" | cut -c1-19) local mtime)"
echo "N: $N; load before: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M:%S UTC')"

nice -n 5 "$BIN" serve --db "$DB" --listen "127.0.0.1:$PORT" --lookups-per-minute 0 \
  --ui-dir "$WORK/no-ui" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/api/health', timeout=1)" 2>/dev/null; then
    break
  fi
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
  sleep 0.1
done

export PORT TOKEN N SERVER_PID WORK
nice -n 5 python3 - <<'PY'
import gzip, http.client, json, os, statistics, time, urllib.parse

PORT, TOKEN, N = int(os.environ["PORT"]), os.environ["TOKEN"], int(os.environ["N"])
PID, WORK = int(os.environ["SERVER_PID"]), os.environ["WORK"]
PART_ROWS = 5_000  # ui/admin/tickets.ts IMPORT_PART_ROWS
HEADER = "ticket_code,order_id,product_id,user_id,activation_mode,expires_at,entitlements,purchase_email\n"
BAD_MODE_LINE = min(101, N + 1)
DUP_LINE = min(5002, N + 1)


def code(i):
    return f"IMP-{i:07d}"


def row(i, mode="immediate", ticket=None):
    order = 500_000 + i // 2  # two tickets per order
    return (f'{ticket or code(i)},{order},{1 + i % 5},,{mode},2027-06-30T22:00:00Z,'
            f'"{{""adults"":{1 + i % 3}}}",buyer{order}@example.com\n')


def csv_file(bad):
    lines = [HEADER]
    for i in range(1, N + 1):
        line = i + 1  # the header is line 1
        if bad and line == BAD_MODE_LINE:
            lines.append(row(i, mode="sometimes"))
        elif bad and line == DUP_LINE:
            lines.append(row(i, ticket=code(1)))
        else:
            lines.append(row(i))
    return lines


def vmhwm():
    with open(f"/proc/{PID}/status") as f:
        for l in f:
            if l.startswith(("VmHWM", "VmRSS")):
                yield l.split(":")[0], int(l.split()[1]) // 1024


def hwm():
    return dict(vmhwm())["VmHWM"]


def request(method, path, body=None, headers=None, stream=False):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=600)
    h = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
    h.update(headers or {})
    t0 = time.perf_counter()
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    first = time.perf_counter()
    data = r.read()
    t1 = time.perf_counter()
    c.close()
    return r.status, data, t1 - t0, first - t0, dict(r.getheaders())


def upload(text, dry_run=False):
    body = text.encode()
    path = "/api/admin/tickets/import/checked" + ("?dry_run=true" if dry_run else "")
    st, data, secs, _, _ = request("POST", path, body,
                                   {"Content-Type": "text/csv", "X-Entrada-Console": "1"})
    try:
        js = json.loads(data)
    except ValueError:
        js = {"raw": data[:200].decode(errors="replace")}
    return st, js, secs, len(body)


def parts_of(lines):
    """(offset, part text) as the console cuts the file: header + 5,000 rows."""
    rows = lines[1:]
    return [(at, HEADER + "".join(rows[at:at + PART_ROWS])) for at in range(0, len(rows), PART_ROWS)]


def check_parts(parts):
    """The console's check phase: (bad rows with file lines, seconds, max part s)."""
    bad, first, total, worst = [], {}, 0.0, 0.0
    for offset, text in parts:
        st, js, secs, _ = upload(text, dry_run=True)
        total, worst = total + secs, max(worst, secs)
        codes = None
        if st == 200:
            codes = js["ticket_codes"]
        elif st == 422 and js.get("error", {}).get("code") == "INVALID_ROWS":
            bad += [(r["line"] + offset, r["ticket_code"], r["message"]) for r in js["error"]["details"]["rows"]]
            codes = js["error"]["details"].get("ticket_codes") or []
        else:
            bad.append((0, None, f"part refused: {st} {js}"))
        for k, c in enumerate(codes or []):
            line = offset + k + 2
            if c is None:
                continue
            if c in first:
                bad.append((line, c, f"the code is already on line {first[c]}"))
            else:
                first[c] = line
    return sorted(bad, key=lambda b: b[0]), total, worst


out = []  # (step, result)
t_gen = time.perf_counter()
bad_lines, good_lines = csv_file(True), csv_file(False)
bad_text, good_text = "".join(bad_lines), "".join(good_lines)
gen_secs = time.perf_counter() - t_gen
out.append(("CSV written", f"{N:,} rows, {len(good_text.encode()) / 2**20:.2f} MiB ({gen_secs:.2f} s)"))

# 2. the file with two bad rows, checked part by part as the console does
bad_parts = parts_of(bad_lines)
listed, secs, worst = check_parts(bad_parts)
out.append(("bad file: check (dry run) of every part", f"{len(bad_parts)} part(s) in {secs:.2f} s "
                                                      f"(slowest part {worst:.2f} s); {len(listed)} bad row(s)"))
for l in listed[:5]:
    out.append(("  reported row", f"line {l[0]}, {l[1]}: {l[2]}"))
expected = {BAD_MODE_LINE, DUP_LINE}
st, data, _, _, _ = request("GET", "/api/admin/tickets/search?" + urllib.parse.urlencode({"q": code(3)}))
nothing = json.loads(data)["tickets"] == []
report_ok = expected == {l[0] for l in listed} and nothing
out.append(("  bad lines named, nothing imported", f"{'yes' if report_ok else 'NO'} (expected lines {sorted(expected)})"))
out.append(("  peak RSS so far", f"{hwm()} MiB"))

# 3. the fixed file: every part checked, then every part imported
good_parts = parts_of(good_lines)
listed, check_secs, check_worst = check_parts(good_parts)
imported, import_secs, import_worst, console_ok = 0, 0.0, 0.0, not listed
if console_ok:
    for offset, text in good_parts:
        st, js, secs, _ = upload(text)
        import_secs, import_worst = import_secs + secs, max(import_worst, secs)
        if st != 201:
            console_ok = False
            out.append(("  import REFUSED", f"lines {offset + 2}-: {st} {js}"))
            break
        imported += js["imported"]
out.append(("fixed file: check of every part", f"{len(good_parts)} part(s) in {check_secs:.2f} s "
                                               f"(slowest {check_worst:.2f} s), {len(listed)} bad row(s)"))
out.append(("fixed file: import part by part", f"{imported:,} imported in {import_secs:.2f} s = "
                                               f"{imported / max(import_secs, 1e-9):,.0f} rows/s, "
                                               f"{len(good_parts)} transaction(s), slowest {import_worst:.2f} s"))
total_secs = check_secs + import_secs
out.append(("fixed file: check + import", f"{total_secs:.2f} s = {imported / max(total_secs, 1e-9):,.0f} rows/s"))
out.append(("  peak RSS so far", f"{hwm()} MiB"))

# 4. the whole list as CSV
st, data, secs, ttfb, hdrs = request("GET", "/api/admin/tickets/export", headers={"Accept-Encoding": "gzip"})
export_secs = secs
plain = gzip.decompress(data) if hdrs.get("content-encoding") == "gzip" else data
exported = plain.count(b"\n") - 1
out.append(("export, whole list", f"{st}, {exported:,} rows in {secs:.2f} s (first byte {ttfb * 1000:.0f} ms), "
                                  f"{len(data) / 2**20:.2f} MiB on the wire ({hdrs.get('content-encoding', 'plain')}), "
                                  f"{len(plain) / 2**20:.2f} MiB CSV = {exported / secs:,.0f} rows/s"))
out.append(("  peak RSS so far", f"{hwm()} MiB"))

# 5. a search by code, and the console's export link for it
target = code(N // 2 + 1)
def times(path, **kw):
    ts = []
    for _ in range(5):
        st, data, secs, _, _ = request("GET", path, **kw)
        ts.append(secs)
    if kw.get("headers", {}).get("Accept-Encoding") and data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return st, data, statistics.median(ts)
st, data, med = times("/api/admin/tickets/search?" + urllib.parse.urlencode({"q": target, "limit": 50}))
found = [t["ticket_code"] for t in json.loads(data)["tickets"]]
out.append(("search by code (median of 5)", f"{st}, found {found} in {med * 1000:.1f} ms"))
st, data, med = times("/api/admin/tickets/export?" + urllib.parse.urlencode({"q": target}),
                      headers={"Accept-Encoding": "gzip"})
out.append(("export of that search (median of 5)", f"{st}, {data.count(b'IMP-')} row(s) in {med * 1000:.1f} ms"))

# A bad purchase e-mail: a bad row of the per-row report (line 3), nothing
# imported (it used to pass the check and fail the whole INSERT, no line).
st, js, secs, _ = upload(HEADER + row(N + 1) + row(N + 2).replace(f"buyer{500_000 + (N + 2) // 2}@example.com", "not-an-e-mail"))
err = js.get("error", {}) if isinstance(js, dict) else {}
out.append(("probe: bad purchase_email on line 3", f"{st} {err.get('code', '')}: {err.get('message', '')}; "
            f"rows reported: {len((err.get('details') or {}).get('rows') or [])}"))

m = dict(vmhwm())
out.append(("server memory at the end", f"VmHWM (peak) {m['VmHWM']} MiB, VmRSS {m['VmRSS']} MiB"))
size = lambda f: os.path.getsize(f) / 2**20 if os.path.exists(f) else 0.0
db = os.path.join(WORK, "bench.db")
out.append(("DB file", f"{size(db):.1f} MiB (+ WAL {size(db + '-wal'):.1f} MiB)"))
w = max(len(s) for s, _ in out)
for s, r in out:
    print(f"{s:<{w}}  {r}")
print(f"RESULT n={N} check_s={check_secs:.3f} import_s={import_secs:.3f} console={'ok' if console_ok else 'refused'} "
      f"export_s={export_secs:.3f} exported={exported} peak_rss_mib={m['VmHWM']} report_ok={report_ok}")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
if grep -qiE 'panic|error' "$WORK/server.log"; then
  echo "server log (errors):"; grep -iE 'panic|error' "$WORK/server.log" | head -5
fi
