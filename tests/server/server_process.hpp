// Starts the real bufpool-server binary on ephemeral loopback ports for a test, and stops it.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace bufpool::test {

/// A scratch directory, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "bufpool-test-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A child process whose output goes to a log file; stopped (SIGTERM, then SIGKILL) at the end.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::string log_path)
      : log_path_(std::move(log_path)) {
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      const int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> args;
      for (auto& a : argv)
        args.push_back(a.data());
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
  }
  ~ChildProcess() {
    if (pid_ > 0) stop();
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  /// Sends `sig` (SIGTERM by default) and waits for the exit (SIGKILL after `limit`). Returns the
  /// exit code, or 128 + signal if it was killed.
  int stop(int sig = SIGTERM, std::chrono::seconds limit = std::chrono::seconds(15)) {
    if (pid_ <= 0) return exit_code_;
    kill(pid_, sig);
    return wait_exit(limit);
  }
  void signal(int sig) { kill(pid_, sig); }
  int wait_exit(std::chrono::seconds limit = std::chrono::seconds(15)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    int status = 0;
    for (;;) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) break;
      if (std::chrono::steady_clock::now() > until) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_code_;
  }
  /// True while it runs; false (and reaped) once it has exited.
  bool running() {
    int status = 0;
    if (pid_ > 0 && waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return pid_ > 0;
  }
  pid_t pid() const noexcept { return pid_; }
  std::string log() const { return read_file(log_path_); }

 private:
  std::string log_path_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

class ServerProcess : public ChildProcess {
 public:
  /// Starts bufpool-server with 127.0.0.1:0 listeners, a port file, and `args`; waits until it
  /// listens (at most 10 s).
  explicit ServerProcess(std::vector<std::string> args = {})
      : ServerProcess(std::make_unique<TempDir>(), std::move(args)) {}

  ~ServerProcess() { stop(); }  // before the directory with its log goes
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  const TempDir& dir() const { return *dir_; }
  std::uint16_t http_port = 0;
  std::uint16_t rpc_port = 0;
  std::uint16_t resp_port = 0;

 private:
  ServerProcess(std::unique_ptr<TempDir> dir, std::vector<std::string> args)
      : ChildProcess(command(*dir, std::move(args)), dir->file("server.log")),
        dir_(std::move(dir)) {
    const std::string port_file = dir_->file("ports.json");
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!std::filesystem::exists(port_file)) {
      if (!running()) throw std::runtime_error("bufpool-server exited at start:\n" + log());
      if (std::chrono::steady_clock::now() > until)
        throw std::runtime_error("server start timeout");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const std::string ports = read_file(port_file);
    http_port = parse_port(ports, "\"http\": ");
    rpc_port = parse_port(ports, "\"rpc\": ");
    resp_port = parse_port(ports, "\"resp\": ");
  }
  static std::vector<std::string> command(const TempDir& dir, std::vector<std::string> args) {
    std::vector<std::string> all = {BUFPOOL_SERVER_BIN,
                                    "--http-listen",
                                    "127.0.0.1:0",
                                    "--rpc-listen",
                                    "127.0.0.1:0",
                                    "--resp-listen",
                                    "127.0.0.1:0",
                                    "--port-file",
                                    dir.file("ports.json"),
                                    "--threads",
                                    "2"};
    all.insert(all.end(), args.begin(), args.end());
    return all;
  }
  static std::uint16_t parse_port(const std::string& json, const std::string& key) {
    const auto at = json.find(key);
    if (at == std::string::npos) throw std::runtime_error("bad port file: " + json);
    return static_cast<std::uint16_t>(std::stoi(json.substr(at + key.size())));
  }
  std::unique_ptr<TempDir> dir_;
};

/// A loopback port that was free a moment ago, for a program that cannot report the port it
/// bound (nginx, nutcracker).
inline std::uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("no free port");
  close(fd);
  return ntohs(a.sin_port);
}

/// Runs a shell command; returns its exit code and standard output.
inline std::pair<int, std::string> run(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (!p) return {-1, ""};
  char buf[4096];
  for (std::size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;)
    out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace bufpool::test
