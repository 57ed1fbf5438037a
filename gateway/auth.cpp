#include "gateway/auth.hpp"

#include <cctype>

namespace actorserve::gateway {

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Walk the longer length, so a short guess takes as long as a long one.
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  volatile unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = diff | (x ^ y);
  }
  return diff == 0;
}

bool bearer_authorized(std::string_view authorization, std::string_view api_key) {
  constexpr std::string_view scheme = "bearer ";
  if (authorization.size() < scheme.size())
    return false;
  for (size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i])
      return false;
  std::string_view token = authorization.substr(scheme.size());
  while (!token.empty() && token.front() == ' ')
    token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t'))
    token.remove_suffix(1);
  return constant_time_equal(token, api_key);
}

api_error unauthorized_error() {
  return api_error(401,
                   "Incorrect API key provided. Send it as 'Authorization: Bearer <key>' (the server's --api-key).",
                   "invalid_request_error", {}, "invalid_api_key");
}

} // namespace actorserve::gateway
