// Pinned BPF objects and the directory that holds them: paths, the bpffs
// mount, and the lock that serialises changes to one pin directory. No
// policy: which objects a fence pins, and why, is the fence's business.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "base/unique_fd.h"

namespace smtpfence {

// PIN_DIR/NAME.
std::string pin_path(const std::string& pin_dir, std::string_view name);

// Holds an exclusive flock on the pin directory for its lifetime, so that
// concurrent CLI runs apply their changes one after the other.
class PinDirLock {
public:
    explicit PinDirLock(const std::string& pin_dir);

private:
    UniqueFd dir_fd_;
};

// Makes sure `pin_dir` (and `subdirs` inside it) can hold pins: mounts bpffs on
// /sys/fs/bpf when that is where it goes and nothing is mounted there yet,
// and creates the directories (mode 0700). Returns a note for the user when
// it mounted something, else "".
std::string prepare_pin_dir(const std::string& pin_dir, std::initializer_list<std::string_view> subdirs = {});

// True when `path` is on a BPF filesystem.
bool is_on_bpffs(const std::string& path);

// Opens a pinned object; throws RuntimeError with the path and a hint.
UniqueFd open_pinned(const std::string& path);
// Opens a pinned object, or nothing when there is no pin at `path`; throws
// RuntimeError on any other failure.
std::optional<UniqueFd> try_open_pinned(const std::string& path);

}  // namespace smtpfence
