//! The capacity model of seed 003: from producer ingress, the replication factor and the
//! consumer mix (real-time, delayed, remote), the load each workload puts on the cluster's
//! network and storage I/O; and, given measured capacities, the highest ingress each
//! resource allows — the smallest is the predicted bottleneck.
//!
//! Workloads, in MB/s at the cluster level, as seed 003 models them:
//! - producers: ingress P on the client network and on local I/O (writes);
//! - replication: (RF − 1)·P on the inter-broker network and on followers' I/O;
//! - tiered storage: closed segments read from local I/O (P) and sent to remote storage (P);
//! - real-time consumers: read from the page cache, client network only;
//! - delayed consumers: local I/O and client network;
//! - remote consumers: client network and remote-storage network.

use serde::{Deserialize, Serialize};

/// The workload to model, MB/s.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Producer ingress.
    pub ingress_mbps: f64,
    /// Replication factor.
    pub replication_factor: u32,
    /// Brokers sharing the load.
    pub brokers: u32,
    /// Consumers keeping up (page cache).
    pub realtime_mbps: f64,
    /// Consumers behind (local storage).
    pub delayed_mbps: f64,
    /// Consumers reading from remote storage.
    pub remote_mbps: f64,
    /// Tiered storage enabled for all topics.
    pub tiered: bool,
}

impl Workload {
    /// Producers only (no consumers, local storage): what a diagnosis measures.
    pub fn producers(ingress_mbps: f64, replication_factor: u32, brokers: u32) -> Workload {
        Workload {
            ingress_mbps,
            replication_factor,
            brokers,
            realtime_mbps: 0.0,
            delayed_mbps: 0.0,
            remote_mbps: 0.0,
            tiered: false,
        }
    }
}

/// Measured capacities per broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Capacities {
    /// Network link per broker, MB/s each way (full duplex).
    pub link_mbps: Option<f64>,
    /// Storage throughput per broker, MB/s (reads and writes together).
    pub disk_mbps: Option<f64>,
    /// Whether `disk_mbps` is the brokers' containers' write limit (a cgroup's
    /// `blkio.throttle.write_bps_device` or `io.max`), lower than what the disk measured.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disk_is_write_limit: bool,
}

/// Load per resource, MB/s over the cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Loads {
    /// Producers into the cluster.
    pub producer_network_mbps: f64,
    /// Broker to broker (replication).
    pub replication_network_mbps: f64,
    /// Consumers out of the cluster.
    pub consumer_network_mbps: f64,
    /// To and from remote storage.
    pub remote_storage_network_mbps: f64,
    /// Local writes (producers and replication).
    pub io_write_mbps: f64,
    /// Local reads (delayed consumers, tiered copies).
    pub io_read_mbps: f64,
}

/// The highest ingress each resource allows, MB/s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Ceilings {
    /// Broker NICs receiving (producers, replication, remote reads).
    pub nic_in_mbps: Option<f64>,
    /// Broker NICs sending (replication, consumers, remote writes).
    pub nic_out_mbps: Option<f64>,
    /// Broker storage (writes and reads).
    pub disk_mbps: Option<f64>,
}

/// The model's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The inputs.
    pub workload: Workload,
    /// Load per workload and resource.
    pub loads: Loads,
    /// Client, inter-broker and remote-storage network together.
    pub total_network_mbps: f64,
    /// Local reads and writes together.
    pub total_io_mbps: f64,
    /// Bytes out of the cluster to consumers per byte in.
    pub fan_out: f64,
    /// Capacities used.
    pub capacities: Capacities,
    /// Highest ingress per resource, when capacities were given.
    pub max_ingress_mbps: Ceilings,
    /// The resource with the lowest ceiling: `nic_in`, `nic_out` or `disk`.
    pub binding: Option<String>,
    /// The lowest ceiling, MB/s.
    pub predicted_max_ingress_mbps: Option<f64>,
}

