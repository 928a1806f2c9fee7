//! The shape of the library, checked from its source: which module imports which (a `use` of
//! `crate::...` or `super::...`, or a path written inline), resolved to the module that defines
//! the name, through re-exports. It fails on an import cycle, on a domain that reaches for
//! anything outside itself, on ports that reach past the domain, and on a deployment kernel that
//! names a resource use case. Test code is left out: it may import anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module, as its path below the crate root (`app::deploy::steps`).
type Module = String;

struct Source {
    module: Module,
    /// The module `super::` names.
    parent: Module,
    text: String,
}

fn library() -> PathBuf {
    // The library crate of this workspace: `shared/src` next to this crate's folder.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .join("shared")
        .join("src")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_test_file(relative: &Path) -> bool {
    let name = relative.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    name == "tests" || name == "testing" || name.ends_with("_tests")
}

/// The source without its `#[cfg(test)]` items (inline test modules, test-only imports).
fn without_tests(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            // Skip the item that follows: one line, or a block to its closing brace.
            let mut depth = 0i32;
            for item in lines.by_ref() {
                depth += item.matches('{').count() as i32 - item.matches('}').count() as i32;
                if depth <= 0 && (item.trim_end().ends_with(';') || item.trim_end().ends_with('}'))
                {
                    break;
                }
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn sources() -> Vec<Source> {
    let root = library();
    let mut paths = Vec::new();
    files(&root, &mut paths);
    let mut sources = Vec::new();
    for path in paths {
        let relative = path.strip_prefix(&root).unwrap().to_path_buf();
        if is_test_file(&relative) {
            continue;
        }
        let mut parts: Vec<String> = relative
            .with_extension("")
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let is_mod = parts.last().is_some_and(|p| p == "mod" || p == "lib");
        if is_mod {
            parts.pop();
        }
        let module = parts.join("::");
        let parent = if is_mod {
            parts[..parts.len().saturating_sub(1)].join("::")
        } else {
            parts[..parts.len() - 1].join("::")
        };
        let text = without_tests(&std::fs::read_to_string(&path).unwrap());
        sources.push(Source {
            module,
            parent,
            text,
        });
    }
    sources
}

/// The paths a source names: `crate::a::b::c` and `super::x::y`, with `use` groups expanded.
fn named_paths(source: &Source) -> Vec<String> {
    let mut paths = Vec::new();
    let text = &source.text;
    for (prefix, base) in [
        ("crate::", String::new()),
        ("super::", source.parent.clone()),
    ] {
        let mut rest = text.as_str();
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().last();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let path = path.trim_end_matches(':');
            let join = |tail: &str| {
                [base.as_str(), tail]
                    .iter()
                    .filter(|p| !p.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("::")
            };
            let after = &rest[path.len()..];
            if let Some(group) = after
                .strip_prefix("::{")
                .or_else(|| after.strip_prefix('{'))
            {
                let inner: String = group.chars().take_while(|c| *c != '}').collect();
                for item in inner.split(',') {
                    let item = item.split_whitespace().next().unwrap_or("");
                    if item.is_empty() {
                        continue;
                    }
                    if path.is_empty() {
                        paths.push(join(item));
                    } else {
                        paths.push(join(&format!("{path}::{item}")));
                    }
                }
            } else {
                paths.push(join(path));
            }
        }
    }
    paths
}

/// The public items a source defines.
fn defined_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        for kind in [
            "pub struct ",
            "pub enum ",
            "pub trait ",
            "pub fn ",
            "pub type ",
            "pub const ",
            "pub async fn ",
        ] {
            if let Some(rest) = line.strip_prefix(kind) {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                names.push(name);
            }
        }
    }
    names
}

/// `pub use child::{A, B}` in a module: the names it re-exports and where they come from.
fn reexports(sources: &[Source]) -> BTreeMap<String, Module> {
    let mut map = BTreeMap::new();
    for source in sources {
        for line in source.text.lines() {
            let Some(rest) = line.trim().strip_prefix("pub use ") else {
                continue;
            };
            let rest = rest.trim_end_matches(';');
            let (from, names) = match rest.split_once("::{") {
                Some((from, names)) => (from, names.trim_end_matches('}').to_string()),
                None => match rest.rsplit_once("::") {
                    Some((from, name)) => (from, name.to_string()),
                    None => continue,
                },
            };
            if from.starts_with("crate") || from.starts_with("super") {
                continue;
            }
            let child = [source.module.as_str(), from]
                .iter()
                .filter(|p| !p.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join("::");
            let names: Vec<String> = if names == "*" {
                // A glob: every public item the child defines.
                sources
                    .iter()
                    .filter(|s| s.module == child)
                    .flat_map(|s| defined_names(&s.text))
                    .collect()
            } else {
                names
                    .split(',')
                    .filter_map(|n| n.split_whitespace().next())
                    .map(str::to_string)
                    .collect()
            };
            for name in names {
                map.insert(format!("{}::{name}", source.module), child.clone());
            }
        }
    }
    map
}

/// The module a path lands in: its longest prefix that is a module, through re-exports.
fn resolve(
    path: &str,
    modules: &BTreeSet<Module>,
    reexports: &BTreeMap<String, Module>,
) -> Option<Module> {
    let parts: Vec<&str> = path.split("::").collect();
    for len in (1..=parts.len()).rev() {
        let prefix = parts[..len].join("::");
        if modules.contains(&prefix) {
            if len < parts.len() {
                let name = format!("{prefix}::{}", parts[len]);
                if let Some(child) = reexports.get(&name) {
                    return Some(child.clone());
                }
            }
            return Some(prefix);
        }
    }
    None
}

fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let sources = sources();
    let modules: BTreeSet<Module> = sources.iter().map(|s| s.module.clone()).collect();
    let reexports = reexports(&sources);
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for source in &sources {
        let entry = edges.entry(source.module.clone()).or_default();
        for path in named_paths(source) {
            if let Some(target) = resolve(&path, &modules, &reexports)
                && target != source.module
                && !target.is_empty()
            {
                entry.insert(target);
            }
        }
    }
    edges
}

/// A cycle in the graph, if there is one, as the modules it runs through.
fn find_cycle(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    fn visit(
        node: &Module,
        edges: &BTreeMap<Module, BTreeSet<Module>>,
        state: &mut BTreeMap<Module, u8>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        state.insert(node.clone(), 1);
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|m| m == next).unwrap();
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(cycle) = visit(next, edges, state, stack) {
                        return Some(cycle);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if state.get(node).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(cycle) = visit(node, edges, &mut state, &mut stack) {
                return Some(cycle);
            }
        }
    }
    None
}

