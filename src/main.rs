//! The `tessera` binary: `serve` (the default), `migrate`, `users …`.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tessera::clock::SystemClock;
use tessera::Config;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Self-hosted authentication service"
)]
struct Cli {
    /// A TOML configuration file; TESSERA_* environment variables override it.
    #[arg(long, global = true, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server, applying pending migrations first (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Manage the JWT signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Start signing with a new key now. Running nodes pick it up within a
    /// minute (at once on PostgreSQL); the old keys keep verifying until the
    /// tokens they signed have expired.
    Rotate,
    /// List the keys in the JWKS, newest first.
    List,
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create a verified user (with its own tenant), reading the password from stdin.
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from standard input (required: never pass it as an argument).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Make the user a global administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Import users from JSON lines with their existing password hashes
    /// (argon2, bcrypt, SHA-256 hex); they are re-hashed at first login.
    Import {
        /// The JSONL file; `-` reads standard input.
        file: PathBuf,
    },
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref()).context("reading configuration")?;
    // Flushes buffered spans when main returns.
    let _telemetry = tessera::telemetry::init(config.log_format)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let listen = config.listen;
            let mailer = tessera::mail::from_config(&config)?;
            let core = tessera::open(config, Arc::new(SystemClock)).await?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            tracing::info!(address = %listener.local_addr()?, "tessera listening");
            tessera::serve(listener, core, mailer, shutdown_signal()).await
        }
        Command::Migrate => {
            let store = tessera::store::connect_with(
                &config.database_url,
                1,
                std::time::Duration::from_millis(config.database_timeout_ms),
            )
            .await?;
            store.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Keys { command } => {
            let core = tessera::open(config, Arc::new(SystemClock)).await?;
            match command {
                KeysCommand::Rotate => {
                    let kid = core.rotate_keys().await?;
                    println!("new signing key {kid}");
                }
                KeysCommand::List => {
                    let mut keys = core.store.signing_keys().await?;
                    keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
                    for key in keys {
                        println!(
                            "{} {} {}",
                            key.kid,
                            key.algorithm,
                            key.created_at.to_rfc3339()
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Users { command } => match command {
            UsersCommand::Import { file } => {
                let text = if file.as_os_str() == "-" {
                    let mut text = String::new();
                    std::io::stdin().read_to_string(&mut text)?;
                    text
                } else {
                    std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?
                };
                let core = tessera::open(config, Arc::new(SystemClock)).await?;
                let report = core.import_users(&text).await;
                for (line, reason) in &report.bad {
                    eprintln!("line {line}: {reason}");
                }
                println!(
                    "imported {}, skipped {} (already present), bad {}",
                    report.imported,
                    report.skipped,
                    report.bad.len()
                );
                if report.bad.is_empty() {
                    Ok(())
                } else {
                    std::process::exit(2)
                }
            }
            UsersCommand::Create {
                email,
                password_stdin: _,
                admin,
            } => {
                let mut password = String::new();
                std::io::stdin()
                    .read_to_string(&mut password)
                    .context("reading the password")?;
                let password = password.trim_end_matches(['\r', '\n']);
                let core = tessera::open(config, Arc::new(SystemClock)).await?;
                match core.create_user_cli(&email, password, admin).await {
                    Ok(user) => {
                        println!(
                            "created user {} <{}>{}",
                            user.id,
                            user.email,
                            if admin { " (admin)" } else { "" }
                        );
                        Ok(())
                    }
                    Err(err) => {
                        let detail = err
                            .fields
                            .map(|f| {
                                f.iter()
                                    .map(|(k, v)| format!(" {k} {v}."))
                                    .collect::<String>()
                            })
                            .unwrap_or_default();
                        anyhow::bail!("{}{detail}", err.message)
                    }
                }
            }
        },
    }
}