/// Runs the model.
pub fn predict(workload: Workload, capacities: Capacities) -> Prediction {
    let p = workload.ingress_mbps;
    let followers = workload.replication_factor.saturating_sub(1) as f64;
    let tiered = if workload.tiered { 1.0 } else { 0.0 };
    let (r, d, m) = (workload.realtime_mbps, workload.delayed_mbps, workload.remote_mbps * tiered);
    let loads = Loads {
        producer_network_mbps: p,
        replication_network_mbps: followers * p,
        consumer_network_mbps: r + d + m,
        remote_storage_network_mbps: tiered * p + m,
        io_write_mbps: p + followers * p,
        io_read_mbps: tiered * p + d,
    };
    let total_network_mbps = loads.producer_network_mbps
        + loads.replication_network_mbps
        + loads.consumer_network_mbps
        + loads.remote_storage_network_mbps;
    let total_io_mbps = loads.io_write_mbps + loads.io_read_mbps;
    // Per unit of ingress, what each broker NIC direction and disk carries, with the
    // consumer mix held in proportion to the ingress.
    let n = workload.brokers.max(1) as f64;
    let ratio = |load: f64| if p > 0.0 { load / p } else { 0.0 };
    let nic_in_per_ingress = (1.0 + followers + ratio(m)) / n;
    let nic_out_per_ingress = (followers + ratio(r + d + m) + tiered) / n;
    let disk_per_ingress = ratio(total_io_mbps) / n;
    let ceiling = |capacity: Option<f64>, per: f64| capacity.filter(|_| per > 0.0).map(|c| c / per);
    let max_ingress_mbps = Ceilings {
        nic_in_mbps: ceiling(capacities.link_mbps, nic_in_per_ingress),
        nic_out_mbps: ceiling(capacities.link_mbps, nic_out_per_ingress),
        disk_mbps: ceiling(capacities.disk_mbps, disk_per_ingress),
    };
    let candidates = [
        ("nic_in", max_ingress_mbps.nic_in_mbps),
        ("nic_out", max_ingress_mbps.nic_out_mbps),
        ("disk", max_ingress_mbps.disk_mbps),
    ];
    let lowest = candidates.iter().filter_map(|(name, c)| c.map(|c| (*name, c))).min_by(|a, b| a.1.total_cmp(&b.1));
    Prediction {
        workload,
        loads,
        total_network_mbps,
        total_io_mbps,
        fan_out: ratio(r + d + m),
        capacities,
        max_ingress_mbps,
        binding: lowest.map(|(name, _)| name.to_string()),
        predicted_max_ingress_mbps: lowest.map(|(_, c)| c),
    }
}

/// One change that would move the ceiling the model predicts, and the ceiling it would
/// move it to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lift {
    /// The change, in words: `links of 200 Mbit/s or more (measured 95)`, `replication factor 2`.
    pub change: String,
    /// The highest ingress the model predicts with the change, MB/s.
    pub ceiling_mbps: f64,
}

