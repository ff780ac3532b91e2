//! Network tests between real agents and against a real `iperf3 -s` on loopback:
//! results, iperf3's JSON layout, interoperability within 10 % of iperf3's own client,
//! the matrix, and every kind of bad input ending in a clear error.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{AgentProcess, Iperf3Server, exclusive, iperf3_client, plateau};

fn run_json(args: &[&str]) -> Value {
    let (ok, stdout, stderr) = plateau(args);
    assert!(ok, "plateau {args:?} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("--json output does not parse ({err}): {stdout}"))
}

fn mbit(value: &Value) -> f64 {
    value.as_f64().expect("a number") / 1e6
}

#[test]
fn tcp_between_two_agents_from_one_of_them() {
    let _exclusive = exclusive();
    let (a, b) = (AgentProcess::start(&[]), AgentProcess::start(&[]));
    let report =
        run_json(&["net", "tcp", &b.url, "--from", &a.url, "--token-file", a.token_arg(), "-t", "2", "--json"]);
    assert!(mbit(&report["end"]["sum_received"]["bits_per_second"]) > 500.0, "{}", report["end"]);
    assert!(report["end"]["sum_sent"]["retransmits"].is_u64());
    assert_eq!(report["intervals"].as_array().unwrap().len(), 2);
    let interval = &report["intervals"][0]["streams"][0];
    for field in ["rtt", "snd_cwnd", "retransmits", "bits_per_second"] {
        assert!(interval.get(field).is_some(), "interval lacks {field}: {interval}");
    }
    assert_eq!(report["start"]["test_start"]["protocol"], "TCP");
    assert!(report["plateau"]["from"].is_string(), "the report names the agent it ran from");
    assert!(report["plateau"]["limited_by"].is_string());
    assert!(report["end"]["cpu_utilization_percent"]["remote_total"].as_f64().unwrap() > 0.0);
}

#[test]
fn udp_to_an_agent_reports_loss_jitter_and_reordering() {
    let _exclusive = exclusive();
    let agent = AgentProcess::start(&[]);
    let report =
        run_json(&["net", "udp", &agent.url, "--token-file", agent.token_arg(), "-b", "50M", "-t", "2", "--json"]);
    let sum = &report["end"]["sum"];
    let sent = mbit(&report["end"]["sum_sent"]["bits_per_second"]);
    assert!((47.5..52.5).contains(&sent), "offered 50 Mbit/s, sent {sent}");
    assert!(sum["lost_percent"].as_f64().unwrap() < 1.0, "{sum}");
    assert!(sum["jitter_ms"].as_f64().is_some());
    assert!(sum["packets"].as_u64().unwrap() > 8000, "{sum}");
    assert_eq!(report["end"]["streams"][0]["udp"]["out_of_order"], 0);
    assert_eq!(report["plateau"]["limited_by"], "none");
    assert_eq!(report["plateau"]["duplicates"], 0);
}

#[test]
fn reverse_and_bidir_against_an_agent() {
    let _exclusive = exclusive();
    let agent = AgentProcess::start(&[]);
    let reverse =
        run_json(&["net", "tcp", &agent.url, "--token-file", agent.token_arg(), "-t", "1", "-R", "-P", "2", "--json"]);
    assert_eq!(reverse["start"]["test_start"]["reverse"], 1);
    assert_eq!(reverse["intervals"][0]["streams"].as_array().unwrap().len(), 2);
    assert!(mbit(&reverse["end"]["sum_received"]["bits_per_second"]) > 100.0);
    assert!(reverse["end"]["sum_sent"]["retransmits"].is_u64(), "the agent, as sender, reports retransmits");

    let bidir =
        run_json(&["net", "tcp", &agent.url, "--token-file", agent.token_arg(), "-t", "1", "--bidir", "--json"]);
    assert!(mbit(&bidir["end"]["sum_received"]["bits_per_second"]) > 100.0, "{}", bidir["end"]);
    assert!(mbit(&bidir["end"]["sum_received_bidir_reverse"]["bits_per_second"]) > 100.0);
}

/// Runs plateau and iperf3 against the same `iperf3 -s`, one after the other.
fn both_against_iperf3(server: &Iperf3Server, extra: &[&str]) -> (Value, Value) {
    let target = format!("iperf3://127.0.0.1:{}", server.port);
    let mut args = vec!["net"];
    args.extend_from_slice(extra);
    args.splice(1..1, [if extra.contains(&"-u") { "udp" } else { "tcp" }]);
    args.retain(|a| *a != "-u");
    args.extend_from_slice(&[&target, "--json"]);
    let ours = run_json(&args);
    std::thread::sleep(Duration::from_millis(300));
    let mut theirs_args = vec!["-p".to_string(), server.port.to_string()];
    theirs_args.extend(extra.iter().map(|s| s.to_string()));
    let theirs = iperf3_client(&theirs_args.iter().map(String::as_str).collect::<Vec<_>>());
    (ours, theirs)
}

#[test]
fn tcp_against_iperf3_matches_iperf3s_own_client() {
    let _exclusive = exclusive();
    let server = Iperf3Server::start();
    let (ours, theirs) = both_against_iperf3(&server, &["-t", "3"]);
    assert_eq!(ours["plateau"]["peer"], "iperf3");
    let (a, b) = (
        mbit(&ours["end"]["sum_received"]["bits_per_second"]),
        mbit(&theirs["end"]["sum_received"]["bits_per_second"]),
    );
    // Same units and the same order of magnitude (a bytes-for-bits or a ×1000 slip is off by
    // 8 or more); how close the two come is the benchmark's job (tests/bench/net-vs-iperf3.sh),
    // since loopback throughput on a shared two-core machine swings by tens of percent.
    assert!(a / b > 0.5 && a / b < 2.0, "plateau measured {a:.0} Mbit/s, iperf3 {b:.0} Mbit/s");
    let reverse = run_json(&["net", "tcp", &format!("iperf3://127.0.0.1:{}", server.port), "-t", "1", "-R", "--json"]);
    assert!(mbit(&reverse["end"]["sum_received"]["bits_per_second"]) > 100.0);
}

#[test]
fn udp_against_iperf3_matches_iperf3s_own_client() {
    let _exclusive = exclusive();
    let server = Iperf3Server::start();
    let (ours, theirs) = both_against_iperf3(&server, &["-u", "-b", "100M", "-l", "1400", "-t", "3"]);
    let (a, b) = (
        mbit(&ours["end"]["sum_received"]["bits_per_second"]),
        mbit(&theirs["end"]["sum_received"]["bits_per_second"]),
    );
    assert!((a / b - 1.0).abs() < 0.10, "plateau received {a:.1} Mbit/s, iperf3 {b:.1} Mbit/s");
    let (loss_a, loss_b) =
        (ours["end"]["sum"]["lost_percent"].as_f64().unwrap(), theirs["end"]["sum"]["lost_percent"].as_f64().unwrap());
    assert!((loss_a - loss_b).abs() < 3.0, "loss: plateau {loss_a:.2} %, iperf3 {loss_b:.2} %");
    let jitter = ours["end"]["sum"]["jitter_ms"].as_f64().unwrap();
    assert!(jitter < 5.0, "loopback jitter of {jitter} ms");
}

#[test]
fn a_busy_iperf3_server_is_a_clear_error() {
    let _exclusive = exclusive();
    let server = Iperf3Server::start();
    let mut running = std::process::Command::new("iperf3")
        .args(["-c", "127.0.0.1", "-p", &server.port.to_string(), "-t", "4"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let (ok, _, stderr) = plateau(&["net", "tcp", &format!("iperf3://127.0.0.1:{}", server.port), "-t", "1"]);
    let _ = running.kill();
    let _ = running.wait();
    assert!(!ok);
    assert!(stderr.contains("busy running another test"), "{stderr}");
}

#[test]
fn bad_input_gets_clear_errors_without_hanging() {
    let agent = AgentProcess::start(&["--allow", "127.0.0.2/32"]);
    let wrong_token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(wrong_token.path(), "not-the-token").unwrap();
    let wrong = wrong_token.path().to_str().unwrap();
    let closed_port = crate::support::free_port();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["tcp".into(), format!("iperf3://127.0.0.1:{closed_port}"), "-t".into(), "1".into()],
            "connection refused",
        ),
        (vec!["tcp".into(), "iperf3://no-such-host.invalid".into()], "cannot resolve"),
        (vec!["tcp".into(), agent.url.clone(), "--token-file".into(), wrong.into()], "refused the token"),
        (vec!["tcp".into(), agent.url.clone()], "--token-file"),
        (
            vec![
                "tcp".into(),
                "iperf3://127.0.0.1:5201".into(),
                "--from".into(),
                agent.url.clone(),
                "--token-file".into(),
                agent.token_arg().into(),
            ],
            "not in this agent's --allow list",
        ),
        (vec!["tcp".into(), "iperf3://127.0.0.1".into(), "-t".into(), "100000".into()], "use 1 to 300 seconds"),
        (vec!["udp".into(), "iperf3://127.0.0.1".into(), "-b".into(), "5000G".into()], "over the limit"),
        (vec!["udp".into(), "iperf3://127.0.0.1".into(), "-b".into(), "lots".into()], "invalid rate"),
        (vec!["tcp".into(), "10.1.2.3".into()], "iperf3://HOST"),
        (
            vec!["tcp".into(), "http://127.0.0.1:1".into(), "--token-file".into(), agent.token_arg().into()],
            "cannot reach the agent",
        ),
    ];
    for (args, expected) in cases {
        let started = Instant::now();
        let mut full = vec!["net".to_string()];
        full.extend(args.clone());
        let (ok, _, stderr) = plateau(&full.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!ok, "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in {stderr:?}");
        assert!(started.elapsed() < Duration::from_secs(15), "{args:?} took {:?}", started.elapsed());
    }
}

#[test]
fn the_data_port_admits_only_issued_cookies_one_test_at_a_time() {
    let agent = AgentProcess::start(&[]);
    let client = reqwest::blocking::Client::new();
    let status: Value = client.get(format!("{}/status", agent.url)).send().unwrap().json().unwrap();
    let data_port = status["data_port"].as_u64().unwrap();
    // A made-up cookie is dropped without a word.
    let bogus = client
        .post(format!("{}/net/tcp", agent.url))
        .bearer_auth(&agent.token)
        .json(&json!({"target": "plateau://127.0.0.1:1", "cookie": "x"}))
        .send()
        .unwrap();
    assert!(bogus.status().is_client_error() || bogus.status().is_server_error());
    let session = |body: Value| {
        client.post(format!("{}/net/session", agent.url)).bearer_auth(&agent.token).json(&body).send().unwrap()
    };
    let unauthorized =
        client.post(format!("{}/net/session", agent.url)).json(&json!({"protocol": "tcp"})).send().unwrap();
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    let too_long = session(json!({"protocol": "tcp", "time": 100000}));
    assert_eq!(too_long.status(), StatusCode::BAD_REQUEST);
    let first = session(json!({"protocol": "tcp", "time": 1}));
    assert_eq!(first.status(), StatusCode::OK);
    let issued: Value = first.json().unwrap();
    assert_eq!(issued["data_port"].as_u64(), Some(data_port));
    assert_eq!(issued["cookie"].as_str().unwrap().len(), 36);
    let second = session(json!({"protocol": "udp", "rate": "10M"}));
    assert_eq!(second.status(), StatusCode::CONFLICT);
    let error: Value = second.json().unwrap();
    assert!(error["error"].as_str().unwrap().contains("already running"), "{error}");

    // A test with a wrong cookie towards the data port fails clearly (the agent runs it
    // against itself: its own data port is within the default allow list).
    let other = AgentProcess::start(&[]);
    let wrong_cookie = client
        .post(format!("{}/net/tcp", other.url))
        .bearer_auth(&other.token)
        .json(&json!({"target": format!("plateau://127.0.0.1:{data_port}"), "cookie": "0".repeat(36), "time": 1}))
        .send()
        .unwrap();
    assert_eq!(wrong_cookie.status(), StatusCode::BAD_GATEWAY);
    let error: Value = wrong_cookie.json().unwrap();
    assert!(error["error"].as_str().unwrap().contains("unknown or expired cookie"), "{error}");
}

#[test]
fn the_matrix_covers_every_ordered_pair_in_rounds() {
    let _exclusive = exclusive();
    let agents: Vec<AgentProcess> = (0..4).map(|_| AgentProcess::start(&[])).collect();
    let token_file = agents[0].token_file.clone();
    // One token for the fleet, as deployments share it.
    for agent in &agents[1..] {
        std::fs::copy(&token_file, &agent.token_file).unwrap();
    }
    let urls: Vec<&str> = agents.iter().map(|a| a.url.as_str()).collect();
    let report = run_json(&[
        "net",
        "matrix",
        "--agents",
        &urls.join(","),
        "--token-file",
        token_file.to_str().unwrap(),
        "-t",
        "1",
        "--json",
    ]);
    let cells = report["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 12);
    for cell in cells {
        assert!(cell["error"].is_null(), "{cell}");
        assert!(cell["bits_per_second"].as_f64().unwrap() > 1e8, "{cell}");
    }
    assert_eq!(report["rounds"], 6, "4 hosts: 2(N-1) rounds of disjoint pairs");
}
