// `actorserve download` against the fake Hub on loopback: redirects to a CDN on another
// port, dropped connections, corrupt bytes, tokens, mirrors without metadata, revisions,
// two processes sharing a folder. After every failure the folder must not be loadable.

#include "gateway/download.hpp"
#include "gateway/download_hash.hpp"
#include "model/config.hpp"
#include "model/error.hpp"
#include "tests/download/fake_hub/fake_hub.hpp"
#include "tests/testing.hpp"

#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <fstream>
#include <random>
#include <sstream>
#include <thread>

using namespace actorserve;
using namespace actorserve::download;
using actorserve::testing::fake_file;
using actorserve::testing::fake_hub;
namespace fs = std::filesystem;

namespace {

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s)
    c = static_cast<char>(rng());
  return s;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string demo_config() { return read_file(actorserve::testing::source_dir() / "models/demo/config.json"); }

// Two LFS shards of 3 MB and 2 MB, an index, regular files, and files serving does not need.
std::map<std::string, fake_file> sharded_model(uint32_t seed = 1) {
  return {
      {"config.json", {demo_config(), false}},
      {"generation_config.json", {R"({"eos_token_id": 1})", false}},
      {"tokenizer.json", {R"({"model": {"type": "BPE"}})", false}},
      {"tokenizer_config.json", {R"({"bos_token": "<s>"})", false}},
      {"model-00001-of-00002.safetensors", {random_bytes(3 << 20, seed), true}},
      {"model-00002-of-00002.safetensors", {random_bytes(2 << 20, seed + 1), true}},
      {"model.safetensors.index.json", {R"({"weight_map": {}})", false}},
      {"README.md", {"# a model card", false}},
      {"pytorch_model.bin", {random_bytes(1 << 20, seed + 2), true}},
      {"original/consolidated.00.pth", {random_bytes(1 << 20, seed + 3), true}},
  };
}

download_options options_for(const fake_hub& hub, const fs::path& dir, std::vector<std::string>* log = nullptr) {
  download_options o;
  o.endpoint = hub.endpoint();
  o.repo = "acme/tiny";
  o.dir = dir;
  o.retry_delay = std::chrono::milliseconds(10);
  o.read_timeout = std::chrono::seconds(10);
  o.workers = 2;
  static std::mutex log_mutex;
  o.log = [log](const std::string& line) {
    std::lock_guard guard(log_mutex);
    if (log)
      log->push_back(line);
  };
  return o;
}

int count(const std::vector<testing::request_record>& requests, const std::string& server,
          const std::string& path_part, bool with_range = false) {
  int n = 0;
  for (const auto& r : requests)
    if (r.server == server && r.path.find(path_part) != std::string::npos && (!with_range || !r.range.empty()))
      ++n;
  return n;
}

std::string blob_path(const std::string& content) { return "/blobs/" + sha256_hex(content); }

// What a server would see: no marker and no config.json means load_model_config refuses.
void check_not_loadable(const fs::path& dir) {
  CHECK_FALSE(read_marker(dir));
  CHECK_FALSE(fs::exists(dir / "config.json"));
  CHECK_THROWS_AS(load_model_config(dir), model_error);
}

} // namespace

