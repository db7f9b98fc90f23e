#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "profagent/kernel/validator.hpp"
#include "profagent/kernel/workflow_parser.hpp"

using namespace profagent;
using namespace profagent::kernel;

namespace {

PortSpec port(std::string name, std::string kind, bool optional = false) {
  PortSpec spec;
  spec.name = std::move(name);
  spec.kind = std::move(kind);
  spec.optional = optional;
  return spec;
}

// A factory that only declares its interface: the validator never runs agents.
AgentFactory agent(std::string id, std::vector<PortSpec> inputs, std::vector<PortSpec> outputs) {
  AgentFactory factory;
  factory.id = std::move(id);
  factory.role = "test";
  factory.inputs = std::move(inputs);
  factory.outputs = std::move(outputs);
  factory.make = [](const Config&) -> Result<std::unique_ptr<Agent>> {
    return Status(ErrorCode::kUnsupported, "not runnable in validator tests");
  };
  return factory;
}

// The same interfaces as the test_agents fixture plugin.
const Registry& registry() {
  static const Registry instance = [] {
    std::vector<AgentFactory> agents;
    auto emit = agent("emit", {}, {port("out", kinds::kJson)});
    emit.config.add("data", ConfigType::kMap).default_value(Json::object());
    agents.push_back(emit);
    auto metrics = agent("emit_metrics", {}, {port("metrics", kinds::kMetrics)});
    metrics.config.add("accuracy", ConfigType::kFloat).required().range(0, 1);
    metrics.config.add("latency_ms", ConfigType::kFloat).default_value(1.0).min(0);
    agents.push_back(metrics);
    auto counter = agent("counter", {port("value", kinds::kJson, true)}, {port("value", kinds::kJson)});
    counter.config.add("step", ConfigType::kInt).default_value(1).range(-1000, 1000);
    counter.config.add("delay", ConfigType::kDuration).default_value("0s");
    agents.push_back(counter);
    agents.push_back(
        agent("add", {port("a", kinds::kJson), port("b", kinds::kJson)}, {port("sum", kinds::kJson)}));
    auto record = agent("record", {port("in", kinds::kAny, true)}, {port("out", kinds::kJson)});
    record.config.add("file", ConfigType::kPath).required();
    agents.push_back(record);
    auto judge = agent("judge", {port("history", kinds::kHistory)}, {port("decision", kinds::kDecision)});
    judge.config.add("stop_after", ConfigType::kInt).default_value(2).min(1);
    judge.config.add("select", ConfigType::kEnum).choices({"last", "best"}).default_value("last");
    agents.push_back(judge);
    agents.push_back(agent("take_plan", {port("plan", kinds::kPlan)}, {port("out", kinds::kJson)}));
    // As in the test_agents fixture plugin: agents that name providers in their config.
    auto ask = agent("ask", {}, {port("out", kinds::kJson)});
    ask.config.add("backend", ConfigType::kString).default_value("heuristic").names_provider("llm");
    ask.config.add("backend_config", ConfigType::kMap).default_value(Json::object()).configures_provider("backend");
    agents.push_back(ask);
    auto read_data = agent("read_data", {}, {port("out", kinds::kJson)});
    read_data.config.add("data", ConfigType::kMap).required().names_provider("dataset");
    agents.push_back(read_data);

    ProviderFactory heuristic;
    heuristic.id = "heuristic";
    heuristic.interface = "llm";
    heuristic.config.add("temperature", ConfigType::kFloat).range(0, 2);
    heuristic.make = [](const Config&) -> Result<std::unique_ptr<Provider>> {
      return Status(ErrorCode::kUnsupported, "not runnable in validator tests");
    };

    ProviderFactory fake;  // as in the test_agents fixture plugin
    fake.id = "fake";
    fake.interface = "dataset";
    fake.config.add("path", ConfigType::kPath).required();
    fake.config.add("size", ConfigType::kInt).default_value(10).min(1);
    fake.config.add("token", ConfigType::kString).secret();
    fake.make = heuristic.make;

    Registry r;
    PluginRecord record_info;
    record_info.path = "libtest_agents.so";
    record_info.id = "test_agents";
    Status added = r.add_plugin(record_info, agents, {heuristic, fake});
    if (!added.is_ok()) throw StatusError(added);
    return r;
  }();
  return instance;
}

Workflow parsed(const std::string& yaml) {
  auto outcome = parse_workflow_text(yaml, "wf.yaml", {});
  std::string text;
  for (const auto& d : outcome.diagnostics) text += d.to_string() + "\n";
  INFO(text);
  REQUIRE(outcome.ok());
  return outcome.workflow;
}

std::vector<std::string> validate(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& d : validate_workflow(parsed(yaml), registry())) out.push_back(d.to_string());
  return out;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += line + "\n";
  return text;
}

