//! `cargo xtask`: Tessera's project tasks (the alias is in
//! `.cargo/config.toml`). Standard library only, so it builds in seconds on
//! a machine that has nothing but the Rust toolchain.
//!
//! ```text
//! cargo xtask test [ARGS]      set up what the suite needs, then `cargo test ARGS`
//! cargo xtask setup            the set-up alone
//! cargo xtask help
//! ```
//!
//! The set-up is the one `.ci/run` used to do inline, step for step and
//! with the same commands; each step runs only when it is needed, and
//! announces itself with a `== ` line when it does.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::thread::sleep;
use std::time::{Duration, SystemTime};

const HELP: &str = "\
cargo xtask: Tessera's project tasks

USAGE:
    cargo xtask test [ARGS]      set up what the test suite needs, then run
                                 `cargo test ARGS` and exit with its status
    cargo xtask setup            the set-up alone
    cargo xtask help             this text

SET-UP (each step only when needed):
    PostgreSQL   when TESSERA_TEST_DATABASE_URL names a server on
                 127.0.0.1:5432 (or localhost) that does not answer, the
                 local clusters in /etc/postgresql are started
    Redis        started on 127.0.0.1:6379 when it does not answer (the
                 PostgreSQL cluster tests share a rate limit in it); on
                 PostgreSQL, Debian's redis-server is installed from apt-get
                 first when it is missing
    Node.js      Debian's nodejs and npm, from apt-get, when node or npm is
                 missing
    tests/oidc   npm ci: the OpenID Connect provider of the social-login tests
    Chromium     Debian's, from apt-get, when /usr/bin/chromium is missing
                 and CHROMIUM names no other
    tests/browser
                 npm ci: Playwright, which drives Chromium
    apt-get runs through sudo when this is not root; without apt-get, or
    when it fails, the step stops with what to install by hand

ENVIRONMENT:
    TESSERA_SKIP_BROWSER_TESTS=1   no browser test: Chromium and
                                   tests/browser are left alone
    TESSERA_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres
                                   the suite on PostgreSQL instead of SQLite
    CHROMIUM=/path/to/chromium     another browser for the browser test

EXAMPLES:
    cargo xtask test
    cargo xtask test -- login                  only tests whose names contain `login`
    cargo xtask test -- --test api -- --nocapture
";

/// Where `.ci/run` started Redis's log, kept for the same reason: one place
/// to look when it does not come up.
const REDIS_LOG: &str = "/tmp/redis-ci.log";
/// Debian's Chromium, where the browser test looks unless CHROMIUM says
/// otherwise.
const DEBIAN_CHROMIUM: &str = "/usr/bin/chromium";

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let mut args = env::args_os().skip(1);
    let command = args.next();
    let rest: Vec<OsString> = args.collect();
    let outcome = match command.as_ref().and_then(|c| c.to_str()) {
        Some("test") => test(rest),
        Some("setup") if rest.is_empty() => setup().map(|()| ExitCode::SUCCESS),
        Some("setup") => Err("`cargo xtask setup` takes no arguments".into()),
        Some("help" | "-h" | "--help") => {
            print!("{HELP}");
            Ok(ExitCode::SUCCESS)
        }
        Some(other) => Err(format!(
            "unknown command `{other}`; `cargo xtask help` lists them"
        )),
        None if command.is_some() => Err("the command is not valid UTF-8".into()),
        None => {
            eprint!("{HELP}");
            Ok(ExitCode::from(2))
        }
    };
    match outcome {
        Ok(code) => code,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root, whatever directory `cargo xtask` was run from.
fn root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}

/// `cargo xtask test [ARGS]`: the set-up, then `cargo test ARGS` in its
/// place, the arguments as they are (`cargo xtask test -- --include-ignored`
/// is `cargo test -- --include-ignored`); its exit status is this command's.
fn test(args: Vec<OsString>) -> Result<ExitCode> {
    setup()?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.arg("test").args(&args).current_dir(root());
    // `cargo run` describes the xtask package to it in these; the suite's
    // cargo should see the environment the user's shell had.
    for (name, _) in env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(
                name,
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
            )
        {
            command.env_remove(name);
        }
    }
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    announce(format!("cargo test {}", shown.join(" ")).trim_end());
    run_in_place(command)
}

