#pragma once
// What the linear quantizer's files share (linear_sites.cpp, linear_kernels.cpp, attention_mha.cpp,
// linear_quantize.cpp). Private to profagent_quantize.
#include <torch/csrc/jit/ir/ir.h>
#include <torch/script.h>

#include <optional>
#include <string>
#include <vector>

#include "engine_own_types.hpp"
#include "profagent/quantize/scheme_names.hpp"

namespace profagent::quantize::detail {

// A linear op found in a method graph: y = x · Wᵀ + b with W a parameter of module `owner`.
struct LinearSite {
  torch::jit::Node* node = nullptr;
  std::string op;                       // linear, addmm, matmul, mm
  torch::jit::Value* input = nullptr;
  torch::jit::Value* owner = nullptr;   // the module value the weight is read from
  std::string owner_path;
  std::string weight;                   // attribute name on the owner
  bool stored_transposed = false;       // the parameter is [in, out] (x @ W): the linear weight is W.t()
  std::string bias;                     // a parameter of the same owner folded into the kernel, or ""
  torch::jit::Value* bias_value = nullptr;  // a bias computed at run time (added after), or nullptr
  torch::jit::Value* bias_input = nullptr;  // the op's bias operand as it was (nullptr: None)
};

std::vector<LinearSite> find_linear_sites(const torch_tk::OwnTypedModule& typed);

// nn.MultiheadAttention instances this rewrite supports (same embed dim for q/k/v, no bias_k/bias_v,
// no add_zero_attn): their path.
bool is_rewritable_attention(const torch::jit::Module& module);

// The per-scheme weights registered on `owner` and the method that computes the linear with them,
// named by the return value; `bias_argument`: the method takes the bias as its second argument.
struct KernelMade {
  std::string method;
  std::int64_t bytes_before = 0;
  std::int64_t bytes_after = 0;
  double weight_rel_error = 0.0;
};
KernelMade make_linear_kernel(torch::jit::Module& owner, const std::string& weight, bool stored_transposed,
                              const std::string& bias, bool bias_argument, Scheme scheme);

// Defines the written-out attention forward on an instance whose forward was left out of the copy:
// in_proj through `in_method` (a method of the attention module), out_proj through `out_method` (a
// method of its out_proj).
void define_attention_forward(torch::jit::Module& attention, const std::string& in_method,
                              const std::string& out_method);

// Compiles `source` as methods of `module`, with `torch` (aten) and `quantized` (quantized::) names.
void define_methods(torch::jit::Module& module, const std::string& source);

}  // namespace profagent::quantize::detail
