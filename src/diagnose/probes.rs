//! The probes before the ramp: the network matrix (every generator → broker and broker ↔
//! broker pair over TCP with parallel streams, in rounds of disjoint pairs run at once,
//! then a UDP test into each broker offered above the TCP capacity measured towards it) and the
//! disk probe on each broker. Their capacities feed the capacity model and the rules.

use std::time::{Duration, Instant};

use super::{Agents, DiagnosePlan, DiskCell, Progress};
use crate::cancel::Cancel;
use crate::evidence::{Series, measured};
use crate::net::matrix::{self, MatrixCell};
use crate::net::{NetTestConfig, Target};
use crate::signals::SignalCatalog;
use crate::units::ByteSize;

/// Where the disk probe writes on a broker host whose agent has no `--log-dir`: on a disk
/// on Debian, where `/tmp` is memory.
const FALLBACK_DISK_PATH: &str = "/var/tmp";

/// The UDP tests' offered rate over the TCP capacity measured towards the receiver.
pub const UDP_OVER_CAPACITY: f64 = 1.25;

/// What the network phase measured.
#[derive(Debug, Clone, Default)]
pub struct Network {
    /// The agents of the tests (generators, then brokers); cells index into it.
    pub agents: Vec<String>,
    /// TCP tests.
    pub tcp: Vec<MatrixCell>,
    /// UDP tests, one into each broker.
    pub udp: Vec<MatrixCell>,
    /// Capacities and UDP loss as evidence (stamped 0; diagnose stamps them at the end).
    pub series: Vec<Series>,
    /// Rounds run and the phase's wall time.
    pub rounds: usize,
    /// Seconds the phase took.
    pub elapsed_secs: f64,
}

/// Runs the network phase between the live `generators` and `brokers`.
pub fn network(
    plan: &DiagnosePlan,
    generators: &[String],
    brokers: &[String],
    agents: &Agents<'_>,
    catalog: &SignalCatalog,
    cancel: &Cancel,
    progress: &dyn Progress,
) -> Network {
    let started = Instant::now();
    let all: Vec<String> = generators.iter().chain(brokers).cloned().collect();
    let g = generators.len();
    let host = |i: usize| Target::Agent(all[i].clone()).host();
    // The pairs that matter: generators to brokers, and brokers to each other.
    let mut pairs: Vec<(usize, usize)> = (0..g).flat_map(|from| (g..all.len()).map(move |to| (from, to))).collect();
    pairs.extend((g..all.len()).flat_map(|a| (g..all.len()).filter(move |b| *b != a).map(move |b| (a, b))));
    let tcp_config =
        NetTestConfig { time_secs: plan.net_time, parallel: plan.net_parallel.max(1), ..NetTestConfig::tcp() };
    let tcp_rounds = matrix::schedule(&pairs);
    let mut out = Network { agents: all.clone(), ..Network::default() };
    let tcp = crate::agent::remote::run_rounds(&all, &tcp_rounds, |_| tcp_config.clone(), agents.token, cancel);
    for (cell, report) in tcp {
        progress.note(&match (&cell.bits_per_second, &cell.error) {
            (Some(bits), _) => format!("tcp {} → {}: {:.1} Mbit/s", host(cell.from), host(cell.to), bits / 1e6),
            (_, Some(err)) => format!("tcp {} → {}: failed: {err}", host(cell.from), host(cell.to)),
            _ => String::new(),
        });
        if let Some(report) = report {
            out.series.extend(measured::from_net(catalog, &host(cell.to), &report, 0));
        }
        out.tcp.push(cell);
    }
    // UDP into each broker from a generator (or another broker), offered a quarter above
    // the capacity TCP found towards it: a link that caps at its rate drops the excess
    // (about a fifth), as seed 000's links dropped ~65 % of a rate far above theirs; an
    // end host that limited the TCP test shows its own loss, or none.
    let udp_pairs: Vec<(usize, usize, u64)> = (g..all.len())
        .filter_map(|to| {
            let capacity = out.tcp.iter().filter(|c| c.to == to).filter_map(|c| c.bits_per_second).reduce(f64::max)?;
            let from = if g > 0 { (to - g) % g } else { g + (to - g + 1) % brokers.len() };
            (from != to).then_some((from, to, (capacity * UDP_OVER_CAPACITY) as u64))
        })
        .collect();
    let rate_of = |pair: (usize, usize)| udp_pairs.iter().find(|p| (p.0, p.1) == pair).map_or(0, |p| p.2);
    let udp_rounds = matrix::schedule(&udp_pairs.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>());
    let udp = crate::agent::remote::run_rounds(
        &all,
        &udp_rounds,
        |pair| NetTestConfig { time_secs: plan.net_time, ..NetTestConfig::udp(rate_of(pair)) },
        agents.token,
        cancel,
    );
    for (cell, report) in udp {
        progress.note(&match (&cell.loss_percent, &cell.error) {
            (Some(loss), _) => format!(
                "udp {} → {} at {:.1} Mbit/s: {loss:.1} % lost",
                host(cell.from),
                host(cell.to),
                rate_of((cell.from, cell.to)) as f64 / 1e6
            ),
            (_, Some(err)) => format!("udp {} → {}: failed: {err}", host(cell.from), host(cell.to)),
            _ => String::new(),
        });
        if let Some(report) = report {
            out.series.extend(measured::from_udp(catalog, &host(cell.to), &report, 0));
        }
        out.udp.push(cell);
    }
    out.rounds = tcp_rounds.len() + udp_rounds.len();
    out.elapsed_secs = started.elapsed().as_secs_f64();
    out
}

/// The disk probe on each broker, in its log directory.
pub fn disks(
    plan: &DiagnosePlan,
    brokers: &[String],
    agents: &Agents<'_>,
    catalog: &SignalCatalog,
    cancel: &Cancel,
    progress: &dyn Progress,
) -> (Vec<DiskCell>, Vec<Series>) {
    let mut cells = Vec::new();
    let mut series = Vec::new();
    for url in brokers {
        if cancel.is_cancelled() {
            break;
        }
        // Where the broker keeps its log, as its agent knows it (`--log-dir`), unless the
        // plan names a directory.
        let path = match plan.disk_path.as_str() {
            "" => agents
                .client(url, Duration::from_secs(5))
                .status()
                .ok()
                .and_then(|status| status.log_dir)
                .unwrap_or_else(|| FALLBACK_DISK_PATH.to_string()),
            path => path.to_string(),
        };
        let outcome = agents.client(url, Duration::from_secs(330)).run_disk(&path, ByteSize(plan.disk_size));
        let cell = match outcome {
            Ok(result) => {
                series.extend(measured::from_disk(catalog, &Target::Agent(url.clone()).host(), &result, 0));
                DiskCell {
                    agent: url.clone(),
                    write_mb_per_sec: Some(result.write_mb_per_sec),
                    fsync_p99_ms: Some(result.fsync_ms.p99),
                    read_iops: Some(result.read_iops),
                    error: None,
                }
            }
            Err(err) => DiskCell {
                agent: url.clone(),
                write_mb_per_sec: None,
                fsync_p99_ms: None,
                read_iops: None,
                error: Some(err.to_string()),
            },
        };
        progress.note(&match (&cell.write_mb_per_sec, &cell.fsync_p99_ms, &cell.error) {
            (Some(mbps), Some(p99), _) => format!("{url}: append {mbps:.0} MB/s, fsync p99 {p99:.2} ms"),
            (_, _, error) => format!("{url}: failed: {}", error.as_deref().unwrap_or("no result")),
        });
        cells.push(cell);
    }
    (cells, series)
}
