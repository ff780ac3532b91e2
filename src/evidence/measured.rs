//! Evidence from plateau's own measurements: the produce run, the disk probe and the
//! network probes become series of the catalog's `measured` signals, so the rules judge
//! them like everything else.

use super::Series;
use crate::kafka::ProduceReport;
use crate::kafka::consume::ConsumeReport;
use crate::kafka::report::{BrokerStats, ProduceInterval, worst_p99_ms};
use crate::net::NetReport;
use crate::probe::disk::DiskResult;
use crate::signals::SignalCatalog;

/// Every signal plateau measures itself, with the source the catalog declares for it
/// (`measured = "…"`): the produce and consume runs, the probes, the topic and cluster as
/// preflight read them, and the generators', consumers' and database's CPU
/// (`evidence::gather`). A test holds this table and the catalog to each other.
pub const MEASURED: &[(&str, &str)] = &[
    ("disk_fsync_p99_ms", "disk.fsync_p99_ms"),
    ("net_link_capacity_bits_per_sec", "net.capacity_bits_per_sec"),
    ("net_udp_loss_ratio", "net.udp_loss_ratio"),
    ("topic_replication_factor", "topic.replication_factor"),
    ("cluster_brokers", "cluster.brokers"),
    ("producer_target_rate", "produce.target_rate"),
    ("producer_achieved_rate", "produce.achieved_rate"),
    ("producer_achieved_ratio", "produce.achieved_ratio"),
    ("producer_publish_delay_p99_ms", "produce.publish_delay_p99_ms"),
    ("producer_queue_p99_ms", "produce.int_latency_p99_ms"),
    ("producer_rtt_p99_ms", "produce.rtt_p99_ms"),
    ("producer_throttle_ms", "produce.throttle_max_ms"),
    ("producer_max_in_flight", "produce.max_in_flight"),
    ("producer_partition_skew", "produce.partition_skew"),
    ("producer_used_partition_ratio", "produce.used_partition_ratio"),
    ("generator_cpu_busy", "generators.cpu_busy_max"),
    ("producer_outbuf_p99_ms", "produce.outbuf_latency_p99_ms"),
    ("topic_partitions", "topic.partitions"),
    ("consumer_records_per_sec", "consume.records_per_sec"),
    ("consumer_lag", "consume.lag"),
    ("consumer_lag_growth_per_sec", "consume.lag_growth_per_sec"),
    ("consumer_e2e_avg_ms", "consume.e2e_avg_ms"),
    ("consumer_e2e_p99_ms", "consume.e2e_p99_ms"),
    ("consumer_members_busy_ratio", "consume.members_busy_ratio"),
    ("consumer_handling_busy_ratio", "consume.handling_busy_ratio"),
    ("consumer_sink_busy_ratio", "consume.sink_busy_ratio"),
    ("sink_insert_p99_ms", "consume.insert_p99_ms"),
    ("consumer_idle_members", "consume.idle_members"),
    ("consumer_members", "consume.members"),
    ("consumer_rebalances", "consume.rebalances"),
    ("consumer_cpu_busy", "consumers.cpu_busy_max"),
    ("sink_cpu_busy", "databases.cpu_busy_max"),
];

/// An empty series of the measured signal `name` for `instance`; `None` when the catalog
/// (a user's edited rule directory) does not have it.
pub(super) fn series(catalog: &SignalCatalog, name: &str, instance: &str) -> Option<Series> {
    debug_assert!(
        MEASURED.iter().any(|(measured, _)| *measured == name),
        "{name} is filled from plateau's own measurements: add it to MEASURED and the catalog"
    );
    let signal = catalog.get(catalog.id(name)?);
    Some(Series::new(&signal.name, instance, &signal.unit))
}

