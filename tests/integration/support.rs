//! Helpers shared by the integration tests: the plateau binary as a real agent process
//! on loopback, and a real Prometheus started with a generated configuration.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The plateau binary built for these tests.
pub fn plateau_bin() -> &'static str {
    env!("CARGO_BIN_EXE_plateau")
}

/// A `plateau agent` process on 127.0.0.1, killed when dropped.
pub struct AgentProcess {
    pub child: Child,
    pub url: String,
    pub token: String,
    pub token_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl AgentProcess {
    /// Starts an agent with a fresh token file, a free data port, a 200 ms sampling
    /// interval and `extra` flags.
    pub fn start(extra: &[&str]) -> AgentProcess {
        AgentProcess::start_in(None, "127.0.0.1:0", extra)
    }

    /// Starts an agent listening on `listen`, inside network namespace `netns` if given.
    pub fn start_in(netns: Option<&str>, listen: &str, extra: &[&str]) -> AgentProcess {
        let dir = tempfile::tempdir().unwrap();
        let token = format!("token-{}", std::process::id());
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, format!("{token}\n")).unwrap();
        let mut command = match netns {
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns, plateau_bin()]);
                command
            }
            None => Command::new(plateau_bin()),
        };
        let mut child = command
            .args(["agent", "--listen", listen, "--data-port", "0", "--interval", "200ms", "--token-file"])
            .arg(&token_file)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting plateau agent");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("reading the agent's first line");
        let url = line.split_whitespace().find(|word| word.starts_with("http://")).unwrap_or_default().to_string();
        assert!(url.starts_with("http://"), "unexpected first line: {line:?}");
        AgentProcess { child, url, token, token_file, _dir: dir }
    }

    /// The token file, as a `--token-file` argument.
    pub fn token_arg(&self) -> &str {
        self.token_file.to_str().unwrap()
    }

    /// The `host:port` the agent listens on.
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Sends SIGTERM and waits for exit; returns how long the exit took.
    pub fn terminate(&mut self) -> (Duration, std::process::ExitStatus) {
        let started = Instant::now();
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(self.child.id() as i32).unwrap(),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let status =
            wait_with_timeout(&mut self.child, Duration::from_secs(10)).expect("agent did not exit within 10 s");
        (started.elapsed(), status)
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for a child to exit, at most `limit`.
pub fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Polls `check` every 100 ms until it returns `Some`, at most `limit`.
pub fn eventually<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for a test server).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A real Prometheus server scraping `targets` every second, killed when dropped.
pub struct PrometheusProcess {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl PrometheusProcess {
    /// Starts Debian's `prometheus` with one job per `(job, host:port)` target.
    pub fn start(targets: &[(&str, &str)]) -> PrometheusProcess {
        let mut config = String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n");
        for (job, target) in targets {
            config.push_str(&format!("  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"));
        }
        PrometheusProcess::start_with_config(&config)
    }

    /// Starts Debian's `prometheus` with the configuration `config` (YAML text).
    pub fn start_with_config(config: &str) -> PrometheusProcess {
        let binary =
            which("prometheus").expect("prometheus is not installed: run `apt-get install prometheus` (.ci/run does)");
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting prometheus");
        let prometheus = PrometheusProcess { child, url: format!("http://127.0.0.1:{port}"), _dir: dir };
        let client = reqwest::blocking::Client::new();
        eventually(Duration::from_secs(30), || {
            client.get(format!("{}/-/ready", prometheus.url)).send().ok().filter(|r| r.status().is_success())
        })
        .expect("prometheus did not become ready within 30 s");
        prometheus
    }
}

impl Drop for PrometheusProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The full path of an executable on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(name)).find(|path| path.is_file())
}

/// Whether the root-only tests were asked for (`PLATEAU_ROOT_TESTS=1`, set by `.ci/run`).
pub fn root_tests_enabled() -> bool {
    std::env::var("PLATEAU_ROOT_TESTS").is_ok_and(|v| v == "1")
}

/// Serializes the tests that measure throughput, so that they do not share the two
/// cores with each other.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A stock `iperf3 -s` on a free loopback port, killed when dropped.
pub struct Iperf3Server {
    child: Child,
    pub port: u16,
}

