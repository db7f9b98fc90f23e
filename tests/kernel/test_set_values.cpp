// `--set NAME=VALUE`: the value is read as one YAML node (scalar or flow list/map) and must fit the
// declared var; a var declared null takes whatever the YAML is. Malformed values say which --set and why.
#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "profagent/kernel/workflow_parser.hpp"

using profagent::Json;
using namespace profagent::kernel;

namespace {

using Sets = std::vector<std::pair<std::string, std::string>>;

// workflows/profile.yaml's shape: vars declared null, used whole in one stage's `with:`.
const char* const kNullVars = R"(version: 1
vars:
  shape: null
  config: null
  value: null
stages:
  - id: s
    agent: a
    with: { shape: "${vars.shape}", config: "${vars.config}", value: "${vars.value}" }
)";

ParseOutcome parse_with_sets(const std::string& yaml, Sets sets) {
  ParseOptions options;
  options.sets = std::move(sets);
  return parse_workflow_text(yaml, "wf.yaml", options);
}

// The message of the only diagnostic (every --set diagnostic is located at "--set").
std::string only_set_error(const ParseOutcome& outcome) {
  REQUIRE(outcome.diagnostics.size() == 1);
  CHECK(outcome.diagnostics[0].location.file == "--set");
  return outcome.diagnostics[0].message;
}

Json read(const std::string& text) {
  auto value = read_set_value(text);
  INFO(text << ": " << (value ? "" : value.status().message()));
  REQUIRE(value.is_ok());
  return *value;
}

std::string read_error(const std::string& text) {
  auto value = read_set_value(text);
  INFO(text);
  REQUIRE_FALSE(value.is_ok());
  return value.status().message();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("a --set value reads as a YAML scalar typed like the workflow's own plain scalars") {
  CHECK(read("7") == Json(7));
  CHECK(read("7").is_number_integer());
  CHECK(read("-0.25") == Json(-0.25));
  CHECK(read("1e-3") == Json(1e-3));
  CHECK(read("true") == Json(true));
  CHECK(read("False") == Json(false));
  CHECK(read("null").is_null());
  CHECK(read("").is_null());
  CHECK(read("torchvision:resnet50") == Json("torchvision:resnet50"));
  CHECK(read("path/to/model.pt") == Json("path/to/model.pt"));
  CHECK(read("\"7\"") == Json("7"));  // quoted: a string, quotes removed
  CHECK(read("'true'") == Json("true"));
}

TEST_CASE("a --set value in flow syntax reads as a list or a map, nested and typed") {
  CHECK(read("[1,3,224,224]") == Json::parse("[1, 3, 224, 224]"));
  CHECK(read("[0.2860,0.2860,0.2860]") == Json::parse("[0.286, 0.286, 0.286]"));
  CHECK(read("[]") == Json::array());
  CHECK(read("{}") == Json::object());
  CHECK(read("{normalize: sum}") == Json::parse(R"({"normalize": "sum"})"));
  CHECK(read("{a: [1, {b: true}], c: 'x y', d: null}") ==
        Json::parse(R"({"a": [1, {"b": true}], "c": "x y", "d": null})"));
  CHECK(read("[[1,3,32,32], [1,10]]") == Json::parse("[[1, 3, 32, 32], [1, 10]]"));
}

TEST_CASE("a malformed --set value says what is wrong and where in the text") {
  CHECK(read_error("[1,3") ==
        "not a YAML value: end of sequence flow not found at column 1 (lists and maps take flow syntax: [a, "
        "b], "
        "{k: v})");
  CHECK(contains(read_error("{a: 1"), "not a YAML value: end of map flow not found"));
  CHECK(read_error("{a: 1, a: 2}") == "duplicate key 'a'");
  CHECK(read_error("{[a]: 1}") == "a map key must be a plain name");
  CHECK(read_error("a: b") ==
        "reads as a YAML block map: write a flow map {key: value}, or quote the text for a string");
  CHECK(read_error("- a") ==
        "reads as a YAML block list: write a flow list [a, b], or quote the text for a string");
}

TEST_CASE("--set gives a var declared null a flow list, a flow map or a typed scalar") {
  auto outcome = parse_with_sets(
      kNullVars, {{"shape", "[1,3,224,224]"}, {"config", "{normalize: sum}"}, {"value", "0.2"}});
  REQUIRE(outcome.ok());
  const Json& with = outcome.workflow.stages[0].with.value;
  CHECK(with["shape"] == Json::parse("[1, 3, 224, 224]"));  // workflows/profile.yaml's documented line
  CHECK(with["config"] == Json::parse(R"({"normalize": "sum"})"));
  CHECK(with["value"] == Json(0.2));
}

TEST_CASE("a malformed --set value is an error naming the --set, the text and why") {
  auto unclosed = parse_with_sets(kNullVars, {{"shape", "[1,3,224"}});
  CHECK(only_set_error(unclosed) ==
        "--set shape=[1,3,224: not a YAML value: end of sequence flow not found at column 1 (lists and maps "
        "take "
        "flow syntax: [a, b], {k: v})");
  auto block = parse_with_sets(kNullVars, {{"value", "mode: fast"}});
  CHECK(only_set_error(block) ==
        "--set value=mode: fast: reads as a YAML block map: write a flow map {key: value}, "
        "or quote the text for a string");
  auto duplicate = parse_with_sets(kNullVars, {{"config", "{a: 1, a: 2}"}});
  CHECK(only_set_error(duplicate) == "--set config={a: 1, a: 2}: duplicate key 'a'");
}

TEST_CASE("--set of a list or map var needs a list or map; a string var takes the text as written") {
  const char* const yaml = R"(version: 1
vars:
  mean: [0.5]
  options: {}
  name: net
stages:
  - { id: s, agent: a, with: { m: "${vars.mean}", o: "${vars.options}", n: "${vars.name}" } }
)";
  auto outcome = parse_with_sets(
      yaml, {{"mean", "[0.2860,0.2860,0.2860]"}, {"options", "{alpha: 0.5}"}, {"name", "[x]"}});
  REQUIRE(outcome.ok());
  CHECK(outcome.workflow.vars["mean"] == Json::parse("[0.286, 0.286, 0.286]"));
  CHECK(outcome.workflow.vars["options"] == Json::parse(R"({"alpha": 0.5})"));
  CHECK(outcome.workflow.vars["name"] == Json("[x]"));
  auto scalar_for_list = parse_with_sets(yaml, {{"mean", "0.5"}});
  CHECK(only_set_error(scalar_for_list) == "--set mean=0.5: var 'mean' is a list, '0.5' reads as a float");
  auto list_for_map = parse_with_sets(yaml, {{"options", "[a]"}});
  CHECK(only_set_error(list_for_map) == "--set options=[a]: var 'options' is a map, '[a]' reads as a list");
}
