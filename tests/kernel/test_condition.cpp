#include <doctest/doctest.h>

#include <map>
#include <string>

#include "profagent/kernel/condition.hpp"

using profagent::ErrorCode;
using profagent::Json;
using profagent::kernel::Condition;

namespace {

// Artifact summaries by "stage.port", and a record of which ones were read.
struct Summaries {
  std::map<std::string, Json> values;
  std::vector<std::string> reads;

  Condition::SummaryLookup lookup() {
    return [this](const std::string& stage, const std::string& port) -> std::optional<Json> {
      reads.push_back(stage + "." + port);
      auto it = values.find(stage + "." + port);
      if (it == values.end()) return std::nullopt;
      return it->second;
    };
  }
};

Summaries sample() {
  Summaries s;
  s.values["evaluate.metrics"] = Json{{"accuracy", 0.91},
                                      {"top5", 0.99},
                                      {"layers", {{"n", 3}}},
                                      {"name", "resnet"},
                                      {"done", false},
                                      {"note", nullptr},
                                      {"history", Json::array({1, 2, 3})}};
  s.values["loop.iteration"] = Json(2);
  s.values["flag.out"] = Json(true);
  return s;
}

// Evaluates `text` against the sample summaries; fails the test on a parse or evaluation error.
bool holds(const std::string& text) {
  auto condition = Condition::parse(text);
  INFO(text, ": ", condition.status().message());
  REQUIRE(condition.is_ok());
  Summaries s = sample();
  auto result = condition->evaluate(s.lookup());
  INFO(result.status().message());
  REQUIRE(result.is_ok());
  return *result;
}

std::string parse_error(const std::string& text) {
  auto condition = Condition::parse(text);
  INFO(text);
  REQUIRE_FALSE(condition.is_ok());
  CHECK(condition.status().code() == ErrorCode::kParseError);
  return condition.status().message();
}

std::string evaluation_error(const std::string& text) {
  auto condition = Condition::parse(text);
  INFO(text, ": ", condition.status().message());
  REQUIRE(condition.is_ok());
  Summaries s = sample();
  auto result = condition->evaluate(s.lookup());
  REQUIRE_FALSE(result.is_ok());
  return result.status().message();
}

}  // namespace

TEST_CASE("a condition lists the stage, port, path and column of every reference it reads") {
  auto condition = Condition::parse("evaluate.metrics.accuracy >= 0.9 or loop.iteration >= 3");
  REQUIRE(condition.is_ok());
  CHECK(condition->text() == "evaluate.metrics.accuracy >= 0.9 or loop.iteration >= 3");
  const auto& refs = condition->references();
  REQUIRE(refs.size() == 2);
  CHECK(refs[0].stage == "evaluate");
  CHECK(refs[0].port == "metrics");
  CHECK(refs[0].path == std::vector<std::string>{"accuracy"});
  CHECK(refs[0].column == 1);
  CHECK(refs[1].stage == "loop");
  CHECK(refs[1].port == "iteration");
  CHECK(refs[1].path.empty());
  CHECK(refs[1].column == 37);
}

TEST_CASE("numbers compare numerically, ints and floats mixed") {
  CHECK(holds("evaluate.metrics.accuracy >= 0.9"));
  CHECK_FALSE(holds("evaluate.metrics.accuracy > 0.95"));
  CHECK(holds("loop.iteration == 2"));
  CHECK(holds("loop.iteration == 2.0"));
  CHECK(holds("loop.iteration < 2.5"));
  CHECK(holds("loop.iteration != 3"));
  CHECK(holds("evaluate.metrics.layers.n <= 3"));
  CHECK(holds("-1 < 0"));
  CHECK(holds("1e-3 < .01"));
}

TEST_CASE("strings compare lexicographically, in either quote style") {
  CHECK(holds("evaluate.metrics.name == 'resnet'"));
  CHECK(holds("evaluate.metrics.name == \"resnet\""));
  CHECK(holds("evaluate.metrics.name < 'vit'"));
  CHECK(holds("'it\\'s' == \"it's\""));
}

TEST_CASE("booleans and null compare only for equality") {
  CHECK(holds("evaluate.metrics.done == false"));
  CHECK(holds("evaluate.metrics.note == null"));
  CHECK(holds("evaluate.metrics.name != null"));
  CHECK(holds("true != false"));
  CHECK(evaluation_error("evaluate.metrics.done < true") ==
        "'evaluate.metrics.done < true': '<' cannot order a boolean and a boolean (only == and != apply)");
}

