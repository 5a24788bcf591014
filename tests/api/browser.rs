//! The hosted pages in a real browser: `tests/browser/flows.mjs` drives
//! Debian's Chromium with Playwright through sign-up, verification, sign
//! out and in (with the keyboard alone), recovery, two-step verification,
//! tokens and an invitation, on a desktop and a phone-sized screen, and
//! saves a screenshot of every page in `tests/browser/artifacts/`.
//!
//! Needs Node.js and Chromium (`apt-get install -y chromium`, which
//! `.ci/run` does); `TESSERA_SKIP_BROWSER_TESTS=1` skips it on a machine
//! without a browser.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::fresh_database;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

#[tokio::test]
async fn the_hosted_pages_work_in_a_real_browser() {
    if std::env::var("TESSERA_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("skipped: TESSERA_SKIP_BROWSER_TESTS=1");
        return;
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "no browser at {chromium}: install Debian's Chromium (apt-get install -y chromium), \
         point CHROMIUM at one, or set TESSERA_SKIP_BROWSER_TESTS=1"
    );
    if !browser_dir().join("node_modules/playwright-core").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(browser_dir())
            .status()
            .expect("npm runs");
        assert!(status.success(), "npm ci in tests/browser failed");
    }
    let (_dir, database) = fresh_database().await;
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(browser_dir().join("flows.mjs"))
            .env("TESSERA_BIN", env!("CARGO_BIN_EXE_tessera"))
            .env("TESSERA_DATABASE_URL", database)
            .env("CHROMIUM", chromium)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser flows failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("every flow passed"), "{stdout}");
}
