//! `plateau diagnose` end to end on loopback: a real broker (tansu), real agents as the
//! generator and broker hosts, the network and disk probes, the ramp, the rules and the
//! report; an unreachable Prometheus and an agent that dies mid-run still give a report.
//! `plateau report` re-renders a saved evidence.json exactly (snapshot).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{
    AgentProcess, TansuBroker, exclusive, free_port, plateau, plateau_bin, plateau_status, wait_with_timeout,
};

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_client_side_ceiling_is_named_with_evidence_and_a_full_report() {
    let _exclusive = exclusive();
    let broker = TansuBroker::start();
    let generator = AgentProcess::start(&[]);
    let broker_host = AgentProcess::start(&[]);
    let out = tempfile::tempdir().unwrap();
    let report_dir = out.path().join("report");
    let dead_prometheus = format!("http://127.0.0.1:{}", free_port());
    // One request in flight and one record per batch: the producer's own ceiling, far
    // below the search's top, while the link and the disk have room to spare. The load is
    // the default rate search (its steps held 2 s here).
    let (ok, stdout, stderr) = plateau(&[
        "diagnose",
        "--generator",
        &generator.url,
        "--broker",
        &broker_host.url,
        "--bootstrap",
        &broker.bootstrap,
        "--topic",
        "diagnosed",
        "--partitions",
        "6",
        "--search",
        "1000:60000:2",
        "-X",
        "linger.ms=0",
        "-X",
        "batch.num.messages=1",
        "-X",
        "max.in.flight.requests.per.connection=1",
        "--disk-size",
        "16M",
        "--net-time",
        "2",
        "--prometheus",
        &dead_prometheus,
        "--token-file",
        generator.token_arg(),
        "--out",
        report_dir.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "diagnose failed: {stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("{err}: {stdout}"));
    let verdict = &summary["verdict"];
    assert_eq!(verdict["bound"], "client", "{summary:#}");
    assert!(verdict["confidence"].as_f64().unwrap() >= 0.5, "{summary:#}");
    assert_eq!(verdict["plateau_found"], true);
    let level = verdict["plateau_msgs_per_sec"].as_f64().unwrap();
    // Far below the search's top; how far depends on the machine's load (one record per
    // round trip: a loaded CI once put it at 880 msg/s, under the search's first step).
    assert!((100.0..60_000.0).contains(&level), "plateau at {level} msg/s");
    let evidence: Vec<&str> = verdict["evidence"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(evidence.iter().any(|line| line.contains("max.in.flight.requests.per.connection = 1")), "{evidence:?}");
    // The unreachable Prometheus is reported as missing, not fatal.
    let missing = verdict["missing"].to_string();
    assert!(missing.contains(&dead_prometheus), "{missing}");
    // An unthrottled producer's throttle is zero, not missing (librdkafka's throttle window
    // counts only throttled responses): the quota rules are judged, not unknown.
    assert!(!missing.contains("producer_throttle_ms@cluster"), "{missing}");

    // evidence.json holds everything measured: the probes, the ramp, the samples.
    let saved = read_json(&report_dir.join("evidence.json"));
    assert_eq!(saved["version"], 1);
    let link = saved["network"][0]["bits_per_second"].as_f64().unwrap();
    assert!(link > 1e9, "loopback TCP measured at {link} bit/s");
    assert!(saved["disks"][0]["write_mb_per_sec"].as_f64().unwrap() > 1.0);
    // The search grew the target, overshot the ceiling and closed in on it: its knee is
    // the lowest target missed, and every target above it missed too.
    let steps = saved["ramp"].as_array().unwrap();
    let target = |s: &Value| s["target_rate"].as_f64().unwrap();
    assert!((3..=16).contains(&steps.len()), "{steps:?}");
    assert!(steps.windows(2).any(|pair| target(&pair[1]) < target(&pair[0])), "the search came back down: {steps:?}");
    let knee = saved["plateau"]["knee_step"].as_u64().unwrap() as usize;
    for step in steps {
        assert_eq!(step["sustained"] == false, target(step) >= target(&steps[knee]), "{steps:?}");
        assert!(step["measured_from_ms"].as_u64().unwrap() > step["started_ms"].as_u64().unwrap());
    }
    let kept_up = steps.iter().filter(|s| s["sustained"] == true).map(target).fold(0.0, f64::max);
    assert!(target(&steps[knee]) <= kept_up * 1.06, "the bracket is within 5 %: {steps:?}");
    let signals: Vec<&str> =
        saved["evidence"]["series"].as_array().unwrap().iter().filter_map(|s| s["signal"].as_str()).collect();
    for expected in ["host_cpu_busy", "net_link_capacity_bits_per_sec", "disk_fsync_p99_ms", "producer_queue_p99_ms"] {
        assert!(signals.contains(&expected), "{expected} not in {signals:?}");
    }

    let findings = std::fs::read_to_string(report_dir.join("findings.md")).unwrap();
    for section in [
        "## Verdict",
        "## Evidence",
        "## Network",
        "## Disk",
        "## CPU",
        "## Kafka",
        "## Capacity model",
        "## What was missing",
        "## How to reproduce",
    ] {
        assert!(findings.contains(section), "findings.md lacks {section}");
    }
    assert!(findings.contains("**client**-bound"), "{findings}");
    let svg = std::fs::read_to_string(report_dir.join("timeline.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("achieved"), "timeline.svg is not the chart");

    // `plateau report` renders the same findings from evidence.json alone.
    let again = out.path().join("again");
    let (ok, _, stderr) =
        plateau(&["report", report_dir.join("evidence.json").to_str().unwrap(), "--out", again.to_str().unwrap()]);
    assert!(ok, "plateau report failed: {stderr}");
    assert_eq!(std::fs::read_to_string(again.join("findings.md")).unwrap(), findings);
}

#[test]
fn an_agent_that_dies_mid_run_leaves_a_report_of_the_rest() {
    let _exclusive = exclusive();
    let broker = TansuBroker::start();
    let survivor = AgentProcess::start(&[]);
    let mut doomed = AgentProcess::start(&[]);
    let out = tempfile::tempdir().unwrap();
    let mut diagnose = Command::new(plateau_bin())
        .args(["diagnose", "--generator", &survivor.url, "--generator", &doomed.url, "--bootstrap", &broker.bootstrap])
        .args(["--topic", "survived", "--partitions", "3", "--ramp", "1000:500:2:3000", "--skip-net", "--skip-disk"])
        .args(["--token-file", survivor.token_arg(), "--json", "--out"])
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The ramp runs 10 s; the second generator's agent dies 4 s in.
    std::thread::sleep(Duration::from_secs(4));
    doomed.child.kill().unwrap();
    let status =
        wait_with_timeout(&mut diagnose, Duration::from_secs(60)).expect("diagnose did not finish within 60 s");
    let output = diagnose.wait_with_output().unwrap();
    assert!(status.success(), "diagnose failed: {}", String::from_utf8_lossy(&output.stderr));

    let saved = read_json(&out.path().join("evidence.json"));
    let runs = saved["produce"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs[0]["report"]["records_acked"].as_u64().unwrap() > 5_000, "{:#}", runs[0]);
    assert!(runs[1]["report"].is_null() && runs[1]["error"].is_string(), "{:#}", runs[1]);
    let missing = saved["verdict"]["missing"].to_string();
    assert!(missing.contains(&doomed.url), "the dead agent is not named in what was missing: {missing}");
    assert!(out.path().join("findings.md").is_file());
}

#[test]
fn bad_input_gets_clear_errors() {
    let agent = AgentProcess::start(&[]);
    let base = ["diagnose", "--bootstrap", "127.0.0.1:9", "--topic", "t"];
    let cases: [(&[&str], &str); 5] = [
        (&["--ramp", "1000:1000:2:5000", "--token-file", agent.token_arg()], "at least one generator"),
        (&["--generator", &agent.url, "--ramp", "5000:1000:2:1000", "--token-file", agent.token_arg()], "ramp"),
        (
            &["--generator", "127.0.0.1:7070", "--ramp", "1000:1000:2:5000", "--token-file", agent.token_arg()],
            "is not an agent URL",
        ),
        (&["--generator", &agent.url, "--ramp", "1000:1000:2:5000"], "--token-file"),
        (
            &[
                "--generator",
                &agent.url,
                "--ramp",
                "1000:1000:2:5000",
                "--token-file",
                agent.token_arg(),
                "--rules",
                "/nonexistent",
            ],
            "/nonexistent",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        // A plan that cannot run exits with 2, as the README promises.
        let (code, _, stderr) = plateau_status(&args);
        assert_eq!(code, Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(expected), "{extra:?}: expected '{expected}' in: {stderr}");
    }
    let (code, _, stderr) = plateau_status(&["diagnose", "--topic", "t"]);
    assert!(code == Some(2) && stderr.contains("--bootstrap"), "{stderr}");
    // -X reaches the generators' agents: what an agent refuses is refused up front.
    let (code, _, stderr) = plateau_status(&[
        "diagnose",
        "--bootstrap",
        "127.0.0.1:9",
        "--topic",
        "t",
        "--generator",
        &agent.url,
        "--token-file",
        agent.token_arg(),
        "-X",
        "plugin.library.paths=/tmp/evil.so",
    ]);
    assert!(code == Some(2) && stderr.contains("loads code"), "{stderr}");
    let (ok, _, stderr) = plateau(&["report", "/nonexistent/evidence.json"]);
    assert!(!ok && stderr.contains("cannot read /nonexistent/evidence.json"), "{stderr}");
}

#[test]
fn a_saved_diagnosis_renders_the_same_findings() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/diagnose/client-bound/evidence.json");
    let diagnosis = plateau::report::findings::read_evidence(&path).unwrap();
    insta::assert_snapshot!(plateau::report::findings::markdown(&diagnosis));
}

/// The verdict has one home (`verdict::judge`), which diagnose and the controller's
/// "Diagnose now" both call: judging a saved diagnosis's evidence again gives its verdict.
#[test]
fn the_saved_evidence_judged_again_gives_the_same_verdict() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/diagnose/client-bound/evidence.json");
    let diagnosis = plateau::report::findings::read_evidence(&path).unwrap();
    let rules = plateau::rules::RuleSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).unwrap();
    let judged = diagnosis.clone().judged_again(&rules);
    let saved = &diagnosis.verdict;
    assert_eq!(judged.verdict.bound, saved.bound);
    assert_eq!(judged.verdict.runner_up, saved.runner_up);
    assert!(
        (judged.verdict.confidence - saved.confidence).abs() < 0.05,
        "{} vs {}",
        judged.verdict.confidence,
        saved.confidence
    );
    // Rules added since it was saved may add lines (the headroom rules); none is lost.
    let texts = |v: &plateau::rules::Verdict| v.evidence.iter().map(|e| e.text.clone()).collect::<Vec<_>>();
    let judged_texts = texts(&judged.verdict);
    for line in texts(saved) {
        assert!(judged_texts.contains(&line), "{line:?} not in {judged_texts:?}");
    }
    assert_eq!(judged.model_agrees, diagnosis.model_agrees);
}

/// `plateau report --rules` judges a saved diagnosis again with edited rules and writes a
/// new one elsewhere. The fixture is a CI run's healthy testbed at its ceiling — three
/// brokers on two cores, the machine all used — which the rules of the day judged
/// `kafka: replication` (the leaders waited on followers that were waiting for a core);
/// today's rules name the crowded machine, and the saved diagnosis stays as it was.
#[test]
fn saved_evidence_is_judged_again_with_edited_rules_into_a_new_report() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let saved = root.join("tests/data/diagnose/crowded-machine/evidence.json");
    let before = std::fs::read(&saved).unwrap();
    let out = tempfile::tempdir().unwrap();
    let rules = root.join("rules");
    let (code, stdout, stderr) = plateau_status(&[
        "report",
        "--rules",
        rules.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        saved.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("cpu: machine shared with neighbours"), "{stdout}");
    let old = read_json(&saved);
    let new = read_json(&out.path().join("evidence.json"));
    assert_eq!(old["verdict"]["bound"], "kafka");
    assert_eq!(
        (&new["verdict"]["bound"], &new["verdict"]["cause"]),
        (&"cpu".into(), &"machine shared with neighbours".into())
    );
    for measured in ["ramp", "plateau", "network", "disks", "produce", "window_ms", "evidence"] {
        assert_eq!(old[measured], new[measured], "{measured} changed");
    }
    let findings = std::fs::read_to_string(out.path().join("findings.md")).unwrap();
    assert!(findings.contains("**cpu**-bound — cause: **machine shared with neighbours**"), "{findings}");
    assert_eq!(std::fs::read(&saved).unwrap(), before, "the saved diagnosis was rewritten");

    // Without --out it would overwrite the saved verdict: refused, and nothing written.
    let (code, _, stderr) = plateau_status(&["report", "--rules", rules.to_str().unwrap(), saved.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("pass --out DIR"), "{stderr}");
    assert_eq!(std::fs::read(&saved).unwrap(), before);

    // A broken rule file is named with its line, and no report is written.
    let broken = tempfile::tempdir().unwrap();
    std::fs::copy(rules.join("signals.toml"), broken.path().join("signals.toml")).unwrap();
    std::fs::write(
        broken.path().join("r.toml"),
        "[[rule]]\nid = \"x\"\nbound = \"cpu\"\nwhen = \"avg(nope) > 1\"\nevidence = \"e\"\nadvice = \"a\"\n",
    )
    .unwrap();
    let elsewhere = out.path().join("again");
    let (code, _, stderr) = plateau_status(&[
        "report",
        "--rules",
        broken.path().to_str().unwrap(),
        "--out",
        elsewhere.to_str().unwrap(),
        saved.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("r.toml:4:") && stderr.contains("unknown signal 'nope'"), "{stderr}");
    assert!(!elsewhere.exists());
}

/// "Diagnose now" judges through the same function: the controller's judgment of a saved
/// diagnosis's evidence and steps gives the diagnosis's verdict (the model did not vote in
/// it, and the controller has no probes to feed one).
#[test]
fn the_controller_judges_saved_evidence_as_diagnose_did() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/diagnose/client-bound/evidence.json");
    let diagnosis = plateau::report::findings::read_evidence(&path).unwrap();
    assert_ne!(diagnosis.model_agrees, Some(true), "the fixture's model must not have voted");
    let rules = plateau::rules::RuleSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).unwrap();
    let (found, window, verdict) = plateau::controller::diagnose::judge(
        &rules,
        &diagnosis.evidence,
        &diagnosis.ramp,
        (diagnosis.ramp_started_ms, diagnosis.ended_ms),
    );
    // The highest rate that kept up was not saved then; judged again, it is there.
    assert_eq!(
        found,
        plateau::plateau::Plateau { sustained_msgs_per_sec: found.sustained_msgs_per_sec, ..diagnosis.plateau }
    );
    assert!(found.sustained_msgs_per_sec > 0.0);
    assert_eq!(window, diagnosis.window_ms);
    assert_eq!((verdict.bound, verdict.runner_up), (diagnosis.verdict.bound, diagnosis.verdict.runner_up));
    assert_eq!(verdict.bound, plateau::rules::Bound::Client);
    // The cause is the heaviest fired rule's (two of weight 2: the first in the files).
    assert_eq!(verdict.cause.as_deref(), Some("producer queue"));
    let texts = |v: &plateau::rules::Verdict| v.evidence.iter().map(|e| e.text.clone()).collect::<Vec<_>>();
    let judged_texts = texts(&verdict);
    for line in texts(&diagnosis.verdict) {
        assert!(judged_texts.contains(&line), "{line:?} not in {judged_texts:?}");
    }
}

#[test]
fn a_saved_diagnosis_gives_the_same_terminal_summary() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/diagnose/client-bound/evidence.json");
    let diagnosis = plateau::report::findings::read_evidence(&path).unwrap();
    insta::assert_snapshot!(plateau::report::findings::terminal(&diagnosis, Path::new("report")));
}

/// Latency summaries saved before they carried a mean read back with a mean of 0.
fn add_latency_means(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if ["p50", "p95", "p99", "p999", "max", "count"].iter().all(|k| map.contains_key(*k)) {
                map.entry("avg").or_insert(0.0.into());
            }
            map.values_mut().for_each(add_latency_means);
        }
        Value::Array(items) => items.iter_mut().for_each(add_latency_means),
        _ => {}
    }
}

