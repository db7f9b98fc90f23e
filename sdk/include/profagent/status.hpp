#pragma once
// Errors are values at every boundary (plugin calls, workflow parsing, I/O). A Status carries a code,
// a message and context frames added on the way out ("stage 'prune'", "wf.yaml:12:5"), so the final
// message says what failed and where without anyone re-wrapping strings by hand.
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "profagent/version.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,  // bad value given by a user (config, CLI, plan)
  kNotFound,         // file, stage, port, layer, plugin id that does not exist
  kParseError,       // malformed YAML / JSON / model file
  kValidation,       // well-formed input that violates a rule (schema, graph, kinds)
  kPluginLoad,       // a shared library could not be loaded or registered
  kAbiMismatch,      // a plugin built for another ABI or toolchain
  kIo,               // file system error
  kRuntime,          // an agent or provider failed while running
  kCancelled,        // interrupted (SIGINT) or cancelled
  kUnsupported,      // an operation the component does not support
  kInternal,         // a bug: an invariant did not hold
};

PROFAGENT_SDK_API const char* to_string(ErrorCode code);

class [[nodiscard]] PROFAGENT_SDK_API Status {
 public:
  Status() = default;  // ok
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  static Status error(ErrorCode code, std::string message) { return Status(code, std::move(message)); }

  bool is_ok() const { return code_ == ErrorCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Innermost first: the frame added last is the outermost caller.
  const std::vector<std::string>& context() const { return context_; }

  // Adds a frame describing where the error passed through, e.g. "in stage 'prune'".
  Status& with_context(std::string frame) &;
  Status&& with_context(std::string frame) &&;

  // "message" then one "  <frame>" line per context frame, outermost last.
  std::string to_string() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
  std::vector<std::string> context_;
};

// A value or the Status explaining why there is none.
template <class T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<T, Status>, "Result<Status> makes no sense");

 public:
  Result(T value) : data_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : data_(std::in_place_index<1>, std::move(status)) {  // NOLINT
    if (std::get<1>(data_).is_ok())
      std::get<1>(data_) = Status(ErrorCode::kInternal, "Result constructed from an ok Status");
  }

  bool is_ok() const { return data_.index() == 0; }
  explicit operator bool() const { return is_ok(); }

  const Status& status() const {
    static const Status kOkStatus;
    return is_ok() ? kOkStatus : std::get<1>(data_);
  }
  Status take_status() && { return is_ok() ? Status() : std::move(std::get<1>(data_)); }

  T& value() & { return std::get<0>(data_); }
  const T& value() const& { return std::get<0>(data_); }
  T&& value() && { return std::get<0>(std::move(data_)); }
  T value_or(T fallback) const& { return is_ok() ? std::get<0>(data_) : std::move(fallback); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  Result& with_context(std::string frame) & {
    if (!is_ok()) std::get<1>(data_).with_context(std::move(frame));
    return *this;
  }
  Result&& with_context(std::string frame) && {
    if (!is_ok()) std::get<1>(data_).with_context(std::move(frame));
    return std::move(*this);
  }

 private:
  std::variant<T, Status> data_;
};

// Thrown only inside one component (e.g. deep in a parser) and turned into a Status at its boundary.
// Its key function (the destructor) is in the SDK, so that a catch in a plugin or the kernel matches
// what the SDK throws (Config getters, ConfigSchema::add).
class PROFAGENT_SDK_API StatusError : public std::exception {
 public:
  explicit StatusError(Status status) : status_(std::move(status)), text_(status_.to_string()) {}
  ~StatusError() override;
  const Status& status() const { return status_; }
  const char* what() const noexcept override { return text_.c_str(); }

 private:
  Status status_;
  std::string text_;
};

// The status of work stopped because the user asked (SIGINT): "<activity> cancelled <where>".
inline Status cancelled_status(const std::string& activity, const std::string& where = "") {
  return Status(ErrorCode::kCancelled, activity + " cancelled" + (where.empty() ? "" : " " + where));
}

// Only inside a catch block: the exception being handled as a Status whose message is
// "<what_threw>: <what()>" (kRuntime; a StatusError keeps its code and context frames), or
// "<what_threw> a non-standard exception". E.g. status_of_current_exception("agent 'prune' threw").
// The SDK's wrappers (Agent::execute, make_agent, make_provider, save_artifact) use it; plugin code may
// too, around a call into code that throws.
PROFAGENT_SDK_API Status status_of_current_exception(const std::string& what_threw) noexcept;

PROFAGENT_ABI_NAMESPACE_END

// Early return on error, for functions returning Status or Result<T>.
#define PROFAGENT_RETURN_IF_ERROR(expr)                  \
  do {                                                   \
    ::profagent::Status profagent_status_ = (expr);      \
    if (!profagent_status_.is_ok()) return profagent_status_; \
  } while (0)

#define PROFAGENT_CONCAT_INNER_(a, b) a##b
#define PROFAGENT_CONCAT_(a, b) PROFAGENT_CONCAT_INNER_(a, b)
// PROFAGENT_ASSIGN_OR_RETURN(auto x, make_x()); declares x from the value, or returns the Status.
#define PROFAGENT_ASSIGN_OR_RETURN(lhs, expr)                                      \
  auto PROFAGENT_CONCAT_(profagent_result_, __LINE__) = (expr);                    \
  if (!PROFAGENT_CONCAT_(profagent_result_, __LINE__).is_ok())                     \
    return std::move(PROFAGENT_CONCAT_(profagent_result_, __LINE__)).take_status(); \
  lhs = std::move(PROFAGENT_CONCAT_(profagent_result_, __LINE__)).value()
