//! The crate's modules depend on each other one way only (ARCHITECTURE.md): every file under `src/` may
//! use its own top-level module and the modules of lower layers, never a module of its own layer or of a
//! higher one. On top of that, `config` uses no other module of the crate, and `recording` (the hot path)
//! uses `config` and `sync` only (`sync` is the atomics facade the model checker swaps).
//!
//! The check reads the source: every `crate::` path (in `use` lines and inline, `$crate::` in macros
//! included), and every `super::` path that climbs out of its top-level module, outside comments and
//! string literals. Paths through the crate root's re-exports (`crate::Monitor`) are refused too: a file
//! names the module it depends on.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, bottom first. Modules in one layer do not use each other.
const LAYERS: &[&[&str]] = &[
    // The configuration and two platform helpers: they use nothing of the crate.
    &["config", "sync", "os_thread"],
    // The hot path: shards, recorder, bucket layouts, totals.
    &["recording"],
    &["error"],
    // Windows, patterns, the hit rate, alerts, the view.
    &["analysis"],
    &["profiler"],
    // The read model and the wire format of state snapshots.
    &["state"],
    // Pure functions from a view to text.
    &["render"],
    // `Monitor`, tying the above together.
    &["monitor"],
    // The facades: the HTTP exporter, then what the library does before unloading, the C ABI, and the
    // Rust API for cache systems.
    &["exporter"],
    &["lifecycle"],
    &["ffi"],
    &["api"],
];

/// Modules held to a stricter rule than their layer: the only other modules of the crate they may use.
const ONLY: &[(&str, &[&str])] = &[("config", &[]), ("recording", &["config", "sync"])];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Why `user` (a top-level module) may not use `used`, if it may not.
fn refusal(user: &str, used: &str) -> Option<String> {
    if user == used {
        return None;
    }
    if let Some((_, allowed)) = ONLY.iter().find(|(module, _)| *module == user)
        && !allowed.contains(&used)
    {
        return Some(format!("`{user}` may use only {allowed:?} of the crate"));
    }
    match (layer_of(user), layer_of(used)) {
        (_, None) => Some(format!(
            "`{used}` is not a module of the crate (a crate-root re-export?): name the module"
        )),
        (None, _) => Some(format!("`{user}` has no layer in tests/layering.rs")),
        (Some(u), Some(d)) if d >= u => Some(format!("`{user}` may not use `{used}`, which is not below it")),
        _ => None,
    }
}

/// The module path of a file under `src/`: `src/a/b.rs` is `[a, b]`, `src/a/mod.rs` is `[a]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .skip(1) // "src"
        .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|last| last == "mod" || last == "lib") {
        parts.pop();
    }
    parts
}

/// The source without comments, string, byte-string and character literals (each replaced by a space),
/// so that only code remains.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if (c == 'r' || (c == 'b' && at(i + 1) == 'r')) && !at(i.wrapping_sub(1)).is_alphanumeric() && {
            let start = if c == 'b' { i + 2 } else { i + 1 };
            let mut j = start;
            while at(j) == '#' {
                j += 1;
            }
            at(j) == '"'
        } {
            // A raw string: r"...", r#"..."#, br"...".
            let mut j = if c == 'b' { i + 2 } else { i + 1 };
            let mut hashes = 0;
            while at(j) == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#') {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
            out.push(' ');
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(' ');
        } else if c == '\''
            && (at(i + 2) == '\'' || (at(i + 1) == '\\' && chars[i..].iter().skip(2).any(|&c| c == '\'')))
        {
            // A character literal ('x', '\n', '\u{..}'); a lifetime ('a) has no closing quote here.
            i += 1;
            if at(i) == '\\' {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
            } else {
                i += 1;
            }
            i += 1;
            out.push(' ');
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

#[derive(Debug, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Other,
}

