#pragma once
// --api-key: every /v1/* request must carry `Authorization: Bearer <key>`.

#include "gateway/api_error.hpp"

#include <string_view>

namespace actorserve::gateway {

/// Compares in time that depends only on the lengths, not on where the strings differ, so the
/// key cannot be guessed byte by byte from response times.
bool constant_time_equal(std::string_view a, std::string_view b);

/// True when `authorization` (the header's value) is "Bearer <api_key>" (scheme case-insensitive).
bool bearer_authorized(std::string_view authorization, std::string_view api_key);

/// The 401 answered to a request without the right key.
api_error unauthorized_error();

} // namespace actorserve::gateway
