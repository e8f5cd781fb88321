//! Signing keys, status indices and housekeeping: the bodies behind the
//! `Store` methods of the same names (the `impl Store` in [`impl_store!`]
//! calls these `*_q` methods; `async_trait` needs the trait methods in one
//! block, the queries need not be).

macro_rules! key_queries {
    ($ty:ty, $db:ident) => {
        impl $ty {
            async fn insert_key_q(&self, key: &StoredKey) -> Result<(), StoreError> {
                bind_key(
                    sqlx::query(
                        "INSERT INTO signing_keys \
                             (kid, alg, state, public_key, sealed_secret, created_at, activates_at, retired_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    ),
                    key,
                )
                .execute(self.write())
                .await?;
                self.changed();
                Ok(())
            }

            async fn keys_q(&self) -> Result<Vec<StoredKey>, StoreError> {
                let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid")
                    .fetch_all(self.read())
                    .await?;
                rows.iter().map(key_from_row).collect()
            }

            async fn activate_key_q(
                &self,
                kid: &str,
                now: Timestamp,
                retire_until: Timestamp,
                record: &AuditRecord,
            ) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                let alg: Option<String> = sqlx::query(
                    "UPDATE signing_keys SET state = 'active', activates_at = $1 \
                     WHERE kid = $2 AND state = 'pending' RETURNING alg",
                )
                .bind(now.0)
                .bind(kid)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.try_get("alg"))
                .transpose()?;
                let Some(alg) = alg else {
                    tx.rollback().await?;
                    return Ok(false);
                };
                sqlx::query(
                    "UPDATE signing_keys SET state = 'retired', retired_at = $1, expires_at = $2 \
                     WHERE alg = $3 AND state = 'active' AND kid <> $4",
                )
                .bind(now.0)
                .bind(retire_until.0)
                .bind(&alg)
                .bind(kid)
                .execute(&mut *tx)
                .await?;
                insert_audit(&mut *tx, record).await?;
                tx.commit().await?;
                self.changed();
                Ok(true)
            }

            async fn revoke_key_q(
                &self,
                kid: &str,
                now: Timestamp,
                until: Timestamp,
                record: &AuditRecord,
            ) -> Result<KeyRevoked, StoreError> {
                let mut tx = self.begin_write().await?;
                let Some(row) = sqlx::query("SELECT * FROM signing_keys WHERE kid = $1")
                    .bind(kid)
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    tx.rollback().await?;
                    return Ok(KeyRevoked::NotFound);
                };
                let before = key_from_row(&row)?;
                if before.state == KeyState::Revoked {
                    tx.rollback().await?;
                    return Ok(KeyRevoked::AlreadyRevoked);
                }
                sqlx::query(
                    "UPDATE signing_keys SET state = 'revoked', retired_at = COALESCE(retired_at, $1), \
                         expires_at = $2 WHERE kid = $3",
                )
                .bind(now.0)
                .bind(until.0)
                .bind(kid)
                .execute(&mut *tx)
                .await?;
                insert_audit(&mut *tx, record).await?;
                insert_revocation(&mut *tx, EventKind::Key, kid, now, until).await?;
                tx.commit().await?;
                self.changed();
                Ok(KeyRevoked::Revoked(before))
            }

            async fn remove_expired_keys_q(&self, now: Timestamp) -> Result<Vec<String>, StoreError> {
                let mut tx = self.begin_write().await?;
                let rows = sqlx::query(
                    "DELETE FROM signing_keys \
                     WHERE state IN ('retired', 'revoked') AND expires_at IS NOT NULL AND expires_at <= $1 \
                     RETURNING kid, alg, state",
                )
                .bind(now.0)
                .fetch_all(&mut *tx)
                .await?;
                let mut removed = Vec::with_capacity(rows.len());
                for row in &rows {
                    let kid: String = row.try_get("kid")?;
                    let alg: String = row.try_get("alg")?;
                    let state: String = row.try_get("state")?;
                    let record = AuditRecord {
                        seq: 0,
                        at: now,
                        kind: AuditKind::KEY_REMOVED,
                        subject: None,
                        session_id: None,
                        client_id: None,
                        device: Device::default(),
                        detail: serde_json::json!({ "kid": kid, "alg": alg, "state": state }),
                    };
                    insert_audit(&mut *tx, &record).await?;
                    removed.push(kid);
                }
                tx.commit().await?;
                if !removed.is_empty() {
                    self.changed();
                }
                removed.sort();
                Ok(removed)
            }

            async fn ended_status_indices_q(&self, from: StatusIndex, to: StatusIndex) -> Result<Vec<StatusIndex>, StoreError> {
                let rows = sqlx::query(
                    "SELECT status_idx FROM sessions \
                     WHERE status_idx >= $1 AND status_idx < $2 AND revoked_at IS NOT NULL \
                     ORDER BY status_idx",
                )
                .bind(crate::model::status_index_to_db(from)?)
                .bind(crate::model::status_index_to_db(to)?)
                .fetch_all(self.read())
                .await?;
                rows.iter()
                    .map(|row| crate::model::status_index(row.try_get::<i64, _>(0)?))
                    .collect()
            }

            async fn max_status_index_q(&self) -> Result<Option<StatusIndex>, StoreError> {
                sqlx::query("SELECT MAX(status_idx) FROM sessions")
                    .fetch_one(self.read())
                    .await?
                    .try_get::<Option<i64>, _>(0)?
                    .map(crate::model::status_index)
                    .transpose()
            }

            async fn prune_revocations_q(&self, now: Timestamp) -> Result<u64, StoreError> {
                // The newest event always stays, so `seq` (the feed position) never
                // goes backwards for a follower even when everything is pruned.
                let done = sqlx::query(
                    "DELETE FROM revocations WHERE until < $1 \
                     AND seq < (SELECT MAX(seq) FROM revocations)",
                )
                .bind(now.0)
                .execute(self.write())
                .await?;
                Ok(done.rows_affected())
            }

            async fn change_marks_q(&self) -> Result<ChangeMarks, StoreError> {
                read_marks(self.read()).await
            }

            async fn secret_or_insert_q(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(value)
                .execute(&mut *tx)
                .await?;
                let stored: Vec<u8> = sqlx::query("SELECT value FROM secrets WHERE name = $1")
                    .bind(name)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("value")?;
                tx.commit().await?;
                Ok(stored)
            }
        }
    };
}

pub(crate) use key_queries;
