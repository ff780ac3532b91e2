//! Finds the Kafka broker on this host, for an agent told nothing about what to watch.
//!
//! Apache Kafka's scripts, Confluent Platform's and Strimzi's all start the broker as a
//! JVM whose main class is `kafka.Kafka`; a broker that is not a JVM is found by the port
//! it listens on. Where several brokers share the machine (the testbed's namespaces, a
//! host running containers), the one in the agent's own network namespace is this host's.
//! Everything is read from a /proc root, so a captured tree can stand in for a machine.

use std::path::Path;

/// The main class every Kafka distribution starts its broker with.
pub const BROKER_MAIN_CLASS: &str = "kafka.Kafka";

/// The port a broker listens on unless configured otherwise.
pub const BROKER_PORT: u16 = 9092;

/// A broker process found on this host, and how it was recognised.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundBroker {
    /// Its process id.
    pub pid: i32,
    /// `the JVM running kafka.Kafka` or `the process listening on port 9092`.
    pub how: String,
    /// How it was chosen among several (`; the one of 3 in the agent's network
    /// namespace`), or nothing.
    pub among: String,
}

/// The broker on this host, or why there is none.
pub fn find(proc_root: &Path) -> Result<FoundBroker, String> {
    let pids = pids(proc_root);
    let jvms: Vec<i32> = pids.iter().copied().filter(|&pid| runs_main_class(proc_root, pid)).collect();
    if let Some((pid, among)) = nearest(proc_root, &jvms) {
        return Ok(FoundBroker { pid, how: format!("the JVM running {BROKER_MAIN_CLASS}"), among });
    }
    let listeners = listening_on(proc_root, BROKER_PORT, &pids);
    if let Some((pid, among)) = nearest(proc_root, &listeners) {
        return Ok(FoundBroker { pid, how: format!("the process listening on port {BROKER_PORT}"), among });
    }
    Err(format!(
        "no Kafka broker on this host (no JVM running {BROKER_MAIN_CLASS}, nothing listening on port {BROKER_PORT})"
    ))
}

/// The candidate in the agent's own network namespace (the lowest pid when several are),
/// else the lowest pid; with how it was chosen when there was a choice.
fn nearest(proc_root: &Path, candidates: &[i32]) -> Option<(i32, String)> {
    let own = std::fs::read_link(proc_root.join("self/ns/net")).ok();
    let here: Vec<i32> = candidates
        .iter()
        .copied()
        .filter(|pid| own.is_some() && std::fs::read_link(proc_root.join(format!("{pid}/ns/net"))).ok() == own)
        .collect();
    let pool = if here.is_empty() { candidates } else { &here };
    let pid = *pool.iter().min()?;
    let how = match (candidates.len(), pool.len()) {
        (1, _) => String::new(),
        (all, 1) => format!("; the one of {all} in the agent's network namespace"),
        (all, _) => format!("; the lowest pid of {all}: name one with --watch"),
    };
    Some((pid, how))
}

fn pids(proc_root: &Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir(proc_root) else { return Vec::new() };
    let mut pids: Vec<i32> =
        entries.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok()).collect();
    pids.sort_unstable();
    pids
}

/// Whether the process's command line names the broker's main class as an argument of
/// its own (not inside a classpath or a `-D` option).
fn runs_main_class(proc_root: &Path, pid: i32) -> bool {
    std::fs::read(proc_root.join(format!("{pid}/cmdline")))
        .is_ok_and(|cmdline| cmdline.split(|&b| b == 0).any(|arg| arg == BROKER_MAIN_CLASS.as_bytes()))
}

/// Processes holding a socket that listens on `port` in the agent's network namespace.
fn listening_on(proc_root: &Path, port: u16, pids: &[i32]) -> Vec<i32> {
    let inodes: Vec<String> = ["self/net/tcp", "self/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(proc_root.join(table)).ok())
        .flat_map(|text| listening_inodes(&text, port))
        .collect();
    if inodes.is_empty() {
        return Vec::new();
    }
    let wanted: Vec<String> = inodes.iter().map(|inode| format!("socket:[{inode}]")).collect();
    pids.iter()
        .copied()
        .filter(|pid| {
            std::fs::read_dir(proc_root.join(format!("{pid}/fd"))).is_ok_and(|fds| {
                fds.filter_map(Result::ok).any(|fd| {
                    std::fs::read_link(fd.path())
                        .is_ok_and(|link| wanted.iter().any(|w| link.as_os_str() == w.as_str()))
                })
            })
        })
        .collect()
}

/// The inodes of sockets in state LISTEN (`0A`) on `port`, from /proc/net/tcp text.
pub fn listening_inodes(text: &str, port: u16) -> Vec<String> {
    let port = format!("{port:04X}");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit(':').next()?;
            (local_port == port && *fields.get(3)? == "0A").then(|| fields.get(9).map(|inode| inode.to_string()))?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_are_read_from_the_tcp_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:2384 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0 100 0 0 10 0\n\
   1: 0100007F:2384 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 20 4 30 10 -1\n\
   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 555 1 0 100 0 0 10 0\n";
        assert_eq!(listening_inodes(table, 9092), ["31337"], "an established connection on 9092 is not a listener");
        assert_eq!(listening_inodes(table, 8080), ["555"]);
    }

    #[test]
    fn the_broker_is_the_jvm_running_kafka_kafka() {
        let root = tempfile::tempdir().unwrap();
        let process = |pid: i32, args: &[&str]| {
            let dir = root.path().join(pid.to_string());
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("cmdline"), args.join("\0") + "\0").unwrap();
        };
        process(1, &["/sbin/init"]);
        // A tool whose classpath mentions the class is not the broker.
        process(20, &["java", "-cp", "/opt/kafka/libs/*", "-Dwhat=kafka.Kafka", "kafka.tools.ConsoleProducer"]);
        assert!(find(root.path()).unwrap_err().contains("no Kafka broker on this host"));
        process(31, &["java", "-Xmx1G", "-cp", "/opt/kafka/libs/*", "kafka.Kafka", "/etc/kafka/server.properties"]);
        process(40, &["java", "-server", "kafka.Kafka", "/etc/kafka/other.properties"]);
        let found = find(root.path()).unwrap();
        assert_eq!(found.pid, 31);
        assert_eq!(found.how, "the JVM running kafka.Kafka");
        assert_eq!(found.among, "; the lowest pid of 2: name one with --watch");
    }
}
