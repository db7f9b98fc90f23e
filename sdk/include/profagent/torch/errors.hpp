#pragma once
// The one way a LibTorch error becomes a readable line. Needs no LibTorch header to include.
#include <exception>
#include <string>

namespace profagent::torch_tk {

// The reason of a torch error on one line. An operator's own error is its first line (a C++
// backtrace follows); an error raised inside the TorchScript interpreter starts with a TorchScript
// traceback and ends with the operator's "RuntimeError: ..." line, which is the reason. A c10::Error
// is read without its backtrace.
std::string torch_error_reason(const std::exception& error);
// The same for a message already taken out of its exception.
std::string torch_error_reason(const std::string& message);

}  // namespace profagent::torch_tk
