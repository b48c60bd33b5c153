#!/usr/bin/env python3
"""Turns bench/run-all's results into the tables (OUT/tables.md) and plots (OUT/*.png) of
BENCHMARKS.md. Every ratio is taken against fork+exec of the same payload measured in the
same run of hutch_spawn_bench; medians are over the repetitions."""
import json
import pathlib
import subprocess
import sys

out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "bench-results")
# The latency rows, the spaced rows, the throughput rows, the threaded-host rows and the Pool
# rows, each from a process of its own (bench/run-all); run names do not overlap.
results = []
for name in ("spawn", "spaced", "throughput", "threaded", "pool"):
    path = out / f"{name}.json"
    if path.exists():
        results += json.loads(path.read_text())["benchmarks"]


def median(name, field="real_time"):
    for b in results:
        if b.get("aggregate_name") == "median" and b["run_name"] == name:
            return b[field]
    return None


LEVELS = [
    ("vfork_exec", "vfork + exec"),
    ("posix_spawn", "posix_spawn"),
    ("container/none", "Container, no namespaces"),
    ("container/user", "+ user namespace only"),
    ("container/pid", "+ pid namespace only"),
    ("container/mount", "+ mount namespace only"),
    ("container/uts", "+ uts namespace only"),
    ("container/ipc", "+ ipc namespace only"),
    ("container/net", "+ net namespace only"),
    ("container/cgroup", "+ cgroup namespace only"),
    ("container/time", "+ time namespace only"),
    ("container/all_but_net", "all namespaces but net"),
    ("container/all", "all namespaces"),
    ("container/all_but_net+rootfs", "all but net + rootfs (pivot_root, /proc, /dev, /sys)"),
    ("container/all_but_net+overlay", "... + overlay"),
    ("container/full", "... + cgroup with limits (full isolation)"),
    ("container/full+net", "full isolation + net namespace"),
    ("container/net_made_ahead", "+ net namespace only, made ahead (network_made_ahead)"),
    ("container/full+net_made_ahead", "full isolation + net namespace made ahead"),
    ("created/none", "created ahead, no namespaces: start() + wait"),
    ("created/full", "created ahead, full isolation: start() + wait"),
    ("created/full+net", "created ahead, full isolation + net: start() + wait"),
    ("created/full+net_made_ahead", "created ahead, full + net made ahead: start() + wait"),
]


def run_name(base, payload, arg=True):
    return f"{base}/{payload}" + ("/host_gib:0" if arg else "") + "/real_time"


lines = []
fork = {p: median(run_name("fork_exec", p)) for p in ("glibc", "nolibc")}
lines.append("| spawn + exec + reap | static glibc `true` | ratio | no-libc `true` | ratio |")
lines.append("|---|---:|---:|---:|---:|")
lines.append(
    f"| fork + exec | {fork['glibc']:.0f} µs | 1.00x | {fork['nolibc']:.0f} µs | 1.00x |")
plot_rows = []
for base, label in LEVELS:
    arg = base.startswith("container")  # created/* has no host-size argument
    g = median(run_name(base, "glibc", arg))
    n = median(run_name(base, "nolibc", arg))
    lines.append(f"| {label} | {g:.0f} µs | {g / fork['glibc']:.2f}x | {n:.0f} µs | "
                 f"{n / fork['nolibc']:.2f}x |")
    if base.startswith("created/"):
        continue  # not a spawn: kept out of the plot of spawn latency by level
    plot_rows.append((base.replace("container/", ""), g, n))
lines.append("")

# Spawns spaced by an idle pause (a process of its own): what is made ahead is ready.
if median("spaced/fork_exec/glibc/real_time") is not None:
    sf = median("spaced/fork_exec/glibc/real_time")
    lines.append("| spawns 4 ms apart, static glibc `true` | latency | ratio to fork + exec |")
    lines.append("|---|---:|---:|")
    lines.append(f"| fork + exec | {sf:.0f} µs | 1.00x |")
    for level, label in (("full", "full isolation"),
                         ("full+net", "full isolation + net namespace"),
                         ("full+net_made_ahead", "full isolation + net namespace made ahead")):
        g = median(f"spaced/container/{level}/glibc/real_time")
        lines.append(f"| {label} | {g:.0f} µs | {g / sf:.2f}x |")
    lines.append("")

# Host size: fork copies the caller's page tables; a CLONE_VM spawn does not.
# One process per size and round (bench/run-all): the median over the rounds.
sized = {}
for path in sorted(out.glob("host_size-*.json")):
    for b in json.loads(path.read_text())["benchmarks"]:
        if b.get("run_type") == "iteration" and not b.get("error_occurred"):
            sized.setdefault(b["run_name"], []).append(b["real_time"])


def sized_median(name):
    values = sorted(sized[name])
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


rounds = len(sized.get("host_size/container/full/glibc/host_gib:4/real_time", []))
lines.append("| host resident size | fork + exec | Container::spawn, full isolation |")
lines.append("|---|---:|---:|")
size_rows = []
for gib in (0, 1, 4):
    f = sized_median(f"host_size/fork_exec/glibc/host_gib:{gib}/real_time")
    c = sized_median(f"host_size/container/full/glibc/host_gib:{gib}/real_time")
    size_rows.append((gib, f, c))
    f0, c0 = size_rows[0][1], size_rows[0][2]
    lines.append(f"| {gib} GiB | {f:.0f} µs ({f / f0:.2f}x) | {c:.0f} µs ({c / c0:.2f}x) |")
