//! The binary's own smoke test (it also makes cargo build `tessera` for the
//! end-to-end suite in `tests/`).

use std::process::Command;

#[test]
fn help_exits_0_and_unknown_commands_exit_2() {
    let bin = env!("CARGO_BIN_EXE_tessera");
    let help = Command::new(bin).arg("--help").output().expect("run");
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("token"));

    let bad = Command::new(bin)
        .arg("no-such-command")
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(2));
    assert!(!bad.stderr.is_empty());
}
