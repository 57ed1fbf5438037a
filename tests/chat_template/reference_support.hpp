#pragma once
// Shared by the chat-template tests: renders the same cases as
// scripts/chat_template_reference.py (Python's jinja2 as transformers configures it) and
// compares outcomes. An outcome is {"output": TEXT} or {"error": MESSAGE, ...}.

#include "model/chat_template/chat_template.hpp"
#include "tests/testing.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace actorserve::testing::chat {

namespace ct = actorserve::chat_template;
using ojson = nlohmann::ordered_json;

/// The fixed clock of reference renderings (strftime_now), seconds since the epoch.
inline constexpr long long reference_now = 1700000000;

inline std::filesystem::path fixtures() { return source_dir() / "tests" / "fixtures" / "chat_template"; }

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline ojson read_json(const std::filesystem::path& p) { return ojson::parse(read_file(p)); }

/// One conversation of conversations.json by name (null if there is none).
inline ojson conversation_named(const std::string& name) {
  for (const auto& c : read_json(fixtures() / "conversations.json"))
    if (c["name"] == name)
      return c;
  return nullptr;
}

/// strftime_now uses local time, in Python as here: the reference tests pin the zone to UTC
/// (the committed expectations were made in UTC; the spawned Python inherits it).
inline void use_utc() {
  ::setenv("TZ", "UTC", 1);
  ::tzset();
}

inline ct::render_options reference_options() {
  ct::render_options options;
  options.now = [] { return std::chrono::system_clock::time_point(std::chrono::seconds(reference_now)); };
  return options;
}

struct feature_case {
  std::string name;
  ojson context = ojson::object();
  std::string source;
};

/// The feature-file format of scripts/chat_template_reference.py: "### NAME" starts a case,
/// an optional "context: {JSON}" line follows, the rest up to the next case is the template.
inline std::vector<feature_case> parse_features(const std::filesystem::path& path) {
  std::vector<feature_case> cases;
  std::vector<std::string> lines;
  std::string text = read_file(path), line;
  std::istringstream in(text);
  while (std::getline(in, line))
    lines.push_back(line);
  if (!text.empty() && text.back() == '\n')
    lines.push_back("");
  std::vector<std::vector<std::string>> bodies;
  std::vector<bool> context_seen;
  for (const auto& l : lines) {
    if (l.rfind("### ", 0) == 0) {
      feature_case c;
      c.name = l.substr(4);
      while (!c.name.empty() && (c.name.back() == ' ' || c.name.back() == '\t'))
        c.name.pop_back();
      cases.push_back(std::move(c));
      bodies.emplace_back();
      context_seen.push_back(false);
    } else if (cases.empty()) {
      continue;
    } else if (bodies.back().empty() && !context_seen.back() && l.rfind("context: ", 0) == 0) {
      cases.back().context = ojson::parse(l.substr(9));
      context_seen.back() = true;
    } else {
      bodies.back().push_back(l);
    }
  }
  for (std::size_t i = 0; i < cases.size(); ++i) {
    auto& body = bodies[i];
    while (!body.empty() && body.back().empty())
      body.pop_back();
    for (std::size_t k = 0; k < body.size(); ++k)
      cases[i].source += (k ? "\n" : "") + body[k];
  }
  return cases;
}

inline const char* kind_name(ct::template_error_kind kind) {
  switch (kind) {
  case ct::template_error_kind::syntax: return "syntax";
  case ct::template_error_kind::undefined: return "undefined";
  case ct::template_error_kind::type: return "type";
  case ct::template_error_kind::security: return "security";
  case ct::template_error_kind::raised: return "raised";
  case ct::template_error_kind::limit: return "limit";
  }
  return "?";
}

/// Runs `render`; template errors become {"error", "kind"}, and any other exception is
/// reported as kind "crash" (the tests treat that as a bug).
inline ojson outcome(const std::function<std::string()>& render) {
  try {
    return ojson{{"output", render()}};
  } catch (const ct::template_error& e) {
    return ojson{{"error", e.message()}, {"kind", kind_name(e.kind())}};
  } catch (const std::exception& e) {
    return ojson{{"error", e.what()}, {"kind", "crash"}};
  }
}

