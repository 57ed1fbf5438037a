#include "gateway/download.hpp"

#include "gateway/download_hash.hpp"
#include "gateway/download_http.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

namespace actorserve::download {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

fs::path state_dir(const fs::path& dir) { return dir / ".actorserve"; }
fs::path partial_dir(const fs::path& dir) { return state_dir(dir) / "partial"; }
fs::path marker_path(const fs::path& dir) { return state_dir(dir) / "complete.json"; }

std::string errno_text() { return std::strerror(errno); }

void fsync_path(const fs::path& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0)
    throw download_error("cannot open " + path.string() + " to sync it: " + errno_text());
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0)
    throw download_error("fsync " + path.string() + ": " + errno_text());
}

std::string human_bytes(int64_t bytes) {
  std::ostringstream out;
  out.precision(bytes >= (int64_t{1} << 30) ? 2 : 1);
  if (bytes >= (int64_t{1} << 30))
    out << std::fixed << static_cast<double>(bytes) / double(int64_t{1} << 30) << " GiB";
  else
    out << std::fixed << static_cast<double>(bytes) / double(1 << 20) << " MiB";
  return out.str();
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

void check_repo_name(const std::string& repo) {
  auto ok_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'; };
  auto slash = repo.find('/');
  bool ok = !repo.empty() && repo.find('/', slash == std::string::npos ? 0 : slash + 1) == std::string::npos &&
            repo.find("..") == std::string::npos && repo.front() != '/' && repo.back() != '/';
  for (char c : repo)
    ok = ok && (ok_char(c) || c == '/');
  if (!ok)
    throw download_error("--repo '" + repo + "' is not of the form ORG/NAME");
}

// Rename order: weights, then the index, the tokenizer files, and config.json last, so that
// a folder caught half-way never has a config.json next to missing weights.
int rename_rank(const std::string& name) {
  if (ends_with(name, ".safetensors"))
    return 0;
  if (name == "model.safetensors.index.json")
    return 1;
  if (name == "config.json")
    return 3;
  return 2;
}

json marker_to_json(const completion_marker& m) {
  json j = {{"repo", m.repo}, {"revision", m.revision}, {"commit", m.commit}, {"files", json::array()}};
  for (const auto& f : m.files)
    j["files"].push_back({{"name", f.name}, {"size", f.size}, {"sha256", f.sha256}, {"git_sha1", f.git_sha1}});
  return j;
}

void write_marker(const fs::path& dir, const completion_marker& m) {
  auto tmp = marker_path(dir);
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << marker_to_json(m).dump(2) << "\n";
    if (!out.flush())
      throw download_error("cannot write " + tmp.string());
  }
  fsync_path(tmp, false);
  fs::rename(tmp, marker_path(dir));
  fsync_path(state_dir(dir), true);
}

bool verify_file(const fs::path& path, const hub_file& f) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec || static_cast<int64_t>(size) != f.size)
    return false;
  if (!f.sha256.empty())
    return file_sha256(path) == f.sha256;
  return file_git_blob_sha1(path) == f.git_sha1;
}

