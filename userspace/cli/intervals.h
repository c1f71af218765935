// The sampling loop of `stats --watch` and `top`.
#pragma once

#include <cstddef>
#include <functional>

namespace smtpfence {

// Calls `show` every `interval_s` seconds (a redraw on a terminal, a line
// otherwise), `count` times or until SIGINT/SIGTERM. The schedule is fixed,
// so slow reads do not make it drift.
void every_interval(double interval_s, size_t count, const std::function<void()>& show);

}  // namespace smtpfence
