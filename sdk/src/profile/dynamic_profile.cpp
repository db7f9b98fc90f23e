#include "profagent/profile/dynamic_profile.hpp"
#include "profagent/torch/allocation_counter.hpp"
#include "profagent/torch/errors.hpp"
#include "profagent/torch/model_io.hpp"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <c10/core/Allocator.h>
#include <c10/util/ThreadLocalDebugInfo.h>
#include <torch/csrc/jit/runtime/interpreter.h>
#include <torch/cuda.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <unordered_map>

#include "profagent/profile/static_profile.hpp"
#include "profagent/torch/threads.hpp"

namespace profagent::torch_tk {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// RecordFunction::inputs()/outputs() are only readable when this file and LibTorch agree on NDEBUG
// (the class has a debug-only member); see static_profile.cpp.
#ifdef NDEBUG
constexpr bool kCanReadOpValues = true;
#else
constexpr bool kCanReadOpValues = false;
#endif

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

std::int64_t tensor_bytes(const c10::IValue& value) {
  if (value.isTensor()) {
    const at::Tensor& t = value.toTensor();
    return t.defined() ? static_cast<std::int64_t>(t.nbytes()) : 0;
  }
  std::int64_t bytes = 0;
  if (value.isTensorList())
    for (const at::Tensor& t : value.toTensorVector()) bytes += t.defined() ? static_cast<std::int64_t>(t.nbytes()) : 0;
  return bytes;
}

// The recorder sees the top-level ops of one forward at a time, on the thread that runs it (the
// callback is thread-local and `active_` is too, so ops of intra-op worker threads never count), and
// attributes each to its module by walking the interpreter's module hierarchy. It runs the untimed
// attribution forward (which also measures memory and records the trace), and the timed forwards only
// in the per-op fallback (when the op sequence changes between forwards).
class OpRecorder {
 public:
  OpRecorder(bool cuda, bool detail) : cuda_(cuda), detail_(detail && kCanReadOpValues) {}
  OpRecorder(const OpRecorder&) = delete;
  OpRecorder& operator=(const OpRecorder&) = delete;
  ~OpRecorder() { end_forward(Clock::now()); }

  int layer_count() const { return static_cast<int>(names_.size()); }
  const std::vector<std::string>& names() const { return names_; }
  const std::vector<double>& charged_ms() const { return charged_ms_; }
  const std::vector<std::int64_t>& ops_per_layer() const { return ops_; }
  double gap_ms() const { return gap_ms_; }
  double bookkeeping_ms() const { return bookkeeping_ms_; }
  std::vector<OpEvent>& events() { return events_; }
  // This forward's top-level ops in order: name and layer id.
  const std::vector<std::string>& sequence_ops() const { return sequence_ops_; }
  const std::vector<int>& sequence_layers() const { return sequence_layers_; }
  void set_counter(AllocationCounter* counter) { counter_ = counter; }
  const std::vector<std::int64_t>& peak_bytes() const { return peak_bytes_; }
  const std::vector<std::int64_t>& live_peak_bytes() const { return live_peak_bytes_; }

  void begin_forward(Clock::time_point start) {
    forward_start_ = start;
    last_end_ = start;
    first_op_ = true;
    depth_ = 0;
    gap_ms_ = 0;
    bookkeeping_ms_ = 0;
    std::fill(charged_ms_.begin(), charged_ms_.end(), 0.0);
    std::fill(ops_.begin(), ops_.end(), 0);
    events_.clear();
    sequence_ops_.clear();
    sequence_layers_.clear();
    auto callback = at::RecordFunctionCallback(&OpRecorder::on_enter, &OpRecorder::on_exit)
                        .scopes({at::RecordScope::FUNCTION});
    if (detail_) callback.needsInputs(true).needsOutputs(true);
    active_ = this;
    handle_ = at::addThreadLocalCallback(std::move(callback));
    registered_ = true;
  }

  void end_forward(Clock::time_point end) {
    if (!registered_) return;
    at::removeCallback(handle_);
    registered_ = false;
    active_ = nullptr;
    gap_ms_ += ms_between(last_end_, end);  // the tail: last op → forward returned
  }

