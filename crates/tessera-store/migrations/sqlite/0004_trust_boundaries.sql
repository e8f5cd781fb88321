-- Trust boundaries between backends and clients.
--
-- * Every session records the backend client that opened it (`opened_by`):
--   a backend sees and changes only its own sessions. Sessions opened before
--   this migration take it from their `session.opened` audit record (whose
--   `client_id` is the backend that acted), or else their own client.
-- * A client has allowed scopes, audiences and the clients it may open
--   sessions for (JSON arrays), can be disabled, and keeps the secret its
--   last rotation replaced for an optional overlap.
-- * A `clients` change mark, bumped by triggers, lets every process drop its
--   cached clients as soon as one changes (a CLI disabling a client beside a
--   running server).
ALTER TABLE sessions ADD COLUMN opened_by TEXT;
UPDATE sessions SET opened_by = COALESCE(
    (SELECT a.client_id FROM audit a
      WHERE a.session_id = sessions.id AND a.kind = 'session.opened' AND a.client_id IS NOT NULL
      ORDER BY a.seq LIMIT 1),
    client_id);
CREATE INDEX sessions_opened_by ON sessions (opened_by, subject);
CREATE INDEX sessions_client ON sessions (client_id, revoked_at);

ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at INTEGER;
ALTER TABLE clients ADD COLUMN scopes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN audiences TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN sessions_for TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN updated_at INTEGER;
ALTER TABLE clients ADD COLUMN disabled_at INTEGER;
UPDATE clients SET updated_at = created_at;

INSERT INTO change_marks (name, value) VALUES ('clients', 0);
CREATE TRIGGER clients_mark_insert AFTER INSERT ON clients
BEGIN
    UPDATE change_marks SET value = value + 1 WHERE name = 'clients';
END;
CREATE TRIGGER clients_mark_update AFTER UPDATE ON clients
BEGIN
    UPDATE change_marks SET value = value + 1 WHERE name = 'clients';
END;
CREATE TRIGGER clients_mark_delete AFTER DELETE ON clients
BEGIN
    UPDATE change_marks SET value = value + 1 WHERE name = 'clients';
END;
