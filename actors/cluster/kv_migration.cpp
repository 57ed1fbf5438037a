#include "actors/cluster/kv_migration.hpp"

#include <optional>

namespace actorserve::cluster {

// ---- kv_export_store -------------------------------------------------------------------------

uint64_t kv_export_store::add(const kv_snapshot& snap, const std::string& model_id, size_t chunk_bytes) {
  std::lock_guard lock(mu_);
  expire_locked();
  const uint64_t id = next_id_++;
  kv_package pkg = package_kv(snap, id, model_id, chunk_bytes);
  if (corrupt_chunk_ >= 0 && size_t(corrupt_chunk_) < pkg.chunk_docs.size()) {
    std::string& doc = pkg.chunk_docs[size_t(corrupt_chunk_)];
    doc[doc.size() - 1 - doc.size() / 3] ^= 0x10; // inside the chunk's bytes: its checksum fails
  }
  entries_[id] = {std::move(pkg), std::chrono::steady_clock::now() + ttl_};
  return id;
}

std::string kv_export_store::serve(const std::string& fetch_doc) {
  kv_fetch_msg m;
  try {
    decode(fetch_doc, m);
  } catch (const wire_error& e) {
    return encode(kv_refusal{std::string("malformed fetch: ") + e.what()});
  }
  std::lock_guard lock(mu_);
  expire_locked();
  auto it = entries_.find(m.transfer_id);
  if (it == entries_.end())
    return encode(kv_refusal{"unknown or expired KV transfer " + std::to_string(m.transfer_id)});
  const kv_package& p = it->second.package;
  if (m.index == kv_release_index) { // the importer gave up: nothing more will be fetched
    entries_.erase(it);
    return encode(kv_refusal{"released"});
  }
  if (m.index < 0)
    return p.header_doc;
  if (uint64_t(m.index) >= p.chunk_docs.size())
    return encode(kv_refusal{"KV transfer " + std::to_string(m.transfer_id) + " has no chunk " +
                             std::to_string(m.index)});
  std::string doc = p.chunk_docs[size_t(m.index)];
  if (uint64_t(m.index) + 1 == p.chunk_docs.size())
    entries_.erase(it); // fully fetched
  return doc;
}

size_t kv_export_store::pending() {
  std::lock_guard lock(mu_);
  expire_locked();
  return entries_.size();
}

void kv_export_store::expire_locked() {
  const auto now = std::chrono::steady_clock::now();
  for (auto it = entries_.begin(); it != entries_.end();)
    it = it->second.expires < now ? entries_.erase(it) : std::next(it);
}

// ---- fetch_kv --------------------------------------------------------------------------------

namespace {

struct fetch_state {
  caf::actor source;
  uint64_t transfer_id = 0;
  std::string model_id;
  kv_transfer_layout layout;
  std::chrono::milliseconds per_request{};
  std::chrono::steady_clock::time_point deadline;
  std::optional<kv_assembler> assembler;
  kv_fetch_done done;
};

// Gives up: tells the source it may drop the export (its drain need not wait for it).
void give_up(caf::event_based_actor* self, const std::shared_ptr<fetch_state>& st, const std::string& why) {
  self->send(st->source, kv_fetch_atom_v, encode(kv_fetch_msg{st->transfer_id, kv_release_index}));
  st->done(nullptr, why);
}

void fetch_next(caf::event_based_actor* self, std::shared_ptr<fetch_state> st) {
  if (std::chrono::steady_clock::now() > st->deadline)
    return give_up(self, st, "KV transfer took longer than its budget");
  const int64_t index = st->assembler ? int64_t(st->assembler->next_index()) : -1;
  self->request(st->source, st->per_request, kv_fetch_atom_v, encode(kv_fetch_msg{st->transfer_id, index}))
      .then(
          [self, st](const std::string& doc) {
            std::string reason;
            if (is_kv_refusal(doc, reason))
              return st->done(nullptr, "the source refused: " + reason);
            try {
              if (!st->assembler)
                st->assembler.emplace(doc, st->model_id, st->layout);
              else
                st->assembler->add_chunk(doc);
              if (st->assembler->complete())
                return st->done(st->assembler->finish(), "");
            } catch (const wire_error& e) {
              return give_up(self, st, e.what());
            }
            fetch_next(self, st);
          },
          [st](const caf::error& err) { st->done(nullptr, "fetching KV failed: " + caf::to_string(err)); });
}

} // namespace

void fetch_kv(caf::event_based_actor* self, caf::actor source, uint64_t transfer_id, std::string model_id,
              kv_transfer_layout layout, std::chrono::milliseconds per_request, std::chrono::milliseconds budget,
              kv_fetch_done done) {
  auto st = std::make_shared<fetch_state>();
  st->source = std::move(source);
  st->transfer_id = transfer_id;
  st->model_id = std::move(model_id);
  st->layout = std::move(layout);
  st->per_request = per_request;
  st->deadline = std::chrono::steady_clock::now() + budget;
  st->done = std::move(done);
  if (!st->source)
    return st->done(nullptr, "the KV source node is not connected");
  fetch_next(self, st);
}

} // namespace actorserve::cluster
