//! `plateau init` against a real broker (tansu) and real agents on loopback: the broker's
//! agent found on its address, a plan diagnose reads, and each way it can fail said in a
//! line with its exit status.

use crate::support::{AgentProcess, TansuBroker, exclusive, free_port, plateau_status};

#[test]
fn init_finds_the_brokers_agent_checks_every_agent_and_writes_a_plan() {
    let _exclusive = exclusive();
    let broker = TansuBroker::start();
    let broker_agent = AgentProcess::start(&[]);
    let generator = AgentProcess::start(&[]);
    let agent_port = broker_agent.addr().rsplit(':').next().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let plan_path = dir.path().join("plan.toml");
    let plan_arg = plan_path.to_str().unwrap();
    let init = |extra: &[&str]| {
        let mut args = vec!["init", "--bootstrap", &broker.bootstrap, "--agent-port", &agent_port, "--out", plan_arg];
        args.extend_from_slice(extra);
        plateau_status(&args)
    };

    // No generator: the plan is written with what to fix at its top, and the exit says so.
    let (status, _, stderr) = init(&["--token-file", generator.token_arg()]);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("1 check(s) failed"), "{stderr}");
    let text = std::fs::read_to_string(&plan_path).unwrap();
    assert!(text.contains("Fix these first") && text.contains("--generator URL"), "{text}");

    // An existing plan is kept unless --force.
    let (status, _, stderr) = init(&["--token-file", generator.token_arg(), "--generator", &generator.url]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("pass --force"), "{stderr}");

    let (status, stdout, stderr) =
        init(&["--token-file", generator.token_arg(), "--generator", &generator.url, "--force"]);
    assert_eq!(status, Some(0), "{stderr}");
    assert!(stdout.contains("1 broker(s), 1 with an agent; 1 generator(s)"), "{stdout}");
    assert!(stderr.contains("token accepted, allow-list covers the brokers; reads"), "{stderr}");
    let text = std::fs::read_to_string(&plan_path).unwrap();
    let plan: plateau::diagnose::DiagnosePlan = toml::from_str(&text).unwrap_or_else(|err| panic!("{err}\n{text}"));
    assert_eq!(plan.generators, std::slice::from_ref(&generator.url));
    assert_eq!(plan.brokers.len(), 1);
    assert!(plan.brokers[0].ends_with(&format!(":{agent_port}")), "{:?}", plan.brokers);
    assert!(text.contains("# The topic does not exist: diagnose creates it with these."), "{text}");
    assert_eq!((plan.partitions, plan.replication_factor), (Some(4), Some(1)));

    // A wrong token: every agent's check fails, and says why.
    let wrong = dir.path().join("wrong-token");
    std::fs::write(&wrong, "not-the-token\n").unwrap();
    let (status, _, stderr) =
        init(&["--token-file", wrong.to_str().unwrap(), "--generator", &generator.url, "--force"]);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("FAIL generator agent") && stderr.contains("2 check(s) failed"), "{stderr}");

    // A cluster that does not answer: one line, no plan.
    let gone = dir.path().join("gone.toml");
    let bootstrap = format!("127.0.0.1:{}", free_port());
    let (status, _, stderr) = plateau_status(&[
        "init",
        "--bootstrap",
        &bootstrap,
        "--token-file",
        generator.token_arg(),
        "--out",
        gone.to_str().unwrap(),
    ]);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains(&format!("cannot read the cluster's metadata at {bootstrap}")), "{stderr}");
    assert!(stderr.lines().count() <= 2 && !gone.exists(), "{stderr}");
}
