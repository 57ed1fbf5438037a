#pragma once
// Multi-process cluster tests: `actorserve serve` nodes on loopback (CPU backend, demo model),
// streaming clients over HTTP, and signals (kill -9, SIGSTOP, SIGTERM) sent to the nodes.

#include "tests/testing.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <map>
#include <netinet/in.h>
#include <spawn.h>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace actorserve::testing::cluster {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

inline int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// One `actorserve serve` node.
struct node {
  int http_port = 0;
  int cluster_port = 0;
  std::vector<std::string> extra;
  std::filesystem::path log;
  pid_t pid = -1;
  int restarts = 0;

  void start(const std::filesystem::path& dir, const std::string& peers) {
    log = dir / ("node-" + std::to_string(cluster_port) + "-" + std::to_string(restarts++) + ".log");
    std::vector<std::string> args = {executable().string(), "serve", "--model", (source_dir() / "models/demo").string(),
                                     "--host", "127.0.0.1", "--port", std::to_string(http_port), "--cluster-port",
                                     std::to_string(cluster_port), "--cluster-peers", peers, "--cpu-threads", "1",
                                     "--max-num-seqs", "64", "--device", "cpu", "--shutdown-timeout", "20", "--disable-log-requests"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0)
      pid = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  bool ready(std::chrono::milliseconds timeout = 60s) const {
    const auto end = steady::now() + timeout;
    while (steady::now() < end) {
      httplib::Client c("127.0.0.1", http_port);
      c.set_connection_timeout(1, 0);
      if (auto r = c.Get("/ready"); r && r->status == 200)
        return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
  void signal(int sig) const {
    if (pid > 0)
      ::kill(pid, sig);
  }
  int wait_exit() {
    int status = 0;
    if (pid > 0)
      ::waitpid(pid, &status, 0);
    pid = -1;
    return status;
  }
  std::string metrics() const {
    httplib::Client c("127.0.0.1", http_port);
    c.set_read_timeout(5, 0);
    auto r = c.Get("/metrics");
    return r ? r->body : std::string();
  }
  /// The value of a metric line starting with `name{` (first one), or -1.
  double metric(const std::string& name) const {
    const std::string m = metrics();
    const auto at = m.find("\n" + name + "{");
    if (at == std::string::npos)
      return -1;
    const auto space = m.find("} ", at);
    return std::stod(m.substr(space + 2, m.find('\n', space) - space - 2));
  }
  std::string log_text() const { return read_file(log); }
  ~node() {
    if (pid > 0) {
      ::kill(pid, SIGCONT);
      ::kill(pid, SIGKILL);
      wait_exit();
    }
  }
};

/// N nodes that list each other as peers.
struct cluster {
  temp_dir dir;
  std::vector<std::unique_ptr<node>> nodes;
  std::string peers;

  explicit cluster(int n, const std::vector<std::string>& extra = {}) {
    for (int i = 0; i < n; ++i) {
      auto x = std::make_unique<node>();
      x->http_port = free_port();
      x->cluster_port = free_port();
      x->extra = extra;
      peers += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(x->cluster_port);
      nodes.push_back(std::move(x));
    }
    for (auto& x : nodes)
      x->start(dir.path(), peers);
  }
  bool ready() {
    for (auto& x : nodes)
      if (!x->ready())
        return false;
    return true;
  }
  /// Waits until every node reports `n - 1` live peers.
  bool joined(std::chrono::milliseconds timeout = 20s) {
    const auto end = steady::now() + timeout;
    while (steady::now() < end) {
      bool all = true;
      for (auto& x : nodes)
        all = all && x->metric("actorserve:cluster_peers_alive") == double(nodes.size() - 1);
      if (all)
        return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
};

struct stream_result {
  bool ok = false;        // HTTP 200 and a [DONE]
  int status = 0;
  std::string text;
  std::string finish_reason;
  std::string error;      // an error event's message
  int chunks = 0;
  std::map<int, std::string> choice_text; // per choice index (n > 1)
  std::map<int, std::string> choice_finish;
  steady::time_point first_chunk{};
  double max_gap_s = 0;   // longest pause between two chunks
};

/// What a stream sends besides the defaults (greedy, ignore_eos), and its API key.
struct stream_options {
  nlohmann::json extra = nlohmann::json::object(); // merged into the body (seed, temperature, n ...)
  std::string api_key;
};

/// A streaming completion (greedy unless `opt` says otherwise); `on_chunk` is called with the
/// number of chunks so far.
inline stream_result stream_completion(int port, const std::string& prompt, int max_tokens,
                                       const std::function<void(int)>& on_chunk = nullptr,
                                       const stream_options& opt = {}) {
  stream_result out;
  httplib::Client c("127.0.0.1", port);
  // httplib listens with a backlog of 5: a burst of connections waits for SYN retransmits.
  c.set_connection_timeout(10, 0);
  c.set_read_timeout(60, 0);
  nlohmann::json body = {{"model", "demo"},      {"prompt", prompt}, {"max_tokens", max_tokens},
                         {"temperature", 0},     {"stream", true},   {"ignore_eos", true}};
  body.update(opt.extra);
  std::string buffer;
  bool done = false;
  steady::time_point last{};
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  if (!opt.api_key.empty())
    req.set_header("Authorization", "Bearer " + opt.api_key);
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    buffer.append(data, len);
    size_t at;
    while ((at = buffer.find("\n\n")) != std::string::npos) {
      std::string event = buffer.substr(0, at);
      buffer.erase(0, at + 2);
      if (event.rfind("data: ", 0) != 0)
        continue;
      const std::string payload = event.substr(6);
      if (payload == "[DONE]") {
        done = true;
        continue;
      }
      const auto now = steady::now();
      if (out.chunks == 0)
        out.first_chunk = now;
      else
        out.max_gap_s = std::max(out.max_gap_s, std::chrono::duration<double>(now - last).count());
      last = now;
      ++out.chunks;
      auto j = nlohmann::json::parse(payload, nullptr, false);
      if (j.is_discarded())
        continue;
      if (j.contains("error")) {
        out.error = j["error"].value("message", "error");
        continue;
      }
      for (const auto& ch : j.value("choices", nlohmann::json::array())) {
        out.text += ch.value("text", "");
        out.choice_text[ch.value("index", 0)] += ch.value("text", "");
        if (ch.contains("finish_reason") && ch["finish_reason"].is_string()) {
          out.finish_reason = ch["finish_reason"];
          out.choice_finish[ch.value("index", 0)] = ch["finish_reason"];
        }
      }
      if (on_chunk)
        on_chunk(out.chunks);
    }
    return true;
  };
  auto r = c.send(req);
  if (r)
    out.status = r->status;
  out.ok = r && r->status == 200 && done && out.error.empty();
  return out;
}

/// An admin call (gateway/admin_routes.hpp): status and parsed body (null when none).
inline std::pair<int, nlohmann::json> admin_call(int port, const std::string& method, const std::string& path,
                                                 const nlohmann::json& body, const std::string& api_key) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(10, 0);
  httplib::Headers h;
  if (!api_key.empty())
    h.emplace("Authorization", "Bearer " + api_key);
  auto r = method == "GET" ? c.Get(path.c_str(), h) : c.Post(path.c_str(), h, body.dump(), "application/json");
  if (!r)
    return {0, nullptr};
  return {r->status, nlohmann::json::parse(r->body, nullptr, false)};
}

} // namespace actorserve::testing::cluster
