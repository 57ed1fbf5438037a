#pragma once
// Subcommand registry of the `actorserve` executable. Each cli/cmd_*.cpp file registers one
// subcommand with a static `command_registrar`; main.cpp builds the CLI11 app from the list.

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace actorserve::cli {

/// Adds the subcommand's options to `app` and returns the function that runs it once parsed.
/// The returned function gives the process exit status.
using command_setup = std::function<std::function<int()>(CLI::App& app)>;

struct command_entry {
  std::string name;
  std::string description;
  command_setup setup;
};

std::vector<command_entry>& command_registry();

struct command_registrar {
  command_registrar(std::string name, std::string description, command_setup setup) {
    command_registry().push_back({std::move(name), std::move(description), std::move(setup)});
  }
};

} // namespace actorserve::cli