// The only diagnostic of a workflow.
std::string only(const std::string& yaml) {
  auto diagnostics = validate(yaml);
  INFO(joined(diagnostics));
  REQUIRE(diagnostics.size() == 1);
  return diagnostics.front();
}

const char* const kValidLoop = R"(version: 1
llm:
  planner: { backend: heuristic, temperature: 0.2 }
stages:
  - id: start
    agent: counter
    with: { step: 0 }
  - id: refine
    loop:
      max_iterations: 5
      carry: { value: start.value }
      next: { value: step.value }
      until: "step.value.value >= 10 or loop.iteration >= 4"
      decide: { agent: judge, with: { stop_after: 3, select: best } }
    stages:
      - id: step
        agent: counter
        inputs: { value: loop.value }
        with: { step: 2, delay: 10ms }
      - id: total
        agent: add
        inputs: { a: step.value, b: start.value }
      - id: log
        agent: record
        inputs: { in: loop.history }
        with: { file: "${run.dir}/log.txt" }
  - id: judge_again
    agent: judge
    inputs: { history: refine.history }
outputs: { final: refine.value, history: refine.history }
)";

}  // namespace

TEST_CASE("a valid workflow with a loop, decide, until and outputs has no diagnostics") {
  CHECK(joined(validate(kValidLoop)).empty());
}

TEST_CASE("a duplicate stage id is reported at the second one, naming the first's line, loops included") {
  auto diagnostics = validate(R"(version: 1
stages:
  - id: a
    agent: emit
  - id: l
    loop: { max_iterations: 1 }
    stages:
      - id: a
        agent: emit
)");
  REQUIRE(diagnostics.size() == 1);
  CHECK(diagnostics[0] == "wf.yaml:8:9: duplicate stage id 'a' (first defined at line 3)");
}

TEST_CASE("an unknown agent is reported with close matches, or the loaded agents") {
  CHECK(only("version: 1\nstages:\n  - { id: a, agent: emitt }\n") ==
        "wf.yaml:3:21: stage 'a': unknown agent 'emitt' (did you mean 'emit'?)");
  CHECK(only("version: 1\nstages:\n  - { id: a, agent: zzzzzzzz }\n") ==
        "wf.yaml:3:21: stage 'a': unknown agent 'zzzzzzzz' (loaded agents: add, ask, counter, emit, emit_metrics, "
        "judge, read_data, record, take_plan)");
}

TEST_CASE("with: is checked against the agent's config schema, at the offending node") {
  const std::string head = "version: 1\nstages:\n  - id: m\n    agent: emit_metrics\n";
  CHECK(only(head + "    with: { accuracy: 1.5 }\n") ==
        "wf.yaml:5:23: stage 'm': with.accuracy: 1.5 is above the maximum 1");
  CHECK(only(head + "    with: { accuracy: high }\n") ==
        "wf.yaml:5:23: stage 'm': with.accuracy: expected a number, got \"high\"");
  CHECK(only(head + "    with:\n      accuracy: 0.5\n      acuracy: 0.5\n") ==
        "wf.yaml:7:16: stage 'm': with.acuracy: unknown key 'acuracy' (known: accuracy, latency_ms); did you "
        "mean 'accuracy'?");
  CHECK(only(head + "    with: { latency_ms: 2 }\n") ==
        "wf.yaml:5:11: stage 'm': with.accuracy: missing required key");
  CHECK(only(head) == "wf.yaml:3:5: stage 'm': with.accuracy: missing required key");
}

TEST_CASE("an input port the agent does not have is reported with the agent's inputs") {
  CHECK(only("version: 1\nstages:\n  - { id: e, agent: emit }\n  - { id: c, agent: counter, inputs: { valu: "
             "e.out } }\n") ==
        "wf.yaml:4:40: stage 'c': unknown input 'valu' (inputs of agent 'counter': value)");
}

