// The RecordFunction observers of the dynamic profile (dynamic_recorders.hpp).
#include "dynamic_recorders.hpp"

#include <torch/csrc/jit/runtime/interpreter.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "profagent/profile/static_profile.hpp"
#include "record_function_values.hpp"

namespace profagent::torch_tk {

namespace {

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

}  // namespace

// ---------------------------------------------------------------------------------------------------
// OpRecorder

thread_local OpRecorder* OpRecorder::active_ = nullptr;

OpRecorder::OpRecorder(bool cuda, bool detail) : cuda_(cuda), detail_(detail && kCanReadRecordFunctionValues) {}

void OpRecorder::begin_forward(Clock::time_point start) {
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

void OpRecorder::end_forward(Clock::time_point end) {
  if (!registered_) return;
  at::removeCallback(handle_);
  registered_ = false;
  active_ = nullptr;
  gap_ms_ += ms_between(last_end_, end);  // the tail: last op → forward returned
}

std::unique_ptr<at::ObserverContext> OpRecorder::on_enter(const at::RecordFunction& fn) {
  if (active_ != nullptr) active_->enter(fn);
  return nullptr;
}

void OpRecorder::on_exit(const at::RecordFunction& fn, at::ObserverContext*) {
  if (active_ != nullptr) active_->exit(fn);
}

void OpRecorder::enter(const at::RecordFunction& fn) noexcept {
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

void OpRecorder::exit(const at::RecordFunction& fn) noexcept {
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

int OpRecorder::layer_id(const std::string& path) {
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

// ---------------------------------------------------------------------------------------------------
// TimelineRecorder

thread_local TimelineRecorder* TimelineRecorder::active_ = nullptr;

TimelineRecorder::TimelineRecorder(bool cuda, const std::vector<std::string>& expected) : cuda_(cuda) {
  expected_.reserve(expected.size());
  for (const std::string& name : expected) expected_.push_back(name.c_str());
  starts_.resize(expected.size());
  ends_.resize(expected.size());
}

void TimelineRecorder::begin_forward() {
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

void TimelineRecorder::end_forward() {
  if (!registered_) return;
  at::removeCallback(handle_);
  at::enableRecordFunction(was_enabled_);  // in case an op threw before its end callback
  registered_ = false;
  active_ = nullptr;
}

std::unique_ptr<at::ObserverContext> TimelineRecorder::on_enter(const at::RecordFunction& fn) {
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

void TimelineRecorder::on_exit(const at::RecordFunction&, at::ObserverContext*) {
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

}  // namespace profagent::torch_tk
