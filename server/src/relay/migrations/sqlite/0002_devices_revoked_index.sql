-- Migration 0002 (SQLite): partial index over the revoked devices.
--
-- What: an index on devices(device_id) holding only the rows whose revocation is set.
-- Why: every device polls GET /v1/revocations, whose query
--   SELECT revocation FROM devices WHERE revocation IS NOT NULL ORDER BY device_id
-- scanned the whole devices table (one row per device ever enrolled) to find the few revoked
-- ones. The partial index holds just those rows, already in the order the query returns.
-- Safe on a live relay: it adds an index only; no row or column changes.
CREATE INDEX devices_revoked ON devices(device_id) WHERE revocation IS NOT NULL;
