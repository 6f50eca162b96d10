//! Someone taking the code over reads it top-down: the server and the workers call the
//! actions, the actions call the gate, the gate calls the store, Slack, AWS and the router,
//! and those call only what sits below them. This test reads every source file and fails
//! on any `crate::…` path (in `use` or inline) that points at a module above its own.

use std::collections::BTreeMap;
use std::path::Path;

/// Every top-level module of `src/` and its layer: a module may use its own layer and the
/// ones below, never one above.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundations",
        &["clock", "duration", "memory", "telemetry", "web"],
    ),
    ("configuration", &["config"]),
    ("store", &["store"]),
    ("metrics", &["metrics"]),
    ("peers", &["router", "aws", "slack", "notify"]),
    ("scenarios", &["scenarios"]),
    ("app", &["app"]),
    ("gate", &["gate"]),
    (
        "actions",
        &[
            "actions",
            "alarms",
            "console",
            "timeline",
            "report",
            "retention",
            "evidence",
            "audit",
            "iam",
        ],
    ),
    (
        "server and workers",
        &[
            "server",
            "workers",
            "startup",
            "sandbox",
            "healthcheck",
            "cli",
            "lib",
            "main",
        ],
    ),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// The top-level module a file under `src/` belongs to.
fn module_of(path: &Path, src: &Path) -> String {
    let rel = path.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_string()
}

/// The modules a file names as `crate::<module>`, outside comments.
fn uses(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push(name);
            }
            rest = after;
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_a_module_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 50,
        "found the sources ({} files)",
        files.len()
    );
    let mut unknown = Vec::new();
    let mut upward: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(file, &src);
        let Some(own) = layer_of(&module) else {
            unknown.push(module);
            continue;
        };
        let text = std::fs::read_to_string(file).expect("readable");
        for used in uses(&text) {
            let Some(theirs) = layer_of(&used) else {
                unknown.push(used);
                continue;
            };
            if theirs > own {
                upward
                    .entry(format!(
                        "{} ({}) uses crate::{used} ({})",
                        file.strip_prefix(&src).unwrap().display(),
                        LAYERS[own].0,
                        LAYERS[theirs].0
                    ))
                    .or_default();
            }
        }
    }
    unknown.sort();
    unknown.dedup();
    assert!(
        unknown.is_empty(),
        "modules missing from the layer table: {unknown:?}"
    );
    let upward: Vec<&String> = upward.keys().collect();
    assert!(
        upward.is_empty(),
        "{} imports point up a layer:\n{}",
        upward.len(),
        upward
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_layer_check_sees_an_upward_import() {
    // The check itself can fail: a gate file naming the actions is caught.
    let found = uses("use crate::actions::execute; // crate::workers in a comment");
    assert_eq!(found, vec!["actions".to_string()]);
    assert!(layer_of("actions") > layer_of("gate"));
}
