//! The `plateau` binary: parse the command line, run the subcommand, set the exit status.

use std::io::Write;
use std::ops::ControlFlow;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;

use plateau::cancel::Cancel;
use plateau::cli::{
    AgentArgs, Cli, Command, ConsumeArgs, DiagnoseArgs, DiskArgs, ModelArgs, NetArgs, NetCommand, NetCommonArgs,
    NetMatrixArgs, ProduceArgs, ReportArgs, RulesArgs, RulesCommand, SampleArgs,
};
use plateau::net::{self, Protocol};
use plateau::probe::disk::DiskProbe;
use plateau::probe::{ProbeError, ProbeOutput};
use plateau::report::terminal;
use plateau::sampler::{Sampler, run_paced};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Agent(_)) {
        // Die quietly when stdout is a closed pipe (`plateau sample | head`), as other
        // command-line tools do. Sockets are not affected (Rust sends with
        // MSG_NOSIGNAL); the agent keeps the default of ignoring SIGPIPE.
        // SAFETY: setting a signal disposition to its default has no preconditions.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("PLATEAU_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let result = match cli.command {
        Command::Agent(args) => run_agent(args),
        Command::Disk(args) => run_disk(args),
        Command::Net(args) => run_net(args),
        Command::Produce(args) => run_produce(*args),
        Command::Consume(args) => run_consume(*args),
        Command::Rules(args) => return run_rules(args),
        Command::Model(args) => run_model(args),
        Command::Sample(args) => run_sample(args),
        Command::Diagnose(args) => run_diagnose(*args),
        Command::Sweep(args) => run_sweep(*args),
        Command::Report(args) => run_report(args),
        Command::Controller(args) => run_controller(args),
        Command::Export(args) => run_export(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            let usage_error =
                err.downcast_ref::<ProbeError>().is_some_and(|e| matches!(e, ProbeError::InvalidInput(_)))
                    || err.downcast_ref::<net::NetError>().is_some_and(|e| matches!(e, net::NetError::InvalidInput(_)))
                    || err.downcast_ref::<plateau::diagnose::PlanError>().is_some()
                    || err
                        .downcast_ref::<plateau::kafka::consume::ConsumeError>()
                        .is_some_and(|e| matches!(e, plateau::kafka::consume::ConsumeError::InvalidInput(_)));
            ExitCode::from(if usage_error { 2 } else { 1 })
        }
    }
}

fn run_agent(args: AgentArgs) -> anyhow::Result<()> {
    let config = args.into_config()?;
    // One thread for the API is plenty: the sampler and the probes have their own.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen).await.with_context(|| {
            format!("could not listen on {}; pick another address or port with --listen", config.listen)
        })?;
        plateau::agent::serve(config, listener).await
    });
    // Dropping a runtime waits for every blocking task; a probe that ignores its cancel
    // flag must not keep the agent alive after SIGTERM.
    runtime.shutdown_timeout(std::time::Duration::from_millis(300));
    served
}

fn run_disk(args: DiskArgs) -> anyhow::Result<()> {
    let probe = DiskProbe::new(args.config(), DiskProbe::MAX_SIZE)?;
    let result = probe.measure(&Cancel::new())?;
    if args.json {
        println!("{}", serde_json::to_string(&ProbeOutput::Disk(Box::new(result)))?);
    } else {
        print!("{}", terminal::disk_table(&result));
    }
    Ok(())
}

