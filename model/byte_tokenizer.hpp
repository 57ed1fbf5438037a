#pragma once
// The small byte-level tokenizer that make-model writes when no real tokenizer is given, in
// Hugging Face tokenizers format, so that every model it makes can serve text: token id b
// (0..255) is the byte b, spelled with GPT-2's bytes-to-unicode alphabet as ByteLevel
// tokenizers do (the table of model/tokenizer/byte_level.hpp); no merges; then the special
// tokens below.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace actorserve {

/// The special tokens, with ids 256, 257, ... in this order.
inline constexpr std::string_view byte_tokenizer_specials[] = {
    "<|begin_of_text|>", "<|end_of_text|>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>",
};
inline constexpr int64_t byte_tokenizer_bos_id = 256; // <|begin_of_text|>
inline constexpr int64_t byte_tokenizer_eos_id = 257; // <|end_of_text|>
inline constexpr int64_t byte_tokenizer_end_of_turn_id = 261; // <|end|>
inline constexpr int64_t byte_tokenizer_size = 256 + std::size(byte_tokenizer_specials);

/// tokenizer.json text.
std::string byte_tokenizer_json();

/// tokenizer_config.json text: bos/eos tokens, no automatic BOS, and a chat template
/// "<|begin_of_text|><|role|>\ncontent<|end|>\n...<|assistant|>\n".
std::string byte_tokenizer_config_json(int64_t model_max_length);

} // namespace actorserve
