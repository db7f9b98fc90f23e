// The dynamic profile: per-layer latency from timed forwards (timeline partition, else per-op
// attribution), memory and the trace from one attribution forward, and its JSON.
#include "profagent/profile/dynamic_profile.hpp"

#include <ATen/Parallel.h>
#include <sys/resource.h>
#include <c10/util/ThreadLocalDebugInfo.h>
#include <torch/cuda.h>

#include <algorithm>
#include <exception>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>

#include "dynamic_recorders.hpp"
#include "profagent/torch/allocation_counter.hpp"
#include "profagent/torch/errors.hpp"
#include "profagent/torch/heap.hpp"
#include "profagent/torch/model_io.hpp"
#include "profagent/torch/threads.hpp"
#include "record_function_values.hpp"

namespace profagent::torch_tk {

namespace {

ForwardStats stats_of(std::vector<double> samples) {
  ForwardStats stats;
  if (samples.empty()) return stats;
  stats.p50_ms = percentile(samples, 0.5);
  stats.p90_ms = percentile(samples, 0.9);
  stats.min_ms = *std::min_element(samples.begin(), samples.end());
  double total = 0;
  for (double s : samples) total += s;
  stats.mean_ms = total / static_cast<double>(samples.size());
  stats.samples_ms = std::move(samples);
  return stats;
}

std::string shapes_text(const std::vector<torch::jit::IValue>& inputs) {
  std::string text;
  for (const auto& input : inputs) {
    if (!text.empty()) text += ", ";
    text += input.isTensor() ? c10::str(input.toTensor().sizes()) : input.tagKind();
  }
  return "(" + text + ")";
}

bool all_eval(const torch::jit::Module& module) {
  for (const auto& child : module.modules())
    if (child.hasattr("training") && child.attr("training").toBool()) return false;
  return true;
}

c10::Device device_of(const std::vector<torch::jit::IValue>& inputs) {
  for (const auto& input : inputs)
    if (input.isTensor() && input.toTensor().defined()) return input.toTensor().device();
  return c10::Device(c10::kCPU);
}

// The eval-mode model forwarded on the profile's inputs; sync() waits for the device.
struct Forwarder {
  torch::jit::Module& model;
  const std::vector<torch::jit::IValue>& inputs;
  bool cuda = false;

  c10::IValue run() const { return model.forward(std::vector<torch::jit::IValue>(inputs.begin(), inputs.end())); }
  void sync() const {
    if (cuda) torch::cuda::synchronize();
  }
};

// What the forwards measured, before the statistics. Layers are in order of first execution: the
// attribution forward's, then any the per-op fallback adds.
struct Measurements {
  std::vector<std::string> layer_names;
  std::unordered_map<std::string, int> layer_index;
  std::vector<std::int64_t> layer_ops;             // top-level ops per forward
  std::vector<std::vector<double>> layer_samples;  // [layer][repeat]
  std::vector<double> gaps, bookkeeping, profiled, bare;
  std::vector<double> bare_page_faults;  // minor page faults of each bare forward
  bool per_op = false;

  int layer_of(const std::string& name) {
    auto found = layer_index.find(name);
    if (found != layer_index.end()) return found->second;
    const int id = static_cast<int>(layer_names.size());
    layer_index.emplace(name, id);
    layer_names.push_back(name);
    return id;
  }

  // Drops every timed sample: the forwards start over, attributed op by op.
  void start_per_op() {
    per_op = true;
    bare.clear();
    bare_page_faults.clear();
    profiled.clear();
    gaps.clear();
    bookkeeping.clear();
    layer_samples.clear();
  }

