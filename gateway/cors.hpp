#pragma once
// CORS as vLLM does it (Starlette's CORSMiddleware, with vLLM's flags --allowed-origins,
// --allowed-methods, --allowed-headers, --allow-credentials; each list defaults to ["*"]):
// - a response to a request with an Origin header gets Access-Control-Allow-Origin: the origin
//   itself (with Vary: Origin) when it is allowed and the list is not "*" or credentials are
//   on, "*" when any origin is allowed; a disallowed origin gets no CORS headers (the browser
//   then hides the response from the page);
// - a preflight (OPTIONS with Origin and Access-Control-Request-Method, to any route) is
//   answered here, before the API key is checked: 200 with Allow-Methods, Allow-Headers and
//   Max-Age when the origin, the method and every requested header are allowed, else 400
//   without CORS headers.
// Pure functions of the options and the request's header values; http_server applies them.

#include <string>
#include <utility>
#include <vector>

namespace actorserve::gateway {

struct cors_options {
  std::vector<std::string> allowed_origins{"*"}; // exact origins ("https://a.example"), or "*"
  std::vector<std::string> allowed_methods{"*"}; // "GET", "POST", ..., or "*"
  std::vector<std::string> allowed_headers{"*"}; // request header names (any case), or "*"
  bool allow_credentials = false;                // Access-Control-Allow-Credentials: true
};

using header_list = std::vector<std::pair<std::string, std::string>>;

/// A flag's list: a JSON array of strings (vLLM's form, '["https://a.example"]') or a
/// comma-separated list ("GET,POST"). Throws std::invalid_argument naming `flag`.
std::vector<std::string> parse_cors_list(const std::string& flag, const std::string& value);

/// The headers of an ordinary response to a request from `origin` (empty: none).
header_list cors_response_headers(const cors_options& options, const std::string& origin);

struct preflight_answer {
  int status = 200;
  header_list headers;
  std::string reason; // why a 400 was answered
};

/// The answer to a preflight from `origin` asking for `request_method` and the
/// comma-separated `request_headers` (Access-Control-Request-Headers, may be empty).
preflight_answer cors_preflight(const cors_options& options, const std::string& origin,
                                const std::string& request_method, const std::string& request_headers);

/// A preflight is an OPTIONS request with Origin and Access-Control-Request-Method.
inline bool is_preflight(const std::string& method, const std::string& origin, const std::string& request_method) {
  return method == "OPTIONS" && !origin.empty() && !request_method.empty();
}

} // namespace actorserve::gateway
