#pragma once
// The RecordFunction observers of the dynamic profile: OpRecorder (attributes every top-level op to
// its module, with memory and the trace) and TimelineRecorder (two clock stamps per op of a timed
// forward). Private to profagent_profile (dynamic_recorders.cpp).
#include <ATen/record_function.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "profagent/profile/dynamic_profile.hpp"
#include "profagent/torch/allocation_counter.hpp"

namespace profagent::torch_tk {

using Clock = std::chrono::steady_clock;

inline double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// The recorder sees the top-level ops of one forward at a time, on the thread that runs it (the
// callback is thread-local and `active_` is too, so ops of intra-op worker threads never count), and
// attributes each to its module by walking the interpreter's module hierarchy. It runs the untimed
// attribution forward (which also measures memory and records the trace), and the timed forwards only
// in the per-op fallback (when the op sequence changes between forwards).
class OpRecorder {
 public:
  OpRecorder(bool cuda, bool detail);
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

  void begin_forward(Clock::time_point start);
  void end_forward(Clock::time_point end);

 private:
  static std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction& fn);
  static void on_exit(const at::RecordFunction& fn, at::ObserverContext*);
  void enter(const at::RecordFunction& fn) noexcept;
  void exit(const at::RecordFunction& fn) noexcept;
  int layer_id(const std::string& path);

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

// The timed forwards' recorder: two steady_clock stamps per top-level op into preallocated buffers,
// and a check that the i-th op has the name the attribution forward saw at position i (no strings
// stored, no hierarchy walk). While a top-level op runs, RecordFunction is switched off on this
// thread (at::enableRecordFunction), so the ops it calls (conv2d's _convolution, mkldnn_convolution,
// ...) run without any callback at all; the op's own end callback still runs (RecordFunction keeps
// the callbacks it started with). The profiling cost per top-level op is then one RecordFunction,
// two clock reads and one strcmp.
class TimelineRecorder {
 public:
  TimelineRecorder(bool cuda, const std::vector<std::string>& expected);
  TimelineRecorder(const TimelineRecorder&) = delete;
  TimelineRecorder& operator=(const TimelineRecorder&) = delete;
  ~TimelineRecorder() { end_forward(); }

  void begin_forward();
  void end_forward();
  // The forward ran exactly the attribution forward's op sequence.
  bool matched() const { return !mismatch_ && depth_ == 0 && count_ == expected_.size(); }
  std::size_t count() const { return count_; }
  Clock::time_point start(std::size_t i) const { return starts_[i]; }
  Clock::time_point end(std::size_t i) const { return ends_[i]; }

 private:
  static std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction& fn);
  static void on_exit(const at::RecordFunction&, at::ObserverContext*);

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

}  // namespace profagent::torch_tk
