#include "profagent/status.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN

const char* to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kNotFound: return "not found";
    case ErrorCode::kParseError: return "parse error";
    case ErrorCode::kValidation: return "validation error";
    case ErrorCode::kPluginLoad: return "plugin load error";
    case ErrorCode::kAbiMismatch: return "ABI mismatch";
    case ErrorCode::kIo: return "I/O error";
    case ErrorCode::kRuntime: return "runtime error";
    case ErrorCode::kCancelled: return "cancelled";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kInternal: return "internal error";
  }
  return "unknown error";
}

Status& Status::with_context(std::string frame) & {
  if (!is_ok()) context_.push_back(std::move(frame));
  return *this;
}

Status&& Status::with_context(std::string frame) && {
  if (!is_ok()) context_.push_back(std::move(frame));
  return std::move(*this);
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  std::string text = message_;
  for (const auto& frame : context_) text += "\n  " + frame;
  return text;
}

StatusError::~StatusError() = default;

Status status_of_current_exception(const std::string& what_threw) noexcept {
  if (!std::current_exception())
    return Status(ErrorCode::kInternal, what_threw + ": status_of_current_exception called outside a catch block");
  try {
    throw;
  } catch (const StatusError& e) {
    Status status(e.status().code() == ErrorCode::kOk ? ErrorCode::kRuntime : e.status().code(),
                  what_threw + ": " + e.status().message());
    for (const auto& frame : e.status().context()) status.with_context(frame);
    return status;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime, what_threw + ": " + e.what());
  } catch (...) {
    return Status(ErrorCode::kRuntime, what_threw + " a non-standard exception");
  }
}

PROFAGENT_ABI_NAMESPACE_END
