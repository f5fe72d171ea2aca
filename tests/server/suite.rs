//! The test runner itself (tests/support/runner.rs): a test that hangs
//! fails with its name after the runner's time, and the run ends.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// Set in the environment of the inner run, where the test hangs.
const HANG_ENV: &str = "P2PSHARE_TEST_HANG";

/// Runs this same test again with a time of 1 s, where it hangs: the run
/// must end soon after, naming it as failed.
fn a_hung_test_fails_with_its_name() {
    if std::env::var_os(HANG_ENV).is_some() {
        loop {
            std::thread::park();
        }
    }
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let this_test = format!("{module}::a_hung_test_fails_with_its_name");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &this_test])
        .env(HANG_ENV, "1")
        .env("P2PSHARE_TEST_TIMEOUT", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ended = wait_until(Duration::from_secs(60), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !ended {
        // Only the child this test started, by its own handle.
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(ended, "the hung test was never given up: {text}");
    assert_eq!(out.status.code(), Some(101), "{text}");
    assert!(
        text.contains(&format!("test {this_test} ... FAILED (no end after 1 s)")),
        "{text}"
    );
    assert!(
        text.contains("failures:") && text.contains(&format!("    {this_test}")),
        "{text}"
    );
}

cases![a_hung_test_fails_with_its_name];