/// Producer signals from a produce run that started at `start_ms`: target and achieved
/// rates per interval, and the run's latency, queueing and partition figures at its end.
pub fn from_produce(catalog: &SignalCatalog, report: &ProduceReport, start_ms: u64, max_in_flight: u32) -> Vec<Series> {
    let mut all = Vec::new();
    let at = |secs: f64| start_ms + (secs * 1000.0) as u64;
    let end_ms = at(report.duration_secs);
    let mut per_interval = |name: &str, value: &dyn Fn(&ProduceInterval) -> Option<f64>| {
        if let Some(mut s) = series(catalog, name, "cluster") {
            for interval in &report.intervals {
                if let Some(v) = value(interval) {
                    s.push(at(interval.end_secs), v);
                }
            }
            all.push(s);
        }
    };
    per_interval("producer_target_rate", &|i| Some(i.target_rate as f64));
    per_interval("producer_achieved_rate", &|i| Some(i.records_per_sec));
    per_interval("producer_achieved_ratio", &|i| (i.target_rate > 0).then(|| i.records_per_sec / i.target_rate as f64));
    let p99_of = |f: fn(&BrokerStats) -> Option<crate::kafka::report::WindowUs>| worst_p99_ms(&report.brokers, f);
    // Queueing and round trips interval by interval, so that a window judged on a part of
    // the run sees that part; a run saved before intervals kept them has its end figure.
    let windowed = |per: fn(&ProduceInterval) -> Option<f64>| report.intervals.iter().any(|i| per(i).is_some());
    let (queue_at_end, rtt_at_end) = (!windowed(|i| i.queue_p99_ms), !windowed(|i| i.rtt_p99_ms));
    if !queue_at_end {
        per_interval("producer_queue_p99_ms", &|i| i.queue_p99_ms);
    }
    if !rtt_at_end {
        per_interval("producer_rtt_p99_ms", &|i| i.rtt_p99_ms);
    }
    let ends = [
        ("producer_publish_delay_p99_ms", Some(report.publish_delay_ms.p99)),
        ("producer_queue_p99_ms", p99_of(|b| b.int_latency_us).filter(|_| queue_at_end)),
        ("producer_outbuf_p99_ms", p99_of(|b| b.outbuf_latency_us)),
        ("producer_rtt_p99_ms", p99_of(|b| b.rtt_us).filter(|_| rtt_at_end)),
        (
            "producer_throttle_ms",
            report.brokers.iter().filter_map(|b| b.throttle_ms).map(|w| w.max as f64).reduce(f64::max),
        ),
        ("producer_max_in_flight", Some(max_in_flight as f64)),
        ("producer_partition_skew", Some(report.partitions.skew)),
        (
            "producer_used_partition_ratio",
            (report.partitions.total > 0).then(|| report.partitions.used as f64 / report.partitions.total as f64),
        ),
        ("topic_partitions", (report.partitions.total > 0).then_some(report.partitions.total as f64)),
    ];
    for (name, value) in ends {
        if let (Some(mut s), Some(v)) = (series(catalog, name, "cluster"), value) {
            s.push(end_ms, v);
            all.push(s);
        }
    }
    all
}

