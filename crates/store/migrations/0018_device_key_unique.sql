-- LAN hardening (issue 14h): a device public key belongs to one live gate.
-- A paired gate could otherwise register another gate's key as its own and
-- have that gate's LAN links attributed to itself (and its events refused).
-- Keys already shared by two live devices are cleared first: each gate
-- registers its key again at its next sync round, the first one keeps it.
UPDATE devices SET public_key = NULL
WHERE revoked_at IS NULL AND public_key IS NOT NULL
  AND public_key IN (
    SELECT public_key FROM devices
    WHERE revoked_at IS NULL AND public_key IS NOT NULL
    GROUP BY public_key HAVING count(*) > 1
  );

-- A revoked device's key may be registered again (a re-paired gate keeps
-- its key pair on its own file).
CREATE UNIQUE INDEX devices_public_key_live ON devices (public_key)
    WHERE public_key IS NOT NULL AND revoked_at IS NULL;
