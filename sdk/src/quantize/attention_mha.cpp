// nn.MultiheadAttention's forward written out with its projections as methods (linear_internal.hpp).
//
// Why replace the whole forward: MHA's scripted forward reads in_proj_weight and out_proj.weight in a
// dozen places (dtype, device and requires_grad checks that choose between the fused
// aten::_native_multi_head_attention and the Python slow path), so a quantized projection cannot be
// slotted into one op. Both branches compute the same thing in eval mode, which this forward does
// as the slow path (F.multi_head_attention_forward of LibTorch 1.13) writes it: q/k/v from one
// in-projection, q scaled by 1/sqrt(head_dim), (b)addbmm + softmax + bmm per head, out-projection.
// Dropout is not applied: quantized models are for inference (eval mode). The internal width is
// num_heads · head_dim, not the input's: a model whose heads were pruned (docs/pruning.md) has fewer
// q/k/v rows than embed_dim.
#include "linear_internal.hpp"

namespace profagent::quantize::detail {

void define_attention_forward(torch::jit::Module& attention, const std::string& in_method,
                              const std::string& out_method) {
  const std::string in = "self." + in_method;
  const std::string out = "self.out_proj." + out_method;
  const std::string source = R"(
def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Optional[Tensor]=None,
            need_weights: bool=True, attn_mask: Optional[Tensor]=None,
            average_attn_weights: bool=True) -> Tuple[Tensor, Optional[Tensor]]:
    same = bool(query is key) and bool(key is value)
    is_batched = query.dim() == 3
    if not is_batched:
        query = query.unsqueeze(1)
        key = key.unsqueeze(1)
        value = value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    elif self.batch_first:
        query = query.transpose(1, 0)
        key = key.transpose(1, 0)
        value = value.transpose(1, 0)
    tgt_len = query.size(0)
    bsz = query.size(1)
    num_heads = self.num_heads
    head_dim = self.head_dim
    embed_dim = num_heads * head_dim
    if same:
        qkv = IN(query)
        q = qkv[:, :, 0:embed_dim]
        k = qkv[:, :, embed_dim:2 * embed_dim]
        v = qkv[:, :, 2 * embed_dim:3 * embed_dim]
    else:
        q = IN(query)[:, :, 0:embed_dim]
        k = IN(key)[:, :, embed_dim:2 * embed_dim]
        v = IN(value)[:, :, 2 * embed_dim:3 * embed_dim]
    src_len = k.size(0)
    q = q.contiguous().view(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.contiguous().view(src_len, bsz * num_heads, head_dim).transpose(0, 1)
    v = v.contiguous().view(src_len, bsz * num_heads, head_dim).transpose(0, 1)
    mask = attn_mask
    if mask is not None:
        if mask.dim() == 2:
            mask = mask.unsqueeze(0)
    if key_padding_mask is not None:
        padding = key_padding_mask.view(bsz, 1, 1, src_len).expand(-1, num_heads, -1, -1).reshape(bsz * num_heads, 1, src_len)
        if mask is None:
            mask = padding
        elif mask.dtype == 11:
            mask = mask.logical_or(padding)
        else:
            mask = mask.masked_fill(padding, float("-inf"))
    if mask is not None:
        if mask.dtype == 11:
            mask = torch.zeros_like(mask, dtype=q.dtype).masked_fill_(mask, float("-inf"))
    q = q / (float(head_dim) ** 0.5)
    if mask is not None:
        attn = torch.baddbmm(mask, q, k.transpose(-2, -1))
    else:
        attn = torch.bmm(q, k.transpose(-2, -1))
    attn = torch.softmax(attn, -1)
    y = torch.bmm(attn, v)
    y = y.transpose(0, 1).contiguous().view(tgt_len * bsz, embed_dim)
    y = OUT(y)
    y = y.view(tgt_len, bsz, y.size(1))
    weights: Optional[Tensor] = None
    if need_weights:
        w = attn.view(bsz, num_heads, tgt_len, src_len)
        if average_attn_weights:
            w = w.sum(1) / num_heads
        if not is_batched:
            w = w.squeeze(0)
        weights = w
    if not is_batched:
        y = y.squeeze(1)
    elif self.batch_first:
        y = y.transpose(1, 0)
    return y, weights
)";
  // Code defined on a module type made in C++ sees its attributes but not its constants (MHA's
  // batch_first is in __constants__): a constant's value is written into the source instead.
  auto value_of = [&attention](const std::string& name) {
    if (!attention.type()->hasConstant(name)) return "self." + name;
    const c10::IValue value = attention.attr(name);
    if (value.isBool()) return std::string(value.toBool() ? "True" : "False");
    return std::to_string(value.toInt());
  };
  std::string text = source;
  for (auto [placeholder, replacement] :
       {std::pair<std::string, std::string>{"IN(", in + "("}, {"OUT(", out + "("},
        {"self.batch_first", value_of("batch_first")}, {"self.num_heads", value_of("num_heads")}}) {
    for (std::size_t at = text.find(placeholder); at != std::string::npos;
         at = text.find(placeholder, at + replacement.size()))
      text.replace(at, placeholder.size(), replacement);
  }
  define_methods(attention, text);
}

}  // namespace profagent::quantize::detail
