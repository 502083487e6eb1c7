//! The monitoring kit: `dashboards/cache-monitor.json` (Grafana) and `alerts/cache-monitor.rules.yml`
//! (Prometheus). Every PromQL expression must parse (`promtool check rules`) and select only metric
//! families the exporter serves; the alert rules pass `promtool test rules`, which fires and clears each.

mod support;

use std::collections::BTreeSet;
use std::process::Command;

use cache_monitor::{Gauge, Monitor, Operation, Outcome};
use support::{crate_dir, run};

/// Families that other work in progress adds to the exposition (rolling hit rates, key patterns, latency
/// quantiles, the monitor's own alerts). The dashboard and rules use them already; once they are
/// rendered, `served_families` finds them too and this list can go.
/// Sample names the exporter serves today, read from its `# TYPE` lines (a histogram family serves
/// `_bucket`, `_sum` and `_count`).
fn served_families() -> BTreeSet<String> {
    let monitor = Monitor::new();
    monitor.record(Operation::GET, Outcome::Hit, 1_000, b"user:1").unwrap();
    monitor.set_gauge(Gauge::Entries, 1);
    let mut names = BTreeSet::new();
    for line in monitor.render_prometheus().lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
        if kind == "histogram" || kind == "summary" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
            names.insert(name.to_owned());
        } else {
            names.insert(name.to_owned());
        }
    }
    assert!(names.contains("cuenv_cache_operations_total"), "{names:?}");
    names
}

fn known_families() -> BTreeSet<String> {
    served_families()
}

/// Keywords and aggregation operators: identifiers that are not metric names.
const KEYWORDS: [&str; 23] = [
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];
/// Clauses followed by a list of label names, not expressions.
const LABEL_LISTS: [&str; 6] = ["by", "without", "on", "ignoring", "group_left", "group_right"];

/// Skips from an opening delimiter at `i` to just past its closing one, stepping over quoted strings.
fn skip_group(chars: &[char], mut i: usize, open: char, close: char) -> usize {
    let mut depth = 0;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => i = skip_string(chars, i),
            c if c == open => {
                depth += 1;
                i += 1;
            }
            c if c == close => {
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    i
}

fn skip_string(chars: &[char], i: usize) -> usize {
    let quote = chars[i];
    let mut j = i + 1;
    while j < chars.len() && chars[j] != quote {
        j += if chars[j] == '\\' { 2 } else { 1 };
    }
    j + 1
}

/// The metric names an expression selects: identifiers outside strings, label matchers, ranges and
/// label lists that are neither functions (followed by `(`) nor keywords. Grafana variables (`$x`) are
/// skipped.
fn metric_names(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '{' {
            i = skip_group(&chars, i, '{', '}');
        } else if c == '[' {
            i = skip_group(&chars, i, '[', ']');
        } else if c == '$' || c.is_ascii_digit() || c == '.' {
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let ident: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let call = chars.get(next) == Some(&'(');
            if call && LABEL_LISTS.contains(&ident.as_str()) {
                i = skip_group(&chars, next, '(', ')');
            } else if !call
                && !KEYWORDS.contains(&ident.as_str())
                && !["inf", "nan"].contains(&ident.to_ascii_lowercase().as_str())
            {
                names.push(ident);
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn metric_names_are_found_and_nothing_else() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.99, sum by (operation, le) (rate(cuenv_cache_operation_duration_seconds_bucket{job=~"$job",x="a{b}"}[$__rate_interval])))"#
        ),
        ["cuenv_cache_operation_duration_seconds_bucket"]
    );
    assert_eq!(
        metric_names("sum(rate(a_total[5m])) / on (job) group_left (x) b > 0.5 and c offset 1h unless count(d) > 1e-3"),
        ["a_total", "b", "c", "d"]
    );
    assert_eq!(
        metric_names(r#"cuenv_cache_alert == 1 or vector(0) or NaN"#),
        ["cuenv_cache_alert"]
    );
}

/// Every expression of the dashboard: panel targets and the selectors of `label_values(...)` variables.
fn dashboard_expressions(dashboard: &serde_json::Value) -> Vec<String> {
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().expect("a target has expr").to_owned());
        }
    }
    for variable in dashboard["templating"]["list"].as_array().expect("templating") {
        if let Some(query) = variable["query"]["query"].as_str() {
            let selector = query
                .strip_prefix("label_values(")
                .and_then(|q| q.rsplit_once(','))
                .map(|(selector, _label)| selector)
                .unwrap_or_else(|| panic!("unexpected variable query {query}"));
            exprs.push(selector.to_owned());
        }
    }
    exprs
}

