#include "cli/agent.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "base/errors.h"
#include "base/unique_fd.h"
#include "cli/boot.h"
#include "etcd/config.h"
#include "fence/state_file.h"
#include "fleet/agent.h"
#include "fleet/hosts.h"
#include "text/config.h"

namespace smtpfence {

namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

void on_signal(int) {
    g_stop = true;
}

// Type=notify: tells systemd the fence is up (the unit is ordered before the
// MTAs), by the datagram sd_notify(3) sends; nothing without NOTIFY_SOCKET.
void notify_ready() {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@')) return;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const size_t len = std::min(std::strlen(path), sizeof addr.sun_path - 1);
    std::memcpy(addr.sun_path, path, len);
    if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // an abstract socket
    UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return;
    static const char kReady[] = "READY=1";
    sendto(fd.get(), kReady, sizeof kReady - 1, 0, reinterpret_cast<sockaddr*>(&addr),
           static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
}

}  // namespace

void register_agent(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<AgentOptions>();
    auto* cmd = app.add_subcommand(
        "agent", "boot as the config file says, then apply the fleet's rules from etcd as they change (a daemon)");
    cmd->add_option("--config", options->config, "the config file (interfaces, host, roles, etcd_*)")
        ->envname("SMTPFENCE_CONFIG")
        ->capture_default_str();
    cmd->add_flag("--insecure", options->insecure, "allow http:// etcd endpoints (no TLS: a test cluster only)");
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_agent(*options, ctx); }});
}

int run_agent(const AgentOptions& options, const CliContext& ctx) {
    auto text = read_file(options.config);
    if (!text) throw RuntimeError("no config file " + options.config + " (scripts/install.sh installs an example)");
    BootConfig cfg = parse_boot_config(*text, options.config);
    if (cfg.fleet.etcd_endpoints.empty()) {
        throw UsageError(options.config + ": no etcd_endpoints: the agent needs the fleet's store, e.g. " +
                         "etcd_endpoints = https://203.0.113.101:2379");
    }
    AgentSettings settings;
    settings.host = fleet_host_name(cfg.fleet);
    check_fleet_name("host", settings.host);
    settings.roles = cfg.fleet.roles;
    settings.interfaces = cfg.interfaces;
    settings.pin_dir = cfg.pin_dir;
    settings.state_dir = cfg.state_dir;
    settings.to_syslog = ctx.syslog;
    settings.store = store_config(cfg.fleet, options.insecure);
    etcd::validate_config(settings.store);  // a bad setup exits 2 before anything is attached

    // What the fence enforced when it stopped (fleet rules included) is in
    // force again before the store is asked: a reboot without etcd restores it.
    BootOptions boot{options.config};
    if (int rc = run_boot(boot, ctx); rc != kExitOk) return rc;

    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);
    notify_ready();
    ctx.out << "agent " << settings.host << " (roles: " << (settings.roles.empty() ? "none" : "");
    for (size_t i = 0; i < settings.roles.size(); ++i) ctx.out << (i ? ", " : "") << settings.roles[i];
    ctx.out << "): watching " << settings.store.endpoints.size() << " etcd endpoint(s)" << std::endl;
    run_fleet_agent(settings, g_stop, ctx.err);
    ctx.out << "agent " << settings.host << " stopped; the rules in force stay" << std::endl;
    return kExitOk;
}

}  // namespace smtpfence