impl Iperf3Server {
    /// Starts Debian's iperf3 as a server; waits until it accepts connections.
    pub fn start() -> Iperf3Server {
        let binary = which("iperf3").expect("iperf3 is not installed: run `apt-get install iperf3` (.ci/run does)");
        let port = free_port();
        let child = Command::new(binary)
            .args(["-s", "-B", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting iperf3 -s");
        eventually(Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).ok())
            .expect("iperf3 -s did not start listening");
        // The probe connection above counts as a client; give the server a moment to
        // notice it went away.
        std::thread::sleep(Duration::from_millis(300));
        Iperf3Server { child, port }
    }
}

impl Drop for Iperf3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the plateau binary with `args`; returns (success, stdout, stderr).
pub fn plateau(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(plateau_bin()).args(args).output().expect("running plateau");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs plateau with `args`; returns its exit code, stdout and stderr.
pub fn plateau_status(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(plateau_bin()).args(args).output().expect("running plateau");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs `iperf3 -c` with `args` and `-J`; returns its JSON.
pub fn iperf3_client(args: &[&str]) -> serde_json::Value {
    let output = Command::new("iperf3").args(["-c", "127.0.0.1", "-J"]).args(args).output().expect("running iperf3 -c");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| panic!("iperf3 -J output does not parse: {err}"))
}

/// The tansu binary: `PLATEAU_TANSU`, or where `.ci/run` installs it, or PATH.
pub fn tansu_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("PLATEAU_TANSU") {
        return PathBuf::from(path);
    }
    let installed = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/plateau-tools/bin/tansu");
    if installed.is_file() {
        return installed;
    }
    which("tansu").expect("tansu is not installed: run .ci/run, which installs it with cargo install")
}

/// A tansu broker with memory storage on a free loopback port, killed when dropped.
pub struct TansuBroker {
    child: Child,
    pub bootstrap: String,
}

impl TansuBroker {
    /// Starts the broker and waits until it accepts connections.
    pub fn start() -> TansuBroker {
        TansuBroker::start_with(free_port(), "memory://tansu/", std::env::temp_dir().as_path(), &[])
    }

    /// Starts a broker on `port` with `storage` (relative paths are in `dir`) and `extra` flags.
    pub fn start_with(port: u16, storage: &str, dir: &Path, extra: &[&str]) -> TansuBroker {
        TansuBroker::start_advertising(port, "127.0.0.1", storage, dir, extra)
    }

    /// Starts a broker listening on 127.0.0.1:`port` that tells clients to connect to
    /// `advertised_host` instead.
    pub fn start_advertising(
        port: u16,
        advertised_host: &str,
        storage: &str,
        dir: &Path,
        extra: &[&str],
    ) -> TansuBroker {
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = format!("tcp://{advertised_host}:{port}");
        let child = Command::new(tansu_bin())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
                "--storage-engine",
                storage,
            ])
            .args(extra)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting tansu");
        eventually(Duration::from_secs(20), || std::net::TcpStream::connect(("127.0.0.1", port)).ok())
            .expect("tansu did not start listening within 20 s");
        TansuBroker { child, bootstrap: format!("127.0.0.1:{port}") }
    }

    /// Creates a SCRAM-SHA-512 user.
    pub fn create_user(&self, name: &str, password: &str) {
        let status = Command::new(tansu_bin())
            .args([
                "user",
                "create",
                name,
                password,
                "--mechanism",
                "scram512",
                "--broker",
                &format!("tcp://{}", self.bootstrap),
            ])
            .stdout(Stdio::null())
            .status()
            .expect("running tansu user create");
        assert!(status.success(), "tansu user create {name} failed");
    }

    /// Creates a topic with `partitions` partitions.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let status = Command::new(tansu_bin())
            .args([
                "topic",
                "create",
                name,
                "--partitions",
                &partitions.to_string(),
                "--broker",
                &format!("tcp://{}", self.bootstrap),
            ])
            .stdout(Stdio::null())
            .status()
            .expect("running tansu topic create");
        assert!(status.success(), "tansu topic create {name} failed");
    }
}

impl Drop for TansuBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny HTTP server for test doubles of things that cannot run here (Apache Kafka's
/// JMX beans): answers every GET with `respond(path)` as (content type, body).
pub struct TestHttpServer {
    pub url: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl TestHttpServer {
    /// Serves on a free loopback port until dropped.
    pub fn start(respond: impl Fn(&str) -> (String, String) + Send + Sync + 'static) -> TestHttpServer {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread_stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            while !thread_stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut request = [0u8; 4096];
                let n = stream.read(&mut request).unwrap_or(0);
                let text = String::from_utf8_lossy(&request[..n]);
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (content_type, body) = respond(&path);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TestHttpServer { url, stop }
    }

    /// `host:port`.
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }
}

impl Drop for TestHttpServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A real PostgreSQL (Debian's package, `tests/postgres/postgres.sh`) on a free loopback
/// port, stopped when dropped.
pub struct PostgresProcess {
    dir: tempfile::TempDir,
    /// The connection string plateau's sink takes.
    pub url: String,
}

impl PostgresProcess {
    /// Initializes a database cluster in a temporary directory and starts it.
    pub fn start() -> PostgresProcess {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/postgres/postgres.sh");
        let port = free_port();
        let output = Command::new("bash")
            .arg(&script)
            .args(["up", dir.path().to_str().unwrap(), &port.to_string()])
            .output()
            .expect("running tests/postgres/postgres.sh");
        let postgres = PostgresProcess { url: format!("postgres://plateau:plateau@127.0.0.1:{port}/plateau"), dir };
        assert!(
            output.status.success(),
            "PostgreSQL did not start (tests/setup.sh installs it): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        postgres
    }

    /// A client connection.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("connecting to the test's PostgreSQL")
    }
}

impl Drop for PostgresProcess {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/postgres/postgres.sh");
        let _ = Command::new("bash").arg(script).args(["down", self.dir.path().to_str().unwrap()]).status();
    }
}
