//! `plateau controller` in a real headless Chromium (driven through ChromeDriver) against
//! two real generator agents, a broker-host agent and a real tansu broker: the page starts
//! both generators, its numbers and charts follow the achieved rate up, the rate changes,
//! "Diagnose now" links a report, everything stops; bad form input is refused on the page
//! and reaches no agent. A screenshot is kept as an artifact. Also: the shipped Prometheus
//! scrape configuration loaded by a real Prometheus, and the Grafana dashboard's schema.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use crate::support::{AgentProcess, TansuBroker, eventually, free_port, plateau, plateau_bin, which};

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// ChromeDriver in a process group of its own, which the browsers it starts join: dropping
/// it kills the whole group, so a failed test leaves no Chromium behind.
struct Driver(Child);

impl Driver {
    fn start(chromedriver: &std::path::Path, port: u16) -> Driver {
        use std::os::unix::process::CommandExt;
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        Driver(child)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(group) = rustix::process::Pid::from_raw(self.0.id() as i32) {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = self.0.wait();
    }
}

/// Starts `plateau controller` and returns it with its URL.
fn start_controller(args: &[&str]) -> (Killed, String) {
    let mut child = Command::new(plateau_bin())
        .arg("controller")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting plateau controller");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap_or_default().trim_end_matches('/');
    assert!(url.starts_with("http://127.0.0.1:"), "unexpected first line: {line:?}");
    (Killed(child), url.to_string())
}

/// Where the test keeps its screenshot: $PLATEAU_ARTIFACTS, else next to the build.
fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("PLATEAU_ARTIFACTS").map(PathBuf::from).unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| "target".into());
        target.join("plateau-artifacts")
    });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The produce part of an agent's /status.
fn produce_status(agent: &AgentProcess) -> serde_json::Value {
    let status: serde_json::Value = reqwest::blocking::get(format!("{}/status", agent.url)).unwrap().json().unwrap();
    status["probes"]["produce"].clone()
}

/// The same, from async code.
async fn produce_status_async(agent: &AgentProcess) -> serde_json::Value {
    let status: serde_json::Value = reqwest::get(format!("{}/status", agent.url)).await.unwrap().json().await.unwrap();
    status["probes"]["produce"].clone()
}

async fn set_input(client: &Client, css: &str, value: &str) {
    let input = client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}"));
    input.clear().await.unwrap();
    input.send_keys(value).await.unwrap();
}

async fn click(client: &Client, id: &str) {
    client.find(Locator::Id(id)).await.unwrap_or_else(|e| panic!("no #{id}: {e}")).click().await.unwrap();
}

/// Waits (up to `secs`) until the page's message box shows text containing `expected`.
async fn message_shows(client: &Client, expected: &str, secs: u64) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let text = client.find(Locator::Id("message")).await.unwrap().text().await.unwrap_or_default();
        if text.contains(expected) {
            return text;
        }
        assert!(std::time::Instant::now() < deadline, "the page never said '{expected}' (it says '{text}')");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The page's summed achieved rate, as the totals line shows it.
