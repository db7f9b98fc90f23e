#pragma once
// Random BatchNorm statistics and affine parameters for the models that checks run on. A model fresh
// from torchvision has running_mean 0, running_var 1, weight 1, bias 0 in every channel, so a BN
// sliced with the wrong indices computes exactly what the right slice would: a check on such a model
// cannot see the fault. Worse, its outputs can vanish (mobilenet_v2 answers ~3e-9: fan-out init of
// the depthwise convs shrinks every block).
//
// randomize_batch_norms runs the model once on `inputs` and, as each aten::batch_norm is about to
// run, sets its statistics from the input it actually receives, perturbed per channel (mean + δ·std,
// var·r), and draws its weight and bias: every channel then differs from its neighbours and each BN's
// output has a per-channel scale near 1, so activations neither vanish nor explode. This works on the
// loaded TorchScript module whatever its export (scripted or traced: the running stats it receives are
// its own buffers, changed in place before the op reads them), without knowing its graph. It needs a
// release build (RecordFunction's inputs are only readable when this code and LibTorch agree on
// NDEBUG). Include after torch_doctest.hpp.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/record_function.h>

#include <cstdint>
#include <set>
#include <memory>
#include <string>
#include <vector>

namespace profagent::test {

namespace random_batch_norm_detail {

struct State {
  at::Generator generator;
  std::set<const void*> done;  // running_mean storages already set: a BN run twice keeps its first draw
  bool busy = false;           // our own ops inside the callback must not re-enter it
  std::int64_t count = 0;
};

inline thread_local State* active = nullptr;

inline void set_statistics(State& state, const at::RecordFunction& fn) {
  const auto inputs = fn.inputs();
  if (inputs.size() < 6 || !inputs[0].isTensor() || !inputs[3].isTensor() || !inputs[4].isTensor()) return;
  if (inputs[5].isBool() && inputs[5].toBool()) return;  // training: batch statistics, nothing to set
  torch::Tensor x = inputs[0].toTensor();
  torch::Tensor mean = inputs[3].toTensor();
  torch::Tensor var = inputs[4].toTensor();
  if (!state.done.insert(mean.data_ptr()).second) return;
  const std::int64_t channels = mean.numel();
  std::vector<std::int64_t> reduce;
  for (std::int64_t d = 0; d < x.dim(); ++d)
    if (d != 1) reduce.push_back(d);
  torch::Tensor xd = x.detach().to(torch::kDouble);
  torch::Tensor observed_mean = xd.mean(reduce);
  torch::Tensor observed_var = xd.var(reduce, /*unbiased=*/false);
  // A channel that is constant for this input (a dead ReLU upstream) gets its layer's typical variance.
  const double typical = observed_var.mean().item<double>();
  observed_var = observed_var.clamp_min(typical > 0 ? 1e-3 * typical : 1.0);
  auto options = torch::TensorOptions().dtype(torch::kDouble);
  torch::Tensor shift = torch::randn({channels}, state.generator, options) * 0.3;
  torch::Tensor scale = torch::rand({channels}, state.generator, options) * 1.5 + 0.5;  // U(0.5, 2)
  mean.copy_(observed_mean + shift * observed_var.sqrt());
  var.copy_(observed_var * scale);
  if (inputs[1].isTensor() && inputs[1].toTensor().defined())
    inputs[1].toTensor().copy_(torch::rand({channels}, state.generator, options) + 0.5);  // U(0.5, 1.5)
  if (inputs[2].isTensor() && inputs[2].toTensor().defined())
    inputs[2].toTensor().copy_(torch::randn({channels}, state.generator, options) * 0.3);
  ++state.count;
}

inline std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction& fn) {
  State* state = active;
  if (state == nullptr || state->busy || std::string(fn.name()) != "aten::batch_norm") return nullptr;
  state->busy = true;
  try {
    torch::NoGradGuard no_grad;
    set_statistics(*state, fn);
  } catch (...) {
    state->busy = false;
    throw;
  }
  state->busy = false;
  return nullptr;
}

}  // namespace random_batch_norm_detail

// Sets random statistics and affine parameters on every BatchNorm that runs for `inputs` (in place:
// `module` shares its tensors with its copies made by assignment, not with deepcopy()). Returns how
// many BatchNorms it set.
inline std::int64_t randomize_batch_norms(torch::jit::Module& module, const std::vector<torch::jit::IValue>& inputs,
                                          std::uint64_t seed = 1234) {
#ifndef NDEBUG
  FAIL("randomize_batch_norms reads RecordFunction inputs: it needs a release (NDEBUG) build, as LibTorch");
#endif
  namespace detail = random_batch_norm_detail;
  detail::State state;
  state.generator = at::detail::createCPUGenerator(seed);
  torch::NoGradGuard no_grad;
  module.eval();
  detail::active = &state;
  const auto handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback(&detail::on_enter).needsInputs(true).scopes({at::RecordScope::FUNCTION}));
  try {
    module.forward(inputs);
  } catch (...) {
    at::removeCallback(handle);
    detail::active = nullptr;
    throw;
  }
  at::removeCallback(handle);
  detail::active = nullptr;
  return state.count;
}

}  // namespace profagent::test
