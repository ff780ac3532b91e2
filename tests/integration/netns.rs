//! Root-only: two hosts in network namespaces joined through a router whose links are
//! limited to 100 Mbit/s with `tc tbf` (the seed story's VM links). plateau and iperf3 measure the
//! same link: TCP within 5 % of each other, UDP at twice the cap with loss within
//! 3 percentage points, and plateau names the network as the limit. Run when
//! `PLATEAU_ROOT_TESTS=1`; the namespaces are removed even when the test fails.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{AgentProcess, eventually, exclusive, plateau_bin, root_tests_enabled};

/// Hosts `a` and `b` in their own namespaces, joined through a router namespace `r`
/// whose links towards both are shaped to `rate`: the cap sits in the network, as a
/// VM's virtual link does, not in the sender's own queue (which would push back on the
/// sending socket instead of dropping).
pub struct LinkedNamespaces {
    pub a: String,
    pub b: String,
    pub router: String,
    pub b_ip: String,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("running ip");
    assert!(status.success(), "ip {args:?} failed");
}

impl LinkedNamespaces {
    /// Creates the three namespaces; `tag` keeps concurrent test runs apart.
    pub fn create(tag: &str, rate: &str) -> LinkedNamespaces {
        let id = std::process::id() % 250;
        let pair = LinkedNamespaces {
            a: format!("pl-{tag}-a-{id}"),
            b: format!("pl-{tag}-b-{id}"),
            router: format!("pl-{tag}-r-{id}"),
            b_ip: format!("10.78.{id}.1"),
        };
        // Leftovers of a crashed run would make `add` fail; remove them first.
        pair.remove();
        for ns in [&pair.a, &pair.b, &pair.router] {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        let sides = [
            (&pair.a, format!("pla{id}"), format!("pra{id}"), 77),
            (&pair.b, format!("plb{id}"), format!("prb{id}"), 78),
        ];
        for (host, host_dev, router_dev, net) in &sides {
            ip(&["link", "add", host_dev, "type", "veth", "peer", "name", router_dev]);
            ip(&["link", "set", host_dev, "netns", host]);
            ip(&["link", "set", router_dev, "netns", &pair.router]);
            ip(&["-n", host, "addr", "add", &format!("10.{net}.{id}.1/24"), "dev", host_dev]);
            ip(&["-n", &pair.router, "addr", "add", &format!("10.{net}.{id}.254/24"), "dev", router_dev]);
            ip(&["-n", host, "link", "set", host_dev, "up"]);
            ip(&["-n", &pair.router, "link", "set", router_dev, "up"]);
            ip(&["-n", host, "route", "add", "default", "via", &format!("10.{net}.{id}.254")]);
            let status = Command::new("tc")
                .args([
                    "-n",
                    &pair.router,
                    "qdisc",
                    "add",
                    "dev",
                    router_dev,
                    "root",
                    "tbf",
                    "rate",
                    rate,
                    "burst",
                    "64kb",
                    "latency",
                    "50ms",
                ])
                .status()
                .expect("running tc");
            assert!(status.success(), "tc tbf failed");
        }
        let status = LinkedNamespaces::exec(&pair.router, "sysctl")
            .args(["-qw", "net.ipv4.ip_forward=1"])
            .status()
            .expect("running sysctl");
        assert!(status.success(), "enabling forwarding failed");
        pair
    }

    fn remove(&self) {
        for ns in [&self.a, &self.b, &self.router] {
            let _ = Command::new("ip").args(["netns", "del", ns]).stderr(Stdio::null()).status();
        }
    }

    /// Runs a command inside namespace `ns`.
    pub fn exec(ns: &str, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns, program]);
        command
    }
}

impl Drop for LinkedNamespaces {
    fn drop(&mut self) {
        // Deleting a namespace removes its ends of the veth pairs, and with them the peers.
        self.remove();
    }
}

/// A process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn json_of(command: &mut Command) -> Value {
    let output = command.output().expect("running a client");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

#[test]
fn plateau_and_iperf3_agree_on_a_100_mbit_link() {
    if !root_tests_enabled() {
        eprintln!("skipped: set PLATEAU_ROOT_TESTS=1 (as root) to run");
        return;
    }
    let _exclusive = exclusive();
    let link = LinkedNamespaces::create("net", "100mbit");
    let agent = AgentProcess::start_in(Some(&link.b), &format!("{}:0", link.b_ip), &[]);
    let _iperf3 = Killed(
        LinkedNamespaces::exec(&link.b, "iperf3")
            .args(["-s", "-B", &link.b_ip, "-p", "5201"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    eventually(Duration::from_secs(10), || {
        let probe = LinkedNamespaces::exec(&link.a, "bash")
            .args(["-c", &format!("exec 3<>/dev/tcp/{}/5201", link.b_ip)])
            .status()
            .ok()?;
        probe.success().then_some(())
    })
    .expect("iperf3 -s in the namespace did not accept connections within 10 s");
    std::thread::sleep(Duration::from_millis(300));

    let ours = |protocol: &str, extra: &[&str]| {
        json_of(
            LinkedNamespaces::exec(&link.a, plateau_bin())
                .args(["net", protocol, &agent.url, "--token-file", agent.token_arg(), "--json"])
                .args(extra),
        )
    };
    let theirs =
        |extra: &[&str]| json_of(LinkedNamespaces::exec(&link.a, "iperf3").args(["-c", &link.b_ip, "-J"]).args(extra));
    let mbit = |report: &Value, path: &[&str]| {
        path.iter().fold(report, |value, key| &value[*key]).as_f64().expect("a number") / 1e6
    };

    let tcp_ours = ours("tcp", &["-t", "5", "-O", "1"]);
    let tcp_theirs = theirs(&["-t", "5", "-O", "1"]);
    let (a, b) = (
        mbit(&tcp_ours, &["end", "sum_received", "bits_per_second"]),
        mbit(&tcp_theirs, &["end", "sum_received", "bits_per_second"]),
    );
    eprintln!("TCP on a 100 Mbit/s link: plateau {a:.2} Mbit/s, iperf3 {b:.2} Mbit/s");
    assert!((85.0..101.0).contains(&a), "plateau measured {a} Mbit/s on a 100 Mbit/s link");
    assert!((a / b - 1.0).abs() < 0.05, "plateau {a:.2} vs iperf3 {b:.2} Mbit/s");
    assert_eq!(tcp_ours["plateau"]["limited_by"], "network", "{}", tcp_ours["plateau"]);

    let udp_ours = ours("udp", &["-b", "200M", "-l", "1460", "-t", "5"]);
    let udp_theirs = theirs(&["-u", "-b", "200M", "-l", "1460", "-t", "5"]);
    let (loss_a, loss_b) = (
        udp_ours["end"]["sum"]["lost_percent"].as_f64().unwrap(),
        udp_theirs["end"]["sum"]["lost_percent"].as_f64().unwrap(),
    );
    eprintln!("UDP at 200 Mbit/s on a 100 Mbit/s link: plateau {loss_a:.1} % lost, iperf3 {loss_b:.1} % lost");
    assert!((40.0..60.0).contains(&loss_a), "plateau lost {loss_a} % at twice the cap");
    assert!((loss_a - loss_b).abs() < 3.0, "loss: plateau {loss_a:.2} %, iperf3 {loss_b:.2} %");
    assert_eq!(udp_ours["plateau"]["limited_by"], "network", "{}", udp_ours["plateau"]);
}
