// What every subcommand shares. Each verb (or tight group of verbs) lives in
// a file of its own with its options struct, `register_VERB`, which adds the
// subcommand and its options, and `run_VERB`, which runs it once the command
// line parsed. app.cpp owns the global options, the parsing and the mapping
// of failures to exit codes.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "fence/session.h"
#include "text/cidr.h"
#include "text/defaults.h"

namespace smtpfence {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNotSaved = 3;  // in force, but the state file was not written

// What every command gets once the command line parsed.
struct CliContext {
    std::string pin_dir;
    std::string state_dir;  // the state file and (unless the default) the audit log
    bool syslog = true;     // audit to syslog too; SMTPFENCE_SYSLOG=0 turns it off
    std::ostream& out;
    std::ostream& err;
    uint64_t warn_block_age_s = kDefaultWarnBlockAgeSeconds;  // list/status warn about older blocks; 0 = never
    std::chrono::milliseconds lock_timeout = kDefaultLockTimeout;  // a change waits this long for another's lock
};

// A registered subcommand: app.cpp runs the one that was parsed.
struct Command {
    CLI::App* app;  // the subcommand; its handler runs when it was parsed
    std::function<int(const CliContext&)> run;
};

// --warn-block-age: a duration ("3d", "36h") or "0"/"off" (never warn).
// Throws UsageError.
uint64_t parse_warn_block_age(const std::string& text);

// --lock-timeout: a duration ("30s", "2m") or "0" (do not wait). Throws UsageError.
std::chrono::milliseconds parse_lock_timeout(const std::string& text);

// How a command that changes something waits for the pin-dir lock.
inline LockWait lock_wait(const CliContext& ctx) {
    return LockWait{ctx.lock_timeout, &ctx.err};
}

// The session of a command that changes the rules (see FenceSession).
inline FenceSession open_session(const CliContext& ctx) {
    return FenceSession(ctx.pin_dir, ctx.state_dir, ctx.syslog, ctx.err, lock_wait(ctx));
}

// The CIDR arguments of a rule command, each checked; what parse_cidr noted
// about one (an IPv4-mapped prefix rewritten, say) goes to `err`. Throws UsageError.
std::vector<Cidr> parse_cidrs(const std::vector<std::string>& texts, std::ostream& err);

}  // namespace smtpfence
