"""The check behind each profile's `cpu_fast`: one profile run twice, in fp32 and with the fast CPU path, side by side.

    python benchmarks/fast_vs_fp32.py people_world short_long honesty mask_dpo compression_consistency
    python benchmarks/fast_vs_fp32.py people_world --profile cpu --out benchmarks/results/fast_vs_fp32.json

Each experiment runs at the profile twice, unpublished and forced (no earlier run is reused): with the notebook
parameter `cpu_fast=false` (plain fp32 training, bit for bit what the profile published before it turned the
switch on) and `cpu_fast=true` (bf16 autocast, fused AdamW and a compiled forward: `train.cpu_fast_switches`).
The order alternates between experiments so that a drift in the machine's speed does not favour one side.

A profile may set `cpu_fast: true` only where the fast run
- gives every claim the fp32 run's verdict, and
- puts every metric that has a CI inside the fp32 run's CI.
Metrics without a CI (losses, throughput) are listed with their relative change. The record holds both runs'
wall times, the CPU's model name and the commit, so the speed-up is read from one machine in one session.
"""
import argparse, json, subprocess, time
from pathlib import Path

from factlab.workbook.runs.batch import run_experiment
from bench_train import cpu_model


def compare(fp32:dict, fast:dict) -> dict:
    "Verdicts and metrics of the fast run against the fp32 run of the same profile."
    verdicts = {c: (fp32["claims"][c]["verdict"], fast["claims"].get(c, {}).get("verdict")) for c in fp32["claims"]}
    outside, moved = {}, {}
    for k, m in fp32["metrics"].items():
        if k not in fast["metrics"] or m["value"] is None: continue
        v = fast["metrics"][k]["value"]
        if m.get("ci"):
            lo, hi = m["ci"]
            if v is None or not lo <= v <= hi: outside[k] = dict(fp32=m["value"], ci=m["ci"], fast=v)
        elif m["value"] and v is not None: moved[k] = (v - m["value"]) / abs(m["value"])
    changed = {c: v for c, v in verdicts.items() if v[0] != v[1]}
    return dict(verdicts_changed=changed, outside_ci=outside, relative_change_no_ci=moved,
                n_claims=len(verdicts), n_metrics_with_ci=sum(bool(m.get("ci")) for m in fp32["metrics"].values()),
                keeps_verdicts=not changed and not outside)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiments", nargs="+")
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--out", default="benchmarks/results/fast_vs_fp32.json")
    a = ap.parse_args()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True).stdout.strip())
    rows = {}
    for i, exp in enumerate(a.experiments):
        records = {}
        for fast in ([False, True] if i % 2 == 0 else [True, False]):
            t0 = time.perf_counter()
            r = run_experiment(exp, a.profile, {"cpu_fast": fast}, force=True, publish=False)
            if r["status"] != "ok": raise SystemExit(f"{exp} cpu_fast={fast}: {r['status']} ({r.get('error')})")
            records[fast] = r | {"wall_s": time.perf_counter() - t0}
        c = compare(records[False], records[True])
        rows[exp] = dict(fp32_s=records[False]["wall_s"], fast_s=records[True]["wall_s"],
                         speedup=records[False]["wall_s"] / records[True]["wall_s"], **c)
        print(f"{exp:<26} fp32 {rows[exp]['fp32_s']:6.0f} s  fast {rows[exp]['fast_s']:6.0f} s  ({rows[exp]['speedup']:.2f}x)  "
              f"verdicts changed {len(c['verdicts_changed'])}/{c['n_claims']}  outside CI {len(c['outside_ci'])}/{c['n_metrics_with_ci']}  "
              f"-> {'fast keeps the verdicts' if c['keeps_verdicts'] else 'keep fp32'}", flush=True)
    out = dict(profile=a.profile, cpu=cpu_model(), commit=commit, dirty=dirty, experiments=rows)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__": main()
