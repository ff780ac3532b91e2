//! The agent as a real process on 127.0.0.1: authentication, samples, metrics scraped by
//! a real Prometheus, the disk probe over HTTP, one probe at a time, and a quick exit on
//! SIGTERM even with a probe running.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::support::{AgentProcess, PrometheusProcess, eventually, plateau_bin};

fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

/// GETs `url` and parses the body as JSON.
fn get_json(url: &str) -> Value {
    client().get(url).send().unwrap().json().unwrap()
}

#[test]
fn status_reports_the_agent_and_its_sampler() {
    let agent = AgentProcess::start(&[]);
    let status: Value = get_json(&format!("{}/status", agent.url));
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert!(!status["hostname"].as_str().unwrap().is_empty());
    assert_eq!(status["auth"], true);
    assert_eq!(status["sampler"]["interval_ms"], 200);
    assert!(status["probes"].is_object());
}

#[test]
fn samples_have_increasing_timestamps() {
    let agent = AgentProcess::start(&[]);
    let url = format!("{}/samples?since=0", agent.url);
    let samples = eventually(Duration::from_secs(10), || {
        let body: Value = client().get(&url).send().ok()?.json().ok()?;
        let samples = body["samples"].as_array()?.clone();
        (samples.len() >= 4).then_some(samples)
    })
    .expect("agent collected fewer than 4 samples in 10 s");
    let stamps: Vec<u64> = samples.iter().map(|s| s["ts_ms"].as_u64().unwrap()).collect();
    assert!(stamps.windows(2).all(|pair| pair[0] < pair[1]), "{stamps:?}");
    for field in ["cpu", "disks", "nics", "tcp", "memory", "psi"] {
        assert!(samples[0].get(field).is_some(), "sample lacks {field}");
    }
    // `since` filters: nothing newer than the newest sample.
    let newest = stamps.last().unwrap();
    let later: Value = get_json(&format!("{}/samples?since={newest}", agent.url));
    assert!(later["samples"].as_array().unwrap().iter().all(|s| s["ts_ms"].as_u64().unwrap() > *newest));
}

#[test]
fn posts_need_the_right_token() {
    let agent = AgentProcess::start(&[]);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let body = json!({"path": dir.path(), "size": "4M", "reads": 10});
    let url = format!("{}/disk", agent.url);

    let missing = client().post(&url).json(&body).send().unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let error: Value = missing.json().unwrap();
    assert!(error["error"].as_str().unwrap().contains("Authorization"), "{error}");

    let wrong = client().post(&url).bearer_auth("not-the-token").json(&body).send().unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    // A rejected request changed nothing: no probe ran.
    let status: Value = get_json(&format!("{}/status", agent.url));
    assert!(status["probes"].get("disk").is_none(), "{status}");

    let ok = client().post(&url).bearer_auth(&agent.token).json(&body).send().unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let result: Value = ok.json().unwrap();
    assert_eq!(result["probe"], "disk");
    assert_eq!(result["size_bytes"], 4 << 20);
    assert!(result["write_mb_per_sec"].as_f64().unwrap() > 0.0);
    for field in ["p50", "p99", "max"] {
        assert!(result["fsync_ms"][field].as_f64().is_some(), "fsync_ms.{field} missing: {result}");
    }
    assert!(result["read_iops"].as_f64().unwrap() > 0.0);
    assert!(result["read_mb_per_sec"].as_f64().is_some());
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "the probe left its file behind");
}