fn run_sample(args: SampleArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let mut sampler = Sampler::new(&config);
    let started = Instant::now();
    let (_keep_open, stop) = std::sync::mpsc::channel();
    let mut failure = None;
    run_paced(config.interval, &stop, || {
        let (sample, problems) = sampler.step();
        for problem in problems {
            tracing::warn!("{problem}");
        }
        if let Some(sample) = sample {
            let text = if args.json {
                serde_json::to_string(&sample).map(|line| line + "\n").map_err(anyhow::Error::from)
            } else {
                Ok(terminal::sample_tables(&sample))
            };
            let mut stdout = std::io::stdout().lock();
            if let Err(err) =
                text.and_then(|text| Ok(stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush())?))
            {
                failure = Some(err);
                return ControlFlow::Break(());
            }
        }
        if started.elapsed() + config.interval / 2 >= args.duration.0 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    failure.map_or(Ok(()), Err)
}

fn run_net(args: NetArgs) -> anyhow::Result<()> {
    match args.command {
        NetCommand::Tcp(args) => run_net_test(&args.common, args.common.config(Protocol::Tcp, None)?),
        NetCommand::Udp(args) => run_net_test(&args.common, args.common.config(Protocol::Udp, Some(args.rate))?),
        NetCommand::Matrix(args) => run_net_matrix(args),
    }
}

fn run_net_test(args: &NetCommonArgs, config: net::NetTestConfig) -> anyhow::Result<()> {
    let token = args.token()?;
    if token.is_none() && (matches!(args.target, net::Target::Agent(_)) || args.from.is_some()) {
        anyhow::bail!("talking to an agent needs its token: pass --token-file FILE");
    }
    let endpoint = plateau::agent::remote::endpoint_for(&args.target, &config, token.as_deref())?;
    let report = match &args.from {
        Some(from) => plateau::agent::remote::run_from(from, &endpoint, &config, token.as_deref())?,
        None => {
            // The header waits for the first interval, so that a failed connection
            // prints only its error.
            let mut header = (!args.json).then(|| terminal::net_header(&args.target.to_string(), config.protocol));
            net::client::run_test(&endpoint, &config, &Cancel::new(), &mut |interval| {
                if args.json {
                    return;
                }
                if let Some(header) = header.take() {
                    println!("{header}");
                }
                print!("{}", terminal::net_interval(interval));
            })?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    if let Some(from) = &args.from {
        println!("{}", terminal::net_header(&format!("{} from {from}", args.target), config.protocol));
        for interval in &report.intervals {
            print!("{}", terminal::net_interval(interval));
        }
    }
    print!("{}", terminal::net_summary(&report));
    Ok(())
}

fn run_net_matrix(args: NetMatrixArgs) -> anyhow::Result<()> {
    if args.agents.len() < 2 {
        anyhow::bail!("--agents needs at least two agent URLs");
    }
    let token = args.token_file.as_deref().map(plateau::agent::read_token_file).transpose()?;
    let config = net::NetTestConfig { time_secs: args.time, parallel: args.parallel, ..net::NetTestConfig::tcp() };
    config.validate(&net::NetCaps::default())?;
    let report = plateau::agent::remote::run_matrix(&args.agents, &config, args.sequential, token.as_deref());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", terminal::matrix_table(&report));
    }
    Ok(())
}

fn run_produce(args: ProduceArgs) -> anyhow::Result<()> {
    let config = args.config();
    if let Some(events) = args.print_events {
        config.events.validate().map_err(anyhow::Error::msg)?;
        let mut generator = plateau::kafka::event::EventGenerator::new(&config.events, 0, 1);
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for _ in 0..events {
            use std::io::Write;
            out.write_all(generator.next_event().payload)?;
            out.write_all(b"\n")?;
        }
        return Ok(());
    }
    if args.dry_run {
        config.events.validate().map_err(anyhow::Error::msg)?;
        let rate = plateau::kafka::event::generation_rate(&config.events, config.workers, config.time);
        if args.json {
            println!("{}", serde_json::to_string_pretty(&rate)?);
        } else {
            print!("{}", terminal::generation_rate(&rate, config.time.as_secs_f64()));
        }
        return Ok(());
    }
    if let Some(agent) = &args.on {
        let token = args.token_file.as_deref().map(plateau::agent::read_token_file).transpose()?;
        let client = plateau::agent::client::AgentClient::new(agent, token, std::time::Duration::from_secs(30));
        let report = client.produce_and_wait(&config, &mut |line| {
            if !args.json {
                println!("{line}");
            }
        })?;
        return print_produce(&report, args.json);
    }
    let control = std::sync::Arc::new(plateau::kafka::run::RunControl::default());
    let interrupted = std::sync::Arc::clone(&control);
    // Ctrl-C ends the run early; the report still covers what was measured.
    let _ = ctrlc::set_handler(move || interrupted.cancel.cancel());
    let json = args.json;
    let report = plateau::kafka::run::run_produce(&config, &control, &mut |interval| {
        if !json {
            println!("{}", terminal::produce_interval(interval));
        }
    })?;
    print_produce(&report, json)
}

fn run_consume(args: ConsumeArgs) -> anyhow::Result<()> {
    let config = args.config();
    let control = std::sync::Arc::new(plateau::kafka::consume::ConsumeControl::default());
    let interrupted = std::sync::Arc::clone(&control);
    // Ctrl-C ends the run; the report still covers what was measured.
    let _ = ctrlc::set_handler(move || interrupted.cancel.cancel());
    let report = plateau::kafka::consume::run_consume(&config, &control, |interval| {
        if !args.json {
            println!("{}", terminal::consume_interval(interval));
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", terminal::consume_summary(&report));
    }
    Ok(())
}

fn print_produce(report: &plateau::kafka::ProduceReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", terminal::produce_summary(report));
    }
    Ok(())
}

fn run_rules(args: RulesArgs) -> ExitCode {
    let dir = match &args.command {
        RulesCommand::Check { dir } | RulesCommand::Bench { dir, .. } => dir.clone(),
    };
    let set = match plateau::rules::RuleSet::load_dir(&dir) {
        Ok(set) => set,
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            eprintln!("{} error(s) in {}", errors.len(), dir.display());
            return ExitCode::from(2);
        }
    };
    match args.command {
        RulesCommand::Check { .. } => {
            print!("{}", terminal::rules_checked(&dir, set.catalog.len(), set.rules.len()));
        }
        RulesCommand::Bench { series, points, .. } => {
            let evidence = plateau::rules::bench::synthetic_evidence(&set, series, points);
            let started = Instant::now();
            let verdict = plateau::rules::evaluate(&set, &evidence, (0, u64::MAX), true);
            let took = started.elapsed();
            print!("{}", terminal::rules_bench(set.rules.len(), evidence.series.len(), points, took, &verdict));
        }
    }
    ExitCode::SUCCESS
}

fn run_model(args: ModelArgs) -> anyhow::Result<()> {
    let (workload, capacities) = args.inputs()?;
    let prediction = plateau::model::predict(workload, capacities);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&prediction)?);
    } else if args.sankey {
        print!("{}", plateau::model::sankey(&prediction));
    } else {
        print!("{}", terminal::model_table(&prediction));
    }
    Ok(())
}

