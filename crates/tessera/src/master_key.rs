//! The master key that seals private keys and server secrets at rest: from
//! the `master_key` setting, or else `data_dir/master.key`, generated once
//! (mode 0600) with a loud warning. Its value is never logged.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use tessera_core::MasterKey;

use crate::config::Config;

/// The configured master key, or the one in `data_dir/master.key`
/// (created on first use).
pub fn load(config: &mut Config) -> anyhow::Result<MasterKey> {
    if let Some(key) = config.master_key.take() {
        if let Some(path) = &config.master_key_file
            && readable_by_others(path)
        {
            if !config.allow_readable_master_key {
                bail!(
                    "{} (TESSERA_MASTER_KEY_FILE): the master key is readable by other users; \
                     `chmod 600` it (or start with --allow-readable-master-key, which is unsafe)",
                    path.display()
                );
            }
            tracing::warn!(path = %path.display(), "UNSAFE: the master key file is readable by others (--allow-readable-master-key); chmod 600 it");
        }
        return Ok(key);
    }
    let path = config.master_key_path();
    match read(&path, config.allow_readable_master_key)? {
        Some(key) => Ok(key),
        // Instances sharing a PostgreSQL store share its sealed keys: a key
        // generated here would open none of the others'.
        None if config.store_url.starts_with("postgres") => anyhow::bail!(
            "master_key: with a PostgreSQL store every instance needs the same master key; \
             set TESSERA_MASTER_KEY (32 bytes of base64url) from your secret manager"
        ),
        None => create(&path),
    }
}

fn read(path: &Path, allow_readable: bool) -> anyhow::Result<Option<MasterKey>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => zeroize::Zeroizing::new(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if readable_by_others(path) {
        if !allow_readable {
            bail!(
                "{}: the master key is readable by other users; `chmod 600` it \
                 (or start with --allow-readable-master-key, which is unsafe)",
                path.display()
            );
        }
        tracing::warn!(path = %path.display(), "UNSAFE: the master key file is readable by others (--allow-readable-master-key); chmod 600 it");
    }
    MasterKey::from_base64(&text)
        .map(Some)
        .map_err(|_| anyhow::anyhow!("{}: not 32 bytes of base64url", path.display()))
}

fn create(path: &Path) -> anyhow::Result<MasterKey> {
    let dir = path.parent().unwrap_or(Path::new("."));
    crate::serve::private_data_dir(dir)?;
    let key = MasterKey::generate().context("generating a master key")?;
    // Write a private temporary file, then link it into place: the link fails
    // if another process got there first, and nobody ever reads a half-written key.
    let tmp = dir.join(format!(".master.key.{}", std::process::id()));
    let written = write_private(&tmp, key.to_base64().as_bytes());
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::warn!(
                path = %path.display(),
                "GENERATED A NEW MASTER KEY: production should supply its own \
                 (TESSERA_MASTER_KEY or master_key, 32 bytes of base64url) from a \
                 secret manager; losing this file makes every stored private key unreadable"
            );
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match read(path, false)? {
            Some(key) => Ok(key),
            None => bail!("{} vanished while being created", path.display()),
        },
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

/// `tessera master-key generate [--out FILE]`: a fresh master key, as
/// `TESSERA_MASTER_KEY` (or `master_key`, or a `TESSERA_MASTER_KEY_FILE`)
/// takes it. To stdout, or into a new file with mode 0600 (never over an
/// existing one).
pub fn generate(out: Option<&Path>) -> anyhow::Result<()> {
    let key = MasterKey::generate().context("generating a master key")?;
    let text = key.to_base64();
    match out {
        None => {
            println!("{}", &*text);
            eprintln!(
                "note: store this in your secret manager; losing it makes every sealed key unreadable"
            );
        }
        Some(path) => {
            write_private(path, text.as_bytes()).with_context(|| {
                format!(
                    "--out {}: cannot create it (it must not exist yet)",
                    path.display()
                )
            })?;
            eprintln!(
                "wrote a new master key to {} (mode 0600); point TESSERA_MASTER_KEY_FILE at it",
                path.display()
            );
        }
    }
    Ok(())
}

#[cfg(unix)]
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(not(unix))]
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(unix)]
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o077 != 0)
}

#[cfg(not(unix))]
fn readable_by_others(_path: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn config(dir: &Path) -> Config {
        let env = BTreeMap::from([("TESSERA_DATA_DIR".to_owned(), dir.display().to_string())]);
        Config::load(None, &env).expect("config")
    }

    #[test]
    fn generated_once_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("tessera-mk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = load(&mut config(&dir)).expect("create");
        let path = dir.join("master.key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = load(&mut config(&dir)).expect("reuse");
        let sealed = first.seal("n", b"x").expect("seal");
        assert!(
            second.open("n", &sealed).is_ok(),
            "same key on the second start"
        );
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn a_key_readable_by_others_is_refused_unless_allowed() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("tessera-mk-open-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        load(&mut config(&dir)).expect("create");
        let path = dir.join("master.key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = load(&mut config(&dir)).expect_err("refused");
        assert!(err.to_string().contains("readable by other users"), "{err}");
        let mut allowed = config(&dir);
        allowed.allow_readable_master_key = true;
        load(&mut allowed).expect("explicitly allowed");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
