#include "profagent/torch/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <utility>

namespace profagent::torch_tk {

namespace {

std::string image_shape_text(std::int64_t c, std::int64_t h, std::int64_t w) {
  return std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w);
}

// The resized height and width: the shorter side becomes `resize`, the longer one keeps the aspect
// ratio, truncated like torchvision's Resize(int) so that shapes agree with models trained there.
std::pair<std::int64_t, std::int64_t> resized(std::int64_t resize, std::int64_t h, std::int64_t w) {
  if (resize <= 0 || h <= 0 || w <= 0) return {h, w};
  if (h <= w) return {resize, resize * w / h};
  return {resize * h / w, resize};
}

// A value in [0, bound) from mt19937_64 by rejection, so that it is unbiased and, unlike
// std::uniform_int_distribution (whose algorithm each standard library chooses), the same everywhere.
std::uint64_t bounded(std::mt19937_64& rng, std::uint64_t bound) {
  // 2^64 mod bound: the values below it are the incomplete last cycle of `x % bound`.
  const std::uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    const std::uint64_t x = rng();
    if (x >= threshold) return x % bound;
  }
}

}  // namespace

Json DatasetInfo::to_json() const {
  Json out = Json::object();
  out["format"] = format;
  out["source"] = source;
  out["size"] = size;
  out["num_classes"] = num_classes;
  out["sample_shape"] = sample_shape;
  out["class_names"] = class_names;
  return out;
}

std::vector<std::int64_t> Transforms::output_shape(std::int64_t channels_in, std::int64_t height,
                                                   std::int64_t width) const {
  const std::int64_t c = channels > 0 ? channels : channels_in;
  auto [h, w] = resized(resize, height, width);
  if (center_crop > 0) h = w = center_crop;
  return {c, h, w};
}

Status Transforms::apply(const torch::Tensor& raw_uint8, torch::Tensor& out) const {
  if (!raw_uint8.defined() || raw_uint8.dim() != 4 || raw_uint8.scalar_type() != torch::kUInt8)
    return Status(ErrorCode::kInvalidArgument, "transforms expect a uint8 batch [N, C, H, W]");
  if (dtype != torch::kFloat32 && dtype != torch::kFloat16 && dtype != torch::kBFloat16)
    return Status(
        ErrorCode::kInvalidArgument,
        std::string("transform dtype must be float32, float16 or bfloat16, not ") + c10::toString(dtype));
  const std::int64_t n = raw_uint8.size(0), c_in = raw_uint8.size(1);
  const std::int64_t h_in = raw_uint8.size(2), w_in = raw_uint8.size(3);
  const std::int64_t c_out = channels > 0 ? channels : c_in;
  if (c_out != c_in && !(c_in == 1 && c_out == 3))
    return Status(ErrorCode::kInvalidArgument,
                  "channels: " + std::to_string(c_in) + " input channel(s) cannot become " +
                      std::to_string(c_out) + "; only 1 -> 3 replication is supported");
  if (mean.size() != std.size())
    return Status(ErrorCode::kInvalidArgument, "normalize: mean has " + std::to_string(mean.size()) +
                                                   " values but std has " + std::to_string(std.size()));
  if (!mean.empty() && static_cast<std::int64_t>(mean.size()) != c_out)
    return Status(ErrorCode::kInvalidArgument, "normalize: mean and std have " + std::to_string(mean.size()) +
                                                   " values but samples have " + std::to_string(c_out) +
                                                   " channel(s)");
  for (double s : std) {
    if (!(s > 0) || !std::isfinite(s))
      return Status(ErrorCode::kInvalidArgument, "normalize: every std must be a positive number");
  }
  const auto [h_resized, w_resized] = resized(resize, h_in, w_in);
  const std::vector<std::int64_t> shape = output_shape(c_in, h_in, w_in);
  const std::int64_t h_out = shape[1], w_out = shape[2];
  if (h_out > h_resized || w_out > w_resized)
    return Status(ErrorCode::kInvalidArgument, "center_crop " + std::to_string(center_crop) +
                                                   " is larger than the " + (resize > 0 ? "resized " : "") +
                                                   "image (" + image_shape_text(c_in, h_resized, w_resized) + ")");

  try {
    const std::vector<std::int64_t> out_sizes{n, c_out, h_out, w_out};
    const bool reusable = out.defined() && out.sizes() == torch::IntArrayRef(out_sizes) &&
                          out.scalar_type() == dtype && out.device() == raw_uint8.device() &&
                          out.is_contiguous();
    if (!reusable) out = torch::empty(out_sizes, raw_uint8.options().dtype(dtype));
    if (n == 0) return Status::ok();

    // Resize and crop at the input's channel count; replication is a broadcast at the end, which
    // makes a 1->3 dataset cost what a grey one does up to the final copy.
    torch::Tensor source = raw_uint8;
    if (h_resized != h_in || w_resized != w_in) {
      namespace F = torch::nn::functional;
      source = F::interpolate(raw_uint8.to(torch::kFloat32),
                              F::InterpolateFuncOptions()
                                  .size(std::vector<std::int64_t>{h_resized, w_resized})
                                  .mode(torch::kBilinear)
                                  .align_corners(false));
    }
    if (h_out != h_resized || w_out != w_resized) {
      // Offsets rounded half to even, as torchvision's CenterCrop (Python's round) does.
      const auto top = static_cast<std::int64_t>(std::nearbyint((h_resized - h_out) / 2.0));
      const auto left = static_cast<std::int64_t>(std::nearbyint((w_resized - w_out) / 2.0));
      source = source.narrow(2, top, h_out).narrow(3, left, w_out);
    }
    if (c_out != c_in) source = source.expand({n, c_out, h_out, w_out});

    // float32 output is scaled and normalized in place; half types are computed in float32 first
    // so that each value is rounded once, as torchvision's ToTensor/Normalize/.to(dtype) would.
    torch::Tensor work =
        dtype == torch::kFloat32 ? out : torch::empty(out_sizes, out.options().dtype(torch::kFloat32));
    work.copy_(source);
    work.div_(255.0);
    for (std::size_t channel = 0; channel < mean.size(); ++channel) {
      torch::Tensor plane = work.select(1, static_cast<std::int64_t>(channel));
      plane.sub_(mean[channel]).div_(std[channel]);
    }
    if (!work.is_same(out)) out.copy_(work);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime, std::string("transforms failed: ") + e.what());
  }
  return Status::ok();
}

