
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    signing_key BLOB NOT NULL,
    age_recipient TEXT NOT NULL,
    role TEXT NOT NULL,
    enrolled_at INTEGER NOT NULL,
    revocation TEXT
);
CREATE TABLE IF NOT EXISTS used_codes (
    code_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    used_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (
    device_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    ts INTEGER NOT NULL,
    PRIMARY KEY (device_id, nonce)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nonces_ts ON nonces(ts);
CREATE TABLE IF NOT EXISTS envelopes (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    sender TEXT NOT NULL,
    payload BLOB NOT NULL,
    stored_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS routes (
    recipient TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (recipient, seq)
) WITHOUT ROWID;
