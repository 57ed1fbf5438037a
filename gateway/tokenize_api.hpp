#pragma once
// vLLM's POST /tokenize and POST /detokenize, as functions of the parsed body (the HTTP layer
// only routes to them):
//   /tokenize   {"model"?, "prompt": "text", "add_special_tokens"?: true}
//            or {"model"?, "messages": [...], "add_generation_prompt"?: true, "continue_final_message"?,
//                "chat_template_kwargs"?, "tools"?, "add_special_tokens"?}
//            -> {"count", "max_model_len", "tokens": [ids], "token_strs": null | [strings]}
//               ("return_token_strs": true fills token_strs with the vocabulary's strings)
//   /detokenize {"model"?, "tokens": [ids]} -> {"prompt": "text"}
// The messages form renders the chat template exactly as /v1/chat/completions does (the same
// parse_chat_request and text_frontend::apply_chat_template), so its ids are the ones a chat
// request would send to the engine. Without add_special_tokens it encodes as chat does
// (text_frontend::chat_adds_special_tokens: false, the templates write BOS, as vLLM's default).

#include "gateway/openai_request.hpp"
#include "gateway/text_frontend.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace actorserve::gateway {

/// The /tokenize response body; throws api_error (400 bad fields, 404 unknown model).
std::string tokenize_response(const nlohmann::ordered_json& body, const request_limits& limits,
                              const text_frontend& frontend, int32_t max_model_len);

/// The /detokenize response body; ids outside [0, vocab_size) are a 400 on `tokens`.
std::string detokenize_response(const nlohmann::ordered_json& body, const request_limits& limits,
                                const text_frontend& frontend);

} // namespace actorserve::gateway