/// librdkafka windows (`avg`, `p50`, `p99`, `max`) saved before they carried a p95.
fn add_window_p95s(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if ["avg", "p50", "p99", "max"].iter().all(|k| map.contains_key(*k)) && !map.contains_key("p999") {
                map.entry("p95").or_insert(0.into());
            }
            map.values_mut().for_each(add_window_p95s);
        }
        Value::Array(items) => items.iter_mut().for_each(add_window_p95s),
        _ => {}
    }
}

#[test]
fn evidence_json_keeps_its_layout() {
    // The saved fixture is the layout's snapshot: reading and writing it changes nothing,
    // so a field renamed or dropped fails here before it breaks users' saved reports.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/diagnose/client-bound/evidence.json");
    let diagnosis = plateau::report::findings::read_evidence(&path).unwrap();
    let mut fixture = read_json(&path);
    // Fields added since the fixture was saved come back with their defaults.
    fixture["plan"]["consumers"] = Value::Array(Vec::new());
    fixture["plan"]["net_parallel"] = 4.into();
    fixture["network_udp"] = Value::Array(Vec::new());
    fixture["network_secs"] = Value::Null;
    fixture["verdict"]["cause"] = Value::Null;
    fixture["verdict"]["runner_up_cause"] = Value::Null;
    fixture["verdict"]["explained"] = Value::Array(Vec::new());
    fixture["lifts"] = Value::Array(Vec::new());
    for rule in fixture["verdict"]["rules"].as_array_mut().unwrap() {
        rule["cause"] = "".into();
    }
    fixture["consume"] = Value::Array(Vec::new());
    fixture["plateau"]["sustained_msgs_per_sec"] = 0.0.into();
    // Steps saved before they carried their times are given the ramp's schedule.
    let started = fixture["ramp_started_ms"].as_u64().unwrap();
    for (k, step) in fixture["ramp"].as_array_mut().unwrap().iter_mut().enumerate() {
        let at = started + k as u64 * 2_000;
        step["started_ms"] = at.into();
        step["measured_from_ms"] = (at + 400).into();
        step["ended_ms"] = (at + 2_000).into();
    }
    for (key, value) in [
        ("databases", Value::Array(Vec::new())),
        ("consumer_members", 1.into()),
        ("sink", Value::Null),
        ("sink_table", "events".into()),
        ("process_us", 0.into()),
        ("sla_e2e_ms", Value::Null),
        ("sla_p99_ms", Value::Null),
        ("search", plateau::diagnose::DEFAULT_SEARCH.into()),
    ] {
        fixture["plan"][key] = value;
    }
    for step in fixture["ramp"].as_array_mut().unwrap() {
        for key in ["achieved_mb_per_sec", "latency_p95_ms", "latency_p99_ms"] {
            step[key] = 0.0.into();
        }
    }
    for run in fixture["produce"].as_array_mut().unwrap() {
        if run["report"].is_object() {
            run["report"]["started_at_ms"] = 0.into();
            for step in run["report"]["steps"].as_array_mut().unwrap() {
                for key in ["started_ms", "measured_from_ms", "ended_ms"] {
                    step[key] = 0.into();
                }
                for key in ["mb_per_sec", "p50_ms", "p95_ms"] {
                    step[key] = 0.0.into();
                }
            }
        }
    }
    add_latency_means(&mut fixture);
    add_window_p95s(&mut fixture);
    assert_eq!(serde_json::to_value(&diagnosis).unwrap(), fixture);
    let mut future = fixture.clone();
    future["version"] = 2.into();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("evidence.json"), future.to_string()).unwrap();
    let err = plateau::report::findings::read_evidence(&dir.path().join("evidence.json")).unwrap_err();
    assert!(err.to_string().contains("layout version 2"), "{err}");
}