 private:
  static std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction& fn) {
    if (active_ != nullptr) active_->enter(fn);
    return nullptr;
  }
  static void on_exit(const at::RecordFunction& fn, at::ObserverContext*) {
    if (active_ != nullptr) active_->exit(fn);
  }

  void enter(const at::RecordFunction& fn) noexcept {
    if (depth_++ != 0) return;
    const auto entered = Clock::now();
    try {
      gap_before_ = ms_between(last_end_, entered);
      layer_ = layer_id(module_path_from_hierarchy(torch::jit::currentModuleHierarchy()));
      sequence_ops_.emplace_back(fn.name());
      sequence_layers_.push_back(layer_);
      if (detail_) {
        OpEvent event;
        event.op = fn.name();
        event.layer = names_[layer_];
        for (const c10::IValue& input : fn.inputs()) {
          if (input.isTensor() && input.toTensor().defined())
            event.input_shapes.push_back(input.toTensor().sizes().vec());
          event.bytes_read += tensor_bytes(input);
        }
        events_.push_back(std::move(event));
      }
      if (counter_ != nullptr) {
        op_base_ = counter_->current();
        counter_->start_op();
      }
    } catch (...) {
      layer_ = layer_id("");
    }
    op_start_ = Clock::now();
    bookkeeping_ms_ += ms_between(entered, op_start_);
  }

  void exit(const at::RecordFunction& fn) noexcept {
    if (depth_ == 0 || --depth_ != 0) return;
    if (cuda_) {
      try {
        torch::cuda::synchronize();
      } catch (...) {
      }
    }
    const auto exited = Clock::now();
    const double duration = ms_between(op_start_, exited);
    // The head gap (forward entered → first op) belongs to no op: it is reported, not charged.
    const double gap = first_op_ ? 0.0 : gap_before_;
    if (first_op_) gap_ms_ += gap_before_;
    first_op_ = false;
    charged_ms_[layer_] += duration + gap;
    ops_[layer_] += 1;
    if (counter_ != nullptr) {
      const std::int64_t high = counter_->op_peak();
      peak_bytes_[layer_] = std::max(peak_bytes_[layer_], high - op_base_);
      live_peak_bytes_[layer_] = std::max(live_peak_bytes_[layer_], high);
    }
    if (detail_ && !events_.empty()) {
      OpEvent& event = events_.back();
      event.start_us = std::chrono::duration<double, std::micro>(op_start_ - forward_start_).count();
      event.duration_us = duration * 1000.0;
      event.charged_us = (duration + gap) * 1000.0;
      if (counter_ != nullptr) event.peak_bytes = counter_->op_peak() - op_base_;
      try {
        for (const c10::IValue& output : fn.outputs()) event.bytes_written += tensor_bytes(output);
      } catch (...) {
      }
    }
    last_end_ = Clock::now();
    bookkeeping_ms_ += ms_between(exited, last_end_);
  }

  int layer_id(const std::string& path) {
    const std::string name = path.empty() ? std::string(kRootLayer) : path;
    auto found = ids_.find(name);
    if (found != ids_.end()) return found->second;
    const int id = static_cast<int>(names_.size());
    ids_.emplace(name, id);
    names_.push_back(name);
    charged_ms_.push_back(0.0);
    ops_.push_back(0);
    peak_bytes_.push_back(0);
    live_peak_bytes_.push_back(0);
    return id;
  }

  static thread_local OpRecorder* active_;
  const bool cuda_;
  const bool detail_;
  AllocationCounter* counter_ = nullptr;
  at::CallbackHandle handle_ = 0;
  bool registered_ = false;
  int depth_ = 0;
  bool first_op_ = true;
  int layer_ = 0;
  double gap_before_ = 0;
  std::int64_t op_base_ = 0;
  Clock::time_point forward_start_, last_end_, op_start_;
  double gap_ms_ = 0;
  double bookkeeping_ms_ = 0;
  std::unordered_map<std::string, int> ids_;
  std::vector<std::string> names_;
  std::vector<double> charged_ms_;  // this forward's charge per layer
  std::vector<std::int64_t> ops_;
  std::vector<std::int64_t> peak_bytes_;
  std::vector<std::int64_t> live_peak_bytes_;
  std::vector<OpEvent> events_;
  std::vector<std::string> sequence_ops_;
  std::vector<int> sequence_layers_;
};

