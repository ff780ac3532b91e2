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

/// One series per catalog signal that the agents' samples carry, for `instance`.
pub fn from_samples(catalog: &SignalCatalog, instance: &str, samples: &[Sample]) -> Vec<Series> {
    let documents: Vec<(u64, serde_json::Value)> =
        samples.iter().filter_map(|s| serde_json::to_value(s).ok().map(|v| (s.ts_ms, v))).collect();
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

/// How busy a generator was: the share of its CPU quota used when its agent watches a
/// workload with a quota (a container, a pod); the watched workload's share of the host's
/// cores when it has none (a container sharing the machine: the machine's busyness is its
/// neighbours' as much as its own); else the host's CPU busy share (a VM of its own).
pub fn generator_busy(sample: &Sample) -> f64 {
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
}
