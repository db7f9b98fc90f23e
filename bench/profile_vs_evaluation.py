"""The profiler's latency vs the evaluation's, original and pruned, in one run (issue 10 item 7).

    /usr/bin/python3 bench/profile_vs_evaluation.py [--build build] [--model torchvision:resnet18] [--ratio 0.3]

Runs bench/profile_vs_evaluation.yaml once (one process: evaluate and profile the original, then the
pruned copy) and prints both figures per model, their ratio (acceptance: within 10%) and whether the
pruned model is the faster one under the profiler. Exits 1 when either does not hold.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--model", default="torchvision:resnet18")
    parser.add_argument("--ratio", default="0.3")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="profile-vs-eval-") as out:
        run = os.path.join(out, "run")
        command = [os.path.join(args.build, "bin/profagent-run"), os.path.join(ROOT, "bench/profile_vs_evaluation.yaml"),
                   "--set", "model=" + args.model, "--set", "ratio=" + args.ratio, "--output-dir", run]
        done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            sys.exit("%s failed (exit %d):\n%s" % (" ".join(command), done.returncode, done.stderr[-3000:]))
        read = lambda name: json.load(open(os.path.join(run, "outputs", name, "data.json")))
        rows = {}
        for which in ("original", "pruned"):
            profile, metrics = read("profile_" + which), read("evaluate_" + which)
            rows[which] = (profile["total"]["latency_ms"], metrics["latency_ms"]["p50"], profile["total"]["macs"],
                           profile["dynamic"].get("bare_forward_page_faults"))
    ok = True
    print("%s, ratio %s, OMP_NUM_THREADS=%s" % (args.model, args.ratio, os.environ.get("OMP_NUM_THREADS", "unset")))
    print("| model | MACs | profiler ms | evaluation p50 ms | profiler / evaluation | page faults per bare forward |")
    print("|---|---:|---:|---:|---:|---:|")
    for which, (profiled, evaluated, macs, faults) in rows.items():
        ratio = profiled / evaluated
        ok &= abs(ratio - 1) <= 0.10
        print("| %s | %.3f G | %.3f | %.3f | %.3f | %s |" % (which, macs / 1e9, profiled, evaluated, ratio, faults))
    faster = rows["pruned"][0] < rows["original"][0]
    ok &= faster
    print("pruned below the original under the profiler: %s" % ("yes" if faster else "NO"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
