//! The shape of the source, as the README's Architecture section draws
//! it, checked on the files themselves: modules import only from their
//! own layer or those below it, one file of the UDP channel touches
//! sockets, clocks and threads, no file of the client imports itself in a
//! circle, and no file or function grows past what a reader can hold.

use std::fs;
use std::path::{Path, PathBuf};

/// The layers from the bottom: a module may import (`crate::...`) only
/// modules of its own layer or of the layers below it.
const LAYERS: &[&[&str]] = &[
    &[
        "protocol", "names", "timefmt", "digest", "sys", "stop", "addr",
    ],
    &["share", "transfer", "history"],
    &["server", "client", "peer"],
    &["cli"],
];

/// Imports that the layering allows but the design still rules out.
const FORBIDDEN: &[(&str, &str)] = &[
    // Data channels read files through `transfer::Source`.
    ("transfer", "share"),
    // Roles take their settings as values: they never see the command line.
    ("server", "cli"),
    ("client", "cli"),
    ("peer", "cli"),
];

const MAX_FILE_CODE_LINES: usize = 600;
const MAX_FN_LINES: usize = 80;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file below `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The top module a file belongs to: `src/share/scan.rs` is `share`,
/// `src/protocol.rs` is `protocol`.
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The file's text before its unit tests (`#[cfg(test)]` at the start of
/// a line begins them).
fn code_of(text: &str) -> &str {
    match text.find("\n#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// The top modules a file imports: `crate::share::...` in `use` lines and
/// in paths anywhere in its code.
fn imports_of(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
        // `use crate::{a, b::c}` names several at once.
        if let Some(group) = line.strip_prefix("use crate::{") {
            for part in group.split([',', '}']) {
                let name = part.trim().split("::").next().unwrap_or("").trim();
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    out.push(name.to_string());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn modules_import_only_their_own_layer_or_those_below() {
    let mut wrong = Vec::new();
    for file in rust_files(&src()) {
        let module = module_of(&file);
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            wrong.push(format!(
                "{}: module '{module}' has no layer",
                file.display()
            ));
            continue;
        };
        let text = fs::read_to_string(&file).unwrap();
        for import in imports_of(code_of(&text)) {
            if import == module {
                continue;
            }
            match layer_of(&import) {
                None => wrong.push(format!("{}: imports unknown '{import}'", file.display())),
                Some(l) if l > own => wrong.push(format!(
                    "{}: '{module}' (layer {own}) imports '{import}' (layer {l})",
                    file.display()
                )),
                Some(_) if FORBIDDEN.contains(&(module.as_str(), import.as_str())) => {
                    wrong.push(format!("{}: '{module}' imports '{import}'", file.display()))
                }
                Some(_) => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn one_file_of_the_udp_channel_touches_sockets_clocks_and_threads() {
    let dir = src().join("transfer/udp");
    let io = [
        "UdpSocket",
        "Instant::now()",
        "send_to",
        "recv_from",
        "thread::",
    ];
    let touching: Vec<String> = rust_files(&dir)
        .into_iter()
        .filter(|f| {
            let text = fs::read_to_string(f).unwrap();
            let code = code_of(&text);
            io.iter().any(|w| code.contains(w))
        })
        .map(|f| f.strip_prefix(&dir).unwrap().display().to_string())
        .collect();
    assert_eq!(
        touching,
        ["channel.rs"],
        "files under src/transfer/udp/ doing I/O"
    );
}

/// Lines of code: neither blank nor only a comment.
fn code_lines(code: &str) -> usize {
    code.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .count()
}

#[test]
fn no_file_holds_more_than_600_lines_of_code() {
    let big: Vec<String> = rust_files(&src())
        .into_iter()
        .filter_map(|f| {
            let text = fs::read_to_string(&f).unwrap();
            let n = code_lines(code_of(&text));
            (n > MAX_FILE_CODE_LINES).then(|| format!("{}: {n} lines of code", f.display()))
        })
        .collect();
    assert!(
        big.is_empty(),
        "files over {MAX_FILE_CODE_LINES}:\n{}",
        big.join("\n")
    );
}

#[test]
fn no_function_runs_past_80_lines() {
    let mut long = Vec::new();
    for f in rust_files(&src()) {
        let text = fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = code_of(&text).lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let indent = &line[..line.len() - t.len()];
            let is_fn = [
                "fn ",
                "pub fn ",
                "pub(crate) fn ",
                "pub(super) fn ",
                "const fn ",
            ]
            .iter()
            .any(|p| t.starts_with(p));
            if !is_fn || t.ends_with(';') {
                continue;
            }
            let close = format!("{indent}}}");
            if let Some(len) = lines[i + 1..].iter().position(|l| *l == close) {
                if len + 2 > MAX_FN_LINES {
                    long.push(format!(
                        "{}:{}: {} lines: {}",
                        f.display(),
                        i + 1,
                        len + 2,
                        t
                    ));
                }
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// A file of src/client/ by its module path below `client`: `fetch`,
/// `sync/exec`; the folder's own `mod.rs` is `mod`, `sync/mod.rs` is
/// `sync`.
fn client_node(file: &Path) -> String {
    let rel = file.strip_prefix(src().join("client")).unwrap();
    let name = rel.with_extension("").to_string_lossy().into_owned();
    match name.strip_suffix("/mod") {
        Some(dir) => dir.to_string(),
        None => name,
    }
}

/// The node a path names, from the module `base` (a node, "" for the
/// client itself): its first segment when that is a file of its own
/// (then its second, for a folder's file), else `base`'s own file.
fn client_target(nodes: &[String], base: &str, path: &str) -> String {
    let mut at = base.to_string();
    for seg in path.split("::").take(2) {
        let seg: String = seg
            .trim()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let next = if at.is_empty() {
            seg
        } else {
            format!("{at}/{seg}")
        };
        if !nodes.contains(&next) {
            break;
        }
        at = next;
    }
    if at.is_empty() {
        "mod".into()
    } else {
        at
    }
}

/// The files of src/client/ that `code` (of the file `node`) imports:
/// every `super::`, `self::` and `crate::client::` path in its code, each
/// name of a `{...}` group apart.
fn client_imports(nodes: &[String], node: &str, is_mod: bool, code: &str) -> Vec<String> {
    let own = if node == "mod" { "" } else { node };
    let parent = match own.rsplit_once('/') {
        Some((p, _)) => p,
        None => "",
    };
    // `super::` is the parent's module for a file and a folder's
    // `mod.rs` alike; `self::` is the folder's own module in a `mod.rs`.
    let sup = parent;
    let this = if is_mod { own } else { parent };
    let mut out = Vec::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        for (prefix, base) in [("crate::client::", ""), ("super::", sup), ("self::", this)] {
            let mut rest = line;
            while let Some(i) = rest.find(prefix) {
                let before = rest[..i].chars().last();
                rest = &rest[i + prefix.len()..];
                if prefix != "crate::client::"
                    && before.is_some_and(|c| c == ':' || c.is_alphanumeric())
                {
                    continue;
                }
                let base = if prefix == "self::" && !is_mod {
                    own
                } else {
                    base
                };
                let path: String = rest
                    .chars()
                    .take_while(|c| {
                        !matches!(c, ';' | ' ' | '(' | ')' | '!' | '<' | '>' | '&' | '.')
                    })
                    .collect();
                let (head, group) = match path.split_once('{') {
                    Some((h, g)) => (h.trim_end_matches("::"), Some(g)),
                    None => (path.as_str(), None),
                };
                let head_node = client_target(nodes, base, head);
                match group {
                    // `use super::{a, b::c}`: each name apart.
                    Some(g) if head.is_empty() || head_node == base || head_node == "mod" => {
                        let in_rest = rest.split_once('}').map_or(rest, |(g, _)| g);
                        let g = in_rest.split_once('{').map_or(g, |(_, g)| g);
                        for part in g.split(',') {
                            let full = if head.is_empty() {
                                part.to_string()
                            } else {
                                format!("{head}::{part}")
                            };
                            out.push(client_target(nodes, base, &full));
                        }
                    }
                    _ => out.push(head_node),
                }
            }
        }
    }
    out.retain(|t| t != node);
    out.sort();
    out.dedup();
    out
}

/// A circle in `edges` (node → the nodes it imports), if there is one.
fn find_circle(edges: &[(String, Vec<String>)]) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &[(String, Vec<String>)],
        path: &mut Vec<String>,
        done: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.iter().any(|d| d == n) {
            return None;
        }
        path.push(n.to_string());
        let next = edges.iter().find(|(f, _)| f == n).map(|(_, t)| t.clone());
        for t in next.unwrap_or_default() {
            if let Some(c) = visit(&t, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.push(n.to_string());
        None
    }
    let mut done = Vec::new();
    for (n, _) in edges {
        if let Some(c) = visit(n, edges, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_file_of_the_client_imports_itself_in_a_circle() {
    let dir = src().join("client");
    let files = rust_files(&dir);
    let nodes: Vec<String> = files.iter().map(|f| client_node(f)).collect();
    let edges: Vec<(String, Vec<String>)> = files
        .iter()
        .zip(&nodes)
        .map(|(f, n)| {
            let text = fs::read_to_string(f).unwrap();
            let is_mod = f.file_name().is_some_and(|x| x == "mod.rs");
            (n.clone(), client_imports(&nodes, n, is_mod, code_of(&text)))
        })
        .collect();
    // The check sees what it should: fetch imports download.
    let of = |n: &str| &edges.iter().find(|(f, _)| f == n).unwrap().1;
    assert!(
        of("fetch").contains(&"download".to_string()),
        "{:?}",
        of("fetch")
    );
    assert!(
        of("sync/exec").contains(&"fetch".to_string()),
        "{:?}",
        of("sync/exec")
    );
    if let Some(c) = find_circle(&edges) {
        panic!("src/client/ files import each other: {}", c.join(" -> "));
    }
}
