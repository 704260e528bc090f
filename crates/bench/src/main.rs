//! `bench`: brings the platform up on a private Redis and Azurite (through the
//! end-to-end harness, crate `e2e`), drives it with `wrk` and a fixed-rate
//! load generator in separate processes on loopback, and prints the figures
//! of `docs/BENCHMARKS.md`. Every run is bounded in time and request count.
//!
//! `bench [--quick] [--runs N] [--only api,pipeline,latency,native,size] [--out DIR]`
//! `bench loadgen --url URL --rate R --duration S [...]` (spawned by the bench).

mod delay_proxy;
mod loadgen;
mod procfs;
mod redis_stats;
mod report;
mod scenarios;
mod stats;
mod wrk;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "bench",
    about = "Benchmarks of the job platform on local Redis and Azurite (docs/BENCHMARKS.md)",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Open-loop fixed-rate HTTP load (prints one JSON object).
    Loadgen(loadgen::LoadgenArgs),
}

/// Options of a bench run.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Smoke run: one run, short phases (under 2 minutes).
    #[arg(long)]
    pub quick: bool,
    /// Repetitions; figures are the median with min and max.
    #[arg(long, env = "BENCH_RUNS", default_value_t = 3)]
    pub runs: u32,
    /// Sections to run (comma-separated): api, pipeline, latency, native, size.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "api,pipeline,latency,native,size"
    )]
    pub only: Vec<String>,
    /// Where results.json and results.md go.
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Cmd::Loadgen(args)) => match loadgen::run(&args) {
            Ok(result) => {
                println!(
                    "{}",
                    serde_json::to_string(&result).expect("serializable result")
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("loadgen: {e}");
                ExitCode::FAILURE
            }
        },
        None => {
            let mut args = cli.run;
            if args.quick {
                args.runs = 1;
            }
            match scenarios::bench(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Output of a short command, trimmed; empty if it fails.
pub fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
