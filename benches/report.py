#!/usr/bin/env python3
"""Turns the estimates of the last benchmark run into the ratio tables of BENCHMARKS.md, one block per CPU.

Usage: cargo bench && benches/callgrind.sh && python3 benches/report.py

Every ratio compares benchmarks of one `cargo bench` run, measured back to back in one process; absolute
times on shared machines mean little, ratios between peers measured together are what we claim. Results
are kept per CPU model: the block between `<!-- RESULTS BEGIN: <model> -->` and `<!-- RESULTS END: <model>
-->` of this machine's model is replaced (or added after the others), and the blocks of other models are
left as they are, so runs on different machines never overwrite each other. `target/tail/estimates.json`
(`cargo bench --bench tail`), `target/cache_overhead/estimates.json` (`cargo bench --bench
cache_overhead`) and `target/callgrind/instructions.json` (`benches/callgrind.sh`) are used when
present.
"""

import json
import pathlib
import platform
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET = ROOT / "target"
CRITERION = TARGET / "criterion"
REPORT = ROOT / "BENCHMARKS.md"


def cpu_model():
    """The CPU's model name as /proc/cpuinfo gives it (what tells two machines apart)."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def estimate(bench):
    """Criterion's median estimate of `group/function` (nanoseconds), with its confidence interval."""
    path = CRITERION / bench / "new" / "estimates.json"
    try:
        return json.loads(path.read_text())["median"]
    except FileNotFoundError:
        sys.exit(f"{path} missing: run `cargo bench` first")


def ns(bench):
    """Median time per iteration of `group/function`, in nanoseconds."""
    return estimate(bench)["point_estimate"]


