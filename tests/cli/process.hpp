#pragma once
// Runs profagent-run as a child process, as a user would, with stdout and stderr captured in files
// (no pipes, so a chatty child can never block).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace profagent::test {

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class Process {
 public:
  Process(std::vector<std::string> args, const std::filesystem::path& capture_dir,
          const std::filesystem::path& cwd = std::filesystem::current_path()) {
    std::filesystem::create_directories(capture_dir);
    out_path_ = capture_dir / ("stdout-" + std::to_string(counter()++) + ".txt");
    err_path_ = capture_dir / ("stderr-" + std::to_string(counter()) + ".txt");
    pid_ = ::fork();
    if (pid_ == 0) {
      int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(out, 1);
      ::dup2(err, 2);
      if (::chdir(cwd.c_str()) != 0) ::_exit(126);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }

  void signal(int number) const { ::kill(pid_, number); }
  std::string err_so_far() const { return slurp(err_path_); }

  ProcessResult wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    ProcessResult result;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    result.out = slurp(out_path_);
    result.err = slurp(err_path_);
    return result;
  }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }
  pid_t pid_ = -1;
  std::filesystem::path out_path_, err_path_;
};

// A fresh directory for one test, under the build tree.
inline std::filesystem::path scratch_dir(const std::string& name) {
  auto dir = std::filesystem::path(PROFAGENT_TEST_BINARY_DIR) / "scratch" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::string fixture_plugin(const std::string& name) {
  return std::string(PROFAGENT_FIXTURE_PLUGIN_DIR) + "/" + name;
}

// profagent-run with the given arguments, run to completion.
inline ProcessResult run_profagent(const std::vector<std::string>& args, const std::filesystem::path& dir) {
  std::vector<std::string> argv = {PROFAGENT_RUN_EXE};
  argv.insert(argv.end(), args.begin(), args.end());
  return Process(argv, dir / "capture", dir).wait();
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

template <class Predicate>
bool wait_until(Predicate predicate, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace profagent::test
