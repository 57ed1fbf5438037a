#include "model/byte_tokenizer.hpp"

#include "model/tokenizer/byte_level.hpp"

#include <nlohmann/json.hpp>

namespace actorserve {

namespace {

nlohmann::ordered_json byte_level(bool add_prefix_space) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"trim_offsets", true}, {"use_regex", true}};
}

} // namespace

std::string byte_tokenizer_json() {
  nlohmann::ordered_json added = nlohmann::ordered_json::array();
  int64_t id = 256;
  for (auto special : byte_tokenizer_specials)
    added.push_back({{"id", id++},
                     {"content", special},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (int b = 0; b < 256; ++b) {
    std::string piece; // byte b spelled with the table our tokenizer reads it back with
    tokenization::append_byte_level(piece, std::string(1, static_cast<char>(b)));
    vocab[piece] = b;
  }
  nlohmann::ordered_json t;
  t["version"] = "1.0";
  t["truncation"] = nullptr;
  t["padding"] = nullptr;
  t["added_tokens"] = added;
  t["normalizer"] = nullptr;
  // With no merges every byte is its own token, so the GPT-2 split regex changes nothing but
  // keeps the file in the most common ByteLevel form.
  t["pre_tokenizer"] = byte_level(false);
  t["post_processor"] = nullptr;
  t["decoder"] = byte_level(true);
  t["model"] = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", false},
                {"vocab", vocab},
                {"merges", nlohmann::ordered_json::array()}};
  return t.dump(2) + "\n";
}

std::string byte_tokenizer_config_json(int64_t model_max_length) {
  nlohmann::ordered_json decoder = nlohmann::ordered_json::object();
  int64_t id = 256;
  for (auto special : byte_tokenizer_specials)
    decoder[std::to_string(id++)] = {{"content", special}, {"lstrip", false}, {"normalized", false},
                                     {"rstrip", false},    {"single_word", false}, {"special", true}};
  nlohmann::ordered_json c;
  c["added_tokens_decoder"] = decoder;
  c["add_bos_token"] = false;
  c["add_eos_token"] = false;
  c["bos_token"] = byte_tokenizer_specials[0];
  c["eos_token"] = byte_tokenizer_specials[1];
  c["pad_token"] = byte_tokenizer_specials[1];
  c["clean_up_tokenization_spaces"] = false;
  c["model_max_length"] = model_max_length;
  c["tokenizer_class"] = "PreTrainedTokenizerFast";
  c["chat_template"] =
      "{{ bos_token }}{% for message in messages %}"
      "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
      "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}";
  return c.dump(2) + "\n";
}

} // namespace actorserve