async fn total_achieved(client: &Client) -> f64 {
    let element = client.find(Locator::Id("total-achieved")).await.unwrap();
    element.attr("data-value").await.unwrap().and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

/// Waits until the page's summed target reads `expected` (as shown, e.g. "8,000").
async fn wait_for_target(client: &Client, expected: &str, secs: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let shown = client.find(Locator::Id("total-target")).await.unwrap().text().await.unwrap_or_default();
        if shown == expected {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the page's total target stayed at {shown}, not {expected}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_for_total(client: &Client, above: f64, secs: u64) -> f64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let total = total_achieved(client).await;
        if total > above {
            return total;
        }
        assert!(std::time::Instant::now() < deadline, "the page's achieved total stayed at {total}, not above {above}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[test]
fn the_console_drives_two_generators_in_a_real_browser() {
    let chromium = which("chromium").expect("chromium is not installed: run `apt-get install chromium` (.ci/run does)");
    let chromedriver = which("chromedriver")
        .expect("chromedriver is not installed: run `apt-get install chromium-driver` (.ci/run does)");
    let broker = TansuBroker::start();
    broker.create_topic("iot-load", 6);
    let generators = [AgentProcess::start(&[]), AgentProcess::start(&[])];
    let broker_host = AgentProcess::start(&[]);
    let reports = tempfile::tempdir().unwrap();
    let agents = format!("{},{}", generators[0].url, generators[1].url);
    // A real Prometheus scraping the agents with the exported configuration: the page's
    // optional second source for the throughput.
    let (ok, scrape, stderr) = plateau(&[
        "export",
        "prometheus-config",
        "--agents",
        &agents,
        "--brokers",
        &broker_host.url,
        "--interval",
        "1s",
    ]);
    assert!(ok, "{stderr}");
    let prometheus = crate::support::PrometheusProcess::start_with_config(&scrape);
    let (_controller, url) = start_controller(&[
        "--prometheus",
        &prometheus.url,
        "--agents",
        &agents,
        "--brokers",
        &broker_host.url,
        "--token-file",
        generators[0].token_arg(),
        "--bootstrap",
        &broker.bootstrap,
        "--topic",
        "iot-load",
        "--listen",
        "127.0.0.1:0",
        "--reports",
        reports.path().to_str().unwrap(),
    ]);
    let driver_port = free_port();
    let _driver = Driver::start(&chromedriver, driver_port);
    eventually(Duration::from_secs(20), || std::net::TcpStream::connect(("127.0.0.1", driver_port)).ok())
        .expect("chromedriver did not listen within 20 s");
    let profile = tempfile::tempdir().unwrap();
    let screenshot = artifacts_dir().join("controller.png");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // The flags this machine's Chromium needs (no sandbox as root, no background
        // networking on a closed network), with a fresh profile.
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--window-size=1400,1900", format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = ClientBuilder::native()
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{driver_port}"))
            .await
            .expect("a Chromium session through chromedriver");
        client.goto(&format!("{url}/")).await.unwrap();
        // The status cards: two generators and the broker host, all reachable.
        let cards = eventually_async(&client, 20, "three reachable agent cards", |client| async move {
            let cards = client.find_all(Locator::Css(".card:not(.down)")).await.ok()?;
            (cards.len() == 3).then_some(cards.len())
        })
        .await;
        assert_eq!(cards, 3);

        // Bad input is refused on the page and reaches no agent.
        set_input(&client, "#rate", "-5").await;
        click(&client, "start-all").await;
        message_shows(&client, "rate -5 is not a whole number", 5).await;
        set_input(&client, "#rate", "2000").await;
        set_input(&client, "input[name=compression]", "brotli").await;
        click(&client, "start-all").await;
        message_shows(&client, "compression 'brotli' is unknown", 5).await;
        set_input(&client, "input[name=compression]", "lz4").await;
        set_input(&client, "input[name=bootstrap]", " ").await;
        click(&client, "start-all").await;
        message_shows(&client, "bootstrap servers are empty", 5).await;
        for agent in &generators {
            assert!(produce_status_async(agent).await.is_null(), "a refused form reached {}", agent.url);
        }

        // Start both at 2,000 msg/s each: the page's total and its chart follow.
        set_input(&client, "input[name=bootstrap]", &broker.bootstrap).await;
        click(&client, "start-all").await;
        message_shows(&client, "started", 10).await;
        let chart = client.find(Locator::Css("#chart-throughput")).await.unwrap();
        let first_update = chart.attr("data-updated").await.unwrap().unwrap_or_default();
        wait_for_target(&client, "4,000", 30).await;
        wait_for_total(&client, 3_000.0, 30).await;
        let later_update = chart.attr("data-updated").await.unwrap().unwrap_or_default();
        assert_ne!(first_update, later_update, "the throughput chart was not reloaded");
        let chart_svg: String =
            reqwest::get(format!("{url}/api/chart/throughput.svg")).await.unwrap().text().await.unwrap();
        assert!(chart_svg.contains("total achieved"), "the chart has no achieved line");
        for agent in &generators {
            assert_eq!(produce_status_async(agent).await["target_rate_mps"], 2000);
        }

        // Change the rate: both generators go to 4,000 and the total rises past 6,000.
        set_input(&client, "#rate", "4000").await;
        click(&client, "rate-all").await;
        message_shows(&client, "rate set", 10).await;
        // The page's summed target follows the change, then what was achieved does.
        wait_for_target(&client, "8,000", 30).await;
        wait_for_total(&client, 6_000.0, 30).await;
        for agent in &generators {
            assert_eq!(produce_status_async(agent).await["target_rate_mps"], 4000);
        }
        // Prometheus, scraping the agents, shows the cluster's rate on the page too.
        let from_prometheus = eventually_async(&client, 30, "a rate from Prometheus", |client| async move {
            let text = client.find(Locator::Id("prometheus-rate")).await.ok()?.text().await.ok()?;
            let rate: f64 =
                text.split("cluster (Prometheus): ").nth(1)?.split(' ').next()?.replace(',', "").parse().ok()?;
            (rate > 1_000.0).then_some(rate)
        })
        .await;
        assert!(from_prometheus < 20_000.0, "Prometheus says {from_prometheus} msg/s for two generators at 4,000");

        // Diagnose now: a verdict and a link to the findings report.
        click(&client, "diagnose").await;
        let link = eventually_async(&client, 60, "a findings link", |client| async move {
            client.find(Locator::Id("findings-link")).await.ok()?.attr("href").await.ok()?
        })
        .await;
        let verdict = client.find(Locator::Css("#verdict .verdict")).await.unwrap().text().await.unwrap();
        assert!(verdict.contains("-bound, confidence"), "{verdict}");
        let findings = reqwest::get(format!("{url}{link}")).await.unwrap().text().await.unwrap();
        assert!(findings.starts_with("# plateau findings"), "{findings}");

        std::fs::write(&screenshot, client.screenshot().await.unwrap()).unwrap();

        click(&client, "stop-all").await;
        message_shows(&client, "stopped", 20).await;
        client.close().await.unwrap();
    });
    for agent in &generators {
        let stopped = eventually(Duration::from_secs(20), || (produce_status(agent)["running"] == false).then_some(()));
        assert!(stopped.is_some(), "{} still producing after Stop all", agent.url);
    }
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot at {} is not a picture",
        screenshot.display()
    );
    eprintln!("controller screenshot: {}", screenshot.display());
}

/// Polls `check` every 250 ms until it returns `Some`, at most `secs` seconds.
async fn eventually_async<T, F, Fut>(client: &Client, secs: u64, what: &str, check: F) -> T
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check(client.clone()).await {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "the page did not show {what} within {secs} s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[test]
fn a_console_off_loopback_needs_an_access_token_and_checks_requests() {
    let agent = AgentProcess::start(&[]);
    let (ok, _, stderr) = plateau(&["controller", "--agents", &agent.url, "--listen", "0.0.0.0:0"]);
    assert!(!ok);
    assert!(stderr.contains("--access-token-file"), "{stderr}");
    let (ok, _, stderr) = plateau(&["controller", "--agents", "127.0.0.1:7070"]);
    assert!(!ok && stderr.contains("write it as http://HOST:PORT"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let access = dir.path().join("access");
    std::fs::write(&access, "a-long-enough-access-token\n").unwrap();
    let (_controller, url) = start_controller(&[
        "--agents",
        &agent.url,
        "--token-file",
        agent.token_arg(),
        "--access-token-file",
        access.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let http = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    // Without a session: the page sends to the login, the API refuses.
    let page = http.get(format!("{url}/")).send().unwrap();
    assert_eq!(page.headers()["location"], "/login");
    assert_eq!(http.get(format!("{url}/api/state")).send().unwrap().status(), 401);
    // A wrong token does not log in; the right one gives a session cookie.
    let wrong = http.post(format!("{url}/login")).form(&[("token", "guess")]).send().unwrap();
    assert_eq!(wrong.status(), 401);
    let login = http.post(format!("{url}/login")).form(&[("token", "a-long-enough-access-token")]).send().unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let state = http.get(format!("{url}/api/state")).header("cookie", &session).send().unwrap();
    assert_eq!(state.status(), 200);
    // A state-changing request with the session but without the page's CSRF token, or from
    // another site, is refused; the page's token works.
    let stop = || http.post(format!("{url}/api/stop")).header("cookie", &session).json(&serde_json::json!({}));
    assert_eq!(stop().send().unwrap().status(), 403);
    let page = http.get(format!("{url}/")).header("cookie", &session).send().unwrap().text().unwrap();
    let csrf = page.split("name=\"csrf-token\" content=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let forged = stop().header("x-plateau-csrf", &csrf).header("origin", "http://evil.example").send().unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(stop().header("x-plateau-csrf", &csrf).send().unwrap().status(), 200);
    // Scripts use the bearer token; the agents' token is never in anything served.
    let bearer = http
        .post(format!("{url}/api/stop"))
        .bearer_auth("a-long-enough-access-token")
        .json(&serde_json::json!({}))
        .send()
        .unwrap();
    assert_eq!(bearer.status(), 200);
    let state = http.get(format!("{url}/api/state")).header("cookie", &session).send().unwrap().text().unwrap();
    assert!(!page.contains(&agent.token) && !state.contains(&agent.token));
    // A loopback console answers only to loopback names (no DNS rebinding).
    let rebound = http.get(format!("{url}/api/state")).header("host", "evil.example").send().unwrap();
    assert_eq!(rebound.status(), 421);
}

#[test]
fn the_scrape_config_loads_in_a_real_prometheus_and_scrapes_the_agents() {
    let agents = [AgentProcess::start(&[]), AgentProcess::start(&[])];
    let (ok, config, stderr) = plateau(&[
        "export",
        "prometheus-config",
        "--agents",
        &agents[0].url,
        "--brokers",
        &agents[1].url,
        "--interval",
        "1s",
    ]);
    assert!(ok, "{stderr}");
    let prometheus = crate::support::PrometheusProcess::start_with_config(&config);
    let http = reqwest::blocking::Client::new();
    let up = eventually(Duration::from_secs(30), || {
        let answer: serde_json::Value = http
            .get(format!("{}/api/v1/query", prometheus.url))
            .query(&[("query", "sum by (job) (up)")])
            .send()
            .ok()?
            .json()
            .ok()?;
        let result = answer["data"]["result"].as_array()?.clone();
        let jobs: Vec<String> = result
            .iter()
            .filter(|r| r["value"][1] == "1")
            .map(|r| r["metric"]["job"].as_str().unwrap_or_default().to_string())
            .collect();
        (jobs.len() == 2).then_some(jobs)
    })
    .expect("Prometheus did not scrape both jobs from the exported configuration");
    assert!(up.contains(&"plateau-generators".to_string()) && up.contains(&"plateau-brokers".to_string()));
}

#[test]
fn the_grafana_dashboard_is_well_formed_and_charts_only_metrics_agents_export() {
    let (ok, text, stderr) = plateau(&["export", "grafana-dashboard"]);
    assert!(ok, "{stderr}");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "plateau-agents");
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 36);
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(dashboard["__inputs"][0]["pluginId"], "prometheus");
    // A live agent that watches a workload and has produced, so that its watch and produce
    // metrics exist.
    let broker = TansuBroker::start();
    broker.create_topic("dash", 1);
    let agent = AgentProcess::start(&["--watch", &format!("pid:{}", std::process::id())]);
    let (ok, _, stderr) = plateau(&[
        "produce",
        "--on",
        &agent.url,
        "--token-file",
        agent.token_arg(),
        "--bootstrap",
        &broker.bootstrap,
        "--topic",
        "dash",
        "--rate",
        "500",
        "--time",
        "2s",
    ]);
    assert!(ok, "{stderr}");
    let exposition = reqwest::blocking::get(format!("{}/metrics", agent.url)).unwrap().text().unwrap();
    let exported: std::collections::HashSet<String> = exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next().map(str::to_string))
        .collect();
    let mut ids = std::collections::HashSet::new();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 8);
    for panel in panels {
        let id = panel["id"].as_u64().expect("every panel has a numeric id");
        assert!(ids.insert(id), "panel id {id} is used twice");
        let grid = &panel["gridPos"];
        for key in ["h", "w", "x", "y"] {
            assert!(grid[key].is_u64(), "panel {id} has no gridPos.{key}");
        }
        assert!(grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24, "panel {id} is wider than the grid");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["type"], "timeseries");
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}");
        let targets = panel["targets"].as_array().expect("a panel has targets");
        assert!(!targets.is_empty(), "panel {id} has no queries");
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            // Every metric the query names is one a real agent exports.
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("plateau_") {
                    assert!(exported.contains(word), "panel {id} queries {word}, which agents do not export");
                }
            }
        }
    }
}

