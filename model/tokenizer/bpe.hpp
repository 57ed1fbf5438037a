#pragma once
// The BPE model of tokenizer.json: vocabulary, ranked merges, byte fallback, unknown token,
// ignore_merges, continuing_subword_prefix / end_of_word_suffix. Encodes one pre-tokenized piece
// at a time with the linked-list + priority-queue merge (each merge O(log n)), and caches the ids
// of pieces seen before (most words of a text repeat).

#include "model/tokenizer/json_fields.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace actorserve::tokenization {

struct string_hash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <class V>
using string_map = std::unordered_map<std::string, V, string_hash, std::equal_to<>>;

/// Open-addressing map from a pair of token ids to (merge rank, merged token id).
class merge_map {
public:
  struct merge {
    uint32_t rank;
    uint32_t new_id;
  };
  void reserve(size_t count);
  /// A later merge of the same pair replaces the earlier one, as in tokenizers.
  void insert_or_assign(uint32_t left, uint32_t right, merge value);
  const merge* find(uint32_t left, uint32_t right) const {
    if (slots_.empty())
      return nullptr;
    uint64_t key = pack(left, right);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const slot& s = slots_[i];
      if (s.key == key)
        return &s.value;
      if (s.key == empty_key)
        return nullptr;
    }
  }
  size_t size() const { return size_; }

private:
  static constexpr uint64_t empty_key = ~0ull;
  struct slot {
    uint64_t key = empty_key;
    merge value{};
  };
  static uint64_t pack(uint32_t left, uint32_t right) { return (uint64_t{left} << 32) | right; }
  static size_t hash(uint64_t key) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return static_cast<size_t>(key);
  }
  void grow();
  std::vector<slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

class bpe_model {
public:
  /// Parses the "model" object; throws model_error on anything malformed (unknown merge tokens,
  /// wrong types, a merge whose result is not in the vocabulary).
  bpe_model(const json& spec, const std::string& where);

  /// Appends the ids of one pre-tokenized piece (non-empty, valid UTF-8).
  void tokenize(std::string_view word, std::vector<uint32_t>& ids) const;

  std::optional<uint32_t> token_to_id(std::string_view token) const;
  /// nullptr when the id is not in the vocabulary.
  const std::string* id_to_token(uint32_t id) const;
  /// Number of vocabulary entries (what tokenizers calls the model's vocab size).
  size_t vocab_count() const { return vocab_.size(); }
  /// One past the largest id of the vocabulary.
  size_t id_limit() const { return id_to_token_.size(); }
  bool byte_fallback() const { return byte_fallback_; }

private:
  void merge_word(std::string_view word, std::vector<uint32_t>& ids) const;
  std::optional<uint32_t> symbol_id(std::string_view text, bool first, bool last) const;

  string_map<uint32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<uint8_t> id_present_;
  merge_map merges_;
  std::optional<uint32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  std::vector<int64_t> byte_ids_;        // [256]: id of "<0xXX>", or -1
  std::vector<int64_t> small_char_ids_;  // [0x800]: id of a one-character token, or -1

  // Word cache: piece -> ids. Readers share the lock; inserts stop once it is full.
  static constexpr size_t cache_capacity = 100000;
  static constexpr size_t cache_max_word_bytes = 256;
  mutable std::shared_mutex cache_mutex_;
  mutable string_map<std::vector<uint32_t>> cache_;
};

} // namespace actorserve::tokenization
