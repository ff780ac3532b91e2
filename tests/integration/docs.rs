//! The docs' own check: the README stays a front door (its budget, the seeds named once),
//! every relative link in it and in `docs/` leads to a file, and every concrete `plateau`
//! command line in their shell blocks parses with today's command line.

use std::path::PathBuf;

use clap::Parser;
use plateau::cli::Cli;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every page under docs/, with their text.
fn pages() -> Vec<(PathBuf, String)> {
    let mut paths = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap())).collect()
}

/// The lines of a page's ```sh blocks, continuations joined and comments dropped.
fn shell_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_block = trimmed == "```sh" || trimmed == "```bash";
            continue;
        }
        if !in_block {
            continue;
        }
        let code = match trimmed.find(" #") {
            Some(at) => &trimmed[..at],
            None => trimmed,
        };
        match code.strip_suffix('\\') {
            Some(head) => pending.push_str(&format!("{} ", head.trim_end())),
            None => {
                pending.push_str(code);
                lines.push(std::mem::take(&mut pending).trim().to_string());
            }
        }
    }
    lines
}

/// Words as a shell splits them: quotes kept together, `$(…)` one word.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let (mut quote, mut depth) = (None, 0);
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') if depth == 0 => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '(') => {
                depth += 1;
                word.push(c);
            }
            (None, ')') => {
                depth -= 1;
                word.push(c);
            }
            (None, ' ') if depth == 0 => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

#[test]
fn the_readme_is_a_front_door() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(lines <= 250, "README.md is {lines} lines; its budget is 250 (the reference belongs in docs/)");
    let first = readme.lines().find(|l| !l.starts_with('#') && !l.trim().is_empty()).unwrap();
    assert!(first.starts_with("plateau tells you"), "the first sentence says what plateau is: {first}");
    let seeds = readme.to_lowercase().match_indices("seed ").count();
    assert!(seeds <= 1, "the README names the seeds {seeds} times; once, as where the scenarios come from");
}

#[test]
fn every_relative_link_leads_to_a_file() {
    let mut broken = Vec::new();
    let mut links = 0;
    for (path, text) in pages() {
        for (at, _) in text.match_indices("](") {
            let rest = &text[at + 2..];
            let target = &rest[..rest.find(')').unwrap_or(0)];
            if target.is_empty() || target.contains("://") || target.starts_with('#') {
                continue;
            }
            links += 1;
            let file = target.split('#').next().unwrap();
            if !path.parent().unwrap().join(file).exists() {
                broken.push(format!("{}: {target}", path.display()));
            }
        }
    }
    assert!(links > 20, "only {links} links found");
    assert!(broken.is_empty(), "links to nothing:\n{}", broken.join("\n"));
}

/// The subcommand a command line names (`net tcp`, `rules check`) and the flags it gives.
fn flags_of(line: &str) -> (Vec<String>, Vec<String>) {
    let words: Vec<&str> = line.split_whitespace().skip(1).collect();
    let path: Vec<String> = words
        .iter()
        .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .map(|w| w.to_string())
        .collect();
    let flags = words
        .iter()
        .map(|w| w.trim_start_matches(['[', '(']))
        .filter(|w| w.starts_with('-'))
        .map(|w| w.split(['=', ']', ')', ',']).next().unwrap().to_string())
        .collect();
    (path, flags)
}

#[test]
fn every_plateau_command_in_the_docs_parses() {
    use clap::CommandFactory;
    let cli = Cli::command();
    let (mut parsed, mut synopses) = (0, 0);
    let mut failed = Vec::new();
    for (path, text) in pages() {
        for line in shell_lines(&text) {
            if !line.starts_with("plateau ") {
                continue;
            }
            // A synopsis ([optional] parts, alternatives, placeholders): its subcommand and
            // every flag it names must exist.
            if line.contains(['[', '|', '…', '<', '{']) {
                synopses += 1;
                let (names, flags) = flags_of(&line);
                let mut command = &cli;
                for name in &names {
                    match command.find_subcommand(name) {
                        Some(sub) => command = sub,
                        None => break,
                    }
                }
                for flag in flags {
                    let known = command.get_arguments().any(|arg| {
                        arg.get_long().is_some_and(|long| flag == format!("--{long}"))
                            || arg.get_short().is_some_and(|short| flag == format!("-{short}"))
                    }) || flag == "--help";
                    if !known {
                        failed.push(format!("{}: `plateau {}` has no {flag}", path.display(), names.join(" ")));
                    }
                }
                continue;
            }
            parsed += 1;
            // Up to a redirection: the shell's, not plateau's.
            let command = line.split(" > ").next().unwrap_or_default();
            if let Err(err) = Cli::try_parse_from(words(command)) {
                let first = err.to_string().lines().next().unwrap_or_default().to_string();
                failed.push(format!("{}: `{line}`: {first}", path.display()));
            }
        }
    }
    assert!(parsed >= 5 && synopses >= 10, "only {parsed} commands and {synopses} synopses found");
    assert!(failed.is_empty(), "commands in the docs that today's command line refuses:\n{}", failed.join("\n"));
}

#[test]
fn shell_lines_join_continuations_and_drop_comments() {
    let text = "```sh\nplateau diagnose --a 1 \\\n    --b 2   # why\n```\n```toml\nplateau = 1\n```\n";
    assert_eq!(shell_lines(text), ["plateau diagnose --a 1 --b 2"]);
    assert_eq!(
        words("plateau agent --watch \"$(pgrep -f kafka.Kafka)\" --x 'a b'"),
        ["plateau", "agent", "--watch", "$(pgrep -f kafka.Kafka)", "--x", "a b"]
    );
}