/// Producer signals from every generator's run, all started at `span_ms.0`, as one
/// cluster: target and achieved rates summed second by second (the achieved ratio of the
/// sums), the end figures the worst generator's (latencies, throttling, skew: the highest;
/// the used partition share: the lowest). Nothing is stamped after `span_ms.1`, the ramp's
/// end: a run's own clock (it started a little after the ramp's) and the rounding to
/// whole seconds would put its end figures just past the window the rules judge.
pub fn from_produce_runs(
    catalog: &SignalCatalog,
    reports: &[&ProduceReport],
    span_ms: (u64, u64),
    max_in_flight: u32,
) -> Vec<Series> {
    let (start_ms, ended_ms) = span_ms;
    use std::collections::BTreeMap;
    let mut by_signal: BTreeMap<String, Vec<Series>> = BTreeMap::new();
    for report in reports {
        for series in from_produce(catalog, report, start_ms, max_in_flight) {
            by_signal.entry(series.signal.clone()).or_default().push(series);
        }
    }
    // Interval ends are whole seconds after the common start, give or take jitter.
    let second = |ts: u64| start_ms + (ts.saturating_sub(start_ms) + 500) / 1000 * 1000;
    let merge = |all: &[Series], combine: fn(f64, f64) -> f64| -> BTreeMap<u64, f64> {
        let mut out: BTreeMap<u64, f64> = BTreeMap::new();
        for series in all {
            for (&ts, &v) in series.timestamps.iter().zip(&series.values) {
                out.entry(second(ts)).and_modify(|kept| *kept = combine(*kept, v)).or_insert(v);
            }
        }
        out
    };
    let sum = |a: f64, b: f64| a + b;
    let sums: BTreeMap<&str, BTreeMap<u64, f64>> = ["producer_target_rate", "producer_achieved_rate"]
        .into_iter()
        .map(|name| (name, by_signal.get(name).map(|all| merge(all, sum)).unwrap_or_default()))
        .collect();
    let mut out = Vec::new();
    for (name, all) in &by_signal {
        let points: BTreeMap<u64, f64> = match name.as_str() {
            "producer_target_rate" | "producer_achieved_rate" => sums[name.as_str()].clone(),
            "producer_achieved_ratio" => sums["producer_target_rate"]
                .iter()
                .filter(|(_, target)| **target > 0.0)
                .filter_map(|(ts, target)| Some((*ts, sums["producer_achieved_rate"].get(ts)? / target)))
                .collect(),
            "producer_used_partition_ratio" => merge(all, f64::min),
            _ => merge(all, f64::max),
        };
        let mut merged = Series::new(&all[0].signal, &all[0].instance, &all[0].unit);
        for (ts, v) in points {
            let ts = ts.min(ended_ms);
            if merged.timestamps.last() == Some(&ts) {
                merged.values.pop();
                merged.timestamps.pop();
            }
            merged.push(ts, v);
        }
        out.push(merged);
    }
    out
}

/// The consumer group's signals from every consumer agent's consume run, as one cluster:
/// per second, records summed over the agents, everything else the worst agent's; the
/// group's figures (members, idle members, rebalances) at `ended_ms`. Nothing is stamped
/// after `ended_ms`, the end of the ramp the rules judge.
pub fn from_consume_runs(catalog: &SignalCatalog, reports: &[&ConsumeReport], ended_ms: u64) -> Vec<Series> {
    use std::collections::BTreeMap;
    type Reading = fn(&crate::kafka::consume::ConsumeInterval) -> Option<f64>;
    type Combine = fn(f64, f64) -> f64;
    let per_second: [(&str, Reading, Combine); 8] = [
        ("consumer_records_per_sec", |i| Some(i.records_per_sec), |a, b| a + b),
        ("consumer_lag", |i| i.lag.map(|lag| lag as f64), f64::max),
        ("consumer_e2e_avg_ms", |i| (i.records > 0).then_some(i.e2e_avg_ms), f64::max),
        ("consumer_e2e_p99_ms", |i| (i.records > 0).then_some(i.e2e_p99_ms), f64::max),
        ("consumer_members_busy_ratio", |i| i.members_busy_ratio, f64::max),
        ("consumer_handling_busy_ratio", |i| i.handling_busy_ratio, f64::max),
        ("consumer_sink_busy_ratio", |i| i.sink_busy_ratio, f64::max),
        ("sink_insert_p99_ms", |i| i.insert_p99_ms.filter(|_| i.records > 0), f64::max),
    ];
    let mut out = Vec::new();
    let mut lag_points = BTreeMap::new();
    for (name, read, combine) in per_second {
        let Some(mut series) = series(catalog, name, "cluster") else { continue };
        let mut points: BTreeMap<u64, f64> = BTreeMap::new();
        for interval in reports.iter().flat_map(|r| &r.intervals).filter(|i| i.at_ms <= ended_ms) {
            if let Some(value) = read(interval) {
                let second = (interval.at_ms + 500) / 1000 * 1000;
                points.entry(second.min(ended_ms)).and_modify(|kept| *kept = combine(*kept, value)).or_insert(value);
            }
        }
        for (&ts, &value) in &points {
            series.push(ts, value);
        }
        if name == "consumer_lag" {
            lag_points = points;
        }
        if !series.values.is_empty() {
            out.push(series);
        }
    }
    if let Some(mut growth) = series(catalog, "consumer_lag_growth_per_sec", "cluster") {
        let points: Vec<(u64, f64)> = lag_points.into_iter().collect();
        for pair in points.windows(2) {
            let ((t0, lag0), (t1, lag1)) = (pair[0], pair[1]);
            if t1 > t0 {
                growth.push(t1, (lag1 - lag0) / ((t1 - t0) as f64 / 1000.0));
            }
        }
        if !growth.values.is_empty() {
            out.push(growth);
        }
    }
    if !reports.is_empty() {
        let members = reports.iter().map(|r| r.members as f64).sum();
        let idle = reports.iter().map(|r| r.membership.idle_members as f64).sum();
        let rebalances = reports.iter().map(|r| r.membership.rebalances as f64).fold(0.0, f64::max);
        for (name, value) in
            [("consumer_members", members), ("consumer_idle_members", idle), ("consumer_rebalances", rebalances)]
        {
            out.extend(constant(catalog, name, value, ended_ms));
        }
    }
    out
}