fn imports_of<'a>(
    edges: &'a BTreeMap<Module, BTreeSet<Module>>,
    layer: &str,
) -> Vec<(&'a Module, &'a Module)> {
    edges
        .iter()
        .filter(|(from, _)| *from == layer || from.starts_with(&format!("{layer}::")))
        .flat_map(|(from, to)| to.iter().map(move |to| (from, to)))
        .collect()
}

fn in_layer(module: &str, layer: &str) -> bool {
    module == layer || module.starts_with(&format!("{layer}::"))
}

#[test]
fn the_library_has_no_import_cycle() {
    let edges = graph();
    assert!(
        edges.len() > 40,
        "the library's modules were not found: {edges:?}"
    );
    assert!(
        edges["app::deploy::steps"].contains("app::deploy::target"),
        "imports were not read: {:?}",
        edges["app::deploy::steps"]
    );
    if let Some(cycle) = find_cycle(&edges) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_domain_imports_nothing_outside_itself() {
    let edges = graph();
    let outside: Vec<_> = imports_of(&edges, "domain")
        .into_iter()
        .filter(|(_, to)| !in_layer(to, "domain"))
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
}

#[test]
fn the_ports_import_only_the_domain() {
    let edges = graph();
    let outside: Vec<_> = imports_of(&edges, "ports")
        .into_iter()
        .filter(|(_, to)| !in_layer(to, "ports") && !in_layer(to, "domain"))
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
}

#[test]
fn the_deployment_kernel_names_no_resource_use_case() {
    let edges = graph();
    let outside: Vec<_> = imports_of(&edges, "app::deploy")
        .into_iter()
        .filter(|(_, to)| {
            !(in_layer(to, "app::deploy")
                || in_layer(to, "domain")
                || in_layer(to, "ports")
                || *to == "app::error"
                || *to == "app")
        })
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
}

#[test]
fn the_adapters_do_not_reach_up_into_the_use_cases() {
    let edges = graph();
    let up: Vec<_> = imports_of(&edges, "adapters")
        .into_iter()
        .filter(|(_, to)| in_layer(to, "app") || in_layer(to, "api") || in_layer(to, "config"))
        .collect();
    assert!(up.is_empty(), "{up:?}");
}