  // Repeat r's charge per layer, its unowned gap and the recorder's own time.
  void add_repeat(int r, const std::vector<double>& charge, double gap, double kept) {
    gaps.push_back(gap);
    bookkeeping.push_back(kept);
    layer_samples.resize(layer_names.size());
    for (std::size_t l = 0; l < layer_names.size(); ++l) {
      auto& samples = layer_samples[l];
      samples.resize(static_cast<std::size_t>(r), 0.0);  // a layer first seen now ran 0 ms before
      samples.push_back(charge[l]);
    }
  }
};

Status check_options(const DynamicProfileOptions& options, const std::string& who) {
  if (options.repeats < 1)
    return Status(ErrorCode::kInvalidArgument, who + ": repeats must be at least 1, got " + std::to_string(options.repeats));
  if (options.warmup < 0)
    return Status(ErrorCode::kInvalidArgument, who + ": warmup must not be negative, got " + std::to_string(options.warmup));
  if (options.threads < 0)
    return Status(ErrorCode::kInvalidArgument, who + ": threads must not be negative, got " + std::to_string(options.threads));
  return Status::ok();
}

// The module itself when every submodule is in eval mode, else an eval-mode copy.
Result<torch::jit::Module> eval_model(const torch::jit::Module& module, const std::string& who) {
  torch::jit::Module model = module;
  try {
    if (!all_eval(module)) {
      model = module.clone();
      for (auto child : model.modules())
        if (child.hasattr("training")) child.setattr("training", false);
    }
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime, who + ": cannot make an eval-mode copy: " + torch_error_reason(e));
  }
  return model;
}

// The attribution forward (untimed): every top-level op's name and module path, in order; the same
// forward measures memory (c10's allocator reports to `counter`) and records the trace, whose
// callbacks read every op's inputs and outputs.
void attribution_forward(const Forwarder& forward, OpRecorder& detail, const std::shared_ptr<AllocationCounter>& counter,
                         bool memory) {
  std::optional<c10::DebugInfoGuard> guard;
  if (memory) {
    guard.emplace(c10::DebugInfoKind::PROFILER_STATE, counter);
    detail.set_counter(counter.get());
  }
  detail.begin_forward(Clock::now());
  {
    // The output is released inside the guard: its memory is part of the forward's peak.
    c10::IValue output = forward.run();
    forward.sync();
    detail.end_forward(Clock::now());
  }
}

// This thread's minor page faults so far (0 where the system cannot tell).
double thread_page_faults() {
#ifdef RUSAGE_THREAD
  rusage usage{};
  if (::getrusage(RUSAGE_THREAD, &usage) == 0) return static_cast<double>(usage.ru_minflt);
#endif
  return 0;
}

// A forward without any recorder: its wall time (ms); its minor page faults added to `faults`.
double bare_forward(const Forwarder& forward, std::vector<double>& faults) {
  const double faults_before = thread_page_faults();
  const auto start = Clock::now();
  (void)forward.run();
  forward.sync();
  const double ms = ms_between(start, Clock::now());
  faults.push_back(thread_page_faults() - faults_before);
  return ms;
}

// A forward under the timeline recorder: its wall time (ms), its charge per layer added to `charge`
// and the time no op owns in `gap`; nullopt when its op sequence differs from the attribution
// forward's (data-dependent control flow, a graph re-specialized after warm-up).
std::optional<double> timeline_forward(const Forwarder& forward, TimelineRecorder& timeline,
                                       const std::vector<int>& sequence_layers, std::vector<double>& charge,
                                       double& gap) {
  const auto start = Clock::now();
  timeline.begin_forward();
  (void)forward.run();
  forward.sync();
  const auto end = Clock::now();
  timeline.end_forward();
  if (!timeline.matched()) return std::nullopt;
  // Op i is charged from the end of op i-1 to its own end: its interval plus the gap before it.
  const std::size_t n = timeline.count();
  if (n == 0) {
    gap = ms_between(start, end);
  } else {
    gap = ms_between(start, timeline.start(0)) + ms_between(timeline.end(n - 1), end);
    charge[static_cast<std::size_t>(sequence_layers[0])] += ms_between(timeline.start(0), timeline.end(0));
    for (std::size_t i = 1; i < n; ++i)
      charge[static_cast<std::size_t>(sequence_layers[i])] += ms_between(timeline.end(i - 1), timeline.end(i));
  }
  return ms_between(start, end);
}

// A forward under the per-op recorder, which attributes every op as it runs: its wall time (ms), its
// charge per layer in `charge` (layers seen first are added to `m`), its gap and bookkeeping time.
double per_op_forward(const Forwarder& forward, OpRecorder& fallback, Measurements& m, std::vector<double>& charge,
                      double& gap, double& kept) {
  const auto start = Clock::now();
  fallback.begin_forward(start);
  (void)forward.run();
  forward.sync();
  const auto end = Clock::now();
  fallback.end_forward(end);
  gap = fallback.gap_ms();
  kept = fallback.bookkeeping_ms();
  for (int l = 0; l < fallback.layer_count(); ++l) {
    const auto id = static_cast<std::size_t>(m.layer_of(fallback.names()[static_cast<std::size_t>(l)]));
    charge.resize(m.layer_names.size(), 0.0);
    m.layer_ops.resize(m.layer_names.size(), 0);
    charge[id] += fallback.charged_ms()[static_cast<std::size_t>(l)];
    m.layer_ops[id] = fallback.ops_per_layer()[static_cast<std::size_t>(l)];
  }
  return ms_between(start, end);
}

// The timed forwards: timeline-partitioned while the op sequence is the attribution forward's; from
// the first one that differs, all start over attributed op by op.
void timed_forwards(const Forwarder& forward, const OpRecorder& detail, const DynamicProfileOptions& options,
                    Measurements& m) {
  TimelineRecorder timeline(forward.cuda, detail.sequence_ops());
  OpRecorder fallback(forward.cuda, /*detail=*/false);
  const std::vector<int>& sequence_layers = detail.sequence_layers();
  std::vector<double> charge;
  for (int r = 0; r < options.repeats; ++r) {
    // Bare and profiled forwards alternate, so drift in the machine's load hits both alike.
    if (options.bare) m.bare.push_back(bare_forward(forward, m.bare_page_faults));
    charge.assign(m.layer_names.size(), 0.0);
    double gap = 0, kept = 0;
    if (!m.per_op) {
      const std::optional<double> ms = timeline_forward(forward, timeline, sequence_layers, charge, gap);
      if (!ms) {
        m.start_per_op();
        r = -1;
        continue;
      }
      m.profiled.push_back(*ms);
    } else {
      m.profiled.push_back(per_op_forward(forward, fallback, m, charge, gap, kept));
    }
    m.add_repeat(r, charge, gap, kept);
  }
}

// The forwards around the median one: ranked by wall time, the middle half. A layer's `ms` is its
// mean charge over them, so the layers add up to a typical forward; a per-layer median would not,
// because on a busy machine a preemption lands in one layer of most forwards, and each layer's
// median skips it while the whole forward's median keeps it.
std::vector<std::size_t> middle_forwards(const std::vector<double>& profiled) {
  std::vector<std::size_t> middle(profiled.size());
  for (std::size_t i = 0; i < middle.size(); ++i) middle[i] = i;
  std::sort(middle.begin(), middle.end(), [&](std::size_t a, std::size_t b) { return profiled[a] < profiled[b]; });
  const std::size_t lo = middle.size() / 4;
  const std::size_t hi = std::max(lo + 1, middle.size() - middle.size() / 4);
  return std::vector<std::size_t>(middle.begin() + static_cast<std::ptrdiff_t>(lo),
                                  middle.begin() + static_cast<std::ptrdiff_t>(hi));
}

// Each layer's samples, statistics, mean over the middle forwards and share of the sum of layers.
void summarise_layers(const Measurements& m, const std::vector<std::size_t>& middle, DynamicProfile& profile) {
  for (std::size_t l = 0; l < m.layer_names.size(); ++l) {
    LayerTiming layer;
    layer.name = m.layer_names[l];
    layer.ops = l < m.layer_ops.size() ? m.layer_ops[l] : 0;
    layer.samples_ms = l < m.layer_samples.size() ? m.layer_samples[l] : std::vector<double>();
    layer.samples_ms.resize(m.profiled.size(), 0.0);
    ForwardStats stats = stats_of(layer.samples_ms);
    layer.p50_ms = stats.p50_ms;
    layer.p90_ms = stats.p90_ms;
    layer.mean_ms = stats.mean_ms;
    for (std::size_t r : middle) layer.ms += layer.samples_ms[r];
    layer.ms /= static_cast<double>(middle.size());
    profile.sum_of_layers_ms += layer.ms;
    profile.layers.push_back(std::move(layer));
  }
  for (auto& layer : profile.layers)
    layer.share = profile.sum_of_layers_ms > 0 ? layer.ms / profile.sum_of_layers_ms : 0.0;
}

// The whole forwards' statistics, the middle forwards' gap and bookkeeping, and how the layers add up
// to a forward (a bare one when they were timed).
void summarise_forwards(const Measurements& m, const std::vector<std::size_t>& middle, bool bare,
                        DynamicProfile& profile) {
  profile.profiled = stats_of(m.profiled);
  profile.bare = stats_of(m.bare);
  profile.bare_page_faults = m.bare_page_faults.empty() ? 0.0 : percentile(m.bare_page_faults, 0.5);
  profile.gap_ms = 0;
  profile.bookkeeping_ms = 0;
  for (std::size_t r : middle) {
    profile.gap_ms += m.gaps[r] / static_cast<double>(middle.size());
    profile.bookkeeping_ms += m.bookkeeping[r] / static_cast<double>(middle.size());
  }
  const double whole = bare ? profile.bare.p50_ms : profile.profiled.p50_ms;
  profile.sum_ratio = whole > 0 ? profile.sum_of_layers_ms / whole : 0.0;
}

// Memory, from the attribution forward. Its layer ids are the first in the profile's layers.
void add_memory(const OpRecorder& detail, const AllocationCounter& counter, DynamicProfile& profile) {
  profile.memory_method = "c10_allocator_report";
  profile.peak_bytes = counter.peak();
  for (int l = 0; l < detail.layer_count(); ++l) {
    LayerTiming& layer = profile.layers[static_cast<std::size_t>(l)];
    layer.peak_bytes = detail.peak_bytes()[static_cast<std::size_t>(l)];
    layer.live_peak_bytes = detail.live_peak_bytes()[static_cast<std::size_t>(l)];
  }
}

// The trace, from the attribution forward, and the bytes each layer read and wrote.
void add_trace(OpRecorder& detail, const Measurements& m, DynamicProfile& profile) {
  profile.trace = std::move(detail.events());
  profile.shapes_recorded = kCanReadRecordFunctionValues;
  for (const OpEvent& event : profile.trace) {
    LayerTiming& layer = profile.layers[static_cast<std::size_t>(m.layer_index.at(event.layer))];
    layer.bytes_read += event.bytes_read;
    layer.bytes_written += event.bytes_written;
  }
}

}  // namespace

