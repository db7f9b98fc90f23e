#pragma once
// Whether the profilers may read RecordFunction::inputs()/outputs(): only when this code and LibTorch
// agree on NDEBUG (the class has a debug-only member); a release LibTorch with a debug build of ours
// would read garbage. Private to profagent_profile.

namespace profagent::torch_tk {

#ifdef NDEBUG
constexpr bool kCanReadRecordFunctionValues = true;
#else
constexpr bool kCanReadRecordFunctionValues = false;
#endif

}  // namespace profagent::torch_tk
