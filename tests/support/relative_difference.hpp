#pragma once
// The one measure of "the same outputs" in the tests: the largest difference over the largest
// magnitude of the expected tensor, max|a-b| / max|b|. An absolute tolerance means nothing when the
// outputs are themselves tiny (torchvision's mobilenet_v2 at its random initialisation answers
// ~3e-9, efficientnet_b0 ~6e-14: |a-b| < 1e-3 holds for any a), so every exactness check divides by
// the magnitude and prints it. Include after torch_doctest.hpp.
#include <cmath>
#include <limits>
#include <ostream>

namespace profagent::test {

// Outputs that must be the same up to float32 rounding in another order of summation: deep real
// models (mobilenet_v2, 52 BatchNorms) measure up to ~1e-5; a wrongly sliced unit measures ≥ 1e-2.
constexpr double kExactRelative = 1e-4;

struct Difference {
  double max_abs = 0.0;    // max |actual - expected|
  double magnitude = 0.0;  // max |expected|
  double relative = 0.0;   // max_abs / magnitude; 0 when both are 0, infinite when only the magnitude is
};

inline std::ostream& operator<<(std::ostream& out, const Difference& d) {
  return out << "relative " << d.relative << " (max |diff| " << d.max_abs << " over max |expected| " << d.magnitude
             << ")";
}

// Shapes must match (a different shape is a failure of its own, not a difference).
inline Difference relative_difference(const torch::Tensor& actual, const torch::Tensor& expected) {
  REQUIRE_MESSAGE(actual.sizes() == expected.sizes(),
                  "shapes differ: " << actual.sizes() << " vs expected " << expected.sizes());
  Difference d;
  torch::NoGradGuard no_grad;
  const torch::Tensor a = actual.detach().to(torch::kDouble);
  const torch::Tensor b = expected.detach().to(torch::kDouble);
  d.max_abs = a.numel() == 0 ? 0.0 : (a - b).abs().max().item<double>();
  d.magnitude = b.numel() == 0 ? 0.0 : b.abs().max().item<double>();
  if (d.magnitude > 0.0)
    d.relative = d.max_abs / d.magnitude;
  else
    d.relative = d.max_abs == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
  if (std::isnan(d.max_abs) || std::isnan(d.magnitude)) d.relative = std::numeric_limits<double>::infinity();
  return d;
}

}  // namespace profagent::test
