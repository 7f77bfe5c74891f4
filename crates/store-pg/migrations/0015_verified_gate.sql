-- Issue 14 (gate to gate): ALREADY_VERIFIED on a gate names the gate that
-- admitted the ticket also when the gate learnt the admission from the
-- server (a pulled row). The server writes the admitting device's name here
-- from the device token that uploaded the admission (never from the event),
-- clears it with the verification (an undo), and the change feed carries it
-- to the venue's gates with the ticket row (as SQLite's 0024). NULL:
-- admitted at the server itself (no device), before this migration without
-- a matching upload, or not admitted.
ALTER TABLE tickets ADD COLUMN verified_gate TEXT
    CHECK (verified_gate IS NULL OR (verified_at IS NOT NULL AND length(verified_gate) BETWEEN 1 AND 200));

-- The canonical admissions already uploaded name their device: the
-- verification at the ticket's verified_at, as the undo and DOUBLE_ENTRY
-- paths find it. Each such row is sent to the gates again (the log trigger).
UPDATE tickets t SET verified_gate = (
    SELECT d.name FROM verifications v JOIN devices d ON d.id = v.device_id
    WHERE v.orq = t.orq AND v.ticket_code = t.ticket_code
      AND v.verified_at = t.verified_at AND v.refused IS NULL
    ORDER BY v.id LIMIT 1)
WHERE t.verified_at IS NOT NULL AND EXISTS (
    SELECT 1 FROM verifications v JOIN devices d ON d.id = v.device_id
    WHERE v.orq = t.orq AND v.ticket_code = t.ticket_code
      AND v.verified_at = t.verified_at AND v.refused IS NULL);
