#include "model/tokenizer/normalizers.hpp"

#include "model/tokenizer/byte_level.hpp"
#include "model/tokenizer/regex.hpp"
#include "model/tokenizer/unicode.hpp"

#include <vector>

namespace actorserve::tokenization {

std::string pattern_source(const json& pattern, const std::string& where) {
  if (!pattern.is_object() || pattern.size() != 1)
    field_error(where, "pattern must be {\"String\": ...} or {\"Regex\": ...}");
  if (pattern.contains("String"))
    return quote_pattern(string_field(pattern, "String", where));
  if (pattern.contains("Regex"))
    return translate_oniguruma_pattern(string_field(pattern, "Regex", where));
  field_error(where, "pattern must be {\"String\": ...} or {\"Regex\": ...}");
}

namespace {

class unicode_normalizer final : public normalizer {
public:
  explicit unicode_normalizer(normal_form form) : form_(form) {}
  void normalize(std::string& text) const override { text = normalize_unicode(text, form_); }

private:
  normal_form form_;
};

class lowercase_normalizer final : public normalizer {
public:
  void normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    for (size_t pos = 0; pos < text.size();)
      append_lowercase(out, next_code_point(text, pos));
    text = std::move(out);
  }
};

class strip_normalizer final : public normalizer {
public:
  strip_normalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override {
    size_t begin = 0, end = text.size();
    if (left_) {
      while (begin < end) {
        size_t next = begin;
        if (!is_whitespace(next_code_point(text, next)))
          break;
        begin = next;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(text[start]) & 0xc0) == 0x80)
          --start;
        size_t pos = start;
        if (!is_whitespace(next_code_point(text, pos)))
          break;
        end = start;
      }
    }
    text = text.substr(begin, end - begin);
  }

private:
  bool left_, right_;
};

class strip_accents_normalizer final : public normalizer {
public:
  void normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    for (size_t pos = 0; pos < text.size();) {
      size_t start = pos;
      if (!is_nonspacing_mark(next_code_point(text, pos)))
        out.append(text, start, pos - start);
    }
    text = std::move(out);
  }
};

class replace_normalizer final : public normalizer {
public:
  replace_normalizer(const std::string& pattern, std::string content)
      : regex_(pattern), content_(std::move(content)) {}
  void normalize(std::string& text) const override { regex_.replace_all(text, content_); }

private:
  regex regex_;
  std::string content_;
};

class affix_normalizer final : public normalizer {
public:
  affix_normalizer(std::string affix, bool prepend) : affix_(std::move(affix)), prepend_(prepend) {}
  void normalize(std::string& text) const override {
    if (text.empty()) // tokenizers leaves empty pieces alone
      return;
    text = prepend_ ? affix_ + text : text + affix_;
  }

private:
  std::string affix_;
  bool prepend_;
};

class byte_level_normalizer final : public normalizer {
public:
  void normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size() * 2);
    append_byte_level(out, text);
    text = std::move(out);
  }
};

class sequence_normalizer final : public normalizer {
public:
  explicit sequence_normalizer(std::vector<std::unique_ptr<normalizer>> steps) : steps_(std::move(steps)) {}
  void normalize(std::string& text) const override {
    for (const auto& step : steps_)
      step->normalize(text);
  }

private:
  std::vector<std::unique_ptr<normalizer>> steps_;
};

} // namespace

std::unique_ptr<normalizer> make_normalizer(const json& spec, const std::string& where) {
  if (spec.is_null())
    return nullptr;
  std::string type = type_of(spec, where);
  std::string here = where + " (" + type + ")";
  if (type == "NFC")
    return std::make_unique<unicode_normalizer>(normal_form::nfc);
  if (type == "NFD")
    return std::make_unique<unicode_normalizer>(normal_form::nfd);
  if (type == "NFKC")
    return std::make_unique<unicode_normalizer>(normal_form::nfkc);
  if (type == "NFKD")
    return std::make_unique<unicode_normalizer>(normal_form::nfkd);
  if (type == "Lowercase")
    return std::make_unique<lowercase_normalizer>();
  if (type == "Strip")
    return std::make_unique<strip_normalizer>(bool_or(spec, "strip_left", true, here),
                                              bool_or(spec, "strip_right", true, here));
  if (type == "StripAccents")
    return std::make_unique<strip_accents_normalizer>();
  if (type == "Replace")
    return std::make_unique<replace_normalizer>(pattern_source(require(spec, "pattern", here), here),
                                                string_field(spec, "content", here));
  if (type == "Prepend")
    return std::make_unique<affix_normalizer>(string_field(spec, "prepend", here), true);
  if (type == "Append")
    return std::make_unique<affix_normalizer>(string_field(spec, "append", here), false);
  if (type == "ByteLevel")
    return std::make_unique<byte_level_normalizer>();
  if (type == "Sequence") {
    const json& list = require(spec, "normalizers", here);
    if (!list.is_array())
      field_error(here, "\"normalizers\" must be an array");
    std::vector<std::unique_ptr<normalizer>> steps;
    for (size_t i = 0; i < list.size(); ++i)
      if (auto step = make_normalizer(list[i], here + "[" + std::to_string(i) + "]"))
        steps.push_back(std::move(step));
    return std::make_unique<sequence_normalizer>(std::move(steps));
  }
  field_error(here, "unsupported normalizer type (supported: NFC, NFD, NFKC, NFKD, Lowercase, Strip, "
                    "StripAccents, Replace, Prepend, Append, ByteLevel, Sequence)");
}

} // namespace actorserve::tokenization