// The Hub quotes ETags ("abc") and may mark them weak (W/"abc").
std::string unquote_etag(std::string etag) {
  if (etag.rfind("W/", 0) == 0)
    etag.erase(0, 2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"')
    etag = etag.substr(1, etag.size() - 2);
  return etag;
}

bool is_hex(const std::string& s, size_t length) {
  return s.size() == length && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

class downloader {
public:
  explicit downloader(const download_options& o)
      : o_(o), local_root_(local_mirror_root(o.endpoint)),
        endpoint_(local_root_.empty() ? parse_endpoint(o.endpoint) : url{"http", "localhost", 80, ""}),
        http_(endpoint_, o.token, o.read_timeout) {}

  download_result run();

private:
  // file:///path: a mirror on a local or shared file system, laid out as PATH/ORG/NAME/FILE.
  static fs::path local_mirror_root(const std::string& endpoint) {
    constexpr std::string_view scheme = "file://";
    if (endpoint.compare(0, scheme.size(), scheme) != 0)
      return {};
    fs::path root = endpoint.substr(scheme.size());
    if (!root.is_absolute())
      throw download_error("HF_ENDPOINT " + endpoint + ": a file:// endpoint needs an absolute path (file:///...)");
    return root;
  }

  static url parse_endpoint(const std::string& text) {
    try {
      auto u = parse_url(text);
      while (u.target.size() > 1 && u.target.back() == '/')
        u.target.pop_back();
      if (u.target == "/")
        u.target.clear();
      return u;
    } catch (const std::invalid_argument& e) {
      throw download_error(std::string("HF_ENDPOINT: ") + e.what());
    }
  }

  url endpoint_path(const std::string& path) const {
    url u = endpoint_;
    u.target += path;
    return u;
  }

  url resolve_url(const std::string& commit, const std::string& name) const {
    return endpoint_path("/" + o_.repo + "/resolve/" + percent_encode(commit, false) + "/" + percent_encode(name, true));
  }

  void log(const std::string& line) {
    std::lock_guard guard(log_mutex_);
    if (o_.log)
      o_.log(line);
    else
      std::cerr << "download: " << line << std::endl;
  }

  bool marker_matches(bool rehash);
  std::vector<hub_file> list_files(std::string& commit);
  std::vector<hub_file> list_hub_files(std::string& commit);
  std::vector<hub_file> list_local_files(std::string& commit);
  bool copy_attempt(const hub_file& f, const fs::path& part, std::string& failure);
  void fill_metadata_from_head(const std::string& commit, hub_file& f);
  void check_space(int64_t needed);
  void fetch(const std::string& commit, const hub_file& f);
  bool fetch_attempt(const std::string& commit, const hub_file& f, const fs::path& part, std::string& failure);
  void fetch_all(const std::string& commit, const std::vector<hub_file>& files);

  download_options o_;
  fs::path local_root_; // set for a file:// endpoint
  url endpoint_;
  http_session http_;
  std::mutex log_mutex_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> bytes_fetched_{0};
};

bool downloader::marker_matches(bool rehash) {
  auto m = read_marker(o_.dir);
  if (!m || m->repo != o_.repo || (m->revision != o_.revision && m->commit != o_.revision))
    return false;
  for (const auto& f : m->files) {
    std::error_code ec;
    auto size = fs::file_size(o_.dir / f.name, ec);
    if (ec || static_cast<int64_t>(size) != f.size) {
      log(f.name + " is missing or has the wrong size: fetching again");
      return false;
    }
    if (rehash && !verify_file(o_.dir / f.name, f)) {
      log(f.name + " does not match its checksum: fetching again");
      return false;
    }
  }
  return true;
}

std::vector<hub_file> downloader::list_local_files(std::string& commit) {
  if (o_.revision != "main")
    throw download_error("the file:// mirror " + local_root_.string() + " holds one revision: use --revision main");
  auto source = local_root_ / o_.repo;
  std::error_code ec;
  if (!fs::is_directory(source, ec))
    throw download_error(o_.repo + " was not found in the mirror " + local_root_.string() + " (no folder " +
                         source.string() + ")");
  std::vector<hub_file> files;
  for (const auto& entry : fs::directory_iterator(source)) {
    auto name = entry.path().filename().string();
    if (!entry.is_regular_file() || !is_serving_file(name)) // is_regular_file follows symlinks
      continue;
    files.push_back({name, static_cast<int64_t>(entry.file_size()), file_sha256(entry.path()), ""});
  }
  std::sort(files.begin(), files.end(), [](const hub_file& a, const hub_file& b) { return a.name < b.name; });
  // The mirror has no commits: name the content instead, so a changed mirror is a new revision.
  std::string summary;
  for (const auto& f : files)
    summary += f.name + ":" + f.sha256 + "\n";
  commit = git_blob_sha1(summary);
  return files;
}

bool downloader::copy_attempt(const hub_file& f, const fs::path& part, std::string& failure) {
  std::ifstream in(local_root_ / o_.repo / f.name, std::ios::binary);
  std::ofstream out(part, std::ios::binary | std::ios::trunc);
  if (!in || !out) {
    failure = "cannot copy from the mirror";
    return false;
  }
  std::vector<char> buffer(size_t{1} << 20);
  while (in && !stop_) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    out.write(buffer.data(), in.gcount());
    bytes_fetched_ += in.gcount();
  }
  out.flush();
  if (in.bad() || !out) {
    failure = "read or write error while copying";
    return false;
  }
  out.close();
  fsync_path(part, false);
  return !stop_;
}

std::vector<hub_file> downloader::list_files(std::string& commit) {
  auto files = local_root_.empty() ? list_hub_files(commit) : list_local_files(commit);
  auto has = [&](auto pred) { return std::any_of(files.begin(), files.end(), pred); };
  if (!has([](const hub_file& f) { return f.name == "config.json"; }))
    throw download_error(o_.repo + "@" + o_.revision + " has no config.json: not a model repo");
  if (!has([](const hub_file& f) { return ends_with(f.name, ".safetensors"); }))
    throw download_error(o_.repo + "@" + o_.revision +
                         " has no .safetensors weights (only .bin/.pth?): serving reads safetensors only");
  return files;
}

std::vector<hub_file> downloader::list_hub_files(std::string& commit) {
  // As huggingface_hub's model_info(files_metadata=True): blobs=true adds size and lfs.sha256.
  auto info_url = endpoint_path("/api/models/" + o_.repo + "/revision/" + percent_encode(o_.revision, false));
  info_url.target += "?blobs=true";
  std::string body;
  response_head head;
  try {
    head = http_.get_text(info_url, body);
  } catch (const std::exception& e) {
    throw download_error(std::string("cannot reach the Hub at ") + o_.endpoint + ": " + e.what());
  }
  if (head.status == 401 || head.status == 403)
    throw download_error(o_.repo + ": access denied (HTTP " + std::to_string(head.status) +
                         (o_.token.empty() ? "): the repo is private or gated; set HF_TOKEN to a token with access"
                                           : "): HF_TOKEN has no access to this repo (gated: accept its license on the Hub)"));
  if (head.status == 404)
    throw download_error(o_.repo + " at revision '" + o_.revision + "' was not found on " + o_.endpoint);
  if (head.status != 200)
    throw download_error("model info for " + o_.repo + ": HTTP " + std::to_string(head.status));
  json info;
  try {
    info = json::parse(body);
  } catch (const json::exception& e) {
    throw download_error("model info for " + o_.repo + " is not JSON: " + e.what());
  }
  commit = info.value("sha", std::string{});
  if (!is_hex(commit, 40))
    throw download_error("model info for " + o_.repo + " has no commit sha");
  if (!info.contains("siblings") || !info["siblings"].is_array())
    throw download_error("model info for " + o_.repo + " lists no files");

  std::vector<hub_file> files;
  for (const auto& s : info["siblings"]) {
    auto name = s.value("rfilename", std::string{});
    if (!is_serving_file(name))
      continue;
    hub_file f;
    f.name = name;
    if (s.contains("lfs") && s["lfs"].is_object()) {
      f.sha256 = s["lfs"].value("sha256", std::string{});
      f.size = s["lfs"].value("size", int64_t{-1});
    } else {
      f.git_sha1 = s.value("blobId", std::string{});
      f.size = s.value("size", int64_t{-1});
    }
    if (f.size < 0 || (f.sha256.empty() && f.git_sha1.empty()))
      fill_metadata_from_head(commit, f);
    files.push_back(std::move(f));
  }
  return files;
}

void downloader::fill_metadata_from_head(const std::string& commit, hub_file& f) {
  // A mirror that ignores blobs=true: ask the resolve URL, as hf_hub_download does. LFS files
  // carry X-Linked-Size and X-Linked-Etag (the sha256) on the Hub's redirect; regular files a
  // Content-Length and an ETag that is their git blob id.
  auto head = http_.head(resolve_url(commit, f.name));
  if (head.status >= 400)
    throw download_error("HEAD " + f.name + ": HTTP " + std::to_string(head.status));
  auto linked_etag = unquote_etag(head.header("X-Linked-Etag"));
  auto linked_size = head.header("X-Linked-Size");
  try {
    if (!linked_etag.empty() && !linked_size.empty()) {
      f.sha256 = linked_etag;
      f.size = std::stoll(linked_size);
    } else {
      f.git_sha1 = unquote_etag(head.header("ETag"));
      f.size = std::stoll(head.header("Content-Length"));
    }
  } catch (const std::exception&) {
    f.size = -1;
  }
  if (f.size < 0 || !(is_hex(f.sha256, 64) || is_hex(f.git_sha1, 40)))
    throw download_error(o_.endpoint + " gives no size and checksum for " + f.name + ": cannot verify it");
}

void downloader::check_space(int64_t needed) {
  struct statvfs st {};
  if (::statvfs(o_.dir.c_str(), &st) != 0)
    return;
  auto available = static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
  if (needed > available)
    throw download_error("not enough space in " + o_.dir.string() + ": need " + human_bytes(needed) + ", " +
                         human_bytes(available) + " free");
}

bool downloader::fetch_attempt(const std::string& commit, const hub_file& f, const fs::path& part,
                               std::string& failure) {
  int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    throw download_error("cannot open " + part.string() + ": " + errno_text());
  struct fd_closer {
    int fd;
    ~fd_closer() { ::close(fd); }
  } closer{fd};
  auto offset = static_cast<int64_t>(fs::file_size(part));
  if (offset > f.size) {
    if (::ftruncate(fd, 0) != 0)
      throw download_error("truncate " + part.string() + ": " + errno_text());
    offset = 0;
  }
  if (offset == f.size)
    return true;

  httplib::Headers extra;
  if (offset > 0)
    extra.emplace("Range", "bytes=" + std::to_string(offset) + "-");
  int status = 0;
  bool fatal = false;
  std::string io_error; // set inside httplib's callbacks, thrown after they return
  int64_t written = offset;
  auto truncate = [&] {
    if (::ftruncate(fd, 0) != 0)
      io_error = "truncate " + part.string() + ": " + errno_text();
    written = 0;
    return io_error.empty();
  };
  auto error = http_.get_stream(
      resolve_url(commit, f.name), extra,
      [&](const response_head& h) {
        status = h.status;
        if (h.status == 200 && offset > 0) {
          // The server ignored the range: start over.
          return truncate();
        }
        if (h.status == 206) {
          auto range = h.header("Content-Range"); // bytes START-END/TOTAL
          if (range.rfind("bytes " + std::to_string(offset) + "-", 0) != 0) {
            failure = "unexpected Content-Range '" + range + "' for a resume at " + std::to_string(offset);
            truncate();
            return false;
          }
          return true;
        }
        if (h.status == 200)
          return true;
        failure = h.status == 0 ? "no connection to " + h.final_url.origin() : "HTTP " + std::to_string(h.status);
        fatal = h.status >= 400 && h.status < 500 && h.status != 408 && h.status != 429 && h.status != 416;
        return false;
      },
      [&](const char* data, size_t size) {
        if (stop_)
          return false;
        if (written + static_cast<int64_t>(size) > f.size) {
          failure = "the server sent more than the " + std::to_string(f.size) + " bytes the Hub lists";
          return false;
        }
        for (size_t done = 0; done < size;) {
          auto n = ::write(fd, data + done, size - done);
          if (n < 0) {
            if (errno == EINTR)
              continue;
            io_error = "write " + part.string() + ": " + errno_text();
            return false;
          }
          done += static_cast<size_t>(n);
        }
        written += static_cast<int64_t>(size);
        bytes_fetched_ += static_cast<int64_t>(size);
        return true;
      });
  if (!io_error.empty())
    throw download_error(io_error);
  if (fatal)
    throw download_error(f.name + ": " + failure + " from " + resolve_url(commit, f.name).str());
  if (status == 416) {
    // Nothing past our offset: the partial file is longer than the server's copy.
    if (!truncate())
      throw download_error(io_error);
    failure = "HTTP 416 for a resume at " + std::to_string(offset);
    return false;
  }
  if (error == httplib::Error::Success && written != f.size && failure.empty())
    failure = "the body ended after " + std::to_string(written) + " of " + std::to_string(f.size) + " bytes";
  if (error != httplib::Error::Success && failure.empty())
    failure = "connection lost after " + std::to_string(written) + " of " + std::to_string(f.size) +
              " bytes (" + httplib::to_string(error) + ")";
  if (::fsync(fd) != 0)
    throw download_error("fsync " + part.string() + ": " + errno_text());
  return error == httplib::Error::Success && written == f.size;
}

void downloader::fetch(const std::string& commit, const hub_file& f) {
  auto part = partial_dir(o_.dir) / (f.name + ".part");
  auto delay = o_.retry_delay;
  int full_downloads_corrupt = 0;
  for (int attempt = 1; attempt <= o_.max_attempts && !stop_; ++attempt) {
    std::string failure;
    auto started = std::chrono::steady_clock::now();
    bool whole = local_root_.empty() ? fetch_attempt(commit, f, part, failure) : copy_attempt(f, part, failure);
    if (whole) {
      if (verify_file(part, f)) {
        auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        log("fetched " + f.name + " (" + human_bytes(f.size) + ", " +
            human_bytes(static_cast<int64_t>(static_cast<double>(f.size) / std::max(seconds, 1e-3))) + "/s)");
        return;
      }
      fs::remove(part);
      ++full_downloads_corrupt;
      failure = (f.sha256.empty() ? "git blob sha1" : "sha256") + std::string(" mismatch: expected ") +
                (f.sha256.empty() ? f.git_sha1 : f.sha256);
      // A second corrupt copy means the source is bad, not the transfer.
      if (full_downloads_corrupt >= 2)
        throw download_error(f.name + ": " + failure + " twice; the copy at " + o_.endpoint +
                             " is corrupt (nothing was installed)");
    }
    if (stop_)
      return;
    if (attempt == o_.max_attempts)
      throw download_error(f.name + ": " + failure + "; gave up after " + std::to_string(o_.max_attempts) +
                           " attempts (the partial file is kept and resumed next time)");
    log(f.name + ": " + failure + "; retrying in " + std::to_string(delay.count()) + " ms (attempt " +
        std::to_string(attempt + 1) + " of " + std::to_string(o_.max_attempts) + ")");
    std::this_thread::sleep_for(delay);
    delay *= 2;
  }
}

void downloader::fetch_all(const std::string& commit, const std::vector<hub_file>& files) {
  std::atomic<size_t> next{0};
  std::exception_ptr first_error;
  std::mutex error_mutex;
  auto work = [&] {
    for (size_t i = next++; i < files.size() && !stop_; i = next++) {
      try {
        fetch(commit, files[i]);
      } catch (...) {
        std::lock_guard guard(error_mutex);
        if (!first_error)
          first_error = std::current_exception();
        stop_ = true;
      }
    }
  };
  std::vector<std::thread> workers;
  auto count = std::clamp<size_t>(static_cast<size_t>(std::max(o_.workers, 1)), 1, std::max<size_t>(files.size(), 1));
  for (size_t i = 0; i < count; ++i)
    workers.emplace_back(work);
  for (auto& t : workers)
    t.join();
  if (first_error)
    std::rethrow_exception(first_error);
}

download_result downloader::run() {
  check_repo_name(o_.repo);
  if (o_.revision.empty())
    throw download_error("--revision must not be empty");
  if (o_.dir.empty())
    throw download_error("--dir must be given");
  std::error_code ec;
  fs::create_directories(partial_dir(o_.dir), ec);
  if (ec)
    throw download_error("cannot create " + partial_dir(o_.dir).string() + ": " + ec.message());

  download_result result;
  auto finish_from_marker = [&] {
    auto m = read_marker(o_.dir);
    result.already_complete = true;
    result.commit = m->commit;
    result.files = m->files;
    log(o_.repo + "@" + o_.revision + " is already complete in " + o_.dir.string() + " (commit " + m->commit + ")");
    return result;
  };
  if (marker_matches(o_.verify_existing))
    return finish_from_marker();

  folder_lock lock(o_.dir, [&] { log("another process is downloading into " + o_.dir.string() + "; waiting"); });
  if (marker_matches(o_.verify_existing))
    return finish_from_marker();

  // From here on the folder is incomplete: no marker, no config.json (see download.hpp).
  fs::remove(marker_path(o_.dir), ec);
  fs::remove(o_.dir / "config.json", ec);
  fsync_path(o_.dir, true);

  std::string commit;
  auto files = list_files(commit);
  log(o_.repo + "@" + o_.revision + " is commit " + commit + "; " + std::to_string(files.size()) + " serving files");

  // Serving files left by another revision would be mixed into this one: remove them.
  for (const auto& entry : fs::directory_iterator(o_.dir)) {
    auto name = entry.path().filename().string();
    bool wanted = std::any_of(files.begin(), files.end(), [&](const hub_file& f) { return f.name == name; });
    if (entry.is_regular_file() && is_serving_file(name) && !wanted) {
      log("removing " + name + " (not in this revision)");
      fs::remove(entry.path());
    }
  }

  std::vector<hub_file> to_fetch;
  int64_t needed = 0;
  for (const auto& f : files) {
    if (fs::exists(o_.dir / f.name) && verify_file(o_.dir / f.name, f)) {
      log(f.name + " is already here and verified");
      continue;
    }
    fs::remove(o_.dir / f.name, ec);
    auto part = partial_dir(o_.dir) / (f.name + ".part");
    auto have = fs::exists(part) ? static_cast<int64_t>(fs::file_size(part)) : 0;
    needed += std::max<int64_t>(f.size - have, 0);
    to_fetch.push_back(f);
  }
  check_space(needed);
  if (!to_fetch.empty())
    log("fetching " + std::to_string(to_fetch.size()) + " files, " + human_bytes(needed));
  fetch_all(commit, to_fetch);

  std::sort(to_fetch.begin(), to_fetch.end(),
            [](const hub_file& a, const hub_file& b) { return rename_rank(a.name) < rename_rank(b.name); });
  for (const auto& f : to_fetch)
    fs::rename(partial_dir(o_.dir) / (f.name + ".part"), o_.dir / f.name);
  fsync_path(o_.dir, true);
  write_marker(o_.dir, {o_.repo, o_.revision, commit, files});
  fs::remove_all(partial_dir(o_.dir), ec);
  fs::create_directories(partial_dir(o_.dir), ec);

  result.commit = commit;
  result.files = files;
  result.bytes_fetched = bytes_fetched_;
  log("complete: " + o_.repo + "@" + commit + " in " + o_.dir.string() + " (" + human_bytes(result.bytes_fetched) +
      " fetched)");
  return result;
}

} // namespace

