//! The shape of the source, as the README's Architecture section draws
//! it, checked on the files themselves: modules import only from their
//! own layer or those below it, one file of the UDP channel touches
//! sockets, clocks and threads, no file of the client imports itself in a
//! circle, no file or function grows past what a reader can hold, and a
//! module file meant only to declare its files (src/share/mod.rs) holds
//! no code.

use std::fs;
use std::path::{Path, PathBuf};

/// The layers from the bottom: a module may import (`crate::...`) only
/// modules of its own layer or of the layers below it.
const LAYERS: &[&[&str]] = &[
    &[
        "protocol", "names", "timefmt", "digest", "proof", "sys", "stop", "addr",
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

/// The `use` statements of a file's code, each as one string without
/// `use `, its visibility and the closing `;` (a statement may span lines).
fn use_statements(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut open: Option<String> = None;
    for line in code.lines() {
        let t = line.trim();
        if t.starts_with("//") {
            continue;
        }
        let rest = match open.take() {
            Some(so_far) => so_far + " " + t,
            None => {
                let t = t
                    .strip_prefix("pub(crate) ")
                    .or_else(|| t.strip_prefix("pub(super) "))
                    .or_else(|| t.strip_prefix("pub "))
                    .unwrap_or(t);
                match t.strip_prefix("use ") {
                    Some(r) => r.to_string(),
                    None => continue,
                }
            }
        };
        match rest.find(';') {
            Some(i) => out.push(rest[..i].to_string()),
            None => open = Some(rest),
        }
    }
    out
}

/// The paths a use tree names: `a::{b, c::{d, e}}` is `a::b`, `a::c::d`,
/// `a::c::e`.
fn use_paths(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.len().saturating_sub(1)];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(use_paths)
        .map(|p| format!("{prefix}{p}"))
        .collect()
}

/// The file that holds module `dir` (a folder below src, empty for the
/// crate root).
fn module_file(dir: &Path) -> PathBuf {
    if dir == src() {
        src().join("lib.rs")
    } else if dir.join("mod.rs").is_file() {
        dir.join("mod.rs")
    } else {
        dir.with_extension("rs")
    }
}

/// The file a `use` path of `file` leads to: the deepest module file the
/// path names (`crate::server::ftp::Passive` is src/server/ftp.rs,
/// `super::Shared` from src/server/session.rs is src/server/mod.rs).
fn target_of(file: &Path, path: &str) -> Option<PathBuf> {
    let mut words = path.split("::").peekable();
    let own_dir = children_of(file);
    let mut dir = match *words.peek()? {
        "crate" => src(),
        "self" => own_dir,
        "super" => {
            let mut d = own_dir;
            while words.peek() == Some(&"super") {
                words.next();
                d = d.parent()?.to_path_buf();
            }
            d
        }
        _ => return None,
    };
    if matches!(words.peek(), Some(&"crate") | Some(&"self")) {
        words.next();
    }
    for word in words {
        let as_file = dir.join(format!("{word}.rs"));
        let as_dir = dir.join(word);
        if as_file.is_file() || as_dir.join("mod.rs").is_file() {
            dir = as_dir;
        } else {
            break;
        }
    }
    Some(module_file(&dir))
}

/// Which files each file of src/ imports, by its `use crate::` and
/// `use super::` lines. Left out: the file itself, and what a module
/// takes from the modules below it.
fn import_graph() -> Vec<(PathBuf, Vec<PathBuf>)> {
    rust_files(&src())
        .into_iter()
        .map(|file| {
            let text = fs::read_to_string(&file).unwrap();
            let mut to: Vec<PathBuf> = use_statements(code_of(&text))
                .iter()
                .flat_map(|u| use_paths(u))
                .filter_map(|p| target_of(&file, &p))
                .filter(|t| *t != file && !owns(&file, t))
                .collect();
            to.sort();
            to.dedup();
            (file, to)
        })
        .collect()
}

/// The folder that holds a module's children: its own for mod.rs and
/// lib.rs, `x/` beside `x.rs` for any other file.
fn children_of(file: &Path) -> PathBuf {
    if file
        .file_name()
        .is_some_and(|n| n == "mod.rs" || n == "lib.rs")
    {
        file.parent().unwrap().to_path_buf()
    } else {
        file.with_extension("")
    }
}

/// True when `other` is one of the modules below `file`'s module: a
/// parent owns and re-exports its children, which may use what it holds.
fn owns(file: &Path, other: &Path) -> bool {
    other.starts_with(children_of(file))
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let graph = import_graph();
    let index = |p: &Path| graph.iter().position(|(f, _)| f == p);
    let rel = |p: &Path| p.strip_prefix(src()).unwrap().display().to_string();
    // Depth-first search; a back edge closes a circle.
    let mut state = vec![0u8; graph.len()];
    let mut circles = Vec::new();
    fn visit(
        at: usize,
        graph: &[(PathBuf, Vec<PathBuf>)],
        index: &dyn Fn(&Path) -> Option<usize>,
        state: &mut [u8],
        trail: &mut Vec<usize>,
        circles: &mut Vec<Vec<usize>>,
    ) {
        state[at] = 1;
        trail.push(at);
        for to in &graph[at].1 {
            let Some(j) = index(to) else { continue };
            match state[j] {
                0 => visit(j, graph, index, state, trail, circles),
                1 => {
                    let from = trail.iter().position(|&k| k == j).unwrap();
                    circles.push(trail[from..].to_vec());
                }
                _ => {}
            }
        }
        trail.pop();
        state[at] = 2;
    }
    for i in 0..graph.len() {
        if state[i] == 0 {
            visit(i, &graph, &index, &mut state, &mut Vec::new(), &mut circles);
        }
    }
    let shown: Vec<String> = circles
        .iter()
        .map(|c| {
            let mut names: Vec<String> = c.iter().map(|&k| rel(&graph[k].0)).collect();
            names.push(names[0].clone());
            names.join(" -> ")
        })
        .collect();
    assert!(
        shown.is_empty(),
        "files that import each other in a circle:\n{}",
        shown.join("\n")
    );
}

/// The dialect front ends of the server, each as the files it is made
/// of: none imports a file of another (each new door is a file of its
/// own over the session core, not an edit of the others).
const FRONT_ENDS: &[(&str, &[&str])] = &[
    ("native", &["server/native.rs"]),
    (
        "FTP",
        &[
            "server/ftp.rs",
            "server/ftp_data.rs",
            "server/ftp_list.rs",
            "server/ftp_state.rs",
            "server/ftp_upload.rs",
        ],
    ),
    ("stdio", &["server/stdio.rs"]),
    (
        "HTTP",
        &[
            "server/http.rs",
            "server/http_auth.rs",
            "server/http_exchange.rs",
            "server/http_file.rs",
            "server/http_folder.rs",
            "server/http_form.rs",
            "server/http_json.rs",
            "server/http_nonce.rs",
            "server/http_page.rs",
            "server/http_parse.rs",
            "server/http_response.rs",
            "server/http_rows.rs",
            "server/http_upload.rs",
        ],
    ),
];

#[test]
fn no_dialect_front_end_imports_another() {
    let front_end_of = |p: &Path| {
        let rel = p.strip_prefix(src()).unwrap().display().to_string();
        FRONT_ENDS
            .iter()
            .find(|(_, files)| files.contains(&rel.as_str()))
            .map(|(name, _)| *name)
    };
    let mut wrong = Vec::new();
    for (file, to) in import_graph() {
        let core = file == src().join(SESSION_CORE);
        let Some(own) = front_end_of(&file).or(core.then_some("the session core")) else {
            continue;
        };
        for t in &to {
            if let Some(other) = front_end_of(t).filter(|o| *o != own) {
                wrong.push(format!(
                    "{} ({own}) imports {} ({other})",
                    file.display(),
                    t.display()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "front ends importing another (or the core importing one):\n{}",
        wrong.join("\n")
    );
}

/// The session core, under every dialect front end.
const SESSION_CORE: &str = "server/core.rs";

/// What a front end keeps between its requests (FTP's current folder,
/// REST offset and passive listener): private to its file as well.
const FRONT_STATES: &[(&str, &str)] = &[("server/ftp_state.rs", "FtpState")];

/// The fields of the structs in `file` (all of them, or only `only`)
/// that other files can reach.
fn open_fields(file: &str, only: Option<&str>) -> Vec<String> {
    let text = fs::read_to_string(src().join(file)).unwrap();
    let mut open = Vec::new();
    let mut in_struct = None;
    for line in code_of(&text).lines() {
        let t = line.trim_start();
        if line.starts_with("pub(super) struct ")
            || line.starts_with("pub struct ")
            || line.starts_with("struct ")
        {
            let named = only.is_none_or(|name| {
                t.split_whitespace()
                    .nth(if t.starts_with("struct ") { 1 } else { 2 })
                    .is_some_and(|w| w.split(['<', '{']).next() == Some(name))
            });
            in_struct = (t.ends_with('{') && named).then(|| t.to_string());
        } else if line == "}" {
            in_struct = None;
        } else if let Some(s) = &in_struct {
            if t.starts_with("pub") {
                open.push(format!("{file}: {s} {t}"));
            }
        }
    }
    open
}

#[test]
fn the_session_core_keeps_its_state_private() {
    let mut open = open_fields(SESSION_CORE, None);
    for (file, name) in FRONT_STATES {
        open.extend(open_fields(file, Some(name)));
    }
    // Nor does the core hand out its fields by `&mut`.
    let text = fs::read_to_string(src().join(SESSION_CORE)).unwrap();
    for line in code_of(&text).lines() {
        let t = line.trim_start();
        let gives_mut = t
            .split_once("->")
            .is_some_and(|(_, ret)| ret.contains('&') && ret.contains("mut "));
        if t.starts_with("pub") && t.contains(" fn ") && gives_mut {
            open.push(format!("{SESSION_CORE}: {t}"));
        }
    }
    assert!(
        open.is_empty(),
        "state that front ends reach directly (offer methods):\n{}",
        open.join("\n")
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

/// Module files that only say what their folder holds: docs, `mod`
/// declarations and re-exports (`pub use`). The code lives in the files
/// they declare, each with one responsibility.
const DECLARATIONS_ONLY: &[&str] = &["share/mod.rs"];

/// The lines of `text` that are neither docs, comments, attributes, `mod`
/// declarations nor `use` statements (a statement may span lines).
fn code_beyond_declarations(text: &str) -> Vec<String> {
    let mut beyond = Vec::new();
    let mut in_use = false;
    for line in text.lines() {
        let t = line.trim();
        if in_use {
            in_use = !t.ends_with(';');
            continue;
        }
        if t.is_empty() || t.starts_with("//") || t.starts_with("#[") {
            continue;
        }
        let t = ["pub(crate) ", "pub(super) ", "pub "]
            .iter()
            .find_map(|v| t.strip_prefix(v))
            .unwrap_or(t);
        if t.starts_with("use ") {
            in_use = !t.ends_with(';');
        } else if !(t.starts_with("mod ") && t.ends_with(';')) {
            beyond.push(line.to_string());
        }
    }
    beyond
}

#[test]
fn module_files_that_only_declare_hold_no_code() {
    assert_eq!(
        code_beyond_declarations("//! Docs.\n\nmod a;\npub use a::{\n    B,\n    C,\n};\n"),
        Vec::<String>::new()
    );
    assert_eq!(
        code_beyond_declarations("mod a;\nfn f() {}\nmod tests {\n}\n"),
        ["fn f() {}", "mod tests {", "}"]
    );
    let mut wrong = Vec::new();
    for rel in DECLARATIONS_ONLY {
        let text = fs::read_to_string(src().join(rel)).unwrap();
        for line in code_beyond_declarations(&text) {
            wrong.push(format!("src/{rel}: {line}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "code in a file meant for docs, declarations and re-exports only:\n{}",
        wrong.join("\n")
    );
}
