// The executor actor: a detached thread that owns the backend through executor_core.
#include "actors/engine_actors.hpp"
#include "actors/executor_core.hpp"

namespace actorserve {

namespace {

struct executor_state {
  std::unique_ptr<executor_core> core;
  std::string load_error;
  static inline const char* name = "actorserve.executor";
};

executor_actor::behavior_type executor_impl(executor_actor::stateful_pointer<executor_state> self,
                                            backend_factory make_backend) {
  // Runs on the actor's own thread: a CUDA backend binds its context here.
  try {
    if (!make_backend)
      throw std::invalid_argument("no backend factory");
    self->state.core = std::make_unique<executor_core>(make_backend());
  } catch (const std::exception& e) {
    self->state.load_error = std::string("the backend could not be created: ") + e.what();
  }
  return {
      [=](info_atom) -> executor_info {
        if (!self->state.core) {
          executor_info i;
          i.error = self->state.load_error;
          return i;
        }
        return self->state.core->info();
      },
      [=](step_atom, const step_plan& plan) -> step_result {
        if (!self->state.core) {
          step_result r;
          r.step_id = plan.step_id;
          r.error = self->state.load_error;
          return r;
        }
        return self->state.core->run(plan);
      },
      [=](reset_atom) -> int32_t {
        if (self->state.core)
          self->state.core->reset();
        return 0;
      },
      [=](kv_export_atom, uint64_t seq_id) -> kv_snapshot {
        if (!self->state.core) {
          kv_snapshot s;
          s.error = self->state.load_error;
          return s;
        }
        return self->state.core->export_kv(seq_id);
      },
  };
}

} // namespace

executor_actor spawn_executor(caf::actor_system& system, backend_factory make_backend) {
  return system.spawn<caf::detached>(executor_impl, std::move(make_backend));
}

} // namespace actorserve
