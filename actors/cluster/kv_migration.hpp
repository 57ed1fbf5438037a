#pragma once
// The node's side of migration by KV shipping (wire format: actors/cluster/kv_transfer.hpp).
//
// Pull model: the node a sequence leaves (the source) exports its K/V from the engine, splits
// it into a header and bounded chunks and keeps them in a `kv_export_store` under a transfer id;
// the placement that resumes the request names (source node, transfer id); the node that runs
// it next fetches the header and then each chunk with one request apiece (finite timeout each,
// so a lost source costs seconds, not a hang), checks everything with `kv_assembler`, and
// submits the request with the snapshot as generate_request::kv_import. Any failure (refusal,
// corruption, timeout, mismatched model) is logged with its reason and the request is submitted
// without the snapshot: migration by recomputation, never a lost request.

#include "actors/cluster/kv_transfer.hpp"
#include "actors/cluster/node_protocol.hpp"

#include <caf/all.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>

CAF_BEGIN_TYPE_ID_BLOCK(actorserve_kv, caf::id_block::actorserve_cluster::end)
  // importing node -> source node: (atom, kv_fetch_msg document) -> header/chunk/refusal document
  CAF_ADD_ATOM(actorserve_kv, actorserve::cluster, kv_fetch_atom, "clkvfetch")
  // origin -> executing node: (atom, migrate document) export this placement's K/V, then send
  // the origin a migrate document naming the transfer (admin migration of one request)
  CAF_ADD_ATOM(actorserve_kv, actorserve::cluster, kv_migrate_atom, "clkvmig")
  // inside one node: an export finished (engine thread -> node actor)
  CAF_ADD_ATOM(actorserve_kv, actorserve::cluster, kv_ready_atom, "clkvready")   // (origin, migrate document)
  CAF_ADD_ATOM(actorserve_kv, actorserve::cluster, kv_resume_atom, "clkvres")    // (id, attempt, to, transfer id)
  CAF_ADD_ATOM(actorserve_kv, actorserve::cluster, kv_local_atom, "clkvlocal")   // (id, attempt): fetch, then submit here
CAF_END_TYPE_ID_BLOCK(actorserve_kv)

namespace actorserve::cluster {

/// Where a resumed request's K/V can be fetched (empty node: nowhere, recompute).
struct kv_source {
  std::string node;
  uint64_t transfer_id = 0;
  explicit operator bool() const { return !node.empty() && transfer_id != 0; }
};

/// Exports waiting to be fetched. Thread-safe. An entry goes when its last chunk has been
/// served or after `ttl`.
class kv_export_store {
public:
  explicit kv_export_store(std::chrono::milliseconds ttl = std::chrono::seconds(30)) : ttl_(ttl) {}
  /// Packages `snap` and keeps it; returns its transfer id. Throws wire_error on a bad snapshot.
  uint64_t add(const kv_snapshot& snap, const std::string& model_id, size_t chunk_bytes);
  /// The answer to a kv_fetch_msg document: the header, a chunk, or a kv_refusal.
  std::string serve(const std::string& fetch_doc);
  /// Entries not yet fully fetched (and not expired).
  size_t pending();
  /// Fault injection for tests: flip a payload byte of chunk `index` of every export.
  void corrupt_chunk(int32_t index) { corrupt_chunk_ = index; }

private:
  struct entry {
    kv_package package;
    std::chrono::steady_clock::time_point expires;
  };
  void expire_locked();

  std::chrono::milliseconds ttl_;
  std::mutex mu_;
  std::map<uint64_t, entry> entries_;
  uint64_t next_id_ = 1;
  int32_t corrupt_chunk_ = -1;
};

/// Called once: the snapshot, or null and why not.
using kv_fetch_done = std::function<void(std::shared_ptr<const kv_snapshot> snap, const std::string& error)>;

/// Fetches transfer `transfer_id` from `source` (header, then chunks in order) from inside
/// actor `self`, checking it against this node's `model_id` and `layout`. Each request has
/// `per_request` as its timeout; the whole transfer gives up after `budget`.
void fetch_kv(caf::event_based_actor* self, caf::actor source, uint64_t transfer_id, std::string model_id,
              kv_transfer_layout layout, std::chrono::milliseconds per_request, std::chrono::milliseconds budget,
              kv_fetch_done done);

} // namespace actorserve::cluster
