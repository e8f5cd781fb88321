//! Scratch PostgreSQL databases: each test gets its own, dropped
//! afterwards, so runs never collide. Reads `TESSERA_TEST_DATABASE_URL`;
//! without it a test says it skipped, unless `TESSERA_REQUIRE_POSTGRES=1`
//! (CI sets it), which makes the skip a failure.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection as _;

/// A database created for one test.
#[derive(Debug)]
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    admin_url: String,
    name: String,
}

/// The server URL tests use, or `None` (with a line saying the test
/// skipped) when `TESSERA_TEST_DATABASE_URL` is unset.
pub fn server_url(test: &str) -> Option<String> {
    match std::env::var("TESSERA_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("TESSERA_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "{test}: TESSERA_REQUIRE_POSTGRES=1 but TESSERA_TEST_DATABASE_URL is not set"
            );
            eprintln!(
                "SKIPPED {test}: TESSERA_TEST_DATABASE_URL is not set (PostgreSQL tests need it)"
            );
            None
        }
    }
}

impl TestDatabase {
    /// Creates a fresh, empty database on the server at `admin_url`.
    /// Panics if the server cannot be reached: a configured but
    /// unreachable PostgreSQL is a failure, not a skip.
    pub async fn create(admin_url: &str, test: &str) -> TestDatabase {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nonce = crate::nonce();
        let slug: String = test
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(20)
            .collect::<String>()
            .to_ascii_lowercase();
        let name = format!("tessera_{slug}_{}_{n}_{nonce}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at TESSERA_TEST_DATABASE_URL: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = admin.close().await;
        let base = admin_url.split('?').next().unwrap_or(admin_url);
        let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
        TestDatabase {
            url: format!("{server}/{name}"),
            admin_url: admin_url.to_owned(),
            name,
        }
    }

    /// Drops the database (closing whatever still uses it).
    pub async fn drop_now(mut self) {
        let name = std::mem::take(&mut self.name);
        drop_database(&self.admin_url, &name).await;
    }
}

impl Drop for TestDatabase {
    /// A test that panicked before [`TestDatabase::drop_now`] still leaves
    /// no database behind.
    fn drop(&mut self) {
        if self.name.is_empty() {
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), std::mem::take(&mut self.name));
        let dropping = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(drop_database(&admin_url, &name));
        });
        let _ = dropping.join();
    }
}

async fn drop_database(admin_url: &str, name: &str) {
    if let Ok(mut admin) = sqlx::PgConnection::connect(admin_url).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await;
        let _ = admin.close().await;
    }
}
