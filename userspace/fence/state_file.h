// The rule set on disk (the format is text/rule_set.h): where each instance
// keeps it, and how it is written: atomically (temporary file, fsync,
// rename, fsync of the directory), so that a reader sees the old version or
// the new one, never a mix.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "text/ports.h"
#include "text/rule.h"

namespace smtpfence {

// Where an instance keeps its rules: STATE_DIR/NAME.rules, NAME being the pin
// directory's last component (/sys/fs/bpf/smtpfence -> smtpfence.rules).
std::string state_file_path(const std::string& state_dir, const std::string& pin_dir);
// Where an instance keeps its imported lists, one file each (text/list_file.h):
// STATE_DIR/NAME.lists/, beside NAME.rules.
std::string list_store_dir(const std::string& state_dir, const std::string& pin_dir);
// The audit log of an instance: /var/log/smtpfence/audit.log for the default
// state directory, else STATE_DIR/audit.log (an instance with a state
// directory of its own keeps its log with it).
std::string audit_log_path(const std::string& state_dir);

// Replaces `path` with `content` atomically and durably. The temporary file is
// ".NAME.tmp" in the same directory: callers hold the pin-dir lock, so one
// writer at a time, and a writer killed midway leaves only that behind.
void write_file_atomically(const std::string& path, const std::string& content);

// How the state file relates to what is in force, for `status`.
struct StateFileHealth {
    std::string path;
    bool exists = false;
    std::string error;     // non-empty: unreadable or does not parse (the message)
    size_t rules = 0;      // rules in the file
    size_t differing = 0;  // rules missing, extra or different between file and kernel
    bool ports_differ = false;
    uint64_t written_unix = 0;  // last modification
};

// Reads and parses the state file at `path` and compares it with `ports` and
// `rules` (what the kernel holds).
StateFileHealth check_state_file(const std::string& path, const PortSet& ports, const std::vector<Rule>& rules);

// Creates `dir` and its parents (mode 0755) when missing.
void make_directories(const std::string& dir);

// The file's content; std::nullopt when it does not exist. Throws RuntimeError
// on any other failure.
std::optional<std::string> read_file(const std::string& path);

}  // namespace smtpfence
