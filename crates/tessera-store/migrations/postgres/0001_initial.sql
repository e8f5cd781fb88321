-- Tessera's schema on PostgreSQL: the SQLite schema (migrations/sqlite,
-- 0001..0003) in one step. Times are BIGINT milliseconds since the epoch,
-- lists and objects TEXT holding JSON, as on SQLite, so rows read the same.

CREATE TABLE clients (
    id          TEXT   NOT NULL PRIMARY KEY,
    name        TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    secret_hash TEXT,
    allowed     TEXT   NOT NULL,
    policy      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Status-list indices: handed out once, never reused.
CREATE SEQUENCE session_status_idx MINVALUE 0 START 0;

CREATE TABLE sessions (
    id                  TEXT   NOT NULL PRIMARY KEY,
    subject             TEXT   NOT NULL,
    client_id           TEXT   NOT NULL,
    scope               TEXT,
    audience            TEXT   NOT NULL,
    claims              TEXT   NOT NULL,
    auth_time           BIGINT,
    acr                 TEXT,
    amr                 TEXT   NOT NULL,
    token_format        TEXT   NOT NULL,
    dpop_jkt            TEXT,
    device_ip           TEXT,
    device_user_agent   TEXT,
    device_label        TEXT,
    generation          BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    last_used_at        BIGINT NOT NULL,
    rotated_at          BIGINT NOT NULL,
    idle_expires_at     BIGINT NOT NULL,
    absolute_expires_at BIGINT NOT NULL,
    revoked_at          BIGINT,
    revoked_reason      TEXT,
    status_idx          BIGINT UNIQUE
);
CREATE INDEX sessions_subject_revoked ON sessions (subject, revoked_at);

CREATE TABLE audit (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at                BIGINT NOT NULL,
    kind              TEXT   NOT NULL,
    subject           TEXT,
    session_id        TEXT,
    client_id         TEXT,
    device_ip         TEXT,
    device_user_agent TEXT,
    device_label      TEXT,
    detail            TEXT   NOT NULL
);
CREATE INDEX audit_subject ON audit (subject, seq);
CREATE INDEX audit_session ON audit (session_id, seq);

CREATE TABLE revocations (
    seq   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind  TEXT   NOT NULL,
    id    TEXT   NOT NULL,
    at    BIGINT NOT NULL,
    until BIGINT NOT NULL
);
CREATE INDEX revocations_until ON revocations (until);

CREATE TABLE signing_keys (
    kid           TEXT   NOT NULL PRIMARY KEY,
    alg           TEXT   NOT NULL,
    state         TEXT   NOT NULL,
    public_key    BYTEA  NOT NULL,
    sealed_secret BYTEA  NOT NULL,
    created_at    BIGINT NOT NULL,
    activates_at  BIGINT NOT NULL,
    retired_at    BIGINT,
    expires_at    BIGINT
);
CREATE INDEX signing_keys_state ON signing_keys (alg, state);

CREATE TABLE secrets (
    name  TEXT  NOT NULL PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE change_marks (
    name  TEXT   NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO change_marks (name, value) VALUES ('keys', 0);

-- Every instance LISTENs on `tessera_changes`: a revocation event or a key
-- change made through any instance (or the CLI) wakes the others at commit.
CREATE FUNCTION tessera_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_marks SET value = value + 1 WHERE name = 'keys';
    PERFORM pg_notify('tessera_changes', 'keys');
    RETURN NULL;
END $$;
CREATE TRIGGER signing_keys_changed AFTER INSERT OR UPDATE OR DELETE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_keys_changed();

CREATE FUNCTION tessera_revocation_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tessera_changes', 'revocations');
    RETURN NULL;
END $$;
CREATE TRIGGER revocations_added AFTER INSERT ON revocations
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_revocation_added();

CREATE FUNCTION tessera_client_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tessera_changes', 'clients');
    RETURN NULL;
END $$;
CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_client_changed();
