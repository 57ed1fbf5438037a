// actorserve_fake_hub: the fake Hub as a process, for tests that run `actorserve download`
// as a separate program (the local StatefulSet run).
//   actorserve_fake_hub --repo ORG/NAME=DIR [--repo ...] [--token T] [--port-file PATH]
// Prints "endpoint http://127.0.0.1:PORT" on stdout and serves until SIGTERM/SIGINT. With
// --log PATH, it appends one line per request as it arrives ("hub GET /api/...").

#include "tests/download/fake_hub/fake_hub.hpp"

#include <csignal>
#include <fstream>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr); // the server threads inherit the mask

  try {
    actorserve::testing::fake_hub hub;
    std::string port_file;
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc)
          throw std::runtime_error(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--repo") {
        auto spec = value();
        auto eq = spec.find('=');
        if (eq == std::string::npos)
          throw std::runtime_error("--repo wants ORG/NAME=DIR");
        hub.set_repo(spec.substr(0, eq), actorserve::testing::repo_from_folder(spec.substr(eq + 1)));
      } else if (arg == "--token") {
        hub.require_token(value());
      } else if (arg == "--port-file") {
        port_file = value();
      } else if (arg == "--log") {
        hub.log_requests_to(value());
      } else {
        throw std::runtime_error("unknown argument " + arg);
      }
    }
    if (!port_file.empty())
      std::ofstream(port_file) << hub.endpoint() << "\n";
    std::cout << "endpoint " << hub.endpoint() << std::endl;
    int received = 0;
    sigwait(&signals, &received);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "actorserve_fake_hub: " << e.what() << "\n";
    return 2;
  }
}
