#include "model/tokenizer/bpe.hpp"

#include "model/tokenizer/unicode.hpp"

#include <algorithm>
#include <mutex>

namespace actorserve::tokenization {

void merge_map::reserve(size_t count) {
  size_t capacity = 16;
  while (capacity < count * 2)
    capacity *= 2;
  if (capacity <= slots_.size())
    return;
  std::vector<slot> old;
  old.swap(slots_);
  slots_.assign(capacity, slot{});
  mask_ = capacity - 1;
  size_ = 0;
  for (const auto& s : old)
    if (s.key != empty_key)
      insert_or_assign(static_cast<uint32_t>(s.key >> 32), static_cast<uint32_t>(s.key), s.value);
}

void merge_map::grow() { reserve(std::max<size_t>(16, size_ * 2 + 2)); }

void merge_map::insert_or_assign(uint32_t left, uint32_t right, merge value) {
  if (slots_.empty() || (size_ + 1) * 2 > slots_.size())
    grow();
  uint64_t key = pack(left, right);
  for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
    slot& s = slots_[i];
    if (s.key == key) {
      s.value = value;
      return;
    }
    if (s.key == empty_key) {
      s.key = key;
      s.value = value;
      ++size_;
      return;
    }
  }
}

namespace {

// A merges entry is either "left right" or ["left", "right"].
std::pair<std::string, std::string> merge_parts(const json& entry, const std::string& where) {
  if (entry.is_string()) {
    const auto& s = entry.get_ref<const std::string&>();
    size_t space = s.find(' ');
    if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
      field_error(where, "merge \"" + s + "\" is not two tokens separated by one space");
    return {s.substr(0, space), s.substr(space + 1)};
  }
  if (entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string())
    return {entry[0].get<std::string>(), entry[1].get<std::string>()};
  field_error(where, "a merge must be \"a b\" or [\"a\", \"b\"]");
}

} // namespace

bpe_model::bpe_model(const json& spec, const std::string& where) {
  const json& vocab = require(spec, "vocab", where);
  if (!vocab.is_object())
    field_error(where, "\"vocab\" must be an object of token -> id");
  vocab_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    uint32_t id = token_id(it.value(), where + " vocab[\"" + it.key() + "\"]");
    // Ids index a table: refuse sparse ids that would make it huge (real vocabularies are dense).
    if (id >= 4 * vocab.size() + 1024)
      field_error(where, "vocabulary id " + std::to_string(id) + " is far beyond the vocabulary size " +
                             std::to_string(vocab.size()));
    if (find_invalid_utf8(it.key()) != it.key().size())
      field_error(where, "vocabulary token is not valid UTF-8");
    vocab_[it.key()] = id;
    if (id >= id_to_token_.size()) {
      id_to_token_.resize(id + 1);
      id_present_.resize(id + 1, 0);
    }
    id_to_token_[id] = it.key();
    id_present_[id] = 1;
  }

  std::string unk = string_or(spec, "unk_token", "", where);
  if (!unk.empty()) {
    auto it = vocab_.find(unk);
    if (it == vocab_.end())
      field_error(where, "unk_token \"" + unk + "\" is not in the vocabulary");
    unk_id_ = it->second;
  }
  fuse_unk_ = bool_or(spec, "fuse_unk", false, where);
  byte_fallback_ = bool_or(spec, "byte_fallback", false, where);
  ignore_merges_ = bool_or(spec, "ignore_merges", false, where);
  continuing_subword_prefix_ = string_or(spec, "continuing_subword_prefix", "", where);
  end_of_word_suffix_ = string_or(spec, "end_of_word_suffix", "", where);

  const json& merges = require(spec, "merges", where);
  if (!merges.is_array())
    field_error(where, "\"merges\" must be an array");
  merges_.reserve(merges.size());
  size_t prefix_len = continuing_subword_prefix_.size();
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    std::string at = where + " merges[" + std::to_string(rank) + "]";
    auto [left, right] = merge_parts(merges[rank], at);
    auto l = vocab_.find(left), r = vocab_.find(right);
    if (l == vocab_.end() || r == vocab_.end())
      field_error(at, "token \"" + (l == vocab_.end() ? left : right) + "\" is not in the vocabulary");
    // The merged token drops the right part's continuing-subword prefix.
    if (prefix_len > right.size())
      field_error(at, "right token is shorter than continuing_subword_prefix");
    std::string merged = left + right.substr(prefix_len);
    auto m = vocab_.find(merged);
    if (m == vocab_.end())
      field_error(at, "merged token \"" + merged + "\" is not in the vocabulary");
    merges_.insert_or_assign(l->second, r->second, {static_cast<uint32_t>(rank), m->second});
  }

  byte_ids_.assign(256, -1);
  if (byte_fallback_) {
    static constexpr char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      std::string name = "<0x";
      name += hex[b >> 4];
      name += hex[b & 15];
      name += '>';
      if (auto it = vocab_.find(name); it != vocab_.end())
        byte_ids_[b] = it->second;
    }
  }
  small_char_ids_.assign(0x800, -1);
  for (char32_t cp = 0; cp < 0x800; ++cp) {
    std::string s;
    append_utf8(s, cp);
    if (auto it = vocab_.find(s); it != vocab_.end())
      small_char_ids_[cp] = it->second;
  }
}

std::optional<uint32_t> bpe_model::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end())
    return std::nullopt;
  return it->second;
}