TEST_CASE("a required input that is not connected is reported at the stage") {
  CHECK(only("version: 1\nstages:\n  - { id: e, agent: emit }\n  - { id: s, agent: add, inputs: { a: e.out } "
             "}\n") == "wf.yaml:4:5: stage 's': required input 'b' (json) is not connected");
}

TEST_CASE("a reference to no stage is reported with close matches") {
  CHECK(only("version: 1\nstages:\n  - { id: emit1, agent: emit }\n  - { id: c, agent: counter, inputs: { "
             "value: emit2.out } }\n") ==
        "wf.yaml:4:47: stage 'c': input 'value': 'emit2.out' refers to no stage 'emit2' (did you mean "
        "'emit1'?)");
}

TEST_CASE("a reference to a port the stage does not output lists its outputs") {
  CHECK(only("version: 1\nstages:\n  - { id: e, agent: emit }\n  - { id: c, agent: counter, inputs: { value: "
             "e.output } }\n") ==
        "wf.yaml:4:47: stage 'c': input 'value': stage 'e' has no output 'output' (outputs of agent 'emit': "
        "out)");
}

TEST_CASE("an artifact kind mismatch names the input, both kinds and the reference") {
  CHECK(only("version: 1\nstages:\n  - { id: emit, agent: emit }\n  - { id: prune, agent: take_plan, inputs: "
             "{ plan: emit.out } }\n") ==
        "wf.yaml:4:52: input 'plan' of stage 'prune' expects 'plan', but 'emit.out' is 'json'");
}

TEST_CASE("an input of kind any accepts every kind") {
  CHECK(validate("version: 1\nstages:\n  - { id: m, agent: emit_metrics, with: { accuracy: 1 } }\n"
                 "  - { id: r, agent: record, inputs: { in: m.metrics }, with: { file: x } }\n")
            .empty());
}