thread_local OpRecorder* OpRecorder::active_ = nullptr;

// The timed forwards' recorder: two steady_clock stamps per top-level op into preallocated buffers,
// and a check that the i-th op has the name the attribution forward saw at position i (no strings
// stored, no hierarchy walk). While a top-level op runs, RecordFunction is switched off on this
// thread (at::enableRecordFunction), so the ops it calls (conv2d's _convolution, mkldnn_convolution,
// ...) run without any callback at all; the op's own end callback still runs (RecordFunction keeps
// the callbacks it started with). The profiling cost per top-level op is then one RecordFunction,
// two clock reads and one strcmp.
class TimelineRecorder {
 public:
  TimelineRecorder(bool cuda, const std::vector<std::string>& expected) : cuda_(cuda) {
    expected_.reserve(expected.size());
    for (const std::string& name : expected) expected_.push_back(name.c_str());
    starts_.resize(expected.size());
    ends_.resize(expected.size());
  }
  TimelineRecorder(const TimelineRecorder&) = delete;
  TimelineRecorder& operator=(const TimelineRecorder&) = delete;
  ~TimelineRecorder() { end_forward(); }

  void begin_forward() {
    count_ = 0;
    depth_ = 0;
    mismatch_ = false;
    was_enabled_ = at::isRecordFunctionEnabled();
    active_ = this;
    handle_ = at::addThreadLocalCallback(
        at::RecordFunctionCallback(&TimelineRecorder::on_enter, &TimelineRecorder::on_exit)
            .scopes({at::RecordScope::FUNCTION}));
    registered_ = true;
  }
  void end_forward() {
    if (!registered_) return;
    at::removeCallback(handle_);
    at::enableRecordFunction(was_enabled_);  // in case an op threw before its end callback
    registered_ = false;
    active_ = nullptr;
  }
  // The forward ran exactly the attribution forward's op sequence.
  bool matched() const { return !mismatch_ && depth_ == 0 && count_ == expected_.size(); }
  std::size_t count() const { return count_; }
  Clock::time_point start(std::size_t i) const { return starts_[i]; }
  Clock::time_point end(std::size_t i) const { return ends_[i]; }

 private:
  static std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction& fn) {
    TimelineRecorder* self = active_;
    if (self == nullptr || self->depth_++ != 0 || self->mismatch_) return nullptr;
    if (self->count_ >= self->expected_.size() || std::strcmp(fn.name(), self->expected_[self->count_]) != 0) {
      self->mismatch_ = true;
      return nullptr;
    }
    at::enableRecordFunction(false);
    self->starts_[self->count_] = Clock::now();
    return nullptr;
  }
  static void on_exit(const at::RecordFunction&, at::ObserverContext*) {
    TimelineRecorder* self = active_;
    if (self == nullptr || self->depth_ == 0 || --self->depth_ != 0 || self->mismatch_) return;
    if (self->cuda_) {
      try {
        torch::cuda::synchronize();
      } catch (...) {
      }
    }
    self->ends_[self->count_++] = Clock::now();
    at::enableRecordFunction(true);
  }

  static thread_local TimelineRecorder* active_;
  const bool cuda_;
  std::vector<const char*> expected_;
  std::vector<Clock::time_point> starts_, ends_;
  std::size_t count_ = 0;
  int depth_ = 0;
  bool mismatch_ = false;
  bool was_enabled_ = true;
  at::CallbackHandle handle_ = 0;
  bool registered_ = false;
};

