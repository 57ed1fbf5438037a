#pragma once
// Helpers shared by the test suites.

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>

#include <sys/wait.h>

namespace actorserve::testing {

inline std::filesystem::path source_dir() { return ACTORSERVE_SOURCE_DIR; }
inline std::filesystem::path executable() { return ACTORSERVE_EXECUTABLE; }

/// Where fetched test assets live (real tokenizer files): $ACTORSERVE_TEST_CACHE or .cache/.
inline std::filesystem::path cache_dir() {
  if (const char* dir = std::getenv("ACTORSERVE_TEST_CACHE"))
    return dir;
  return source_dir() / ".cache";
}

/// A fresh temporary folder, removed when the object dies.
class temp_dir {
public:
  temp_dir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("actorserve-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }

private:
  std::filesystem::path path_;
};

/// What a shell command wrote to stdout, and how it ended.
struct command_result {
  std::string out; // stdout only: stderr is wherever the command line sends it (2>&1, a file)
  int status = -1; // exit status; -1 when the command did not exit (killed by a signal)
};

/// Runs `shell_command` through /bin/sh and reads its stdout to the end. Throws
/// std::runtime_error when the shell cannot be started (no Catch here, so helpers outside a
/// test case can use it too).
inline command_result run_command(const std::string& shell_command) {
  FILE* pipe = ::popen(shell_command.c_str(), "r");
  if (!pipe)
    throw std::runtime_error("cannot run: " + shell_command);
  command_result r;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe))
    r.out.append(buffer, n);
  const int status = ::pclose(pipe);
  r.status = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

} // namespace actorserve::testing
