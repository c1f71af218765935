#include "cli/ports.h"

#include <memory>

#include "fence/rule_store.h"
#include "fence/session.h"
#include "text/ports.h"

namespace smtpfence {

void register_ports(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<PortsOptions>();
    auto* cmd = app.add_subcommand("ports", "show or set the TCP ports treated as SMTP");
    auto* list = cmd->add_option("LIST", options->list, "comma-separated ports, e.g. 25,465,587");
    cmd->add_flag("--force", options->force, "also well-known ports of other services (22 ssh, 443 https, ...)");
    commands.push_back({cmd, [options, list](const CliContext& ctx) {
                            options->set = list->count() > 0;
                            return run_ports(*options, ctx);
                        }});
}

int run_ports(const PortsOptions& options, const CliContext& ctx) {
    std::ostream& out = ctx.out;
    if (!options.set) {
        out << format_port_list(Fence::open(ctx.pin_dir).ports()) << '\n';
        return kExitOk;
    }
    PortSet ports = parse_port_list(options.list);
    check_non_smtp_ports(ports, options.force);
    FenceSession session = open_session(ctx);
    Fence& fence = session.fence();
    PortSet before = fence.ports();
    fence.set_ports(ports);
    session.record("ports", format_port_list(ports) + " (were " + format_port_list(before) + ")");
    session.commit();
    out << "SMTP ports: " << format_port_list(ports) << " (were " << format_port_list(before) << ")\n";
    return kExitOk;
}

}  // namespace smtpfence
