#include "gateway/model_location.hpp"

#include "model/make_model.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <string>
#include <unistd.h>
#include <system_error>

namespace actorserve::gateway {
namespace {

namespace fs = std::filesystem;

bool is_model_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "config.json", ec);
}

fs::path executable_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path{} : exe.parent_path();
}

} // namespace

fs::path find_demo_model() {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("ACTORSERVE_DEMO_MODEL"))
    candidates.emplace_back(env);
  if (fs::path exe = executable_dir(); !exe.empty()) {
    candidates.push_back(exe / "models/demo");
    candidates.push_back(exe.parent_path() / "models/demo");
    candidates.push_back(exe.parent_path() / "share/actorserve/models/demo");
  }
#ifdef ACTORSERVE_SOURCE_DIR
  candidates.push_back(fs::path(ACTORSERVE_SOURCE_DIR) / "models/demo");
#endif
  candidates.push_back(fs::current_path() / "models/demo");
  for (const fs::path& c : candidates)
    if (is_model_dir(c))
      return fs::weakly_canonical(c);
  return {};
}

fs::path cache_dir() {
  if (const char* env = std::getenv("ACTORSERVE_CACHE"); env && *env)
    return env;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return fs::path(xdg) / "actorserve";
  if (const char* home = std::getenv("HOME"); home && *home)
    return fs::path(home) / ".cache/actorserve";
  return fs::temp_directory_path() / "actorserve-cache";
}

fs::path default_model_dir() {
  if (fs::path demo = find_demo_model(); !demo.empty())
    return demo;
  const fs::path tiny = cache_dir() / "tiny";
  if (!is_model_dir(tiny)) {
    spdlog::warn("no bundled demo model found; making a tiny random-weight model in {}", tiny.string());
    make_model_options options;
    options.config = model_preset("tiny");
    options.vocab_from_preset = true;
    // Made beside and renamed into place, so a concurrent server never sees half a model.
    const fs::path partial = tiny.string() + ".partial-" + std::to_string(::getpid());
    make_model(partial, options);
    std::error_code ec;
    fs::rename(partial, tiny, ec);
    if (ec) // another process won the race: use its copy
      fs::remove_all(partial, ec);
  }
  return tiny;
}

} // namespace actorserve::gateway
