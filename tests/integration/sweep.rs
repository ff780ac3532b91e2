//! Seed 002's sweep for real: a 2 × 2 grid (message size × partitions) against Apache
//! Kafka (three brokers, RF 3), a generator agent and a consumer agent, every cell recorded
//! with the reporting template; and a sweep whose cells cannot run.

use std::path::Path;

use serde_json::Value;

use crate::kafka::KafkaCluster;
use crate::support::{AgentProcess, exclusive, free_port, plateau};

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A number of the sweep's JSON; `what` names it when it is not one.
fn f(value: &Value, what: &str) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("{what} is not a number: {value}"))
}

#[test]
fn a_small_sweep_against_apache_kafka_fills_every_cell_of_the_template() {
    let _exclusive = exclusive();
    let cluster = KafkaCluster::start("sweep-warm", 1);
    let generator = AgentProcess::start(&[]);
    let consumer = AgentProcess::start(&[]);
    // The brokers' host has an agent, as every host does: its JMX series are a broker
    // host's (on loopback the generator and consumer share its address).
    let broker_host = AgentProcess::start(&[]);
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("sweep");
    // The short plan CI runs (two sizes on two partition counts), its agents and cluster
    // given as flags.
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("probes/sweep-short.toml");
    let mut args = vec![
        "sweep",
        "--plan",
        plan.to_str().unwrap(),
        "--generator",
        &generator.url,
        "--consumer",
        &consumer.url,
        "--broker",
        &broker_host.url,
        "--net-time",
        "2",
        "--bootstrap",
        &cluster.bootstrap,
        "--token-file",
        generator.token_arg(),
        "--out",
        report.to_str().unwrap(),
        "--json",
    ];
    for exporter in &cluster.exporters {
        args.extend(["--jmx", exporter.as_str()]);
    }
    let (ok, stdout, stderr) = plateau(&args);
    assert!(ok, "the sweep failed: {stderr}");
    let printed: Value = serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("{err}: {stdout}"));
    let sweep = read_json(&report.join("sweep.json"));
    assert_eq!(printed["cells"], sweep["cells"]);
    let cells = sweep["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    assert_eq!(sweep["planned_cells"], 4);
    let names: Vec<&str> = cells.iter().map(|c| c["topic"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "sweep-1000b-1p-acksall-none-1g",
            "sweep-1000b-3p-acksall-none-1g",
            "sweep-10000b-1p-acksall-none-1g",
            "sweep-10000b-3p-acksall-none-1g"
        ]
    );
    for cell in cells {
        let name = cell["topic"].as_str().unwrap();
        assert_eq!(cell["failed"], Value::Null, "{name}: {cell:#}");
        assert_eq!(cell["replication_factor"], 3, "{name}");
        let size = f(&cell["spec"]["size"], "cell['spec']['size']");
        // Produce: a sustainable rate, its MB/s measured from the bytes acknowledged.
        let produce = &cell["produce"];
        let msgs = f(&produce["msgs_per_sec"], "produce['msgs_per_sec']");
        assert!(msgs > 0.0, "{name}: {produce}");
        let mb = f(&produce["mb_per_sec"], "produce['mb_per_sec']");
        assert!((mb / (msgs * size / 1e6) - 1.0).abs() < 0.05, "{name}: {mb} MB/s at {msgs} msg/s of {size} B");
        let (p95, p99) = (
            f(&produce["latency_p95_ms"], "produce['latency_p95_ms']"),
            f(&produce["latency_p99_ms"], "produce['latency_p99_ms']"),
        );
        assert!(0.0 < p95 && p95 <= p99, "{name}: p95 {p95}, p99 {p99}");
        // The consumers read along at the rate the producers kept up at.
        let consume = &cell["consume"];
        let consumed = f(&consume["msgs_per_sec"], "consume['msgs_per_sec']");
        assert!(consumed > 0.5 * msgs, "{name}: consumed {consumed} of {msgs} msg/s");
        assert!(
            (f(&consume["mb_per_sec"], "consume['mb_per_sec']") / (consumed * size / 1e6) - 1.0).abs() < 0.05,
            "{name}: {consume}"
        );
        // The catch-up read the whole backlog it was given, once.
        let catch_up = &cell["catch_up"];
        assert_eq!(catch_up["error"], Value::Null, "{name}: {catch_up}");
        let produced = catch_up["produced_records"].as_u64().unwrap();
        assert!(produced > 0, "{name}: {catch_up}");
        assert_eq!(catch_up["backlog_records"].as_u64(), Some(produced), "{name}: {catch_up}");
        assert_eq!(catch_up["records"].as_u64(), Some(produced), "{name}: {catch_up}");
        assert_eq!((catch_up["lost"].as_u64(), catch_up["duplicated"].as_u64()), (Some(0), Some(0)), "{name}");
        let drained = f(&catch_up["drained_secs"], "catch_up['drained_secs']");
        assert!(
            (f(&catch_up["records_per_sec"], "catch_up['records_per_sec']") - produced as f64 / drained).abs() < 1.0,
            "{name}: {catch_up}"
        );
        assert!(
            (f(&catch_up["mb_per_sec"], "catch_up['mb_per_sec']")
                / (f(&catch_up["records_per_sec"], "catch_up['records_per_sec']") * size / 1e6)
                - 1.0)
                .abs()
                < 0.05
        );
        assert!(
            f(&catch_up["fetch_p95_ms"], "catch_up['fetch_p95_ms']")
                <= f(&catch_up["fetch_p99_ms"], "catch_up['fetch_p99_ms']"),
            "{name}: {catch_up}"
        );
        // Broker health from the brokers' JMX, and the rules' verdict.
        let health: Vec<&str> =
            cell["broker_health"].as_array().unwrap().iter().map(|h| h["signal"].as_str().unwrap()).collect();
        assert!(health.contains(&"kafka_under_replicated_partitions"), "{name}: {health:?}");
        assert!(health.contains(&"kafka_request_handler_idle"), "{name}: {health:?}");
        assert!(cell["verdict"]["bound"].is_string(), "{name}: {cell:#}");
        // Each cell's diagnosis is a full report of its own.
        let dir = report.join(cell["report"].as_str().unwrap());
        assert!(dir.join("findings.md").exists() && dir.join("evidence.json").exists(), "{}", dir.display());
        // Every event counted: the group read exactly what the producers had acknowledged
        // (it reads on after the load until it has), once each.
        let diagnosis = read_json(&dir.join("evidence.json"));
        let sum = |runs: &Value, field: &dyn Fn(&Value) -> Option<u64>| -> u64 {
            runs.as_array().unwrap().iter().map(|run| field(&run["report"]).unwrap_or(0)).sum()
        };
        let acked = sum(&diagnosis["produce"], &|r| r["records_acked"].as_u64());
        let read = sum(&diagnosis["consume"], &|r| r["validation"]["unique"].as_u64());
        let doubled = sum(&diagnosis["consume"], &|r| r["validation"]["duplicated"].as_u64());
        assert!(
            acked > 0 && read == acked && doubled == 0,
            "{name}: {acked} acknowledged, {read} read, {doubled} twice"
        );
    }

    // The template, the table, the CSV and the charts.
    let md = std::fs::read_to_string(report.join("sweep.md")).unwrap();
    for field in [
        "Scenario:",
        "Topic/Partitions:",
        "Message Size:",
        "Producer Acks:",
        "Produce Throughput:",
        "Consume Throughput:",
        "Latency p95/p99:",
        "Broker Health:",
        "Notes:",
    ] {
        assert_eq!(md.matches(field).count(), 4, "{field} in every cell's block:\n{md}");
    }
    let csv = std::fs::read_to_string(report.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.lines().all(|line| line.split(',').count() == csv.lines().next().unwrap().split(',').count()));
    for chart in ["by-size.svg", "by-partitions.svg"] {
        let svg = std::fs::read_to_string(report.join(chart)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<circle"), "{chart}");
    }
    // `plateau report` re-renders the same report from sweep.json alone.
    let rendered = out.path().join("again");
    let (ok, _, stderr) =
        plateau(&["report", report.join("sweep.json").to_str().unwrap(), "--out", rendered.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert_eq!(std::fs::read_to_string(rendered.join("sweep.md")).unwrap(), md);
    assert_eq!(std::fs::read_to_string(rendered.join("sweep.csv")).unwrap(), csv);
    // The cells' topics are gone, the cluster's own stays.
    let topics =
        cluster.tool("org.apache.kafka.tools.TopicCommand", &["--bootstrap-server", &cluster.bootstrap, "--list"]);
    assert!(!topics.contains("sweep-1000b"), "{topics}");
    assert!(topics.contains("sweep-warm"), "{topics}");
}

#[test]
fn cells_that_cannot_run_are_recorded_and_a_bad_grid_is_named() {
    let _exclusive = exclusive();
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("sweep");
    let dead = format!("http://127.0.0.1:{}", free_port());
    let token = out.path().join("token");
    std::fs::write(&token, "token\n").unwrap();
    let (code, stdout, stderr) = crate::support::plateau_status(&[
        "sweep",
        "--generator",
        &dead,
        "--bootstrap",
        &format!("127.0.0.1:{}", free_port()),
        "--topic",
        "sweep",
        "--sizes",
        "1000",
        "--partition-counts",
        "1,2",
        "--token-file",
        token.to_str().unwrap(),
        "--out",
        report.to_str().unwrap(),
        "--json",
    ]);
    // A sweep of failed cells still reports them, and says it had nothing to judge (exit 3).
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("nothing to judge: no cell delivered a record"), "{stderr}");
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    assert!(printed["error"].as_str().unwrap().contains(&dead), "{printed}");
    let cells = printed["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2);
    for cell in cells {
        let failed = cell["failed"].as_str().unwrap_or_else(|| panic!("{cell:#}"));
        assert!(failed.contains(&dead), "{failed}");
    }
    let md = std::fs::read_to_string(report.join("sweep.md")).unwrap();
    assert!(md.contains("failed:"), "{md}");

    let (code, _, stderr) = crate::support::plateau_status(&[
        "sweep",
        "--generator",
        &dead,
        "--bootstrap",
        "b:9092",
        "--topic",
        "t",
        "--sizes",
        "100",
        "--token-file",
        token.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("size 100 is out of range; use 512 bytes to 1 MiB"), "{stderr}");
}
