#!/usr/bin/env python3
"""Turns the estimates of the last `cargo bench` into the ratio tables of BENCHMARKS.md.

Usage: cargo bench && python3 benches/report.py

Every ratio compares benchmarks of one `cargo bench` run, measured back to back in one process; absolute
times on shared machines mean little, ratios between peers measured together are what we claim. The
tables between the RESULTS markers of BENCHMARKS.md are replaced; everything else is left as written.
"""

import json
import pathlib
import platform
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRITERION = ROOT / "target" / "criterion"
REPORT = ROOT / "BENCHMARKS.md"
BEGIN, END = "<!-- RESULTS BEGIN -->", "<!-- RESULTS END -->"


def ns(bench):
    """Median time per iteration of `group/function`, in nanoseconds."""
    path = CRITERION / bench / "new" / "estimates.json"
    try:
        return json.loads(path.read_text())["median"]["point_estimate"]
    except FileNotFoundError:
        sys.exit(f"{path} missing: run `cargo bench` first")


def row(what, ratio, target, meets):
    verdict = "met" if meets(ratio) else "**missed**"
    return f"| {what} | {ratio:.2f} | {target} | {verdict} |"


def tables():
    record = {name: ns(f"record/{name}") for name in [
        "bare_atomic", "cache_monitor", "cache_monitor_with_key", "cache_monitor_c_abi",
        "cache_monitor_dlopen", "prometheus_with_label_values", "prometheus_prebound", "metrics_handles"]}
    threads = {name: ns(f"threads/{name}") for name in [
        "cache_monitor_1", "cache_monitor_2", "shared_atomic_1", "shared_atomic_2",
        "prometheus_prebound_1", "prometheus_prebound_2"]}
    render = {name: ns(f"render/{name}") for name in [
        "cache_monitor_text", "prometheus_equivalent_families", "prometheus_core_families"]}
    cache = {name: ns(f"monitored_cache/{name}") for name in [
        "get_hit_bare", "get_hit_monitored", "put_bare", "put_monitored",
        "file_get_hit_bare", "file_get_hit_monitored"]}

    # A `threads/x_n` iteration is one record on each of n threads: throughput is n / time.
    def scaling(name):
        return (2 / threads[f"{name}_2"]) / (1 / threads[f"{name}_1"])

    labelled = record["prometheus_with_label_values"]
    lines = [
        "### Targets",
        "",
        "| measure | ratio | target | |",
        "|---|---|---|---|",
        row("`record` without key / bare `AtomicU64::fetch_add`", record["cache_monitor"] / record["bare_atomic"],
            "<= 3", lambda r: r <= 3),
        row("`record` without key / `prometheus` `with_label_values`", record["cache_monitor"] / labelled,
            "<= 0.3", lambda r: r <= 0.3),
        row("`record` with key (patterns on) / `prometheus` `with_label_values`",
            record["cache_monitor_with_key"] / labelled, "<= 0.5", lambda r: r <= 0.5),
        row("`cache_monitor_record` through `dlopen` / called directly",
            record["cache_monitor_dlopen"] / record["cache_monitor_c_abi"], "<= 1.2", lambda r: r <= 1.2),
        row("2 threads / 1 thread throughput", scaling("cache_monitor"), ">= 1.8", lambda r: r >= 1.8),
        row("render / `prometheus` gather + `TextEncoder`, equivalent families",
            render["cache_monitor_text"] / render["prometheus_equivalent_families"], "<= 0.5", lambda r: r <= 0.5),
        row("`MonitoredCache` in-memory get / bare get, minus 1 (overhead)",
            cache["get_hit_monitored"] / cache["get_hit_bare"] - 1, "<= 0.10", lambda r: r <= 0.10),
        "",
        "### Every peer, against the bare atomic (one record: a count and a duration)",
        "",
        "| `record/...` | time / bare atomic |",
        "|---|---|",
    ]
    for name, value in record.items():
        lines.append(f"| `{name}` | {value / record['bare_atomic']:.2f} |")
    lines += [
        "",
        "### Scaling from 1 to 2 threads (throughput ratio; 2.0 is perfect)",
        "",
        "| `threads/...` | 2 threads / 1 thread |",
        "|---|---|",
    ]
    for name in ["cache_monitor", "shared_atomic", "prometheus_prebound"]:
        lines.append(f"| `{name}` | {scaling(name):.2f} |")
    lines += [
        "",
        "### Renders and the cache wrapper",
        "",
        "| measure | ratio |",
        "|---|---|",
        f"| render / `prometheus` core families only (counter and histogram) | "
        f"{render['cache_monitor_text'] / render['prometheus_core_families']:.2f} |",
        f"| `MonitoredCache` put / bare put | {cache['put_monitored'] / cache['put_bare']:.2f} |",
        f"| `MonitoredCache` get: added nanoseconds per operation | "
        f"{cache['get_hit_monitored'] - cache['get_hit_bare']:.0f} ns |",
        f"| `MonitoredCache` over `FileCache` get / bare, minus 1 (overhead) | "
        f"{cache['file_get_hit_monitored'] / cache['file_get_hit_bare'] - 1:.3f} |",
    ]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    lines += ["", f"Measured on {cpu}, {platform.machine()}, {rustc}."]
    return "\n".join(lines)


def main():
    text = REPORT.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    REPORT.write_text(text[:start] + "\n" + tables() + "\n" + text[end:])
    print(tables())


if __name__ == "__main__":
    main()
