//! The pipeline past Kafka, for real: plateau's generators → Apache Kafka (three brokers,
//! RF 3) → plateau's consumer group → PostgreSQL, every event accounted for; and the
//! consume run's errors for what a user can get wrong.

use std::sync::Arc;
use std::time::Duration;

use plateau::kafka::consume::sink::SinkConfig;
use plateau::kafka::consume::{ConsumeConfig, ConsumeControl, ConsumeReport, StartAt, run_consume};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::kafka::KafkaCluster;
use crate::support::{PostgresProcess, eventually, exclusive, free_port, plateau, plateau_status};

/// Starts a consume run in the background; returns once its group's start offsets are
/// committed (it reads everything produced from then on).
fn start_consuming(
    config: ConsumeConfig,
) -> (Arc<ConsumeControl>, std::thread::JoinHandle<Result<ConsumeReport, plateau::kafka::consume::ConsumeError>>) {
    let control = Arc::new(ConsumeControl::default());
    let run = {
        let control = Arc::clone(&control);
        std::thread::spawn(move || run_consume(&config, &control, |_| {}))
    };
    eventually(Duration::from_secs(40), || control.live.lock().unwrap().started_at)
        .expect("the consume run did not start within 40 s");
    (control, run)
}

/// Produces seed 000 events for one device by hand: `(seq, event id)` in this order.
fn produce_by_hand(bootstrap: &str, topic: &str, device: &str, events: &[(u64, uuid::Uuid)]) {
    let producer: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    for (seq, id) in events {
        let payload = format!(
            r#"{{"event_id":"{id}","device_id":"{device}","timestamp":"{}","seq":{seq},"metrics":{{"temperature":21.4,"humidity":48.2,"pressure":1012.4}},"status":"OK"}}"#,
            humantime::format_rfc3339_millis(std::time::SystemTime::now())
        );
        producer.send(BaseRecord::to(topic).key(device).payload(&payload)).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

#[test]
fn every_event_produced_is_in_postgresql_exactly_once_and_a_dropped_or_doubled_one_is_counted() {
    let _exclusive = exclusive();
    let cluster = KafkaCluster::start("pipeline", 6);
    let postgres = PostgresProcess::start();
    let mut config = ConsumeConfig::new(&cluster.bootstrap, "pipeline", 2);
    config.time_secs = None;
    config.interval = Duration::from_millis(500);
    config.sink = Some(SinkConfig { url: postgres.url.clone(), table: "events".into(), addresses: vec![] });
    let (control, run) = start_consuming(config);

    // The generators: plateau's produce run, 500 devices keyed by device id.
    let (ok, stdout, stderr) = plateau(&[
        "produce",
        "--bootstrap",
        &cluster.bootstrap,
        "--topic",
        "pipeline",
        "--rate",
        "3000",
        "--time",
        "6s",
        "--devices",
        "500",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let produced: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let acked = produced["records_acked"].as_u64().unwrap();
    assert!(acked > 10_000, "the generators acknowledged only {acked} events");
    // A device whose event 3 never left it and whose event 2 was sent twice.
    let by_hand_ms = now_ms();
    let ids: Vec<uuid::Uuid> = (0..4).map(|_| uuid::Uuid::new_v4()).collect();
    produce_by_hand(
        &cluster.bootstrap,
        "pipeline",
        "sensor-9999",
        &[(1, ids[0]), (2, ids[1]), (4, ids[3]), (2, ids[1])],
    );

    let total = acked + 4;
    eventually(Duration::from_secs(60), || {
        let live = control.live.lock().unwrap();
        (live.consumed >= total && live.lag == Some(0)).then_some(())
    })
    .unwrap_or_else(|| panic!("the group did not catch up: {:?}", control.live.lock().unwrap()));
    control.cancel.cancel();
    let report = run.join().unwrap().expect("the consume run failed");

    let v = &report.validation;
    assert!(v.from_first_event);
    assert_eq!(report.consumed, total, "every event produced was read, the doubled one twice");
    assert_eq!(v.unique, acked + 3);
    assert_eq!((v.lost, v.duplicated, v.out_of_order, v.foreign), (1, 1, 0, 0), "{v:?}");
    assert_eq!(v.devices, 501);
    let sink = report.sink.as_ref().unwrap();
    assert_eq!((sink.rows_inserted, sink.rows_already_stored, sink.failed_batches), (acked + 3, 1, 0), "{sink:?}");
    assert!(sink.insert_ms.count > 0 && sink.insert_ms.avg > 0.0);
    assert_eq!(report.e2e_ms.count, total);
    assert!(report.e2e_ms.avg > 0.0 && report.e2e_ms.p50 < 5000.0, "{:?}", report.e2e_ms);
    assert_eq!(report.membership.assigned.iter().sum::<usize>(), 6, "{:?}", report.membership);
    assert_eq!(report.membership.idle_members, 0);

    // PostgreSQL's own account: each event once, and each generator device complete.
    let mut db = postgres.client();
    let row = db.query_one("SELECT count(*), count(DISTINCT event_id) FROM events", &[]).unwrap();
    let (rows, distinct): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!((rows as u64, distinct as u64), (acked + 3, acked + 3));
    let incomplete: i64 = db
        .query_one(
            "SELECT count(*) FROM (SELECT device_id FROM events WHERE device_id <> 'sensor-9999' \
             GROUP BY device_id HAVING count(*) <> max(seq)) AS gaps",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(incomplete, 0, "a generator device is missing events in PostgreSQL");
    let seqs: Vec<i64> = db
        .query("SELECT seq FROM events WHERE device_id = 'sensor-9999' ORDER BY seq", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(seqs, [1, 2, 4]);

    // The same topic read again as a backlog, by fresh groups: all of it from the earliest
    // offset, and only the events sent by hand from the time they were sent.
    let catch_up = |start_at: StartAt| {
        let mut config = ConsumeConfig::new(&cluster.bootstrap, "pipeline", 3);
        config.time_secs = Some(Duration::from_secs(60));
        config.start_at = start_at;
        config.until_drained = true;
        let started = std::time::Instant::now();
        let report = run_consume(&config, &ConsumeControl::default(), |_| {}).expect("the catch-up run failed");
        assert!(started.elapsed() < Duration::from_secs(50), "the catch-up run did not stop once drained");
        report
    };
    let everything = catch_up(StartAt::Earliest);
    let drained = everything.catch_up.as_ref().expect("a catch-up run reports its drain");
    assert_eq!(drained.backlog_records, total);
    assert_eq!(drained.records, total);
    let secs = drained.drained_secs.expect("the backlog was drained");
    assert!(secs > 0.0 && secs <= everything.duration_secs, "{drained:?}");
    assert!((drained.records_per_sec - total as f64 / secs).abs() < 1e-6 * drained.records_per_sec);
    assert!(drained.bytes > 200 * total, "{drained:?}");
    assert_eq!(everything.validation.unique, acked + 3);
    assert!(!everything.validation.from_first_event);
    let by_hand = catch_up(StartAt::Time(by_hand_ms));
    let drained = by_hand.catch_up.as_ref().unwrap();
    assert_eq!((drained.backlog_records, drained.records), (4, 4), "{drained:?}");
    assert_eq!((by_hand.validation.lost, by_hand.validation.duplicated), (1, 1));
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[test]
fn members_beyond_the_partitions_stay_idle() {
    let _exclusive = exclusive();
    let cluster = KafkaCluster::start("narrow", 2);
    let mut config = ConsumeConfig::new(&cluster.bootstrap, "narrow", 4);
    config.time_secs = Some(Duration::from_secs(8));
    let (_control, run) = start_consuming(config);
    let report = run.join().unwrap().expect("the consume run failed");
    let membership = &report.membership;
    assert_eq!(membership.assigned.iter().sum::<usize>(), 2, "{membership:?}");
    assert_eq!(membership.idle_members, 2, "{membership:?}");
    assert!(membership.join_ms > 0.0);
}

#[test]
fn a_sink_or_a_cluster_that_cannot_be_reached_is_named_with_what_to_fix() {
    let closed = free_port();
    let (status, _, stderr) = plateau_status(&[
        "consume",
        "--bootstrap",
        "127.0.0.1:1",
        "--topic",
        "t",
        "--time",
        "5s",
        "--sink",
        &format!("postgres://plateau:secret@127.0.0.1:{closed}/plateau"),
    ]);
    assert_eq!(status, Some(1));
    assert!(stderr.contains("cannot write to PostgreSQL") && stderr.contains("check --sink"), "{stderr}");
    assert!(!stderr.contains("secret"), "the password leaked: {stderr}");

    let (status, _, stderr) =
        plateau_status(&["consume", "--bootstrap", "127.0.0.1:1", "--topic", "t", "--time", "5s"]);
    assert_eq!(status, Some(1));
    assert!(stderr.contains("cannot reach the Kafka cluster at 127.0.0.1:1"), "{stderr}");
    // One line that says what, not librdkafka's statistics and "all brokers down" (62 KB
    // of them once), and no colour codes in a redirected stream.
    assert!(stderr.len() < 2_000 && !stderr.contains('\x1b'), "{} bytes: {stderr}", stderr.len());

    let (status, _, stderr) =
        plateau_status(&["consume", "--bootstrap", "h:9092", "--topic", "t", "--members", "0", "--time", "5s"]);
    assert_eq!(status, Some(2));
    assert!(stderr.contains("--members 0 is out of range; use 1 to 64"), "{stderr}");
    let (status, _, stderr) = plateau_status(&[
        "consume",
        "--bootstrap",
        "h:9092",
        "--topic",
        "t",
        "--sink",
        "postgres://u@h/db",
        "--sink-table",
        "events; drop table x",
    ]);
    assert_eq!(status, Some(2));
    assert!(stderr.contains("not a plain table name"), "{stderr}");
}
