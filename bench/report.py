#!/usr/bin/python3
"""Merges the raw records of bench/run.sh into the benchmark's table, JSON and plot.

    bench/report.py --raw build/bench-raw --out build [--commit C] [--load BEFORE AFTER]

Reads RAW/{convd,convd_direct,pytorch,onednn,pytorch_default_malloc}.jsonl (kind "time"),
RAW/peak.jsonl (FMA peak, DRAM and in-cache bandwidth),
RAW/rss.jsonl, RAW/gemm.jsonl and RAW/layers.json. A cell (impl, layer, pass, threads) is the
median of all its samples, over every round. Writes OUT/bench.json (one object per cell of
convd, convd_direct, pytorch and onednn), OUT/bench-meta.json (peak, memory, cores, load, sgemm ceilings, the
default-allocator PyTorch), OUT/bench.md (the tables in Markdown) and OUT/bench.png (speedups and
the roofline of the largest thread count, when matplotlib is installed; each cell's FLOPs per
byte and GB/s are in bench.json too), and prints the tables with the targets of issue 14.
"""
import argparse
import json
import os
import statistics
import sys

# convd with "algorithm" auto, and never Winograd (convd_direct: the rows per algorithm).
IMPLS = ("convd", "convd_direct", "pytorch", "onednn")
# PyTorch once more with glibc's default allocator (bench/run.sh says why): shown, not judged.
TORCH_DEFAULT = "pytorch_default_malloc"
PASSES = ("forward", "backward")
# Issue 14's targets, judged with 2 threads: every layer at least as fast as PyTorch; (b) and
# (c) at least 1.2x oneDNN, every other layer at least 0.9x oneDNN.
TARGET_THREADS = 2
VS_TORCH_MIN = 1.0
VS_ONEDNN_LAYERS, VS_ONEDNN_MIN, VS_ONEDNN_OTHERS = ("b", "c"), 1.2, 0.9


def onednn_target(layer):
    return VS_ONEDNN_MIN if layer in VS_ONEDNN_LAYERS else VS_ONEDNN_OTHERS


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def pooled(records):
    """{(impl, layer, pass, threads): {"ms": [...], "parts": {name: [...]}, "extra": {...}}}"""
    cells = {}
    for r in records:
        key = (r["impl"], r["layer"], r["pass"], r["threads"])
        cell = cells.setdefault(key, {"ms": [], "parts": {}, "extra": {}, "reorder": []})
        cell["ms"] += r["ms"]
        for name, series in r.get("parts", {}).items():
            cell["parts"].setdefault(name, []).extend(series)
        if "reorder_ms" in r:
            cell["reorder"].append(r["reorder_ms"])
        cell["extra"] = {k: v for k, v in r.items()
                         if k not in ("kind", "impl", "layer", "pass", "threads", "ms", "parts",
                                      "warmup", "reorder_ms")}
    return cells


def min_bytes(L, pass_name):
    """Bytes a pass must move at the least: each float32 tensor it reads or writes, once."""
    x = L["n"] * L["c"] * L["d"] * L["h"] * L["w"]
    y = L["n"] * L["f"] * L["do"] * L["ho"] * L["wo"]
    if L["op"].startswith("conv_transpose"):  # layers.json gives the transposed op's output
        x, y = y, x                            # as ho, wo: swap so that x is its input
    w = L["c"] * L["f"] // L["groups"] * L["kd"] * L["kh"] * L["kw"]
    if pass_name == "forward":
        return 4 * (x + w + y + L["f"])
    return 4 * (y + x + w + x + w + L["f"])  # reads dy, x, w; writes dx, dw, db


def build_rows(cells, layers, peak):
    rows = []
    for (impl, layer, pass_name, threads), cell in sorted(cells.items()):
        flops = layers[layer]["flops"] * (2 if pass_name == "backward" else 1)
        ms = statistics.median(cell["ms"])
        gflops = flops / (ms * 1e6)
        row = {"layer": layer, "pass": pass_name, "threads": threads, "impl": impl,
               "ms": round(ms, 6), "gflops": round(gflops, 2),
               "pct_peak": round(100 * gflops / peak[str(threads)], 2),
               "intensity": round(flops / min_bytes(layers[layer], pass_name), 2),
               "gbs": round(min_bytes(layers[layer], pass_name) / (ms * 1e6), 2),
               "samples": len(cell["ms"]), "ms_min": round(min(cell["ms"]), 6),
               "parts_ms": {k: round(statistics.median(v), 6) for k, v in cell["parts"].items()}}
        if cell["reorder"]:
            row["reorder_ms"] = round(statistics.median(cell["reorder"]), 6)
        row.update(cell["extra"])
        rows.append(row)
    return rows


