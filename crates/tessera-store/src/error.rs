//! Store failures, sorted by what the caller can do about them.

use std::fmt;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness or foreign-key constraint: the thing exists already / refers to nothing.
    #[error("conflict: {0}")]
    Conflict(#[source] Cause),
    /// The record does not exist.
    #[error("not found")]
    NotFound,
    /// The database cannot be reached or is busy: retry later (HTTP 503).
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// Transient contention (a transaction that could not be serialised,
    /// still so after bounded retries): retry later (HTTP 503).
    #[error("store busy: {0}")]
    Busy(#[source] Cause),
    /// Stored data that cannot be read back (a bug or manual tampering).
    #[error("corrupt record: {0}")]
    Corrupt(#[source] Cause),
}

/// What went wrong, and the error underneath when there is one (the
/// database driver's), kept as the `source` of the chain.
#[derive(Debug)]
pub struct Cause {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Cause {
    /// `message`, caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Cause {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let source: &(dyn std::error::Error + Send + Sync + 'static) = self.source.as_deref()?;
        Some(source)
    }
}

impl From<String> for Cause {
    fn from(message: String) -> Self {
        Cause {
            message,
            source: None,
        }
    }
}

impl From<&str> for Cause {
    fn from(message: &str) -> Self {
        Cause::from(message.to_owned())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let message = match &e {
            sqlx::Error::Database(db) => db.message().to_owned(),
            other => other.to_string(),
        };
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("40001" | "40P01")) =>
            {
                StoreError::Busy(Cause::with_source(message, e))
            }
            sqlx::Error::Database(db)
                if matches!(
                    db.kind(),
                    sqlx::error::ErrorKind::UniqueViolation
                        | sqlx::error::ErrorKind::ForeignKeyViolation
                ) =>
            {
                StoreError::Conflict(Cause::with_source(message, e))
            }
            sqlx::Error::Database(_) => {
                StoreError::Unavailable(Cause::with_source(e.to_string(), e))
            }
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::TypeNotFound { .. } => {
                StoreError::Corrupt(Cause::with_source(message, e))
            }
            _ => StoreError::Unavailable(Cause::with_source(message, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_driver_error_stays_the_source() {
        let err = StoreError::from(sqlx::Error::PoolTimedOut);
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        let cause = std::error::Error::source(&err).expect("a cause");
        assert!(
            std::error::Error::source(cause).is_some(),
            "the sqlx error is kept under the message"
        );
        assert!(err.to_string().starts_with("store unavailable: "), "{err}");
    }
}