std::string module_path_from_hierarchy(const std::vector<std::string>& hierarchy) {
  std::string path;
  for (const std::string& entry : hierarchy) {
    const std::size_t paren = entry.find('(');
    const std::string name = entry.substr(0, paren == std::string::npos ? entry.find("::") : paren);
    // TOP is the root module, SELF another method of the same module, "" a free function.
    if (name.empty() || name == "TOP" || name == "SELF") continue;
    path += (path.empty() ? "" : ".") + name;
  }
  return path;
}

Json LayerTiming::to_json() const {
  return Json{{"name", name},
              {"ops", ops},
              {"latency_ms", ms},
              {"latency_p50_ms", p50_ms},
              {"latency_p90_ms", p90_ms},
              {"latency_mean_ms", mean_ms},
              {"latency_share", share},
              {"peak_bytes", peak_bytes},
              {"live_peak_bytes", live_peak_bytes},
              {"bytes_read", bytes_read},
              {"bytes_written", bytes_written}};
}

Json ForwardStats::to_json() const {
  return Json{{"p50", p50_ms}, {"p90", p90_ms}, {"mean", mean_ms}, {"min", min_ms}, {"samples", samples_ms.size()}};
}

const LayerTiming* DynamicProfile::find(const std::string& name) const {
  for (const auto& layer : layers)
    if (layer.name == name) return &layer;
  return nullptr;
}

