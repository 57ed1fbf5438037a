#pragma once
// One access log line per HTTP request (spdlog logger "access"): request id, method, path,
// status, tokens and latency, in key=value form so that log tools can pick fields.

#include <cstdint>
#include <string>

namespace actorserve::gateway {

struct access_record {
  std::string request_id; // the response id (cmpl-..., chatcmpl-...) or "-"
  std::string remote;     // client address:port
  std::string method;
  std::string path;
  int status = 0;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  double latency_ms = 0;  // request received -> response finished (streams: last byte)
  bool stream = false;
  std::string finish;     // "stop", "length", "abort", "disconnected", or empty
};

std::string access_line(const access_record& r);
/// Writes the line at info level to the "access" logger (created on first use).
void log_access(const access_record& r);

} // namespace actorserve::gateway
