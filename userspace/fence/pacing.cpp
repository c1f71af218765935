#include "fence/pacing.h"

#include <bpf/libbpf.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "base/errors.h"
#include "base/unique_fd.h"
#include "smtpfence_abi.h"

extern char** environ;

namespace smtpfence {

namespace {

struct CommandResult {
    int status = 0;
    std::string out;
    std::string err;
};

// Reads a pipe to its end.
std::string drain(int fd) {
    std::string text;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        text.append(buf, static_cast<size_t>(n));
    }
    return text;
}

// Runs `tc ARGS...` with `input` on its stdin and waits for it. Its input
// and outputs are a few KiB at most, below a pipe's capacity, so writing
// all of stdin, then reading stdout and then stderr cannot block.
CommandResult run_tc(const std::vector<std::string>& args, const std::string& input = {}) {
    int in_fds[2], out_fds[2], err_fds[2];
    if (::pipe2(in_fds, O_CLOEXEC) != 0) throw RuntimeError(describe_errno("run tc: pipe", errno));
    UniqueFd in_read(in_fds[0]), in_write(in_fds[1]);
    if (::pipe2(out_fds, O_CLOEXEC) != 0) throw RuntimeError(describe_errno("run tc: pipe", errno));
    UniqueFd out_read(out_fds[0]), out_write(out_fds[1]);
    if (::pipe2(err_fds, O_CLOEXEC) != 0) throw RuntimeError(describe_errno("run tc: pipe", errno));
    UniqueFd err_read(err_fds[0]), err_write(err_fds[1]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_read.get(), STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err_write.get(), STDERR_FILENO);
    std::vector<std::string> argv_text{"tc"};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    int rc = posix_spawnp(&pid, "tc", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        throw RuntimeError(describe_errno("run tc (iproute2, needed for --messages)", rc));
    }
    in_read = UniqueFd();
    out_write = UniqueFd();
    err_write = UniqueFd();
    for (size_t done = 0; done < input.size();) {
        ssize_t n = ::write(in_write.get(), input.data() + done, input.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // tc exited early: its status says why
        done += static_cast<size_t>(n);
    }
    in_write = UniqueFd();
    CommandResult result;
    result.out = drain(out_read.get());
    result.err = drain(err_read.get());
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    return result;
}

std::string command_text(const std::vector<std::string>& args) {
    std::string text = "tc";
    for (const auto& a : args) text += " " + a;
    return text;
}

CommandResult tc_checked(const std::string& ifname, const std::vector<std::string>& args,
                         const std::string& input = {}) {
    CommandResult r = run_tc(args, input);
    if (r.status != 0) {
        std::string msg = r.err;
        while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
        throw RuntimeError("pace " + ifname + ": `" + command_text(args) +
                           "` failed: " + (msg.empty() ? "exit " + std::to_string(r.status) : msg));
    }
    return r;
}

std::string handle_text(uint32_t major) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%x:", major);
    return buf;
}

std::string class_text(uint32_t minor) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%x:%x", FENCE_PACE_QDISC_MAJOR, minor);
    return buf;
}

// The minors of smtpfence's classes on `ifname`, from tc's text output
// ("class htb 5346:1 root prio 0 rate 400Kbit ..."): iproute2 6.1 prints HTB
// classes as text even with -j.
std::set<uint32_t> existing_minors(const std::string& ifname) {
    CommandResult r = tc_checked(ifname, {"class", "show", "dev", ifname});
    std::set<uint32_t> minors;
    const std::string prefix = handle_text(FENCE_PACE_QDISC_MAJOR);
    std::istringstream lines(r.out);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream words(line);
        std::string kind, qdisc, handle;
        if (!(words >> kind >> qdisc >> handle) || kind != "class" || handle.rfind(prefix, 0) != 0) continue;
        minors.insert(static_cast<uint32_t>(std::stoul(handle.substr(prefix.size()), nullptr, 16)));
    }
    return minors;
}

}  // namespace

uint32_t pace_classid(uint32_t minor) {
    return (uint32_t{FENCE_PACE_QDISC_MAJOR} << 16) | minor;
}

