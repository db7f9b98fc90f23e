// The range a value takes over the calibration batches, and its quint8 scale and zero point.
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>

#include "static_internal.hpp"

namespace profagent::quantize {

namespace {
// Elements drawn per batch for the percentile: enough for a 99.99th percentile to rest on ~6 samples
// per batch above it, few enough that a ResNet-50 calibration stays within a second per value.
constexpr std::int64_t kObserverSamplesPerBatch = 1 << 16;
}  // namespace

Status check_observer_kind(const std::string& kind, double percentile) {
  if (kind != "minmax" && kind != "percentile")
    return Status(ErrorCode::kInvalidArgument,
                  "unknown observer '" + kind + "': static int8 has 'minmax' and 'percentile'");
  if (kind == "percentile" && !(percentile > 50.0 && percentile <= 100.0))
    return Status(ErrorCode::kInvalidArgument,
                  "percentile " + std::to_string(percentile) + " is outside (50, 100]");
  return Status::ok();
}

RangeObserver::RangeObserver(std::string kind, double percentile, std::uint64_t seed)
    : kind_(std::move(kind)), percentile_(percentile), generator_(at::detail::createCPUGenerator(seed)) {}

void RangeObserver::add(const at::Tensor& batch) {
  at::Tensor values = batch.detach().to(at::kFloat);
  if (!first_sample_.defined()) {
    first_sample_ = values.dim() > 0 && values.size(0) > 0 ? values.narrow(0, 0, 1).clone() : values.clone();
    sizes_ = values.sizes().vec();
  } else {
    auto sizes = values.sizes().vec();
    // The batch size may differ (a last, smaller batch); any other dimension changing is a shape change.
    if (sizes.size() != sizes_.size() || !std::equal(sizes.begin() + 1, sizes.end(), sizes_.begin() + 1))
      sizes_vary_ = true;
  }
  if (values.numel() == 0) return;
  const double lo = values.min().item<double>();
  const double hi = values.max().item<double>();
  min_ = seen_ ? std::min(min_, lo) : lo;
  max_ = seen_ ? std::max(max_, hi) : hi;
  seen_ = true;
  if (kind_ == "percentile") {
    at::Tensor flat = values.reshape({-1});
    if (flat.numel() > kObserverSamplesPerBatch) {
      at::Tensor index = at::randint(flat.numel(), {kObserverSamplesPerBatch}, generator_, at::kLong);
      flat = flat.index_select(0, index);
    }
    samples_.push_back(flat.clone());
  }
}

std::pair<double, double> RangeObserver::range() const {
  if (kind_ != "percentile" || samples_.empty()) return {min_, max_};
  at::Tensor all = at::cat(samples_).to(at::kDouble);
  const double q = percentile_ / 100.0;
  // Each side holds percentile% of the elements; never wider than what was seen.
  const double lo = at::quantile(all, 1.0 - q).item<double>();
  const double hi = at::quantile(all, q).item<double>();
  return {std::max(lo, min_), std::min(hi, max_)};
}

QuantParams RangeObserver::params() const {
  auto [lo, hi] = range();
  lo = std::min(lo, 0.0);  // zero must be exact: padding and ReLU's zeros stay zeros
  hi = std::max(hi, 0.0);
  QuantParams params;
  params.scale = std::max((hi - lo) / 255.0, 1e-8);
  params.zero_point =
      std::clamp<std::int64_t>(static_cast<std::int64_t>(std::nearbyint(-lo / params.scale)), 0, 255);
  // The kernels keep the scale in fp32: round it there so every consumer agrees on it.
  params.scale = static_cast<double>(static_cast<float>(params.scale));
  return params;
}

}  // namespace profagent::quantize