const std::string* bpe_model::id_to_token(uint32_t id) const {
  if (id >= id_to_token_.size() || !id_present_[id])
    return nullptr;
  return &id_to_token_[id];
}

std::optional<uint32_t> bpe_model::symbol_id(std::string_view text, bool first, bool last) const {
  bool decorated = (!first && !continuing_subword_prefix_.empty()) || (last && !end_of_word_suffix_.empty());
  if (!decorated) {
    auto lead = static_cast<unsigned char>(text[0]);
    if (lead < 0x80 || (text.size() == 2 && lead < 0xe0)) {
      size_t pos = 0;
      int64_t id = small_char_ids_[next_code_point(text, pos)];
      if (id < 0)
        return std::nullopt;
      return static_cast<uint32_t>(id);
    }
    return token_to_id(text);
  }
  std::string s;
  if (!first)
    s = continuing_subword_prefix_;
  s.append(text);
  if (last)
    s.append(end_of_word_suffix_);
  return token_to_id(s);
}

namespace {

struct symbol {
  uint32_t id;
  int32_t prev;
  int32_t next;
  bool removed;
};

struct queued_merge {
  uint32_t rank;
  uint32_t pos;
  uint32_t new_id;
  // std::priority_queue is a max-heap: the "largest" is the lowest rank, then the leftmost.
  bool operator<(const queued_merge& other) const {
    return rank != other.rank ? rank > other.rank : pos > other.pos;
  }
};

} // namespace

void bpe_model::merge_word(std::string_view word, std::vector<uint32_t>& ids) const {
  thread_local std::vector<symbol> symbols;
  thread_local std::vector<queued_merge> heap;
  symbols.clear();
  heap.clear();

  // Initial symbols: one per character, with byte fallback or (fused) unknown tokens for
  // characters outside the vocabulary.
  std::optional<uint32_t> pending_unk;
  auto add = [&](uint32_t id) {
    auto n = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, n - 1, n + 1, false});
  };
  for (size_t pos = 0; pos < word.size();) {
    size_t start = pos;
    pos += utf8_length(static_cast<unsigned char>(word[pos]));
    std::string_view ch = word.substr(start, pos - start);
    if (auto id = symbol_id(ch, start == 0, pos >= word.size())) {
      if (pending_unk) {
        add(*pending_unk);
        pending_unk.reset();
      }
      add(*id);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : ch)
        all = all && byte_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        for (char c : ch)
          add(static_cast<uint32_t>(byte_ids_[static_cast<unsigned char>(c)]));
        continue;
      }
    }
    if (unk_id_) {
      if (pending_unk && !fuse_unk_)
        add(*pending_unk);
      pending_unk = unk_id_;
    }
  }
  if (pending_unk)
    add(*pending_unk);
  if (symbols.empty())
    return;
  symbols.back().next = -1;

  for (size_t i = 0; i + 1 < symbols.size(); ++i)
    if (const auto* m = merges_.find(symbols[i].id, symbols[i + 1].id))
      heap.push_back({m->rank, static_cast<uint32_t>(i), m->new_id});
  std::make_heap(heap.begin(), heap.end());

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    queued_merge top = heap.back();
    heap.pop_back();
    symbol& left = symbols[top.pos];
    if (left.removed || left.next < 0)
      continue;
    symbol& right = symbols[static_cast<size_t>(left.next)];
    // Skip entries made stale by an earlier merge of either symbol.
    const auto* m = merges_.find(left.id, right.id);
    if (!m || m->new_id != top.new_id)
      continue;
    left.id = top.new_id;
    right.removed = true;
    left.next = right.next;
    if (right.next >= 0)
      symbols[static_cast<size_t>(right.next)].prev = static_cast<int32_t>(top.pos);
    if (left.prev >= 0) {
      const symbol& prev = symbols[static_cast<size_t>(left.prev)];
      if (const auto* pm = merges_.find(prev.id, left.id)) {
        heap.push_back({pm->rank, static_cast<uint32_t>(left.prev), pm->new_id});
        std::push_heap(heap.begin(), heap.end());
      }
    }
    if (left.next >= 0) {
      const symbol& next = symbols[static_cast<size_t>(left.next)];
      if (const auto* nm = merges_.find(left.id, next.id)) {
        heap.push_back({nm->rank, top.pos, nm->new_id});
        std::push_heap(heap.begin(), heap.end());
      }
    }
  }
  for (const auto& s : symbols)
    if (!s.removed)
      ids.push_back(s.id);
}

void bpe_model::tokenize(std::string_view word, std::vector<uint32_t>& ids) const {
  if (word.empty())
    return;
  if (ignore_merges_)
    if (auto it = vocab_.find(word); it != vocab_.end()) {
      ids.push_back(it->second);
      return;
    }
  bool cacheable = word.size() <= cache_max_word_bytes;
  if (cacheable) {
    std::shared_lock lock(cache_mutex_);
    if (auto it = cache_.find(word); it != cache_.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  size_t first = ids.size();
  merge_word(word, ids);
  if (cacheable) {
    std::unique_lock lock(cache_mutex_);
    if (cache_.size() < cache_capacity)
      cache_.try_emplace(std::string(word), ids.begin() + static_cast<std::ptrdiff_t>(first), ids.end());
  }
}

} // namespace actorserve::tokenization