Json DynamicProfile::to_json() const {
  Json out{{"model", model},
           {"device", device},
           {"method", method},
           {"memory_method", memory_method},
           {"threads", threads},
           {"warmup", warmup},
           {"repeats", repeats},
           {"profiled_forward_ms", profiled.to_json()},
           {"sum_of_layers_ms", sum_of_layers_ms},
           {"gap_ms", gap_ms},
           {"bookkeeping_ms", bookkeeping_ms},
           {"sum_ratio", sum_ratio},
           {"peak_bytes", peak_bytes},
           {"shapes_recorded", shapes_recorded},
           {"seconds", seconds}};
  if (!bare.samples_ms.empty()) {
    out["bare_forward_ms"] = bare.to_json();
    out["bare_forward_page_faults"] = bare_page_faults;
  }
  Json list = Json::array();
  for (const auto& layer : layers) list.push_back(layer.to_json());
  out["layers"] = std::move(list);
  return out;
}

Json DynamicProfile::chrome_trace() const {
  Json events = Json::array();
  for (const OpEvent& op : trace) {
    Json args{{"module", op.layer},
              {"input_shapes", op.input_shapes},
              {"charged_us", op.charged_us},
              {"bytes_read", op.bytes_read},
              {"bytes_written", op.bytes_written},
              {"peak_bytes", op.peak_bytes}};
    events.push_back(Json{{"name", op.op},
                          {"cat", "op"},
                          {"ph", "X"},
                          {"ts", op.start_us},
                          {"dur", op.duration_us},
                          {"pid", 1},
                          {"tid", 1},
                          {"args", std::move(args)}});
  }
  return Json{{"traceEvents", std::move(events)},
              {"displayTimeUnit", "ms"},
              {"otherData", {{"model", model}, {"device", device}, {"threads", threads}}}};
}