#[cfg(unix)]
fn run_in_place(mut command: Command) -> Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    // Only returns when cargo could not be started.
    let error = command.exec();
    Err(format!("could not run cargo: {error}"))
}

#[cfg(not(unix))]
fn run_in_place(mut command: Command) -> Result<ExitCode> {
    let status = command
        .status()
        .map_err(|e| format!("could not run cargo: {e}"))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// Everything the suite needs beyond the Rust toolchain, in `.ci/run`'s
/// order.
fn setup() -> Result {
    env::set_current_dir(root()).map_err(|e| format!("cannot enter {}: {e}", root().display()))?;
    let database = env::var("TESSERA_TEST_DATABASE_URL").ok();
    // The browser test's own condition (tests/api/browser.rs).
    let skip_browser = env::var("TESSERA_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1");

    if let Some(url) = &database {
        postgres(url)?;
    }
    redis(database.is_some())?;
    node()?;
    npm_ci("tests/oidc")?;
    if !skip_browser {
        chromium()?;
        npm_ci("tests/browser")?;
    }
    Ok(())
}

// ---- PostgreSQL -------------------------------------------------------------

/// PostgreSQL runs as a machine service; start the local clusters when the
/// test server is this machine's and it is down.
fn postgres(url: &str) -> Result {
    if !is_local_default_server(url) {
        // A server elsewhere, or on another port, is its owner's to start.
        return Ok(());
    }
    if !on_path("pg_isready") {
        return Err(
            "TESSERA_TEST_DATABASE_URL is set but pg_isready is missing: install \
             PostgreSQL (apt-get install -y postgresql)"
                .into(),
        );
    }
    if postgres_ready() {
        return Ok(());
    }
    let mut versions: Vec<String> = fs::read_dir("/etc/postgresql")
        .map(|dir| {
            dir.filter_map(|entry| entry.ok())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    if versions.is_empty() {
        return Err(
            "PostgreSQL does not answer on 127.0.0.1:5432 and there is no cluster in \
             /etc/postgresql to start (apt-get install -y postgresql, or point \
             TESSERA_TEST_DATABASE_URL at a running server)"
                .into(),
        );
    }
    if !on_path("pg_ctlcluster") {
        return Err(
            "PostgreSQL does not answer on 127.0.0.1:5432 and pg_ctlcluster, which \
             starts it, is missing (apt-get install -y postgresql-common)"
                .into(),
        );
    }
    announce("start PostgreSQL");
    let sudo = privileged("starting PostgreSQL")?;
    for version in &versions {
        // As in .ci/run: a cluster that will not start is not fatal here;
        // whether the server then answers is.
        let _ = as_root(sudo, "pg_ctlcluster")
            .args(["--skip-systemctl-redirect", version, "main", "start"])
            .status();
    }
    if wait_for(postgres_ready) {
        Ok(())
    } else {
        Err(
            "PostgreSQL still does not answer on 127.0.0.1:5432 after 30 s \
             (pg_ctlcluster ... main start did not bring it up)"
                .into(),
        )
    }
}

fn postgres_ready() -> bool {
    succeeds(Command::new("pg_isready").args(["-h", "127.0.0.1", "-p", "5432", "-q"]))
}

/// Whether a `postgres://` URL names this machine's server on the default
/// port, the one `pg_isready -h 127.0.0.1 -p 5432` checks and the local
/// clusters serve.
fn is_local_default_server(url: &str) -> bool {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((host, rest)) => (host, rest.strip_prefix(':').unwrap_or_default()),
            None => (bracketed, ""),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, port),
            None => (host_port, ""),
        }
    };
    let local = matches!(
        host.to_ascii_lowercase().as_str(),
        "" | "localhost" | "127.0.0.1" | "::1"
    );
    local && (port.is_empty() || port == "5432")
}

// ---- Redis ------------------------------------------------------------------

