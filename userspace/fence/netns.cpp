#include "fence/netns.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <bpf/bpf.h>

#include <cerrno>
#include <set>
#include <utility>
#include <vector>

#include "base/errors.h"
#include "base/unique_fd.h"
#include "bpf/pin_dir.h"
#include "smtpfence_abi.h"

namespace smtpfence {

namespace {

// Paths of network namespace handles worth trying, named ones first (what an
// admin made with `ip netns add`), then one per namespace of running
// processes (a container's), each namespace once.
std::vector<std::string> netns_candidates() {
    std::vector<std::string> paths;
    std::set<std::pair<dev_t, ino_t>> seen;
    auto add = [&](const std::string& path) {
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0 && seen.insert({st.st_dev, st.st_ino}).second) paths.push_back(path);
    };
    auto each_entry = [](const char* dir, auto&& visit) {
        DIR* d = ::opendir(dir);
        if (!d) return;
        while (const dirent* e = ::readdir(d)) {
            if (e->d_name[0] != '.') visit(std::string(e->d_name));
        }
        ::closedir(d);
    };
    add("/proc/self/ns/net");  // tried already, by the caller
    paths.clear();
    each_entry("/var/run/netns", [&](const std::string& name) { add("/var/run/netns/" + name); });
    each_entry("/proc", [&](const std::string& name) {
        if (name.find_first_not_of("0123456789") == std::string::npos) add("/proc/" + name + "/ns/net");
    });
    return paths;
}

uint64_t guarded_netns_cookie(const std::string& pin_dir) {
    UniqueFd config = open_pinned(pin_path(pin_dir, FENCE_MAP_CONFIG));
    uint32_t zero = 0;
    fence_config cfg{};
    if (bpf_map_lookup_elem(config.get(), &zero, &cfg) != 0) {
        throw RuntimeError(describe_errno("read map config", errno));
    }
    return cfg.netns_cookie;
}

}  // namespace

uint64_t current_netns_cookie() {
    UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    uint64_t cookie = 0;
    socklen_t len = sizeof cookie;
    if (!sock || ::getsockopt(sock.get(), SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0) {
        throw RuntimeError(describe_errno("read this network namespace's cookie", errno));
    }
    return cookie;
}

bool enter_guarded_netns(const std::string& pin_dir) {
    const uint64_t wanted = guarded_netns_cookie(pin_dir);
    if (wanted == 0 || wanted == current_netns_cookie()) return true;
    UniqueFd home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!home) throw RuntimeError(describe_errno("open this thread's network namespace", errno));
    for (const std::string& path : netns_candidates()) {
        UniqueFd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        // A process that exited meanwhile, or a namespace we may not enter.
        if (!ns || ::setns(ns.get(), CLONE_NEWNET) != 0) continue;
        if (current_netns_cookie() == wanted) return true;
    }
    if (::setns(home.get(), CLONE_NEWNET) != 0) {
        throw RuntimeError(describe_errno("return to this thread's network namespace", errno));
    }
    return false;
}

void throw_outside_guarded_netns(const std::string& what) {
    throw RuntimeError(what +
                       ": the fence guards the network namespace `attach` ran in, and no named namespace "
                       "(/var/run/netns) or running process is in it any more (or this shell cannot see them); "
                       "run `smtpfence attach IFACE` again from the mail host's namespace");
}

}  // namespace smtpfence
