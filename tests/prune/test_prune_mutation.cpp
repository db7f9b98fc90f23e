// A mutation test of the pruning checks (prune_checks.hpp): a model pruned by the real engine passes
// them, and each fault a wrong engine could make, injected into a copy of that pruned model, makes
// them fail: (a) a BatchNorm sliced with indices shifted by one, (b) a consumer's input channels
// sliced with another group's indices, (c) a linear layer's input features in the wrong order. On a
// small C++ model and on torchvision resnet18 and mobilenet_v2, scripted and traced, with random
// BatchNorm statistics (with torchvision's identical ones, fault (a) would change nothing).
#include "torch_doctest.hpp"

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "model_loader.hpp"
#include "prune_checks.hpp"
#include "random_batch_norm.hpp"

namespace fs = std::filesystem;
using namespace profagent::torch_tk;
using profagent::test::kExactRelative;
using profagent::test::Difference;
using profagent::test::forward_tensor;
using profagent::test::KeptIndices;

namespace {

// A model pruned by the real engine, with what the checks compare it to.
struct Pruned {
  torch::jit::Module original;
  std::vector<torch::jit::IValue> inputs;
  torch::jit::Module module;
  std::unique_ptr<DependencyGraph> graph;  // the original's, for the groups' members and unit indices
  std::vector<GroupDecision> decisions;    // what the engine reports it removed
  KeptIndices kept;
  torch::Tensor zeroed_output;  // the original with the removed units' weights zero
};

Pruned prune_for_checks(const torch::jit::Module& original, const std::vector<torch::jit::IValue>& inputs,
                        double ratio) {
  PruneOptions options;
  options.ratio = ratio;
  options.ignore_input_layer = false;
  auto result = prune(original, inputs, options);
  REQUIRE_MESSAGE(result.is_ok(), result.status().to_string());
  REQUIRE(result->pruned_groups > 0);
  Pruned pruned;
  pruned.original = original;
  pruned.inputs = inputs;
  pruned.module = result->module;
  pruned.graph = profagent::test::graph_of(original, inputs);
  pruned.decisions = result->history.groups;
  pruned.kept = profagent::test::kept_indices(original, *pruned.graph, pruned.decisions);
  torch::jit::Module zeroed = profagent::test::zero_units(original, *pruned.graph, pruned.decisions);
  pruned.zeroed_output = forward_tensor(zeroed, inputs);
  return pruned;
}

struct Verdict {
  Difference zero_weight;  // candidate's outputs vs the zeroed original's
  std::vector<std::string> mismatches;
};

Verdict check(const Pruned& pruned, torch::jit::Module candidate) {
  Verdict verdict;
  verdict.zero_weight = profagent::test::relative_difference(forward_tensor(candidate, pruned.inputs), pruned.zeroed_output);
  verdict.mismatches = profagent::test::slice_mismatches(candidate, pruned.original, pruned.kept);
  return verdict;
}

// One fault: a copy of the pruned model whose listed tensors are replaced (same shapes).
struct Fault {
  std::string what;
  std::map<std::string, torch::Tensor> tensors;
};

torch::jit::Module inject(const Pruned& pruned, const Fault& fault) {
  torch::jit::Module copy = pruned.module.deepcopy();
  auto tensors = profagent::test::named_tensors(copy);
  torch::NoGradGuard no_grad;
  for (const auto& [name, value] : fault.tensors) {
    REQUIRE_MESSAGE(tensors.count(name) == 1, "the pruned model has no tensor " << name);
    REQUIRE_MESSAGE(tensors.at(name).sizes() == value.sizes(), name << ": the fault must keep the shape");
    tensors.at(name).copy_(value);
  }
  return copy;
}

torch::Tensor original_tensor(const Pruned& pruned, const std::string& name) {
  return profagent::test::named_tensors(pruned.original).at(name);
}

// (a) BatchNorms of pruned groups (up to `count`, spread over the model) whose running statistics,
// weight and bias are the original's at the kept indices shifted by one: kept channel k gets the
// statistics of channel k+1.
std::vector<Fault> shifted_batch_norms(const Pruned& pruned, std::size_t count) {
  std::vector<std::string> norms;  // module paths
  for (const GroupDecision& decision : pruned.decisions) {
    if (decision.removed.empty()) continue;
    for (const GroupMember& member : profagent::test::decided_group(*pruned.graph, decision).members) {
      const std::string suffix = ".weight";
      if (member.role != "norm" || member.module_kind != "batch_norm") continue;
      const std::string path = member.param.substr(0, member.param.size() - suffix.size());
      if (std::find(norms.begin(), norms.end(), path) == norms.end()) norms.push_back(path);
    }
  }
  REQUIRE_MESSAGE(!norms.empty(), "no pruned group holds a BatchNorm");
  std::vector<Fault> faults;
  for (std::size_t k = 0; k < count && k < norms.size(); ++k) {
    const std::string& path = norms[k * norms.size() / std::min(count, norms.size())];
    Fault fault{"(a) BatchNorm " + path + " sliced at kept indices + 1", {}};
    for (const char* attr : {".weight", ".bias", ".running_mean", ".running_var"}) {
      const std::string name = path + attr;
      const torch::Tensor original = original_tensor(pruned, name);
      std::vector<std::int64_t> shifted;
      for (std::int64_t index : pruned.kept.at(name).at(0)) shifted.push_back((index + 1) % original.size(0));
      fault.tensors[name] = original.index_select(0, torch::tensor(shifted, torch::kLong));
    }
    faults.push_back(std::move(fault));
  }
  return faults;
}

// (b) A consumer's input channels sliced with another group's indices: the consumer member of one
// pruned group cut where another pruned group of the same width (a different unit choice) cuts.
Fault consumer_with_other_groups_indices(const Pruned& pruned) {
  for (const GroupDecision& own : pruned.decisions) {
    if (own.removed.empty()) continue;
    const PruneGroup& group = profagent::test::decided_group(*pruned.graph, own);
    for (const GroupDecision& other : pruned.decisions) {
      if (other.key == own.key || other.removed.size() != own.removed.size()) continue;
      const PruneGroup& other_group = profagent::test::decided_group(*pruned.graph, other);
      if (other_group.units != group.units) continue;
      // The other group's decision, by unit position, applied to this group's units.
      std::vector<std::int64_t> wrong_units;
      for (std::int64_t id : other.removed) {
        const auto at = std::find(other_group.unit_ids.begin(), other_group.unit_ids.end(), id) - other_group.unit_ids.begin();
        wrong_units.push_back(group.unit_ids[static_cast<std::size_t>(at)]);
      }
      if (std::set<std::int64_t>(wrong_units.begin(), wrong_units.end()) ==
          std::set<std::int64_t>(own.removed.begin(), own.removed.end()))
        continue;
      for (const GroupMember& member : group.members) {
        if (member.role != "consumer") continue;
        const auto right = profagent::test::removed_indices(group, member, own.removed);
        const auto wrong = profagent::test::removed_indices(group, member, wrong_units);
        if (right.size() != wrong.size()) continue;
        // Every index this dim loses (other groups may cut it too, as a concat's consumer), with this
        // group's share replaced by the other group's choice.
        const torch::Tensor original = original_tensor(pruned, member.param);
        std::set<std::int64_t> gone;
        for (std::int64_t i = 0; i < original.size(member.dim); ++i) gone.insert(i);
        for (std::int64_t i : pruned.kept.at(member.param).at(member.dim)) gone.erase(i);
        for (std::int64_t i : right) gone.erase(i);
        gone.insert(wrong.begin(), wrong.end());
        auto dims = pruned.kept.at(member.param);
        dims[member.dim].clear();
        for (std::int64_t i = 0; i < original.size(member.dim); ++i)
          if (gone.count(i) == 0) dims[member.dim].push_back(i);
        return Fault{"(b) " + member.param + " dim " + std::to_string(member.dim) + " sliced with group " +
                         other_group.name + "'s choice instead of " + group.name + "'s",
                     {{member.param, profagent::test::slice_of(original, dims)}}};
      }
    }
  }
  FAIL("no two pruned groups of the same width chose different units");
  return {};
}

// (c) A linear layer's input features in the wrong order: its kept columns rotated by one.
Fault linear_inputs_out_of_order(const Pruned& pruned) {
  for (const GroupDecision& decision : pruned.decisions) {
    if (decision.removed.empty()) continue;
    for (const GroupMember& member : profagent::test::decided_group(*pruned.graph, decision).members) {
      if (member.role != "consumer" || member.module_kind != "linear") continue;
      const torch::Tensor right = profagent::test::named_tensors(pruned.module).at(member.param);
      const std::int64_t width = right.size(member.dim);
      torch::Tensor rotated = torch::roll(torch::arange(width, torch::kLong), 1);
      return Fault{"(c) " + member.param + " input features rotated by one", {{member.param, right.index_select(member.dim, rotated)}}};
    }
  }
  FAIL("no pruned group has a linear layer as consumer");
  return {};
}

// The real engine's result passes both checks; each fault fails both.
void checks_catch_every_fault(const std::string& model, const torch::jit::Module& original,
                              const std::vector<torch::jit::IValue>& inputs, double ratio) {
  CAPTURE(model);
  const Pruned pruned = prune_for_checks(original, inputs, ratio);
  std::int64_t removed = 0;
  for (const auto& decision : pruned.decisions) removed += static_cast<std::int64_t>(decision.removed.size());
  const Verdict real = check(pruned, pruned.module);
  MESSAGE(model << ": the engine removed " << removed << " units; zero-weight " << real.zero_weight << "; "
                << real.mismatches.size() << " tensors not sliced like the original");
  CHECK(real.zero_weight.relative < kExactRelative);
  CHECK(real.mismatches.empty());
  for (const auto& mismatch : real.mismatches) MESSAGE("  " << mismatch);

  std::vector<Fault> faults = shifted_batch_norms(pruned, 3);
  faults.push_back(consumer_with_other_groups_indices(pruned));
  faults.push_back(linear_inputs_out_of_order(pruned));
  for (const Fault& fault : faults) {
    CAPTURE(fault.what);
    const Verdict verdict = check(pruned, inject(pruned, fault));
    MESSAGE(model << " " << fault.what << ": zero-weight " << verdict.zero_weight << "; " << verdict.mismatches.size()
                  << " tensors not sliced like the original");
    CHECK(verdict.zero_weight.relative > 100 * kExactRelative);
    CHECK_FALSE(verdict.mismatches.empty());
  }
}

torch::jit::Module torchvision_with_random_batch_norms(const std::string& source,
                                                       const std::vector<torch::jit::IValue>& inputs) {
  profagent::agents::LoadOptions options;
  options.torchvision.cache_dir = fs::path(PROFAGENT_TEST_BINARY_DIR) / "torchvision_cache";
  auto loaded = profagent::agents::load_model(source, options);
  REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  torch::jit::Module model = loaded.value()->module();
  CHECK(profagent::test::randomize_batch_norms(model, inputs) > 0);
  const double magnitude = forward_tensor(model, inputs).abs().max().item<double>();
  MESSAGE(source << " with random BatchNorms: output max |y| " << magnitude);
  CHECK(magnitude > 1e-2);  // activations that vanish would make every difference small
  return model;
}

}  // namespace

TEST_CASE("prune mutation: the checks pass the engine's pruned C++ model and fail each injected fault") {
  torch::manual_seed(0);
  checks_catch_every_fault("residual_net", profagent::test::residual_net(), {torch::randn({2, 3, 8, 8})}, 0.4);
}

TEST_CASE("prune mutation: the checks pass the engine's pruned torchvision models and fail each injected fault") {
  torch::manual_seed(0);
  const std::vector<torch::jit::IValue> inputs{torch::randn({1, 3, 64, 64})};
  for (const std::string name : {"resnet18", "mobilenet_v2"}) {
    for (const std::string export_kind : {"script", "trace"}) {
      const std::string source = "torchvision:" + name + "?export=" + export_kind;
      checks_catch_every_fault(source, torchvision_with_random_batch_norms(source, inputs), inputs, 0.3);
    }
  }
}
