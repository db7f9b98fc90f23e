#!/usr/bin/env python3
"""Runs every `profagent-run ...` command line the documentation shows, and fails naming the file:line
of each one that does not do what the documentation says.

    check_documented_commands.py SOURCE_DIR BUILD_DIR [--list] [--validate-only] [--only FILE[:LINE]]

Where commands are found (SOURCES below): README.md, docs/*.md, tests/fixtures/models/README.md, the
comments of workflows/*.yaml, and examples/**/ (README, workflow.yaml and CMakeLists.txt comments).
bench/results/ is not read: those are dated records of what was run then, not instructions.

What counts as a command:
  - a line that starts with `profagent-run` or `build/bin/profagent-run` (also after `$ ` or
    `... && `) inside a fenced code block of a Markdown file, or in a `#` comment of a YAML or
    CMake file; lines ending in `\\` continue on the next line;
  - a `profagent-run ...` span on one line, in backticks or in parentheses, in prose or comments.
A trailing `# comment` is not part of the command; a comment that starts with `exit N` declares the
exit code the documentation promises (default 0): `--validate --set criterion=geometric_medain  # exit 2`.

How each command is run:
  - from a throw-away copy of the source tree (so `runs/` and files the commands make never land in
    the source tree), through bash (so quotes, `$PWD` and `\\` work as a reader's shell does), with
    `profagent-run` on PATH and `build/bin/profagent-run` in the copy, both the build tree's binary;
  - placeholders of the documentation (`WF.yaml`, `AGENT`, `path/to/your_model.pt`, an out-of-tree
    plugin's `build/plugins`...) are replaced as listed in REPLACEMENTS; commands for an out-of-tree
    plugin run in that example's directory, with the plugin the out_of_tree CTest tests built;
  - for real, in document order (so `--resume runs/try1` finds the run the line before made), unless
    the command matches VALIDATE_ONLY (minutes or hours of work: torchvision models, training,
    fine-tuning, full test sets); those get `--validate` appended. A real run gets APPEND_WHEN_RUN's
    flags (fewer test images) where its workflow would otherwise take a minute. Commands that are already
    `--validate`, `--plan`, `--list-plugins`, `--describe` or `--resume` run as written.
A real run must exit as documented within TIMEOUT_S; a validated one must exit 0 (or as documented).
"""
import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SOURCES = ["README.md", "docs/*.md", "tests/fixtures/models/README.md", "workflows/*.yaml",
           "examples/**/README*", "examples/**/*.yaml", "examples/**/CMakeLists.txt"]

# Commands that take minutes or more: checked with --validate only (the reason is printed).
VALIDATE_ONLY = [
    (r"torchvision:", "exports a torchvision model with Python, then runs it at 224x224 (minutes)"),
    (r"train_fmnist\.yaml", "trains a model for epochs (an hour)"),
    (r"evaluate_fixtures\.yaml", "evaluates two models on the full test set"),
    (r"prune_recover\.yaml", "fine-tunes the pruned model for an epoch"),
]

# Flags appended to a real run to keep it to seconds without changing what it exercises: prune.yaml
# evaluates the full 10,000-image test set twice (35-70 s a run on a 2-core machine); 1,000 images go
# through the same code. The documented flags come first, so a command's own --set still shows.
APPEND_WHEN_RUN = [
    (r"workflows/prune\.yaml", "--set limit=1000 --set repeats=5"),
    (r"workflows/analyze\.yaml", "--set limit=1000 --set repeats=5"),
]

TIMEOUT_S = 300

# (files, text as documented, replacement): placeholders, and paths that exist only in the reader's
# own setup. {greeting_plugins}, {rules_plugins}, {tutorial_plugins}: the out-of-tree examples'
# plugins as the out_of_tree CTest tests build them; {fixture_plugins}: a plugin directory of ours.
REPLACEMENTS = [
    ("README.md", "WF.yaml", "workflows/demo.yaml"),
    ("README.md", "[--set k=v]...", "--set model=examples/models/demo_cnn.pt"),
    ("README.md", "[--output-dir D]", "--output-dir runs/readme"),
    ("README.md", "[--plugin-path P]...", "--plugin-path {fixture_plugins}"),
    ("README.md", "[--log-level L]", "--log-level debug"),
    ("README.md", "--resume D", "--resume runs/readme"),  # the run the synopsis' first line made
    ("*.md", "--describe AGENT", "--describe acquisition"),
    ("docs/workflows.md", "wf.yaml", "workflows/demo.yaml"),
    ("docs/workflows.md", "model=resnet.pt", "model=tests/fixtures/models/resnet_fmnist.pt"),
    ("*", "path/to/your_model.pt", "examples/models/demo_cnn.pt"),
    ("docs/plugins.md", "tutorial/build/plugins", "{tutorial_plugins}"),
    ("examples/tutorial_plugin/*", "<tutorial build>/plugins", "{tutorial_plugins}"),
    ("examples/tutorial_plugin/*", "<this build>/plugins", "{tutorial_plugins}"),
    ("docs/plugins.md", "build/plugins", "{greeting_plugins}"),
    ("examples/out_of_tree_plugin/*", "build/plugins", "{greeting_plugins}"),
    ("examples/op_rules_plugin/*", "build/plugins", "{rules_plugins}"),
]

