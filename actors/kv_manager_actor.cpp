// The KV-block-manager actor: owns the kv_manager (block pool, prefix cache, block tables) of
// one replica and answers the scheduler's one capacity request per iteration.
#include "actors/engine_actors.hpp"
#include "actors/cpu_time.hpp"
#include "actors/kv_manager.hpp"


namespace actorserve {

namespace {

struct kv_manager_state {
  std::unique_ptr<kv_manager> kv;
  static inline const char* name = "actorserve.kv_manager";
};

kv_manager_actor::behavior_type kv_manager_impl(kv_manager_actor::stateful_pointer<kv_manager_state> self,
                                                int32_t num_blocks, int32_t block_size, int32_t num_host_blocks,
                                                bool enable_prefix_caching) {
  self->state.kv = std::make_unique<kv_manager>(num_blocks, block_size, num_host_blocks, enable_prefix_caching);
  return {
      [=](capacity_atom, const capacity_request& request) -> caf::result<capacity_reply> {
        int64_t start = thread_cpu_ns();
        try {
          capacity_reply reply = self->state.kv->process(request);
          reply.cpu_ns = thread_cpu_ns() - start;
          return reply;
        } catch (const std::exception& e) {
          // A bookkeeping bug: refuse this iteration rather than take the process down.
          return caf::make_error(caf::sec::runtime_error, std::string("kv manager: ") + e.what());
        }
      },
  };
}

} // namespace

kv_manager_actor spawn_kv_manager(caf::actor_system& system, int32_t num_blocks, int32_t block_size,
                                  int32_t num_host_blocks, bool enable_prefix_caching) {
  return system.spawn(kv_manager_impl, num_blocks, block_size, num_host_blocks, enable_prefix_caching);
}

} // namespace actorserve
