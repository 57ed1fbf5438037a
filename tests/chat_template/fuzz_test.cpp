// Fuzz-style robustness: real and feature templates mutated at random (truncated, characters
// deleted, jinja tokens inserted, pieces duplicated), token soups and random bytes, rendered
// with random contexts under tight limits. Every case must end in output or a template_error,
// never another exception, a crash or a hang. Deterministic (fixed seed) so failures
// reproduce; ACTORSERVE_FUZZ_SEED and ACTORSERVE_FUZZ_CASES explore further.
#include "tests/chat_template/reference_support.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
#include <random>

using namespace actorserve::testing::chat;

namespace {

const char* const jinja_tokens[] = {
    "{{", "}}", "{%", "%}", "{#", "#}", "{%-", "-%}", "{{-", "-}}", "{% if x %}", "{% endif %}", "{% for m in messages %}",
    "{% endfor %}", "{% else %}", "{% elif y %}", "{% set a = ", "{% endset %}", "{% macro f(a, b=1) %}", "{% endmacro %}",
    "{% break %}", "{% continue %}", "{% raw %}", "{% endraw %}", "{% call f(1) %}", "{% endcall %}", "{% filter upper %}",
    "{% endfilter %}", "(", ")", "[", "]", "{", "}", "|", "|tojson", "|length", "|join(', ')", "|selectattr('role')",
    "|map(attribute='content')", "|default('d')", "|trim", "|items", "|list", ".", ".content", "['role']", "[0]",
    "[::-1]", "[1:]", " is defined ", " is not none ", " is string ", " in ", " not ", " and ", " or ", " if ", " else ",
    "~", "+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", ">=", ",", ":", "=", "'", "\"", "\\", "loop.index",
    "loop.last", "loop.cycle('a', 'b')", "loop(messages)", "namespace(x=1)", "ns.x", "raise_exception('boom')",
    "range(10)", "range(100000)", "messages", "tools", "message", "none", "true", "1e308", "-1", "0", "99999999999999999999",
    "'é😀'", "\n", " ", "caller()", "varargs", "kwargs", "strftime_now('%Y')", "dict(a=1)", "cycler(1, 2)", "joiner()",
};

std::string random_text(std::mt19937_64& rng, std::size_t max_length) {
  static const char* const pieces[] = {"a", "Z", " ", "\n", "\t", "'", "\"", "\\", "{", "}", "%", "#", "é", "中", "😀",
                                       "\u200d", "<|im_end|>", "</think>", "<think>", "\x01", "0", "-"};
  std::string out;
  std::size_t n = rng() % (max_length + 1);
  for (std::size_t i = 0; i < n; ++i)
    out += pieces[rng() % std::size(pieces)];
  return out;
}

ojson random_value(std::mt19937_64& rng, int depth) {
  switch (rng() % (depth > 3 ? 6 : 9)) {
  case 0: return nullptr;
  case 1: return rng() % 2 == 0;
  case 2: return static_cast<std::int64_t>(rng() % 2001) - 1000;
  case 3: return static_cast<double>(static_cast<std::int64_t>(rng() % 20001) - 10000) / 7.0;
  case 4:
  case 5: return random_text(rng, 12);
  case 6: {
    ojson list = ojson::array();
    for (std::size_t i = rng() % 4; i > 0; --i)
      list.push_back(random_value(rng, depth + 1));
    return list;
  }
  default: {
    static const char* const keys[] = {"role", "content", "name", "type", "function", "arguments", "id", "x", "items"};
    ojson object = ojson::object();
    for (std::size_t i = rng() % 4; i > 0; --i)
      object[keys[rng() % std::size(keys)]] = random_value(rng, depth + 1);
    return object;
  }
  }
}

ojson random_context(std::mt19937_64& rng) {
  static const char* const roles[] = {"system", "user", "assistant", "tool", "ipython", "other"};
  ojson messages = ojson::array();
  for (std::size_t i = rng() % 6; i > 0; --i) {
    ojson m = {{"role", roles[rng() % std::size(roles)]}};
    m["content"] = rng() % 4 == 0 ? random_value(rng, 1) : ojson(random_text(rng, 30));
    if (rng() % 5 == 0)
      m["tool_calls"] = ojson::array({{{"id", random_text(rng, 9)},
                                       {"type", "function"},
                                       {"function", {{"name", "f"}, {"arguments", random_value(rng, 1)}}}}});
    if (rng() % 8 == 0)
      m["reasoning_content"] = random_text(rng, 10);
    messages.push_back(std::move(m));
  }
  ojson context = {{"messages", messages}, {"add_generation_prompt", rng() % 2 == 0}};
  context["tools"] = rng() % 3 == 0 ? ojson(nullptr) : random_value(rng, 1);
  context["bos_token"] = "<s>";
  context["eos_token"] = "</s>";
  if (rng() % 2 == 0)
    context["x"] = random_value(rng, 0);
  if (rng() % 3 == 0)
    context["enable_thinking"] = rng() % 2 == 0;
  return context;
}

std::string mutate(std::mt19937_64& rng, std::string s) {
  int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    std::size_t at = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 6) {
    case 0: s.resize(at); break; // truncate (may split a UTF-8 sequence: a syntax error)
    case 1: s.erase(at, 1 + rng() % 8); break;
    case 2: s.insert(at, jinja_tokens[rng() % std::size(jinja_tokens)]); break;
    case 3: {
      std::size_t len = s.empty() ? 0 : rng() % std::min<std::size_t>(s.size() - std::min(at, s.size()) + 1, 200);
      std::string piece = s.substr(std::min(at, s.size()), len);
      for (std::size_t k = 1 + rng() % 3; k > 0; --k)
        s.insert(at, piece);
      break;
    }
    case 4:
      if (!s.empty())
        s[rng() % s.size()] = static_cast<char>(rng() % 256);
      break;
    default: s.insert(at, random_text(rng, 4)); break;
    }
  }
  return s;
}

