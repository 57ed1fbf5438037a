#include "tests/download/fake_hub/fake_hub.hpp"

#include "gateway/download_hash.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace actorserve::testing {

namespace {

using json = nlohmann::json;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int start(httplib::Server& server, std::thread& thread) {
  int port = server.bind_to_any_port("127.0.0.1");
  if (port <= 0)
    throw std::runtime_error("fake hub: cannot bind a loopback port");
  thread = std::thread([&server] { server.listen_after_bind(); });
  while (!server.is_running())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return port;
}

} // namespace

fake_repo make_repo(std::map<std::string, fake_file> files) {
  fake_repo repo;
  repo.files = std::move(files);
  std::string summary;
  for (const auto& [name, file] : repo.files)
    summary += name + ":" + download::sha256_hex(file.content) + "\n";
  repo.commit = download::git_blob_sha1(summary); // 40 hex, changes with any file
  return repo;
}

fake_repo repo_from_folder(const std::filesystem::path& dir) {
  std::map<std::string, fake_file> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file())
      continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream content;
    content << in.rdbuf();
    auto name = entry.path().filename().string();
    fake_file f{content.str(), ends_with(name, ".safetensors") || entry.file_size() > (10u << 20)};
    files.emplace(name, std::move(f));
  }
  if (files.empty())
    throw std::runtime_error("fake hub: no files in " + dir.string());
  return make_repo(std::move(files));
}

fake_hub::fake_hub() {
  install_hub_routes();
  install_cdn_routes();
  hub_port_ = start(hub_, hub_thread_);
  cdn_port_ = start(cdn_, cdn_thread_);
}

fake_hub::~fake_hub() {
  hub_.stop();
  cdn_.stop();
  hub_thread_.join();
  cdn_thread_.join();
}

std::string fake_hub::endpoint() const { return "http://127.0.0.1:" + std::to_string(hub_port_); }

void fake_hub::set_repo(const std::string& name, fake_repo repo) {
  std::lock_guard guard(mutex_);
  for (const auto& [file, content] : repo.files) {
    if (!content.lfs)
      continue;
    auto sha = download::sha256_hex(content.content);
    blob_names_[sha] = file;
    blobs_[sha] = content.content;
  }
  repos_[name] = std::move(repo);
}

void fake_hub::drop_after(const std::string& file, int64_t at_byte, int times) {
  std::lock_guard guard(mutex_);
  drops_[file] = {at_byte, times};
}

void fake_hub::corrupt(const std::string& file, bool on) {
  std::lock_guard guard(mutex_);
  if (on)
    corrupt_.insert(file);
  else
    corrupt_.erase(file);
}

void fake_hub::require_token(std::string token) {
  std::lock_guard guard(mutex_);
  token_ = std::move(token);
}

std::vector<request_record> fake_hub::requests() const {
  std::lock_guard guard(mutex_);
  return requests_;
}

void fake_hub::clear_requests() {
  std::lock_guard guard(mutex_);
  requests_.clear();
}

void fake_hub::log_requests_to(std::filesystem::path path) {
  std::lock_guard guard(mutex_);
  log_path_ = std::move(path);
}

void fake_hub::record(const std::string& server, const httplib::Request& req) {
  std::lock_guard guard(mutex_);
  requests_.push_back({server, req.method, req.path, req.get_header_value("Range"), req.has_header("Authorization")});
  if (!log_path_.empty()) {
    std::ofstream log(log_path_, std::ios::app);
    const auto& r = requests_.back();
    log << r.server << " " << r.method << " " << r.path << (r.range.empty() ? "" : " " + r.range) << std::endl;
  }
}

bool fake_hub::authorized(const httplib::Request& req) const {
  std::lock_guard guard(mutex_);
  return token_.empty() || req.get_header_value("Authorization") == "Bearer " + token_;
}

