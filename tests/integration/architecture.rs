//! ARCHITECTURE.md's invariants that a test can check by reading the source: the modules'
//! layers (no import runs upward), no circles between submodules, and which modules may
//! talk HTTP, to Prometheus or read kernel files.
//!
//! The import graph is read from the text: every `crate::a::b` path and every `super::b`
//! path outside `#[cfg(test)]` code is an edge from the file's module to `a::b` (two
//! levels: `net::client`, `agent::api`). Rust allows circles and upward paths; this test
//! does not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may use modules of lower layers only (and its own
/// submodules).
const LAYERS: &[&[&str]] = &[
    &["units", "allow", "http_serve", "cancel", "latency", "signals"],
    &["sampler", "model"],
    &["net", "kafka"],
    &["probe", "plateau"],
    &["agent", "sla"],
    &["evidence"],
    &["rules"],
    &["verdict"],
    &["diagnose"],
    &["report"],
    &["controller"],
    &["cli"],
];

fn layer(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` has no layer: add it to LAYERS and to ARCHITECTURE.md"))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The library's files (not main.rs, which is the binary) and their module paths, cut to
/// two levels: `src/net/client.rs` → `net::client`, `src/agent/api/kafka.rs` → `agent::api`.
fn modules() -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut out = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src()).unwrap().with_extension("");
        let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        if parts == ["main"] || parts == ["lib"] {
            continue;
        }
        parts.truncate(2);
        let text = std::fs::read_to_string(&file).unwrap();
        // Test modules may reach anywhere for fixtures; code after them is checked.
        out.push((parts.join("::"), without_test_modules(&text)));
    }
    out
}

/// Where each byte of Rust source is code rather than a comment, a string or a character
/// literal: enough of a lexer to match braces and to find `fn` items.
fn code_mask(text: &str) -> Vec<bool> {
    let bytes = text.as_bytes();
    let mut mask = vec![true; bytes.len()];
    let mut i = 0;
    let blank = |mask: &mut Vec<bool>, from: usize, to: usize| mask[from..to.min(bytes.len())].fill(false);
    while i < bytes.len() {
        let rest = &bytes[i..];
        let end = if rest.starts_with(b"//") {
            i + rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len())
        } else if rest.starts_with(b"/*") {
            i + 2 + text[i + 2..].find("*/").map_or(rest.len() - 2, |at| at + 2)
        } else if rest[0] == b'r'
            && (rest.get(1) == Some(&b'"') || rest.get(1) == Some(&b'#'))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'))
        {
            let hashes = rest[1..].iter().take_while(|&&b| b == b'#').count();
            if rest.get(1 + hashes) != Some(&b'"') {
                i += 1;
                continue;
            }
            let close = format!("\"{}", "#".repeat(hashes));
            let body = i + 2 + hashes;
            text[body..].find(&close).map_or(bytes.len(), |at| body + at + close.len())
        } else if rest[0] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            j + 1
        } else if rest[0] == b'\'' {
            // A character literal ('x', '\n', '\u{..}'), not a lifetime ('a).
            if rest.get(1) == Some(&b'\\') {
                i + 2 + rest[2..].iter().position(|&b| b == b'\'').map_or(0, |at| at + 1)
            } else if let Some(c) = text[i + 1..].chars().next()
                && text[i + 1 + c.len_utf8()..].starts_with('\'')
            {
                i + 2 + c.len_utf8()
            } else {
                i + 1
            }
        } else {
            i + 1
        };
        if end > i + 1 || rest[0] == b'"' {
            blank(&mut mask, i, end);
        }
        i = end.max(i + 1);
    }
    mask
}

/// The index just past the brace that closes the one at `open`, in code.
fn matching_brace(text: &str, mask: &[bool], open: usize) -> usize {
    let mut depth = 0;
    for (at, byte) in text.bytes().enumerate().skip(open) {
        if !mask[at] {
            continue;
        }
        match byte {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return at + 1;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// The source without its `#[cfg(test)] mod … { … }` blocks, wherever they stand.
fn without_test_modules(text: &str) -> String {
    let mask = code_mask(text);
    let mut out = String::new();
    let mut from = 0;
    for (at, _) in text.match_indices("#[cfg(test)]") {
        if at < from || !mask[at] {
            continue;
        }
        let after = text[at + "#[cfg(test)]".len()..].trim_start();
        if !(after.starts_with("mod ") || after.starts_with("pub mod ")) {
            continue;
        }
        let Some(open) = text[at..].find('{').map(|o| at + o) else { continue };
        out.push_str(&text[from..at]);
        from = matching_brace(text, &mask, open);
    }
    out.push_str(&text[from..]);
    out
}

/// Every function with a body in `text`: its name, first line and length in lines (from
/// its `fn` line to its closing brace).
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let mask = code_mask(text);
    let mut out = Vec::new();
    for (at, _) in text.match_indices("fn ") {
        if !mask[at] || (at > 0 && (text.as_bytes()[at - 1].is_ascii_alphanumeric() || text.as_bytes()[at - 1] == b'_'))
        {
            continue;
        }
        let name: String = text[at + 3..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if name.is_empty() {
            continue;
        }
        // The body's brace, unless a `;` ends a declaration first (a trait's method).
        let Some(open) = (at..text.len()).find(|&i| mask[i] && matches!(text.as_bytes()[i], b'{' | b';')) else {
            continue;
        };
        if text.as_bytes()[open] == b';' {
            continue;
        }
        let close = matching_brace(text, &mask, open);
        let first = text[..at].lines().count() + usize::from(text[..at].ends_with('\n') || at == 0);
        let lines = text[at..close].lines().count();
        out.push((name, first, lines));
    }
    out
}

/// The identifiers right after each occurrence of `prefix` (`crate::`), following one
/// level of braces: `crate::{a, b::c}` gives `a` and `b::c`.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let word = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    for (at, _) in code.match_indices(prefix) {
        if at > 0 && code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        let items: Vec<&str> = match rest.strip_prefix('{') {
            Some(inner) => inner[..inner.find('}').unwrap_or(inner.len())].split(',').map(str::trim).collect(),
            None => vec![rest],
        };
        for item in items {
            let first = word(item);
            if first.is_empty() {
                continue;
            }
            let after = &item[first.len()..];
            let second = after.strip_prefix("::").map(word).filter(|w| !w.is_empty());
            out.push([Some(first), second].into_iter().flatten().collect());
        }
    }
    out
}

