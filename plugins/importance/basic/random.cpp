// random: uniform scores in [0, 1), the baseline every criterion should beat. Deterministic: the
// stream of a group depends only on the configured seed and the group's name, not on the order in
// which a pruner visits groups, and mt19937_64 (fully specified by the standard) gives the same
// numbers with every standard library, unlike std::uniform_real_distribution.
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "criteria.hpp"

namespace profagent::importance {

namespace {

// FNV-1a: a stable hash of the group's name (std::hash may differ between builds).
std::uint64_t fnv1a(const std::string& text) {
  std::uint64_t hash = 1469598103934665603ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return hash;
}

struct RandomOptions {
  std::uint64_t seed = 0;
};

class RandomCriterion : public torch_tk::ImportanceCriterion {
 public:
  explicit RandomCriterion(std::uint64_t seed) : seed_(seed) {}

  Result<torch::Tensor> score(const torch_tk::ImportanceGroup& group, torch_tk::GroupReduction) override {
    PROFAGENT_RETURN_IF_ERROR(torch_tk::validate_group(group));
    std::seed_seq sequence{static_cast<std::uint32_t>(seed_), static_cast<std::uint32_t>(seed_ >> 32),
                           static_cast<std::uint32_t>(fnv1a(group.name)),
                           static_cast<std::uint32_t>(fnv1a(group.name) >> 32)};
    std::mt19937_64 rng(sequence);
    std::vector<double> values(static_cast<std::size_t>(group.units));
    // The top 53 bits as a double in [0, 1): exact and portable.
    for (double& value : values) value = static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
    return torch::tensor(values, torch::kFloat64);
  }

 private:
  std::uint64_t seed_;
};

}  // namespace

ProviderFactory make_random_factory() {
  ProviderFactory factory;
  factory.id = "random";
  factory.interface = torch_tk::kImportanceInterface;
  factory.summary = "uniform random scores in [0, 1), reproducible from the seed and the group's name";
  static const OptionsSchema<RandomOptions> schema = [] {
    OptionsSchema<RandomOptions> s;
    s.field("seed", &RandomOptions::seed).min(0).describe("random seed");
    return s;
  }();
  bind_provider_options<RandomOptions>(factory, schema, [](RandomOptions options) -> Result<std::unique_ptr<Provider>> {
    return std::unique_ptr<Provider>(std::make_unique<RandomCriterion>(options.seed));
  });
  return factory;
}

}  // namespace profagent::importance
