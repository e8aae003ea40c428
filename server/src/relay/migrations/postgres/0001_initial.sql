
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    signing_key BYTEA NOT NULL,
    age_recipient TEXT NOT NULL,
    role TEXT NOT NULL,
    enrolled_at BIGINT NOT NULL,
    revocation TEXT
);
CREATE TABLE IF NOT EXISTS used_codes (
    code_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    used_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (
    device_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (device_id, nonce)
);
CREATE INDEX IF NOT EXISTS nonces_ts ON nonces(ts);
CREATE TABLE IF NOT EXISTS envelopes (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    sender TEXT NOT NULL,
    payload BYTEA NOT NULL,
    stored_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS routes (
    recipient TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (recipient, seq)
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('envelope_seq', 0) ON CONFLICT (name) DO NOTHING;
CREATE TABLE IF NOT EXISTS blobs (
    sha256 TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    complete BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS blob_chunks (
    sha256 TEXT NOT NULL,
    off BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (sha256, off)
);