bool is_serving_file(std::string_view name) {
  if (name.empty() || name.find('/') != std::string_view::npos || name.find('\\') != std::string_view::npos ||
      name.front() == '.')
    return false;
  return name == "config.json" || name == "generation_config.json" || name == "special_tokens_map.json" ||
         name == "chat_template.jinja" || name == "model.safetensors.index.json" ||
         name.rfind("tokenizer", 0) == 0 || ends_with(name, ".safetensors");
}

std::optional<completion_marker> read_marker(const fs::path& dir) {
  std::ifstream in(marker_path(dir), std::ios::binary);
  if (!in)
    return std::nullopt;
  try {
    auto j = json::parse(in);
    completion_marker m;
    m.repo = j.at("repo").get<std::string>();
    m.revision = j.at("revision").get<std::string>();
    m.commit = j.at("commit").get<std::string>();
    for (const auto& f : j.at("files")) {
      hub_file h{f.at("name").get<std::string>(), f.at("size").get<int64_t>(), f.value("sha256", std::string{}),
                 f.value("git_sha1", std::string{})};
      if (!is_serving_file(h.name))
        return std::nullopt; // a marker naming odd paths is not ours
      m.files.push_back(std::move(h));
    }
    return m;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

download_result download_model(const download_options& options) { return downloader(options).run(); }

folder_lock::folder_lock(const fs::path& dir, const std::function<void()>& on_wait) {
  auto path = state_dir(dir) / "lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw download_error("cannot open the lock " + path.string() + ": " + errno_text());
  if (::flock(fd_, LOCK_EX | LOCK_NB) == 0)
    return;
  if (errno != EWOULDBLOCK) {
    ::close(fd_);
    throw download_error("cannot lock " + path.string() + ": " + errno_text());
  }
  if (on_wait)
    on_wait();
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno != EINTR) {
      ::close(fd_);
      throw download_error("cannot lock " + path.string() + ": " + errno_text());
    }
  }
}

folder_lock::~folder_lock() {
  if (fd_ >= 0)
    ::close(fd_); // closing releases the flock
}

} // namespace actorserve::download
