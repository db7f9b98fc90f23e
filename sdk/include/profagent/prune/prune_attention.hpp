#pragma once
// Transformer support of the pruning engine (prune_graph.hpp, docs/pruning.md, "Transformers"):
// the fused `aten::_native_multi_head_attention` of nn.MultiheadAttention, the head split of
// decomposed attention (Swin: linear → reshape(B, N, 3, heads, head_dim) → matmul), gathers from a
// relative position bias table (`aten::index`), and the layout ops of windowed attention (roll, pad).
//
// The built-in registry (PruneRules::builtin()) prunes whole heads. A unit is either a whole head
// (kHeads) or index r of every head (kHeadDim: all heads keep the same head_dim, q and k together);
// both cannot be units of one analysis, so the other mode is a separate registry.
//
// nn.MultiheadAttention computes with an internal width equal to its input width (embed_dim =
// num_heads · head_dim, checked by the fused kernel and by F.multi_head_attention_forward), so its
// heads are pruned together with the residual stream that feeds it: head h owns residual channels
// [h·D, (h+1)·D) (kHeads), or index r of every head owns channels {h·D + r} (kHeadDim).
#include "profagent/prune/prune_graph.hpp"

namespace profagent::torch_tk {

enum class AttentionPruning { kHeads, kHeadDim };

// `base` (default: the built-in rules and those plugins added) with the attention rules set for `mode`.
PruneRules attention_rules(AttentionPruning mode, const PruneRules& base = PruneRules::registered());

// The built-in module rules (and those plugins added) plus transformer classes whose attributes describe pruned widths but are
// not always read by the forward (nn.MultiheadAttention embed_dim / kdim / vdim / num_heads / head_dim,
// torchvision's ShiftedWindowAttention.num_heads, VisionTransformer.hidden_dim). Module rules only see
// a module whose own parameters changed, so classes without parameters (EncoderBlock, PatchMerging)
// keep their attributes. Pass it as DependencyOptions::module_rules, with the mode of the rules.
ModuleRules transformer_module_rules(AttentionPruning mode = AttentionPruning::kHeads,
                                     const ModuleRules& base = ModuleRules::registered());

}  // namespace profagent::torch_tk
