#include "gateway/access_log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>

namespace actorserve::gateway {

std::string access_line(const access_record& r) {
  char latency[32];
  std::snprintf(latency, sizeof latency, "%.1f", r.latency_ms);
  std::string line = "id=" + (r.request_id.empty() ? std::string("-") : r.request_id) + " remote=" +
                     (r.remote.empty() ? std::string("-") : r.remote) + " \"" + r.method + " " + r.path +
                     "\" status=" + std::to_string(r.status) + " prompt_tokens=" + std::to_string(r.prompt_tokens) +
                     " completion_tokens=" + std::to_string(r.completion_tokens) + " latency_ms=" + latency +
                     " stream=" + (r.stream ? "true" : "false");
  if (!r.finish.empty())
    line += " finish=" + r.finish;
  return line;
}

void log_access(const access_record& r) {
  static std::shared_ptr<spdlog::logger> logger = [] {
    if (auto existing = spdlog::get("access"))
      return existing;
    return spdlog::stderr_color_mt("access");
  }();
  logger->info(access_line(r));
}

} // namespace actorserve::gateway