lines.append("")
lines.append(f"(medians over {rounds} rounds, one process per size and round)")
lines.append("")

# From a process that has run threads (fork copies their arenas and stacks).
if median("threaded_host/fork_exec/glibc/0/real_time") is not None:
    lines.append("| from a host that has run threads | static glibc `true` | ratio | "
                 "no-libc `true` | ratio |")
    lines.append("|---|---:|---:|---:|---:|")
    tf = {p: median(f"threaded_host/fork_exec/{p}/0/real_time") for p in ("glibc", "nolibc")}
    tc = {p: median(f"threaded_host/container/full/{p}/0/real_time") for p in ("glibc", "nolibc")}
    lines.append(f"| fork + exec | {tf['glibc']:.0f} µs | 1.00x | {tf['nolibc']:.0f} µs | 1.00x |")
    lines.append(f"| Container, full isolation | {tc['glibc']:.0f} µs | "
                 f"{tc['glibc'] / tf['glibc']:.2f}x | {tc['nolibc']:.0f} µs | "
                 f"{tc['nolibc'] / tf['nolibc']:.2f}x |")
    lines.append("")

lines.append("| spawning threads | fork + exec per second | full-isolation containers per second |")
lines.append("|---|---:|---:|")
for threads in (1, 2, 8):
    f = median(f"throughput/fork_exec/glibc/0/real_time/threads:{threads}", "items_per_second")
    c = median(f"throughput/container/full/glibc/0/real_time/threads:{threads}",
               "items_per_second")
    lines.append(f"| {threads} | {f:.0f} | {c:.0f} |")
lines.append("")

# hutch::Pool (a process of its own: its pool thread stays), against fork + exec of the
# latency and throughput rows.
if median("pool/full/glibc/real_time") is not None:
    lines.append("| hutch::Pool, static glibc `true` | latency | ratio to fork + exec |")
    lines.append("|---|---:|---:|")
    for level in ("full", "full+net", "full+net_made_ahead"):
        g = median(f"pool/{level}/glibc/real_time")
        if g is None:
            continue
        lines.append(f"| take + start + wait, {level} | {g:.0f} µs | {g / fork['glibc']:.2f}x |")
    lines.append("")
    lines.append("| spawning threads | fork + exec per second | Pool, full isolation, per second |")
    lines.append("|---|---:|---:|")
    for threads in (1, 2, 8):
        f = median(f"throughput/fork_exec/glibc/0/real_time/threads:{threads}", "items_per_second")
        c = median(f"pool_throughput/full/glibc/real_time/threads:{threads}", "items_per_second")
        lines.append(f"| {threads} | {f:.0f} | {c:.0f} |")
    lines.append("")

peers_file = out / "peers.json"
if peers_file.exists():
    peers = json.loads(peers_file.read_text())["results"]
    by = {r["command"]: r for r in peers}
    direct = by["direct"]["median"]
    hutch = by["hutch-run"]["median"]
    lines.append("| command | median | mean ± σ | ratio to the payload | hutch-run is faster by |")
    lines.append("|---|---:|---:|---:|---:|")
    for r in peers:
        m = r["median"]
        faster = "" if r["command"] in ("direct", "hutch-run", "floor") else f"{m / hutch:.2f}x"
        lines.append(f"| {r['command']} | {m * 1000:.2f} ms | {r['mean'] * 1000:.2f} ± "
                     f"{r['stddev'] * 1000:.2f} ms | {m / direct:.1f}x | {faster} |")
    lines.append("")

for name in ("scale-idle", "scale-churn"):
    path = out / f"{name}.txt"
    if path.exists():
        lines.append(f"| {name} | |")
        lines.append("|---|---:|")
        for row in path.read_text().splitlines():
            key, value = row.split()
            lines.append(f"| {key} | {float(value):g} |")
        lines.append("")

(out / "tables.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))

# Plots.
with open(out / "levels.dat", "w") as f:
    f.write(f"fork_exec {fork['glibc']:.1f} {fork['nolibc']:.1f}\n")
    for name, g, n in plot_rows:
        f.write(f"{name} {g:.1f} {n:.1f}\n")
with open(out / "host_size.dat", "w") as f:
    for gib, fk, c in size_rows:
        f.write(f"{gib} {fk:.1f} {c:.1f}\n")
script = f"""
set terminal pngcairo size 1100,520 font ",10" noenhanced
set output "{out}/levels.png"
set title "Spawn + exec + reap of a static true, by isolation level (median; fork+exec = 1)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "ratio to fork+exec of the same payload"
set xtics rotate by -40 left
set grid ytics
set key top left
set yrange [0:*]
plot "{out}/levels.dat" using ($2/{fork['glibc']}):xtic(1) title "glibc true", \\
     "" using ($3/{fork['nolibc']}) title "no-libc true", \\
     1 with lines lw 2 lc rgb "black" notitle
set output "{out}/host_size.png"
set title "Spawn latency by the host's resident size (median)"
set style data linespoints
unset xtics
set xtics ("0 GiB" 0, "1 GiB" 1, "4 GiB" 4)
set logscale y
set ylabel "µs per spawn + reap"
set xlabel "memory the host process has touched"
set yrange [*:*]
plot "{out}/host_size.dat" using 1:2 title "fork + exec" lw 2 pt 7, \\
     "" using 1:3 title "Container::spawn, full isolation" lw 2 pt 5
"""
subprocess.run(["gnuplot"], input=script, text=True, check=True)