TEST_CASE("a cycle outside loops is reported once with its path") {
  CHECK(only(R"(version: 1
stages:
  - { id: a, agent: counter, inputs: { value: b.value } }
  - { id: b, agent: counter, inputs: { value: a.value } }
)") == "wf.yaml:3:5: cycle: a -> b -> a (stages outside a loop cannot depend on each other in a circle)");
  CHECK(only("version: 1\nstages:\n  - { id: a, agent: counter, inputs: { value: a.value } }\n") ==
        "wf.yaml:3:5: cycle: a -> a (stages outside a loop cannot depend on each other in a circle)");
}

TEST_CASE("a cycle through a loop stage's body is a cycle too") {
  auto diagnostics = validate(R"(version: 1
stages:
  - { id: a, agent: counter, inputs: { value: l.value } }
  - id: l
    loop: { max_iterations: 2, carry: { value: a.value } }
    stages:
      - { id: b, agent: counter, inputs: { value: loop.value } }
)");
  INFO(joined(diagnostics));
  REQUIRE(diagnostics.size() == 1);
  CHECK(diagnostics[0].find("wf.yaml:3:5: cycle: a -> l -> a") == 0);
}

TEST_CASE("a stage outside a loop cannot read a stage inside its body") {
  CHECK(only(R"(version: 1
stages:
  - id: l
    loop: { max_iterations: 2 }
    stages:
      - { id: inner, agent: emit }
  - { id: c, agent: counter, inputs: { value: inner.out } }
)") == "wf.yaml:7:47: stage 'c': input 'value': 'inner.out': stage 'inner' is inside a loop body that is not "
       "visible from here (outside a loop, read the loop's outputs: <loop>.<carry> or <loop>.history)");
}

TEST_CASE("loop outputs are the carries (with their initial kind) and the history") {
  auto diagnostics = validate(R"(version: 1
stages:
  - { id: m, agent: emit_metrics, with: { accuracy: 0.5 } }
  - id: l
    loop: { max_iterations: 2, carry: { best: m.metrics } }
    stages:
      - { id: inner, agent: emit }
  - { id: c, agent: counter, inputs: { value: l.best } }
  - { id: j, agent: judge, inputs: { history: l.history } }
  - { id: d, agent: counter, inputs: { value: l.nothing } }
)");
  INFO(joined(diagnostics));
  REQUIRE(diagnostics.size() == 2);
  CHECK(diagnostics[0] ==
        "wf.yaml:8:47: input 'value' of stage 'c' expects 'json', but 'l.best' is 'metrics'");
  CHECK(diagnostics[1] ==
        "wf.yaml:10:47: stage 'd': input 'value': loop 'l' has no output 'nothing' (outputs: best, history)");
}

TEST_CASE("inside a body, loop.<carry>, loop.history and loop.iteration resolve, other loop names do not") {
  auto diagnostics = validate(R"(version: 1
stages:
  - { id: e, agent: emit }
  - id: l
    loop: { max_iterations: 2, carry: { v: e.out } }
    stages:
      - { id: a, agent: counter, inputs: { value: loop.v } }
      - { id: b, agent: counter, inputs: { value: loop.iteration } }
      - { id: c, agent: judge, inputs: { history: loop.history } }
      - { id: d, agent: counter, inputs: { value: loop.w } }
      - { id: f, agent: counter, inputs: { value: l.v } }
  - { id: g, agent: counter, inputs: { value: loop.v } }
)");
  INFO(joined(diagnostics));
  REQUIRE(diagnostics.size() == 3);
  CHECK(diagnostics[0] ==
        "wf.yaml:10:51: stage 'd': input 'value': 'loop.w': loop 'l' has no carry 'w' "
        "(available: loop.v, loop.history, loop.iteration)");
  CHECK(diagnostics[1] ==
        "wf.yaml:11:51: stage 'f': input 'value': a stage inside loop 'l' cannot read 'l.v'; use 'loop.v'");
  CHECK(diagnostics[2] ==
        "wf.yaml:12:47: stage 'g': input 'value': 'loop.v': 'loop.' references are only valid inside a loop "
        "body");
}

TEST_CASE("carry references resolve outside the body") {
  CHECK(only(R"(version: 1
stages:
  - id: l
    loop: { max_iterations: 2, carry: { v: a.out } }
    stages:
      - { id: a, agent: emit }
)") == "wf.yaml:4:44: loop 'l': carry 'v': 'a.out': stage 'a' is inside a loop body that is not visible from "
       "here "
       "(outside a loop, read the loop's outputs: <loop>.<carry> or <loop>.history)");
}

TEST_CASE("each next must name a carry, with a compatible kind") {
  const std::string yaml = R"(version: 1
stages:
  - { id: e, agent: emit }
  - id: l
    loop:
      max_iterations: 2
      carry: { v: e.out }
      next: { w: a.value, v: m.metrics }
    stages:
      - { id: a, agent: counter, inputs: { value: loop.v } }
      - { id: m, agent: emit_metrics, with: { accuracy: 1 } }
)";
  auto diagnostics = validate(yaml);
  INFO(joined(diagnostics));
  REQUIRE(diagnostics.size() == 2);
  CHECK(diagnostics[0] == "wf.yaml:8:15: loop 'l': next 'w' is not a carry (carry: v)");
  CHECK(diagnostics[1] ==
        "wf.yaml:8:30: loop 'l': next 'v' is 'metrics' ('m.metrics'), but carry 'v' is 'json'");
}

TEST_CASE("an until expression must parse; the error points into the expression") {
  const std::string head = "version: 1\nstages:\n  - id: l\n    loop:\n      max_iterations: 2\n";
  const std::string body = "    stages:\n      - { id: a, agent: counter }\n";
  CHECK(only(head + "      until: \"a.value.value >= \"\n" + body) ==
        "wf.yaml:6:32: loop 'l': until: expected a value (number, string, true, false, null, stage.port or "
        "'('), "
        "got end of expression");
  CHECK(only(head + "      until: a.value.value = 3\n" + body) ==
        "wf.yaml:6:28: loop 'l': until: expected '==', got '='");
}

TEST_CASE("until references resolve in the body's scope") {
  CHECK(only("version: 1\nstages:\n  - id: l\n    loop:\n      max_iterations: 2\n"
             "      until: \"loop.iteration > 1 and b.value.value > 2\"\n"
             "    stages:\n      - { id: a, agent: counter }\n") ==
        "wf.yaml:6:38: loop 'l': until: 'b.value' refers to no stage 'b'");
}