/// Every module-to-module edge, two levels deep where the target is a known submodule.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let known: BTreeSet<String> = modules.iter().map(|(m, _)| m.clone()).collect();
    let resolve = |path: &[String]| -> Option<String> {
        let two = path.join("::");
        if known.contains(&two) {
            return Some(two);
        }
        let one = path.first()?.clone();
        known.contains(&one).then_some(one)
    };
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, code) in &modules {
        let entry = graph.entry(module.clone()).or_default();
        for path in paths_after(code, "crate::") {
            if let Some(target) = resolve(&path) {
                entry.insert(target);
            }
        }
        // `super::x` in a submodule `a::b` is `a::x`.
        if let Some((parent, _)) = module.split_once("::") {
            for path in paths_after(code, "super::") {
                let mut full = vec![parent.to_string()];
                full.extend(path.into_iter().take(1));
                if let Some(target) = resolve(&full) {
                    entry.insert(target);
                }
            }
        }
        entry.remove(module);
    }
    graph
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap()
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let graph = edges();
    // The reader sees the imports it should: a check that finds nothing proves nothing.
    assert!(
        graph["diagnose::judgment"].contains("verdict") && graph["net::client"].contains("net::tally"),
        "{graph:?}"
    );
    assert!(graph["evidence::gather"].contains("agent::client"), "{graph:?}");
    let mut upward = Vec::new();
    for (from, targets) in graph {
        for to in targets {
            if top(&to) != top(&from) && layer(top(&to)) >= layer(top(&from)) {
                upward.push(format!("{from} → {to}"));
            }
        }
    }
    assert!(upward.is_empty(), "imports that run upward or sideways across layers:\n{}", upward.join("\n"));
}

#[test]
fn submodules_import_each_other_in_one_direction() {
    // A submodule using its parent's items (and the parent declaring it) is how Rust
    // modules work; between siblings and across modules, no circles.
    let graph = edges();
    let related = |a: &str, b: &str| a == top(b) || b == top(a);
    let mut circles = Vec::new();
    for (from, targets) in &graph {
        for to in targets {
            if related(from, to) {
                continue;
            }
            // Is `from` reachable from `to`?
            let mut seen = BTreeSet::new();
            let mut stack = vec![to.clone()];
            while let Some(node) = stack.pop() {
                if !seen.insert(node.clone()) {
                    continue;
                }
                for next in graph.get(&node).into_iter().flatten() {
                    if related(&node, next) {
                        continue;
                    }
                    if next == from {
                        circles.push(format!("{from} → {to} → … → {from}"));
                    }
                    stack.push(next.clone());
                }
            }
        }
    }
    circles.sort();
    circles.dedup();
    assert!(circles.is_empty(), "import circles:\n{}", circles.join("\n"));
}

/// The files under `src` whose code (not tests) contains `needle`, as module paths.
fn modules_mentioning(needle: &str) -> BTreeSet<String> {
    modules().into_iter().filter(|(_, code)| code.contains(needle)).map(|(m, _)| m).collect()
}

#[test]
fn only_the_agent_client_and_evidence_make_http_requests() {
    let found = modules_mentioning("reqwest");
    let allowed = |m: &str| m == "agent::client" || top(m) == "evidence";
    let others: Vec<&String> = found.iter().filter(|m| !allowed(m)).collect();
    assert!(others.is_empty(), "HTTP clients outside agent::client and evidence: {others:?}");
}

#[test]
fn only_evidence_talks_to_prometheus_and_jmx() {
    let found = modules_mentioning("/api/v1/query");
    let others: Vec<&String> = found.iter().filter(|m| top(m) != "evidence").collect();
    assert!(others.is_empty(), "Prometheus queries outside evidence: {others:?}");
}

