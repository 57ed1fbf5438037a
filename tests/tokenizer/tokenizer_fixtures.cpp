#include "tests/tokenizer/tokenizer_fixtures.hpp"

#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace actorserve::testing {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path real_tokenizer_dir(const std::string& name) {
  if (name == "demo") // the demo model's tokenizer lives in the repository
    return source_dir() / "models" / "demo";
  fs::path dir = cache_dir() / "tokenizers" / name;
  if (!fs::exists(dir / "tokenizer.json"))
    throw std::runtime_error("missing " + (dir / "tokenizer.json").string() +
                             ": run scripts/fetch-test-assets.sh (scripts/test.sh does)");
  return dir;
}

std::vector<std::string> read_lines(const fs::path& path) {
  std::string text;
  if (path.extension() == ".gz") {
    gzFile file = gzopen(path.c_str(), "rb");
    if (!file)
      throw std::runtime_error("cannot open " + path.string());
    char buffer[1 << 16];
    int n;
    while ((n = gzread(file, buffer, sizeof buffer)) > 0)
      text.append(buffer, static_cast<size_t>(n));
    gzclose(file);
    if (n < 0)
      throw std::runtime_error("cannot decompress " + path.string());
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in)
      throw std::runtime_error("cannot open " + path.string());
    std::ostringstream buffer;
    buffer << in.rdbuf();
    text = buffer.str();
  }
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos)
      end = text.size();
    if (end > start)
      lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

const std::vector<std::string>& tokenizer_corpus() {
  static const std::vector<std::string> corpus = [] {
    std::vector<std::string> out;
    for (const auto& line : read_lines(tokenizer_fixture_dir() / "corpus.jsonl"))
      out.push_back(json::parse(line).get<std::string>());
    return out;
  }();
  return corpus;
}

namespace {

std::vector<uint32_t> id_list(const json& j) { return j.get<std::vector<uint32_t>>(); }

} // namespace

tokenizer_fixture load_tokenizer_fixture(const std::string& name) {
  auto lines = read_lines(tokenizer_fixture_dir() / (name + ".jsonl.gz"));
  if (lines.empty())
    throw std::runtime_error("empty fixture " + name);
  tokenizer_fixture f;
  json header = json::parse(lines[0]);
  f.name = header.at("name").get<std::string>();
  f.base = header.at("base").get<std::string>();
  f.variant = header.at("variant");
  for (size_t i = 1; i < lines.size(); ++i) {
    json rec = json::parse(lines[i]);
    if (rec.contains("i")) {
      corpus_case c;
      c.index = rec["i"].get<size_t>();
      c.ids = id_list(rec["ids"]);
      c.checks_special = c.index % 5 == 0;
      if (rec.contains("ids_sp"))
        c.ids_with_special = id_list(rec["ids_sp"]);
      if (rec.contains("dec"))
        c.decoded = rec["dec"].get<std::string>();
      if (rec.contains("dec_skip"))
        c.decoded_skip = rec["dec_skip"].get<std::string>();
      f.corpus.push_back(std::move(c));
    } else {
      f.random.push_back({id_list(rec["ids"]), rec["dec"].get<std::string>(), rec["dec_skip"].get<std::string>()});
    }
  }
  return f;
}

tokenizer load_fixture_tokenizer(const tokenizer_fixture& fixture) {
  fs::path dir = real_tokenizer_dir(fixture.base);
  if (fixture.variant.is_null())
    return tokenizer::from_dir(dir);
  std::ifstream in(dir / "tokenizer.json", std::ios::binary);
  json j = json::parse(in);
  const json& v = fixture.variant;
  if (v.contains("set"))
    for (auto it = v["set"].begin(); it != v["set"].end(); ++it)
      j[it.key()] = it.value();
  if (v.contains("model_set"))
    for (auto it = v["model_set"].begin(); it != v["model_set"].end(); ++it)
      j["model"][it.key()] = it.value();
  if (v.contains("added_append"))
    for (const auto& t : v["added_append"])
      j["added_tokens"].push_back(t);
  return tokenizer::from_json(j.dump());
}

std::vector<std::string> tokenizer_fixture_names() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(tokenizer_fixture_dir())) {
    std::string file = entry.path().filename().string();
    const std::string suffix = ".jsonl.gz";
    if (file.size() > suffix.size() && file.compare(file.size() - suffix.size(), suffix.size(), suffix) == 0)
      names.push_back(file.substr(0, file.size() - suffix.size()));
  }
  std::sort(names.begin(), names.end());
  return names;
}

} // namespace actorserve::testing
