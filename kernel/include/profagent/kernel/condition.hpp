#pragma once
// `until:` conditions: a small expression language over artifact summaries.
//   expr    := or ; or := and (("or"|"||") and)* ; and := not (("and"|"&&") not)*
//   not     := ("not"|"!") not | cmp ; cmp := value (("=="|"!="|"<"|"<="|">"|">=") value)?
//   value   := number | 'string' | "string" | true | false | null | ref | "(" expr ")"
//   ref     := name ("." name)*   -- "stage.port" then a path into that artifact's summary
//                                    (object keys or list indices), e.g. evaluate.metrics.accuracy
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/status.hpp"

namespace profagent::kernel {

struct ConditionRef {
  std::string stage;
  std::string port;
  std::vector<std::string> path;  // into the summary
  int column = 0;                 // 1-based offset within the expression text
};

class Condition {
 public:
  // kParseError with the 1-based column of the problem in the message ("column 12: expected ...").
  static Result<Condition> parse(const std::string& text);

  const std::string& text() const { return text_; }
  // Every stage.port the expression reads (for the validator).
  const std::vector<ConditionRef>& references() const { return refs_; }

  // `summary_of(stage, port)` gives the artifact summary (nullopt when there is no such artifact).
  // A missing path or a comparison of incompatible types is an error naming the reference.
  using SummaryLookup = std::function<std::optional<Json>(const std::string& stage, const std::string& port)>;
  Result<bool> evaluate(const SummaryLookup& summary_of) const;

  struct Node;

 private:
  std::string text_;
  std::shared_ptr<const Node> root_;
  std::vector<ConditionRef> refs_;
};

}  // namespace profagent::kernel