/// Redis backs the shared rate limits in the multi-node tests (on
/// PostgreSQL only; on SQLite nothing uses it).
fn redis(needed: bool) -> Result {
    if redis_up() {
        return Ok(());
    }
    if !on_path("redis-server") {
        if !needed {
            note(
                "Redis does not answer on 127.0.0.1:6379 and redis-server is missing \
                 (apt-get install -y redis-server); only the tests on PostgreSQL use \
                 it, skipped",
            );
            return Ok(());
        }
        apt_install(
            &["redis-server"],
            "Redis does not answer on 127.0.0.1:6379 and redis-server, which the \
             cluster tests on PostgreSQL need, is missing",
            "install Redis yourself, or start it on 127.0.0.1:6379",
        )?;
        if !on_path("redis-server") {
            return Err(
                "apt-get installed redis-server, yet there is still no redis-server \
                 on PATH: install Redis yourself, or start it on 127.0.0.1:6379"
                    .into(),
            );
        }
        // Its package may have started the service already.
        if redis_up() {
            return Ok(());
        }
    }
    announce("start Redis");
    // As in .ci/run: whether it then answers is what counts.
    let _ = Command::new("redis-server")
        .args([
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            "6379",
        ])
        .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
        .args(["--logfile", REDIS_LOG])
        .status();
    if wait_for(redis_up) {
        return Ok(());
    }
    let message =
        format!("Redis still does not answer on 127.0.0.1:6379 after 30 s (see {REDIS_LOG})");
    if needed {
        return Err(message);
    }
    note(&format!(
        "{message}; only the tests on PostgreSQL use it, going on"
    ));
    Ok(())
}

