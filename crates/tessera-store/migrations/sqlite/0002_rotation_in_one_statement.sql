-- A refresh rotation is one autocommit `UPDATE ... RETURNING`: the audit
-- record it must write is staged in these columns by that same UPDATE and
-- copied into `audit` by the trigger below, inside the statement's implicit
-- transaction. One statement instead of BEGIN/UPDATE/INSERT/COMMIT: the
-- refresh hot path crosses to sqlx's SQLite worker thread once, not four times.
-- The staged columns also answer "last used from where" for a session.
ALTER TABLE sessions ADD COLUMN last_event_at INTEGER;
ALTER TABLE sessions ADD COLUMN last_event_kind TEXT;
ALTER TABLE sessions ADD COLUMN last_event_subject TEXT;
ALTER TABLE sessions ADD COLUMN last_event_client_id TEXT;
ALTER TABLE sessions ADD COLUMN last_event_ip TEXT;
ALTER TABLE sessions ADD COLUMN last_event_user_agent TEXT;
ALTER TABLE sessions ADD COLUMN last_event_label TEXT;
ALTER TABLE sessions ADD COLUMN last_event_detail TEXT;

CREATE TRIGGER sessions_rotation_audit AFTER UPDATE OF generation ON sessions
WHEN NEW.generation <> OLD.generation AND NEW.last_event_kind IS NOT NULL
BEGIN
    INSERT INTO audit (at, kind, subject, session_id, client_id, device_ip, device_user_agent, device_label, detail)
    VALUES (NEW.last_event_at, NEW.last_event_kind, COALESCE(NEW.last_event_subject, NEW.subject), NEW.id,
            NEW.last_event_client_id, NEW.last_event_ip, NEW.last_event_user_agent, NEW.last_event_label,
            NEW.last_event_detail);
END;