uint64_t pace_class_rate_bits(uint64_t interval_ns) {
    const long double bits = 8.0L * FENCE_PACE_PACKET_COST * 1e9L / static_cast<long double>(interval_ns);
    return std::max<uint64_t>(1, static_cast<uint64_t>(bits + 0.5L));
}

bool RootQdisc::ours() const {
    return kind == "htb" && handle == handle_text(FENCE_PACE_QDISC_MAJOR);
}

bool RootQdisc::replaceable() const {
    return ours() || handle == "0:";
}

RootQdisc root_qdisc(const std::string& ifname) {
    CommandResult r = tc_checked(ifname, {"-j", "qdisc", "show", "dev", ifname, "root"});
    nlohmann::json qdiscs = nlohmann::json::parse(r.out, nullptr, false);
    RootQdisc root;
    if (qdiscs.is_array()) {
        for (const auto& q : qdiscs) {
            if (!q.value("root", false)) continue;
            root.kind = q.value("kind", "");
            root.handle = q.value("handle", "");
            break;
        }
    }
    if (root.kind.empty()) root = {"noqueue", "0:"};
    return root;
}

void sync_pace_classes(const std::string& ifname, const std::vector<PaceClass>& classes) {
    RootQdisc root = root_qdisc(ifname);
    if (classes.empty()) {
        if (root.ours()) tc_checked(ifname, {"qdisc", "del", "dev", ifname, "root"});
        return;
    }
    if (!root.replaceable()) {
        throw RuntimeError("pace " + ifname + ": its root qdisc is " + root.kind + " " + root.handle +
                           ", set up by someone else; --messages needs smtpfence's own (htb " +
                           handle_text(FENCE_PACE_QDISC_MAJOR) + "): remove it (`tc qdisc del dev " + ifname +
                           " root`) or pace on another host");
    }
    if (!root.ours()) {
        // Every packet costs FENCE_PACE_PACKET_COST bytes (size table), so a
        // class's byte rate is a packet rate with a burst of one packet. No
        // default class: unsteered packets take HTB's direct queue, unshaped.
        tc_checked(ifname,
                   {"qdisc", "replace", "dev", ifname, "root", "handle", handle_text(FENCE_PACE_QDISC_MAJOR), "stab",
                    "mtu", "65536", "tsize", "512", "mpu", std::to_string(FENCE_PACE_PACKET_COST), "htb"});
    }
    // One tc run for all classes (a rule paced per source has 64).
    std::set<uint32_t> stale = existing_minors(ifname);
    const std::string cost = std::to_string(FENCE_PACE_PACKET_COST) + "b";
    std::string batch;
    for (const auto& c : classes) {
        const std::string rate = std::to_string(pace_class_rate_bits(c.interval_ns)) + "bit";
        batch += "class replace dev " + ifname + " parent " + handle_text(FENCE_PACE_QDISC_MAJOR) + " classid " +
                 class_text(c.minor) + " htb rate " + rate + " ceil " + rate + " burst " + cost + " cburst " + cost +
                 " quantum " + std::to_string(FENCE_PACE_PACKET_COST) + "\n";
        stale.erase(c.minor);
    }
    for (uint32_t minor : stale) batch += "class del dev " + ifname + " classid " + class_text(minor) + "\n";
    tc_checked(ifname, {"-batch", "-"}, batch);
}

void attach_egress(const std::string& ifname, int ifindex, int prog_fd) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
    int err = bpf_tc_hook_create(&hook);
    if (err != 0 && err != -EEXIST)
        throw RuntimeError(describe_errno("create the egress hook (clsact) on " + ifname, -err));
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE, .handle = FENCE_TC_HANDLE,
                .priority = FENCE_TC_PRIORITY);
    if (int e = bpf_tc_attach(&hook, &opts); e != 0) {
        throw RuntimeError(describe_errno("attach the pacing filter to " + ifname + " egress", -e));
    }
}

void detach_egress(const std::string& ifname, int ifindex) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = FENCE_TC_HANDLE, .priority = FENCE_TC_PRIORITY);
    int err = bpf_tc_detach(&hook, &opts);
    if (err != 0 && err != -ENOENT && err != -EINVAL) {
        throw RuntimeError(describe_errno("detach the pacing filter from " + ifname + " egress", -err));
    }
}

}  // namespace smtpfence
