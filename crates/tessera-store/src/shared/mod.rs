//! What both backends do the same way, written once: the `Store` methods
//! whose SQL is portable, and the audit/revocation inserts they share.
//! `impl_store!(Type, Database, { backend-specific methods })` emits the
//! whole `impl Store`; the backend supplies `read()`, `write()`,
//! `begin_write()`, `changed()`, `rotations` (the refresh
//! compare-and-swap's group commit, with the backend's batch statement), the row decoders (`rows.rs`), and the statements whose SQL
//! differs: `INSERT_SESSION`, `INSERT_KEY_UNLESS_STATE` and
//! `INSERT_REVOCATION` (same parameters on both).
//!
//! It is one macro because `async_trait` needs every `Store` method in one
//! `impl` block and the two backends differ only in their pool types and a
//! few statements. The bodies that need not sit in that block live beside
//! it: `keys.rs` (signing keys, status indices, housekeeping: the
//! `*_q` methods) and `helpers.rs` (audit and revocation inserts, opening a
//! session inside a transaction).

pub(crate) mod helpers;
pub(crate) mod keys;

macro_rules! impl_store {
    ($ty:ty, $db:ident, { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl Store for $ty {
            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(self.read()).await?;
                Ok(())
            }

            async fn insert_client(&self, client: &Client, record: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO clients (id, name, kind, secret_hash, previous_secret_hash, \
                         previous_secret_expires_at, allowed, scopes, audiences, sessions_for, policy, \
                         created_at, updated_at, disabled_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(&client.id)
                .bind(&client.name)
                .bind(client_kind_str(client.kind))
                .bind(&client.secret_hash)
                .bind(&client.previous_secret_hash)
                .bind(client.previous_secret_expires_at.map(|t| t.0))
                .bind(permissions_json(&client.allowed)?)
                .bind(to_json(&client.scopes)?)
                .bind(to_json(&client.audiences)?)
                .bind(to_json(&client.sessions_for)?)
                .bind(to_json(&client.policy)?)
                .bind(client.created_at.0)
                .bind(client.updated_at.0)
                .bind(client.disabled_at.map(|t| t.0))
                .execute(&mut *tx)
                .await?;
                insert_audit(&mut *tx, record).await?;
                tx.commit().await?;
                self.changed();
                Ok(())
            }

            async fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
                let row = sqlx::query("SELECT * FROM clients WHERE id = $1")
                    .bind(id)
                    .fetch_optional(self.read())
                    .await?;
                row.as_ref().map(client_from_row).transpose()
            }

            async fn clients(&self) -> Result<Vec<Client>, StoreError> {
                let rows = sqlx::query("SELECT * FROM clients ORDER BY created_at, id")
                    .fetch_all(self.read())
                    .await?;
                rows.iter().map(client_from_row).collect()
            }

            async fn update_client(
                &self,
                client: &Client,
                expected: Timestamp,
                record: &AuditRecord,
            ) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(
                    "UPDATE clients SET name = $1, secret_hash = $2, previous_secret_hash = $3, \
                         previous_secret_expires_at = $4, allowed = $5, scopes = $6, audiences = $7, \
                         sessions_for = $8, policy = $9, updated_at = $10, disabled_at = $11 \
                     WHERE id = $12 AND updated_at = $13",
                )
                .bind(&client.name)
                .bind(&client.secret_hash)
                .bind(&client.previous_secret_hash)
                .bind(client.previous_secret_expires_at.map(|t| t.0))
                .bind(permissions_json(&client.allowed)?)
                .bind(to_json(&client.scopes)?)
                .bind(to_json(&client.audiences)?)
                .bind(to_json(&client.sessions_for)?)
                .bind(to_json(&client.policy)?)
                .bind(client.updated_at.0)
                .bind(client.disabled_at.map(|t| t.0))
                .bind(&client.id)
                .bind(expected.0)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                insert_audit(&mut *tx, record).await?;
                tx.commit().await?;
                self.changed();
                Ok(true)
            }

            async fn delete_client(&self, id: &str, record: &AuditRecord) -> Result<ClientDeleted, StoreError> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query("DELETE FROM clients WHERE id = $1 AND disabled_at IS NOT NULL")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    let exists = sqlx::query("SELECT 1 FROM clients WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .is_some();
                    tx.rollback().await?;
                    return Ok(if exists { ClientDeleted::NotDisabled } else { ClientDeleted::NotFound });
                }
                insert_audit(&mut *tx, record).await?;
                tx.commit().await?;
                self.changed();
                Ok(ClientDeleted::Deleted)
            }

            async fn end_client_sessions(
                &self,
                client_id: &str,
                now: Timestamp,
                until: Timestamp,
                template: &AuditRecord,
            ) -> Result<Vec<String>, StoreError> {
                let mut tx = self.begin_write().await?;
                let rows = sqlx::query(
                    "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
                     WHERE (client_id = $3 OR opened_by = $3) AND revoked_at IS NULL \
                       AND idle_expires_at > $1 AND absolute_expires_at > $1 \
                     RETURNING id, subject",
                )
                .bind(now.0)
                .bind(EndReason::Revoked.as_str())
                .bind(client_id)
                .fetch_all(&mut *tx)
                .await?;
                let ended = ended_rows(&rows)?;
                for (id, subject) in &ended {
                    let record = AuditRecord {
                        subject: Some(subject.clone()),
                        session_id: Some(id.clone()),
                        ..template.clone()
                    };
                    insert_audit(&mut *tx, &record).await?;
                    insert_revocation(&mut *tx, EventKind::Session, id, now, until).await?;
                }
                tx.commit().await?;
                self.changed();
                Ok(ended.into_iter().map(|(id, _)| id).collect())
            }

            async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
                let row = sqlx::query("SELECT * FROM sessions WHERE id = $1")
                    .bind(id)
                    .fetch_optional(self.read())
                    .await?;
                row.as_ref().map(session_from_row).transpose()
            }

            async fn live_sessions(
                &self,
                subject: &str,
                now: Timestamp,
                opened_by: Option<&str>,
            ) -> Result<Vec<Session>, StoreError> {
                let rows = match opened_by {
                    None => sqlx::query(
                        "SELECT * FROM sessions \
                         WHERE subject = $1 AND revoked_at IS NULL AND idle_expires_at > $2 AND absolute_expires_at > $2 \
                         ORDER BY created_at DESC, id DESC",
                    )
                    .bind(subject)
                    .bind(now.0)
                    .fetch_all(self.read())
                    .await?,
                    Some(owner) => sqlx::query(
                        "SELECT * FROM sessions \
                         WHERE subject = $1 AND revoked_at IS NULL AND idle_expires_at > $2 AND absolute_expires_at > $2 \
                           AND opened_by = $3 \
                         ORDER BY created_at DESC, id DESC",
                    )
                    .bind(subject)
                    .bind(now.0)
                    .bind(owner)
                    .fetch_all(self.read())
                    .await?,
                };
                rows.iter().map(session_from_row).collect()
            }

            async fn touch(&self, id: &str, now: Timestamp) -> Result<(), StoreError> {
                // Never moves `last_used_at` backwards past a concurrent rotation.
                let done = sqlx::query(
                    "UPDATE sessions SET last_used_at = CASE WHEN last_used_at < $1 THEN $1 ELSE last_used_at END \
                     WHERE id = $2",
                )
                .bind(now.0)
                .bind(id)
                .execute(self.write())
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn end_session(
                &self,
                id: &str,
                reason: EndReason,
                now: Timestamp,
                until: Timestamp,
                record: &AuditRecord,
            ) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(
                    "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL",
                )
                .bind(now.0)
                .bind(reason.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                insert_audit(&mut *tx, record).await?;
                insert_revocation(&mut *tx, EventKind::Session, id, now, until).await?;
                tx.commit().await?;
                self.changed();
                Ok(true)
            }

            async fn end_subject(
                &self,
                subject: &str,
                now: Timestamp,
                until: Timestamp,
                template: &AuditRecord,
                opened_by: Option<&str>,
            ) -> Result<Vec<String>, StoreError> {
                let mut tx = self.begin_write().await?;
                let rows = match opened_by {
                    None => sqlx::query(
                        "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
                         WHERE subject = $3 AND revoked_at IS NULL AND idle_expires_at > $1 AND absolute_expires_at > $1 \
                         RETURNING id, subject",
                    )
                    .bind(now.0)
                    .bind(EndReason::Revoked.as_str())
                    .bind(subject)
                    .fetch_all(&mut *tx)
                    .await?,
                    Some(owner) => sqlx::query(
                        "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
                         WHERE subject = $3 AND opened_by = $4 AND revoked_at IS NULL \
                           AND idle_expires_at > $1 AND absolute_expires_at > $1 \
                         RETURNING id, subject",
                    )
                    .bind(now.0)
                    .bind(EndReason::Revoked.as_str())
                    .bind(subject)
                    .bind(owner)
                    .fetch_all(&mut *tx)
                    .await?,
                };
                let ended = ended_rows(&rows)?;
                for (id, _) in &ended {
                    let record = AuditRecord {
                        session_id: Some(id.clone()),
                        ..template.clone()
                    };
                    insert_audit(&mut *tx, &record).await?;
                    if opened_by.is_some() {
                        insert_revocation(&mut *tx, EventKind::Session, id, now, until).await?;
                    }
                }
                if opened_by.is_none() {
                    insert_revocation(&mut *tx, EventKind::Subject, subject, now, until).await?;
                }
                tx.commit().await?;
                self.changed();
                Ok(ended.into_iter().map(|(id, _)| id).collect())
            }

            async fn elevate(
                &self,
                id: &str,
                auth_time: NumericDate,
                acr: Option<&str>,
                amr: &[String],
                now: Timestamp,
                record: &AuditRecord,
            ) -> Result<Option<Session>, StoreError> {
                let mut tx = self.begin_write().await?;
                let row = sqlx::query(
                    "UPDATE sessions SET auth_time = $1, acr = $2, amr = $3 \
                     WHERE id = $4 AND revoked_at IS NULL AND idle_expires_at > $5 AND absolute_expires_at > $5 \
                     RETURNING *",
                )
                .bind(auth_time.unix())
                .bind(acr)
                .bind(to_json(amr)?)
                .bind(id)
                .bind(now.0)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                let session = session_from_row(&row)?;
                insert_audit(&mut *tx, record).await?;
                tx.commit().await?;
                Ok(Some(session))
            }

            async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
                insert_audit(self.write(), record).await
            }

            async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
                let limit = i64::from(match filter.limit {
                    0 => AUDIT_DEFAULT_LIMIT,
                    n => n.min(AUDIT_MAX_LIMIT),
                });
                // The statement is put together from fixed fragments only (every
                // value is a bound parameter), one shape per filter so each can
                // use its index.
                let mut sql = String::from("SELECT * FROM audit WHERE seq > $1");
                let mut n = 1;
                let mut clause = |fragment: &str| {
                    n += 1;
                    sql.push_str(&fragment.replace('?', &format!("${n}")));
                };
                if filter.subject.is_some() {
                    clause(" AND subject = ?");
                }
                if filter.session_id.is_some() {
                    clause(" AND session_id = ?");
                }
                if filter.opened_by.is_some() {
                    clause(" AND session_id IN (SELECT id FROM sessions WHERE opened_by = ?)");
                }
                if filter.client_id.is_some() {
                    clause(" AND client_id = ?");
                }
                if filter.kind.is_some() {
                    clause(" AND kind = ?");
                }
                if filter.since.is_some() {
                    clause(" AND at >= ?");
                }
                if filter.until.is_some() {
                    clause(" AND at < ?");
                }
                clause(" ORDER BY seq LIMIT ?");
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(filter.after.unwrap_or(0));
                for value in [
                    &filter.subject,
                    &filter.session_id,
                    &filter.opened_by,
                    &filter.client_id,
                    &filter.kind,
                ]
                .into_iter()
                .flatten()
                {
                    query = query.bind(value.as_str());
                }
                for at in [filter.since, filter.until].into_iter().flatten() {
                    query = query.bind(at.0);
                }
                let rows = query.bind(limit).fetch_all(self.read()).await?;
                rows.iter().map(audit_from_row).collect()
            }

            async fn revocations_after(
                &self,
                after: i64,
                limit: u32,
            ) -> Result<Vec<RevocationEvent>, StoreError> {
                let rows = sqlx::query("SELECT * FROM revocations WHERE seq > $1 ORDER BY seq LIMIT $2")
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(self.read())
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(RevocationEvent {
                            seq: row.try_get("seq")?,
                            kind: event_kind(row.try_get("kind")?)?,
                            id: row.try_get("id")?,
                            at: Timestamp(row.try_get("at")?),
                            until: Timestamp(row.try_get("until")?),
                        })
                    })
                    .collect()
            }

            async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
                self.insert_key_q(key).await
            }

            async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
                self.keys_q().await
            }

            async fn activate_key(
                &self,
                kid: &str,
                now: Timestamp,
                retire_until: Timestamp,
                record: &AuditRecord,
            ) -> Result<bool, StoreError> {
                self.activate_key_q(kid, now, retire_until, record).await
            }

            async fn revoke_key(
                &self,
                kid: &str,
                now: Timestamp,
                until: Timestamp,
                record: &AuditRecord,
            ) -> Result<KeyRevoked, StoreError> {
                self.revoke_key_q(kid, now, until, record).await
            }

            async fn remove_expired_keys(&self, now: Timestamp) -> Result<Vec<String>, StoreError> {
                self.remove_expired_keys_q(now).await
            }

            async fn ended_status_indices(&self, from: StatusIndex, to: StatusIndex) -> Result<Vec<StatusIndex>, StoreError> {
                self.ended_status_indices_q(from, to).await
            }

            async fn max_status_index(&self) -> Result<Option<StatusIndex>, StoreError> {
                self.max_status_index_q().await
            }

            async fn prune_revocations(&self, now: Timestamp) -> Result<u64, StoreError> {
                self.prune_revocations_q(now).await
            }

            async fn remember_proof(
                &self,
                id: &str,
                now: Timestamp,
                expires_at: Timestamp,
            ) -> Result<bool, StoreError> {
                // An expired record of the same id may be taken over; a live one
                // makes the upsert change nothing.
                let done = sqlx::query(
                    "INSERT INTO dpop_proofs (id, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at \
                     WHERE dpop_proofs.expires_at <= $3",
                )
                .bind(id)
                .bind(expires_at.0)
                .bind(now.0)
                .execute(self.write())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn is_remembered(&self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
                let row = sqlx::query("SELECT 1 FROM dpop_proofs WHERE id = $1 AND expires_at > $2")
                    .bind(id)
                    .bind(now.0)
                    .fetch_optional(self.read())
                    .await?;
                Ok(row.is_some())
            }

            async fn prune_proofs(&self, now: Timestamp) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM dpop_proofs WHERE expires_at <= $1")
                    .bind(now.0)
                    .execute(self.write())
                    .await?;
                Ok(done.rows_affected())
            }

            async fn change_marks(&self) -> Result<ChangeMarks, StoreError> {
                self.change_marks_q().await
            }

            fn changes(&self) -> tokio::sync::watch::Receiver<ChangeMarks> {
                self.watcher.marks.subscribe()
            }

            async fn secret_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
                self.secret_or_insert_q(name, value).await
            }

        async fn rotate(
            &self,
            id: &str,
            client_id: &str,
            expected: Generation,
            now: Timestamp,
            idle_expires_at: Timestamp,
            proof: ProofKey<'_>,
            refreshed: &AuditRecord,
        ) -> Result<RotateOutcome, StoreError> {
            // The CAS goes through the backend's group commit: batched with
            // the rotations that arrive together, answered once durable.
            let rotation = crate::group_commit::Rotation::new(
                id,
                client_id,
                expected.to_db()?,
                now,
                idle_expires_at,
                proof,
                refreshed,
                to_json(&refreshed.detail)?,
            );
            if let Some(session) = self.rotations.rotate(rotation).await? {
                return Ok(RotateOutcome::Rotated(session));
            }
            // Lost the CAS (or no such session): report the session as it is.
            let current = sqlx::query("SELECT * FROM sessions WHERE id = $1")
                .bind(id)
                .fetch_optional(self.read())
                .await?;
            match current {
                Some(row) => Ok(RotateOutcome::Stale(session_from_row(&row)?)),
                None => Ok(RotateOutcome::NotFound),
            }
        }

        async fn insert_key_unless_state(&self, key: &StoredKey) -> Result<bool, StoreError> {
            let done = bind_key(sqlx::query(INSERT_KEY_UNLESS_STATE), key)
                .execute(self.write())
                .await?;
            let stored = done.rows_affected() == 1;
            if stored {
                self.changed();
            }
            Ok(stored)
        }

            $($own)*
        }

        $crate::shared::helpers::shared_helpers!($db);
        $crate::shared::keys::key_queries!($ty, $db);
    };
}

pub(crate) use impl_store;
