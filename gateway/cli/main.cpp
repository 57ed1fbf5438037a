// The `actorserve` executable: one CLI11 app, one subcommand per cli/cmd_*.cpp file.
#include "gateway/cli/command.hpp"
#include "gateway/version.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <iostream>

namespace actorserve::cli {

std::vector<command_entry>& command_registry() {
  static std::vector<command_entry> registry;
  return registry;
}

} // namespace actorserve::cli

int main(int argc, char** argv) {
  using namespace actorserve::cli;
  CLI::App app{"actorserve: an LLM inference server built on the C++ Actor Framework"};
  app.set_version_flag("--version", std::string{actorserve::version()});
  app.require_subcommand(1);
  auto& registry = command_registry();
  std::sort(registry.begin(), registry.end(),
            [](const command_entry& a, const command_entry& b) { return a.name < b.name; });
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands;
  for (auto& entry : registry) {
    auto* sub = app.add_subcommand(entry.name, entry.description);
    commands.emplace_back(sub, entry.setup(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto& [sub, run] : commands) {
    if (!sub->parsed())
      continue;
    try {
      return run();
    } catch (const std::exception& e) {
      std::cerr << "actorserve " << sub->get_name() << ": error: " << e.what() << "\n";
      return 1;
    }
  }
  return 1;
}