/// The rules and the agents' token a diagnosis or a sweep needs, or what to fix (exit 2).
fn rules_and_token(run: &plateau::cli::RunFlags, command: &str) -> anyhow::Result<(plateau::rules::RuleSet, String)> {
    use plateau::diagnose::PlanError;
    let rule_set = load_rules(&run.rules)?;
    let token = run
        .token_file
        .as_deref()
        .map(plateau::agent::read_token_file)
        .transpose()
        .map_err(|err| PlanError(format!("{err:#}")))?
        .ok_or_else(|| PlanError(format!("{command} talks to agents and needs their token: pass --token-file FILE")))?;
    Ok((rule_set, token))
}

/// The rule files in `dir`, or every error in them with its file, line and column (exit 2).
fn load_rules(dir: &std::path::Path) -> anyhow::Result<plateau::rules::RuleSet> {
    plateau::rules::RuleSet::load_dir(dir).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        plateau::diagnose::PlanError(format!("{} error(s) in {}:\n{}", errors.len(), dir.display(), lines.join("\n")))
            .into()
    })
}

/// The command line as typed, quoted where it has spaces.
fn command_line() -> String {
    std::env::args().map(|a| if a.contains(' ') { format!("'{a}'") } else { a }).collect::<Vec<_>>().join(" ")
}

/// A Cancel that Ctrl-C sets.
fn cancel_on_ctrl_c() -> Cancel {
    let cancel = Cancel::new();
    let interrupted = cancel.clone();
    let _ = ctrlc::set_handler(move || interrupted.cancel());
    cancel
}