# The out-of-tree plugins, as tests/out_of_tree/{build_and_run,tutorial}.sh build them; a command that
# needs one runs in its example's directory (where its workflow.yaml and model are).
OUT_OF_TREE = {
    "greeting_plugins": ("tests/out_of_tree/work/example-build/plugins", "examples/out_of_tree_plugin"),
    "rules_plugins": ("tests/out_of_tree/work/rules-build/plugins", "examples/op_rules_plugin"),
    "tutorial_plugins": ("tests/out_of_tree/tutorial-work/build/plugins", "."),
}
# Files an out-of-tree example's documented commands expect beside them, made by its documented
# non-profagent steps (`python3 make_model.py --output shrink_net.pt`), taken from the out_of_tree run.
OUT_OF_TREE_FILES = {"rules_plugins": [("tests/out_of_tree/work/shrink_net.pt", "shrink_net.pt")]}

COMMAND_START = re.compile(r"^(?:\$\s+)?((?:build/bin/)?profagent-run(?:\s|$).*)")
SPAN = re.compile(r"`((?:build/bin/)?profagent-run\s[^`]+)`|\(((?:build/bin/)?profagent-run\s[^()]+)\)")
RUN_AS_WRITTEN = ("--validate", "--plan", "--list-plugins", "--describe", "--resume")


@dataclass
class Command:
    file: str
    line: int
    text: str              # as documented, continuation lines joined, trailing comment removed
    expected_exit: int = 0
    run: str = ""          # the command line actually run
    cwd: str = "."
    mode: str = ""         # "run" or "validate"
    reason: str = ""       # why validate only
    needs: list = field(default_factory=list)  # OUT_OF_TREE keys


def split_comment(line):
    """(code, comment) of a shell line: the first '#' after whitespace, outside quotes."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1:]
    return line.rstrip(), ""


def expected_exit(comments):
    """The N of the first of a command's comments (one per line) that starts with `exit N`; else 0."""
    for comment in comments:
        match = re.match(r"\s*exit (\d+)\b", comment)
        if match:
            return int(match.group(1))
    return 0


def markdown_candidates(text):
    """Yields (line number, text, in_code) of a Markdown file."""
    in_fence = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        yield number, line, in_fence


def comment_candidates(text):
    """Yields (line number, comment text, True) of the full-line `#` comments of a YAML/CMake file."""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip()
        if stripped.startswith("#"):
            yield number, stripped[1:], True
        else:
            yield number, None, False


def extract(relative, text):
    commands = []
    candidates = list(markdown_candidates(text) if relative.endswith(".md") or "README" in relative
                      else comment_candidates(text))
    index = 0
    while index < len(candidates):
        number, line, is_code = candidates[index]
        index += 1
        if line is None:
            continue
        start = None
        if is_code:
            for segment in line.strip().split("&&"):
                match = COMMAND_START.match(segment.strip())
                if match:
                    start = match.group(1)
        if start is not None:
            code, comment = split_comment(start)
            comments = [comment]
            while code.endswith("\\") and index < len(candidates) and candidates[index][1] is not None:
                more, comment = split_comment(candidates[index][1].strip())
                comments.append(comment)
                code = code[:-1].rstrip() + " " + more
                index += 1
            commands.append(Command(relative, number, code.strip(), expected_exit(comments)))
            continue
        for match in SPAN.finditer(line):
            commands.append(Command(relative, number, (match.group(1) or match.group(2)).strip()))
    return commands


def matches(relative, pattern):
    return fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(relative, pattern.replace("**/", ""))


def collect(source):
    files = []
    for pattern in SOURCES:
        for path in sorted(source.glob(pattern)):
            relative = path.relative_to(source).as_posix()
            if path.is_file() and relative not in files:
                files.append(relative)
    commands = []
    for relative in files:
        commands.extend(extract(relative, (source / relative).read_text(encoding="utf-8")))
    return commands