def optional_json(path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def row(what, ratio, target, meets, digits=2):
    verdict = "met" if meets(ratio) else "**missed**"
    return f"| {what} | {ratio:.{digits}f} | {target} | {verdict} |"


def paired_row(what, paired, cache, leg, target, limit, nanoseconds=False):
    """A target row from the paired benchmark: `leg`'s added cost over the bare get of `cache`, the median
    over the processes it ran in (what is judged), their lowest and highest, and the null leg's median."""
    added, lowest, highest = paired[cache][leg]
    scale = paired[cache]["bare_ns"] if nanoseconds else 1
    unit = (lambda x: f"{x * scale:+.1f} ns") if nanoseconds else (lambda x: f"{x:+.2%}")
    what = (f"{what}, paired, median of {paired['processes']} processes ({unit(lowest)} to {unit(highest)}; "
            f"null, the bare get again: {unit(paired[cache]['null'][0])})")
    return row(what, added * scale, target, lambda r: r <= limit, 1 if nanoseconds else 3)


def tables(cpu):
    record = {name: ns(f"record/{name}") for name in [
        "bare_atomic", "cache_monitor", "cache_monitor_with_key", "cache_monitor_disabled",
        "cache_monitor_state_file", "cache_monitor_c_abi", "cache_monitor_dlopen",
        "prometheus_with_label_values", "prometheus_prebound", "metrics_handles"]}
    threads = {name: ns(f"threads/{name}") for name in [
        "cache_monitor_1", "cache_monitor_2", "shared_atomic_1", "shared_atomic_2",
        "prometheus_prebound_1", "prometheus_prebound_2"]}
    render = {name: ns(f"render/{name}") for name in [
        "cache_monitor_text", "cache_monitor_openmetrics", "cache_monitor_protobuf",
        "cache_monitor_protobuf_native_off", "prometheus_equivalent_families", "prometheus_core_families"]}
    native = {name: ns(f"record/{name}") for name in ["cache_monitor_native_on", "cache_monitor_native_off"]}
    cache = {name: ns(f"monitored_cache/{name}") for name in [
        "put_bare", "put_monitored"]}
    state = {name: ns(f"state_file/{name}") for name in [
        "record_memory_1_threads", "record_file_1_threads", "record_memory_2_threads", "record_file_2_threads",
        "record_file_in_temp_dir_1_threads",
        "record_file_2_processes", "show_1_processes", "show_64_processes"]}
    many = sorted(CRITERION.glob("state_file/show_*_processes"), key=lambda p: int(p.name.split("_")[1]))
    show_many = (int(many[-1].name.split("_")[1]), ns(f"state_file/{many[-1].name}")) if many else None
    tail = optional_json(TARGET / "tail" / "estimates.json")
    paired = optional_json(TARGET / "cache_overhead" / "estimates.json")
    callgrind = optional_json(TARGET / "callgrind" / "instructions.json")

    # A `threads/x_n` iteration is one record on each of n threads: throughput is n / time.
    def scaling(name):
        return (2 / threads[f"{name}_2"]) / (1 / threads[f"{name}_1"])

    bare = record["bare_atomic"]
    lines = [
        "#### Targets (issue 16)",
        "",
        "| measure | value | target | |",
        "|---|---|---|---|",
        row("`record` without key / bare `AtomicU64::fetch_add`", record["cache_monitor"] / bare,
            "<= 3", lambda r: r <= 3),
        row("`record` without key / `prometheus` pre-bound counter + histogram",
            record["cache_monitor"] / record["prometheus_prebound"], "<= 0.6", lambda r: r <= 0.6),
        row("`record` with key (patterns on) / bare atomic", record["cache_monitor_with_key"] / bare,
            "<= 6", lambda r: r <= 6),
        row("`cache_monitor_record` through `dlopen` / called directly",
            record["cache_monitor_dlopen"] / record["cache_monitor_c_abi"], "<= 1.1", lambda r: r <= 1.1),
        row("2 threads / 1 thread throughput", scaling("cache_monitor"), ">= 1.9", lambda r: r >= 1.9),
        row("`record` switched off (`{\"enabled\": false}`) / bare atomic",
            record["cache_monitor_disabled"] / bare, "<= 1.5", lambda r: r <= 1.5),
        row("render / `prometheus` gather + `TextEncoder`, equivalent families",
            render["cache_monitor_text"] / render["prometheus_equivalent_families"], "<= 0.5", lambda r: r <= 0.5),
    ]
    if paired:
        lines += [
            paired_row("`MonitoredCache` in-memory get / bare get, minus 1", paired, "memory_cache", "monitored",
                       "<= 0.25", 0.25),
            paired_row("`MonitoredCache` in-memory get switched off: added ns per get", paired, "memory_cache",
                       "switched_off", "<= 5", 5, nanoseconds=True),
            paired_row("`MonitoredCache` over `FileCache` get / bare, minus 1", paired, "file_cache", "monitored",
                       "<= 0.01", 0.01),
        ]
    else:
        lines.append("| `MonitoredCache` get over `MemoryCache` and `FileCache` | not measured in this run "
                     "(`cargo bench --bench cache_overhead`) | <= 0.25, <= 5 ns off, <= 0.01 | |")
    if tail:
        lines.append(row(f"p99.9 / p50 of one record, {tail['records']:.0e} records on {tail['threads']} threads",
                         tail["p999_ns"] / tail["p50_ns"], "<= 10", lambda r: r <= 10))
    else:
        lines.append("| p99.9 / p50 of one record | not measured in this run (`cargo bench --bench tail`) | <= 10 | |")
    if callgrind:
        lines.append(row("callgrind: instructions per record without a key", callgrind["record_without_key"],
                         "<= 80", lambda r: r <= 80, 0))
        lines.append(row(f"callgrind: instructions per record with the key `{callgrind['key']}`",
                         callgrind["record_with_key"], "<= 200", lambda r: r <= 200, 0))
        if "record_into_state_file" in callgrind:
            lines.append(row("callgrind: a record into a state file / into memory (issue 11)",
                             callgrind["record_into_state_file"] / callgrind["record_without_key"], "<= 1.2",
                             lambda r: r <= 1.2))
        if "record_batched" in callgrind:
            lines.append(row("callgrind: a record through `cache_monitor_record_batch` (256 a call; issue 13), "
                             "the host's loop included", callgrind["record_batched"], "", lambda r: True, 0))
    else:
        lines.append("| callgrind: instructions per record | not measured in this run (`benches/callgrind.sh`) "
                     "| <= 80 / <= 200 | |")
    lines += [
        "",
        "#### Every peer, against the bare atomic (one record: a count and a duration)",
        "",
        "| `record/...` | time / bare atomic |",
        "|---|---|",
    ]
    for name, value in record.items():
        lines.append(f"| `{name}` | {value / bare:.2f} |")
    lines += [
        "",
        "#### Scaling from 1 to 2 threads (throughput ratio; 2.0 is perfect)",
        "",
        "| `threads/...` | 2 threads / 1 thread |",
        "|---|---|",
    ]
    for name in ["cache_monitor", "shared_atomic", "prometheus_prebound"]:
        lines.append(f"| `{name}` | {scaling(name):.2f} |")
    lines += [
        "",
        "#### Renders, state files and the cache wrapper",
        "",
        "| measure | value |",
        "|---|---|",
        f"| record into a state file / record into memory | "
        f"{record['cache_monitor_state_file'] / record['cache_monitor']:.2f} |",
        f"| record with native histograms on / off (issue 12) | "
        f"{native['cache_monitor_native_on'] / native['cache_monitor_native_off']:.2f} |",
        f"| protobuf render / text render (issue 12; native buckets included) | "
        f"{render['cache_monitor_protobuf'] / render['cache_monitor_text']:.2f} |",
        f"| protobuf render without native buckets / text render | "
        f"{render['cache_monitor_protobuf_native_off'] / render['cache_monitor_text']:.2f} |",
        f"| OpenMetrics render / text render | "
        f"{render['cache_monitor_openmetrics'] / render['cache_monitor_text']:.2f} |",
        f"| render / `prometheus` core families only (counter and histogram) | "
        f"{render['cache_monitor_text'] / render['prometheus_core_families']:.2f} |",
        f"| `MonitoredCache` put / bare put | {cache['put_monitored'] / cache['put_bare']:.2f} |",
    ]
    if paired:
        memory, file = paired["memory_cache"], paired["file_cache"]
        lines += [
            f"| `MonitoredCache` get over `MemoryCache`: added nanoseconds per get (paired) | "
            f"{memory['monitored'][0] * memory['bare_ns']:.0f} ns of {memory['bare_ns']:.0f} |",
            f"| `MonitoredCache` get over `FileCache`: added nanoseconds per get (paired) | "
            f"{file['monitored'][0] * file['bare_ns']:.0f} ns of {file['bare_ns']:.0f} |",
            f"| {file['spin_ns']} ns of spinning after each bare `FileCache` get: added nanoseconds per get "
            f"(what the loop makes of a known cost) | {file['spin'][0] * file['bare_ns']:.0f} ns |",
        ]
    lines += [
        "",
        "#### State files (issue 11): a record into a shared file, and `show` as processes come and go",
        "",
        "| measure | value |",
        "|---|---|",
        f"| record into a file on a tmpfs / into memory, 1 thread (issue 11: <= 1.2) | "
        f"{state['record_file_1_threads'] / state['record_memory_1_threads']:.2f} |",
        f"| record into a file in the temporary directory (not a tmpfs here) / into memory, 1 thread | "
        f"{state['record_file_in_temp_dir_1_threads'] / state['record_memory_1_threads']:.2f} |",
        f"| record into a file / into memory, 2 threads (each recording at once) | "
        f"{state['record_file_2_threads'] / state['record_memory_2_threads']:.2f} |",
        f"| record into a file, 2 processes at once / 2 threads of one process | "
        f"{state['record_file_2_processes'] / state['record_file_2_threads']:.2f} |",
        f"| `show` (open and render) of a file written by 64 processes / by 1 | "
        f"{state['show_64_processes'] / state['show_1_processes']:.2f} |",
    ]
    if show_many:
        lines.append(f"| `show` of a file written by {show_many[0]:,} processes / by 1 | "
                     f"{show_many[1] / state['show_1_processes']:.2f} |")
    if tail:
        lines += [
            "",
            f"#### The tail of one record ({tail['records']:.0e} records on {tail['threads']} threads, a scrape "
            "every second; each record timed on its own)",
            "",
            "| | p50 | p99 | p99.9 |",
            "|---|---|---|---|",
            f"| record | {tail['p50_ns']:.0f} ns | {tail['p99_ns']:.0f} ns | {tail['p999_ns']:.0f} ns |",
            f"| the two clock reads alone | {tail['floor_p50_ns']:.0f} ns | {tail['floor_p99_ns']:.0f} ns | "
            f"{tail['floor_p999_ns']:.0f} ns |",
        ]
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    cores = sum(1 for line in open("/proc/cpuinfo") if line.startswith("processor"))
    lines += ["", f"Measured on {cpu} ({cores} cores), {platform.machine()}, {rustc}."]
    return "\n".join(lines)


def replace_block(text, cpu, body):
    """`text` with the results block of `cpu` replaced by `body`, or added after the last block."""
    begin, end = f"<!-- RESULTS BEGIN: {cpu} -->", f"<!-- RESULTS END: {cpu} -->"
    block = f"{begin}\n### {cpu}\n\n{body}\n{end}"
    if begin in text:
        start, stop = text.index(begin), text.index(end) + len(end)
        return text[:start] + block + text[stop:]
    ends = [m.end() for m in re.finditer(r"<!-- RESULTS END: .* -->", text)]
    if not ends:
        sys.exit("BENCHMARKS.md has no results block to add this machine's after")
    return text[:ends[-1]] + "\n\n" + block + text[ends[-1]:]


def main():
    cpu = cpu_model()
    body = tables(cpu)
    REPORT.write_text(replace_block(REPORT.read_text(), cpu, body))
    print(f"### {cpu}\n\n{body}")


if __name__ == "__main__":
    main()
