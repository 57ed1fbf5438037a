#pragma once
// Errors the HTTP API answers with, in OpenAI's shape:
//   {"error": {"message": "...", "type": "...", "param": "..."|null, "code": "..."|null}}
// Request parsing throws `api_error`; the HTTP layer turns it into a response with `status`.

#include <exception>
#include <string>

namespace actorserve::gateway {

class api_error : public std::exception {
public:
  api_error(int status, std::string message, std::string type, std::string param = {},
            std::string code = {})
      : status(status), message(std::move(message)), type(std::move(type)), param(std::move(param)),
        code(std::move(code)) {}

  const char* what() const noexcept override { return message.c_str(); }

  int status;          // HTTP status
  std::string message; // what is wrong, in words a user can act on
  std::string type;    // "invalid_request_error", "authentication_error", "server_error", ...
  std::string param;   // the request field at fault; empty: null
  std::string code;    // machine-readable reason; empty: null
};

/// 400 invalid_request_error about `param`.
api_error invalid_request(std::string message, std::string param = {}, std::string code = {});

/// The JSON body of an error response.
std::string error_body(const api_error& e);

} // namespace actorserve::gateway
