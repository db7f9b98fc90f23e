#pragma once
// The dynamic profile of a TorchScript model: per-layer latency (p50, p90, share of the forward), the
// memory each layer needs, and a Chrome trace of one forward — measured on the ORIGINAL module as it
// runs normally (eval, no grad, the graph executor's optimized plan), not on a copy.
//
// Method ("timeline_partition"): top-level aten ops only (ops a top-level op calls, such as
// aten::conv2d's aten::_convolution, are not counted again), seen through thread-local RecordFunction
// callbacks on the thread that runs the forward.
//   1. Attribution, once, in an untimed forward after the warm-up: each top-level op's name and the
//      module whose code ran it — the interpreter's module hierarchy for the current instruction
//      (torch::jit::currentModuleHierarchy), exact after the executor inlined every submodule call.
//      The same forward measures memory and records the Chrome trace (below).
//   2. Timing, in `repeats` profiled forwards: the callback only takes two steady_clock stamps per
//      top-level op into preallocated buffers and checks that the i-th op has the attribution
//      forward's i-th name; while a top-level op runs, RecordFunction is switched off on the thread,
//      so its nested ops run without callbacks. The i-th op is charged from the end of op i-1 to its
//      own end (its interval plus the interpreter's work before it: attribute reads, list building),
//      to the attribution forward's module of op i. The layers' charges add up to the forward's wall
//      time except the head and tail gap (forward entered → first op, last op → forward returned),
//      reported as `gap_ms` and left unattributed. Nothing is subtracted.
//   If a profiled forward runs a different op sequence (data-dependent control flow, a graph
//   re-specialized after the warm-up), the timing starts over with per-op attribution (method
//   "timeline_partition+per_op_attribution"): the hierarchy is walked inside every op's callback in
//   the timed forwards too, and that walk's time is measured and excluded (`bookkeeping_ms`; 0 in
//   the default method).
// A layer's latency is its mean charge over the middle half of the profiled forwards (ranked by
// wall time: robust to a preempted forward, and additive); its own p50/p90 over all forwards are
// given too. Bare forwards (no callback) alternate with the profiled ones, at the same thread count
// (set before the warm-up), and `sum_ratio` = the sum of the layers' latencies / the bare forwards'
// p50 says how well the per-layer figures add up to what the model really takes (the profiled
// forward's own overhead included). The forwards run after keep_freed_memory_for_reuse()
// (profagent/torch/heap.hpp), as the evaluation's do, so the bare p50 is the evaluation's latency and
// does not depend on what the process freed before; `bare_page_faults` shows a forward that still
// faults its buffers in.
//
// Memory (`memory_method` "c10_allocator_report"): during the attribution forward, c10's allocator reports
// every allocation and free on this thread to a MemoryReportingInfoBase installed with
// c10::DebugInfoGuard (the hook torch.profiler(profile_memory=True) uses). The running sum's
// high-water mark is the forward's peak; a layer's `peak_bytes` is the most its ops pushed the running
// sum above what was live when each op started (what the layer needs on top of what is already held);
// `live_peak_bytes` is the running sum's high-water mark while its ops ran (where the model's peak
// is). Memory that libraries allocate themselves (oneDNN, OpenBLAS scratch) is not seen. On CUDA the
// caching allocator reports through the same hook.
//
// CUDA: the device is synchronized before each forward and at the end of every top-level op, so an
// op's interval includes its kernels (`method` "timeline_partition+cuda_sync"); the bare forwards
// synchronize at the end, as the evaluation agent does.
#include <torch/script.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/status.hpp"