/// actorserve's counterpart of the script's `features` mode.
inline ojson render_features(const std::vector<feature_case>& cases, const ojson& default_context) {
  ojson out = ojson::object();
  for (const auto& c : cases) {
    ojson context = default_context;
    for (const auto& [k, v] : c.context.items())
      context[k] = v;
    out[c.name] = outcome([&] { return ct::compiled_template::parse(c.source).render(context, reference_options()); });
  }
  return out;
}

/// actorserve's counterpart of the script's `cases` mode for one tokenizer folder; `only`
/// restricts the conversations as the script's --only does.
inline ojson render_cases(const std::filesystem::path& folder, const ojson& conversations,
                          const std::vector<std::string>& only = {}) {
  ct::chat_template_config config;
  try {
    config = ct::load_chat_template_config(folder);
  } catch (const model_error& e) {
    return ojson{{"error", e.what()}, {"kind", "load"}};
  }
  ojson results = ojson::array();
  for (const auto& conversation : conversations) {
    if (!only.empty() && std::find(only.begin(), only.end(), conversation["name"].get<std::string>()) == only.end())
      continue;
    ct::chat_request request;
    request.messages = conversation["messages"];
    request.tools = conversation.value("tools", ojson(nullptr));
    if (conversation.contains("extra"))
      request.extra_context = conversation["extra"];
    bool has_tools = request.tools.is_array() && !request.tools.empty();
    const std::string& source = config.select("", has_tools);
    for (bool agp : {false, true}) {
      request.add_generation_prompt = agp;
      ojson r = outcome([&] {
        return ct::render_chat(ct::compiled_template::parse(source), request, config.special_tokens, reference_options());
      });
      r["conversation"] = conversation["name"];
      r["add_generation_prompt"] = agp;
      results.push_back(std::move(r));
    }
  }
  return results;
}

/// Why an actual outcome differs from the reference one; empty when they agree. Errors agree
/// when both sides fail; raise_exception errors must also carry the same message.
inline std::string mismatch(const ojson& expected, const ojson& actual) {
  if (actual.value("kind", "") == "crash")
    return "non-template exception: " + actual["error"].get<std::string>();
  if (expected.contains("output")) {
    if (!actual.contains("output"))
      return "reference rendered, actorserve failed: " + actual["error"].get<std::string>();
    if (expected["output"] != actual["output"])
      return "different output:\n--- reference\n" + expected["output"].get<std::string>() + "\n--- actorserve\n" +
             actual["output"].get<std::string>() + "\n---";
    return "";
  }
  if (!actual.contains("error"))
    return "reference failed (" + expected.value("error_type", "") + ": " + expected.value("error", "") +
           "), actorserve rendered:\n" + actual["output"].get<std::string>();
  if (expected.value("error_type", "") == "TemplateError") {
    if (actual.value("kind", "") != "raised" || actual["error"] != expected["error"])
      return "reference raised '" + expected["error"].get<std::string>() + "', actorserve: " +
             actual["error"].get<std::string>();
  }
  return "";
}

/// Runs scripts/chat_template_reference.py with `arguments`; returns its JSON output.
/// Throws (so the calling test fails, never skips) when Python or jinja2 is missing.
inline ojson run_reference(const std::string& arguments) {
  temp_dir dir;
  auto out = dir.path() / "reference.json";
  auto err = dir.path() / "stderr.txt";
  std::string command = "python3 '" + (source_dir() / "scripts" / "chat_template_reference.py").string() + "' " +
                        arguments + " --now " + std::to_string(reference_now) + " --out '" + out.string() + "' 2>'" +
                        err.string() + "'";
  int rc = std::system(command.c_str());
  if (rc != 0)
    throw std::runtime_error("the Python reference failed (is python3-jinja2 installed? scripts/install-deps.sh "
                             "installs it): " + command + "\n" + read_file(err));
  return read_json(out);
}

inline std::string quoted(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

} // namespace actorserve::testing::chat