Result<DynamicProfile> dynamic_profile(const torch::jit::Module& module, const std::vector<torch::jit::IValue>& inputs,
                                       const DynamicProfileOptions& options) {
  const auto started = Clock::now();
  auto part_started = started;
  auto part_done = [&](const char* part) {
    const auto now = Clock::now();
    if (options.on_part) options.on_part(part, ms_between(part_started, now) / 1000.0);
    part_started = now;
  };
  DynamicProfile profile;
  profile.model = options.model_name;
  if (profile.model.empty()) profile.model = module.type()->name() ? module.type()->name()->name() : "model";
  const std::string who = "dynamic profile of " + profile.model;
  PROFAGENT_RETURN_IF_ERROR(check_options(options, who));

  const c10::Device device = device_of(inputs);
  const bool cuda = device.is_cuda();
  profile.device = device.str();
  profile.method = cuda ? "timeline_partition+cuda_sync" : "timeline_partition";
  profile.warmup = options.warmup;
  profile.repeats = options.repeats;
  PROFAGENT_ASSIGN_OR_RETURN(torch::jit::Module model, eval_model(module, who));

  // Freed temporaries stay for the next forward, as in the evaluation stage: otherwise each forward
  // may page-fault its big buffers back in, depending on what the process freed before (heap.hpp).
  keep_freed_memory_for_reuse();
  ThreadsGuard threads(options.threads);
  profile.threads = at::get_num_threads();
  torch::NoGradGuard no_grad;
  const Forwarder forward{model, inputs, cuda};
  Measurements measured;
  OpRecorder detail(cuda, options.trace);
  auto counter = std::make_shared<AllocationCounter>(device.type());
  try {
    for (int i = 0; i < options.warmup; ++i) (void)forward.run();
    forward.sync();
    part_done("warm-up");
    attribution_forward(forward, detail, counter, options.memory);
    for (const std::string& name : detail.names()) measured.layer_of(name);
    measured.layer_ops = detail.ops_per_layer();
    part_done("attribution forward");
    timed_forwards(forward, detail, options, measured);
    part_done("timed forwards");
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime, who + ": the forward failed on input " + shapes_text(inputs) + ": " + torch_error_reason(e));
  }
  if (measured.per_op) profile.method = cuda ? "timeline_partition+per_op_attribution+cuda_sync" : "timeline_partition+per_op_attribution";

  const std::vector<std::size_t> middle = middle_forwards(measured.profiled);
  summarise_layers(measured, middle, profile);
  summarise_forwards(measured, middle, options.bare, profile);
  if (options.memory) add_memory(detail, *counter, profile);
  if (options.trace) add_trace(detail, measured, profile);
  part_done("summary");
  profile.seconds = ms_between(started, Clock::now()) / 1000.0;
  return profile;
}

}  // namespace profagent::torch_tk
