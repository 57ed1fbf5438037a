#pragma once
// Helpers shared by the test suites.

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

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

} // namespace actorserve::testing
