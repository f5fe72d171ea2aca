//! README.md keeps its promises: it stays short, and every option it
//! names is one the binary has.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The longest README.md may grow.
const MAX_README_LINES: usize = 500;

/// Words README.md writes with `--` that are not options of `serve`,
/// `client` or `peer`, each with whose they are.
const NOT_P2PSHARE_OPTIONS: &[(&str, &str)] = &[
    ("--release", "cargo run --release, cargo build --release"),
    ("--path", "cargo install --path ."),
    ("--no-deps", "cargo doc --no-deps"),
    ("--open", "cargo doc --open"),
    ("--quick", "scripts/bench.sh --quick"),
    ("--only", "scripts/bench.sh --only million"),
    ("--digest", "curl --digest, with a secret"),
    ("--list-only", "rsync --list-only in the benchmark table"),
    ("--dry-run", "an argument of the console command Sync"),
    ("--restore", "an argument of the console command Sync"),
];

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `--word` options in `text`: `--` at the start of a word (not
/// inside one, as in `-rw-r--r--`), then a letter, then letters, digits
/// and dashes.
fn options_in(text: &str) -> BTreeSet<String> {
    let b = text.as_bytes();
    let mut found = BTreeSet::new();
    let mut i = 0;
    while i + 2 < b.len() {
        let starts_word = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'-');
        if starts_word && b[i] == b'-' && b[i + 1] == b'-' && b[i + 2].is_ascii_lowercase() {
            let mut end = i + 2;
            while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'-') {
                end += 1;
            }
            found.insert(text[i..end].trim_end_matches('-').to_string());
            i = end;
        } else {
            i += 1;
        }
    }
    found
}

/// What `p2pshare <sub> --help` prints, for serve, client and peer.
fn help_texts() -> String {
    let mut all = String::new();
    for sub in ["serve", "client", "peer"] {
        let out = Command::new(env!("CARGO_BIN_EXE_p2pshare"))
            .args([sub, "--help"])
            .output()
            .unwrap_or_else(|e| panic!("p2pshare {sub} --help: {e}"));
        assert!(
            out.status.success(),
            "p2pshare {sub} --help: {}",
            out.status
        );
        let text = String::from_utf8(out.stdout).expect("the help is UTF-8");
        assert!(
            text.contains("usage: p2pshare"),
            "p2pshare {sub} --help printed {text:?}"
        );
        all.push_str(&text);
    }
    all
}

#[test]
fn readme_has_at_most_500_lines() {
    let lines = readme().lines().count();
    assert!(
        lines <= MAX_README_LINES,
        "README.md has {lines} lines; at most {MAX_README_LINES}: move detail into PROTOCOL.md or the crate docs"
    );
}

#[test]
fn every_option_the_readme_names_is_in_the_help() {
    let in_help = options_in(&help_texts());
    let missing: Vec<String> = options_in(&readme())
        .into_iter()
        .filter(|o| !NOT_P2PSHARE_OPTIONS.iter().any(|(w, _)| w == o))
        .filter(|o| !in_help.contains(o))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md names options that no --help of serve, client or peer has: {missing:?}"
    );
}

#[test]
fn options_are_found_as_words_only() {
    let found = options_in("`--share DIR`, -rw-r--r-- (--prefix-v4 24) --x --9 a--b --bind=ADDR");
    let found: Vec<&str> = found.iter().map(String::as_str).collect();
    assert_eq!(found, ["--bind", "--prefix-v4", "--share", "--x"]);
}