namespace profagent::torch_tk {

struct DynamicProfileOptions {
  std::string model_name;  // for messages; empty: the module's class name
  int warmup = 3;          // untimed forwards first (the profiling executor specializes the graph)
  int repeats = 10;        // timed profiled forwards (and as many bare ones, interleaved)
  int threads = 0;         // intra-op threads while profiling; 0 keeps the current setting
  bool bare = true;        // time bare forwards too (for sum_ratio)
  bool memory = true;      // the attribution forward runs with the allocator hook
  bool trace = true;       // record the ops of the attribution forward for the Chrome trace
  // Told the seconds of each part of the profile as it ends, in this order: "warm-up" (preparing
  // the module and the untimed forwards), "attribution forward", "timed forwards", "summary". The
  // parts add up to the whole call; the profiler agent records them as phases of its stage.
  std::function<void(const std::string& part, double seconds)> on_part;
};

// One top-level op of the traced forward.
struct OpEvent {
  std::string op;     // "aten::conv2d"
  std::string layer;  // module path, kRootLayer for the root
  double start_us = 0;  // from the forward's start
  double duration_us = 0;
  double charged_us = 0;  // duration + the gap before it
  std::vector<std::vector<std::int64_t>> input_shapes;  // tensor inputs (empty in a debug build)
  std::int64_t bytes_read = 0;     // tensor inputs' bytes (weights included)
  std::int64_t bytes_written = 0;  // tensor outputs' bytes
  std::int64_t peak_bytes = 0;     // the most the running allocation sum rose above its start
};

struct LayerTiming {
  std::string name;
  std::int64_t ops = 0;  // top-level ops per forward
  std::vector<double> samples_ms;  // charged time per profiled forward
  // The layer's time in a typical forward: its mean charge over the middle half of the profiled
  // forwards (ranked by wall time), so that the layers add up to that forward. Reported as latency_ms.
  double ms = 0;
  double p50_ms = 0, p90_ms = 0, mean_ms = 0;  // over all profiled forwards, the layer on its own
  double share = 0;  // ms / sum of the layers' ms
  std::int64_t peak_bytes = 0;
  std::int64_t live_peak_bytes = 0;
  std::int64_t bytes_read = 0;  // from the traced forward
  std::int64_t bytes_written = 0;
  Json to_json() const;
};

struct ForwardStats {
  double p50_ms = 0, p90_ms = 0, mean_ms = 0, min_ms = 0;
  std::vector<double> samples_ms;
  Json to_json() const;
};

struct DynamicProfile {
  std::string model;
  std::string device;  // "cpu", "cuda:0"
  std::string method;
  std::string memory_method;
  int threads = 0;
  int warmup = 0;
  int repeats = 0;
  std::vector<LayerTiming> layers;  // in order of first execution
  ForwardStats profiled;            // wall time of the profiled forwards
  ForwardStats bare;                // wall time of the bare forwards (empty when options.bare is off)
  double sum_of_layers_ms = 0;      // sum of the layers' ms
  double gap_ms = 0;                // the unattributed head + tail gap per forward (middle half's mean)
  double bookkeeping_ms = 0;        // per-op fallback only: the hierarchy walk's time per forward (excluded)
  double sum_ratio = 0;             // sum_of_layers_ms / bare.p50_ms (profiled.p50_ms without bare)
  // Minor page faults of a bare forward (median): ~0 when the forward reuses the memory it freed
  // before; one per 4 KiB page of every buffer the heap had handed back to the OS (heap.hpp).
  double bare_page_faults = 0;
  std::int64_t peak_bytes = 0;      // the forward's peak extra memory (0 when not measured)
  std::vector<OpEvent> trace;       // the ops of one forward (when options.trace)
  bool shapes_recorded = false;     // RecordFunction inputs were readable (release builds)
  double seconds = 0;               // time the whole profile took

  const LayerTiming* find(const std::string& name) const;
  // Everything but the trace: {model, device, method, threads, ..., layers: [...]}.
  Json to_json() const;
  // Chrome trace-event JSON of the traced forward: {"traceEvents": [{"name", "ph": "X", "ts", "dur",
  // "pid", "tid", "args": {"module", "input_shapes", ...}}], "displayTimeUnit": "ms"}.
  Json chrome_trace() const;
};

// Profiles `module` on `inputs` (on the inputs' device). The module is used as it is when every
// submodule is in eval mode; otherwise an eval-mode clone is profiled (the caller's is not changed).
// Errors: kInvalidArgument for bad options, kRuntime naming the model and the forward's own message.
Result<DynamicProfile> dynamic_profile(const torch::jit::Module& module, const std::vector<torch::jit::IValue>& inputs,
                                       const DynamicProfileOptions& options = {});

// The module path of a torch::jit::currentModuleHierarchy() entry list, "" for the root:
// {"TOP(ResNet)::forward", "layer1(Sequential)::forward", "0(BasicBlock)::forward",
//  "SELF(BasicBlock)::_impl", "::relu"} → "layer1.0". Exposed for tests.
std::string module_path_from_hierarchy(const std::vector<std::string>& hierarchy);

}  // namespace profagent::torch_tk
