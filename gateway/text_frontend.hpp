#pragma once
// What the gateway needs from the model's text side: the chat template, the tokenizer, and a
// token's text for logprobs. The HTTP layer is written against this interface; the real one
// (tokenizer.json + the template in tokenizer_config.json) is made by `load_text_frontend`.

#include "gateway/openai_request.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace actorserve {
class detokenizer;
}

namespace actorserve::gateway {

class text_frontend {
public:
  virtual ~text_frontend() = default;
  /// Token ids of `text`; `add_special_tokens` adds the model's BOS as the tokenizer config says.
  virtual std::vector<int32_t> encode(const std::string& text, bool add_special_tokens) const = 0;
  virtual std::string decode(std::span<const int32_t> token_ids, bool skip_special_tokens) const = 0;
  /// The text of one token on its own (logprobs "token" fields).
  virtual std::string token_text(int32_t token) const = 0;
  /// The token's string in the vocabulary (byte-level pieces such as "Ġhi" as they are stored;
  /// /tokenize's token_strs); the text of the token where the vocabulary has no entry.
  virtual std::string vocab_token(int32_t token) const { return token_text(token); }
  /// The chat template applied to the request's messages (and tools); throws api_error (400)
  /// when the template rejects them.
  virtual std::string apply_chat_template(const chat_request& request) const = 0;
  /// Whether encoding the rendered chat prompt must add special tokens (false when the
  /// template writes BOS itself).
  virtual bool chat_adds_special_tokens() const = 0;
  virtual int64_t vocab_size() const = 0;
  /// The model's generation_config.json defaults (temperature, top_p, ...), else the API's.
  virtual sampling_params default_sampling() const = 0;
  /// The engine's detokenizer, backed by the same tokenizer.
  virtual std::shared_ptr<const detokenizer> engine_detokenizer() const = 0;
};

/// Loads tokenizer.json, tokenizer_config.json (chat template, specials) and, when
/// `use_generation_config`, the sampling defaults of generation_config.json from a model
/// folder. A non-empty `chat_template` (the text, see read_chat_template_arg) replaces every
/// template of the folder. Throws model_error when unusable.
std::unique_ptr<text_frontend> load_text_frontend(const std::filesystem::path& model_dir,
                                                  bool use_generation_config = true,
                                                  const std::string& chat_template = {});

/// vLLM's --chat-template argument: the text of the file at `arg` when there is one, else `arg`
/// itself as the template (only when it looks like one: it has '{', '}' or a newline; anything
/// else is a missing file). Parses it, so a broken template fails at start; throws model_error
/// with the reason (and the line and column of a syntax error).
std::string read_chat_template_arg(const std::string& arg);

/// A warning when many of the model's vocabulary rows have no token in the tokenizer (ids the
/// model can emit that decode to no text, e.g. a random model written with a 260-token byte
/// tokenizer but 128,256 rows, or the wrong tokenizer.json); empty when at most 128 rows or at
/// most 1% of them lack a token (the usual padding of the vocabulary to a round size).
std::string vocabulary_coverage_warning(int64_t tokenizer_size, int64_t model_vocab_rows);

} // namespace actorserve::gateway
