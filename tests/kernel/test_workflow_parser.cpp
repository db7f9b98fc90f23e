#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "profagent/kernel/workflow_parser.hpp"

using profagent::Json;
using namespace profagent::kernel;

namespace {

ParseOutcome parse(const std::string& yaml, const ParseOptions& options = {}) {
  return parse_workflow_text(yaml, "wf.yaml", options);
}

ParseOutcome parse_with_sets(const std::string& yaml, std::vector<std::pair<std::string, std::string>> sets) {
  ParseOptions options;
  options.sets = std::move(sets);
  return parse(yaml, options);
}

std::string all_diagnostics(const ParseOutcome& outcome) {
  std::string text;
  for (const auto& d : outcome.diagnostics) text += d.to_string() + "\n";
  return text;
}

// The only diagnostic of an outcome, as "file:line:col: message".
std::string only_diagnostic(const ParseOutcome& outcome) {
  INFO(all_diagnostics(outcome));
  REQUIRE(outcome.diagnostics.size() == 1);
  return outcome.diagnostics.front().to_string();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A minimal valid workflow around one stage's `with:` block (the block starts on line 5).
std::string with_block(const std::string& with_lines, const std::string& vars_lines = "") {
  std::string vars = vars_lines.empty() ? "" : "vars:\n" + vars_lines;
  return "version: 1\n" + vars + "stages:\n  - id: s\n    agent: a\n    with:\n" + with_lines;
}

struct EnvVar {  // sets an environment variable for one test
  EnvVar(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~EnvVar() { unsetenv(name_); }
  const char* name_;
};

const char* const kFullWorkflow = R"(version: 1
name: demo
vars:
  budget: 0.01
llm:
  planner: { backend: heuristic, temperature: 0.5 }
stages:
  - id: emit
    agent: emit
    with: { data: { x: 1 } }
  - id: refine
    loop:
      max_iterations: 3
      carry: { value: emit.out }
      next: { value: step.value }
      until: "step.value.value >= 10"
      decide: { agent: judge, with: { stop_after: 2 } }
    stages:
      - id: step
        agent: counter
        inputs: { value: loop.value }
outputs: { final: refine.value }
)";

}  // namespace

TEST_CASE("a complete workflow parses into stages, a loop with its body, bindings and outputs") {
  auto outcome = parse(kFullWorkflow);
  INFO(all_diagnostics(outcome));
  REQUIRE(outcome.ok());
  const Workflow& wf = outcome.workflow;
  CHECK(wf.file == "wf.yaml");
  CHECK(wf.source_text == kFullWorkflow);
  CHECK(wf.version == 1);
  CHECK(wf.name == "demo");
  CHECK(wf.vars["budget"] == Json(0.01));
  CHECK(wf.var_locations.at("budget").to_string() == "wf.yaml:4:11");

  // An `llm:` entry is a resource of interface llm; its provider's config is the entry without `backend`.
  REQUIRE(wf.resources.size() == 1);
  const ResourceSpec& planner = wf.resources[0];
  CHECK(planner.name == "planner");
  CHECK(planner.section == "llm");
  CHECK(planner.interface == "llm");
  CHECK(planner.provider_id == "heuristic");
  CHECK(planner.value.value == Json{{"backend", "heuristic"}, {"temperature", 0.5}});
  CHECK(planner.provider_config().value == Json{{"temperature", 0.5}});
  CHECK(planner.location.to_string() == "wf.yaml:6:3");
  CHECK(planner.provider_config().locate({"temperature"}).to_string() == "wf.yaml:6:47");
  CHECK(wf.find_resource("planner") == &planner);

  REQUIRE(wf.stages.size() == 2);
  const StageSpec& emit = wf.stages[0];
  CHECK(emit.id == "emit");
  CHECK_FALSE(emit.is_loop());
  CHECK(emit.agent == "emit");
  CHECK(emit.location.to_string() == "wf.yaml:8:5");
  CHECK(emit.agent_location.to_string() == "wf.yaml:9:12");
  CHECK(emit.with.value == Json{{"data", {{"x", 1}}}});

  const StageSpec& refine = wf.stages[1];
  REQUIRE(refine.is_loop());
  CHECK(refine.agent.empty());
  const LoopSpec& loop = *refine.loop;
  CHECK(loop.max_iterations == 3);
  REQUIRE(loop.carry.size() == 1);
  CHECK(loop.carry[0].name == "value");
  CHECK(loop.carry[0].ref.text() == "emit.out");
  CHECK(loop.carry[0].location.to_string() == "wf.yaml:14:16");
  CHECK(loop.carry[0].ref.location.to_string() == "wf.yaml:14:23");
  REQUIRE(loop.next.size() == 1);
  CHECK(loop.next[0].ref.stage == "step");
  CHECK(loop.next[0].ref.port == "value");
  REQUIRE(loop.until);
  CHECK(loop.until->text == "step.value.value >= 10");
  CHECK(loop.until->location.to_string() == "wf.yaml:16:15");  // the expression's first character
  REQUIRE(loop.decide);
  CHECK(loop.decide->agent == "judge");
  CHECK(loop.decide->with.value == Json{{"stop_after", 2}});
  CHECK(loop.decide->inputs.empty());
  REQUIRE(loop.stages.size() == 1);
  CHECK(loop.stages[0].inputs[0].ref.text() == "loop.value");

  REQUIRE(wf.outputs.size() == 1);
  CHECK(wf.outputs[0].name == "final");
  CHECK(wf.outputs[0].ref.text() == "refine.value");
}

TEST_CASE("plain scalars are typed and quoted scalars stay strings") {
  auto outcome = parse(with_block(R"(      b: true
      b2: False
      n: ~
      n2: null
      e:
      i: -42
      f: 1e-3
      f2: .5
      f3: 2.0
      s: hello
      qi: "5"
      qb: 'true'
      tagged: !!str 7
      list: [1, "2", x]
)"));
  INFO(all_diagnostics(outcome));
  REQUIRE(outcome.ok());
  const Json& with = outcome.workflow.stages[0].with.value;
  CHECK(with["b"] == Json(true));
  CHECK(with["b2"] == Json(false));
  CHECK(with["n"].is_null());
  CHECK(with["n2"].is_null());
  CHECK(with["e"].is_null());
  CHECK(with["i"] == Json(-42));
  CHECK(with["i"].is_number_integer());
  CHECK(with["f"].is_number_float());
  CHECK(with["f"].get<double>() == doctest::Approx(0.001));
  CHECK(with["f2"].get<double>() == doctest::Approx(0.5));
  CHECK(with["f3"].is_number_float());
  CHECK(with["s"] == Json("hello"));
  CHECK(with["qi"] == Json("5"));
  CHECK(with["qb"] == Json("true"));
  CHECK(with["tagged"] == Json("7"));
  CHECK(with["list"] == Json::array({1, "2", "x"}));
}

TEST_CASE("every node of a with block is located by its JSON pointer, and locate finds the deepest") {
  auto outcome = parse(with_block(R"(      ratio: 0.5
      layers:
        - conv1
        - { name: fc, keep: 3 }
)"));
  REQUIRE(outcome.ok());
  const ConfigBlock& with = outcome.workflow.stages[0].with;
  CHECK(with.locations.at("").to_string() == "wf.yaml:6:7");
  CHECK(with.locations.at("/ratio").to_string() == "wf.yaml:6:14");
  CHECK(with.locations.at("/layers").to_string() == "wf.yaml:8:9");
  CHECK(with.locations.at("/layers/0").to_string() == "wf.yaml:8:11");
  CHECK(with.locations.at("/layers/1/keep").to_string() == "wf.yaml:9:29");
  CHECK(with.locate({"layers", "1", "keep"}).to_string() == "wf.yaml:9:29");
  CHECK(with.locate({"layers", "1", "missing"}).to_string() == "wf.yaml:9:11");
  CHECK(with.locate({"nothing"}).to_string() == "wf.yaml:6:7");
  CHECK(with.locate({}).to_string() == "wf.yaml:6:7");
}

TEST_CASE("a stage without with: has an empty block located at the stage") {
  auto outcome = parse("version: 1\nstages:\n  - id: s\n    agent: a\n");
  REQUIRE(outcome.ok());
  const ConfigBlock& with = outcome.workflow.stages[0].with;
  CHECK(with.value == Json::object());
  CHECK(with.locate({"x"}).to_string() == "wf.yaml:3:5");
}

TEST_CASE("a scalar that is exactly one var reference takes the var's typed value") {
  auto outcome = parse(with_block(R"(      ratio: ${vars.ratio}
      quoted: "${vars.ratio}"
      count: ${vars.count}
      flag: ${vars.flag}
      items: ${vars.items}
      text: "r=${vars.ratio} n=${vars.count} on=${vars.flag}"
)",
                                  "  ratio: 0.25\n  count: 3\n  flag: true\n  items: [a, b]\n"));
  INFO(all_diagnostics(outcome));
  REQUIRE(outcome.ok());
  const Json& with = outcome.workflow.stages[0].with.value;
  CHECK(with["ratio"].is_number_float());
  CHECK(with["ratio"] == Json(0.25));
  CHECK(with["quoted"] == Json(0.25));
  CHECK(with["count"] == Json(3));
  CHECK(with["flag"] == Json(true));
  CHECK(with["items"] == Json::array({"a", "b"}));
  CHECK(with["text"] == Json("r=0.25 n=3 on=true"));
}

TEST_CASE("environment variables interpolate, with a default when unset") {
  EnvVar home("PROFAGENT_TEST_HOME", "/home/me");
  unsetenv("PROFAGENT_TEST_UNSET");
  auto outcome = parse(with_block(R"(      a: ${env:PROFAGENT_TEST_HOME}/models
      b: ${env:PROFAGENT_TEST_UNSET:-fallback}
      c: ${env:PROFAGENT_TEST_HOME:-unused}
)"));
  INFO(all_diagnostics(outcome));
  REQUIRE(outcome.ok());
  const Json& with = outcome.workflow.stages[0].with.value;
  CHECK(with["a"] == Json("/home/me/models"));
  CHECK(with["b"] == Json("fallback"));
  CHECK(with["c"] == Json("/home/me"));
}

TEST_CASE("a missing environment variable without a default is reported at its scalar") {
  unsetenv("PROFAGENT_TEST_UNSET");
  auto outcome = parse(with_block("      key: ${env:PROFAGENT_TEST_UNSET}\n"));
  std::string diagnostic = only_diagnostic(outcome);
  CHECK(contains(diagnostic, "wf.yaml:6:12: environment variable 'PROFAGENT_TEST_UNSET' is not set"));
}

TEST_CASE("run.dir interpolates the run directory, and stays literal by default") {
  const std::string yaml = with_block("      out: ${run.dir}/model.pt\n");
  ParseOptions options;
  options.run_dir = "/runs/42";
  CHECK(parse(yaml, options).workflow.stages[0].with.value["out"] == Json("/runs/42/model.pt"));
  CHECK(parse(yaml).workflow.stages[0].with.value["out"] == Json("${run.dir}/model.pt"));
}

TEST_CASE("a doubled dollar escapes a literal ${") {
  auto outcome = parse(with_block("      text: \"cost $${vars.x} and $$5\"\n"));
  INFO(all_diagnostics(outcome));
  REQUIRE(outcome.ok());
  CHECK(outcome.workflow.stages[0].with.value["text"] == Json("cost ${vars.x} and $$5"));
}

TEST_CASE("vars may use environment variables and other vars, in any order") {
  EnvVar root("PROFAGENT_TEST_ROOT", "/data");
  auto outcome =
      parse(with_block("      path: ${vars.model}\n",
                       "  model: ${vars.dir}/resnet.pt\n  dir: ${env:PROFAGENT_TEST_ROOT}/models\n"));
  INFO(all_diagnostics(outcome));
  REQUIRE(outcome.ok());
  CHECK(outcome.workflow.vars["dir"] == Json("/data/models"));
  CHECK(outcome.workflow.vars["model"] == Json("/data/models/resnet.pt"));
  CHECK(outcome.workflow.stages[0].with.value["path"] == Json("/data/models/resnet.pt"));
}

TEST_CASE("vars that refer to each other in a circle are reported once, naming the cycle") {
  auto outcome = parse(with_block("      x: ${vars.a}\n", "  a: ${vars.b}\n  b: x${vars.a}\n"));
  std::string diagnostic = only_diagnostic(outcome);
  CHECK(diagnostic == "wf.yaml:4:6: vars form a cycle: a -> b -> a");
}

TEST_CASE("an undefined var is reported at the scalar that uses it") {
  auto outcome = parse(with_block("      x: \"n=${vars.nope}\"\n", "  a: 1\n"));
  std::string diagnostic = only_diagnostic(outcome);
  CHECK(diagnostic == "wf.yaml:8:10: undefined var 'nope' in ${vars.nope} (declared: a)");
}

TEST_CASE("an unknown or unterminated interpolation is reported") {
  auto outcome = parse(with_block("      x: ${what}\n      y: \"${vars.a\"\n", "  a: 1\n"));
  INFO(all_diagnostics(outcome));
  REQUIRE(outcome.diagnostics.size() == 2);
  CHECK(contains(outcome.diagnostics[0].to_string(), "wf.yaml:8:10: unknown interpolation '${what}'"));
  CHECK(contains(outcome.diagnostics[1].to_string(), "wf.yaml:9:10: unterminated '${'"));
}

TEST_CASE("--set overrides a var with a value typed like a plain YAML scalar") {
  const std::string vars = "  ratio: 0.5\n  count: 2\n  name: net\n  on: false\n  out: ${vars.name}.pt\n";
  auto outcome = parse_with_sets(with_block("      r: ${vars.ratio}\n      o: ${vars.out}\n", vars),
                                 {{"ratio", "1"}, {"count", "7"}, {"name", "42"}, {"on", "true"}});
  INFO(all_diagnostics(outcome));
  REQUIRE(outcome.ok());
  const Json& v = outcome.workflow.vars;
  CHECK(v["ratio"].is_number_float());  // a float var stays a float when given "1"
  CHECK(v["ratio"] == Json(1.0));
  CHECK(v["count"] == Json(7));
  CHECK(v["name"] == Json("42"));  // a string var takes the text as it is
  CHECK(v["on"] == Json(true));
  CHECK(v["out"] == Json("42.pt"));  // vars that use an overridden var see the override
  CHECK(outcome.workflow.stages[0].with.value["r"].is_number_float());
  CHECK(outcome.workflow.stages[0].with.value["o"] == Json("42.pt"));
}

TEST_CASE("--set with a value of the wrong type names the var, its type and what the value reads as") {
  const std::string vars = "  ratio: 0.5\n  count: 2\n  on: false\n";
  auto float_var = parse_with_sets(with_block("      x: 1\n", vars), {{"ratio", "abc"}});
  CHECK(only_diagnostic(float_var) == "--set: --set ratio=abc: var 'ratio' is a float, 'abc' reads as a string");
  auto int_var = parse_with_sets(with_block("      x: 1\n", vars), {{"count", "2.5"}});
  CHECK(only_diagnostic(int_var) == "--set: --set count=2.5: var 'count' is an int, '2.5' reads as a float");
  auto bool_var = parse_with_sets(with_block("      x: 1\n", vars), {{"on", "yes"}});
  CHECK(only_diagnostic(bool_var) == "--set: --set on=yes: var 'on' is a bool, 'yes' reads as a string");
}

TEST_CASE("--set of an undeclared var is an error listing the declared ones") {
  auto outcome = parse_with_sets(with_block("      x: 1\n", "  a: 1\n  b: 2\n"), {{"x", "3"}});
  CHECK(only_diagnostic(outcome) == "--set: --set x=3: unknown var 'x' (declared: a, b)");
  CHECK(outcome.diagnostics[0].location.file == "--set");
  CHECK(outcome.diagnostics[0].location.line == 0);
}

TEST_CASE("an unknown top-level key is reported at the key, listing the known keys") {
  auto outcome = parse("version: 1\nstagse: []\nstages:\n  - { id: a, agent: b }\n");
  CHECK(only_diagnostic(outcome) ==
        "wf.yaml:2:1: unknown key 'stagse' in the workflow (known keys: version, name, vars, plugin_paths, "
        "resources, llm, stages, outputs)");
}

TEST_CASE("unknown keys in a stage, a loop and a decide block are reported with the known keys") {
  auto outcome = parse(R"(version: 1
stages:
  - id: a
    agnt: x
    agent: emit
  - id: l
    loop: { max_iterations: 2, untill: "x", decide: { agent: j, input: {} } }
    stages: [ { id: b, agent: emit } ]
)");
  INFO(all_diagnostics(outcome));
  REQUIRE(outcome.diagnostics.size() == 3);
  CHECK(outcome.diagnostics[0].to_string() ==
        "wf.yaml:4:5: unknown key 'agnt' in stage 'a' (known keys: id, agent, loop, stages, inputs, with)");
  CHECK(outcome.diagnostics[1].to_string() ==
        "wf.yaml:7:32: unknown key 'untill' in loop 'l' (known keys: max_iterations, carry, next, until, "
        "decide)");
  CHECK(outcome.diagnostics[2].to_string() ==
        "wf.yaml:7:65: unknown key 'input' in loop 'l': decide (known keys: agent, with, inputs)");
}

TEST_CASE("a YAML syntax error becomes one diagnostic at the position yaml-cpp reports") {
  auto outcome = parse("version: 1\nstages:\n  - id: a\n   agent: b\n");
  CHECK(only_diagnostic(outcome) == "wf.yaml:4:4: YAML syntax error: end of sequence not found");
}

TEST_CASE("a missing workflow file is reported with its path and the reason") {
  auto outcome = parse_workflow_file("/nonexistent/dir/wf.yaml", {});
  CHECK(only_diagnostic(outcome) ==
        "/nonexistent/dir/wf.yaml: cannot read workflow file '/nonexistent/dir/wf.yaml': No such file or "
        "directory");
}

TEST_CASE(
    "parse_workflow_file keeps the text and the path, and resolves plugin_paths against the file's dir") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / "profagent_parser_test";
  fs::create_directories(dir);
  const std::string text =
      "version: 1\nplugin_paths: [plugins, /abs/lib.so, ../other]\nstages:\n  - { id: a, agent: b }\n";
  {
    std::ofstream out(dir / "wf.yaml");
    out << text;
  }
  auto outcome = parse_workflow_file((dir / "wf.yaml").string(), {});
  INFO(all_diagnostics(outcome));
  REQUIRE(outcome.ok());
  CHECK(outcome.workflow.file == (dir / "wf.yaml").string());
  CHECK(outcome.workflow.source_text == text);
  REQUIRE(outcome.workflow.plugin_paths.size() == 3);
  CHECK(outcome.workflow.plugin_paths[0] == (dir / "plugins").string());
  CHECK(outcome.workflow.plugin_paths[1] == "/abs/lib.so");
  CHECK(outcome.workflow.plugin_paths[2] == (dir.parent_path() / "other").string());
  fs::remove_all(dir);
}

TEST_CASE("the workflow version must be 1 and stages must be a non-empty list") {
  CHECK(only_diagnostic(parse("stages:\n  - { id: a, agent: b }\n")) ==
        "wf.yaml:1:1: the workflow has no 'version' (add 'version: 1')");
  CHECK(only_diagnostic(parse("version: 2\nstages:\n  - { id: a, agent: b }\n")) ==
        "wf.yaml:1:10: unsupported workflow version 2 (expected 1)");
  CHECK(only_diagnostic(parse("version: 1\n")) == "wf.yaml:1:1: the workflow has no 'stages'");
  CHECK(only_diagnostic(parse("version: 1\nstages: []\n")) ==
        "wf.yaml:2:9: the workflow's 'stages' is empty");
  CHECK(only_diagnostic(parse("")) ==
        "wf.yaml:1:1: the workflow is empty (expected 'version: 1' and 'stages:')");
  CHECK(only_diagnostic(parse("- a\n")) == "wf.yaml:1:1: the workflow must be a mapping");
}

TEST_CASE("a stage needs a valid id and exactly one of agent and loop") {
  auto outcome = parse(R"(version: 1
stages:
  - agent: a
  - id: 9lives
    agent: a
  - id: both
    agent: a
    loop: { max_iterations: 1 }
    stages: [ { id: x, agent: a } ]
  - id: neither
  - id: body
    agent: a
    stages: []
  - id: loop
    agent: a
)");
  INFO(all_diagnostics(outcome));
  REQUIRE(outcome.diagnostics.size() == 6);
  CHECK(outcome.diagnostics[0].to_string() == "wf.yaml:3:5: a stage needs an 'id'");
  CHECK(contains(outcome.diagnostics[1].to_string(), "wf.yaml:4:9: invalid stage id '9lives'"));
  CHECK(outcome.diagnostics[2].to_string() ==
        "wf.yaml:8:5: stage 'both' has both 'agent' and 'loop'; give one");
  CHECK(outcome.diagnostics[3].to_string() ==
        "wf.yaml:10:5: stage 'neither' needs 'agent' (or 'loop' with 'stages')");
  CHECK(outcome.diagnostics[4].to_string() ==
        "wf.yaml:13:5: stage 'body': 'stages' is only allowed in a loop stage");
  CHECK(contains(outcome.diagnostics[5].to_string(), "wf.yaml:14:9: 'loop' is reserved"));
}

TEST_CASE("a loop needs max_iterations >= 1 and a body") {
  auto outcome = parse(R"(version: 1
stages:
  - id: l
    loop: { carry: {} }
  - id: m
    loop: { max_iterations: 0 }
    stages: [ { id: x, agent: a } ]
)");
  INFO(all_diagnostics(outcome));
  REQUIRE(outcome.diagnostics.size() == 3);
  CHECK(outcome.diagnostics[0].to_string() == "wf.yaml:4:5: stage 'l' needs 'stages' (the loop body)");
  CHECK(outcome.diagnostics[1].to_string() == "wf.yaml:4:11: loop 'l' needs 'max_iterations'");
  CHECK(outcome.diagnostics[2].to_string() ==
        "wf.yaml:6:29: loop 'm': max_iterations must be an integer >= 1, got 0");
}

TEST_CASE("max_iterations may come from a var") {
  auto outcome = parse(
      "version: 1\nvars: { n: 4 }\nstages:\n  - id: l\n    loop: { max_iterations: \"${vars.n}\" }\n"
      "    stages: [ { id: x, agent: a } ]\n");
  INFO(all_diagnostics(outcome));
  REQUIRE(outcome.ok());
  CHECK(outcome.workflow.stages[0].loop->max_iterations == 4);
}

TEST_CASE("a reference must be exactly stage.port") {
  auto outcome = parse(R"(version: 1
stages:
  - id: a
    agent: x
    inputs: { p: nodot, q: a.b.c, r: a.b }
outputs: { o: "" }
)");
  INFO(all_diagnostics(outcome));
  REQUIRE(outcome.diagnostics.size() == 3);
  CHECK(outcome.diagnostics[0].to_string() ==
        "wf.yaml:5:18: stage 'a': inputs.p: 'nodot' is not a reference (expected 'stage.port')");
  CHECK(outcome.diagnostics[1].to_string() ==
        "wf.yaml:5:28: stage 'a': inputs.q: 'a.b.c' is not a reference (expected 'stage.port')");
  CHECK(outcome.diagnostics[2].to_string() ==
        "wf.yaml:6:15: outputs.o: '' is not a reference (expected 'stage.port')");
}

TEST_CASE("a duplicate key in a mapping names the first one's line") {
  auto outcome = parse("version: 1\nstages:\n  - id: a\n    agent: x\n    with:\n      k: 1\n      k: 2\n");
  CHECK(only_diagnostic(outcome) == "wf.yaml:7:7: duplicate key 'k' in a mapping (first at line 6)");
}

TEST_CASE("an llm backend needs a backend id; the rest is its config") {
  auto outcome = parse("version: 1\nllm:\n  gpt: { model: gpt-4o }\nstages:\n  - { id: a, agent: b }\n");
  CHECK(only_diagnostic(outcome) == "wf.yaml:3:3: llm 'gpt' needs 'backend' (the id of an llm provider)");
}

// A workflow with one resource (lines 3-9) and one stage using it (the stage's with: on line 13).
std::string with_resource(const std::string& with_line, const std::string& extra_resources = "") {
  return "version: 1\nresources:\n  test_set:\n    provider: dataset\n    format: idx\n"
         "    images: \"${vars.data}/images.gz\"\n    channels: \"${vars.channels}\"\n"
         "    mean: [0.5]\n" +
         extra_resources + "vars: { data: /d, channels: 1 }\nstages:\n  - id: s\n    agent: a\n" + with_line;
}

TEST_CASE(
    "a with value that is exactly a resource reference becomes the resource's config, located at the "
    "resource") {
  auto outcome = parse(with_resource("    with: { dataset: \"${resources.test_set}\", limit: 5 }\n"));
  INFO(all_diagnostics(outcome));
  REQUIRE(outcome.ok());
  const Workflow& wf = outcome.workflow;
  REQUIRE(wf.resources.size() == 1);
  const ResourceSpec& resource = wf.resources[0];
  CHECK(resource.name == "test_set");
  CHECK(resource.section == "resources");
  CHECK(resource.interface == "dataset");
  CHECK(resource.provider_id == "idx");
  CHECK(resource.location.to_string() == "wf.yaml:3:3");
  // Without `provider:`; vars interpolated with their types.
  const Json expected = {{"format", "idx"}, {"images", "/d/images.gz"}, {"channels", 1}, {"mean", {0.5}}};
  CHECK(resource.value.value == expected);
  CHECK(resource.provider_config().value ==
        Json{{"images", "/d/images.gz"}, {"channels", 1}, {"mean", {0.5}}});

  const ConfigBlock& with = wf.stages[0].with;
  CHECK(with.value == Json{{"dataset", expected}, {"limit", 5}});
  // The reference keeps its own location; the substituted nodes keep the resource's.
  CHECK(with.locate({"dataset"}).to_string() == "wf.yaml:13:22");
  CHECK(with.locate({"dataset", "images"}).to_string() == "wf.yaml:6:13");
  CHECK(with.locate({"dataset", "mean", "0"}).to_string() == "wf.yaml:8:12");
  CHECK(with.locate({"limit"}).to_string() == "wf.yaml:13:54");
  REQUIRE(with.resources.size() == 1);
  CHECK(with.resources.at("/dataset").name == "test_set");
  CHECK(with.resources.at("/dataset").location.to_string() == "wf.yaml:13:22");
}

TEST_CASE("a resource may be used by several stages and inside lists and nested maps of a with block") {
  auto outcome = parse(with_resource(
      "    with: { sets: [\"${resources.test_set}\"], eval: { data: \"${resources.test_set}\" } }\n"
      "  - { id: t, agent: a, with: { dataset: \"${resources.test_set}\" } }\n"));
  INFO(all_diagnostics(outcome));
  REQUIRE(outcome.ok());
  const auto& stages = outcome.workflow.stages;
  const Json& config = outcome.workflow.resources[0].value.value;
  CHECK(stages[0].with.value["sets"][0] == config);
  CHECK(stages[0].with.value["eval"]["data"] == config);
  CHECK(stages[0].with.locate({"sets", "0", "format"}).to_string() == "wf.yaml:5:13");
  CHECK(stages[0].with.resources.count("/sets/0") == 1);
  CHECK(stages[0].with.resources.count("/eval/data") == 1);
  CHECK(stages[1].with.value["dataset"] == config);
}

TEST_CASE("an unknown resource name is reported at the reference with a did you mean suggestion") {
  auto outcome = parse(with_resource("    with: { dataset: \"${resources.test_sett}\" }\n"));
  CHECK(only_diagnostic(outcome) ==
        "wf.yaml:13:22: unknown resource 'test_sett' in ${resources.test_sett} (did you mean 'test_set'?)");
  auto none = parse(with_block("      dataset: \"${resources.data}\"\n"));
  CHECK(
      only_diagnostic(none) ==
      "wf.yaml:6:16: unknown resource 'data' in ${resources.data} (no resources are declared; add one under "
      "'resources:')");
}

TEST_CASE("a resource reference inside a larger string is an error at the string") {
  auto outcome = parse(with_resource("    with: { path: \"at ${resources.test_set}\" }\n"));
  CHECK(only_diagnostic(outcome) ==
        "wf.yaml:13:19: '${resources.test_set}' inside a larger string ('at ${resources.test_set}'): a "
        "resource "
        "is a config map, so it can only be a whole value, \"${resources.test_set}\"");
}

TEST_CASE("a resource reference outside a with block is an error at the reference") {
  auto in_var = parse(
      "version: 1\nvars: { d: \"${resources.x}\" }\nresources:\n  x: { provider: dataset, "
      "format: idx }\nstages:\n  - { id: a, agent: b }\n");
  CHECK(only_diagnostic(in_var) ==
        "wf.yaml:2:12: '${resources.x}' can only be used as a whole value inside a stage's (or decide's) "
        "'with:', not here");
  auto in_resource = parse(
      with_resource("    with: {}\n", "  other: { provider: dataset, format: \"${resources.test_set}\" }\n"));
  CHECK(only_diagnostic(in_resource) ==
        "wf.yaml:9:39: '${resources.test_set}' can only be used as a whole value inside a stage's (or "
        "decide's) "
        "'with:', not here");
}

TEST_CASE("a name declared under both resources and llm is reported at the later one") {
  auto outcome = parse(
      "version: 1\nllm:\n  planner: { backend: heuristic }\nresources:\n  planner: { provider: llm, backend: "
      "x }\n"
      "stages:\n  - { id: a, agent: b }\n");
  CHECK(only_diagnostic(outcome) ==
        "wf.yaml:5:3: duplicate resource name 'planner' under 'resources:' (also declared under 'llm:' at "
        "line 3; "
        "llm: entries are resources too)");
  auto reversed = parse(
      "version: 1\nresources:\n  planner: { provider: llm, backend: x }\nllm:\n  planner: { backend: "
      "heuristic }\n"
      "stages:\n  - { id: a, agent: b }\n");
  CHECK(only_diagnostic(reversed) ==
        "wf.yaml:5:3: duplicate resource name 'planner' under 'llm:' (also declared under 'resources:' at "
        "line 3; "
        "llm: entries are resources too)");
}

TEST_CASE("a resource needs a provider interface and the id its interface names it by") {
  auto no_provider =
      parse("version: 1\nresources:\n  d: { format: idx }\nstages:\n  - { id: a, agent: b }\n");
  CHECK(only_diagnostic(no_provider) ==
        "wf.yaml:3:3: resource 'd' needs 'provider' (the interface it is a config for: dataset, llm, ...)");
  auto no_format =
      parse("version: 1\nresources:\n  d: { provider: dataset }\nstages:\n  - { id: a, agent: b }\n");
  CHECK(only_diagnostic(no_format) ==
        "wf.yaml:3:3: resource 'd' needs 'format' (the id of a dataset provider)");
  auto no_backend =
      parse("version: 1\nresources:\n  p: { provider: llm }\nstages:\n  - { id: a, agent: b }\n");
  CHECK(only_diagnostic(no_backend) ==
        "wf.yaml:3:3: resource 'p' needs 'backend' (the id of an llm provider)");
  auto other = parse(
      "version: 1\nresources:\n  c: { provider: importance, id: [l1] }\nstages:\n  - { id: a, agent: b }\n");
  CHECK(only_diagnostic(other) ==
        "wf.yaml:3:34: resource 'c': id must be the id of an importance provider, got [\"l1\"]");
  auto not_map = parse("version: 1\nresources:\n  d: idx\nstages:\n  - { id: a, agent: b }\n");
  CHECK(only_diagnostic(not_map) == "wf.yaml:3:6: resource 'd' must be a mapping");
}

TEST_CASE("the id of a resource's provider may come from a var") {
  auto outcome = parse(
      "version: 1\nvars: { fmt: idx }\nresources:\n  d: { provider: dataset, format: "
      "\"${vars.fmt}\" }\nstages:\n  - { id: a, agent: b }\n");
  INFO(all_diagnostics(outcome));
  REQUIRE(outcome.ok());
  CHECK(outcome.workflow.resources[0].provider_id == "idx");
}

TEST_CASE("an until expression in single quotes or plain is located at its first character") {
  const std::string head = "version: 1\nstages:\n  - id: l\n    loop:\n      max_iterations: 2\n";
  const std::string body = "    stages: [ { id: x, agent: a } ]\n";
  auto plain = parse(head + "      until: x.y == 1\n" + body);
  REQUIRE(plain.ok());
  CHECK(plain.workflow.stages[0].loop->until->location.to_string() == "wf.yaml:6:14");
  auto quoted = parse(head + "      until: 'x.y == 1'\n" + body);
  REQUIRE(quoted.ok());
  CHECK(quoted.workflow.stages[0].loop->until->location.to_string() == "wf.yaml:6:15");
}

TEST_CASE("all problems are reported together, in file order") {
  auto outcome = parse(R"(version: 1
stages:
  - id: a
    agent: x
    with: { p: "${vars.missing}" }
  - id: b
    bogus: 1
    agent: y
extra: true
)");
  INFO(all_diagnostics(outcome));
  REQUIRE(outcome.diagnostics.size() == 3);
  CHECK(outcome.diagnostics[0].location.line == 5);
  CHECK(outcome.diagnostics[1].location.line == 7);
  CHECK(outcome.diagnostics[2].location.line == 9);
}
