-- Tessera's initial schema (SQLite).
--
-- Every time is INTEGER milliseconds since the Unix epoch (`Timestamp.0`).
-- Lists and JSON objects are TEXT holding JSON. The SQL stays portable: the
-- PostgreSQL migration mirrors it with BIGINT, BYTEA and identity columns.

-- Registered OAuth clients.
CREATE TABLE clients (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,          -- 'confidential' | 'public'
    secret_hash TEXT,                      -- argon2id PHC string, never the secret
    allowed     TEXT    NOT NULL,          -- JSON array of permission words
    policy      TEXT    NOT NULL,          -- JSON object of policy overrides
    created_at  INTEGER NOT NULL
);

-- Sessions: one row per refresh-token family.
CREATE TABLE sessions (
    id                  TEXT    NOT NULL PRIMARY KEY,
    subject             TEXT    NOT NULL,
    client_id           TEXT    NOT NULL,
    scope               TEXT,
    audience            TEXT    NOT NULL,  -- JSON array of strings
    claims              TEXT    NOT NULL,  -- JSON object
    auth_time           INTEGER,           -- Unix seconds
    acr                 TEXT,
    amr                 TEXT    NOT NULL,  -- JSON array of strings
    token_format        TEXT    NOT NULL,
    dpop_jkt            TEXT,
    device_ip           TEXT,
    device_user_agent   TEXT,
    device_label        TEXT,
    generation          INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    last_used_at        INTEGER NOT NULL,
    rotated_at          INTEGER NOT NULL,
    idle_expires_at     INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    revoked_at          INTEGER,
    revoked_reason      TEXT
);

-- Serves both "all of a subject's sessions" (prefix) and "live ones" (revoked_at IS NULL).
CREATE INDEX sessions_subject_revoked ON sessions (subject, revoked_at);

-- Append-only audit trail.
CREATE TABLE audit (
    seq               INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at                INTEGER NOT NULL,
    kind              TEXT    NOT NULL,
    subject           TEXT,
    session_id        TEXT,
    client_id         TEXT,
    device_ip         TEXT,
    device_user_agent TEXT,
    device_label      TEXT,
    detail            TEXT    NOT NULL     -- JSON value
);

CREATE INDEX audit_subject ON audit (subject, seq);
CREATE INDEX audit_session ON audit (session_id, seq);

-- The revocation feed verifiers follow, oldest first by seq.
CREATE TABLE revocations (
    seq   INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind  TEXT    NOT NULL,                -- 'session' | 'subject' | 'key'
    id    TEXT    NOT NULL,
    at    INTEGER NOT NULL,
    until INTEGER NOT NULL
);

-- Signing keys: public part in clear, private part sealed under the master key.
CREATE TABLE signing_keys (
    kid           TEXT    NOT NULL PRIMARY KEY,
    alg           TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    public_key    BLOB    NOT NULL,
    sealed_secret BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    activates_at  INTEGER NOT NULL,
    retired_at    INTEGER,
    expires_at    INTEGER
);

-- Server secrets (sealed), created once and shared by every instance.
CREATE TABLE secrets (
    name  TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL
);
