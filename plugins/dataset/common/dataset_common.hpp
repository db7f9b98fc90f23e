#pragma once
// What the dataset providers (idx, cifar, image_folder) share: index checks, buffer reuse, the
// `limit` key, and InMemoryDataset, the Dataset of formats whose raw samples are all loaded at once
// (IDX, CIFAR) as one uint8 [N, C, H, W] tensor. Linked statically into each provider plugin.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "profagent/options.hpp"
#include "profagent/torch/dataset.hpp"

namespace profagent::datasets {

using torch_tk::Batch;
using torch_tk::DatasetInfo;
using torch_tk::Transforms;

// The output shape of one C×H×W sample under `transforms`, or why they cannot apply to it. Found by
// transforming one blank sample, so the check at construction is the code that runs on every batch.
Result<std::vector<std::int64_t>> checked_sample_shape(const Transforms& transforms, std::int64_t channels,
                                                       std::int64_t height, std::int64_t width);

// kInvalidArgument naming the first index outside [0, size) and its position in the batch.
Status check_indices(const std::vector<std::int64_t>& indices, std::int64_t size, const std::string& format);

// Keeps `tensor` when it already is a contiguous CPU tensor of `sizes` and `dtype`, else allocates one.
void reuse_or_allocate(torch::Tensor& tensor, torch::IntArrayRef sizes, torch::ScalarType dtype);

// The optional `limit` key (use only the first N samples), bound to `member`, which stays 0 (all)
// when the key is absent.
template <class Options>
void add_limit_field(OptionsSchema<Options>& schema, std::int64_t Options::*member) {
  schema.field_without_default("limit", member)
      .min(1)
      .describe("use only the first N samples (in file order); all of them when absent");
}

class InMemoryDataset : public torch_tk::Dataset {
 public:
  // `images`: uint8 [N, C, H, W], contiguous; `labels`: int64 [N]. `info` must already carry the
  // transformed sample shape (see checked_sample_shape).
  InMemoryDataset(DatasetInfo info, Transforms transforms, torch::Tensor images, torch::Tensor labels);

  const DatasetInfo& info() const override { return info_; }
  // Not thread-safe: the index and raw-pixel buffers are reused from one call to the next.
  Status read_batch(const std::vector<std::int64_t>& indices, Batch& out) override;

 private:
  DatasetInfo info_;
  Transforms transforms_;
  torch::Tensor images_;
  torch::Tensor labels_;
  torch::Tensor index_buffer_;  // int64 [B]
  torch::Tensor raw_buffer_;    // uint8 [B, C, H, W], the selected samples before the transforms
};

}  // namespace profagent::datasets
