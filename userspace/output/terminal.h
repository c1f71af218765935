// What the long-running commands (stats --watch, top, events --follow, serve)
// need from their surroundings: whether stdout is a terminal to redraw, and a
// clean stop on Ctrl-C or SIGTERM.
#pragma once

#include <chrono>
#include <csignal>
#include <ostream>

#include "base/unique_fd.h"

namespace smtpfence {

// Home and clear screen: the whole redraw, without a curses dependency.
inline constexpr const char* kClearScreen = "\033[H\033[2J";

// True when `out` is this process's stdout and that is a terminal.
bool is_terminal(const std::ostream& out);

// Turns SIGINT and SIGTERM into something to wait for instead of a sudden
// death: while it lives, both are blocked in the thread that made it (and in
// threads it starts afterwards) and arrive on a signalfd.
class StopSignals {
public:
    StopSignals();
    ~StopSignals();
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;

    // Readable (for poll) when a stop signal is pending.
    int fd() const { return fd_.get(); }
    // Waits up to `timeout` for a stop signal; true once one arrived.
    bool wait(std::chrono::milliseconds timeout);
    bool stopped() const { return stopped_; }

private:
    sigset_t previous_{};
    UniqueFd fd_;
    bool stopped_ = false;
};

}  // namespace smtpfence