std::string token_soup(std::mt19937_64& rng) {
  std::string s;
  for (std::size_t n = 1 + rng() % 25; n > 0; --n)
    s += jinja_tokens[rng() % std::size(jinja_tokens)];
  return s;
}

/// CPU time of this thread: per-case timing that other processes on a busy machine do not skew.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

} // namespace

TEST_CASE("random and mutated templates give output or a template error, never a crash or a hang",
          "[chat_template][fuzz]") {
  std::vector<std::string> seeds;
  for (const auto& c : parse_features(fixtures() / "features.txt"))
    seeds.push_back(c.source);
  for (const char* name : {"qwen3", "llama3", "deepseek_v3", "mistral_nemo"}) {
    auto dir = actorserve::testing::cache_dir() / "tokenizers" / name;
    INFO("run scripts/fetch-test-assets.sh to fetch " << dir);
    REQUIRE(std::filesystem::exists(dir / "tokenizer_config.json"));
    seeds.push_back(actorserve::chat_template::load_chat_template_config(dir).select("", false));
  }
  seeds.push_back(actorserve::chat_template::load_chat_template_config(actorserve::testing::source_dir() / "models" / "demo")
                      .select("", false));

  ct::render_options options;
  options.limits.max_operations = 300'000;
  options.limits.max_loop_iterations = 50'000;
  options.limits.max_output_bytes = 1 << 20;
  options.now = [] { return std::chrono::system_clock::time_point(std::chrono::seconds(reference_now)); };

  std::mt19937_64 rng(env_number("ACTORSERVE_FUZZ_SEED", 20240229));
  const std::uint64_t cases = env_number("ACTORSERVE_FUZZ_CASES", 20000);
  std::uint64_t parsed = 0, rendered = 0;
  double slowest = 0;
  std::string slowest_case;
  auto start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < cases; ++i) {
    std::string source;
    switch (i % 10) {
    case 0: source = token_soup(rng); break;
    case 1: source = random_text(rng, 40); break;
    default: source = mutate(rng, seeds[rng() % seeds.size()]);
    }
    ojson context = random_context(rng);
    double case_start = thread_cpu_seconds();
    try {
      auto tmpl = ct::compiled_template::parse(source, options.limits);
      ++parsed;
      tmpl.render(context, options);
      ++rendered;
    } catch (const ct::template_error&) {
      // the expected way to fail
    } catch (const std::exception& e) {
      FAIL("case " << i << ": " << typeid(e).name() << ": " << e.what() << "\ntemplate:\n" << source
                   << "\ncontext: " << context.dump());
    }
    double seconds = thread_cpu_seconds() - case_start;
    if (seconds > slowest) {
      slowest = seconds;
      slowest_case = "template:\n" + source + "\ncontext: " + context.dump();
    }
  }
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO(cases << " cases: " << parsed << " parsed, " << rendered << " rendered; slowest " << slowest << " CPU s, total "
             << total << " s");
  // The mutations must exercise the interpreter, not only the parser.
  CHECK(parsed > cases / 5);
  CHECK(rendered > cases / 20);
  INFO("slowest case " << slowest_case);
  CHECK(slowest < 0.5);
}