#[test]
fn an_agent_that_never_answers_does_not_stall_the_others_and_is_named() {
    let agent = AgentProcess::start(&[]);
    // Accepts connections (the kernel's backlog) but never answers a request.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let agents = format!("{},{silent_url}", agent.url);
    let (_controller, url) =
        start_controller(&["--agents", &agents, "--token-file", agent.token_arg(), "--listen", "127.0.0.1:0"]);
    let state = || -> serde_json::Value { reqwest::blocking::get(format!("{url}/api/state")).unwrap().json().unwrap() };
    let card = |state: &serde_json::Value, which: &str| -> serde_json::Value {
        state["agents"].as_array().unwrap().iter().find(|a| a["url"] == which).cloned().unwrap()
    };
    // The live agent's card keeps updating every second while the silent one hangs.
    let first = eventually(Duration::from_secs(5), || card(&state(), &agent.url)["last_seen_ms"].as_u64()).unwrap();
    let later = eventually(Duration::from_secs(5), || {
        card(&state(), &agent.url)["last_seen_ms"].as_u64().filter(|seen| *seen >= first + 2_000)
    });
    assert!(later.is_some(), "the live agent's card stopped updating behind the silent one");
    // The silent one is named with the reason once its request times out.
    let error = eventually(Duration::from_secs(20), || {
        let silent_card = card(&state(), &silent_url);
        (silent_card["reachable"] == false && silent_card["error"].as_str()?.contains(&silent_url))
            .then(|| silent_card["error"].as_str().unwrap().to_string())
    })
    .expect("the silent agent was never marked unreachable");
    assert!(error.contains("cannot reach the agent"), "{error}");
}
