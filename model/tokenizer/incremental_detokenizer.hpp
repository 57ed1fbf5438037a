#pragma once
// Streaming detokenization: fed one generated id at a time, returns the text that has become
// final. Text is released only when it is valid UTF-8 and can no longer change, so the
// concatenation of everything returned (add() pieces, then finish()) equals tokenizer::decode of
// all the ids (after the prompt).
//
// How: like vLLM, decode a small window of recent ids twice, without and with the new ids
// (prefix_offset .. read_offset, then prefix_offset .. end), and release the difference. Decoders
// that look at a token's position (Metaspace drops the first token's space, Strip trims the
// first characters) treat both decodes alike, so the difference is what the full decode adds,
// as long as the first window decodes to something (the window start only moves forward onto
// ids whose own text is not empty).
// Text is held back while it ends in U+FFFD (an incomplete UTF-8 sequence may still complete),
// while the last token is a byte-fallback token (tokenizers turns a whole run of byte tokens
// into U+FFFD if the run is not valid UTF-8), and, for decoders that edit the end of the text,
// by one token.

#include "model/tokenizer/tokenizer.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace actorserve {

class incremental_detokenizer {
public:
  /// `prompt_ids` (optional) give the context the output continues: the output's first space
  /// is then kept as the full decode of prompt + output would show it.
  incremental_detokenizer(tokenizer tok, bool skip_special_tokens = true,
                          std::span<const uint32_t> prompt_ids = {});

  /// Adds one id; returns the newly final text (often empty).
  std::string add(uint32_t id);
  /// End of the stream: returns all text still held back.
  std::string finish();

private:
  std::string decode_window(size_t begin, size_t end) const;

  tokenizer tok_;
  bool skip_special_;
  bool hold_byte_tokens_;
  bool lag_one_token_;
  std::vector<uint32_t> ids_; // recent ids (skipped ones never enter)
  size_t prefix_offset_ = 0;  // window start: the ids before read_offset_ were already released
  size_t read_offset_ = 0;
};

} // namespace actorserve
