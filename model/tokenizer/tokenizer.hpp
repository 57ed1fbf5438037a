#pragma once
// A Hugging Face tokenizer.json, loaded and run in C++ with the same results as the `tokenizers`
// library: encode (added tokens -> normalizer -> pre-tokenizer -> BPE -> post-processor) and
// decode (ids -> token strings -> decoder chain).
//
//   auto tok = actorserve::tokenizer::from_dir("/models/llama3");   // reads tokenizer.json
//   std::vector<uint32_t> ids = tok.encode("Hello world");           // no special tokens added
//   std::string text = tok.decode(ids);
//
// A tokenizer is cheap to copy (shared immutable state) and safe to use from many threads.
// Supported: BPE models; the normalizers, pre-tokenizers, post-processors and decoders listed
// in normalizers.hpp, pre_tokenizers.hpp, post_processors.hpp and decoders.hpp. Anything else in
// the file (WordPiece/Unigram models, unknown component types) is refused with a model_error at
// load time, so a model never runs with a tokenizer that would encode differently.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace actorserve {

namespace tokenization {
struct tokenizer_state;
}

class tokenizer {
public:
  /// Parses the text of a tokenizer.json; throws model_error naming the faulty field.
  static tokenizer from_json(std::string_view json_text);
  static tokenizer from_file(const std::filesystem::path& tokenizer_json);
  /// DIR/tokenizer.json, as in a model folder.
  static tokenizer from_dir(const std::filesystem::path& dir);

  /// Token ids of UTF-8 text; throws model_error when the text is not valid UTF-8.
  /// add_special_tokens applies the post-processor (e.g. inserts BOS), as in tokenizers.
  std::vector<uint32_t> encode(std::string_view text, bool add_special_tokens = false) const;

  /// Text of the ids; unknown ids are skipped (as tokenizers does). Always valid UTF-8.
  std::string decode(std::span<const uint32_t> ids, bool skip_special_tokens = false) const;
  /// The same for signed ids (negative ones are skipped).
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  std::optional<uint32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(uint32_t id) const;
  /// One past the largest id the tokenizer knows (vocabulary and added tokens).
  size_t vocab_size() const;
  /// True for added tokens marked special (skipped by decode with skip_special_tokens).
  bool is_special(uint32_t id) const;
  /// The ids of all added tokens marked special.
  std::vector<uint32_t> special_ids() const;

  const tokenization::tokenizer_state& state() const { return *state_; }

private:
  explicit tokenizer(std::shared_ptr<const tokenization::tokenizer_state> state) : state_(std::move(state)) {}
  std::shared_ptr<const tokenization::tokenizer_state> state_;
};

} // namespace actorserve