def plan(command, build):
    text = command.text
    for pattern, old, new in REPLACEMENTS:
        if matches(command.file, pattern):
            text = text.replace(old, new)
    for key, (plugins, cwd) in OUT_OF_TREE.items():
        if "{" + key + "}" in text:
            command.needs.append(key)
            command.cwd = cwd
            text = text.replace("{" + key + "}", str(build / plugins))
    text = text.replace("{fixture_plugins}", str(build / "tests/fixture_plugins/good_minimal"))
    if text.startswith("build/bin/"):
        text = text[len("build/bin/"):]
    words = text.split()
    if any(flag in words for flag in RUN_AS_WRITTEN):
        command.mode = "run"
    else:
        for pattern, reason in VALIDATE_ONLY:
            if re.search(pattern, text):
                command.mode, command.reason = "validate", reason
                break
        else:
            command.mode = "run"
    if command.mode == "validate":
        text += " --validate"
    elif not any(flag in words for flag in RUN_AS_WRITTEN):
        for pattern, extra in APPEND_WHEN_RUN:
            if re.search(pattern, text):
                text += " " + extra
    command.run = text


def copy_tree(source, destination):
    ignore = shutil.ignore_patterns(".git", "build", "build-*", "runs", "__pycache__")
    shutil.copytree(source, destination, ignore=ignore, symlinks=True)


def tail(text, lines=25):
    return "\n".join(text.rstrip().splitlines()[-lines:])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("build", type=Path)
    parser.add_argument("--list", action="store_true", help="print the commands and how each would run")
    parser.add_argument("--validate-only", action="store_true", help="--validate every command that can be")
    parser.add_argument("--only", help="FILE or FILE:LINE: check only those commands")
    args = parser.parse_args()
    source, build = args.source.resolve(), args.build.resolve()
    binary = build / "bin" / "profagent-run"

    commands = collect(source)
    # The documentation shows some 40 command lines; far fewer means the extraction broke.
    if len(commands) < 30:
        print(f"only {len(commands)} documented commands found: the extraction is broken", file=sys.stderr)
        return 1
    for command in commands:
        plan(command, build)
        if args.validate_only and command.mode == "run" and not any(f in command.run.split() for f in RUN_AS_WRITTEN):
            command.mode, command.run = "validate", command.run + " --validate"
    if args.only:
        commands = [c for c in commands if f"{c.file}:{c.line}" == args.only or c.file == args.only]
    if args.list:
        for c in commands:
            note = f"  [validate only: {c.reason}]" if c.reason else ""
            print(f"{c.file}:{c.line}: {c.mode} (in {c.cwd}, exit {c.expected_exit}): {c.run}{note}")
        return 0
    if not binary.is_file():
        print(f"{binary} is missing: build the runtime first", file=sys.stderr)
        return 1

    failures = []
    with tempfile.TemporaryDirectory(prefix="profagent-doc-commands-") as temp:
        temp = Path(temp)
        copy = temp / "repo"
        copy_tree(source, copy)
        (copy / "build" / "bin").mkdir(parents=True)
        (copy / "build" / "bin" / "profagent-run").symlink_to(binary)
        (temp / "bin").mkdir()
        (temp / "bin" / "profagent-run").symlink_to(binary)
        env = dict(os.environ, PATH=f"{temp / 'bin'}:{os.environ.get('PATH', '')}")
        env.pop("PROFAGENT_PLUGIN_PATH", None)  # only what the command line says
        for command in commands:
            where = f"{command.file}:{command.line}"
            if args.validate_only and "--resume" in command.run.split():
                print(f"skip   {where}: {command.run} (--validate-only: no run made to resume)")
                continue
            missing = [OUT_OF_TREE[k][0] for k in command.needs if not (build / OUT_OF_TREE[k][0]).is_dir()]
            if missing:
                failures.append(f"{where}: `{command.text}` needs {', '.join(missing)} under {build} "
                                "(built by the out_of_tree CTest tests: run them first)")
                continue
            cwd = copy / command.cwd
            for key in command.needs:
                for made, name in OUT_OF_TREE_FILES.get(key, []):
                    if not (cwd / name).exists():
                        shutil.copy(build / made, cwd / name)
            started = time.monotonic()
            try:
                result = subprocess.run(["bash", "-c", command.run], cwd=cwd, env=env, capture_output=True,
                                        text=True, timeout=TIMEOUT_S)
                code, output = result.returncode, result.stdout + result.stderr
            except subprocess.TimeoutExpired as e:
                code, output = None, f"timed out after {TIMEOUT_S} s\n{e.stderr or ''}"
            seconds = time.monotonic() - started
            status = "ok" if code == command.expected_exit else "FAILED"
            print(f"{status:6} {seconds:6.1f} s  {where}: {command.mode}: {command.run}", flush=True)
            if code != command.expected_exit:
                failures.append(f"{where}: `{command.text}`\n  ran as (in {command.cwd}): {command.run}\n"
                                f"  exited {code}, the documentation says {command.expected_exit}:\n"
                                + "\n".join("    " + l for l in tail(output).splitlines()))
    print(f"{len(commands)} documented commands, {len(failures)} failed")
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
