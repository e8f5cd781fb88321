//! Store failures, sorted by what the caller can do about them.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness or foreign-key constraint: the thing exists already / refers to nothing.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The record does not exist.
    #[error("not found")]
    NotFound,
    /// The database cannot be reached or is busy: retry later (HTTP 503).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Transient contention (a transaction that could not be serialised,
    /// still so after bounded retries): retry later (HTTP 503).
    #[error("store busy: {0}")]
    Busy(String),
    /// Stored data that cannot be read back (a bug or manual tampering).
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("40001" | "40P01")) =>
            {
                StoreError::Busy(db.message().to_owned())
            }
            sqlx::Error::Database(db) => match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation
                | sqlx::error::ErrorKind::ForeignKeyViolation => {
                    StoreError::Conflict(db.message().to_owned())
                }
                _ => StoreError::Unavailable(e.to_string()),
            },
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(e.to_string()),
            _ => StoreError::Unavailable(e.to_string()),
        }
    }
}
