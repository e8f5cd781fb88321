-- Trust boundaries between backends and clients (SQLite migration 0004).
--
-- * Every session records the backend client that opened it (`opened_by`);
--   sessions opened before take it from their `session.opened` audit record.
-- * A client has allowed scopes, audiences and the clients it may open
--   sessions for, can be disabled, and keeps its previous secret for an
--   optional overlap after a rotation.
-- * A `clients` change mark, bumped by the existing clients trigger (which
--   also notifies `tessera_changes`), lets every instance drop its cached
--   clients at commit.
ALTER TABLE sessions ADD COLUMN opened_by TEXT;
UPDATE sessions SET opened_by = COALESCE(
    (SELECT a.client_id FROM audit a
      WHERE a.session_id = sessions.id AND a.kind = 'session.opened' AND a.client_id IS NOT NULL
      ORDER BY a.seq LIMIT 1),
    client_id);
CREATE INDEX sessions_opened_by ON sessions (opened_by, subject);
CREATE INDEX sessions_client ON sessions (client_id, revoked_at);

ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at BIGINT;
ALTER TABLE clients ADD COLUMN scopes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN audiences TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN sessions_for TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN updated_at BIGINT;
ALTER TABLE clients ADD COLUMN disabled_at BIGINT;
UPDATE clients SET updated_at = created_at;

INSERT INTO change_marks (name, value) VALUES ('clients', 0);

CREATE OR REPLACE FUNCTION tessera_client_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_marks SET value = value + 1 WHERE name = 'clients';
    PERFORM pg_notify('tessera_changes', 'clients');
    RETURN NULL;
END $$;