/// What would lift the ceiling of `prediction` towards `target_mbps` of ingress: the
/// capacity of the binding resource that the target takes (the model is linear in it), one
/// replica fewer, one broker more — each with the ceiling the model then predicts. Empty
/// when the model has no binding resource or the target is not above its ceiling.
pub fn lifts(prediction: &Prediction, target_mbps: f64) -> Vec<Lift> {
    let (Some(binding), Some(ceiling)) = (prediction.binding.as_deref(), prediction.predicted_max_ingress_mbps) else {
        return Vec::new();
    };
    if ceiling <= 0.0 || target_mbps <= ceiling {
        return Vec::new();
    }
    let (workload, capacities) = (prediction.workload, prediction.capacities);
    let scale = target_mbps / ceiling;
    let mut out = Vec::new();
    match (binding, capacities.link_mbps, capacities.disk_mbps) {
        ("nic_in" | "nic_out", Some(link), _) => out.push(Lift {
            change: format!(
                "links of {:.0} Mbit/s or more per broker (measured {:.0})",
                link * 8.0 * scale,
                link * 8.0
            ),
            ceiling_mbps: target_mbps,
        }),
        ("disk", _, Some(disk)) if capacities.disk_is_write_limit => out.push(Lift {
            change: format!(
                "a write limit of {:.1} MB/s or more on each broker's container (now {disk:.1})",
                disk * scale
            ),
            ceiling_mbps: target_mbps,
        }),
        ("disk", _, Some(disk)) => out.push(Lift {
            change: format!("disks of {:.0} MB/s or more per broker (measured {disk:.0})", disk * scale),
            ceiling_mbps: target_mbps,
        }),
        _ => {}
    }
    let again = |workload: Workload| predict(workload, capacities).predicted_max_ingress_mbps;
    if workload.replication_factor > 1 {
        let rf = workload.replication_factor - 1;
        if let Some(lifted) = again(Workload { replication_factor: rf, ..workload }) {
            out.push(Lift { change: format!("replication factor {rf}"), ceiling_mbps: lifted });
        }
    }
    let brokers = workload.brokers + 1;
    if let Some(lifted) = again(Workload { brokers, ..workload }) {
        out.push(Lift { change: format!("{brokers} brokers"), ceiling_mbps: lifted });
    }
    out
}