/// Grafana's variables replaced with values Prometheus accepts.
fn without_grafana_variables(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$job", ".*")
        .replace("$instance", ".*")
}

/// Runs `promtool check rules` on recording rules made of `exprs`: each must parse.
fn assert_promql_parses(exprs: &[String]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rules = String::from("groups:\n  - name: expressions\n    rules:\n");
    for (i, expr) in exprs.iter().enumerate() {
        let quoted = serde_json::to_string(expr).expect("a JSON string is a YAML string");
        rules.push_str(&format!("      - record: check:expr_{i}\n        expr: {quoted}\n"));
    }
    let file = dir.path().join("expressions.rules.yml");
    std::fs::write(&file, rules).expect("write rules");
    promtool(&["check", "rules"], &file);
}

fn promtool(args: &[&str], file: &std::path::Path) {
    let mut command = Command::new("promtool");
    command.args(args).arg(file);
    if let Some(dir) = file.parent() {
        command.current_dir(dir);
    }
    run(&mut command);
}

fn dashboard() -> serde_json::Value {
    let text = std::fs::read_to_string(crate_dir().join("dashboards/cache-monitor.json"))
        .expect("read dashboards/cache-monitor.json");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

#[test]
fn dashboard_parses_and_has_every_required_panel() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "cache-monitor");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for panel in panels {
        assert!(ids.insert(panel["id"].as_u64().expect("numeric id")), "duplicate id");
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(x + w <= 24, "{} overflows the grid", panel["title"]);
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{}", panel["title"]);
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{} has no query", panel["title"]);
    }
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for wanted in [
        "Operations rate",
        "Hit rate by window",
        "Hit rate by key pattern",
        "p99 latency by operation (histogram)",
        "Operations in flight",
        "Monitor alerts",
    ] {
        assert!(titles.contains(&wanted), "no {wanted:?} panel in {titles:?}");
    }
}

#[test]
fn every_dashboard_expression_parses_and_selects_only_served_families() {
    let exprs = dashboard_expressions(&dashboard());
    assert!(exprs.len() >= 10, "{exprs:?}");
    let known = known_families();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{expr} selects no metric");
        for name in names {
            assert!(
                known.contains(&name),
                "{expr}: {name} is not a family the exporter serves ({known:?})"
            );
        }
    }
    let exprs: Vec<String> = exprs.iter().map(|e| without_grafana_variables(e)).collect();
    assert_promql_parses(&exprs);
}

/// The `expr:` values of a rules file (inline or `|` blocks).
fn rule_expressions(rules: &str) -> Vec<String> {
    let lines: Vec<&str> = rules.lines().collect();
    let mut exprs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(value) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if value != "|" {
            exprs.push(value.to_owned());
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let block: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
            .map(|l| l.trim())
            .collect();
        exprs.push(block.join(" "));
    }
    exprs
}

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    let alerts = crate_dir().join("alerts");
    promtool(&["check", "rules"], &alerts.join("cache-monitor.rules.yml"));
    promtool(&["test", "rules"], &alerts.join("cache-monitor.rules.test.yml"));
}

#[test]
fn alert_rules_select_only_served_families_and_each_fires_and_clears_in_the_unit_tests() {
    let alerts = crate_dir().join("alerts");
    let rules = std::fs::read_to_string(alerts.join("cache-monitor.rules.yml")).expect("rules");
    let known = known_families();
    let exprs = rule_expressions(&rules);
    assert_eq!(exprs.len(), 4, "{exprs:?}");
    for expr in &exprs {
        for name in metric_names(expr) {
            assert!(known.contains(&name), "{expr}: {name} is not served");
        }
    }

    let tests = std::fs::read_to_string(alerts.join("cache-monitor.rules.test.yml")).expect("tests");
    let blocks: Vec<&str> = tests.split("- eval_time:").skip(1).collect();
    let names: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(names.len(), exprs.len());
    for name in names {
        let mine: Vec<&&str> = blocks
            .iter()
            .filter(|b| b.contains(&format!("alertname: {name}\n")))
            .collect();
        assert!(
            mine.iter().any(|b| b.contains("exp_alerts:\n")),
            "{name} is never expected to fire"
        );
        assert!(
            mine.iter().any(|b| b.contains("exp_alerts: []")),
            "{name} is never expected to be quiet"
        );
    }
}
