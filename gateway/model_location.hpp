#pragma once
// Where `actorserve serve` finds its model when no --model is given: the bundled demo model
// (models/demo), looked up next to the executable, in the source tree it was built from, and
// in the working directory; failing that, a tiny random-weight model made once by make-model
// into $ACTORSERVE_CACHE/tiny (default ~/.cache/actorserve/tiny).

#include <filesystem>

namespace actorserve::gateway {

/// The demo model folder if one is found (has config.json), else an empty path.
std::filesystem::path find_demo_model();
/// $ACTORSERVE_CACHE, else $XDG_CACHE_HOME/actorserve, else ~/.cache/actorserve.
std::filesystem::path cache_dir();
/// The demo model, or the tiny cached model (made on first use).
std::filesystem::path default_model_dir();

} // namespace actorserve::gateway
