// Pinned BPF objects and the directory that holds them: paths, the bpffs
// mount, and the lock that serialises changes to one pin directory. No
// policy: which objects a fence pins, and why, is the fence's business.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <initializer_list>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "base/unique_fd.h"

namespace smtpfence {

// PIN_DIR/NAME.
std::string pin_path(const std::string& pin_dir, std::string_view name);

// How long a change waits for the pin-directory lock before it gives up,
// unless told otherwise (--lock-timeout, SMTPFENCE_LOCK_TIMEOUT).
inline constexpr std::chrono::milliseconds kDefaultLockTimeout{30'000};
// A wait this long is announced once (who holds the lock); a shorter one is a
// concurrent change finishing, not worth a word.
inline constexpr std::chrono::milliseconds kLockNoticeAfter{500};

// How a PinDirLock waits for a lock someone else holds.
struct LockWait {
    std::chrono::milliseconds timeout = kDefaultLockTimeout;
    std::ostream* notice = nullptr;  // told once who holds the lock; nullptr: wait silently
};

// Holds an exclusive flock on the pin directory for its lifetime, so that
// concurrent CLI runs apply their changes one after the other. Waits at most
// `wait.timeout` for another holder; then RuntimeError naming the holder and
// what to do.
class PinDirLock {
public:
    explicit PinDirLock(const std::string& pin_dir, const LockWait& wait = {});

private:
    UniqueFd dir_fd_;
};

// The pid that /proc/locks (its text in `proc_locks`) names as holding a
// flock on the file (`dev`, `ino`); waiters ("->" lines) are not holders.
std::optional<pid_t> flock_holder(std::string_view proc_locks, dev_t dev, ino_t ino);
// "pid N (COMMAND LINE)", or "pid N" when its command line cannot be read, or
// "another process" when `pid` is empty or 0 (a holder in another pid namespace).
std::string describe_process(std::optional<pid_t> pid);

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
