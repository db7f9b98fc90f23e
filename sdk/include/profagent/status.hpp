#pragma once
// Errors are values at every boundary (plugin calls, workflow parsing, I/O). A Status carries a code,
// a message and context frames added on the way out ("stage 'prune'", "wf.yaml:12:5"), so the final
// message says what failed and where without anyone re-wrapping strings by hand.
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace profagent {

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

const char* to_string(ErrorCode code);

class [[nodiscard]] Status {
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
class StatusError : public std::exception {
 public:
  explicit StatusError(Status status) : status_(std::move(status)), text_(status_.to_string()) {}
  const Status& status() const { return status_; }
  const char* what() const noexcept override { return text_.c_str(); }

 private:
  Status status_;
  std::string text_;
};

}  // namespace profagent

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
