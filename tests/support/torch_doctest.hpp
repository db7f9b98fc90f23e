#pragma once
// Include this instead of <doctest/doctest.h> in tests that use LibTorch: Debian's c10 logs through
// glog, whose CHECK macros would replace doctest's, so LibTorch comes first and glog's macros go.
#include <torch/script.h>
#include <torch/torch.h>
#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#undef CHECK_LT
#undef CHECK_LE
#undef CHECK_GT
#undef CHECK_GE
#include <doctest/doctest.h>
