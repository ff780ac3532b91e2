//! Evidence from the agents' samples: each catalog signal with an `agent` source becomes
//! one series per agent, read from the sample's JSON by a dotted path.

use crate::sampler::Sample;
use crate::signals::SignalCatalog;

use super::Series;

/// Reads a dotted path (`cpu.total.busy`; `*` walks an array) out of a sample, reducing
/// the values a `*` yields with `reduce` (`max`, `sum` or `avg`).
pub fn read_path(sample: &serde_json::Value, path: &str, reduce: &str) -> Option<f64> {
    let mut values = vec![sample];
    for part in path.split('.') {
        values = values
            .into_iter()
            .flat_map(|value| match (part, value) {
                ("*", serde_json::Value::Array(items)) => items.iter().collect::<Vec<_>>(),
                (key, value) => value.get(key).into_iter().collect(),
            })
            .collect();
    }
    let numbers: Vec<f64> = values.into_iter().filter_map(serde_json::Value::as_f64).collect();
    if numbers.is_empty() {
        return None;
    }
    Some(match reduce {
        "sum" => numbers.iter().sum(),
        "avg" => numbers.iter().sum::<f64>() / numbers.len() as f64,
        _ => numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// One series per catalog signal that the agents' samples carry, for `instance`. Beside
/// the sample's own fields, a `view` the evidence derives: `view.cpu_busy` and, when the
/// agent watches a workload (a container, a pod), `view.machine_cpu_busy` and
/// `view.cpu_quota_cores` — see [`cpu_busy`].
pub fn from_samples(catalog: &SignalCatalog, instance: &str, samples: &[Sample]) -> Vec<Series> {
    let documents: Vec<(u64, serde_json::Value)> = samples
        .iter()
        .filter_map(|s| {
            let mut document = serde_json::to_value(s).ok()?;
            let watch = s.watch.as_ref().filter(|w| w.cpu_seconds_per_sec.is_some());
            document["view"] = serde_json::json!({
                "cpu_busy": cpu_busy(s),
                "machine_cpu_busy": watch.map(|_| s.cpu.total.busy),
                "cpu_quota_cores": watch.and_then(|w| w.cpu_quota_cores),
            });
            Some((s.ts_ms, document))
        })
        .collect();
    let mut all = Vec::new();
    for (_, signal) in catalog.signals() {
        let Some(source) = signal.source.iter().find(|s| s.agent.is_some()) else { continue };
        let path = source.agent.as_deref().unwrap_or_default();
        let reduce = source.reduce.as_deref().unwrap_or("max");
        let mut series = Series::new(&signal.name, instance, &signal.unit);
        for (ts_ms, document) in &documents {
            if let Some(value) = read_path(document, path, reduce) {
                series.push(*ts_ms, value);
            }
        }
        if !series.values.is_empty() {
            all.push(series);
        }
    }
    all
}

/// How busy a host's CPU was, as the host's workload has it: the share of its CPU quota
/// used when its agent watches a workload with a quota (a container, a pod); the watched
/// workload's share of the machine's cores when it has none (a container sharing the
/// machine: the machine's busyness is its neighbours' as much as its own); else the
/// host's CPU busy share (a VM of its own). The one formula for brokers, consumers and
/// generators.
pub fn cpu_busy(sample: &Sample) -> f64 {
    let watch = sample.watch.as_ref();
    let used = watch.and_then(|w| w.cpu_seconds_per_sec);
    match (used, watch.and_then(|w| w.cpu_quota_cores)) {
        (Some(used), Some(quota)) if quota > 0.0 => (used / quota).min(1.0),
        (Some(used), _) if !sample.cpu.cores.is_empty() => (used / sample.cpu.cores.len() as f64).min(1.0),
        _ => sample.cpu.total.busy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_walk_objects_and_arrays() {
        let sample =
            serde_json::json!({"cpu": {"total": {"busy": 0.5}}, "disks": [{"util_ratio": 0.2}, {"util_ratio": 0.9}]});
        assert_eq!(read_path(&sample, "cpu.total.busy", "max"), Some(0.5));
        assert_eq!(read_path(&sample, "disks.*.util_ratio", "max"), Some(0.9));
        assert_eq!(read_path(&sample, "disks.*.util_ratio", "sum"), Some(1.1));
        assert_eq!(read_path(&sample, "nics.*.rx_bytes_per_sec", "max"), None);
    }

    #[test]
    fn a_watched_container_is_judged_by_its_own_cpu() {
        let mut sample = Sample {
            ts_ms: 1_000,
            interval_ms: 1_000,
            cpu: Default::default(),
            disks: Vec::new(),
            nics: Vec::new(),
            tcp: None,
            udp: None,
            memory: None,
            psi: None,
            watch: None,
        };
        sample.cpu.total.busy = 0.97;
        sample.cpu.cores = vec![Default::default(); 2];
        // A VM of its own: the machine's CPU is the host's.
        assert_eq!(cpu_busy(&sample), 0.97);
        // A container with a quota of a tenth of a core, using 0.095 of a core.
        let watch = crate::sampler::sample::WatchSample {
            cpu_seconds_per_sec: Some(0.095),
            cpu_quota_cores: Some(0.1),
            ..Default::default()
        };
        sample.watch = Some(watch.clone());
        assert!((cpu_busy(&sample) - 0.95).abs() < 1e-9);
        // A container without a quota, using 0.6 of the machine's two cores.
        sample.watch = Some(crate::sampler::sample::WatchSample {
            cpu_seconds_per_sec: Some(0.6),
            cpu_quota_cores: None,
            ..watch
        });
        assert!((cpu_busy(&sample) - 0.3).abs() < 1e-9);
        let rules = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules");
        let catalog = crate::rules::RuleSet::load_dir(&rules).unwrap().catalog;
        let series = from_samples(&catalog, "b1", &[sample]);
        let value = |name: &str| series.iter().find(|s| s.signal == name).map(|s| s.values[0]);
        assert_eq!(value("host_cpu_busy"), Some(0.3));
        assert_eq!(value("machine_cpu_busy"), Some(0.97));
        assert_eq!(value("host_cpu_quota_cores"), None);
    }
}
