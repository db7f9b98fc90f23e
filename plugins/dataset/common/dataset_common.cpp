#include "dataset_common.hpp"

#include <algorithm>
#include <exception>
#include <utility>

namespace profagent::datasets {

Result<std::vector<std::int64_t>> checked_sample_shape(const Transforms& transforms, std::int64_t channels,
                                                       std::int64_t height, std::int64_t width) {
  torch::Tensor blank;
  torch::Tensor out;
  try {
    blank = torch::zeros({1, channels, height, width}, torch::kUInt8);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("cannot allocate a sample: ") + e.what());
  }
  PROFAGENT_RETURN_IF_ERROR(transforms.apply(blank, out));
  const std::vector<std::int64_t> shape = transforms.output_shape(channels, height, width);
  if (out.sizes().slice(1) != torch::IntArrayRef(shape))
    return Status(ErrorCode::kInternal, "transforms produced a sample shape other than output_shape()");
  return shape;
}

Status check_indices(const std::vector<std::int64_t>& indices, std::int64_t size, const std::string& format) {
  const auto bad = std::find_if(indices.begin(), indices.end(),
                                [size](std::int64_t index) { return index < 0 || index >= size; });
  if (bad == indices.end()) return Status::ok();
  return Status(ErrorCode::kInvalidArgument,
                "index " + std::to_string(*bad) + " (position " + std::to_string(bad - indices.begin()) +
                    " in the batch) is out of range: the " + format + " dataset has " + std::to_string(size) +
                    " samples (0.." + std::to_string(size - 1) + ")");
}

void reuse_or_allocate(torch::Tensor& tensor, torch::IntArrayRef sizes, torch::ScalarType dtype) {
  if (tensor.defined() && tensor.sizes() == sizes && tensor.scalar_type() == dtype && tensor.is_cpu() &&
      tensor.is_contiguous())
    return;
  tensor = torch::empty(sizes, torch::TensorOptions().dtype(dtype));
}

InMemoryDataset::InMemoryDataset(DatasetInfo info, Transforms transforms, torch::Tensor images,
                                 torch::Tensor labels)
    : info_(std::move(info)),
      transforms_(std::move(transforms)),
      images_(std::move(images)),
      labels_(std::move(labels)) {}

Status InMemoryDataset::read_batch(const std::vector<std::int64_t>& indices, Batch& out) {
  PROFAGENT_RETURN_IF_ERROR(check_indices(indices, info_.size, info_.format));
  try {
    const auto count = static_cast<std::int64_t>(indices.size());
    reuse_or_allocate(index_buffer_, {count}, torch::kInt64);
    std::copy(indices.begin(), indices.end(), index_buffer_.data_ptr<std::int64_t>());
    reuse_or_allocate(raw_buffer_, {count, images_.size(1), images_.size(2), images_.size(3)}, torch::kUInt8);
    torch::index_select_out(raw_buffer_, images_, 0, index_buffer_);
    reuse_or_allocate(out.labels, {count}, torch::kInt64);
    torch::index_select_out(out.labels, labels_, 0, index_buffer_);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime, "reading a " + info_.format + " batch failed: " + e.what());
  }
  return transforms_.apply(raw_buffer_, out.images);
}

}  // namespace profagent::datasets
