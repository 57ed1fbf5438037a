#pragma once
// Shared pieces of the GPU benchmark driver (actorserve_gpu_bench): argument parsing and
// timing helpers. The driver talks to the backend only through the step contract, like the
// engine does.

#include <chrono>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace actorserve::gpu::bench {

/// --key value pairs after the subcommand.
class args {
public:
  args(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) {
      std::string k = argv[i];
      if (k.rfind("--", 0) != 0)
        throw std::invalid_argument("unexpected argument " + k);
      k = k.substr(2);
      if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0)
        values_[k] = argv[++i];
      else
        values_[k] = "1";
    }
  }
  std::string str(const std::string& k, const std::string& def = "") const {
    auto it = values_.find(k);
    return it == values_.end() ? def : it->second;
  }
  long num(const std::string& k, long def) const {
    auto it = values_.find(k);
    return it == values_.end() ? def : std::stol(it->second);
  }
  double real(const std::string& k, double def) const {
    auto it = values_.find(k);
    return it == values_.end() ? def : std::stod(it->second);
  }
  std::vector<long> list(const std::string& k, const std::vector<long>& def) const {
    auto it = values_.find(k);
    if (it == values_.end())
      return def;
    std::vector<long> out;
    size_t start = 0;
    const std::string& s = it->second;
    while (start <= s.size()) {
      const size_t comma = s.find(',', start);
      out.push_back(std::stol(s.substr(start, comma - start)));
      if (comma == std::string::npos)
        break;
      start = comma + 1;
    }
    return out;
  }

private:
  std::map<std::string, std::string> values_;
};

inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

} // namespace actorserve::gpu::bench