fn tokens(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
            continue;
        }
        if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Other);
            continue;
        }
        tokens.push(match c {
            ':' if chars.get(i + 1) == Some(&':') => {
                i += 1;
                Token::PathSep
            }
            '{' => Token::Open,
            '}' => Token::Close,
            ',' => Token::Comma,
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            _ => Token::Other,
        });
        i += 1;
    }
    tokens
}

/// The first identifier of each item of the `{...}` group opening at `tokens[open]`.
fn group_heads(tokens: &[Token], open: usize) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expecting = true;
    for token in &tokens[open..] {
        match token {
            Token::Open => {
                depth += 1;
                if depth == 1 {
                    expecting = true;
                }
            }
            Token::Close => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Token::Comma if depth == 1 => expecting = true,
            Token::Ident(name) if depth == 1 && expecting => {
                heads.push(name.clone());
                expecting = false;
            }
            _ if depth == 1 => expecting = false,
            _ => {}
        }
    }
    heads
}

/// The top-level modules that `source`, the file at `relative` (`src/...`), uses through `crate::` paths
/// or through `super::` paths that leave its top-level module.
fn used_modules(relative: &Path, source: &str) -> BTreeSet<String> {
    let file_module = module_path(relative);
    let tokens = tokens(&code_only(source));
    let mut used = BTreeSet::new();
    // Inline modules (`mod tests { ... }`) as (name, brace depth inside them).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    let ident = |i: usize| match tokens.get(i) {
        Some(Token::Ident(name)) => Some(name.as_str()),
        _ => None,
    };
    while i < tokens.len() {
        match &tokens[i] {
            Token::Open => depth += 1,
            Token::Close => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth -= 1;
            }
            Token::Ident(word) if word == "mod" => {
                if let (Some(name), Some(Token::Open)) = (ident(i + 1), tokens.get(i + 2)) {
                    inline.push((name.to_owned(), depth + 1));
                }
            }
            Token::Ident(word)
                if (word == "crate" || word == "super") && tokens.get(i + 1) == Some(&Token::PathSep) =>
            {
                let previous_is_path = i > 0 && tokens[i - 1] == Token::PathSep;
                if previous_is_path {
                    i += 1;
                    continue;
                }
                // Where the path starts: the crate root, or the module `super::`s climb to.
                let mut at = i;
                let from_root = if word == "crate" {
                    at += 2;
                    true
                } else {
                    let mut path = file_module.clone();
                    path.extend(inline.iter().map(|(name, _)| name.clone()));
                    while ident(at) == Some("super") && tokens.get(at + 1) == Some(&Token::PathSep) {
                        path.pop();
                        at += 2;
                    }
                    path.is_empty()
                };
                if from_root {
                    match tokens.get(at) {
                        Some(Token::Ident(name)) => {
                            used.insert(name.clone());
                        }
                        Some(Token::Open) => used.extend(group_heads(&tokens, at)),
                        _ => {}
                    }
                }
                i = at;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    used.retain(|name| name != "self");
    used
}

/// Every violation in `source`, the file at `relative`.
fn violations(relative: &Path, source: &str) -> Vec<String> {
    let Some(user) = module_path(relative).first().cloned() else {
        return Vec::new(); // src/lib.rs: declarations and re-exports
    };
    used_modules(relative, source)
        .into_iter()
        .filter_map(|used| refusal(&user, &used).map(|why| format!("{}: uses `{used}`: {why}", relative.display())))
        .collect()
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn every_file_uses_only_lower_layers() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    assert!(files.len() > 50, "found only {} files under src/", files.len());
    let mut all = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&root).expect("under the crate");
        let source = std::fs::read_to_string(file).expect("source is UTF-8");
        all.extend(violations(relative, &source));
    }
    assert!(all.is_empty(), "layering violations:\n{}", all.join("\n"));
}

