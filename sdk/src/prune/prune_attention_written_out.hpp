#pragma once
// nn.MultiheadAttention written out in the working copy, so that its heads prune without the residual
// width (prune_attention_written_out.cpp, docs/pruning.md "Transformers"). Private to profagent_prune.
#include <torch/script.h>

#include <string>
#include <vector>

namespace profagent::torch_tk {

// Replaces, in `working_copy` (whose module instances have class types of their own), the forward of
// every nn.MultiheadAttention that runs the fused kernel and is called for self-attention without
// masks by a written-out forward: q/k/v from in_proj, a split into num_heads heads of head_dim,
// softmax(q·kᵀ/√head_dim)·v, out_proj — the slow path's numerics. A traced instance gets num_heads and
// head_dim attributes. Returns the paths written out; an instance left fused adds a warning with why.
std::vector<std::string> write_out_self_attention(torch::jit::Module& working_copy, std::vector<std::string>& warnings);

}  // namespace profagent::torch_tk
