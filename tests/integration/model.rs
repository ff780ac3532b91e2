//! `plateau model` on seed 003's worked examples and seed 000's links.

use serde_json::Value;

use crate::support::plateau;

fn model(args: &[&str]) -> Value {
    let mut full = vec!["model", "--json"];
    full.extend_from_slice(args);
    let (ok, stdout, stderr) = plateau(&full);
    assert!(ok, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn seed_003_examples_from_the_command_line() {
    let tiered = model(&[
        "--ingress-mbps",
        "1000",
        "--rf",
        "3",
        "--tiered",
        "--realtime-mbps",
        "1000",
        "--delayed-mbps",
        "1000",
        "--remote-mbps",
        "1000",
    ]);
    assert_eq!(tiered["total_io_mbps"], 5000.0);
    assert_eq!(tiered["total_network_mbps"], 8000.0);
    let local = model(&["--ingress-mbps", "1000", "--rf", "3", "--realtime-mbps", "1500", "--delayed-mbps", "1500"]);
    assert_eq!(local["total_io_mbps"], 4500.0);
    assert_eq!(local["total_network_mbps"], 6000.0);
    let remote = model(&[
        "--ingress-mbps",
        "1000",
        "--rf",
        "3",
        "--tiered",
        "--realtime-mbps",
        "1500",
        "--remote-mbps",
        "10000",
    ]);
    assert_eq!(remote["total_network_mbps"], 25500.0);
    assert_eq!(remote["fan_out"], 11.5);
    assert_eq!(remote["loads"]["replication_network_mbps"], 2000.0);
}

#[test]
fn measured_capacities_name_the_binding_resource() {
    let seed_000 =
        model(&["--ingress-mbps", "12", "--rf", "3", "--brokers", "3", "--link-mbit", "120", "--disk-mbps", "200"]);
    assert_eq!(seed_000["binding"], "nic_in");
    assert_eq!(seed_000["predicted_max_ingress_mbps"], 15.0);
    let (ok, _, stderr) = plateau(&["model", "--ingress-mbps", "10", "--rf", "3", "--brokers", "2"]);
    assert!(!ok);
    assert!(stderr.contains("--rf 3 needs at least that many --brokers"), "{stderr}");
    let (ok, stdout, _) =
        plateau(&["model", "--ingress-mbps", "1000", "--rf", "3", "--tiered", "--remote-mbps", "1000", "--sankey"]);
    assert!(ok);
    assert!(stdout.contains("Producers [1000] ProducersCluster"), "{stdout}");
}
