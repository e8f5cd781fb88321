-- Token Status List indices and change marks.
--
-- Every session gets a status index when it opens (its access tokens carry
-- `status.status_list.idx`). Indices only grow and are never reused: ending a
-- session sets its bit, and a later session never inherits that bit.
ALTER TABLE sessions ADD COLUMN status_idx INTEGER;
CREATE UNIQUE INDEX sessions_status_idx ON sessions (status_idx);

-- Counters other processes poll to learn that something verifiers or signers
-- care about changed (a CLI revoking a key while `tessera serve` runs). The
-- revocation feed has its own counter (`revocations.seq`); keys get one here,
-- bumped by triggers so no write path can forget it.
CREATE TABLE change_marks (
    name  TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO change_marks (name, value) VALUES ('keys', 0);

CREATE TRIGGER signing_keys_mark_insert AFTER INSERT ON signing_keys
BEGIN
    UPDATE change_marks SET value = value + 1 WHERE name = 'keys';
END;
CREATE TRIGGER signing_keys_mark_update AFTER UPDATE ON signing_keys
BEGIN
    UPDATE change_marks SET value = value + 1 WHERE name = 'keys';
END;
CREATE TRIGGER signing_keys_mark_delete AFTER DELETE ON signing_keys
BEGIN
    UPDATE change_marks SET value = value + 1 WHERE name = 'keys';
END;

CREATE INDEX signing_keys_state ON signing_keys (alg, state);
CREATE INDEX revocations_until ON revocations (until);