/// `disk_fsync_p99_ms` of `host` from a disk probe finished at `ts_ms`.
pub fn from_disk(catalog: &SignalCatalog, host: &str, result: &DiskResult, ts_ms: u64) -> Vec<Series> {
    let mut s = match series(catalog, "disk_fsync_p99_ms", host) {
        Some(s) if result.fsync_ms.count > 0 => s,
        _ => return Vec::new(),
    };
    s.push(ts_ms, result.fsync_ms.p99);
    vec![s]
}

/// `net_link_capacity_bits_per_sec` of `host` (the receiving end) from a TCP test.
pub fn from_net(catalog: &SignalCatalog, host: &str, report: &NetReport, ts_ms: u64) -> Vec<Series> {
    let Some(mut s) = series(catalog, "net_link_capacity_bits_per_sec", host) else { return Vec::new() };
    s.push(ts_ms, report.end.sum_received.bits_per_second);
    vec![s]
}

/// A single value for a cluster signal (the replication factor, the partition count).
pub fn constant(catalog: &SignalCatalog, name: &str, value: f64, ts_ms: u64) -> Vec<Series> {
    let Some(mut s) = series(catalog, name, "cluster") else { return Vec::new() };
    s.push(ts_ms, value);
    vec![s]
}

/// Values measured once before the ramp (capacities, loss), stamped at `ts_ms`: one value
/// per signal and host, the highest measured (a link is as fast as its fastest test).
pub fn best_at<'a>(measured: impl IntoIterator<Item = &'a Series>, ts_ms: u64) -> Vec<Series> {
    let mut best: std::collections::BTreeMap<(String, String), Series> = Default::default();
    for series in measured {
        let Some(&value) = series.values.first() else { continue };
        let key = (series.signal.clone(), series.instance.clone());
        if best.get(&key).and_then(|s| s.values.first()).is_none_or(|kept| value > *kept) {
            let mut stamped = Series::new(&series.signal, &series.instance, &series.unit);
            stamped.push(ts_ms, value);
            best.insert(key, stamped);
        }
    }
    best.into_values().collect()
}

