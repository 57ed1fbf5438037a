#include "gateway/cors.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace actorserve::gateway {
namespace {

// What "*" in --allowed-methods stands for in Access-Control-Allow-Methods (Starlette's list).
constexpr const char* all_methods = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT";
// Headers a browser may always send (the CORS-safelisted request headers).
const std::vector<std::string> safelisted_headers{"accept", "accept-language", "content-language", "content-type"};
constexpr int preflight_max_age_s = 600;

std::string trim(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos)
    return {};
  return s.substr(begin, s.find_last_not_of(" \t") - begin + 1);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::toupper(c)); });
  return s;
}

bool contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

std::vector<std::string> split_commas(const std::string& value) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= value.size()) {
    const size_t comma = std::min(value.find(',', start), value.size());
    if (std::string item = trim(value.substr(start, comma - start)); !item.empty())
      out.push_back(std::move(item));
    start = comma + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items)
    out += (out.empty() ? "" : ", ") + item;
  return out;
}

bool origin_allowed(const cors_options& o, const std::string& origin) {
  return contains(o.allowed_origins, "*") || contains(o.allowed_origins, origin);
}

// Access-Control-Allow-Origin (and Credentials) for an allowed origin.
header_list origin_headers(const cors_options& o, const std::string& origin) {
  header_list h;
  if (contains(o.allowed_origins, "*") && !o.allow_credentials) {
    h.emplace_back("Access-Control-Allow-Origin", "*");
  } else { // a browser refuses "*" with credentials, so the origin is named
    h.emplace_back("Access-Control-Allow-Origin", origin);
    h.emplace_back("Vary", "Origin");
  }
  if (o.allow_credentials)
    h.emplace_back("Access-Control-Allow-Credentials", "true");
  return h;
}

} // namespace

std::vector<std::string> parse_cors_list(const std::string& flag, const std::string& value) {
  const std::string text = trim(value);
  if (text.empty() || text.front() != '[')
    return split_commas(text);
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_array())
    throw std::invalid_argument(flag + " " + value + ": not a JSON list; give '[\"a\", \"b\"]' or a,b");
  std::vector<std::string> out;
  for (const auto& item : j) {
    if (!item.is_string())
      throw std::invalid_argument(flag + " " + value + ": every item of the list must be a string");
    out.push_back(trim(item.get<std::string>()));
  }
  return out;
}

header_list cors_response_headers(const cors_options& options, const std::string& origin) {
  if (origin.empty() || !origin_allowed(options, origin))
    return {};
  return origin_headers(options, origin);
}

preflight_answer cors_preflight(const cors_options& options, const std::string& origin,
                                const std::string& request_method, const std::string& request_headers) {
  preflight_answer a;
  std::vector<std::string> refused;
  if (!origin_allowed(options, origin))
    refused.push_back("origin");
  const bool any_method = contains(options.allowed_methods, "*");
  std::vector<std::string> methods;
  for (const std::string& m : options.allowed_methods)
    methods.push_back(upper(m));
  if (!any_method && !contains(methods, upper(request_method)))
    refused.push_back("method");
  const bool any_header = contains(options.allowed_headers, "*");
  std::vector<std::string> allowed_headers = safelisted_headers;
  for (const std::string& h : options.allowed_headers)
    allowed_headers.push_back(lower(h));
  const std::vector<std::string> requested = split_commas(request_headers);
  if (!any_header && std::any_of(requested.begin(), requested.end(),
                                 [&](const std::string& h) { return !contains(allowed_headers, lower(h)); }))
    refused.push_back("headers");
  if (!refused.empty()) {
    a.status = 400;
    a.reason = "Disallowed CORS " + join(refused) + ".";
    return a;
  }
  a.headers = origin_headers(options, origin);
  a.headers.emplace_back("Access-Control-Allow-Methods", any_method ? std::string(all_methods) : join(methods));
  if (any_header) { // "*" is not a wildcard when credentials are on: name what was asked for
    if (!requested.empty())
      a.headers.emplace_back("Access-Control-Allow-Headers", join(requested));
  } else {
    std::sort(allowed_headers.begin(), allowed_headers.end());
    allowed_headers.erase(std::unique(allowed_headers.begin(), allowed_headers.end()), allowed_headers.end());
    a.headers.emplace_back("Access-Control-Allow-Headers", join(allowed_headers));
  }
  a.headers.emplace_back("Access-Control-Max-Age", std::to_string(preflight_max_age_s));
  return a;
}

} // namespace actorserve::gateway