void add_transform_fields(ConfigSchema& schema) {
  schema.add("channels", ConfigType::kInt)
      .min(1)
      .describe("output channels: 3 replicates grey (1-channel) samples; default keeps the input's");
  schema.add("resize", ConfigType::kInt)
      .min(1)
      .describe("resize so that the shorter side has this many pixels (bilinear, aspect ratio kept)");
  schema.add("center_crop", ConfigType::kInt).min(1).describe("crop a centered square of this size");
  schema.add("mean", ConfigType::kList)
      .element(ConfigType::kFloat)
      .min(1)
      .describe("per-channel mean subtracted after scaling pixels to [0, 1]; needs std");
  schema.add("std", ConfigType::kList)
      .element(ConfigType::kFloat)
      .min(1)
      .describe("per-channel standard deviation divided by after subtracting mean; needs mean");
  schema.add("dtype", ConfigType::kEnum)
      .choices({"float32", "float16", "bfloat16"})
      .default_value("float32")
      .describe("element type of the image tensors");
}

Result<Transforms> transforms_from_config(const Config& config) {
  Transforms transforms;
  try {
    if (config.has("channels")) transforms.channels = config.get_int("channels");
    if (config.has("resize")) transforms.resize = config.get_int("resize");
    if (config.has("center_crop")) transforms.center_crop = config.get_int("center_crop");
    if (config.has("mean"))
      for (const Json& value : config.get_list("mean")) transforms.mean.push_back(value.get<double>());
    if (config.has("std"))
      for (const Json& value : config.get_list("std")) transforms.std.push_back(value.get<double>());
    if (config.has("dtype")) {
      const std::string dtype = config.get_string("dtype");
      if (dtype == "float32")
        transforms.dtype = torch::kFloat32;
      else if (dtype == "float16")
        transforms.dtype = torch::kFloat16;
      else if (dtype == "bfloat16")
        transforms.dtype = torch::kBFloat16;
      else
        return Status(ErrorCode::kInvalidArgument,
                      "dtype: '" + dtype + "' is not one of float32, float16, bfloat16");
    }
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInvalidArgument, std::string("transform config: ") + e.what());
  }
  if (transforms.channels < 0 || transforms.resize < 0 || transforms.center_crop < 0)
    return Status(ErrorCode::kInvalidArgument, "channels, resize and center_crop must be positive");
  if (transforms.mean.empty() != transforms.std.empty())
    return Status(ErrorCode::kInvalidArgument, transforms.mean.empty()
                                                   ? "std is given without mean: normalization needs both"
                                                   : "mean is given without std: normalization needs both");
  if (transforms.mean.size() != transforms.std.size())
    return Status(ErrorCode::kInvalidArgument, "mean has " + std::to_string(transforms.mean.size()) +
                                                   " values but std has " +
                                                   std::to_string(transforms.std.size()));
  for (double s : transforms.std) {
    if (!(s > 0) || !std::isfinite(s))
      return Status(ErrorCode::kInvalidArgument, "std: every value must be a positive number");
  }
  return transforms;
}

