#pragma once
// Helpers for the request-parsing tests: parse a JSON literal and capture the api_error.

#include "gateway/openai_request.hpp"

#include <optional>
#include <string>

namespace actorserve::gateway::test {

inline request_limits limits() {
  request_limits l;
  l.model_names = {"tiny", "tiny-alias"};
  l.vocab_size = 1000;
  return l;
}

template <typename Fn> std::optional<api_error> error_of(Fn&& fn) {
  try {
    fn();
  } catch (const api_error& e) {
    return e;
  }
  return std::nullopt;
}

inline std::optional<api_error> completion_error(const std::string& body) {
  return error_of([&] { parse_completion_request(parse_json_body(body), limits()); });
}

inline std::optional<api_error> chat_error(const std::string& body) {
  return error_of([&] { parse_chat_request(parse_json_body(body), limits()); });
}

} // namespace actorserve::gateway::test
