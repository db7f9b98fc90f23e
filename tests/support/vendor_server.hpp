#pragma once
// A scripted LLM vendor server on 127.0.0.1 for tests (tests/support/vendor_server.py, run with the
// system python3): each request gets the next reply of the script, in the vendor's wire format
// (OpenAI chat.completion, Anthropic message with tool_use, Ollama /api/chat, NDJSON streaming),
// or a status with headers (429 + Retry-After, 500, 529, 401), or a fault (hang, drop, a huge body).
// The requests it received are read back with requests(). Optional TLS with certificates from
// make_test_certs(): a CA made by the test, and good / wrong-host / expired server certificates.
//
//   VendorServer server({{"status", 500}}, {{"openai", {{"content", "{\"summary\": \"ok\"}"}}}});
//   config["base_url"] = server.base_url();   // http://127.0.0.1:PORT
#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "profagent/json.hpp"
#include "test_support.hpp"

namespace profagent::test {

struct TlsFiles {
  std::filesystem::path cert, key;
};

// Writes ca.pem and {good,wrong_host,expired}.{pem,key} into `dir` (make_test_certs.py).
inline void make_test_certs(const std::filesystem::path& dir) {
  const std::string command = std::string("/usr/bin/python3 ") + PROFAGENT_TEST_SOURCE_DIR +
                              "/support/make_test_certs.py '" + dir.string() + "'";
  if (std::system(command.c_str()) != 0) throw std::runtime_error("make_test_certs.py failed");
}

class VendorServer {
 public:
  explicit VendorServer(std::vector<Json> replies, TlsFiles tls = {}) {
    const Json script = {{"replies", replies}};
    std::ofstream(dir_.path() / "script.json") << script.dump();
    const std::string script_path = (dir_.path() / "script.json").string();
    const std::string port_path = (dir_.path() / "port").string();
    const std::string log_path = (dir_.path() / "requests.jsonl").string();
    const std::string server = std::string(PROFAGENT_TEST_SOURCE_DIR) + "/support/vendor_server.py";
    const std::string cert = tls.cert.string(), key = tls.key.string();
    const std::string errors = (dir_.path() / "server.err").string();
    pid_ = fork();
    if (pid_ == 0) {
      // Its tracebacks (a client that hung up on purpose) go to a file, not into the test's output.
      const int err = open(errors.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err >= 0) {
        dup2(err, 1);
        dup2(err, 2);
      }
      std::vector<const char*> argv = {"/usr/bin/python3", server.c_str(), "--script", script_path.c_str(),
                                       "--port-file", port_path.c_str(), "--log", log_path.c_str()};
      if (!cert.empty()) argv.insert(argv.end(), {"--cert", cert.c_str(), "--key", key.c_str()});
      argv.push_back(nullptr);
      execv(argv[0], const_cast<char* const*>(argv.data()));
      _exit(127);
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!std::filesystem::exists(port_path)) {
      if (std::chrono::steady_clock::now() > until) {
        std::stringstream said;
        said << std::ifstream(errors).rdbuf();
        throw std::runtime_error("vendor_server.py did not start: " + said.str());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::ifstream(port_path) >> port_;
    https_ = !cert.empty();
  }
  ~VendorServer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  // Not copyable. Declared with a non-const reference so that a braced list of replies never looks
  // like a VendorServer to copy (VendorServer server({{...}, {...}}) would be ambiguous otherwise).
  VendorServer(VendorServer&) = delete;
  VendorServer& operator=(const VendorServer&) = delete;

  int port() const { return port_; }
  // http://127.0.0.1:PORT, or https://localhost:PORT with TLS (the certificates name localhost).
  std::string base_url(const std::string& host = "") const {
    const std::string name = host.empty() ? (https_ ? "localhost" : "127.0.0.1") : host;
    return std::string(https_ ? "https" : "http") + "://" + name + ":" + std::to_string(port_);
  }
  // Every request received so far: {method, path, headers, body, time}.
  std::vector<Json> requests() const {
    std::vector<Json> out;
    std::ifstream log(dir_.path() / "requests.jsonl");
    for (std::string line; std::getline(log, line);)
      if (!line.empty()) out.push_back(Json::parse(line));
    return out;
  }

 private:
  TempDir dir_{"vendor_server"};
  pid_t pid_ = -1;
  int port_ = 0;
  bool https_ = false;
};

}  // namespace profagent::test
