#include "bpf/pin_dir.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cerrno>
#include <filesystem>
#include <vector>

#include "base/errors.h"

namespace smtpfence {

namespace fs = std::filesystem;

std::string pin_path(const std::string& pin_dir, std::string_view name) {
    return pin_dir + "/" + std::string(name);
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

std::string prepare_pin_dir(const std::string& pin_dir, std::initializer_list<std::string_view> subdirs) {
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
    std::vector<fs::path> dirs{dir};
    for (std::string_view sub : subdirs) dirs.push_back(dir / sub);
    for (const fs::path& d : dirs) {
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

std::optional<UniqueFd> try_open_pinned(const std::string& path) {
    int fd = bpf_obj_get(path.c_str());
    if (fd >= 0) return UniqueFd(fd);
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    throw RuntimeError(describe_errno("open " + path, errno));
}

}  // namespace smtpfence
