// The dynamic profile's attribution checked against something independent of it: a layer timed alone
// (profagent/profile/isolated_layers.hpp) on the input it gets inside the model.
#include "torch_doctest.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "profagent/profile/dynamic_profile.hpp"
#include "profagent/profile/isolated_layers.hpp"

using profagent::ErrorCode;
using profagent::torch_tk::DynamicProfileOptions;
using profagent::torch_tk::IsolatedTimingOptions;

namespace {

torch::jit::Module conv(const std::string& name, std::int64_t channels, std::int64_t kernel) {
  torch::jit::Module m(name);
  m.register_parameter("weight", torch::randn({channels, channels, kernel, kernel}) * 0.05, false);
  m.register_parameter("bias", torch::zeros({channels}), false);
  m.define("def forward(self, x):\n  return torch.conv2d(x, self.weight, self.bias, 1, " +
           std::to_string(kernel / 2) + ")\n");
  return m;
}

// x -> first (3x3 conv) -> relu -> heavy (9x9 conv: 9x first's MACs) -> relu -> last (3x3 conv), all
// 16 channels at 48x48: `heavy` is known to take most of the forward.
torch::jit::Module make_one_heavy_layer_net() {
  torch::manual_seed(0);
  torch::jit::Module net("OneHeavyLayer");
  net.register_module("first", conv("First", 16, 3));
  net.register_module("heavy", conv("Heavy", 16, 9));
  net.register_module("last", conv("Last", 16, 3));
  net.define(
      "def forward(self, x):\n"
      "  return self.last.forward(torch.relu(self.heavy.forward(torch.relu(self.first.forward(x)))))\n");
  net.eval();
  return net;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

}  // namespace

// Tolerance: the profile's figure is the layer's time in the forward plus the interpreter's work just
// before it (attribute reads, ~microseconds), the isolated one a call of its own method; on a shared
// machine each is a median over alternating rounds and still moves by ~10-20%, so 30% relative. A
// profile that charged `heavy`'s conv to its neighbour would be off by ~90%.
constexpr double kRelativeTolerance = 0.30;

TEST_CASE("the layer known to dominate gets, in the profile, the time and share it takes when timed alone") {
  auto net = make_one_heavy_layer_net();
  const std::vector<torch::jit::IValue> inputs{torch::randn({1, 16, 48, 48})};
  DynamicProfileOptions profile_options;
  profile_options.threads = 1;
  profile_options.warmup = 3;
  profile_options.repeats = 10;
  IsolatedTimingOptions alone_options;
  alone_options.threads = 1;
  alone_options.repeats = 10;
  const std::vector<std::string> layers{"first", "heavy", "last"};
  // Rounds alternate the profile and the layers alone, so drift in the machine's load hits both.
  std::vector<double> profiled_heavy, profiled_share, alone_heavy, alone_share;
  for (int round = 0; round < 5; ++round) {
    auto profile = profagent::torch_tk::dynamic_profile(net, inputs, profile_options);
    REQUIRE_MESSAGE(profile.is_ok(), profile.status().to_string());
    auto alone = profagent::torch_tk::time_layers_alone(net, inputs, layers, alone_options);
    REQUIRE_MESSAGE(alone.is_ok(), alone.status().to_string());
    REQUIRE(profile->find("heavy") != nullptr);
    profiled_heavy.push_back(profile->find("heavy")->ms);
    profiled_share.push_back(profile->find("heavy")->share);
    alone_heavy.push_back((*alone)[1].p50_ms);
    // The layer's share of the whole when each layer is timed alone.
    alone_share.push_back((*alone)[1].p50_ms / ((*alone)[0].p50_ms + (*alone)[1].p50_ms + (*alone)[2].p50_ms));
  }
  const double profiled = median(profiled_heavy), isolated = median(alone_heavy);
  const double share = median(profiled_share), isolated_share = median(alone_share);
  MESSAGE("heavy: profiled " << profiled << " ms (share " << share << "), alone " << isolated << " ms (share "
                             << isolated_share << ")");
  CHECK(isolated_share > 0.6);  // the model is what the test says: one layer dominates
  CHECK(std::abs(profiled - isolated) <= kRelativeTolerance * isolated);
  CHECK(std::abs(share - isolated_share) <= kRelativeTolerance * isolated_share);
}

TEST_CASE("timing a layer alone names a path that is no submodule and a layer an inlined forward never calls") {
  auto net = make_one_heavy_layer_net();
  const std::vector<torch::jit::IValue> inputs{torch::randn({1, 16, 48, 48})};
  auto missing = profagent::torch_tk::time_layers_alone(net, inputs, {"heavy.nothing"});
  REQUIRE_FALSE(missing.is_ok());
  CHECK(missing.status().code() == ErrorCode::kInvalidArgument);
  CHECK(missing.status().message().find("heavy.nothing") != std::string::npos);

  // The root's forward does the conv itself: `heavy` is a submodule whose forward nobody calls.
  torch::jit::Module inlined("Inlined");
  inlined.register_module("heavy", conv("Heavy", 16, 9));
  inlined.define("def forward(self, x):\n  return torch.conv2d(x, self.heavy.weight, self.heavy.bias, 1, 4)\n");
  auto never_called = profagent::torch_tk::time_layers_alone(inlined, inputs, {"heavy"});
  REQUIRE_FALSE(never_called.is_ok());
  CHECK(never_called.status().code() == ErrorCode::kUnsupported);
  CHECK(never_called.status().message().find("'heavy'") != std::string::npos);
}
