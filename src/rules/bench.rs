//! Synthetic evidence for timing the engine: every catalog signal, host-scoped ones
//! spread over as many hosts as it takes to reach the requested number of series.

use super::{RuleSet, Scope};
use crate::evidence::{Evidence, Series};

/// About `n_series` series of `n_points` points (1 s apart) over the catalog's signals.
pub fn synthetic_evidence(rules: &RuleSet, n_series: usize, n_points: usize) -> Evidence {
    let signals: Vec<_> = rules.catalog.signals().map(|(_, s)| s).collect();
    let cluster = signals.iter().filter(|s| s.scope == Scope::Cluster).count();
    let host_signals = signals.len() - cluster;
    let hosts = (n_series.saturating_sub(cluster)).div_ceil(host_signals.max(1)).max(1);
    let mut evidence = Evidence::default();
    for (index, signal) in signals.iter().enumerate() {
        let instances: Vec<String> = match signal.scope {
            Scope::Cluster => vec!["cluster".to_string()],
            Scope::Host => (0..hosts).map(|h| format!("host-{h}")).collect(),
        };
        for (h, instance) in instances.into_iter().enumerate() {
            if evidence.series.len() >= n_series {
                break;
            }
            let mut series = Series::new(&signal.name, &instance, &signal.unit);
            series.timestamps = (0..n_points as u64).map(|i| 1_000 + i * 1_000).collect();
            // A cheap deterministic wobble between 0 and 1.
            series.values = (0..n_points).map(|i| ((i * 7 + h * 13 + index * 31) % 100) as f64 / 100.0).collect();
            evidence.series.push(series);
        }
    }
    evidence
}
