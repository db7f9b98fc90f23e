#pragma once
// Datasets are providers of interface "dataset" (plugins/dataset/<format>): IDX (MNIST,
// Fashion-MNIST), CIFAR binary, ImageFolder. An agent gets one with
//   context.make_provider_as<profagent::torch_tk::Dataset>("dataset", "idx", config)
// and reads batches of transformed samples. Including this header pulls in LibTorch.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "profagent/agent.hpp"
#include "profagent/config_schema.hpp"
#include "profagent/json.hpp"
#include "profagent/provider.hpp"
#include "profagent/status.hpp"

namespace profagent::torch_tk {

constexpr const char* kDatasetInterface = "dataset";

struct DatasetInfo {
  std::string format;                 // "idx", "cifar", "image_folder"
  std::string source;                 // what it was read from (paths)
  std::int64_t size = 0;              // number of samples
  std::int64_t num_classes = 0;
  std::vector<std::int64_t> sample_shape;  // C, H, W after transforms
  std::vector<std::string> class_names;    // may be empty
  Json to_json() const;
};

// A batch: images [N, C, H, W] (dtype per the transforms, float32 by default) and int64 labels [N].
struct Batch {
  torch::Tensor images;
  torch::Tensor labels;
};

class Dataset : public Provider {
 public:
  virtual const DatasetInfo& info() const = 0;
  // Fills `out` with the samples at `indices`, transforms applied. Reuses out's tensors when they
  // already have the right shape and dtype, so iterating allocates nothing per sample or batch.
  virtual Status read_batch(const std::vector<std::int64_t>& indices, Batch& out) = 0;
};

// The declared per-sample transforms every dataset format accepts in its config (applied in this
// order): channels (1→3 replication), resize (shorter side, bilinear), center_crop, normalize
// (mean/std per channel, after scaling pixels to [0,1]), dtype (float32|float16|bfloat16).
struct Transforms {
  std::int64_t channels = 0;     // 0: keep
  std::int64_t resize = 0;       // 0: keep
  std::int64_t center_crop = 0;  // 0: keep
  std::vector<double> mean;      // empty: no normalization
  std::vector<double> std;
  torch::ScalarType dtype = torch::kFloat32;

  // The output sample shape for an input of `channels` × `height` × `width`.
  std::vector<std::int64_t> output_shape(std::int64_t channels, std::int64_t height, std::int64_t width) const;
  // Applies to a uint8 [N, C, H, W] batch (values 0..255), writing into `out` (reused when it fits).
  Status apply(const torch::Tensor& raw_uint8, torch::Tensor& out) const;
};

// Adds the transform keys (channels, resize, center_crop, mean, std, dtype) to a dataset's schema,
// and reads them back from its Config.
void add_transform_fields(ConfigSchema& schema);
Result<Transforms> transforms_from_config(const Config& config);

// A fixed-seed sample of `count` distinct indices out of `size` (all of them, shuffled, when
// count >= size): the calibration subset other agents use, identical for the same seed.
std::vector<std::int64_t> calibration_indices(std::int64_t size, std::int64_t count, std::uint64_t seed);

// Indices 0..size-1 in batches of `batch_size` (the last one may be shorter).
std::vector<std::vector<std::int64_t>> sequential_batches(std::int64_t size, std::int64_t batch_size);

// A stage's `dataset` config map ({format: idx, images: ..., ...}) split into the provider id (its
// `format`) and the provider's own config.
Result<std::pair<std::string, Json>> split_dataset_config(const Json& dataset,
                                                          const std::string& key = "dataset");
// Makes the dataset provider that a `dataset` config map names, through the stage's context.
// An empty dataset is refused. `key` names the config key in errors.
Result<std::unique_ptr<Dataset>> make_dataset(AgentContext& context, const Json& dataset,
                                              const std::string& key = "dataset");

}  // namespace profagent::torch_tk
