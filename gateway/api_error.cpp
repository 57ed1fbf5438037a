#include "gateway/api_error.hpp"

#include <nlohmann/json.hpp>

namespace actorserve::gateway {

api_error invalid_request(std::string message, std::string param, std::string code) {
  return api_error(400, std::move(message), "invalid_request_error", std::move(param), std::move(code));
}

std::string error_body(const api_error& e) {
  using json = nlohmann::ordered_json;
  json inner = {{"message", e.message},
                {"type", e.type},
                {"param", e.param.empty() ? json(nullptr) : json(e.param)},
                {"code", e.code.empty() ? json(nullptr) : json(e.code)}};
  // Messages may quote request text that is not valid UTF-8: replace, never throw.
  return json{{"error", std::move(inner)}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace actorserve::gateway
