#!/usr/bin/env python3
"""Reservation and verification load on several `entrada serve` instances,
for the failover test (scripts/pg-failover.sh). Standard library only.

  load.py SETUP_JSON SECONDS OUT_JSONL

SETUP_JSON: {"bases": [...], "token": "...", "slot_id": "...", "codes": [...]}.
Each worker takes tickets from the shared list: reserve it (an instance in
turn), then verify it. Every answer is one JSON line in OUT_JSONL:
{"t": seconds since start, "w": wall clock answered, "sent": wall clock sent, "op": "reserve"|"verify", "code", "status", "error"}.
"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request

setup = json.load(open(sys.argv[1]))
seconds = float(sys.argv[2])
out = open(sys.argv[3], "w")
lock = threading.Lock()
codes = list(setup["codes"])
start = time.monotonic()


def post(base, path, body):
    sent = time.time()
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + setup["token"], "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, None, sent
    except urllib.error.HTTPError as e:
        try:
            code = json.loads(e.read())["error"]["code"]
        except Exception:  # noqa: BLE001 - any unreadable body
            code = "?"
        return e.code, code, sent
    except Exception as e:  # noqa: BLE001 - connection refused, reset, timeout
        return 0, type(e).__name__, sent


def record(op, code, status, error, sent):
    with lock:
        out.write(json.dumps({"t": round(time.monotonic() - start, 4), "w": time.time(), "sent": sent,
                              "op": op, "code": code,
                              "status": status, "error": error}) + "\n")


def worker(n):
    bases = setup["bases"]
    i = n
    while time.monotonic() - start < seconds:
        with lock:
            if not codes:
                return
            code = codes.pop()
        base = bases[i % len(bases)]
        i += 1
        # Retried until answered (a 503 or a refused connection is no answer
        # about the write); a 409 ALREADY_RESERVED after a lost answer means
        # an earlier try was written.
        while time.monotonic() - start < seconds:
            status, error, sent = post(base, "/api/reservations/create", {
                "ticket_id": code, "slot_id": setup["slot_id"],
                "customer_email": "fail@example.com", "customer_phone": "+12025551234"})
            record("reserve", code, status, error, sent)
            if 200 <= status < 300 or error == "ALREADY_RESERVED":
                break
            time.sleep(0.05)
        else:
            return
        base = bases[i % len(bases)]
        while time.monotonic() - start < seconds:
            status, error, sent = post(base, "/api/operator/verify-ticket", {"ticket_id": code})
            record("verify", code, status, error, sent)
            if 200 <= status < 300 or error == "ALREADY_VERIFIED":
                break
            time.sleep(0.05)


threads = [threading.Thread(target=worker, args=(n,)) for n in range(int(setup.get("workers", 8)))]
for t in threads:
    t.start()
for t in threads:
    t.join()
out.close()
