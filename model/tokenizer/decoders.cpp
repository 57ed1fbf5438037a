#include "model/tokenizer/decoders.hpp"

#include "model/tokenizer/byte_level.hpp"
#include "model/tokenizer/regex.hpp"
#include "model/tokenizer/unicode.hpp"

namespace actorserve::tokenization {

int byte_fallback_value(std::string_view token) {
  if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>')
    return -1;
  auto digit = [](char c) {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  };
  // Rust's u8::from_str_radix also accepts a leading '+'.
  if (token[3] == '+') {
    int d = digit(token[4]);
    return d;
  }
  int hi = digit(token[3]), lo = digit(token[4]);
  if (hi < 0 || lo < 0)
    return -1;
  return hi * 16 + lo;
}

namespace {

class byte_level_decoder final : public decoder {
public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& t : tokens)
      if (!decode_byte_level(t, bytes))
        bytes.append(t); // a token outside the byte alphabet (e.g. a special token) as it is
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class byte_fallback_decoder final : public decoder {
public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    auto flush = [&] {
      if (pending.empty())
        return;
      if (find_invalid_utf8(pending) == pending.size()) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending.size(); ++i) // one U+FFFD per byte, as tokenizers does
          out.emplace_back("\xef\xbf\xbd");
      }
      pending.clear();
    };
    for (auto& t : tokens) {
      int b = byte_fallback_value(t);
      if (b >= 0) {
        pending.push_back(static_cast<char>(b));
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    tokens = std::move(out);
  }
  bool groups_byte_tokens() const override { return true; }
};

class metaspace_decoder final : public decoder {
public:
  metaspace_decoder(std::string replacement, bool drop_first) : replacement_(std::move(replacement)), drop_first_(drop_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      for (size_t pos = 0; pos < t.size();) {
        if (t.compare(pos, replacement_.size(), replacement_) == 0) {
          if (!(i == 0 && drop_first_))
            out.push_back(' ');
          pos += replacement_.size();
        } else {
          out.push_back(t[pos++]);
        }
      }
      tokens[i] = std::move(out);
    }
  }

private:
  std::string replacement_;
  bool drop_first_;
};

class replace_decoder final : public decoder {
public:
  replace_decoder(const std::string& pattern, std::string content) : regex_(pattern), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens)
      regex_.replace_all(t, content_);
  }

private:
  regex regex_;
  std::string content_;
};

class strip_decoder final : public decoder {
public:
  strip_decoder(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::pair<size_t, char32_t>> chars; // (byte offset, code point)
    for (auto& t : tokens) {
      chars.clear();
      for (size_t pos = 0; pos < t.size();) {
        size_t at = pos;
        chars.emplace_back(at, next_code_point(t, pos));
      }
      size_t start_cut = 0;
      for (size_t i = 0; i < start_ && i < chars.size(); ++i) {
        if (chars[i].second != content_)
          break;
        start_cut = i + 1;
      }
      size_t stop_cut = chars.size();
      // tokenizers indexes past the front here (and panics) when the token is shorter than
      // `stop` and all `content`; we stop at the front instead.
      for (size_t i = 0; i < stop_ && i < chars.size(); ++i) {
        size_t index = chars.size() - i - 1;
        if (chars[index].second != content_)
          break;
        stop_cut = index;
      }
      size_t begin_byte = start_cut < chars.size() ? chars[start_cut].first : t.size();
      size_t end_byte = stop_cut < chars.size() ? chars[stop_cut].first : t.size();
      t = begin_byte < end_byte ? t.substr(begin_byte, end_byte - begin_byte) : std::string();
    }
  }
  bool edits_end() const override { return stop_ > 0; }

private:
  char32_t content_;
  size_t start_, stop_;
};

class fuse_decoder final : public decoder {
public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens)
      all.append(t);
    tokens.assign(1, std::move(all));
  }
};

