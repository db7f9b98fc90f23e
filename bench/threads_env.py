"""Does `threads: 1` mean one thread without OMP_NUM_THREADS? (issue 10, item 1)

    /usr/bin/python3 bench/threads_env.py [--build build] [--rounds 3] [--repeats 20] [--skip-torchvision]

Runs workflows/profile.yaml (the profiler agent, `threads: 1`) on the fixture ResNet and on
torchvision's resnet50, once with OMP_NUM_THREADS unset and once with OMP_NUM_THREADS=1, alternating
in every round (OpenMP and OpenBLAS read the variable when the process starts, so each run is a
child process). Prints, per model, every round's bare-forward p50 of both variants, their medians, the
ratio unset / set (acceptance: within 10%, i.e. 0.90-1.10) and the thread pools the profile's
`environment` recorded. Exits 1 when a ratio is outside 0.90-1.10 or a run fails.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 0.10


def profile_once(run, model, repeats, omp):
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    env.pop("OPENBLAS_NUM_THREADS", None)
    if omp is not None:
        env["OMP_NUM_THREADS"] = omp
    with tempfile.TemporaryDirectory(prefix="threads-env-") as out:
        command = [run, os.path.join(ROOT, "workflows/profile.yaml"), "--set", "model=" + model,
                   "--set", "threads=1", "--set", "repeats=%d" % repeats, "--output-dir", os.path.join(out, "run")]
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            sys.exit("%s failed (exit %d):\n%s" % (" ".join(command), done.returncode, done.stderr[-2000:]))
        with open(os.path.join(out, "run/outputs/profile/data.json")) as f:
            profile = json.load(f)
    return profile["total"]["latency_ms"], profile["environment"]["thread_pools"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-torchvision", action="store_true")
    args = parser.parse_args()
    run = os.path.join(args.build, "bin/profagent-run")
    models = [("fixture ResNet", "tests/fixtures/models/resnet_fmnist.pt")]
    if not args.skip_torchvision:
        models.append(("resnet50", "torchvision:resnet50"))

    print("threads: 1 in workflows/profile.yaml; %d rounds, repeats %d; bare-forward p50 ms (profile total.latency_ms)"
          % (args.rounds, args.repeats))
    failed = False
    for label, model in models:
        unset, set_one, pools = [], [], {}
        for _ in range(args.rounds):
            # Alternating, so drift in the machine's load hits both variants alike.
            ms, pools["unset"] = profile_once(run, model, args.repeats, None)
            unset.append(ms)
            ms, pools["OMP_NUM_THREADS=1"] = profile_once(run, model, args.repeats, "1")
            set_one.append(ms)
        ratio = statistics.median(unset) / statistics.median(set_one)
        ok = abs(ratio - 1.0) <= TOLERANCE
        failed |= not ok
        print("\n%s (%s)" % (label, model))
        print("  OMP_NUM_THREADS unset: %s  median %.3f ms" % (" ".join("%.3f" % v for v in unset), statistics.median(unset)))
        print("  OMP_NUM_THREADS=1    : %s  median %.3f ms" % (" ".join("%.3f" % v for v in set_one), statistics.median(set_one)))
        print("  ratio unset / set: %.3f (goal within %.2f of 1) %s" % (ratio, TOLERANCE, "ok" if ok else "FAILS"))
        for variant, recorded in pools.items():
            print("  environment.thread_pools (%s): %s" % (variant, json.dumps(recorded, sort_keys=True)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