TEST_CASE("a decide agent must output a decision; its inputs default to the loop history") {
  const std::string head = "version: 1\nstages:\n  - id: l\n    loop:\n      max_iterations: 2\n";
  const std::string body = "    stages:\n      - { id: a, agent: counter }\n";
  CHECK(validate(head + "      decide: { agent: judge }\n" + body).empty());
  CHECK(
      only(head + "      decide: { agent: counter }\n" + body) ==
      "wf.yaml:6:24: loop 'l': decide agent 'counter' has no output 'decision' of kind 'decision' (outputs: "
      "value)");
  CHECK(only(head + "      decide: { agent: jduge }\n" + body) ==
        "wf.yaml:6:24: loop 'l': decide: unknown agent 'jduge' (did you mean 'judge'?)");
  CHECK(only(head + "      decide: { agent: judge, with: { select: worst } }\n" + body) ==
        "wf.yaml:6:47: loop 'l': decide: with.select: \"worst\" is not one of: last, best");
  CHECK(
      only(head + "      decide: { agent: judge, inputs: { history: a.value } }\n" + body) ==
      "wf.yaml:6:50: input 'history' of decide agent 'judge' of loop 'l' expects 'history', but 'a.value' is "
      "'json'");
}

TEST_CASE("llm backends must name a loaded llm provider and match its config schema") {
  CHECK(only("version: 1\nllm:\n  p: { backend: heuristc }\nstages:\n  - { id: e, agent: emit }\n") ==
        "wf.yaml:3:3: llm 'p': unknown backend 'heuristc' (did you mean 'heuristic'?)");
  CHECK(only("version: 1\nllm:\n  p: { backend: heuristic, temperature: 3 }\nstages:\n  - { id: e, agent: "
             "emit }\n") == "wf.yaml:3:41: llm 'p'.temperature: 3 is above the maximum 2");
}

// Resources of the `fake` dataset provider (path required, size >= 1, token secret), used by stages.
const char* const kResources = R"(version: 1
resources:
  train:
    provider: dataset
    format: fake
    path: /data/train
    size: 0
  test: { provider: dataset, format: fake, path: /data/test, token: "s3cret" }
  planner: { provider: llm, backend: heuristic, temperature: 0.5 }
stages:
  - { id: e, agent: emit, with: { data: "${resources.test}" } }
)";

TEST_CASE("a resource is checked against its provider's config schema at the resource's own lines") {
  // `size: 0` is below the fake provider's minimum: reported at line 7, where the resource says it.
  CHECK(only(kResources) == "wf.yaml:7:11: resource 'train'.size: 0 is below the minimum 1");
}

TEST_CASE("a valid workflow with resources has no diagnostics and its stages get the resolved configs") {
  std::string yaml = kResources;
  yaml.replace(yaml.find("size: 0"), 7, "size: 3");
  Workflow wf = parsed(yaml);
  CHECK(validate_workflow(wf, registry()).empty());
  const ResourceSpec* test = wf.find_resource("test");
  REQUIRE(test);
  // What --plan and resolved.json show: defaults filled in by the provider, the secret redacted.
  CHECK(redacted_resource(*test, registry()) ==
        Json{{"format", "fake"}, {"path", "/data/test"}, {"size", 10}, {"token", "***"}});
  const AgentFactory* emit = registry().find_agent("emit");
  CHECK(redacted_with(wf.stages[0].with, emit, wf, registry()) ==
        Json{{"data", {{"format", "fake"}, {"path", "/data/test"}, {"size", 10}, {"token", "***"}}}});
  CHECK(wf.stages[0].with.value["data"]["token"] == "s3cret");  // what the agent gets
}

TEST_CASE("a resource whose provider id names no loaded provider is reported with a suggestion") {
  CHECK(
      only("version: 1\nresources:\n  d: { provider: dataset, format: fak, path: x }\nstages:\n  - { id: e, "
           "agent: emit }\n") ==
      "wf.yaml:3:3: resource 'd': unknown dataset provider 'fak' (did you mean 'fake'?)");
  CHECK(
      only("version: 1\nresources:\n  d: { provider: dataset, format: zzz, path: x }\nstages:\n  - { id: e, "
           "agent: emit }\n") ==
      "wf.yaml:3:3: resource 'd': unknown dataset provider 'zzz' (dataset providers: fake)");
  CHECK(only("version: 1\nresources:\n  d: { provider: datset, id: fake }\nstages:\n  - { id: e, agent: emit "
             "}\n") ==
        "wf.yaml:3:3: resource 'd': no provider of interface 'datset' is loaded (did you mean 'dataset'?)");
  CHECK(
      only("version: 1\nresources:\n  p: { provider: llm, backend: heuristc }\nstages:\n  - { id: e, agent: "
           "emit }\n") ==
      "wf.yaml:3:3: resource 'p': unknown llm provider 'heuristc' (did you mean 'heuristic'?)");
}

