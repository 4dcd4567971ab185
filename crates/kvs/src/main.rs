//! The `kvs` command line: `kvs serve` runs the server; client subcommands talk to one.

mod serve;

use clap::{Parser, Subcommand};

/// kvs: a fast, concurrent, networked key-value datastore.
#[derive(Debug, Parser)]
#[command(name = "kvs", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Run the server (HTTP on 127.0.0.1:9000 unless told otherwise).
    Serve(serve::ServeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Commands::Serve(args) => serve::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kvs: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
