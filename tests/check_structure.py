#!/usr/bin/env python3
"""Checks the structure rules of docs/architecture.md on the real build:

1. no agent links another agent's library (agents/<a>/ targets never depend on agents/<b>/ targets,
   directly or through other targets);
2. the kernel (profagent_kernel, profagent-run) and the SDK contract (profagent_sdk) do not link
   LibTorch, neither in the CMake link graph nor in the ELF files built (NEEDED entries).

Usage: check_structure.py SOURCE_DIR BUILD_DIR. The link graph comes from `cmake --graphviz` on a
fresh configure in a temporary directory (the build directory is left alone). Exits 1 naming every
violation.
"""
import os
import re
import subprocess
import sys
import tempfile

TORCH = re.compile(r"^(torch|torch_library|torch_cpu|torch_cuda|c10|c10_cuda|caffe2::.*|profagent_torch|"
                   r"profagent_profile|profagent_prune)$")
TORCH_SO = re.compile(r"lib(torch|c10|profagent_torch|profagent_profile|profagent_prune)")


def link_graph(source, tmp):
    dot = os.path.join(tmp, "deps.dot")
    subprocess.run(["cmake", "-S", source, "-B", os.path.join(tmp, "configure"), "--graphviz=" + dot,
                    "-DPROFAGENT_BUILD_TESTS=OFF", "-DPROFAGENT_BUILD_BENCH=OFF"],
                   check=True, stdout=subprocess.DEVNULL)
    names, edges = {}, {}
    with open(dot) as f:
        for line in f:
            node = re.match(r'\s*"(node\d+)" \[ label = "([^"]+)"', line)
            if node:
                names[node.group(1)] = node.group(2).split("\\n")[0]
                continue
            edge = re.match(r'\s*"(node\d+)" -> "(node\d+)"', line)
            if edge:
                edges.setdefault(edge.group(1), set()).add(edge.group(2))
    graph = {}
    for node, name in names.items():
        graph.setdefault(name, set()).update(names[d] for d in edges.get(node, ()))
    return graph


def closure(graph, target):
    seen, todo = set(), [target]
    while todo:
        for dep in graph.get(todo.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def agent_targets(source, graph):
    """agents/<name>/ -> the targets defined there: the plugin <name> and profagent_<name>_lib."""
    owned = {}
    for name in sorted(os.listdir(os.path.join(source, "agents"))):
        if os.path.isfile(os.path.join(source, "agents", name, "CMakeLists.txt")):
            owned[name] = {t for t in (name, "profagent_%s_lib" % name) if t in graph}
    return owned


def needed(path):
    out = subprocess.run(["readelf", "-d", path], check=True, capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def main():
    source, build = sys.argv[1], sys.argv[2]
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        graph = link_graph(source, tmp)
    owned = agent_targets(source, graph)
    if len(owned) < 2 or not all(owned.values()):
        problems.append("could not find the agents' targets in the link graph: %s" % owned)
    owner_of = {t: agent for agent, targets in owned.items() for t in targets}
    for agent, targets in owned.items():
        for target in sorted(targets):
            for dep in sorted(closure(graph, target)):
                if dep in owner_of and owner_of[dep] != agent:
                    problems.append("agent '%s': %s links %s, a library of agent '%s'"
                                    % (agent, target, dep, owner_of[dep]))
    for target in ("profagent_sdk", "profagent_kernel", "profagent-run"):
        if target not in graph:
            problems.append("target %s not in the link graph" % target)
        for dep in sorted(closure(graph, target)):
            if TORCH.match(dep):
                problems.append("%s links %s (the kernel and the SDK contract must not link LibTorch)" % (target, dep))
    for path in (os.path.join(build, "bin", "profagent-run"), os.path.join(build, "lib", "libprofagent_sdk.so")):
        if not os.path.exists(path):
            problems.append("%s was not built" % path)
            continue
        for lib in needed(path):
            if TORCH_SO.search(lib):
                problems.append("%s needs %s at run time" % (path, lib))
    for problem in problems:
        print("structure: " + problem)
    if problems:
        return 1
    print("structure: %d agents, none links another's library; kernel and SDK contract free of LibTorch"
          % len(owned))
    return 0


if __name__ == "__main__":
    sys.exit(main())