// The suffix decoder of BPE models trained with end_of_word_suffix: "</w>" becomes a space,
// except at the very end.
class bpe_suffix_decoder final : public decoder {
public:
  explicit bpe_suffix_decoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      for (size_t pos = 0; pos < t.size();) {
        if (!suffix_.empty() && t.compare(pos, suffix_.size(), suffix_) == 0) {
          if (i + 1 != tokens.size())
            out.push_back(' ');
          pos += suffix_.size();
        } else {
          out.push_back(t[pos++]);
        }
      }
      tokens[i] = std::move(out);
    }
  }
  bool edits_end() const override { return true; }

private:
  std::string suffix_;
};

class sequence_decoder final : public decoder {
public:
  explicit sequence_decoder(std::vector<std::unique_ptr<decoder>> steps) : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_)
      step->decode_chain(tokens);
  }
  bool groups_byte_tokens() const override {
    for (const auto& step : steps_)
      if (step->groups_byte_tokens())
        return true;
    return false;
  }
  bool edits_end() const override {
    for (const auto& step : steps_)
      if (step->edits_end())
        return true;
    return false;
  }

private:
  std::vector<std::unique_ptr<decoder>> steps_;
};

char32_t single_code_point(const std::string& s, const std::string& where, const char* key) {
  size_t pos = 0;
  if (s.empty() || find_invalid_utf8(s) != s.size())
    field_error(where, std::string("\"") + key + "\" must be a single character");
  char32_t cp = next_code_point(s, pos);
  if (pos != s.size())
    field_error(where, std::string("\"") + key + "\" must be a single character");
  return cp;
}

} // namespace

std::unique_ptr<decoder> make_decoder(const json& spec, const std::string& where) {
  if (spec.is_null())
    return nullptr;
  std::string type = type_of(spec, where);
  std::string here = where + " (" + type + ")";
  if (type == "ByteLevel")
    return std::make_unique<byte_level_decoder>();
  if (type == "ByteFallback")
    return std::make_unique<byte_fallback_decoder>();
  if (type == "Fuse")
    return std::make_unique<fuse_decoder>();
  if (type == "Metaspace") {
    std::string replacement = string_field(spec, "replacement", here);
    single_code_point(replacement, here, "replacement");
    std::string scheme = string_or(spec, "prepend_scheme", "", here);
    bool drop_first;
    if (scheme.empty())
      drop_first = bool_or(spec, "add_prefix_space", true, here);
    else if (scheme == "always" || scheme == "first" || scheme == "never")
      drop_first = scheme != "never";
    else
      field_error(here, "unknown prepend_scheme \"" + scheme + "\"");
    return std::make_unique<metaspace_decoder>(replacement, drop_first);
  }
  if (type == "Replace")
    return std::make_unique<replace_decoder>(pattern_source(require(spec, "pattern", here), here),
                                             string_field(spec, "content", here));
  if (type == "Strip")
    return std::make_unique<strip_decoder>(single_code_point(string_field(spec, "content", here), here, "content"),
                                           uint_or(spec, "start", 0, here), uint_or(spec, "stop", 0, here));
  if (type == "BPEDecoder")
    return std::make_unique<bpe_suffix_decoder>(string_or(spec, "suffix", "</w>", here));
  if (type == "Sequence") {
    const json& list = require(spec, "decoders", here);
    if (!list.is_array())
      field_error(here, "\"decoders\" must be an array");
    std::vector<std::unique_ptr<decoder>> steps;
    for (size_t i = 0; i < list.size(); ++i)
      if (auto step = make_decoder(list[i], here + "[" + std::to_string(i) + "]"))
        steps.push_back(std::move(step));
    return std::make_unique<sequence_decoder>(std::move(steps));
  }
  field_error(here, "unsupported decoder type (supported: ByteLevel, ByteFallback, Metaspace, Replace, "
                    "Strip, Fuse, BPEDecoder, Sequence)");
}

} // namespace actorserve::tokenization