#[test]
fn malformed_requests_get_json_4xx() {
    let agent = AgentProcess::start(&[]);
    let url = format!("{}/disk", agent.url);
    let post = |body: &str| {
        let response = client()
            .post(&url)
            .bearer_auth(&agent.token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        let status = response.status();
        let body: Value = response.json().expect("error bodies are JSON");
        (status, body["error"].as_str().unwrap_or_default().to_string())
    };
    let cases = [
        ("{not json", "invalid request body"),
        (r#"{"path": "/tmp", "sise": "4M"}"#, "unknown field `sise`"),
        (r#"{"path": "/tmp", "size": "lots"}"#, "invalid size 'lots'"),
        (r#"{"path": "/no/such/dir"}"#, "cannot use --path /no/such/dir"),
        (r#"{"path": "/tmp", "size": "1T"}"#, "over the limit"),
        (r#"{"path": "/tmp", "fsync": "sometimes"}"#, "unknown variant `sometimes`"),
    ];
    for (body, expected) in cases {
        let (status, error) = post(body);
        assert!(status.is_client_error(), "{body}: got {status}");
        assert!(error.contains(expected), "{body}: error was {error:?}, expected it to mention {expected:?}");
    }
    let unknown = client().get(format!("{}/nothing-here", agent.url)).send().unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let bad_query = client().get(format!("{}/samples?since=yesterday", agent.url)).send().unwrap();
    assert_eq!(bad_query.status(), StatusCode::BAD_REQUEST);
    // The agent survived all of it.
    assert!(client().get(format!("{}/status", agent.url)).send().unwrap().status().is_success());
}

#[test]
fn one_probe_at_a_time_and_sigterm_exits_quickly() {
    let mut agent = AgentProcess::start(&[]);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    // Small blocks with an fsync each, and many reads: long enough to still be running.
    let long = json!({"path": dir.path(), "size": "64M", "block": "4K", "fsync": "every", "reads": 1000000});
    let (url, token) = (format!("{}/disk", agent.url), agent.token.clone());
    let first = std::thread::spawn(move || client().post(url).bearer_auth(token).json(&long).send());

    let status_url = format!("{}/status", agent.url);
    eventually(Duration::from_secs(10), || {
        let status: Value = client().get(&status_url).send().ok()?.json().ok()?;
        (status["probes"]["disk"]["running"] == true).then_some(())
    })
    .expect("the first disk probe never showed as running");

    let second = client()
        .post(format!("{}/disk", agent.url))
        .bearer_auth(&agent.token)
        .json(&json!({"path": dir.path(), "size": "4M"}))
        .send()
        .unwrap();
    assert_eq!(second.status(), StatusCode::CONFLICT);
    let error: Value = second.json().unwrap();
    assert!(error["error"].as_str().unwrap().contains("already running"), "{error}");

    let (took, exit) = agent.terminate();
    assert!(took < Duration::from_secs(2), "SIGTERM took {took:?}");
    assert!(exit.success(), "agent exited with {exit}");
    // The interrupted request got an answer or a closed connection, not a hang.
    let _ = first.join().unwrap();
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "the interrupted probe left its file behind");
}

#[test]
fn the_agent_refuses_to_start_without_a_token() {
    let output = std::process::Command::new(plateau_bin()).args(["agent", "--listen", "127.0.0.1:0"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--token-file"));

    let output = std::process::Command::new(plateau_bin())
        .args(["agent", "--listen", "0.0.0.0:0", "--no-auth"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("only when listening on a loopback address"));
}

#[test]
fn metrics_are_scraped_by_a_real_prometheus() {
    let agent = AgentProcess::start(&[]);
    let prometheus = PrometheusProcess::start(&[("plateau", agent.addr())]);
    let query = |promql: &str| -> Option<Vec<Value>> {
        let body: Value = client()
            .get(format!("{}/api/v1/query", prometheus.url))
            .query(&[("query", promql)])
            .send()
            .ok()?
            .json()
            .ok()?;
        body["data"]["result"].as_array().cloned()
    };
    // The target must be up with no scrape error: the exposition parsed.
    let target = eventually(Duration::from_secs(30), || {
        let body: Value = client().get(format!("{}/api/v1/targets", prometheus.url)).send().ok()?.json().ok()?;
        let target = body["data"]["activeTargets"].as_array()?.first()?.clone();
        (target["health"] == "up").then_some(target)
    })
    .expect("the agent's target never became healthy in Prometheus");
    assert_eq!(target["lastError"], "", "{target}");

    let cpu = eventually(Duration::from_secs(10), || query("plateau_cpu_seconds_total").filter(|r| !r.is_empty()))
        .expect("no plateau_cpu_seconds_total series");
    assert!(cpu.iter().any(|series| series["metric"]["mode"] == "idle"));
    // Counters are counters: rate() over them works, and all modes of a CPU add up to
    // one second per second. (The first evaluations, with two or three scrapes in the
    // window, extrapolate poorly; the check waits for a settled window.)
    let mut last_busy = None;
    let settled = eventually(Duration::from_secs(20), || {
        let result =
            query("sum(rate(plateau_cpu_seconds_total[5s])) / count(count by (cpu) (plateau_cpu_seconds_total))")?;
        let busy = result.first()?["value"][1].as_str()?.parse::<f64>().ok()?;
        last_busy = Some(busy);
        (0.8..1.2).contains(&busy).then_some(busy)
    });
    assert!(settled.is_some(), "all modes of one CPU add up to {last_busy:?} s/s, not 1");
    for name in ["plateau_memory_total_bytes", "plateau_network_receive_bytes_total", "plateau_sampler_readings_total"]
    {
        let series = query(name).unwrap_or_default();
        assert!(!series.is_empty(), "{name} missing from Prometheus");
    }
}

/// Issue 19: an agent whose data port is taken says which port and which flag changes it
/// (the seed plan's JMX exporter once sat on the old default, 7071).
#[test]
fn a_taken_data_port_is_named_with_the_flag_that_changes_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t0ken").unwrap();
    let output = std::process::Command::new(plateau_bin())
        .args(["agent", "--listen", "127.0.0.1:0", "--data-port", &port, "--token-file"])
        .arg(dir.path().join("token"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("--data-port"), "{stderr}");
    let (ok, stdout, _) = crate::support::plateau(&["agent", "--help"]);
    assert!(ok && stdout.contains("[default: 7075]"), "{stdout}");
}
