#include "bpf/pin_dir.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "base/errors.h"

namespace smtpfence {

namespace fs = std::filesystem;

std::string pin_path(const std::string& pin_dir, std::string_view name) {
    return pin_dir + "/" + std::string(name);
}

namespace {

// How long a command line may be in a message before it is cut.
constexpr size_t kCommandShown = 120;

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// The holder of the flock on `fd`'s file, as described by describe_process.
std::string lock_holder(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return describe_process(std::nullopt);
    return describe_process(flock_holder(read_text("/proc/locks"), st.st_dev, st.st_ino));
}

std::string seconds_text(std::chrono::milliseconds ms) {
    std::ostringstream text;
    text << static_cast<double>(ms.count()) / 1000 << " s";
    return text.str();
}

}  // namespace

std::optional<pid_t> flock_holder(std::string_view proc_locks, dev_t dev, ino_t ino) {
    // "1: FLOCK  ADVISORY  WRITE 1234 fe:01:5678 0 EOF" (device in hex).
    std::istringstream lines{std::string(proc_locks)};
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream fields(line);
        std::string id, kind, advisory, mode, pid, file;
        fields >> id >> kind;
        if (kind == "->") continue;
        fields >> advisory >> mode >> pid >> file;
        if (kind != "FLOCK") continue;
        unsigned major_dev = 0, minor_dev = 0;
        unsigned long long inode = 0;
        if (std::sscanf(file.c_str(), "%x:%x:%llu", &major_dev, &minor_dev, &inode) != 3) continue;
        if (makedev(major_dev, minor_dev) != dev || inode != ino) continue;
        return static_cast<pid_t>(std::strtol(pid.c_str(), nullptr, 10));
    }
    return std::nullopt;
}

std::string describe_process(std::optional<pid_t> pid) {
    if (!pid || *pid <= 0) return "another process";
    std::string command = read_text("/proc/" + std::to_string(*pid) + "/cmdline");
    while (!command.empty() && command.back() == '\0') command.pop_back();
    for (char& c : command) {
        if (c == '\0') c = ' ';
    }
    if (command.empty()) return "pid " + std::to_string(*pid);
    if (command.size() > kCommandShown) command = command.substr(0, kCommandShown) + "...";
    return "pid " + std::to_string(*pid) + " (" + command + ")";
}

PinDirLock::PinDirLock(const std::string& pin_dir, const LockWait& wait) {
    dir_fd_ = UniqueFd(::open(pin_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd_) throw RuntimeError(describe_errno("lock " + pin_dir, errno));
    using Clock = std::chrono::steady_clock;
    const Clock::time_point start = Clock::now();
    bool announced = false;
    // Polled, not a blocking flock: the wait has a deadline, and the holder
    // is named while it lasts.
    while (::flock(dir_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) throw RuntimeError(describe_errno("lock " + pin_dir, errno));
        const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
        if (waited >= wait.timeout) {
            throw RuntimeError("gave up after " + seconds_text(wait.timeout) + " waiting for " +
                               lock_holder(dir_fd_.get()) + ", which holds the lock on " + pin_dir +
                               ": nothing was changed. If that run is stuck (a suspended terminal: `fg` it; or "
                               "`kill` it), end it and run this again; or wait longer with --lock-timeout 5m");
        }
        if (!announced && wait.notice && waited >= kLockNoticeAfter) {
            *wait.notice << "smtpfence: waiting for " << lock_holder(dir_fd_.get()) << ", which holds the lock on "
                         << pin_dir << " (giving up after " << seconds_text(wait.timeout) << ")" << std::endl;
            announced = true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
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
