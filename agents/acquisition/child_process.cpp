#include "child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>

extern char** environ;

namespace profagent::agents {

namespace {

// Closes what it owns on every path out of run_child.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

Status make_pipe(Fd& read_end, Fd& write_end) {
  int fds[2];
  // CLOEXEC so the child keeps only the ends dup2'ed onto its stdout/stderr (dup2 clears the flag).
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return Status(ErrorCode::kIo, std::string("cannot create a pipe: ") + std::strerror(errno));
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
  return Status::ok();
}

std::vector<std::string> child_environment(const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string text(*entry);
    std::string key = text.substr(0, text.find('='));
    if (overrides.count(key) == 0) env.push_back(std::move(text));
  }
  for (const auto& [key, value] : overrides) env.push_back(key + "=" + value);
  return env;
}

std::vector<char*> as_argv(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (auto& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

Result<ChildResult> run_child(const std::vector<std::string>& argv, const ChildOptions& options) {
  if (argv.empty()) return Status(ErrorCode::kInternal, "run_child: empty argv");
  Fd out_read, out_write, err_read, err_write;
  PROFAGENT_RETURN_IF_ERROR(make_pipe(out_read, out_write));
  PROFAGENT_RETURN_IF_ERROR(make_pipe(err_read, err_write));

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_write.get(), 2);

  std::vector<std::string> args = argv;
  std::vector<std::string> env = child_environment(options.env);
  std::vector<char*> arg_ptrs = as_argv(args);
  std::vector<char*> env_ptrs = as_argv(env);
  pid_t pid = 0;
  // glibc's posix_spawn reports a failed exec (missing file, not executable) as its return value.
  int spawn_error = ::posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, arg_ptrs.data(), env_ptrs.data());
  posix_spawn_file_actions_destroy(&actions);
  if (spawn_error != 0)
    return Status(spawn_error == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                  "cannot run " + argv[0] + ": " + std::strerror(spawn_error));
  // Our copies of the write ends must go, or the reads below never see end-of-file.
  out_write.reset();
  err_write.reset();

  ChildResult result;
  result.pid = pid;
  std::deque<std::string> tail;
  std::string err_partial;
  auto take_err_line = [&](std::string line) {
    if (options.on_err_line) options.on_err_line(line);
    tail.push_back(std::move(line));
    while (tail.size() > options.err_tail_lines) tail.pop_front();
  };

  pollfd fds[2] = {{out_read.get(), POLLIN, 0}, {err_read.get(), POLLIN, 0}};
  int open_streams = 2;
  char buffer[8192];
  while (open_streams > 0) {
    int ready = ::poll(fds, 2, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;  // cannot happen with valid fds; waitpid below still reaps the child
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        fds[i].fd = -1;  // poll ignores negative fds
        --open_streams;
        continue;
      }
      if (i == 0) {
        result.out.append(buffer, static_cast<std::size_t>(n));
        continue;
      }
      err_partial.append(buffer, static_cast<std::size_t>(n));
      std::size_t newline;
      while ((newline = err_partial.find('\n')) != std::string::npos) {
        take_err_line(err_partial.substr(0, newline));
        err_partial.erase(0, newline + 1);
      }
    }
  }
  if (!err_partial.empty()) take_err_line(err_partial);

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return Status(ErrorCode::kIo, "cannot wait for " + argv[0] + ": " + std::strerror(errno));
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
    result.exit_code = 128 + result.signal;
  }
  for (std::size_t i = 0; i < tail.size(); ++i) result.err_tail += (i ? "\n" : "") + tail[i];
  return result;
}

}  // namespace profagent::agents
