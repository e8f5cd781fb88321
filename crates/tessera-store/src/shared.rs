//! What both backends do the same way, written once: the `Store` methods
//! whose SQL is portable, and the audit/revocation inserts they share.
//! `impl_store!(Type, Database, { backend-specific methods })` emits the
//! whole `impl Store`; the backend supplies `read()`, `write()`,
//! `begin_write()`, `changed()`, the row decoders (`rows.rs`), and the
//! statements whose SQL differs: `ROTATE`, `INSERT_KEY_UNLESS_STATE` and
//! `INSERT_REVOCATION` (same parameters on both).

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
                    insert_revocation(&mut *tx, "session", id, now, until).await?;
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
                insert_revocation(&mut *tx, "session", id, now, until).await?;
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
                        insert_revocation(&mut *tx, "session", id, now, until).await?;
                    }
                }
                if opened_by.is_none() {
                    insert_revocation(&mut *tx, "subject", subject, now, until).await?;
                }
                tx.commit().await?;
                self.changed();
                Ok(ended.into_iter().map(|(id, _)| id).collect())
            }

            async fn elevate(
                &self,
                id: &str,
                auth_time: i64,
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
                .bind(auth_time)
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
                clause(" ORDER BY seq LIMIT ?");
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(filter.after.unwrap_or(0));
                for value in [&filter.subject, &filter.session_id, &filter.opened_by]
                    .into_iter()
                    .flatten()
                {
                    query = query.bind(value.as_str());
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
                            kind: row.try_get("kind")?,
                            id: row.try_get("id")?,
                            at: Timestamp(row.try_get("at")?),
                            until: Timestamp(row.try_get("until")?),
                        })
                    })
                    .collect()
            }

            async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO signing_keys \
                         (kid, alg, state, public_key, sealed_secret, created_at, activates_at, retired_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&key.kid)
                .bind(&key.alg)
                .bind(&key.state)
                .bind(&key.public)
                .bind(&key.sealed_secret)
                .bind(key.created_at.0)
                .bind(key.activates_at.0)
                .bind(key.retired_at.map(|t| t.0))
                .bind(key.expires_at.map(|t| t.0))
                .execute(self.write())
                .await?;
                self.changed();
                Ok(())
            }

            async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
                let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid")
                    .fetch_all(self.read())
                    .await?;
                rows.iter().map(key_from_row).collect()
            }

            async fn activate_key(
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

            async fn revoke_key(
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
                if before.state == "revoked" {
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
                insert_revocation(&mut *tx, "key", kid, now, until).await?;
                tx.commit().await?;
                self.changed();
                Ok(KeyRevoked::Revoked(before))
            }

            async fn remove_expired_keys(&self, now: Timestamp) -> Result<Vec<String>, StoreError> {
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
                        kind: "key.removed".to_owned(),
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

            async fn ended_status_indices(&self, from: i64, to: i64) -> Result<Vec<i64>, StoreError> {
                let rows = sqlx::query(
                    "SELECT status_idx FROM sessions \
                     WHERE status_idx >= $1 AND status_idx < $2 AND revoked_at IS NOT NULL \
                     ORDER BY status_idx",
                )
                .bind(from)
                .bind(to)
                .fetch_all(self.read())
                .await?;
                rows.iter()
                    .map(|row| row.try_get::<i64, _>(0).map_err(StoreError::from))
                    .collect()
            }

            async fn max_status_index(&self) -> Result<Option<i64>, StoreError> {
                Ok(sqlx::query("SELECT MAX(status_idx) FROM sessions")
                    .fetch_one(self.read())
                    .await?
                    .try_get(0)?)
            }

            async fn prune_revocations(&self, now: Timestamp) -> Result<u64, StoreError> {
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

            async fn change_marks(&self) -> Result<ChangeMarks, StoreError> {
                read_marks(self.read()).await
            }

            fn changes(&self) -> tokio::sync::watch::Receiver<ChangeMarks> {
                self.watcher.marks.subscribe()
            }

            async fn secret_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
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

        async fn rotate(
            &self,
            id: &str,
            client_id: &str,
            expected: i64,
            now: Timestamp,
            idle_expires_at: Timestamp,
            refreshed: &AuditRecord,
        ) -> Result<RotateOutcome, StoreError> {
            let won = sqlx::query(ROTATE)
            .bind(now.0)
            .bind(idle_expires_at.0)
            .bind(id)
            .bind(client_id)
            .bind(expected)
            .bind(refreshed.at.0)
            .bind(&refreshed.kind)
            .bind(&refreshed.subject)
            .bind(&refreshed.client_id)
            .bind(&refreshed.device.ip)
            .bind(&refreshed.device.user_agent)
            .bind(&refreshed.device.label)
            .bind(to_json(&refreshed.detail)?)
            .fetch_optional(self.write())
            .await?;
            if let Some(row) = won {
                return Ok(RotateOutcome::Rotated(session_from_row(&row)?));
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
            let done = sqlx::query(INSERT_KEY_UNLESS_STATE)
            .bind(&key.kid)
            .bind(&key.alg)
            .bind(&key.state)
            .bind(&key.public)
            .bind(&key.sealed_secret)
            .bind(key.created_at.0)
            .bind(key.activates_at.0)
            .bind(key.retired_at.map(|t| t.0))
            .bind(key.expires_at.map(|t| t.0))
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

        async fn insert_audit<'c, E>(db: E, r: &AuditRecord) -> Result<(), StoreError>
        where
            E: Executor<'c, Database = $db>,
        {
            sqlx::query(
                "INSERT INTO audit (at, kind, subject, session_id, client_id, device_ip, device_user_agent, device_label, \
                     detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(r.at.0)
            .bind(&r.kind)
            .bind(&r.subject)
            .bind(&r.session_id)
            .bind(&r.client_id)
            .bind(&r.device.ip)
            .bind(&r.device.user_agent)
            .bind(&r.device.label)
            .bind(to_json(&r.detail)?)
            .execute(db)
            .await?;
            Ok(())
        }

        async fn insert_revocation<'c, E>(
            db: E,
            kind: &str,
            id: &str,
            at: Timestamp,
            until: Timestamp,
        ) -> Result<(), StoreError>
        where
            E: Executor<'c, Database = $db>,
        {
            sqlx::query(INSERT_REVOCATION)
                .bind(kind)
                .bind(id)
                .bind(at.0)
                .bind(until.0)
                .execute(db)
                .await?;
            Ok(())
        }

        /// `(id, subject)` of the sessions an `UPDATE ... RETURNING id, subject`
        /// ended, sorted (RETURNING order is unspecified; events are written
        /// in a stable order).
        fn ended_rows(rows: &[<$db as sqlx::Database>::Row]) -> Result<Vec<(String, String)>, StoreError> {
            let mut ended = rows
                .iter()
                .map(|row| Ok((row.try_get::<String, _>("id")?, row.try_get::<String, _>("subject")?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            ended.sort();
            Ok(ended)
        }

        fn permissions_json(allowed: &[Permission]) -> Result<String, StoreError> {
            let words: Vec<&str> = allowed.iter().map(|p| p.as_str()).collect();
            to_json(&words)
        }

        /// Opens `session` in `tx`: under `limit`, counts the subject's live
        /// sessions at its client opened by the same backend, and refuses or
        /// evicts; inserts the session and its audit
        /// record; commits (or rolls back when refusing).
        async fn open_in(
            mut tx: sqlx::Transaction<'_, $db>,
            session: &NewSession,
            limit: Option<SessionLimit>,
            opened: &AuditRecord,
            evict_until: Timestamp,
        ) -> Result<OpenOutcome, StoreError> {
            let now = session.created_at;
            let mut evicted = Vec::new();

            if let Some(limit) = limit {
                let live: i64 = sqlx::query(
                    "SELECT COUNT(*) FROM sessions \
                     WHERE subject = $1 AND client_id = $3 AND opened_by = $4 AND revoked_at IS NULL \
                       AND idle_expires_at > $2 AND absolute_expires_at > $2",
                )
                .bind(&session.subject)
                .bind(now.0)
                .bind(&session.client_id)
                .bind(&session.opened_by)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
                let max = i64::from(limit.max);
                // With a limit of zero there is never room, whatever the policy.
                if live >= max && (limit.policy == LimitPolicy::Reject || max == 0) {
                    tx.rollback().await?;
                    return Ok(OpenOutcome::LimitReached);
                }
                if live >= max {
                    // Make room for exactly one more: afterwards the subject has `max` live sessions.
                    let rows = sqlx::query(
                        "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE id IN ( \
                             SELECT id FROM sessions \
                             WHERE subject = $3 AND client_id = $5 AND opened_by = $6 AND revoked_at IS NULL \
                               AND idle_expires_at > $1 AND absolute_expires_at > $1 \
                             ORDER BY last_used_at ASC, created_at ASC, id ASC \
                             LIMIT $4) \
                         RETURNING id, subject",
                    )
                    .bind(now.0)
                    .bind(EndReason::Evicted.as_str())
                    .bind(&session.subject)
                    .bind(live - max + 1)
                    .bind(&session.client_id)
                    .bind(&session.opened_by)
                    .fetch_all(&mut *tx)
                    .await?;
                    // Like every other session event, an eviction is remembered
                    // as long as the tokens it covers can live.
                    for (id, _) in ended_rows(&rows)? {
                        let record = AuditRecord {
                            seq: 0,
                            at: opened.at,
                            kind: EndReason::Evicted.audit_kind().to_owned(),
                            subject: Some(session.subject.clone()),
                            session_id: Some(id.clone()),
                            client_id: opened.client_id.clone(),
                            device: opened.device.clone(),
                            detail: serde_json::json!({ "evicted_by": session.id }),
                        };
                        insert_audit(&mut *tx, &record).await?;
                        insert_revocation(&mut *tx, "session", &id, now, evict_until).await?;
                        evicted.push(id);
                    }
                }
            }

            let status_idx = insert_session(&mut *tx, session).await?;
            insert_audit(&mut *tx, opened).await?;
            tx.commit().await?;
            Ok(OpenOutcome::Opened {
                evicted,
                status_idx,
            })
        }
    };
}

pub(crate) use impl_store;