def index(rows):
    return {(r["impl"], r["layer"], r["pass"], r["threads"]): r for r in rows}


def speedup(by, peer, layer, pass_name, threads):
    c, p = by.get(("convd", layer, pass_name, threads)), by.get((peer, layer, pass_name, threads))
    return p["ms"] / c["ms"] if c and p else None


def misses(by, layers, thread_counts):
    """Issue 14's targets that this run does not meet, as sentences."""
    out = []
    t = TARGET_THREADS
    if t not in thread_counts:
        return ["targets are judged with 2 threads, which this run did not measure"]
    for layer in layers:
        for p in PASSES:
            s = speedup(by, "pytorch", layer, p, t)
            if s is not None and s < VS_TORCH_MIN:
                out.append(f"({layer}) {p}: convd at {s:.2f}x PyTorch's speed (target "
                           f"{VS_TORCH_MIN}x)")
            s = speedup(by, "onednn", layer, p, t)
            if s is not None and s < onednn_target(layer):
                out.append(f"({layer}) {p}: convd at {s:.2f}x oneDNN's speed (target "
                           f"{onednn_target(layer)}x)")
    return out


def fmt_ms(v):
    return "-" if v is None else (f"{v:.3f}" if v < 10 else f"{v:.1f}")


def fmt_x(v):
    return "-" if v is None else f"{v:.2f}x"


def table(by, layers, thread_counts, markdown):
    head = ["layer", "pass", "thr", "convd ms", "algorithm", "convd direct ms", "pytorch ms",
            "pytorch ms, default malloc", "onednn ms (+reorder)",
            "convd GFLOP/s", "convd % peak", "onednn % peak", "vs pytorch", "vs onednn"]
    lines = []
    if markdown:
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
    else:
        lines.append(f"{'layer':<5} {'pass':<8} {'thr':>3} {'convd':>8} {'algo':>8} "
                     f"{'direct':>8} {'pytorch':>8} "
                     f"{'(malloc)':>8} {'onednn (+reord)':>16} {'GFLOP/s':>8} {'%peak':>6} "
                     f"{'dnn%pk':>6} "
                     f"{'vs torch':>9} {'vs dnnl':>8}")
    for layer in layers:
        for p in PASSES:
            for t in thread_counts:
                get = {i: by.get((i, layer, p, t)) for i in IMPLS + (TORCH_DEFAULT,)}
                ms = {i: (g["ms"] if g else None) for i, g in get.items()}
                d = get["onednn"]
                dnn = fmt_ms(ms["onednn"]) + (f" (+{fmt_ms(d['reorder_ms'])})"
                                              if d and "reorder_ms" in d else "")
                c = get["convd"]
                gf = f"{c['gflops']:.1f}" if c else "-"
                pk = f"{c['pct_peak']:.0f}%" if c else "-"
                dpk = f"{d['pct_peak']:.0f}%" if d else "-"
                s_t, s_d = speedup(by, "pytorch", layer, p, t), speedup(by, "onednn", layer, p, t)
                flag_t = ("!" if t == TARGET_THREADS and s_t is not None and s_t < VS_TORCH_MIN
                          else "")
                flag_d = ("!" if t == TARGET_THREADS and s_d is not None
                          and s_d < onednn_target(layer) else "")
                algo = c.get("algorithm", "-") if c else "-"
                cols = [layer, p, str(t), fmt_ms(ms["convd"]), algo, fmt_ms(ms["convd_direct"]),
                        fmt_ms(ms["pytorch"]), fmt_ms(ms[TORCH_DEFAULT]), dnn, gf, pk, dpk,
                        fmt_x(s_t) + flag_t, fmt_x(s_d) + flag_d]
                if markdown:
                    lines.append("| " + " | ".join(cols) + " |")
                else:
                    lines.append(f"{cols[0]:<5} {cols[1]:<8} {cols[2]:>3} {cols[3]:>8} "
                                 f"{cols[4]:>8} {cols[5]:>8} {cols[6]:>8} {cols[7]:>8} "
                                 f"{cols[8]:>16} {cols[9]:>8} {cols[10]:>6} {cols[11]:>6} "
                                 f"{cols[12]:>9} {cols[13]:>8}")
    return "\n".join(lines)