TEST_CASE("values of different types cannot be compared") {
  CHECK(evaluation_error("evaluate.metrics.name == 3") ==
        "'evaluate.metrics.name == 3': cannot compare a string (\"resnet\") with a number (3)");
  CHECK(evaluation_error("loop.iteration == true") ==
        "'loop.iteration == true': cannot compare a number (2) with a boolean (true)");
}

TEST_CASE("list indices and object keys form a path into the summary") {
  CHECK(holds("evaluate.metrics.history.2 == 3"));
  CHECK(evaluation_error("evaluate.metrics.history.5 == 3") ==
        "'evaluate.metrics.history.5': 'evaluate.metrics.history' has no index '5' (size 3)");
}

TEST_CASE("and, or and not combine, with the usual precedence and parentheses") {
  CHECK(holds("flag.out and loop.iteration == 2"));
  CHECK(holds("flag.out && loop.iteration == 2"));
  CHECK(holds("not evaluate.metrics.done"));
  CHECK(holds("!evaluate.metrics.done"));
  CHECK(holds("false or true and true"));  // and binds tighter than or
  CHECK_FALSE(holds("(false or true) and false"));
  CHECK(holds("not (loop.iteration > 5) || false"));
  CHECK(holds("true"));
}

TEST_CASE("and and or short-circuit: the right side is not read when the left decides") {
  Summaries s = sample();
  auto or_condition = Condition::parse("flag.out or missing.port > 1");
  REQUIRE(or_condition.is_ok());
  auto result = or_condition->evaluate(s.lookup());
  REQUIRE(result.is_ok());
  CHECK(*result);
  CHECK(s.reads == std::vector<std::string>{"flag.out"});

  auto and_condition = Condition::parse("evaluate.metrics.done and missing.port > 1");
  REQUIRE(and_condition.is_ok());
  auto second = and_condition->evaluate(s.lookup());
  REQUIRE(second.is_ok());
  CHECK_FALSE(*second);
}

TEST_CASE("a bare value used as a condition must be a boolean") {
  CHECK(evaluation_error("loop.iteration") ==
        "'loop.iteration' is a number (2), not a boolean; compare it with something");
  CHECK(evaluation_error("flag.out and 'yes'") ==
        "''yes'' is a string (\"yes\"), not a boolean; compare it with "
        "something");
}

TEST_CASE("a missing artifact or key is an error naming the reference and the missing part") {
  auto missing_artifact = Condition::parse("prune.model.params < 10");
  REQUIRE(missing_artifact.is_ok());
  Summaries s = sample();
  auto result = missing_artifact->evaluate(s.lookup());
  REQUIRE_FALSE(result.is_ok());
  CHECK(result.status().code() == ErrorCode::kNotFound);
  CHECK(result.status().message() == "'prune.model.params': there is no artifact 'prune.model'");
  CHECK(evaluation_error("evaluate.metrics.acuracy > 0") ==
        "'evaluate.metrics.acuracy': 'evaluate.metrics' has no key 'acuracy' (keys: accuracy, top5, layers, "
        "name, "
        "done, note, history)");
  CHECK(evaluation_error("evaluate.metrics.accuracy.x > 0") ==
        "'evaluate.metrics.accuracy.x': 'evaluate.metrics.accuracy' is a number, it has no key 'x'");
}

TEST_CASE("parse errors name the column and what was expected") {
  CHECK(parse_error("") ==
        "column 1: expected a value (number, string, true, false, null, stage.port or '('), "
        "got end of expression");
  CHECK(parse_error("a.b >=") ==
        "column 7: expected a value (number, string, true, false, null, stage.port or "
        "'('), got end of expression");
  CHECK(parse_error("a.b = 1") == "column 5: expected '==', got '='");
  CHECK(parse_error("(a.b == 1") == "column 10: expected ')', got end of expression");
  CHECK(parse_error("a.b == 1 c.d") == "column 10: expected 'and', 'or' or end of expression, got 'c.d'");
  CHECK(parse_error("accuracy > 1") == "column 1: expected a reference 'stage.port', got 'accuracy'");
  CHECK(parse_error("a.b == 'open") == "column 8: unterminated string (expected a closing ')");
  CHECK(parse_error("a.b == 1 and or") == "column 14: expected a value, got 'or'");
  CHECK(parse_error("a.b # 1") == "column 5: unexpected character '#'");
}