TEST_CASE("a resource used where the config schema expects another type is reported at the reference") {
  CHECK(only("version: 1\nresources:\n  d: { provider: dataset, format: fake, path: x }\nstages:\n  - id: c\n"
             "    agent: counter\n    with: { step: \"${resources.d}\" }\n") ==
        "wf.yaml:7:19: stage 'c': with.step: resource 'd' is a 'dataset' config (a map), which this key does "
        "not "
        "take (expected an integer)");
}

TEST_CASE("llm entries and llm resources are one namespace of named providers") {
  // Both sections validate the same way; `llm:` keeps its own wording.
  auto diagnostics = validate(
      "version: 1\nllm:\n  a: { backend: heuristic, temperature: 9 }\nresources:\n"
      "  b: { provider: llm, backend: heuristic, temperature: 9 }\nstages:\n  - { id: e, "
      "agent: emit }\n");
  INFO(joined(diagnostics));
  REQUIRE(diagnostics.size() == 2);
  CHECK(diagnostics[0] == "wf.yaml:3:41: llm 'a'.temperature: 9 is above the maximum 2");
  CHECK(diagnostics[1] == "wf.yaml:5:56: resource 'b'.temperature: 9 is above the maximum 2");
}

TEST_CASE("workflow outputs must resolve at the top level") {
  CHECK(only("version: 1\nstages:\n  - { id: e, agent: emit }\noutputs: { x: e.nope }\n") ==
        "wf.yaml:4:15: outputs: x: stage 'e' has no output 'nope' (outputs of agent 'emit': out)");
}

TEST_CASE("all problems of a workflow are reported, in file order") {
  auto diagnostics = validate(R"(version: 1
stages:
  - { id: a, agent: nope }
  - { id: b, agent: counter, inputs: { value: zz.out }, with: { step: 5000 } }
  - { id: b, agent: emit }
)");
  INFO(joined(diagnostics));
  REQUIRE(diagnostics.size() == 4);
  CHECK(diagnostics[0].find("wf.yaml:3:21: stage 'a': unknown agent 'nope'") == 0);
  CHECK(diagnostics[1].find("wf.yaml:4:47: stage 'b': input 'value': 'zz.out' refers to no stage 'zz'") == 0);
  CHECK(diagnostics[2] == "wf.yaml:4:71: stage 'b': with.step: 5000 is above the maximum 1000");
  CHECK(diagnostics[3] == "wf.yaml:5:5: duplicate stage id 'b' (first defined at line 4)");
}

TEST_CASE("topological order follows references and keeps file order among independent stages") {
  Workflow wf = parsed(R"(version: 1
stages:
  - { id: sum, agent: add, inputs: { a: x.value, b: y.value } }
  - { id: x, agent: counter }
  - { id: late, agent: counter, inputs: { value: sum.sum } }
  - { id: y, agent: counter }
  - { id: free, agent: emit }
)");
  REQUIRE(validate_workflow(wf, registry()).empty());
  std::vector<std::string> ids;
  for (const StageSpec* stage : topological_order(wf.stages)) ids.push_back(stage->id);
  CHECK(ids == std::vector<std::string>{"x", "y", "sum", "late", "free"});
}

TEST_CASE("a loop stage comes after what its carry and its body read from outside") {
  Workflow wf = parsed(R"(version: 1
stages:
  - id: l
    loop: { max_iterations: 2, carry: { v: first.value } }
    stages:
      - { id: inner, agent: add, inputs: { a: loop.v, b: second.value } }
      - { id: before, agent: counter }
      - { id: after, agent: counter, inputs: { value: inner.sum } }
  - { id: first, agent: counter }
  - { id: second, agent: counter }
  - { id: reads_loop, agent: counter, inputs: { value: l.v } }
)");
  auto diagnostics = validate_workflow(wf, registry());
  REQUIRE(diagnostics.empty());
  std::vector<std::string> top;
  for (const StageSpec* stage : topological_order(wf.stages)) top.push_back(stage->id);
  CHECK(top == std::vector<std::string>{"first", "second", "l", "reads_loop"});
  std::vector<std::string> body;
  for (const StageSpec* stage : topological_order(wf.stages[0].loop->stages)) body.push_back(stage->id);
  CHECK(body == std::vector<std::string>{"inner", "before", "after"});
}

