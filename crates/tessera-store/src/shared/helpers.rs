//! The free functions both backends' `Store` methods call: audit and
//! revocation inserts, row helpers, and opening a session inside a
//! transaction. Emitted into each backend's module by [`impl_store!`].

macro_rules! shared_helpers {
    ($db:ident) => {

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
            .bind(r.kind.as_str())
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
            kind: EventKind,
            id: &str,
            at: Timestamp,
            until: Timestamp,
        ) -> Result<(), StoreError>
        where
            E: Executor<'c, Database = $db>,
        {
            sqlx::query(INSERT_REVOCATION)
                .bind(kind.as_str())
                .bind(id)
                .bind(at.0)
                .bind(until.0)
                .execute(db)
                .await?;
            Ok(())
        }

        /// The change marks as stored now.
        async fn read_marks(pool: &sqlx::Pool<$db>) -> Result<ChangeMarks, StoreError> {
            let row = sqlx::query(
                "SELECT (SELECT COALESCE(MAX(seq), 0) FROM revocations) AS revocations, \
                        (SELECT value FROM change_marks WHERE name = 'keys') AS keys, \
                        (SELECT value FROM change_marks WHERE name = 'clients') AS clients",
            )
            .fetch_one(pool)
            .await?;
            // A mark that was never moved has no row yet: it stands at 0.
            Ok(ChangeMarks {
                revocations: row.try_get("revocations")?,
                keys: row.try_get::<Option<i64>, _>("keys")?.unwrap_or_default(),
                clients: row.try_get::<Option<i64>, _>("clients")?.unwrap_or_default(),
            })
        }

        fn migrate_error(e: sqlx::migrate::MigrateError) -> StoreError {
            use sqlx::migrate::MigrateError;
            match e {
                MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => StoreError::from(e),
                // The recorded schema history does not match this build (a newer
                // Tessera wrote it, or a migration was edited): not worth retrying.
                other => StoreError::Corrupt(format!("schema migrations: {other}").into()),
            }
        }

        /// Inserts the session (`INSERT_SESSION`, whose status index each
        /// backend draws its own way) and answers its status index.
        async fn insert_session<'c, E>(db: E, s: &Session) -> Result<StatusIndex, StoreError>
        where
            E: Executor<'c, Database = $db>,
        {
            let row = sqlx::query(INSERT_SESSION)
                .bind(&s.id)
                .bind(&s.subject)
                .bind(&s.client_id)
                .bind(&s.opened_by)
                .bind(&s.scope)
                .bind(to_json(&s.audience)?)
                .bind(to_json(&s.claims)?)
                .bind(s.auth_time.map(NumericDate::unix))
                .bind(&s.acr)
                .bind(to_json(&s.amr)?)
                .bind(s.token_format.as_str())
                .bind(&s.dpop_jkt)
                .bind(&s.device.ip)
                .bind(&s.device.user_agent)
                .bind(&s.device.label)
                .bind(s.generation.to_db()?)
                .bind(s.created_at.0)
                .bind(s.last_used_at.0)
                .bind(s.rotated_at.0)
                .bind(s.idle_expires_at.0)
                .bind(s.absolute_expires_at.0)
                .bind(s.revoked_at.map(|t| t.0))
                .bind(s.revoked_reason.map(EndReason::as_str))
                .fetch_one(db)
                .await?;
            crate::model::status_index(row.try_get("status_idx")?)
        }

        /// Binds a key's nine columns in table order (`kid` .. `expires_at`).
        fn bind_key<'q>(
            query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
            key: &'q StoredKey,
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments> {
            query
                .bind(&key.kid)
                .bind(key.alg.as_str())
                .bind(key.state.as_str())
                .bind(&key.public)
                .bind(&key.sealed_secret)
                .bind(key.created_at.0)
                .bind(key.activates_at.0)
                .bind(key.retired_at.map(|t| t.0))
                .bind(key.expires_at.map(|t| t.0))
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
                            kind: EndReason::Evicted.audit_kind(),
                            subject: Some(session.subject.clone()),
                            session_id: Some(id.clone()),
                            client_id: opened.client_id.clone(),
                            device: opened.device.clone(),
                            detail: serde_json::json!({ "evicted_by": session.id }),
                        };
                        insert_audit(&mut *tx, &record).await?;
                        insert_revocation(&mut *tx, EventKind::Session, &id, now, evict_until).await?;
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

pub(crate) use shared_helpers;
