#include "cli/intervals.h"

#include <chrono>

#include "output/terminal.h"

namespace smtpfence {

namespace {

using Clock = std::chrono::steady_clock;

// Sleeps until `deadline`; true when a stop signal came first.
bool stopped_before(StopSignals& signals, Clock::time_point deadline) {
    for (auto now = Clock::now(); now < deadline; now = Clock::now()) {
        if (signals.wait(std::chrono::ceil<std::chrono::milliseconds>(deadline - now))) return true;
    }
    return signals.stopped();
}

Clock::duration seconds(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

}  // namespace

void every_interval(double interval_s, size_t count, const std::function<void()>& show) {
    StopSignals signals;
    auto start = Clock::now();
    for (size_t i = 1; count == 0 || i <= count; ++i) {
        if (stopped_before(signals, start + seconds(interval_s * static_cast<double>(i)))) return;
        show();
    }
}

}  // namespace smtpfence