void fake_hub::install_hub_routes() {
  // /api/models/ORG/NAME/revision/REV
  hub_.Get(R"(/api/models/([^/]+/[^/]+)/revision/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    record("hub", req);
    if (!authorized(req)) {
      res.status = 401;
      res.set_content(R"({"error":"Invalid credentials in Authorization header"})", "application/json");
      return;
    }
    std::lock_guard guard(mutex_);
    auto repo = repos_.find(req.matches[1]);
    std::string revision = req.matches[2];
    if (repo == repos_.end() || (revision != "main" && revision != repo->second.commit)) {
      res.status = 404;
      res.set_content(R"({"error":"Repository not found"})", "application/json");
      return;
    }
    bool blobs = req.get_param_value("blobs") == "true" && !omit_blobs_;
    json info = {{"id", repo->first}, {"sha", repo->second.commit}, {"siblings", json::array()}};
    for (const auto& [name, file] : repo->second.files) {
      json sibling = {{"rfilename", name}};
      if (blobs) {
        sibling["size"] = file.content.size();
        sibling["blobId"] = download::git_blob_sha1(file.content);
        if (file.lfs)
          sibling["lfs"] = {{"sha256", download::sha256_hex(file.content)}, {"size", file.content.size()},
                            {"pointerSize", 134}};
      }
      info["siblings"].push_back(sibling);
    }
    res.set_content(info.dump(), "application/json");
  });

  // /ORG/NAME/resolve/REV/FILE; httplib routes HEAD to the GET handlers.
  auto resolve = [this](const httplib::Request& req, httplib::Response& res) {
    record("hub", req);
    if (!authorized(req)) {
      res.status = 401;
      return;
    }
    std::unique_lock guard(mutex_);
    auto repo = repos_.find(req.matches[1]);
    std::string revision = req.matches[2];
    if (repo == repos_.end() || (revision != "main" && revision != repo->second.commit)) {
      res.status = 404;
      return;
    }
    auto file = repo->second.files.find(req.matches[3]);
    if (file == repo->second.files.end()) {
      res.status = 404;
      res.set_header("X-Error-Code", "EntryNotFound");
      return;
    }
    res.set_header("X-Repo-Commit", repo->second.commit);
    if (file->second.lfs) {
      auto sha = download::sha256_hex(file->second.content);
      res.set_header("X-Linked-Etag", "\"" + sha + "\"");
      res.set_header("X-Linked-Size", std::to_string(file->second.content.size()));
      res.set_header("ETag", "\"" + download::git_blob_sha1(file->second.content) + "\"");
      res.set_redirect("http://127.0.0.1:" + std::to_string(cdn_port_) + "/blobs/" + sha + "?signature=abc", 302);
      return;
    }
    res.set_header("ETag", "\"" + download::git_blob_sha1(file->second.content) + "\"");
    auto name = file->first;
    auto content = file->second.content;
    guard.unlock();
    serve_content(req, res, name, content);
  };
  hub_.Get(R"(/([^/]+/[^/]+)/resolve/([^/]+)/(.+))", resolve);
}

void fake_hub::install_cdn_routes() {
  cdn_.Get(R"(/blobs/([0-9a-f]{64}))", [this](const httplib::Request& req, httplib::Response& res) {
    record("cdn", req);
    std::unique_lock guard(mutex_);
    auto blob = blobs_.find(req.matches[1]);
    if (blob == blobs_.end()) {
      res.status = 404;
      return;
    }
    auto name = blob_names_[blob->first];
    auto content = blob->second;
    guard.unlock();
    serve_content(req, res, name, content);
  });
}

void fake_hub::serve_content(const httplib::Request& req, httplib::Response& res, const std::string& name,
                             const std::string& original) {
  std::string content = original;
  int64_t drop_at = -1;
  {
    std::lock_guard guard(mutex_);
    if (corrupt_.count(name) && !content.empty())
      content[content.size() / 2] ^= 0x5a;
    if (req.method == "GET") {
      auto drop = drops_.find(name);
      if (drop != drops_.end() && drop->second.second > 0) {
        drop_at = drop->second.first;
        --drop->second.second;
      }
    }
  }
  if (req.method == "HEAD") {
    res.set_header("Content-Length", std::to_string(content.size()));
    return;
  }
  if (ignore_range_ && !req.ranges.empty()) {
    // A server that does not do ranges answers 200 with everything. httplib slices any body
    // of known length for a Range request, so send this one chunked.
    res.status = 200;
    auto body = std::make_shared<std::string>(std::move(content));
    res.set_chunked_content_provider("application/octet-stream", [this, body](size_t offset, httplib::DataSink& sink) {
      if (offset < body->size()) {
        size_t n = std::min<size_t>(64 * 1024, body->size() - offset);
        if (!sink.write(body->data() + offset, n))
          return false;
        content_bytes_sent_ += static_cast<int64_t>(n);
      } else {
        sink.done();
      }
      return true;
    });
    return;
  }
  auto body = std::make_shared<std::string>(std::move(content));
  // httplib answers a Range request with 206 and the slice [offset, offset + length).
  res.set_content_provider(body->size(), "application/octet-stream",
                           [this, body, drop_at](size_t offset, size_t length, httplib::DataSink& sink) {
                             constexpr size_t chunk = 64 * 1024;
                             size_t end = offset + length;
                             for (size_t at = offset; at < end;) {
                               size_t n = std::min(chunk, end - at);
                               if (drop_at >= 0 && static_cast<int64_t>(at + n) > drop_at) {
                                 n = static_cast<size_t>(std::max<int64_t>(drop_at - static_cast<int64_t>(at), 0));
                                 if (n > 0 && sink.write(body->data() + at, n))
                                   content_bytes_sent_ += static_cast<int64_t>(n);
                                 return false; // close the connection midway
                               }
                               if (int ms = chunk_delay_ms_; ms > 0)
                                 std::this_thread::sleep_for(std::chrono::milliseconds(ms));
                               if (!sink.write(body->data() + at, n))
                                 return false;
                               content_bytes_sent_ += static_cast<int64_t>(n);
                               at += n;
                             }
                             return true;
                           });
}

} // namespace actorserve::testing
