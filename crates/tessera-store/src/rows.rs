//! Rows to records, written once for every backend: `row_decoders!(RowType)`
//! defines the decoding functions for that backend's row type (the column
//! types are the same: TEXT, 64-bit integers, bytes). Bad stored data is
//! `StoreError::Corrupt`, never a panic.

macro_rules! row_decoders {
    ($row:ty) => {
        fn session_from_row(row: &$row) -> Result<Session, StoreError> {
            let id: String = row.try_get("id")?;
            let revoked_reason = match row.try_get::<Option<String>, _>("revoked_reason")? {
                None => None,
                Some(text) => Some(EndReason::parse(&text).ok_or_else(|| {
                    StoreError::Corrupt(format!("session {id}: unknown end reason {text:?}").into())
                })?),
            };
            let client_id: String = row.try_get("client_id")?;
            Ok(Session {
                subject: row.try_get("subject")?,
                // Rows from before migration 0004 that found no opening record.
                opened_by: row
                    .try_get::<Option<String>, _>("opened_by")?
                    .unwrap_or_else(|| client_id.clone()),
                client_id,
                scope: row.try_get("scope")?,
                audience: from_json(row, "audience", "session")?,
                claims: from_json(row, "claims", "session")?,
                auth_time: row
                    .try_get::<Option<i64>, _>("auth_time")?
                    .map(NumericDate::from_unix),
                acr: row.try_get("acr")?,
                amr: from_json(row, "amr", "session")?,
                token_format: {
                    let text: String = row.try_get("token_format")?;
                    TokenFormat::parse(&text).ok_or_else(|| {
                        StoreError::Corrupt(
                            format!("session {id}: unknown token format {text:?}").into(),
                        )
                    })?
                },
                dpop_jkt: row.try_get("dpop_jkt")?,
                device: device_from_row(row)?,
                generation: crate::model::generation(row.try_get("generation")?)?,
                created_at: Timestamp(row.try_get("created_at")?),
                last_used_at: Timestamp(row.try_get("last_used_at")?),
                rotated_at: Timestamp(row.try_get("rotated_at")?),
                idle_expires_at: Timestamp(row.try_get("idle_expires_at")?),
                absolute_expires_at: Timestamp(row.try_get("absolute_expires_at")?),
                revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(Timestamp),
                revoked_reason,
                status_idx: row
                    .try_get::<Option<i64>, _>("status_idx")?
                    .map(crate::model::status_index)
                    .transpose()?,
                id,
            })
        }

        fn key_from_row(row: &$row) -> Result<StoredKey, StoreError> {
            let kid: String = row.try_get("kid")?;
            let alg: String = row.try_get("alg")?;
            let alg = Algorithm::from_name(&alg).ok_or_else(|| {
                StoreError::Corrupt(format!("key {kid}: unknown algorithm {alg:?}").into())
            })?;
            let state: String = row.try_get("state")?;
            let state = KeyState::parse(&state).ok_or_else(|| {
                StoreError::Corrupt(format!("key {kid}: unknown state {state:?}").into())
            })?;
            Ok(StoredKey {
                kid,
                alg,
                state,
                public: row.try_get("public_key")?,
                sealed_secret: row.try_get("sealed_secret")?,
                created_at: Timestamp(row.try_get("created_at")?),
                activates_at: Timestamp(row.try_get("activates_at")?),
                retired_at: row.try_get::<Option<i64>, _>("retired_at")?.map(Timestamp),
                expires_at: row.try_get::<Option<i64>, _>("expires_at")?.map(Timestamp),
            })
        }

        fn client_from_row(row: &$row) -> Result<Client, StoreError> {
            let id: String = row.try_get("id")?;
            let kind: String = row.try_get("kind")?;
            let kind = match kind.as_str() {
                "confidential" => ClientKind::Confidential,
                "public" => ClientKind::Public,
                _ => {
                    return Err(StoreError::Corrupt(
                        format!("client {id}: unknown kind {kind:?}").into(),
                    ));
                }
            };
            let allowed: Vec<String> = from_json(row, "allowed", "client")?;
            let allowed = allowed
                .iter()
                .map(|word| {
                    Permission::parse(word).ok_or_else(|| {
                        StoreError::Corrupt(
                            format!("client {id}: unknown permission {word:?}").into(),
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
            let created_at = Timestamp(row.try_get("created_at")?);
            Ok(Client {
                name: row.try_get("name")?,
                kind,
                secret_hash: row.try_get("secret_hash")?,
                previous_secret_hash: row.try_get("previous_secret_hash")?,
                previous_secret_expires_at: row
                    .try_get::<Option<i64>, _>("previous_secret_expires_at")?
                    .map(Timestamp),
                allowed,
                scopes: from_json(row, "scopes", "client")?,
                audiences: from_json(row, "audiences", "client")?,
                sessions_for: from_json(row, "sessions_for", "client")?,
                policy: from_json(row, "policy", "client")?,
                created_at,
                updated_at: row
                    .try_get::<Option<i64>, _>("updated_at")?
                    .map_or(created_at, Timestamp),
                disabled_at: row.try_get::<Option<i64>, _>("disabled_at")?.map(Timestamp),
                id,
            })
        }

        fn event_kind(text: String) -> Result<EventKind, StoreError> {
            EventKind::parse(&text).ok_or_else(|| {
                StoreError::Corrupt(format!("unknown revocation kind {text:?}").into())
            })
        }

        fn audit_from_row(row: &$row) -> Result<AuditRecord, StoreError> {
            Ok(AuditRecord {
                seq: row.try_get("seq")?,
                at: Timestamp(row.try_get("at")?),
                kind: AuditKind::from(row.try_get::<String, _>("kind")?),
                subject: row.try_get("subject")?,
                session_id: row.try_get("session_id")?,
                client_id: row.try_get("client_id")?,
                device: device_from_row(row)?,
                detail: from_json(row, "detail", "audit record")?,
            })
        }

        fn device_from_row(row: &$row) -> Result<Device, StoreError> {
            Ok(Device {
                ip: row.try_get("device_ip")?,
                user_agent: row.try_get("device_user_agent")?,
                label: row.try_get("device_label")?,
            })
        }

        const fn client_kind_str(kind: ClientKind) -> &'static str {
            match kind {
                ClientKind::Confidential => "confidential",
                ClientKind::Public => "public",
            }
        }

        fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
            serde_json::to_string(value)
                .map_err(|e| StoreError::Corrupt(format!("cannot encode JSON: {e}").into()))
        }

        fn from_json<T: serde::de::DeserializeOwned>(
            row: &$row,
            column: &str,
            what: &str,
        ) -> Result<T, StoreError> {
            let text: String = row.try_get(column)?;
            serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("{what} column {column}: {e}").into()))
        }
    };
}

pub(crate) use row_decoders;
