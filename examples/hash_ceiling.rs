//! The hashing ceiling for `bench/run`: argon2id with Tessera's default
//! parameters, hashed in a tight loop on N threads (each reusing its own
//! memory blocks), with no server around it. Prints one JSON object:
//!
//! ```text
//! cargo run --release --example hash_ceiling -- --seconds 5 --threads 2
//! {"hashes":548,"hashes_per_second":109.6,...,"seconds":5.0,"threads":2}
//! ```

use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use clap::Parser;
use tessera::config::Argon2Config;

#[derive(Parser)]
#[command(about = "Raw argon2id hashes per second with Tessera's default parameters")]
struct Args {
    /// How long to hash for.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Hashing threads; the number of cores when absent.
    #[arg(long)]
    threads: Option<usize>,
}

/// The parameters Tessera hashes with, floored the way the server floors them.
fn tessera_params() -> anyhow::Result<Params> {
    let config = Argon2Config::default();
    Params::new(
        config.memory_kib.max(19_456),
        config.iterations.max(2),
        config.parallelism.max(1),
        None,
    )
    .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))
}

/// Hashes until `deadline`; returns how many hashes were completed.
fn hash_until(params: Params, deadline: Instant, worker: usize) -> anyhow::Result<u64> {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut blocks = vec![Block::default(); params.block_count()];
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let salt = *b"tessera-bench-salt";
    let mut done: u64 = 0;
    while Instant::now() < deadline {
        let password = format!("correct-horse-battery-{worker}-{done}");
        argon
            .hash_password_into_with_memory(password.as_bytes(), &salt, &mut output, &mut blocks)
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
        done += 1;
    }
    Ok(done)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.seconds.is_finite() && args.seconds > 0.0,
        "--seconds must be positive"
    );
    let threads = args
        .threads
        .unwrap_or_else(|| thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let params = tessera_params()?;

    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.seconds);
    let workers: Vec<_> = (0..threads)
        .map(|worker| {
            let params = params.clone();
            thread::spawn(move || hash_until(params, deadline, worker))
        })
        .collect();
    let mut hashes: u64 = 0;
    for worker in workers {
        hashes += worker
            .join()
            .map_err(|_| anyhow::anyhow!("a hashing thread panicked"))?
            .context("hashing thread")?;
    }
    // The last hashes end after the deadline: divide by the real time taken.
    let elapsed = start.elapsed().as_secs_f64();

    let report = serde_json::json!({
        "hashes_per_second": hashes as f64 / elapsed,
        "hashes": hashes,
        "seconds": elapsed,
        "threads": threads,
        "m_cost_kib": params.m_cost(),
        "t_cost": params.t_cost(),
        "p_cost": params.p_cost(),
    });
    println!("{report}");
    Ok(())
}
