//! The `plateau` binary: parse the command line, run the subcommand, set the exit status.
//! Each command family's flags and its `run_*` functions live in `plateau::cli`.

use std::process::ExitCode;

use clap::Parser;

use plateau::cli::{self, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Agent(_)) {
        // Die quietly when stdout is a closed pipe (`plateau sample | head`), as other
        // command-line tools do. Sockets are not affected (Rust sends with
        // MSG_NOSIGNAL); the agent keeps the default of ignoring SIGPIPE.
        // SAFETY: setting a signal disposition to its default has no preconditions.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    // librdkafka's own lines (its statistics, each failed connection, "all brokers down")
    // only when asked for (PLATEAU_LOG=info,librdkafka=debug,rdkafka=debug): plateau says
    // what failed in one line of its own.
    let filter = tracing_subscriber::EnvFilter::try_from_env("PLATEAU_LOG")
        .unwrap_or_else(|_| "info,rdkafka=off,librdkafka=off".into());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .init();
    let result = match cli.command {
        Command::Agent(args) => cli::host::run_agent(args),
        Command::Disk(args) => cli::host::run_disk(args),
        Command::Sample(args) => cli::host::run_sample(args),
        Command::Net(args) => cli::net::run_net(args),
        Command::Produce(args) => cli::kafka::run_produce(*args),
        Command::Consume(args) => cli::kafka::run_consume(*args),
        Command::Rules(args) => return cli::model::run_rules(args),
        Command::Model(args) => cli::model::run_model(args),
        Command::Init(args) => cli::diagnose::run_init(*args),
        Command::Diagnose(args) => cli::diagnose::run_diagnose(*args),
        Command::Sweep(args) => cli::diagnose::run_sweep(*args),
        Command::Report(args) => cli::diagnose::run_report(args),
        Command::Controller(args) => cli::controller::run_controller(args),
        Command::Export(args) => cli::controller::run_export(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(cli::exit_status(&err))
        }
    }
}
