//! The `kvs` command line: `kvs serve` runs the server; `get`, `put`, `del`, `ls`, `watch` and
//! `shell` talk to one; `bench` measures one. Exit status: 0 success, 1 no such key, 2 bad usage, 3 server
//! unreachable or refusing.

mod bench;
mod client;
mod serve;
mod shell;
mod watch;

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
    Serve(Box<serve::ServeArgs>),
    /// Print a key's value (exactly its bytes). Exit 1 if the key does not exist.
    Get(client::GetArgs),
    /// Store a value from an argument, --file or standard input.
    Put(client::PutArgs),
    /// Delete a key. Exit 1 if it did not exist.
    Del(client::DelArgs),
    /// Set a key's time to live (seconds, or 500ms, 10m, 1h30m), or remove it with --persist,
    /// keeping the value; any type. Exit 1 if the key does not exist.
    Expire(client::ExpireArgs),
    /// List keys by prefix, one per line, in byte order.
    Ls(client::LsArgs),
    /// Print changes to keys under a prefix as they happen; reconnects and resumes by itself.
    /// Exit 4 if the changes to resume from are gone (list again, then watch).
    Watch(watch::WatchArgs),
    /// An interactive Redis-protocol shell with history and line editing.
    Shell(shell::ShellArgs),
    /// Measure a running server: throughput, errors and latency percentiles over RESP, HTTP or
    /// the line protocol.
    Bench(bench::BenchArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Commands::Serve(args) => serve::run(*args),
        Commands::Get(args) => return client::get(args),
        Commands::Put(args) => return client::put(args),
        Commands::Del(args) => return client::del(args),
        Commands::Expire(args) => return client::expire(args),
        Commands::Ls(args) => return client::ls(args),
        Commands::Watch(args) => return watch::run(args),
        Commands::Shell(args) => return shell::run(args),
        Commands::Bench(args) => return bench::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kvs: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