fn run_diagnose(args: DiagnoseArgs) -> anyhow::Result<()> {
    let plan = args.plan()?;
    let (rules, token) = rules_and_token(&args.run, "diagnose")?;
    let token = Some(token);
    let out = args.out.clone().unwrap_or_else(plateau::diagnose::default_out_dir);
    let cancel = cancel_on_ctrl_c();
    let command = command_line();
    let progress = plateau::report::progress::TerminalProgress::default();
    let silent = plateau::diagnose::Silent;
    let progress: &dyn plateau::diagnose::Progress = if args.json { &silent } else { &progress };
    let diagnosis = plateau::diagnose::run(&plan, &rules, token.as_deref(), &command, &cancel, progress)?;
    plateau::report::findings::write_all(&diagnosis, &out)?;
    if args.json {
        let summary = serde_json::json!({
            "verdict": plateau::report::summary::VerdictSummary::of(&diagnosis),
            "out": out,
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", plateau::report::findings::terminal(&diagnosis, &out));
    }
    Ok(())
}

fn run_sweep(args: plateau::cli::SweepArgs) -> anyhow::Result<()> {
    let plan = args.plan()?;
    let (rules, token) = rules_and_token(&args.run, "sweep")?;
    let out = args.out.clone().unwrap_or_else(|| {
        std::path::PathBuf::from(format!("plateau-sweep-{}", plateau::sampler::raw::unix_ms_now() / 1000))
    });
    let cancel = cancel_on_ctrl_c();
    let command = command_line();
    let progress = plateau::report::progress::TerminalProgress::default();
    let silent = plateau::diagnose::Silent;
    let progress: &dyn plateau::diagnose::Progress = if args.json { &silent } else { &progress };
    // Each cell's diagnosis and the sweep so far are written before the next cell starts.
    let mut save = |sweep: &plateau::diagnose::sweep::Sweep, diagnosis: Option<&plateau::diagnose::Diagnosis>| {
        if let (Some(diagnosis), Some(dir)) = (diagnosis, sweep.cells.last().and_then(|c| c.report.as_ref())) {
            plateau::report::findings::write_all(diagnosis, &out.join(dir))?;
        }
        plateau::report::sweep::write_all(sweep, &out)?;
        if !args.json {
            eprintln!("   {}", plateau::report::sweep::cell_line(sweep.cells.last().expect("a cell was run")));
        }
        Ok(())
    };
    let sweep = plateau::diagnose::sweep::run(&plan, &rules, Some(&token), &command, &cancel, progress, &mut save)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "cells": sweep.cells, "out": out }))?);
    } else {
        print!("{}", plateau::report::sweep::terminal(&sweep, &out));
    }
    Ok(())
}

fn run_report(args: ReportArgs) -> anyhow::Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.evidence.parent().map(std::path::Path::to_path_buf).unwrap_or_default());
    if plateau::report::sweep::is_sweep(&args.evidence) {
        let sweep = plateau::report::sweep::read_sweep(&args.evidence)?;
        std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
        plateau::report::sweep::write_rendered(&sweep, &out)?;
        print!("{}", plateau::report::sweep::terminal(&sweep, &out));
        return Ok(());
    }
    let diagnosis = plateau::report::findings::read_evidence(&args.evidence)?;
    if let Some(dir) = &args.rules {
        // Judged again, it is a new diagnosis of the same measurements: written whole
        // elsewhere, so the saved verdict stays beside the evidence it was given on.
        let beside = args.evidence.parent().unwrap_or(std::path::Path::new(""));
        if args.out.as_deref().is_none_or(|o| same_dir(o, beside)) {
            return Err(plateau::diagnose::PlanError(
                "report --rules writes a new evidence.json: pass --out DIR, a directory other than the saved one's"
                    .into(),
            )
            .into());
        }
        let judged = diagnosis.judged_again(&load_rules(dir)?);
        plateau::report::findings::write_all(&judged, &out)?;
        print!("{}", plateau::report::findings::terminal(&judged, &out));
        return Ok(());
    }
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    plateau::report::findings::write_rendered(&diagnosis, &out)?;
    print!("{}", plateau::report::findings::terminal(&diagnosis, &out));
    Ok(())
}

/// Whether two paths name the same directory (either may not exist yet).
fn same_dir(a: &std::path::Path, b: &std::path::Path) -> bool {
    let canonical = |p: &std::path::Path| {
        let p = if p.as_os_str().is_empty() { std::path::Path::new(".") } else { p };
        std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
    };
    canonical(a) == canonical(b)
}

fn run_controller(args: plateau::cli::ControllerArgs) -> anyhow::Result<()> {
    let read = |path: &Option<std::path::PathBuf>| path.as_deref().map(plateau::agent::read_token_file).transpose();
    let config = plateau::controller::ControllerConfig {
        listen: args.listen,
        generators: args.agents,
        brokers: args.brokers,
        consumers: args.consumers,
        agent_token: read(&args.token_file)?,
        access_token: read(&args.access_token_file)?,
        prometheus: args.prometheus,
        bootstrap: args.bootstrap,
        topic: args.topic,
        reports: args.reports,
        rules: args.rules,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(plateau::controller::serve(config, async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }))
}

fn run_export(args: plateau::cli::ExportArgs) -> anyhow::Result<()> {
    match args.what {
        plateau::cli::ExportCommand::PrometheusConfig { agents, brokers, interval } => {
            print!(
                "{}",
                plateau::controller::export::prometheus_config(&agents, &brokers, &interval)
                    .map_err(anyhow::Error::msg)?
            );
        }
        plateau::cli::ExportCommand::GrafanaDashboard => print!("{}", plateau::controller::export::GRAFANA_DASHBOARD),
    }
    Ok(())
}