GEMM_PASSES = ("forward", "backward_data", "backward_weights")


def gemm_table(gemm, by, layers, markdown):
    """sgemm alone on each layer's GEMM shapes (1 thread) against convd's 1-thread passes: how
    much of the ceiling the im2col + GEMM structure keeps. GFLOP/s are the GEMM convd's passes
    call (its own where the ISA has one, "impl" convd), OpenBLAS's in brackets."""
    g = {(r["layer"], r["pass"]): r for r in gemm}
    head = ["layer", "fwd GEMM M,N,K", "GFLOP/s (BLAS)", "bwd-data GEMM", "GFLOP/s (BLAS)",
            "bwd-weights GEMM", "GFLOP/s (BLAS)", "convd fwd / ceiling", "convd bwd / ceiling"]
    rows = []
    for layer in layers:
        shapes = [g.get((layer, p)) for p in GEMM_PASSES]
        if not all(shapes):
            continue
        fwd_ceiling = shapes[0]["gflops"]
        # Backward does the two GEMMs one after the other: the ceiling is their joint rate.
        bwd_ceiling = 2 * layers[layer]["flops"] / (
            sum(layers[layer]["flops"] / (s["gflops"] * 1e6) for s in shapes[1:]) * 1e6)
        c_f, c_b = by.get(("convd", layer, "forward", 1)), by.get(("convd", layer, "backward", 1))
        cols = [layer]
        for s in shapes:
            cols += [f"{s['m']},{s['n']},{s['k']}",
                     f"{s['gflops']:.0f} ({s.get('cblas_gflops', s['gflops']):.0f})"]
        if layers[layer]["c"] == layers[layer]["groups"]:
            cols += ["no GEMM", "no GEMM"]  # one channel per group: core/ runs these directly
        else:
            cols += [f"{100 * c_f['gflops'] / fwd_ceiling:.0f}%" if c_f else "-",
                     f"{100 * c_b['gflops'] / bwd_ceiling:.0f}%" if c_b else "-"]
        rows.append(cols)
    if markdown:
        return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                         + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    return "\n".join("  ".join(x.rjust(w) for x, w in zip(r, widths)) for r in [head] + rows)