/// `net_udp_loss_ratio` of `host` (the receiving end) from a UDP test.
pub fn from_udp(catalog: &SignalCatalog, host: &str, report: &NetReport, ts_ms: u64) -> Vec<Series> {
    let Some(percent) = report.end.sum.as_ref().and_then(|sum| sum.lost_percent) else { return Vec::new() };
    let Some(mut s) = series(catalog, "net_udp_loss_ratio", host) else { return Vec::new() };
    s.push(ts_ms, percent / 100.0);
    vec![s]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::report::{BrokerStats, Partitions, ProduceInterval, WindowUs};
    use crate::rules::{Bound, RuleSet, evaluate};

    fn shipped() -> RuleSet {
        RuleSet::load_dir(&std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules")).unwrap()
    }

    #[test]
    fn a_client_bound_produce_run_is_judged_client() {
        let rules = shipped();
        let window = |p99: i64| Some(WindowUs { avg: p99 / 2, p50: p99 / 2, p95: p99, p99, max: p99 });
        let report = ProduceReport {
            duration_secs: 10.0,
            intervals: (1..=10)
                .map(|i| ProduceInterval {
                    end_secs: i as f64,
                    target_rate: 6000,
                    records_per_sec: 4200.0,
                    ..Default::default()
                })
                .collect(),
            brokers: vec![BrokerStats {
                name: "b".into(),
                int_latency_us: window(900_000),
                rtt_us: window(900),
                ..Default::default()
            }],
            partitions: Partitions { counts: vec![10; 6], skew: 1.0, used: 6, total: 6, ..Default::default() },
            ..Default::default()
        };
        let evidence =
            crate::evidence::Evidence { series: from_produce(&rules.catalog, &report, 1_000, 1), ..Default::default() };
        let achieved = evidence.find("producer_achieved_ratio", "cluster").unwrap();
        assert_eq!(achieved.values.len(), 10);
        assert!((achieved.values[0] - 0.7).abs() < 1e-9);
        assert_eq!(evidence.find("producer_queue_p99_ms", "cluster").unwrap().values, [900.0]);
        let verdict = evaluate(&rules, &evidence, (0, u64::MAX), true);
        assert_eq!(verdict.bound, Bound::Client, "{:?}", verdict.evidence);
        assert!(verdict.evidence.iter().any(|l| l.rule == "client.one_in_flight"));
    }

    #[test]
    fn queueing_is_read_interval_by_interval_where_the_run_kept_it() {
        let rules = shipped();
        // The queue built up in the first half and drained by the end: the end figure
        // alone (2 ms) would hide what the window's first half shows.
        let report = ProduceReport {
            duration_secs: 4.0,
            intervals: (1..=4)
                .map(|i| ProduceInterval {
                    end_secs: i as f64,
                    target_rate: 1000,
                    records_per_sec: 700.0,
                    queue_p99_ms: Some(if i <= 2 { 400.0 } else { 2.0 }),
                    rtt_p99_ms: (i != 3).then_some(1.5),
                    ..Default::default()
                })
                .collect(),
            brokers: vec![BrokerStats { name: "b".into(), ..Default::default() }],
            ..Default::default()
        };
        let evidence =
            crate::evidence::Evidence { series: from_produce(&rules.catalog, &report, 0, 1), ..Default::default() };
        let queue = evidence.find("producer_queue_p99_ms", "cluster").unwrap();
        assert_eq!(queue.values, [400.0, 400.0, 2.0, 2.0]);
        assert_eq!(queue.timestamps, [1000, 2000, 3000, 4000]);
        let rtt = evidence.find("producer_rtt_p99_ms", "cluster").unwrap();
        assert_eq!(rtt.timestamps, [1000, 2000, 4000], "an interval without a sampled window has no figure");
        let verdict = evaluate(&rules, &evidence, (0, u64::MAX), true);
        assert!(verdict.evidence.iter().any(|l| l.rule == "client.one_in_flight"), "{:?}", verdict.evidence);
    }

    #[test]
    fn every_generators_run_counts_as_one_cluster() {
        let rules = shipped();
        // Two generators at 3,000 msg/s each, one keeping up, one not; interval ends a few
        // ms apart, as two hosts' clocks put them.
        let run = |achieved: f64, jitter_ms: f64, queue_p99_us: i64, used: usize| ProduceReport {
            duration_secs: 3.0,
            intervals: (1..=3)
                .map(|i| ProduceInterval {
                    end_secs: i as f64 + jitter_ms / 1000.0,
                    target_rate: 3000,
                    records_per_sec: achieved,
                    ..Default::default()
                })
                .collect(),
            brokers: vec![BrokerStats {
                name: "b".into(),
                int_latency_us: Some(WindowUs {
                    avg: 1,
                    p50: 1,
                    p95: queue_p99_us,
                    p99: queue_p99_us,
                    max: queue_p99_us,
                }),
                ..Default::default()
            }],
            partitions: Partitions { skew: 1.0, used, total: 12, ..Default::default() },
            ..Default::default()
        };
        let (one, two) = (run(3000.0, 4.0, 2_000, 12), run(1500.0, -3.0, 800_000, 6));
        let series = from_produce_runs(&rules.catalog, &[&one, &two], (10_000, u64::MAX), 5);
        let get = |name: &str| series.iter().find(|s| s.signal == name).unwrap();
        assert_eq!(get("producer_target_rate").values, [6000.0, 6000.0, 6000.0]);
        assert_eq!(get("producer_achieved_rate").values, [4500.0, 4500.0, 4500.0]);
        assert_eq!(get("producer_achieved_rate").timestamps, [11_000, 12_000, 13_000]);
        assert_eq!(get("producer_achieved_ratio").values, [0.75, 0.75, 0.75]);
        // The worst generator's end figures: its queueing, its partition use.
        assert_eq!(get("producer_queue_p99_ms").values, [800.0]);
        assert_eq!(get("producer_used_partition_ratio").values, [0.5]);
        assert_eq!(series.iter().filter(|s| s.signal == "producer_target_rate").count(), 1);
        // A ramp that ended before the runs' own clocks did: the end figures at its end,
        // inside the judged window, not after it.
        let series = from_produce_runs(&rules.catalog, &[&one, &two], (10_000, 12_500), 5);
        let get = |name: &str| series.iter().find(|s| s.signal == name).unwrap();
        assert_eq!(get("producer_queue_p99_ms").timestamps, [12_500]);
        assert_eq!(get("producer_achieved_rate").timestamps, [11_000, 12_000, 12_500]);
    }

    #[test]
    fn every_measured_source_of_the_catalog_is_filled_here_and_every_fill_is_in_the_catalog() {
        let catalog = shipped().catalog;
        let declared: std::collections::BTreeSet<(String, String)> = catalog
            .signals()
            .flat_map(|(_, signal)| {
                signal.source.iter().filter_map(|s| s.measured.clone()).map(|m| (signal.name.clone(), m))
            })
            .collect();
        let table: std::collections::BTreeSet<(String, String)> =
            MEASURED.iter().map(|(name, source)| (name.to_string(), source.to_string())).collect();
        assert_eq!(
            declared.difference(&table).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "in the catalog only"
        );
        assert_eq!(
            table.difference(&declared).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "in MEASURED only"
        );
        // And no signal is filled here by a name the table does not list: every catalog
        // name written in this file's code (or gather's, which fills the CPU signals) is
        // a measured one.
        for file in ["measured.rs", "gather.rs"] {
            let text = std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/evidence").join(file),
            )
            .unwrap();
            let code = &text[..text.find("#[cfg(test)]").unwrap_or(text.len())];
            for (_, signal) in catalog.signals() {
                let quoted = format!("\"{}\"", signal.name);
                if code.contains(&quoted) {
                    assert!(
                        MEASURED.iter().any(|(name, _)| *name == signal.name),
                        "{file} fills {} without a measured source in the catalog",
                        signal.name
                    );
                }
            }
        }
    }
}