/// The model as SankeyMATIC text (paste it at sankeymatic.com/build), as seed 003 draws it.
pub fn sankey(prediction: &Prediction) -> String {
    let w = &prediction.workload;
    let l = &prediction.loads;
    let mut out = String::new();
    let mut flow = |from: &str, value: f64, to: &str| {
        if value > 0.0 {
            out.push_str(&format!("{from} [{value:.0}] {to}\n"));
        }
    };
    let followers = w.replication_factor.saturating_sub(1);
    let tiered = if w.tiered { w.ingress_mbps } else { 0.0 };
    let remote = if w.tiered { w.remote_mbps } else { 0.0 };
    flow("Producers", w.ingress_mbps, "ProducersCluster");
    flow("ProducersCluster", w.ingress_mbps, "IO");
    flow("ProducersCluster", w.ingress_mbps, "InOutNet");
    flow("ReplicationCluster", l.replication_network_mbps, "IO");
    flow("ReplicationCluster", l.replication_network_mbps, "ClusterNet");
    flow("RemoteStorageWritesCluster", tiered, "IO");
    flow("RemoteStorageWritesCluster", tiered, "RemoteStoreNet");
    flow("RealTimeConsumers", w.realtime_mbps, "RTConsumerCluster");
    flow("RTConsumerCluster", w.realtime_mbps, "InOutNet");
    flow("DelayedConsumers", w.delayed_mbps, "DConsumersCluster");
    flow("DConsumersCluster", w.delayed_mbps, "IO");
    flow("DConsumersCluster", w.delayed_mbps, "InOutNet");
    flow("RemoteConsumers", remote, "RConsumersCluster");
    flow("RConsumersCluster", remote, "InOutNet");
    flow("RConsumersCluster", remote, "RemoteStoreNet");
    flow("InOutNet", l.producer_network_mbps + l.consumer_network_mbps, "Net");
    flow("ClusterNet", l.replication_network_mbps, "Net");
    flow("RemoteStoreNet", l.remote_storage_network_mbps, "Net");
    format!(
        "// {} storage, ingress {:.0} MB/s, RF={} (x{followers} replication)\n{out}",
        if w.tiered { "Tiered" } else { "Local" },
        w.ingress_mbps,
        w.replication_factor
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(realtime: f64, delayed: f64, remote: f64, tiered: bool) -> Workload {
        Workload {
            ingress_mbps: 1000.0,
            replication_factor: 3,
            brokers: 3,
            realtime_mbps: realtime,
            delayed_mbps: delayed,
            remote_mbps: remote,
            tiered,
        }
    }

    #[test]
    fn seed_003_tiered_storage_with_three_consumer_kinds() {
        let p = predict(workload(1000.0, 1000.0, 1000.0, true), Capacities::default());
        assert_eq!(p.total_io_mbps, 5000.0);
        assert_eq!(p.total_network_mbps, 8000.0);
        assert_eq!(p.fan_out, 3.0);
        let sankey = sankey(&p);
        assert!(sankey.contains("InOutNet [4000] Net"), "{sankey}");
        assert!(sankey.contains("ClusterNet [2000] Net"));
        assert!(sankey.contains("RemoteStoreNet [2000] Net"));
    }

    #[test]
    fn seed_003_local_storage_and_the_cost_of_tiering() {
        let local = predict(workload(1500.0, 1500.0, 0.0, false), Capacities::default());
        assert_eq!(local.total_io_mbps, 4500.0);
        assert_eq!(local.total_network_mbps, 6000.0);
        let tiered = predict(workload(1000.0, 1000.0, 1000.0, true), Capacities::default());
        assert_eq!((tiered.total_io_mbps / local.total_io_mbps * 100.0).round(), 111.0, "+11 % I/O");
        assert_eq!((tiered.total_network_mbps / local.total_network_mbps * 100.0).round(), 133.0, "+33 % network");
    }

    #[test]
    fn seed_003_scaling_remote_consumers() {
        let p = predict(workload(1500.0, 0.0, 10_000.0, true), Capacities::default());
        assert_eq!(p.total_network_mbps, 25_500.0);
        assert_eq!(p.fan_out, 11.5);
    }

    #[test]
    fn a_container_write_limit_is_the_disk_the_brokers_have() {
        // Each broker's container may write 2.1 MB/s (the disk under it, 555): with RF 3 on
        // three brokers each writes the whole ingress, so the cluster takes 2.1 MB/s.
        let capacities = Capacities { link_mbps: Some(117.0), disk_mbps: Some(2.1), disk_is_write_limit: true };
        let p = predict(Workload::producers(2.0, 3, 3), capacities);
        assert_eq!(p.binding.as_deref(), Some("disk"));
        assert!((p.predicted_max_ingress_mbps.unwrap() - 2.1).abs() < 1e-9);
        assert_eq!(lifts(&p, 4.2)[0].change, "a write limit of 4.2 MB/s or more on each broker's container (now 2.1)");
    }

    #[test]
    fn seed_000_links_cap_ingress_at_their_capacity() {
        // 3 brokers, RF 3, no consumers, 120 Mbit/s links (15 MB/s): each broker receives
        // its share of ingress plus two replicas of the others', so the cluster takes
        // 3 × 15 / 3 = 15 MB/s of producer ingress; the team saw 12–15 MB/s.
        let workload = Workload::producers(12.0, 3, 3);
        let p =
            predict(workload, Capacities { link_mbps: Some(15.0), disk_mbps: Some(200.0), ..Capacities::default() });
        assert_eq!(p.binding.as_deref(), Some("nic_in"));
        assert!((p.predicted_max_ingress_mbps.unwrap() - 15.0).abs() < 1e-9);
        assert!((p.max_ingress_mbps.nic_out_mbps.unwrap() - 22.5).abs() < 1e-9);
        assert!((p.max_ingress_mbps.disk_mbps.unwrap() - 200.0).abs() < 1e-9);
        // Twice the ingress takes twice the links; RF 2 puts 2/3 of the ingress on each
        // broker's link, a fourth broker 3/4 of it.
        let lifts = lifts(&p, 30.0);
        assert_eq!(lifts[0].change, "links of 240 Mbit/s or more per broker (measured 120)");
        assert!((lifts[0].ceiling_mbps - 30.0).abs() < 1e-9);
        assert_eq!(lifts[1].change, "replication factor 2");
        assert!((lifts[1].ceiling_mbps - 22.5).abs() < 1e-9);
        assert_eq!(lifts[2].change, "4 brokers");
        assert!((lifts[2].ceiling_mbps - 20.0).abs() < 1e-9);
        // A target the links already allow needs nothing.
        assert!(super::lifts(&p, 10.0).is_empty());
    }
}