#[test]
fn every_top_level_module_has_a_layer() {
    let lib = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).expect("lib.rs");
    let code = code_only(&lib);
    let tokens = tokens(&code);
    let declared: Vec<&str> = tokens
        .windows(3)
        .filter_map(|w| match w {
            [Token::Ident(m), Token::Ident(name), Token::Other] if m == "mod" => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        declared.contains(&"config") && declared.contains(&"api"),
        "{declared:?}"
    );
    for module in &declared {
        assert!(
            layer_of(module).is_some(),
            "src/lib.rs declares `{module}`, which has no layer here"
        );
    }
    for module in LAYERS.iter().flat_map(|layer| layer.iter()) {
        assert!(
            declared.contains(module),
            "`{module}` has a layer but src/lib.rs does not declare it"
        );
    }
}

/// The checker itself: it must find what it is there to find, and nothing else.
#[test]
fn the_checker_catches_made_up_violations() {
    let check = |file: &str, source: &str| violations(Path::new(file), source);
    // Upward uses, in every form a path can take.
    assert_eq!(
        check("src/recording/shard.rs", "use crate::analysis::patterns::X;").len(),
        1
    );
    assert_eq!(
        check("src/recording/shard.rs", "use crate::error::Error;").len(),
        1,
        "only config"
    );
    assert_eq!(
        check("src/config/http.rs", "use crate::sync::Mutex;").len(),
        1,
        "nothing at all"
    );
    assert_eq!(
        check("src/config/mod.rs", "fn f() { crate::monitor::Monitor::global(); }").len(),
        1
    );
    assert_eq!(
        check(
            "src/recording/totals.rs",
            "use crate::{config::X, monitor::Y, render::{a, b}};"
        )
        .len(),
        2
    );
    assert_eq!(
        check("src/config/alerts.rs", "use super::super::monitor::Monitor;").len(),
        1
    );
    assert_eq!(check("src/lifecycle.rs", "use super::ffi::status;").len(), 1);
    assert_eq!(
        check(
            "src/analysis/view.rs",
            "macro_rules! m { () => { $crate::render::text::render() } }"
        )
        .len(),
        1
    );
    assert_eq!(
        check("src/render/text.rs", "use crate::Monitor;").len(),
        1,
        "a crate-root re-export"
    );
    assert_eq!(
        check("src/exporter/mod.rs", "use crate::api::monitored::MonitoredCache;").len(),
        1,
        "same layer or above"
    );
    let inline_test = "mod tests { use super::*; use crate::monitor::Monitor; }";
    assert_eq!(
        check("src/profiler/mod.rs", inline_test).len(),
        1,
        "test modules are held to the rule too"
    );
    // Allowed: downward, within the module, relative paths that stay inside it.
    assert!(check("src/recording/shard.rs", "use crate::config::patterns::MAX_PATTERNS;").is_empty());
    assert!(check("src/recording/shard.rs", "use crate::recording::backing::Zeroable;").is_empty());
    assert!(check("src/monitor/mod.rs", "use crate::{analysis::x, state::y, render::z};").is_empty());
    assert!(check("src/config/profiler.rs", "use super::{ConfigError, Section};").is_empty());
    assert!(
        check(
            "src/config/mod.rs",
            "mod tests { use super::*; fn f() { super::super::config::X; } }"
        )
        .is_empty()
    );
    assert!(check("src/api/module.rs", "use crate::ffi::{self, boundary::guard};").is_empty());
    // Not code: comments, doc comments, strings and characters.
    let prose = r####"
        // crate::monitor::Monitor
        /// [`Monitor`](crate::monitor::Monitor)
        /* crate::api::x /* nested crate::ffi */ */
        const A: &str = "crate::monitor::Monitor";
        const B: &str = r#"crate::"api"::x"#;
        const C: char = '"'; const D: &str = "\"crate::ffi";
        fn e<'a>(x: &'a str) -> &'a str { x }
    "####;
    assert!(
        check("src/config/mod.rs", prose).is_empty(),
        "{:?}",
        check("src/config/mod.rs", prose)
    );
}
