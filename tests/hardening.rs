//! Surviving a hostile or unlucky day, black-box against the real binary:
//! files at rest are private, a master key others can read is refused.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use tessera_e2e::server::Server;
use tessera_e2e::{scratch_dir, tessera_bin};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_and_database_are_private() {
    let server = Server::start("hardening-files", &[]).await;
    // The harness made the directory with the default umask (0755): the
    // server tightened it.
    assert_eq!(mode(&server.data_dir), 0o700, "data_dir");
    assert_eq!(mode(&server.data_dir.join("tessera.db")), 0o600, "database");
    let wal = server.data_dir.join("tessera.db-wal");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600, "write-ahead log");
    }
}

#[test]
fn a_master_key_others_can_read_is_refused_unless_explicitly_allowed() {
    let dir = scratch_dir("hardening-mk");
    let key = tessera_core::MasterKey::generate().expect("key");
    let path = dir.join("master.key");
    std::fs::write(&path, key.to_base64().as_bytes()).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let serve = |extra: &[&str]| {
        let mut child = std::process::Command::new(tessera_bin())
            .args(extra)
            .arg("serve")
            .env_clear()
            .env("TESSERA_DATA_DIR", &dir)
            .env("TESSERA_LISTEN", "127.0.0.1:0")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        // Refused at once, or running: give it a moment either way.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                let out = child.wait_with_output().expect("output");
                return (
                    Some(status.code()),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                );
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                return (None, String::from_utf8_lossy(&out.stderr).into_owned());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let (status, stderr) = serve(&[]);
    assert_eq!(status, Some(Some(1)), "refused: {stderr}");
    assert!(stderr.contains("readable by other users"), "{stderr}");
    assert!(!dir.join("tessera.db").exists() || mode(&dir.join("tessera.db")) == 0o600);

    let (status, stderr) = serve(&["--allow-readable-master-key"]);
    assert_eq!(status, None, "runs when explicitly allowed: {stderr}");
    assert!(stderr.contains("UNSAFE"), "and says so: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
