-- DPoP (RFC 9449): proofs seen at the token endpoint, so a proof is
-- accepted once across every instance (SQLite migration 0005). `id` is a
-- digest of the proof key's thumbprint and the proof's `jti`; a row is kept
-- until the proof could no longer pass the `iat` window (`expires_at`, Unix
-- milliseconds) and pruned after.
CREATE TABLE dpop_proofs (
    id TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX dpop_proofs_expiry ON dpop_proofs (expires_at);