thread_local TimelineRecorder* TimelineRecorder::active_ = nullptr;

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
  if (!bare.samples_ms.empty()) out["bare_forward_ms"] = bare.to_json();
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
  DynamicProfile profile;
  profile.model = options.model_name;
  if (profile.model.empty()) profile.model = module.type()->name() ? module.type()->name()->name() : "model";
  const std::string who = "dynamic profile of " + profile.model;
  if (options.repeats < 1)
    return Status(ErrorCode::kInvalidArgument, who + ": repeats must be at least 1, got " + std::to_string(options.repeats));
  if (options.warmup < 0)
    return Status(ErrorCode::kInvalidArgument, who + ": warmup must not be negative, got " + std::to_string(options.warmup));
  if (options.threads < 0)
    return Status(ErrorCode::kInvalidArgument, who + ": threads must not be negative, got " + std::to_string(options.threads));

  const c10::Device device = device_of(inputs);
  const bool cuda = device.is_cuda();
  profile.device = device.str();
  profile.method = cuda ? "timeline_partition+cuda_sync" : "timeline_partition";
  profile.warmup = options.warmup;
  profile.repeats = options.repeats;

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

  ThreadsGuard threads(options.threads);
  profile.threads = at::get_num_threads();
  torch::NoGradGuard no_grad;
  auto sync = [cuda] {
    if (cuda) torch::cuda::synchronize();
  };
  auto forward = [&]() { (void)model.forward(std::vector<torch::jit::IValue>(inputs.begin(), inputs.end())); };

  // Layers in order of first execution: the attribution forward's, then any the fallback adds.
  std::vector<std::string> layer_names;
  std::unordered_map<std::string, int> layer_index;
  auto layer_of = [&](const std::string& name) {
    auto found = layer_index.find(name);
    if (found != layer_index.end()) return found->second;
    const int id = static_cast<int>(layer_names.size());
    layer_index.emplace(name, id);
    layer_names.push_back(name);
    return id;
  };
  std::vector<std::int64_t> layer_ops;             // top-level ops per forward
  std::vector<std::vector<double>> layer_samples;  // [layer][repeat]
  std::vector<double> gaps, bookkeeping, profiled, bare;
  bool per_op = false;
  OpRecorder detail(cuda, options.trace);
  auto counter = std::make_shared<AllocationCounter>(device.type());
  try {
    for (int i = 0; i < options.warmup; ++i) forward();
    sync();

    // The attribution forward (untimed): every top-level op's name and module path, in order; the
    // same forward measures memory (c10's allocator reports to `counter`) and records the trace,
    // whose callbacks read every op's inputs and outputs.
    {
      std::optional<c10::DebugInfoGuard> guard;
      if (options.memory) {
        guard.emplace(c10::DebugInfoKind::PROFILER_STATE, counter);
        detail.set_counter(counter.get());
      }
      detail.begin_forward(Clock::now());
      {
        // The output is released inside the guard: its memory is part of the forward's peak.
        c10::IValue output = model.forward(std::vector<torch::jit::IValue>(inputs.begin(), inputs.end()));
        sync();
        detail.end_forward(Clock::now());
      }
    }
    for (const std::string& name : detail.names()) layer_of(name);
    layer_ops = detail.ops_per_layer();
    const std::vector<int>& sequence_layers = detail.sequence_layers();

    TimelineRecorder timeline(cuda, detail.sequence_ops());
    OpRecorder fallback(cuda, /*detail=*/false);
    std::vector<double> charge;
    for (int r = 0; r < options.repeats; ++r) {
      // Bare and profiled forwards alternate, so drift in the machine's load hits both alike.
      if (options.bare) {
        const auto start = Clock::now();
        forward();
        sync();
        bare.push_back(ms_between(start, Clock::now()));
      }
      charge.assign(layer_names.size(), 0.0);
      double gap = 0, kept = 0;
      if (!per_op) {
        const auto start = Clock::now();
        timeline.begin_forward();
        forward();
        sync();
        const auto end = Clock::now();
        timeline.end_forward();
        if (!timeline.matched()) {
          // The op sequence differs from the attribution forward's (data-dependent control flow, a
          // graph re-specialized after warm-up): start over, attributing every op as it runs.
          per_op = true;
          bare.clear();
          profiled.clear();
          gaps.clear();
          bookkeeping.clear();
          layer_samples.clear();
          r = -1;
          continue;
        }
        profiled.push_back(ms_between(start, end));
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
      } else {
        const auto start = Clock::now();
        fallback.begin_forward(start);
        forward();
        sync();
        const auto end = Clock::now();
        fallback.end_forward(end);
        profiled.push_back(ms_between(start, end));
        gap = fallback.gap_ms();
        kept = fallback.bookkeeping_ms();
        for (int l = 0; l < fallback.layer_count(); ++l) {
          const auto id = static_cast<std::size_t>(layer_of(fallback.names()[static_cast<std::size_t>(l)]));
          charge.resize(layer_names.size(), 0.0);
          layer_ops.resize(layer_names.size(), 0);
          charge[id] += fallback.charged_ms()[static_cast<std::size_t>(l)];
          layer_ops[id] = fallback.ops_per_layer()[static_cast<std::size_t>(l)];
        }
      }
      gaps.push_back(gap);
      bookkeeping.push_back(kept);
      layer_samples.resize(layer_names.size());
      for (std::size_t l = 0; l < layer_names.size(); ++l) {
        auto& samples = layer_samples[l];
        samples.resize(static_cast<std::size_t>(r), 0.0);  // a layer first seen now ran 0 ms before
        samples.push_back(charge[l]);
      }
    }
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime, who + ": the forward failed on input " + shapes_text(inputs) + ": " + torch_error_reason(e));
  }
  if (per_op) profile.method = cuda ? "timeline_partition+per_op_attribution+cuda_sync" : "timeline_partition+per_op_attribution";

  // The forwards around the median one: ranked by wall time, the middle half. A layer's `ms` is its
  // mean charge over them, so the layers add up to a typical forward; a per-layer median would not,
  // because on a busy machine a preemption lands in one layer of most forwards, and each layer's
  // median skips it while the whole forward's median keeps it.
  std::vector<std::size_t> middle(profiled.size());
  for (std::size_t i = 0; i < middle.size(); ++i) middle[i] = i;
  std::sort(middle.begin(), middle.end(), [&](std::size_t a, std::size_t b) { return profiled[a] < profiled[b]; });
  const std::size_t lo = middle.size() / 4;
  const std::size_t hi = std::max(lo + 1, middle.size() - middle.size() / 4);
  middle = std::vector<std::size_t>(middle.begin() + static_cast<std::ptrdiff_t>(lo),
                                    middle.begin() + static_cast<std::ptrdiff_t>(hi));
  for (std::size_t l = 0; l < layer_names.size(); ++l) {
    LayerTiming layer;
    layer.name = layer_names[l];
    layer.ops = l < layer_ops.size() ? layer_ops[l] : 0;
    layer.samples_ms = l < layer_samples.size() ? layer_samples[l] : std::vector<double>();
    layer.samples_ms.resize(profiled.size(), 0.0);
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
  profile.profiled = stats_of(profiled);
  profile.bare = stats_of(bare);
  profile.gap_ms = 0;
  profile.bookkeeping_ms = 0;
  for (std::size_t r : middle) {
    profile.gap_ms += gaps[r] / static_cast<double>(middle.size());
    profile.bookkeeping_ms += bookkeeping[r] / static_cast<double>(middle.size());
  }
  const double whole = options.bare ? profile.bare.p50_ms : profile.profiled.p50_ms;
  profile.sum_ratio = whole > 0 ? profile.sum_of_layers_ms / whole : 0.0;

  // Memory and the trace, from the attribution forward.
  if (options.memory) {
    profile.memory_method = "c10_allocator_report";
    profile.peak_bytes = counter->peak();
    for (int l = 0; l < detail.layer_count(); ++l) {
      LayerTiming& layer = profile.layers[static_cast<std::size_t>(l)];  // the same ids: first in layer_names
      layer.peak_bytes = detail.peak_bytes()[static_cast<std::size_t>(l)];
      layer.live_peak_bytes = detail.live_peak_bytes()[static_cast<std::size_t>(l)];
    }
  }
  if (options.trace) {
    profile.trace = std::move(detail.events());
    profile.shapes_recorded = kCanReadOpValues;
    for (const OpEvent& event : profile.trace) {
      LayerTiming& layer = profile.layers[static_cast<std::size_t>(layer_index.at(event.layer))];
      layer.bytes_read += event.bytes_read;
      layer.bytes_written += event.bytes_written;
    }
  }
  profile.seconds = ms_between(started, Clock::now()) / 1000.0;
  return profile;
}

}  // namespace profagent::torch_tk