def roofline(ax, by, layers, t, peak_rec):
    """GFLOP/s against FLOPs per byte moved, under the roofs of peak and bandwidth."""
    peak, bw = peak_rec["gflops"][str(t)], peak_rec.get("bandwidth_gbs", {}).get(str(t))
    pts = [(r, impl) for impl in ("convd", "pytorch", "onednn") for l in layers for p in PASSES
           for r in [by.get((impl, l, p, t))] if r]
    if not pts:
        return
    xs = [r["intensity"] for r, _ in pts]
    lo, hi = min(xs) / 2, max(xs) * 2
    cache_bw = peak_rec.get("cache_bandwidth_gbs", {}).get(str(t))
    grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    ax.axhline(peak, color="black", linewidth=0.6, linestyle=":")
    for roof, what, style in ((bw, "DRAM", "-"), (cache_bw, "4 MiB arrays, in cache", "--")):
        if roof:
            ax.plot(grid, [min(peak, roof * i) for i in grid], color="black", linewidth=1,
                    linestyle=style, label=f"roof: {peak:.0f} GFLOP/s FMA peak, {roof:.0f} GB/s "
                                           f"({what}; ridge {peak / roof:.0f} FLOP/B)")
    style = {"convd": ("o", "tab:green", "convd"), "pytorch": ("^", "tab:orange", "PyTorch"),
             "onednn": ("s", "tab:blue", "oneDNN")}
    for impl, (marker, color, name) in style.items():
        mine = [r for r, i in pts if i == impl]
        ax.scatter([r["intensity"] for r in mine], [r["gflops"] for r in mine], marker=marker,
                   facecolors=color if impl == "convd" else "none", edgecolors=color, s=28,
                   label=name, zorder=3)
    for r, impl in pts:
        if impl == "convd":
            ax.annotate(f"{r['layer']}{'f' if r['pass'] == 'forward' else 'b'}",
                        (r["intensity"], r["gflops"]), fontsize=7, xytext=(3, 2),
                        textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("FLOPs per byte of the tensors a pass must read and write (float32)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(f"roofline, {t} thread{'s' if t > 1 else ''}: layer and pass (f forward, "
                 "b backward)")
    ax.legend(fontsize=7, loc="lower right")


def plot(by, layers, thread_counts, path, engine, peak_rec):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: matplotlib not installed (python3-matplotlib): no plot", file=sys.stderr)
        return False
    labels = [f"{l}\n{'fwd' if p == 'forward' else 'bwd'}" for l in layers for p in PASSES]
    fig, axes = plt.subplots(len(thread_counts) + 1, 1,
                             figsize=(11, 3.6 * len(thread_counts) + 5),
                             gridspec_kw={"height_ratios": [1] * len(thread_counts) + [1.4]},
                             squeeze=False)
    width = 0.38
    for ax, t in zip(axes[:, 0], thread_counts):
        xs = range(len(labels))
        for k, (peer, color) in enumerate((("pytorch", "tab:orange"), ("onednn", "tab:blue"))):
            vals = [speedup(by, peer, l, p, t) or 0 for l in layers for p in PASSES]
            ax.bar([x + (k - 0.5) * width for x in xs], vals, width, color=color,
                   label=f"convd speedup vs {peer}")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.axhline(VS_ONEDNN_MIN, color="tab:blue", linewidth=0.8, linestyle="--",
                   label=f"{VS_ONEDNN_MIN}x (oneDNN target on b, c)")
        ax.set_yscale("log")
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels)
        ax.set_ylabel("peer ms / convd ms")
        ax.set_title(f"{t} thread{'s' if t > 1 else ''} (above 1: convd faster)")
        ax.legend(fontsize=8, loc="upper right")
    roofline(axes[-1, 0], by, layers, max(thread_counts), peak_rec)
    fig.suptitle(f"{engine}; every convd bar with algorithm auto", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", default="build/bench-raw")
    ap.add_argument("--out", default="build")
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--load", nargs=2, default=["?", "?"])
    args = ap.parse_args()

    with open(os.path.join(args.raw, "layers.json")) as f:
        layers = {L["name"]: L for L in json.load(f)}
    peak_rec = read_jsonl(os.path.join(args.raw, "peak.jsonl"))[0]
    records = [r for i in IMPLS + (TORCH_DEFAULT,)
               for r in read_jsonl(os.path.join(args.raw, f"{i}.jsonl"))]
    if any(r.get("impl") == "convd" and r.get("isa") == "avx2" for r in records):
        # BENCH_ISA=avx2: the run is judged against the peak of the ISA it was held to.
        peak_rec = dict(peak_rec, isa="avx2", gflops=peak_rec["avx2_gflops"])
    peak = peak_rec["gflops"]
    rows = build_rows(pooled(records), layers, peak)
    by = index(rows)
    thread_counts = sorted({r["threads"] for r in rows})
    rss = read_jsonl(os.path.join(args.raw, "rss.jsonl"))
    gemm = read_jsonl(os.path.join(args.raw, "gemm.jsonl"))
    checks = read_jsonl(os.path.join(args.raw, "cores.jsonl"))
    checks = {"checks": len(checks), "short_of_cores": sum(not c["whole"] for c in checks)}

    cores = {}
    for r in rows:
        if "core" in r:
            cores.setdefault(r["impl"], r["core"])
    convd_isa = next((r["isa"] for r in rows if r["impl"] == "convd" and "isa" in r), None)
    convd_gemm = next((r["gemm"] for r in rows if r["impl"] == "convd" and "gemm" in r), None)
    dnnl = next((r for r in rows if r["impl"] == "onednn"), {})
    torch_row = next((r for r in rows if r["impl"] == "pytorch"), {})
    missed = misses(by, layers, thread_counts)
    meta = {"commit": args.commit, "load_before": args.load[0], "load_after": args.load[1],
            "warmup": records[0]["warmup"] if records else None,
            "samples_per_cell": min((r["samples"] for r in rows), default=0),
            "peak": peak_rec, "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"),
            "blas_core": cores, "convd_isa": convd_isa, "convd_gemm": convd_gemm,
            "pytorch": {k: torch_row.get(k) for k in ("torch", "capability", "core", "mkldnn")},
            "onednn": {k: dnnl.get(k) for k in ("version", "isa")},
            "rss": rss, "gemm": gemm, "targets_missed": missed, "cores_checks": checks}

    os.makedirs(args.out, exist_ok=True)
    # bench.json holds the three impls the issue names; the default-allocator PyTorch goes to meta.
    meta["pytorch_default_malloc"] = [r for r in rows if r["impl"] == TORCH_DEFAULT]
    with open(os.path.join(args.out, "bench.json"), "w") as f:
        json.dump([r for r in rows if r["impl"] in IMPLS], f, indent=1)
    with open(os.path.join(args.out, "bench-meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    md = table(by, layers, thread_counts, markdown=True)
    if gemm:
        md += "\n\n" + gemm_table(gemm, by, layers, markdown=True)
    with open(os.path.join(args.out, "bench.md"), "w") as f:
        f.write(md + "\n")
    engine = (f"convd kernels: {convd_isa}, GEMM {convd_gemm}; "
              f"OpenBLAS core {cores.get('convd')}; oneDNN isa {meta['onednn']['isa']}")
    plotted = plot(by, layers, thread_counts, os.path.join(args.out, "bench.png"), engine,
                   peak_rec)

    print(f"convd bench, commit {args.commit}; load average {args.load[0]} before, "
          f"{args.load[1]} after; median of {meta['samples_per_cell']} samples per cell")
    print(f"whole cores checked {checks['checks']} times around the timed processes, "
          f"{checks['short_of_cores']} found short (waited for, or timed again)")
    print(f"FMA peak ({peak_rec['isa']}): {peak['1']:.0f} GFLOP/s on 1 thread, {peak['2']:.0f} "
          f"on 2 (AVX2: {peak_rec['avx2_gflops']['1']:.0f} / {peak_rec['avx2_gflops']['2']:.0f})")
    bw, cbw = peak_rec.get("bandwidth_gbs"), peak_rec.get("cache_bandwidth_gbs")
    if bw and cbw:
        print(f"memory bandwidth (STREAM scale): DRAM {bw['1']:.0f} GB/s on 1 thread, "
              f"{bw['2']:.0f} on 2; 4 MiB arrays {cbw['1']:.0f} / {cbw['2']:.0f}")
    print(f"convd kernels (ISA): {convd_isa}; GEMM: {convd_gemm}")
    print(f"BLAS cores: convd {cores.get('convd')} (OPENBLAS_CORETYPE="
          f"{meta['openblas_coretype_env']}), pytorch {meta['pytorch']['core']} "
          f"(ATen {meta['pytorch']['capability']}), oneDNN {meta['onednn']['version']} "
          f"isa {meta['onednn']['isa']}")
    print()
    print(table(by, layers, thread_counts, markdown=False))
    print()
    print("speedups are peer ms / convd ms (above 1: convd faster); onednn ms is the primitive "
          "alone, (+reorder) what an NCHW caller adds;\n(malloc): PyTorch with glibc's default "
          "allocator, paying this VM's first touch of fresh pages on every call (not judged)")
    if gemm:
        print()
        print(f"sgemm alone, 1 thread, {gemm[0].get('impl', 'cblas')}'s GEMM (OpenBLAS core "
              f"{gemm[0]['core']} in brackets), per image and group (M,N,K as core/conv_gemm.c "
              "calls it), and convd's 1-thread passes against that ceiling:")
        print(gemm_table(gemm, by, layers, markdown=False))
        print()
    for r in rss:
        mib = 1 << 20
        print(f"memory: ({r['layer']}) forward + backward, {r['threads']} thread(s): peak RSS "
              f"{r['peak_rss'] / mib:.1f} MiB (before allocating {r['rss_before'] / mib:.1f}), "
              f"budget {r['budget'] / mib:.1f} MiB = tensors {r['tensors'] / mib:.1f} + cap "
              f"{r['cap'] / mib:.0f} + 16; workspace used {r['workspace'] / mib:.1f} MiB: "
              f"{'OK' if r['ok'] else 'OVER BUDGET'}")
    if missed:
        print("targets missed (2 threads):")
        for m in missed:
            print("  " + m)
    else:
        print("all targets of issue 14 met in this run")
    print(f"wrote {args.out}/bench.json, bench-meta.json, bench.md"
          + (", bench.png" if plotted else ""))


if __name__ == "__main__":
    main()
