-- Migration 0002 (PostgreSQL): partial index over the revoked devices.
--
-- What: an index on devices(device_id) holding only the rows whose revocation is set.
-- Why: every device polls GET /v1/revocations, whose query
--   SELECT revocation FROM devices WHERE revocation IS NOT NULL ORDER BY device_id
-- had to read the whole devices table (one row per device ever enrolled) to find the few
-- revoked ones. The partial index holds just those rows, already in the order the query returns.
-- Not CONCURRENTLY: every migration runs inside one transaction; devices is small and the index
-- build blocks only enrollments and revocations, for the moment it takes.
CREATE INDEX devices_revoked ON devices(device_id) WHERE revocation IS NOT NULL;