/// `redis-cli ping` as `.ci/run` asks; without redis-cli, whether anything
/// listens on the port.
fn redis_up() -> bool {
    if on_path("redis-cli") {
        return succeeds(Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", "6379", "ping"]));
    }
    let address = SocketAddr::from(([127, 0, 0, 1], 6379));
    TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok()
}

// ---- Node.js packages -------------------------------------------------------

/// The suite runs Node.js programs (the OpenID Connect provider, the
/// browser flows), installed with npm; Debian's, when either is missing.
fn node() -> Result {
    if on_path("node") && on_path("npm") {
        return Ok(());
    }
    apt_install(
        &["nodejs", "npm"],
        "node or npm is missing (the tests run Node.js programs, installed with npm)",
        "install Node.js and npm yourself",
    )?;
    if on_path("node") && on_path("npm") {
        Ok(())
    } else {
        Err(
            "apt-get installed nodejs and npm, yet node or npm is still not on PATH: \
             install Node.js and npm yourself"
                .into(),
        )
    }
}

/// `npm ci` in `dir`, unless its `node_modules` was installed from the
/// current lock file (npm's own record of it, `node_modules/.package-lock.json`,
/// is newer than `package.json` and `package-lock.json`).
fn npm_ci(dir: &str) -> Result {
    let dir_path = Path::new(dir);
    let installed = modified(&dir_path.join("node_modules/.package-lock.json"));
    let wanted = [
        modified(&dir_path.join("package.json")),
        modified(&dir_path.join("package-lock.json")),
    ];
    if installed.is_some_and(|at| wanted.iter().all(|w| w.is_some_and(|w| w <= at))) {
        return Ok(());
    }
    if !on_path("npm") {
        return Err(format!(
            "npm is missing, and {dir} needs its packages: install Node.js and npm \
             (apt-get install -y nodejs npm)"
        ));
    }
    announce(&format!("npm ci ({dir})"));
    let ok = succeeds(
        Command::new("npm")
            .args(["ci", "--prefix", dir, "--no-audit", "--no-fund", "--silent"])
            .stdin(Stdio::null()),
    );
    if ok {
        Ok(())
    } else {
        Err(format!("npm ci --prefix {dir} failed"))
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

// ---- Chromium ---------------------------------------------------------------

/// The hosted pages are tested in Debian's Chromium, driven by Playwright.
fn chromium() -> Result {
    if let Some(other) = env::var_os("CHROMIUM") {
        return if Path::new(&other).exists() {
            Ok(())
        } else {
            Err(format!(
                "CHROMIUM={} does not exist: point it at a browser, unset it to use \
                 Debian's ({DEBIAN_CHROMIUM}), or set TESSERA_SKIP_BROWSER_TESTS=1",
                other.to_string_lossy()
            ))
        };
    }
    if is_executable(Path::new(DEBIAN_CHROMIUM)) {
        return Ok(());
    }
    apt_install(
        &["chromium"],
        &format!("there is no browser at {DEBIAN_CHROMIUM}"),
        "install Chromium yourself and set CHROMIUM=/path/to/chromium, or set \
         TESSERA_SKIP_BROWSER_TESTS=1",
    )?;
    if is_executable(Path::new(DEBIAN_CHROMIUM)) {
        Ok(())
    } else {
        Err(format!(
            "apt-get installed chromium, yet {DEBIAN_CHROMIUM} is still missing: \
             install Chromium yourself and set CHROMIUM=/path/to/chromium, or set \
             TESSERA_SKIP_BROWSER_TESTS=1"
        ))
    }
}

// ---- Debian packages --------------------------------------------------------

/// Installs Debian's `packages` with apt-get (through sudo when not root),
/// as `.ci/run` installed Chromium. `missing` says why, and `otherwise` what
/// the user can do instead, for the errors: no apt-get, no way to be root,
/// or an install that fails.
fn apt_install(packages: &[&str], missing: &str, otherwise: &str) -> Result {
    let list = packages.join(" ");
    if !on_path("apt-get") {
        return Err(format!(
            "{missing}, and apt-get, which would install Debian's {list}, is missing: \
             {otherwise}"
        ));
    }
    let sudo = privileged(&format!("installing {list} with apt-get"))
        .map_err(|e| format!("{missing}; {e}"))?;
    announce(&format!("apt-get install {list}"));
    let install = |quiet: bool| {
        let mut command = as_root(sudo, "apt-get");
        command
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages)
            .stdout(Stdio::null());
        if quiet {
            command.stderr(Stdio::null());
        }
        command.status().is_ok_and(|s| s.success())
    };
    // As in .ci/run: first from the package lists there are, quietly, then
    // again after fetching them (a fresh machine has none), with apt-get's
    // errors shown.
    let update = || {
        as_root(sudo, "apt-get")
            .args(["update", "-qq"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if install(true) {
        return Ok(());
    }
    if !update() {
        return Err(format!(
            "{missing}, and `apt-get install -y --no-install-recommends {list}` \
             failed, and so did `apt-get update -qq` before trying again: {otherwise}"
        ));
    }
    if install(false) {
        Ok(())
    } else {
        Err(format!(
            "{missing}, and `apt-get install -y --no-install-recommends {list}` \
             failed, after `apt-get update -qq` as well: {otherwise}"
        ))
    }
}

// ---- helpers ----------------------------------------------------------------

fn announce(step: &str) {
    println!("== {step}");
}

fn note(message: &str) {
    eprintln!("xtask: note: {message}");
}

/// Runs a command for its exit status alone; one that cannot start fails.
fn succeeds(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Waits up to 30 seconds, checking once a second, as `.ci/run` does.
fn wait_for(ready: fn() -> bool) -> bool {
    for _ in 0..30 {
        if ready() {
            return true;
        }
        sleep(Duration::from_secs(1));
    }
    ready()
}

/// Whether `program` is an executable file in a directory of PATH.
fn on_path(program: &str) -> bool {
    env::var_os("PATH")
        .is_some_and(|path| env::split_paths(&path).any(|dir| is_executable(&dir.join(program))))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// `Some("sudo")` when this process is not root and sudo is there to ask;
/// `None` when it is root; an error naming what needs root otherwise.
fn privileged(what: &str) -> Result<Option<&'static str>> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|uid| uid.trim().to_owned());
    if uid.as_deref() == Some("0") {
        Ok(None)
    } else if on_path("sudo") {
        Ok(Some("sudo"))
    } else {
        Err(format!(
            "{what} needs root, and this is not root and has no sudo: run \
             `cargo xtask setup` as root, or do that step by hand"
        ))
    }
}

/// `program`, run through sudo when `sudo` says so.
fn as_root(sudo: Option<&str>, program: &str) -> Command {
    match sudo {
        Some(sudo) => {
            let mut command = Command::new(sudo);
            command.arg(program);
            command
        }
        None => Command::new(program),
    }
}