#ifdef PROFAGENT_TEST_FIXTURES_DIR
// The CLI test runs `profagent-run --validate` on the same files; this keeps the fixtures honest
// without a build of the executable.
TEST_CASE("every invalid workflow fixture reports the diagnostic its first line expects") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(PROFAGENT_TEST_FIXTURES_DIR) / "workflows" / "invalid";
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  REQUIRE(files.size() >= 16);
  for (const auto& file : files) {
    std::ifstream in(file);
    std::string first;
    std::getline(in, first);
    const std::string marker = "# expect: ";
    INFO(file.string());
    REQUIRE(first.rfind(marker, 0) == 0);
    auto outcome = parse_workflow_file(file.string(), {});
    auto diagnostics = outcome.ok() ? validate_workflow(outcome.workflow, registry()) : outcome.diagnostics;
    std::string text;
    for (const auto& d : diagnostics) text += d.to_string() + "\n";
    INFO(text);
    CHECK(diagnostics.size() == 1);
    CHECK(text.find(file.string() + ":" + first.substr(marker.size())) != std::string::npos);
  }
}
#endif

TEST_CASE("a provider an agent names in its config must be loaded, with close matches when it is not") {
  CHECK(only("version: 1\nstages:\n  - { id: q, agent: ask, with: { backend: heuristik } }\n") ==
        "wf.yaml:3:43: stage 'q': with.backend: unknown backend 'heuristik' (did you mean 'heuristic'?)");
  CHECK(only("version: 1\nstages:\n  - { id: q, agent: read_data, with: { data: { format: fak, path: x } } }\n") ==
        "wf.yaml:3:56: stage 'q': with.data.format: unknown dataset provider 'fak' (did you mean 'fake'?)");
  CHECK(only("version: 1\nstages:\n  - { id: q, agent: read_data, with: { data: { path: x } } }\n") ==
        "wf.yaml:3:46: stage 'q': with.data: needs 'format', a string naming the dataset provider (fake)");
  CHECK(joined(validate("version: 1\nstages:\n  - { id: q, agent: ask, with: { backend: heuristic } }\n")).empty());
}

TEST_CASE("a provider's config given in an agent's config is checked against the provider's schema") {
  CHECK(only("version: 1\nstages:\n  - id: q\n    agent: ask\n    with:\n      backend_config: { temprature: 1 }\n") ==
        "wf.yaml:6:37: stage 'q': with.backend_config.temprature (backend 'heuristic'): unknown key 'temprature' "
        "(known: temperature); did you mean 'temperature'?");
  CHECK(only("version: 1\nstages:\n  - id: q\n    agent: read_data\n    with:\n      data: { format: fake, size: 0, "
             "path: x }\n") ==
        "wf.yaml:6:35: stage 'q': with.data.size (dataset provider 'fake'): 0 is below the minimum 1");
  CHECK(only("version: 1\nstages:\n  - id: q\n    agent: read_data\n    with:\n      data: { format: fake }\n") ==
        "wf.yaml:6:13: stage 'q': with.data.path (dataset provider 'fake'): missing required key");
}

TEST_CASE("an agent may name a resource of the provider's interface, which carries its provider and config") {
  const std::string head = "version: 1\nllm:\n  planner: { backend: heuristic, temperature: 0.5 }\nstages:\n";
  CHECK(joined(validate(head + "  - { id: q, agent: ask, with: { backend: planner, backend_config: { temperature: 1 } } }\n"))
            .empty());
  CHECK(only(head + "  - { id: q, agent: ask, with: { backend: planer } }\n") ==
        "wf.yaml:5:43: stage 'q': with.backend: unknown backend 'planer' (did you mean 'planner'?)");
  // The agent's keys over the resource's: a bad value is the agent's, at the agent's line.
  CHECK(only(head + "  - id: q\n    agent: ask\n    with: { backend: planner, backend_config: { temperature: 5 } }\n") ==
        "wf.yaml:7:62: stage 'q': with.backend_config.temperature (backend 'heuristic' of resource 'planner'): 5 is "
        "above the maximum 2");
  // A whole "${resources.NAME}" block is checked once, at the resource.
  CHECK(only("version: 1\nresources:\n  d: { provider: dataset, format: fake, size: 0, path: x }\nstages:\n"
             "  - { id: q, agent: read_data, with: { data: \"${resources.d}\" } }\n") ==
        "wf.yaml:3:47: resource 'd'.size: 0 is below the minimum 1");
}
