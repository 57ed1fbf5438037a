// `actorserve tokenize`: a model's tokenizer on the command line, like llama.cpp's
// llama-tokenize. Reads stdin, writes stdout:
//   (default)       UTF-8 text               -> JSON array of ids
//   --decode        JSON array of ids        -> the text
//   --jsonl         one JSON string per line -> one JSON array per line
//   --jsonl --decode one JSON array per line -> one JSON string per line
#include "gateway/cli/command.hpp"

#include "model/error.hpp"
#include "model/tokenizer/tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

namespace actorserve::cli {
namespace {

struct tokenize_args {
  std::string tokenizer_dir;
  bool decode = false;
  bool jsonl = false;
  bool add_special_tokens = false;
  bool skip_special_tokens = false;
};

std::vector<uint32_t> parse_ids(const std::string& text, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw model_error(where + ": not JSON: " + e.what());
  }
  if (!j.is_array())
    throw model_error(where + ": expected a JSON array of token ids");
  std::vector<uint32_t> ids;
  for (const auto& v : j) {
    if (!v.is_number_unsigned() || v.get<uint64_t>() > 0xffffffffull)
      throw model_error(where + ": token ids must be integers in [0, 2^32)");
    ids.push_back(static_cast<uint32_t>(v.get<uint64_t>()));
  }
  return ids;
}

std::string ids_json(const std::vector<uint32_t>& ids) { return nlohmann::json(ids).dump(); }

std::string text_json(const std::string& text) { return nlohmann::json(text).dump(); }

int run_tokenize(const tokenize_args& a) {
  tokenizer tok = tokenizer::from_dir(a.tokenizer_dir);
  std::ios::sync_with_stdio(false);
  if (!a.jsonl) {
    std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (a.decode)
      std::cout << tok.decode(parse_ids(input, "stdin"), a.skip_special_tokens);
    else
      std::cout << ids_json(tok.encode(input, a.add_special_tokens)) << "\n";
    return 0;
  }
  std::string line;
  for (size_t number = 1; std::getline(std::cin, line); ++number) {
    std::string where = "stdin line " + std::to_string(number);
    if (a.decode) {
      std::cout << text_json(tok.decode(parse_ids(line, where), a.skip_special_tokens)) << "\n";
      continue;
    }
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw model_error(where + ": not JSON: " + e.what());
    }
    if (!j.is_string())
      throw model_error(where + ": expected a JSON string");
    try {
      std::cout << ids_json(tok.encode(j.get_ref<const std::string&>(), a.add_special_tokens)) << "\n";
    } catch (const model_error& e) {
      throw model_error(where + ": " + e.what());
    }
  }
  return 0;
}

const command_registrar registrar{
    "tokenize", "encode text to token ids (or --decode ids to text) with a model's tokenizer.json",
    [](CLI::App& app) -> std::function<int()> {
      auto a = std::make_shared<tokenize_args>();
      app.add_option("--tokenizer", a->tokenizer_dir, "folder with tokenizer.json (a model folder)")->required();
      app.add_flag("--decode", a->decode, "read a JSON array of ids, print the text");
      app.add_flag("--jsonl", a->jsonl, "one JSON string (or id array with --decode) per input line");
      app.add_flag("--add-special-tokens", a->add_special_tokens,
                   "apply the tokenizer's post-processor (e.g. add BOS) when encoding");
      app.add_flag("--skip-special-tokens", a->skip_special_tokens, "leave special tokens out when decoding");
      return [a] { return run_tokenize(*a); };
    }};

} // namespace
} // namespace actorserve::cli
