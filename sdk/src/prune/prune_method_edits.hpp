#pragma once
// The graph ints an apply changes, made in the code of the modules they came from
// (prune_method_edits.cpp): the output that keeps the model's module hierarchy. Private to
// profagent_prune.
#include <torch/csrc/jit/ir/ir.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "prune_internal.hpp"

namespace profagent::torch_tk {

class MethodIntEdits {
 public:
  // Records that the int of `spec` becomes `value` in the method node its node is a clone of. Returns
  // why it cannot be (no such node, or the same code asked for two values), else "".
  std::string add(const IntEditSpec& spec, std::int64_t value, const PruneAnalysis& analysis);
  // Why the recorded edits cannot all be made (an int[] built in a way that cannot be rewritten), else "".
  std::string check() const;
  void apply();
  // Drops what the edits left unused (the old constants) from every edited method.
  void eliminate_dead_code();

 private:
  using Use = std::pair<torch::jit::Node*, std::size_t>;  // (method node, input)
  std::map<Use, std::int64_t> scalars_;
  std::map<Use, std::map<std::int64_t, std::int64_t>> elements_;  // element → value
  std::map<Use, std::string> where_;
  std::set<torch::jit::Graph*> graphs_;
};

}  // namespace profagent::torch_tk