#[test]
fn only_the_samplers_readers_open_kernel_files() {
    let found: BTreeSet<String> =
        ["\"/proc", "\"/sys/", "/proc/self"].iter().flat_map(|needle| modules_mentioning(needle)).collect();
    let others: Vec<&String> = found.iter().filter(|m| top(m) != "sampler").collect();
    assert!(others.is_empty(), "kernel files read outside sampler: {others:?}");
}

#[test]
fn only_report_prints_for_people() {
    // Progress and results go through report (or the Progress trait it implements);
    // probes, evidence and the rules never print.
    let found: BTreeSet<String> =
        ["println!(", "eprintln!(", "print!("].iter().flat_map(|needle| modules_mentioning(needle)).collect();
    // The agent's and the controller's one line on start (where they listen) is the
    // daemons' own, and scripts wait for it.
    let daemons = ["agent", "controller::server"];
    let others: Vec<&String> =
        found.iter().filter(|m| !matches!(top(m), "report" | "cli") && !daemons.contains(&m.as_str())).collect();
    assert!(others.is_empty(), "printing outside report: {others:?}");
}

/// Files of real logic stay small enough to read in a sitting, and functions short enough
/// to hold in one's head. Data tables (an exporter's families, the OpenAPI list) are the
/// exception, named here with why.
#[test]
fn no_file_over_700_lines_and_no_function_over_120() {
    const MAX_FILE_LINES: usize = 700;
    const MAX_FN_LINES: usize = 120;
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut too_long = Vec::new();
    let mut measured = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let name = file.strip_prefix(src()).unwrap().display().to_string();
        let file_lines = text.lines().count();
        if file_lines > MAX_FILE_LINES {
            too_long.push(format!("{name}: {file_lines} lines"));
        }
        for (function, line, lines) in functions(&without_test_modules(&text)) {
            measured += 1;
            if lines > MAX_FN_LINES {
                too_long.push(format!("{name}:{line}: fn {function} is {lines} lines"));
            }
        }
    }
    // The reader sees the functions it should: a check that finds nothing proves nothing.
    assert!(measured > 500, "only {measured} functions found");
    assert!(too_long.is_empty(), "split these:\n{}", too_long.join("\n"));
}

#[test]
fn the_function_reader_skips_strings_comments_and_characters() {
    let text = "fn a() {\n    let s = \"}{\"; // }\n    let c = '}';\n    let r = r#\"}\"#;\n}\n\nfn b<'x>(v: &'x str) -> &'x str {\n    v\n}\n#[cfg(test)]\nmod tests {\n    fn c() {}\n}\nfn d() {}\n";
    let found = functions(text);
    assert_eq!(
        found,
        vec![("a".to_string(), 1, 5), ("b".to_string(), 7, 3), ("c".to_string(), 12, 1), ("d".to_string(), 14, 1),]
    );
    let kept = without_test_modules(text);
    assert!(kept.contains("fn d()") && !kept.contains("fn c()"), "{kept}");
}

/// The probe registry's recipe holds for every probe there is: each `ProbeOutput` variant
/// has an entry, each entry its file, its agent routes (in the agent's OpenAPI) and the
/// measured sources its results fill. Adding nothing, this checks the recipe a new probe
/// will follow.
#[test]
fn every_probe_is_registered_with_its_file_routes_and_measured_sources() {
    use plateau::probe::PROBES;
    use utoipa::OpenApi;
    let spec = serde_json::to_value(plateau::agent::api::openapi::AgentApi::openapi()).unwrap();
    let schema = &spec["components"]["schemas"]["ProbeOutput"];
    let tags: BTreeSet<String> = schema["oneOf"]
        .as_array()
        .expect("ProbeOutput is a tagged union in the agent's OpenAPI")
        .iter()
        .flat_map(|variant| {
            let parts = variant["allOf"].as_array().cloned().unwrap_or_else(|| vec![variant.clone()]);
            parts.into_iter().filter_map(|part| part["properties"]["probe"]["enum"][0].as_str().map(str::to_string))
        })
        .collect();
    let registered: BTreeSet<String> = PROBES.iter().map(|p| p.name.to_string()).collect();
    assert!(!tags.is_empty(), "no ProbeOutput variants found in {schema}");
    assert_eq!(tags, registered, "ProbeOutput's variants and plateau::probe::PROBES differ");
    let files: BTreeSet<String> = std::fs::read_dir(src().join("probe"))
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|name| name != "mod")
        .collect();
    assert_eq!(files, registered, "each probe is one file under src/probe/");
    for probe in PROBES {
        for route in probe.routes {
            assert!(
                spec["paths"][route]["post"].is_object(),
                "probe {}: no POST {route} in the agent's API",
                probe.name
            );
        }
        for source in probe.measured {
            assert!(
                plateau::evidence::measured::MEASURED.iter().any(|(_, s)| s == source),
                "probe {}: its results fill {source}, which evidence::measured does not",
                probe.name
            );
        }
    }
}
