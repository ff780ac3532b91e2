//! Produce runs against a real broker (tansu, memory storage, started per test):
//! delivery validated end to end, rate accuracy, a ramp that finds a plateau, partition
//! counts and key skew, the agent as a generator, and bad input.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{AgentProcess, TansuBroker, eventually, exclusive, plateau};

fn produce(broker: &TansuBroker, topic: &str, extra: &[&str]) -> Value {
    let mut args = vec!["produce", "--bootstrap", &broker.bootstrap, "--topic", topic, "--json"];
    args.extend_from_slice(extra);
    let (ok, stdout, stderr) = plateau(&args);
    assert!(ok, "plateau produce {extra:?} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("--json output does not parse ({err}): {stdout}"))
}

#[test]
fn produced_events_are_all_read_back_once_and_in_order() {
    let _exclusive = exclusive();
    let broker = TansuBroker::start();
    broker.create_topic("telemetry", 6);
    let report = produce(&broker, "telemetry", &["--rate", "2000", "--time", "3", "--devices", "500", "--validate"]);
    let acked = report["records_acked"].as_u64().unwrap();
    assert!(acked > 5000, "{report}");
    assert_eq!(report["records_sent"].as_u64().unwrap(), acked, "every record sent was acknowledged");
    assert_eq!(report["errors"]["total"], 0);
    let validation = &report["validation"];
    assert_eq!(validation["lost"], 0, "{validation}");
    assert_eq!(validation["duplicated"], 0, "{validation}");
    assert_eq!(validation["out_of_order"], 0, "{validation}");
    assert_eq!(validation["consumed"].as_u64(), Some(acked));
    assert_eq!(validation["complete"], true);
    assert!(validation["e2e_latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    for field in ["p50", "p95", "p99", "p999", "max"] {
        assert!(report["latency_ms"][field].as_f64().is_some(), "latency_ms.{field}");
    }
    for field in ["p50", "p99", "max"] {
        assert!(report["publish_delay_ms"][field].as_f64().is_some(), "publish_delay_ms.{field}");
    }
    assert!(report["brokers"][0]["rtt_us"]["p99"].as_i64().is_some(), "librdkafka statistics: {}", report["brokers"]);
}

#[test]
fn a_fixed_rate_is_held() {
    let _exclusive = exclusive();
    let broker = TansuBroker::start();
    broker.create_topic("telemetry", 6);
    let report = produce(&broker, "telemetry", &["--rate", "3000", "--time", "4", "--interval", "1"]);
    assert_eq!(report["target_rate"], 3000);
    let intervals = report["intervals"].as_array().unwrap();
    // The first second includes connecting and the producer's idempotence set-up.
    for interval in &intervals[1..intervals.len() - 1] {
        let rate = interval["records_per_sec"].as_f64().unwrap();
        assert!((2850.0..3150.0).contains(&rate), "interval at {} s: {rate} msg/s", interval["end_secs"]);
    }
    let sent = report["records_sent"].as_f64().unwrap();
    assert!((sent / 12_000.0 - 1.0).abs() < 0.03, "sent {sent} records in 4 s at 3000/s");
}

#[test]
fn a_ramp_stops_at_the_plateau() {
    let _exclusive = exclusive();
    let broker = TansuBroker::start();
    broker.create_topic("telemetry", 6);
    // One request in flight and one record per batch: a client-side ceiling of one
    // round trip per record, well below the ramp's maximum. Steps of 3 s: in 2 s the first
    // step's start-up (connecting to the leader) left it at 97 % of its target here, and
    // under CI's parallel load it once fell below the 95 % that counts as keeping up. The
    // first step is low: under that load the ceiling once fell under 1,000 msg/s, and a
    // first step of 1,000 missed with the second.
    let report = produce(
        &broker,
        "telemetry",
        &[
            "--ramp",
            "200:1500:3:60000",
            "--linger-ms",
            "0",
            "--batch-messages",
            "1",
            "-X",
            "max.in.flight.requests.per.connection=1",
            // Generous: under CI's parallel load the first step's p99 once passed 100 ms,
            // and with the first step at 200 msg/s once passed 1 s (its start-up stall).
            "--sla-p99-ms",
            "5000",
        ],
    );
    let steps = report["steps"].as_array().unwrap();
    assert!(steps.len() >= 3 && steps.len() < 40, "the ramp ran {} of 40 steps", steps.len());
    let last_two: Vec<bool> = steps[steps.len() - 2..].iter().map(|s| s["sustained"].as_bool().unwrap()).collect();
    assert_eq!(last_two, [false, false], "a ramp stops after two steps that did not keep up");
    let sustained = report["max_sustained_rate"].as_f64().unwrap();
    assert!((190.0..60_000.0).contains(&sustained), "{sustained}");
    let within_sla = report["max_rate_within_sla"].as_u64().expect("no step met a p99 of 5 s");
    assert!(within_sla as f64 <= sustained * 1.06, "SLA rate {within_sla} above the sustained {sustained}");
    // The client's queue, not the network, held the records: librdkafka says so.
    let queue_p99 = report["brokers"][0]["int_latency_us"]["p99"].as_i64().unwrap();
    let rtt_p99 = report["brokers"][0]["rtt_us"]["p99"].as_i64().unwrap();
    assert!(queue_p99 > rtt_p99, "queue p99 {queue_p99} µs vs rtt p99 {rtt_p99} µs");
}

#[test]
fn partitions_are_counted_and_key_skew_predicted() {
    let _exclusive = exclusive();
    let broker = TansuBroker::start();
    broker.create_topic("telemetry", 12);
    let keyed = produce(&broker, "telemetry", &["--rate", "1000", "--time", "2", "--devices", "3"]);
    let partitions = &keyed["partitions"];
    let counts: Vec<u64> = partitions["counts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect();
    assert_eq!(counts.len(), 12);
    assert_eq!(counts.iter().sum::<u64>(), keyed["records_acked"].as_u64().unwrap());
    assert!(partitions["used"].as_u64().unwrap() <= 3, "3 keys fill at most 3 partitions: {partitions}");
    assert!(partitions["skew"].as_f64().unwrap() >= 4.0, "{partitions}");
    let expected = partitions["expected_used"].as_f64().unwrap();
    assert!((expected - 12.0 * (1.0 - (11.0f64 / 12.0).powi(3))).abs() < 1e-6);

    // One key, more workers than devices: the rate is still sent in full (a worker
    // without devices used to quit and take its share of the rate with it).
    let one_key = produce(&broker, "telemetry", &["--rate", "600", "--time", "3", "--devices", "1", "--workers", "4"]);
    assert_eq!(one_key["partitions"]["used"], 1, "{}", one_key["partitions"]);
    let sent = one_key["records_sent"].as_f64().unwrap();
    assert!((sent / 1800.0 - 1.0).abs() < 0.05, "sent {sent} records in 3 s at 600/s with one device");

    let unkeyed = produce(&broker, "telemetry", &["--rate", "2000", "--time", "2", "--key", "random"]);
    assert_eq!(unkeyed["partitions"]["used"], 12, "{}", unkeyed["partitions"]);
    assert!(unkeyed["partitions"]["skew"].as_f64().unwrap() < 1.5);
    assert!(unkeyed["partitions"]["expected_used"].is_null());
}

#[test]
fn an_agent_runs_a_generator_that_can_be_retargeted_and_stopped() {
    let _exclusive = exclusive();
    let broker = TansuBroker::start();
    broker.create_topic("telemetry", 6);
    let agent = AgentProcess::start(&[]);
    let client = reqwest::blocking::Client::new();
    let post = |path: &str, body: Value| {
        client.post(format!("{}{path}", agent.url)).bearer_auth(&agent.token).json(&body).send().unwrap()
    };
    let produce_status = || -> Value {
        let status: Value = client.get(format!("{}/status", agent.url)).send().unwrap().json().unwrap();
        status["probes"]["produce"].clone()
    };

    let unauthorized = client.post(format!("{}/kafka/produce", agent.url)).json(&json!({})).send().unwrap();
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    let started =
        post("/kafka/produce", json!({"bootstrap": broker.bootstrap, "topic": "telemetry", "rate": 1000, "time": 60}));
    assert_eq!(started.status(), StatusCode::ACCEPTED, "{:?}", started.text());
    let busy = post("/kafka/produce", json!({"bootstrap": broker.bootstrap, "topic": "telemetry", "rate": 1000}));
    assert_eq!(busy.status(), StatusCode::CONFLICT);

    let running = eventually(Duration::from_secs(15), || {
        let status = produce_status();
        let rate = status["stats"]["current_rate_mps"].as_f64()?;
        (rate > 900.0).then_some(status)
    })
    .expect("the generator never reached 1000 msg/s");
    // Seed 000's generator status shape.
    for field in ["running", "topic", "target_rate_mps", "devices_count", "msg_size_bytes", "workers"] {
        assert!(running.get(field).is_some(), "status lacks {field}: {running}");
    }
    for field in ["started_at", "sent_ok", "sent_err", "bytes_sent", "current_rate_mps", "last_error"] {
        assert!(running["stats"].get(field).is_some(), "stats lack {field}: {running}");
    }
    assert_eq!(running["topic"], "telemetry");

    assert_eq!(post("/kafka/rate", json!({"rate": 3000})).status(), StatusCode::OK);
    eventually(Duration::from_secs(20), || {
        let rate = produce_status()["stats"]["current_rate_mps"].as_f64()?;
        (2700.0..3300.0).contains(&rate).then_some(())
    })
    .expect("the new rate never took effect");
    assert_eq!(produce_status()["target_rate_mps"], 3000);

    let stop_asked = Instant::now();
    assert_eq!(post("/kafka/stop", json!({})).status(), StatusCode::OK);
    eventually(Duration::from_secs(15), || (produce_status()["running"] == false).then_some(()))
        .expect("the run did not stop");
    assert!(stop_asked.elapsed() < Duration::from_secs(15));
    let report: Value = client.get(format!("{}/kafka/report", agent.url)).send().unwrap().json().unwrap();
    assert_eq!(report["report"]["stopped_early"], "stopped on request", "{report}");
    assert!(report["report"]["records_acked"].as_u64().unwrap() > 1000, "{report}");
    assert_eq!(post("/kafka/stop", json!({})).status(), StatusCode::CONFLICT, "nothing left to stop");
}

#[test]
fn bad_input_gets_clear_errors() {
    let broker = TansuBroker::start();
    broker.create_topic("telemetry", 3);
    let closed = format!("127.0.0.1:{}", crate::support::free_port());
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--bootstrap", &closed, "--topic", "telemetry", "--rate", "100"],
            format!("cannot reach the Kafka cluster at {closed}"),
        ),
        (
            vec!["--bootstrap", &broker.bootstrap, "--topic", "telemetry", "--rate", "100", "-X", "no.such.property=1"],
            "No such configuration property".into(),
        ),
        (vec!["--bootstrap", &broker.bootstrap, "--topic", "missing-topic", "--rate", "100"], "does not exist".into()),
        (vec!["--bootstrap", &broker.bootstrap, "--topic", "telemetry", "--rate", "-5"], "positive number".into()),
        (
            vec!["--bootstrap", &broker.bootstrap, "--topic", "telemetry", "--rate", "99999999999"],
            "out of range".into(),
        ),
        (
            vec!["--bootstrap", &broker.bootstrap, "--topic", "telemetry", "--ramp", "10:5"],
            "START:STEP:EVERY_S:MAX".into(),
        ),
    ];
    for (args, expected) in cases {
        let started = Instant::now();
        let mut full = vec!["produce", "--time", "1"];
        full.extend_from_slice(&args);
        let (ok, _, stderr) = plateau(&full);
        assert!(!ok, "{args:?} succeeded");
        assert!(stderr.contains(&expected), "{args:?}: expected {expected:?} in {stderr:?}");
        assert!(started.elapsed() < Duration::from_secs(10), "{args:?} took {:?}", started.elapsed());
    }
}

#[test]
fn sasl_scram_against_an_authenticating_broker() {
    let _exclusive = exclusive();
    // tansu's admin commands cannot authenticate, so the user and topic are created
    // first on a broker without authentication, then the same sqlite storage is served
    // with authentication required. (tansu 0.6 cannot serve TLS from its command line:
    // its --cert and --key options exclude each other.)
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    {
        let open = TansuBroker::start_with(port, "sqlite://tansu.db", dir.path(), &[]);
        open.create_user("alice", "s3cret");
        open.create_topic("secured", 2);
    }
    let broker = TansuBroker::start_with(port, "sqlite://tansu.db", dir.path(), &["--authentication"]);
    let sasl =
        ["-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanism=SCRAM-SHA-512", "-X", "sasl.username=alice"];
    let mut good = vec!["--rate", "200", "--time", "2", "--validate", "-X", "sasl.password=s3cret"];
    good.extend_from_slice(&sasl);
    let report = produce(&broker, "secured", &good);
    assert!(report["records_acked"].as_u64().unwrap() > 200, "{report}");
    assert_eq!(report["validation"]["lost"], 0, "the validating consumer authenticates too");

    let mut bad = vec![
        "produce",
        "--bootstrap",
        &broker.bootstrap,
        "--topic",
        "secured",
        "--rate",
        "100",
        "--time",
        "1",
        "-X",
        "sasl.password=wrong",
    ];
    bad.extend_from_slice(&sasl);
    let (ok, _, stderr) = plateau(&bad);
    assert!(!ok);
    assert!(stderr.contains("SASL authentication error"), "{stderr}");
}
