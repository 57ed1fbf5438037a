#include "model/tokenizer/tokenizer.hpp"

#include "model/error.hpp"
#include "model/tokenizer/tokenizer_state.hpp"
#include "model/tokenizer/unicode.hpp"

#include <fstream>
#include <sstream>

namespace actorserve {

using tokenization::json;
using tokenization::tokenizer_state;

std::string tokenization::tokenizer_state::decode_tokens(std::vector<std::string>& tokens) const {
  if (dec)
    dec->decode_chain(tokens);
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!dec && i > 0)
      out.push_back(' ');
    out.append(tokens[i]);
  }
  return out;
}

tokenizer tokenizer::from_json(std::string_view json_text) {
  json root;
  try {
    root = json::parse(json_text.begin(), json_text.end());
  } catch (const json::exception& e) {
    throw model_error(std::string("tokenizer.json is not valid JSON: ") + e.what());
  }
  if (!root.is_object())
    throw model_error("tokenizer.json: the top level must be an object");
  auto field = [&](const char* key) -> const json& {
    static const json null_value;
    auto it = root.find(key);
    return it == root.end() ? null_value : *it;
  };
  // JSON type errors inside nlohmann (e.g. get<> on a wrong type) also become model_error.
  try {
    auto state = std::make_shared<tokenizer_state>();
    const json& model = field("model");
    if (!model.is_object())
      throw model_error("tokenizer.json: missing \"model\" object");
    std::string type = tokenization::string_or(model, "type", model.contains("merges") ? "BPE" : "", "model");
    if (type != "BPE")
      throw model_error("tokenizer.json: unsupported model type \"" + type +
                        "\" (only BPE is implemented; WordPiece, WordLevel and Unigram are not)");
    state->model = std::make_unique<tokenization::bpe_model>(model, "model");
    state->norm = tokenization::make_normalizer(field("normalizer"), "normalizer");
    state->pre = tokenization::make_pre_tokenizer(field("pre_tokenizer"), "pre_tokenizer");
    state->post = tokenization::make_post_processor(field("post_processor"), "post_processor");
    state->dec = tokenization::make_decoder(field("decoder"), "decoder");
    state->added = tokenization::added_vocabulary(field("added_tokens"), *state->model, state->norm.get());
    size_t limit = state->model->id_limit();
    for (const auto& t : state->added.tokens())
      limit = std::max<size_t>(limit, size_t{t.id} + 1);
    state->vocab_size = limit;
    state->special_by_id.assign(limit, 0);
    // tokenizers skips a token when the string it decodes to is the content of a special token
    // (so a special token with normalized=true whose normalizer changes it is not skipped).
    for (const auto& t : state->added.tokens())
      if (state->added.is_special_content(t.text))
        state->special_by_id[t.id] = 1;
    return tokenizer(std::move(state));
  } catch (const json::exception& e) {
    throw model_error(std::string("tokenizer.json: ") + e.what());
  }
}

tokenizer tokenizer::from_file(const std::filesystem::path& tokenizer_json) {
  std::ifstream in(tokenizer_json, std::ios::binary);
  if (!in)
    throw model_error("cannot open " + tokenizer_json.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  try {
    return from_json(buffer.str());
  } catch (const model_error& e) {
    throw model_error(tokenizer_json.string() + ": " + e.what());
  }
}

tokenizer tokenizer::from_dir(const std::filesystem::path& dir) { return from_file(dir / "tokenizer.json"); }

std::vector<uint32_t> tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const tokenizer_state& s = *state_;
  if (size_t bad = tokenization::find_invalid_utf8(text); bad != text.size())
    throw model_error("text to encode is not valid UTF-8 (byte " + std::to_string(bad) + ")");
  std::vector<uint32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<tokenization::text_segment> raw, normalized;
  std::vector<tokenization::piece> pieces;

  auto encode_text = [&](std::string_view piece_text, bool at_start) {
    pieces.clear();
    pieces.push_back({std::string(piece_text), at_start});
    if (s.pre)
      s.pre->pre_tokenize(pieces);
    for (const auto& p : pieces)
      s.model->tokenize(p.text, ids);
  };

  if (s.added.has_kind(false))
    s.added.split(text, false, raw);
  else
    raw.assign(1, {0, text.size(), std::nullopt});
  for (const auto& seg : raw) {
    if (seg.token_id) {
      ids.push_back(*seg.token_id);
      continue;
    }
    if (seg.begin >= seg.end)
      continue; // tokenizers drops empty pieces before normalizing them
    std::string part(text.substr(seg.begin, seg.end - seg.begin));
    if (s.norm)
      s.norm->normalize(part);
    bool at_start = seg.begin == 0;
    if (!s.added.has_kind(true)) {
      if (!part.empty())
        encode_text(part, at_start);
      continue;
    }
    s.added.split(part, true, normalized);
    for (const auto& sub : normalized) {
      if (sub.token_id)
        ids.push_back(*sub.token_id);
      else if (sub.begin < sub.end)
        encode_text(std::string_view(part).substr(sub.begin, sub.end - sub.begin), at_start && sub.begin == 0);
    }
  }
  if (add_special_tokens && s.post)
    s.post->process(ids);
  return ids;
}

std::string tokenizer::decode(std::span<const uint32_t> ids, bool skip_special_tokens) const {
  const tokenizer_state& s = *state_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (uint32_t id : ids) {
    if (skip_special_tokens && s.is_special(id))
      continue;
    if (const std::string* t = s.token_string(id))
      tokens.push_back(*t);
  }
  return s.decode_tokens(tokens);
}

std::string tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<uint32_t> unsigned_ids;
  unsigned_ids.reserve(ids.size());
  for (int32_t id : ids)
    if (id >= 0)
      unsigned_ids.push_back(static_cast<uint32_t>(id));
  return decode(std::span<const uint32_t>(unsigned_ids), skip_special_tokens);
}

std::optional<uint32_t> tokenizer::token_to_id(std::string_view token) const {
  if (auto id = state_->added.id_of(token))
    return id;
  return state_->model->token_to_id(token);
}

std::optional<std::string> tokenizer::id_to_token(uint32_t id) const {
  if (const std::string* t = state_->token_string(id))
    return *t;
  return std::nullopt;
}

size_t tokenizer::vocab_size() const { return state_->vocab_size; }

bool tokenizer::is_special(uint32_t id) const { return state_->is_special(id); }

std::vector<uint32_t> tokenizer::special_ids() const {
  std::vector<uint32_t> out;
  for (const auto& t : state_->added.tokens())
    if (state_->is_special(t.id))
      out.push_back(t.id);
  return out;
}

} // namespace actorserve
