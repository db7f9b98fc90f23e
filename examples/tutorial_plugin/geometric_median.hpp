#pragma once
// The tutorial's importance criterion `geometric_median` (FPGM, He et al., CVPR 2019): a unit whose
// weights lie close to all the others' is replaceable, so it scores low. Written against
// profagent/torch/importance.hpp, which pulls in only ATen's Tensor (not <torch/torch.h>).
#include <profagent/provider.hpp>

namespace tutorial {

profagent::ProviderFactory geometric_median_factory();

}  // namespace tutorial
