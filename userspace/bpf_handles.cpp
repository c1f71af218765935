#include "bpf_handles.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "errors.h"

namespace smtpfence {

namespace fs = std::filesystem;

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = other.release();
    }
    return *this;
}

UniqueFd::~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
}

int UniqueFd::release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
}

PinDirLock::PinDirLock(const std::string& pin_dir) {
    dir_fd_ = UniqueFd(::open(pin_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd_) throw RuntimeError(describe_errno("lock " + pin_dir, errno));
    while (::flock(dir_fd_.get(), LOCK_EX) != 0) {
        if (errno != EINTR) throw RuntimeError(describe_errno("lock " + pin_dir, errno));
    }
}

bool is_on_bpffs(const std::string& path) {
    struct statfs st {};
    return ::statfs(path.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

std::string prepare_pin_dir(const std::string& pin_dir) {
    std::string note;
    fs::path dir(pin_dir);
    fs::path parent = dir.parent_path();
    if (parent.empty()) parent = ".";
    if (!is_on_bpffs(parent.string())) {
        if (parent != "/sys/fs/bpf") {
            throw UsageError("pin directory " + pin_dir + " is not on a BPF filesystem: choose a directory under " +
                             "/sys/fs/bpf, or mount one first with `mount -t bpf bpf " + parent.string() + "`");
        }
        if (::mount("bpf", "/sys/fs/bpf", "bpf", 0, nullptr) != 0) {
            throw RuntimeError(describe_errno("mount bpffs on /sys/fs/bpf", errno) +
                               "; mount it with `mount -t bpf bpf /sys/fs/bpf`");
        }
        note = "mounted the BPF filesystem on /sys/fs/bpf";
    }
    for (const fs::path& d : {dir, dir / "links"}) {
        if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
            throw RuntimeError(describe_errno("create " + d.string(), errno));
        }
    }
    return note;
}

UniqueFd open_pinned(const std::string& path) {
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) throw RuntimeError(describe_errno("open " + path, errno));
    return UniqueFd(fd);
}

MapRef::MapRef(UniqueFd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {
    struct bpf_map_info info {};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd_.get(), &info, &len) != 0) {
        throw RuntimeError(describe_errno("inspect map " + name_, errno));
    }
    max_entries_ = info.max_entries;
}

bool MapRef::lookup(const void* key, void* value) const {
    if (bpf_map_lookup_elem(fd_.get(), key, value) == 0) return true;
    if (errno == ENOENT) return false;
    throw RuntimeError(describe_errno("read map " + name_, errno));
}

void MapRef::update(const void* key, const void* value, uint64_t flags) const {
    if (bpf_map_update_elem(fd_.get(), key, value, flags) != 0) {
        int err = errno;
        if (err == ENOSPC || err == E2BIG) {
            throw RuntimeError("map " + name_ + " is full (" + std::to_string(max_entries_) +
                               " entries): remove rules, or recreate the maps with a larger `attach --max-rules`");
        }
        throw RuntimeError(describe_errno("write map " + name_, err));
    }
}

bool MapRef::erase(const void* key) const {
    if (bpf_map_delete_elem(fd_.get(), key) == 0) return true;
    if (errno == ENOENT) return false;
    throw RuntimeError(describe_errno("delete from map " + name_, errno));
}

std::vector<std::vector<uint8_t>> MapRef::keys(size_t key_size) const {
    std::vector<std::vector<uint8_t>> out;
    std::vector<uint8_t> next(key_size);
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd_.get(), prev, next.data()) == 0) {
        out.push_back(next);
        prev = out.back().data();
    }
    if (errno != ENOENT) throw RuntimeError(describe_errno("iterate map " + name_, errno));
    return out;
}

unsigned possible_cpus() {
    static const unsigned n = [] {
        int cpus = libbpf_num_possible_cpus();
        if (cpus <= 0) throw RuntimeError(describe_errno("count possible CPUs", -cpus));
        return static_cast<unsigned>(cpus);
    }();
    return n;
}

}  // namespace smtpfence
