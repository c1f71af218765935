// RAII over the kernel objects smtpfence holds: file descriptors of pinned maps,
// programs and links, and the lock that serialises changes to one pin directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace smtpfence {

class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept;
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd();

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    int release();

private:
    int fd_ = -1;
};

// Holds an exclusive flock on the pin directory for its lifetime, so that
// concurrent CLI runs apply their changes one after the other.
class PinDirLock {
public:
    explicit PinDirLock(const std::string& pin_dir);

private:
    UniqueFd dir_fd_;
};

// Makes sure `pin_dir` can hold pins: mounts bpffs on /sys/fs/bpf when that is
// where it goes and nothing is mounted there yet, and creates the directory.
// Returns a note for the user when it mounted something, else "".
std::string prepare_pin_dir(const std::string& pin_dir);

// True when `path` is on a BPF filesystem.
bool is_on_bpffs(const std::string& path);

// Opens a pinned object; throws RuntimeError with the path and a hint.
UniqueFd open_pinned(const std::string& path);

// A BPF map reached through a pinned fd, with errors that say which map failed.
class MapRef {
public:
    MapRef() = default;
    MapRef(UniqueFd fd, std::string name);

    int fd() const { return fd_.get(); }
    const std::string& name() const { return name_; }
    uint32_t max_entries() const { return max_entries_; }

    // Returns false when the key is absent; throws on any other failure.
    bool lookup(const void* key, void* value) const;
    void update(const void* key, const void* value, uint64_t flags = 0) const;
    // Returns false when the key was absent.
    bool erase(const void* key) const;
    // All keys, in the map's iteration order; `key_size` bytes each.
    std::vector<std::vector<uint8_t>> keys(size_t key_size) const;

private:
    UniqueFd fd_;
    std::string name_;
    uint32_t max_entries_ = 0;
};

// Number of possible CPUs: the element count of a per-CPU map value.
unsigned possible_cpus();

}  // namespace smtpfence