#[test]
fn ctrl_c_stops_the_search_and_still_writes_the_report() {
    let _exclusive = exclusive();
    let broker = TansuBroker::start();
    let generator = AgentProcess::start(&[]);
    let out = tempfile::tempdir().unwrap();
    let mut diagnose = Command::new(plateau_bin())
        .args(["diagnose", "--generator", &generator.url, "--bootstrap", &broker.bootstrap, "--topic", "stopped"])
        .args(["--partitions", "3", "--search", "1000:5000:5", "--skip-net", "--skip-disk", "--json"])
        .args(["--token-file", generator.token_arg(), "--out"])
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The search would run 15 s or more; interrupt it 5 s in.
    std::thread::sleep(Duration::from_secs(5));
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(diagnose.id() as i32).unwrap(),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let status =
        wait_with_timeout(&mut diagnose, Duration::from_secs(30)).expect("diagnose did not stop within 30 s of Ctrl-C");
    let output = diagnose.wait_with_output().unwrap();
    assert!(status.success(), "diagnose failed: {}", String::from_utf8_lossy(&output.stderr));
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["verdict"]["interrupted"], true);
    let saved = read_json(&out.path().join("evidence.json"));
    let acked = saved["produce"][0]["report"]["records_acked"].as_u64().unwrap();
    assert!((1_000..20_000).contains(&acked), "{acked} records acknowledged before the interrupt");
    let findings = std::fs::read_to_string(out.path().join("findings.md")).unwrap();
    assert!(findings.contains("The run was interrupted"), "{findings}");
}
