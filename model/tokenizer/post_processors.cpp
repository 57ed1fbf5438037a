#include "model/tokenizer/post_processors.hpp"

#include <sstream>

namespace actorserve::tokenization {

namespace {

// One sequence framed by fixed ids: [before..., sequence..., after...].
class framing_processor final : public post_processor {
public:
  framing_processor(std::vector<uint32_t> before, std::vector<uint32_t> after)
      : before_(std::move(before)), after_(std::move(after)) {}
  void process(std::vector<uint32_t>& ids) const override {
    ids.insert(ids.begin(), before_.begin(), before_.end());
    ids.insert(ids.end(), after_.begin(), after_.end());
  }

private:
  std::vector<uint32_t> before_, after_;
};

class identity_processor final : public post_processor {
public:
  void process(std::vector<uint32_t>&) const override {}
};

class sequence_processor final : public post_processor {
public:
  explicit sequence_processor(std::vector<std::unique_ptr<post_processor>> steps) : steps_(std::move(steps)) {}
  void process(std::vector<uint32_t>& ids) const override {
    for (const auto& step : steps_)
      step->process(ids);
  }

private:
  std::vector<std::unique_ptr<post_processor>> steps_;
};

std::vector<uint32_t> special_ids(const json& special_tokens, const std::string& name, const std::string& where) {
  if (!special_tokens.is_object() || !special_tokens.contains(name))
    field_error(where, "template names special token \"" + name + "\" missing from \"special_tokens\"");
  const json& ids = require(special_tokens[name], "ids", where + " special_tokens[\"" + name + "\"]");
  if (!ids.is_array())
    field_error(where, "special_tokens[\"" + name + "\"].ids must be an array");
  std::vector<uint32_t> out;
  for (const auto& id : ids)
    out.push_back(token_id(id, where));
  return out;
}

std::unique_ptr<post_processor> make_template(const json& spec, const std::string& where) {
  const json& single = require(spec, "single", where);
  const json& special_tokens = spec.contains("special_tokens") ? spec["special_tokens"] : json::object();
  std::vector<uint32_t> before, after;
  bool seen_sequence = false;
  auto add_special = [&](const std::string& name) {
    auto ids = special_ids(special_tokens, name, where);
    auto& target = seen_sequence ? after : before;
    target.insert(target.end(), ids.begin(), ids.end());
  };
  if (single.is_string()) {
    // The short form "[CLS] $A [SEP]" (with optional ":type_id" suffixes).
    std::istringstream words(single.get<std::string>());
    std::string word;
    while (words >> word) {
      std::string name = word.substr(0, word.find(':'));
      if (name == "$" || name == "$A" || name == "$0") {
        if (seen_sequence)
          field_error(where, "the single template names the sequence twice");
        seen_sequence = true;
      } else if (!name.empty() && name[0] == '$') {
        field_error(where, "the single template may only name sequence A");
      } else {
        add_special(name);
      }
    }
  } else if (single.is_array()) {
    for (const auto& item : single) {
      if (item.is_object() && item.contains("SpecialToken")) {
        add_special(string_field(item["SpecialToken"], "id", where));
      } else if (item.is_object() && item.contains("Sequence")) {
        if (string_field(item["Sequence"], "id", where) != "A" || seen_sequence)
          field_error(where, "the single template must name sequence A once");
        seen_sequence = true;
      } else {
        field_error(where, "template items must be {\"SpecialToken\": ...} or {\"Sequence\": ...}");
      }
    }
  } else {
    field_error(where, "\"single\" must be a list or a string");
  }
  if (!seen_sequence)
    field_error(where, "the single template does not contain the sequence");
  return std::make_unique<framing_processor>(std::move(before), std::move(after));
}

uint32_t pair_id(const json& spec, const char* key, const std::string& where) {
  const json& pair = require(spec, key, where);
  if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string())
    field_error(where, std::string("\"") + key + "\" must be [token, id]");
  return token_id(pair[1], where);
}

} // namespace

std::unique_ptr<post_processor> make_post_processor(const json& spec, const std::string& where) {
  if (spec.is_null())
    return nullptr;
  std::string type = type_of(spec, where);
  std::string here = where + " (" + type + ")";
  if (type == "TemplateProcessing")
    return make_template(spec, here);
  if (type == "ByteLevel")
    return std::make_unique<identity_processor>();
  if (type == "RobertaProcessing" || type == "BertProcessing")
    return std::make_unique<framing_processor>(std::vector<uint32_t>{pair_id(spec, "cls", here)},
                                               std::vector<uint32_t>{pair_id(spec, "sep", here)});
  if (type == "Sequence") {
    const json& list = require(spec, "processors", here);
    if (!list.is_array())
      field_error(here, "\"processors\" must be an array");
    std::vector<std::unique_ptr<post_processor>> steps;
    for (size_t i = 0; i < list.size(); ++i)
      if (auto step = make_post_processor(list[i], here + "[" + std::to_string(i) + "]"))
        steps.push_back(std::move(step));
    return std::make_unique<sequence_processor>(std::move(steps));
  }
  field_error(here, "unsupported post-processor type (supported: TemplateProcessing, RobertaProcessing, "
                    "BertProcessing, ByteLevel, Sequence)");
}

} // namespace actorserve::tokenization