std::vector<std::int64_t> calibration_indices(std::int64_t size, std::int64_t count, std::uint64_t seed) {
  if (size <= 0 || count <= 0) return {};
  const std::int64_t k = std::min(count, size);
  std::vector<std::int64_t> indices(static_cast<std::size_t>(size));
  std::iota(indices.begin(), indices.end(), std::int64_t{0});
  std::mt19937_64 rng(seed);
  // Partial Fisher-Yates: after step i the first i+1 entries are a uniform sample without repeats.
  for (std::int64_t i = 0; i < k; ++i) {
    const auto j = i + static_cast<std::int64_t>(bounded(rng, static_cast<std::uint64_t>(size - i)));
    std::swap(indices[static_cast<std::size_t>(i)], indices[static_cast<std::size_t>(j)]);
  }
  indices.resize(static_cast<std::size_t>(k));
  return indices;
}

// A batch_size below 1 is taken as "everything in one batch" rather than an endless list of empties.
std::vector<std::vector<std::int64_t>> sequential_batches(std::int64_t size, std::int64_t batch_size) {
  std::vector<std::vector<std::int64_t>> batches;
  if (size <= 0) return batches;
  if (batch_size <= 0) batch_size = size;
  batches.reserve(static_cast<std::size_t>((size + batch_size - 1) / batch_size));
  for (std::int64_t start = 0; start < size; start += batch_size) {
    const std::int64_t end = std::min(size, start + batch_size);
    std::vector<std::int64_t> batch(static_cast<std::size_t>(end - start));
    std::iota(batch.begin(), batch.end(), start);
    batches.push_back(std::move(batch));
  }
  return batches;
}

Result<std::pair<std::string, Json>> split_dataset_config(const Json& dataset, const std::string& key) {
  if (!dataset.is_object())
    return Status(ErrorCode::kInvalidArgument, key + ": expected a map with a 'format', got " + dataset.dump());
  if (!dataset.contains("format") || !dataset["format"].is_string() ||
      dataset["format"].get<std::string>().empty())
    return Status(ErrorCode::kInvalidArgument,
                  key + ".format is required: the dataset provider to read it with (idx, cifar, image_folder)");
  Json rest = dataset;
  rest.erase("format");
  return std::make_pair(dataset["format"].get<std::string>(), std::move(rest));
}

Result<std::unique_ptr<Dataset>> make_dataset(AgentContext& context, const Json& dataset, const std::string& key) {
  PROFAGENT_ASSIGN_OR_RETURN(auto split, split_dataset_config(dataset, key));
  auto made = context.make_provider_as<Dataset>(kDatasetInterface, split.first, split.second);
  if (!made) return std::move(made).take_status().with_context("making the dataset '" + split.first + "' (`" + key + "`)");
  if (made.value()->info().size <= 0)
    return Status(ErrorCode::kInvalidArgument, "`" + key + "` (" + made.value()->info().source + ") is empty");
  return std::move(made).value();
}

}  // namespace profagent::torch_tk