TEST_CASE("download fetches the serving files through a redirect to a CDN on another port") {
  fake_hub hub;
  auto files = sharded_model();
  hub.set_repo("acme/tiny", testing::make_repo(files));
  hub.require_token("hf_secret");
  testing::temp_dir dir;
  auto o = options_for(hub, dir.path() / "model");
  o.token = "hf_secret";

  auto result = download_model(o);
  CHECK_FALSE(result.already_complete);
  CHECK(result.files.size() == 7);
  for (const auto& name : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                           "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                           "model.safetensors.index.json"})
    CHECK(read_file(o.dir / name) == files.at(name).content);
  CHECK_FALSE(fs::exists(o.dir / "README.md"));
  CHECK_FALSE(fs::exists(o.dir / "pytorch_model.bin"));
  CHECK_FALSE(fs::exists(o.dir / "original"));
  CHECK(fs::is_empty(o.dir / ".actorserve/partial"));
  auto marker = read_marker(o.dir);
  REQUIRE(marker);
  CHECK(marker->commit == testing::make_repo(files).commit);
  CHECK(load_model_config(o.dir).num_hidden_layers == 6);

  auto requests = hub.requests();
  // The shards came from the CDN; the token went to the Hub only, never to the CDN.
  CHECK(count(requests, "cdn", blob_path(files.at("model-00001-of-00002.safetensors").content)) == 1);
  CHECK(count(requests, "cdn", blob_path(files.at("model-00002-of-00002.safetensors").content)) == 1);
  for (const auto& r : requests)
    CHECK(r.authorized == (r.server == "hub"));
  // Files were resolved at the commit, not at "main", so they all come from one revision.
  CHECK(count(requests, "hub", "/resolve/" + marker->commit + "/config.json") == 1);
  CHECK(count(requests, "hub", "/resolve/main/") == 0);

  SECTION("a second run finds the marker and makes no request") {
    hub.clear_requests();
    auto again = download_model(o);
    CHECK(again.already_complete);
    CHECK(hub.requests().empty());
  }
  SECTION("a file that lost bytes is fetched again") {
    fs::resize_file(o.dir / "model-00002-of-00002.safetensors", 100);
    hub.clear_requests();
    auto again = download_model(o);
    CHECK_FALSE(again.already_complete);
    CHECK(read_file(o.dir / "model-00002-of-00002.safetensors") ==
          files.at("model-00002-of-00002.safetensors").content);
    // The intact shard was re-hashed and kept.
    CHECK(count(hub.requests(), "cdn", blob_path(files.at("model-00001-of-00002.safetensors").content)) == 0);
  }
  SECTION("--verify re-hashes a complete folder and repairs a flipped byte") {
    {
      std::fstream f(o.dir / "model-00001-of-00002.safetensors", std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(12345);
      f.put('\x7f');
    }
    o.verify_existing = false;
    CHECK(download_model(o).already_complete); // sizes match: trusted without --verify
    o.verify_existing = true;
    CHECK_FALSE(download_model(o).already_complete);
    CHECK(read_file(o.dir / "model-00001-of-00002.safetensors") ==
          files.at("model-00001-of-00002.safetensors").content);
  }
}

TEST_CASE("download resumes with Range after connections drop midway") {
  fake_hub hub;
  auto files = sharded_model();
  hub.set_repo("acme/tiny", testing::make_repo(files));
  const auto& shard = files.at("model-00001-of-00002.safetensors").content;
  // The first GET dies after 1,000,000 bytes; the resume asks for the rest.
  hub.drop_after("model-00001-of-00002.safetensors", 1'000'000, 1);
  testing::temp_dir dir;
  std::vector<std::string> log;
  auto o = options_for(hub, dir.path(), &log);
  o.workers = 1;

  SECTION("within one run") {
    download_model(o);
    CHECK(read_file(dir.path() / "model-00001-of-00002.safetensors") == shard);
    auto requests = hub.requests();
    std::vector<std::string> ranges;
    for (const auto& r : requests)
      if (r.server == "cdn" && r.path == blob_path(shard))
        ranges.push_back(r.range);
    REQUIRE(ranges.size() == 2);
    CHECK(ranges[0].empty());
    CHECK(ranges[1] == "bytes=1000000-");
    // Resuming sent the rest, not the whole file again.
    CHECK(hub.content_bytes_sent() < static_cast<int64_t>(3 << 20) + (2 << 20) + 200'000);
    bool logged = false;
    for (const auto& line : log)
      logged = logged || line.find("connection lost after 1000000") != std::string::npos;
    CHECK(logged);
  }
  SECTION("across runs: the partial file survives a failed run and is resumed by the next") {
    hub.drop_after("model-00001-of-00002.safetensors", 1'500'000, 1);
    o.max_attempts = 1;
    CHECK_THROWS_WITH(download_model(o), Catch::Contains("gave up after 1 attempts"));
    check_not_loadable(dir.path());
    CHECK(fs::file_size(dir.path() / ".actorserve/partial/model-00001-of-00002.safetensors.part") == 1'500'000);
    hub.clear_requests();
    download_model(o);
    CHECK(read_file(dir.path() / "model-00001-of-00002.safetensors") == shard);
    CHECK(count(hub.requests(), "cdn", blob_path(shard), true) == 1);
    CHECK(hub.requests().size() > 0);
    for (const auto& r : hub.requests())
      if (r.server == "cdn" && r.path == blob_path(shard))
        CHECK(r.range == "bytes=1500000-");
  }
}

TEST_CASE("a corrupt file is detected and nothing loadable is left") {
  fake_hub hub;
  auto files = sharded_model();
  hub.set_repo("acme/tiny", testing::make_repo(files));
  hub.corrupt("model-00002-of-00002.safetensors", true);
  testing::temp_dir dir;
  auto o = options_for(hub, dir.path());

  CHECK_THROWS_WITH(download_model(o), Catch::Contains("model-00002-of-00002.safetensors: sha256 mismatch") &&
                                           Catch::Contains("corrupt"));
  check_not_loadable(dir.path());
  CHECK_FALSE(fs::exists(dir.path() / "model-00002-of-00002.safetensors"));
  // Fetched twice (a transfer error is possible once), then refused.
  CHECK(count(hub.requests(), "cdn", blob_path(files.at("model-00002-of-00002.safetensors").content)) == 2);

  SECTION("once the source is fixed, the next run completes") {
    hub.corrupt("model-00002-of-00002.safetensors", false);
    download_model(o);
    CHECK(read_file(dir.path() / "model-00002-of-00002.safetensors") ==
          files.at("model-00002-of-00002.safetensors").content);
    CHECK(load_model_config(dir.path()).hidden_size == 384);
  }
  SECTION("a corrupt regular file is caught by its git blob id") {
    hub.corrupt("model-00002-of-00002.safetensors", false);
    hub.corrupt("tokenizer.json", true);
    testing::temp_dir fresh;
    CHECK_THROWS_WITH(download_model(options_for(hub, fresh.path())),
                      Catch::Contains("tokenizer.json: git blob sha1 mismatch"));
    check_not_loadable(fresh.path());
  }
}

TEST_CASE("a server that ignores Range gets the file from the start") {
  fake_hub hub;
  auto files = sharded_model();
  hub.set_repo("acme/tiny", testing::make_repo(files));
  hub.drop_after("model-00001-of-00002.safetensors", 700'000, 1);
  hub.ignore_range(true);
  testing::temp_dir dir;
  std::vector<std::string> log;
  auto o = options_for(hub, dir.path(), &log);
  download_model(o);
  CHECK(read_file(dir.path() / "model-00001-of-00002.safetensors") ==
        files.at("model-00001-of-00002.safetensors").content);
  // The resume was asked for and answered with a whole 200.
  auto requests = hub.requests();
  CHECK(count(requests, "cdn", blob_path(files.at("model-00001-of-00002.safetensors").content), true) == 1);
}

TEST_CASE("download explains access errors, missing repos and unusable repos") {
  fake_hub hub;
  hub.set_repo("acme/tiny", testing::make_repo(sharded_model()));
  hub.require_token("hf_right");
  testing::temp_dir dir;
  auto o = options_for(hub, dir.path());
  CHECK_THROWS_WITH(download_model(o), Catch::Contains("set HF_TOKEN"));
  o.token = "hf_wrong";
  CHECK_THROWS_WITH(download_model(o), Catch::Contains("HF_TOKEN has no access"));
  o.token = "hf_right";
  o.repo = "acme/missing";
  CHECK_THROWS_WITH(download_model(o), Catch::Contains("acme/missing at revision 'main' was not found"));
  o.repo = "acme/tiny";
  o.revision = "v9";
  CHECK_THROWS_WITH(download_model(o), Catch::Contains("not found"));
  o.revision = "main";
  o.repo = "../etc";
  CHECK_THROWS_WITH(download_model(o), Catch::Contains("ORG/NAME"));

  auto bin_only = sharded_model();
  bin_only.erase("model-00001-of-00002.safetensors");
  bin_only.erase("model-00002-of-00002.safetensors");
  hub.set_repo("acme/bin-only", testing::make_repo(bin_only));
  o.repo = "acme/bin-only";
  CHECK_THROWS_WITH(download_model(o), Catch::Contains("no .safetensors weights"));

  o.endpoint = "http://127.0.0.1:1"; // nothing listens there
  CHECK_THROWS_WITH(download_model(o), Catch::Contains("cannot reach the Hub"));
  check_not_loadable(dir.path());
}

TEST_CASE("a mirror without blob metadata: sizes and checksums come from HEAD, as hf_hub_download does") {
  fake_hub hub;
  auto files = sharded_model();
  hub.set_repo("acme/tiny", testing::make_repo(files));
  hub.omit_blobs(true);
  testing::temp_dir dir;
  auto o = options_for(hub, dir.path());
  download_model(o);
  auto marker = read_marker(dir.path());
  REQUIRE(marker);
  for (const auto& f : marker->files) {
    CHECK(f.size == static_cast<int64_t>(files.at(f.name).content.size()));
    if (files.at(f.name).lfs)
      CHECK(f.sha256 == sha256_hex(files.at(f.name).content)); // X-Linked-Etag
    else
      CHECK(f.git_sha1 == git_blob_sha1(files.at(f.name).content)); // ETag
  }
  int heads = 0;
  for (const auto& r : hub.requests())
    heads += r.method == "HEAD";
  CHECK(heads == 7);
  // The corruption check still works with metadata from HEAD.
  hub.corrupt("model-00001-of-00002.safetensors", true);
  testing::temp_dir other;
  CHECK_THROWS_WITH(download_model(options_for(hub, other.path())), Catch::Contains("sha256 mismatch"));
}

TEST_CASE("a new revision replaces the old files and never mixes them") {
  fake_hub hub;
  auto v1 = sharded_model(1);
  hub.set_repo("acme/tiny", testing::make_repo(v1));
  testing::temp_dir dir;
  auto o = options_for(hub, dir.path());
  auto first = download_model(o);

  std::map<std::string, fake_file> v2 = {{"config.json", {demo_config(), false}},
                                         {"tokenizer.json", {R"({"v": 2})", false}},
                                         {"model.safetensors", {random_bytes(1 << 20, 9), true}}};
  auto repo2 = testing::make_repo(v2);
  hub.set_repo("acme/tiny", repo2);
  // "main" is still complete in the folder: a pinned cache does not follow the branch...
  CHECK(download_model(o).already_complete);
  // ...until asked for another revision.
  o.revision = repo2.commit;
  auto second = download_model(o);
  CHECK(second.commit == repo2.commit);
  CHECK(read_file(dir.path() / "model.safetensors") == v2.at("model.safetensors").content);
  CHECK(read_file(dir.path() / "tokenizer.json") == R"({"v": 2})");
  CHECK_FALSE(fs::exists(dir.path() / "model-00001-of-00002.safetensors"));
  CHECK_FALSE(fs::exists(dir.path() / "model.safetensors.index.json"));
  CHECK_FALSE(fs::exists(dir.path() / "generation_config.json"));
  CHECK(read_marker(dir.path())->commit == repo2.commit);
}

TEST_CASE("two downloaders sharing a folder: one fetches, the other waits and finds it complete") {
  fake_hub hub;
  auto files = sharded_model();
  hub.set_repo("acme/tiny", testing::make_repo(files));
  hub.chunk_delay_ms(5); // keep the first transfer in flight while the second starts
  testing::temp_dir dir;

  // Two processes, as two pods on one ReadWriteMany volume would be.
  std::vector<pid_t> children;
  for (int i = 0; i < 2; ++i) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int rc = 0;
      try {
        download_model(options_for(hub, dir.path()));
      } catch (...) {
        rc = 1;
      }
      _exit(rc);
    }
    children.push_back(pid);
  }
  for (auto pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  // Each shard crossed the wire once: the second process waited on the lock, then found the
  // marker.
  for (const auto& name : {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"})
    CHECK(count(hub.requests(), "cdn", blob_path(files.at(name).content)) == 1);
  CHECK(count(hub.requests(), "hub", "/api/models/") == 1);
  CHECK(read_file(dir.path() / "model-00001-of-00002.safetensors") ==
        files.at("model-00001-of-00002.safetensors").content);
}

TEST_CASE("actorserve download: HF_ENDPOINT, HF_TOKEN, exit status") {
  fake_hub hub;
  hub.set_repo("acme/tiny", testing::make_repo(sharded_model()));
  hub.require_token("hf_cli");
  testing::temp_dir dir;
  auto run = [&](const std::string& env) {
    auto command = env + " " + actorserve::testing::executable().string() + " download --repo acme/tiny --dir " +
                   (dir.path() / "m").string() + " --retry-delay 0.01 > " + (dir.path() / "out").string() + " 2> " +
                   (dir.path() / "err").string();
    return std::system(command.c_str());
  };
  CHECK(run("HF_ENDPOINT=" + hub.endpoint() + " HF_TOKEN=") != 0);
  CHECK_THAT(read_file(dir.path() / "err"), Catch::Contains("set HF_TOKEN"));
  CHECK(run("HF_ENDPOINT=" + hub.endpoint() + " HF_TOKEN=hf_cli") == 0);
  CHECK(read_file(dir.path() / "out") == (dir.path() / "m").string() + "\n");
  CHECK(fs::exists(dir.path() / "m/config.json"));
  CHECK(run("HF_ENDPOINT=" + hub.endpoint() + " HF_TOKEN=hf_cli") == 0);
  CHECK_THAT(read_file(dir.path() / "err"), Catch::Contains("already complete"));
}

TEST_CASE("a file:// mirror (the cpu-demo image's bundled model) fills the cache the same way") {
  testing::temp_dir root;
  auto source = root.path() / "mirror/actorserve/demo";
  fs::create_directories(source);
  for (const auto& name : {"config.json", "tokenizer.json", "model.safetensors", "README.md"})
    fs::copy_file(actorserve::testing::source_dir() / "models/demo" / name, source / name);
  download_options o;
  o.endpoint = "file://" + (root.path() / "mirror").string();
  o.repo = "actorserve/demo";
  o.dir = root.path() / "cache";
  o.log = [](const std::string&) {};
  auto first = download_model(o);
  CHECK_FALSE(first.already_complete);
  CHECK(first.files.size() == 3);
  CHECK(read_file(o.dir / "model.safetensors") == read_file(source / "model.safetensors"));
  CHECK_FALSE(fs::exists(o.dir / "README.md"));
  CHECK(load_model_config(o.dir).vocab_size == 4096);
  CHECK(download_model(o).already_complete);

  // A changed mirror is a new revision only when asked for; a missing repo is named.
  o.repo = "actorserve/none";
  CHECK_THROWS_WITH(download_model(o), Catch::Contains("was not found in the mirror"));
  o.repo = "actorserve/demo";
  o.revision = "v2";
  CHECK_THROWS_WITH(download_model(o), Catch::Contains("use --revision main"));
  o.endpoint = "file://relative/path";
  CHECK_THROWS_WITH(download_model(o), Catch::Contains("absolute path"));
}
